"""What each call of the Jobs API does, in terms of Kubernetes: one user's namespace, one region's ``Kube``."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import orjson

from .. import errors
from . import joblist, queueing
from ..kube.cache import RegionCache, cache_of
from ..kube.cache.entries import PodEntry, get_body, list_chunks
from ..store import LogStore
from ..store.records import instance_record
from ..settings import Settings
from ..kube.client import Kube
from .manifest import build_job
from ..names import LOCAL_QUEUE
from .scheduling import pod_scheduling
from .tenancy import Tenant, TenantWalls, held_back


def self_link(namespace: str, name: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"


def _with_self_link(job: dict[str, Any]) -> dict[str, Any]:
    """Current Kubernetes no longer fills selfLink; the original's clients may still read it."""
    metadata = job.setdefault("metadata", {})
    metadata["selfLink"] = self_link(metadata.get("namespace", ""), metadata.get("name", ""))
    return job


def _memory(kube: Kube) -> RegionCache | None:
    """The region's watch cache if it may answer now (see gateway/kube/cache/region.py), else None: ask the apiserver."""
    cache = cache_of(kube)
    return cache if cache is not None and cache.usable() else None


def list_jobs_body(kube: Kube, tenant: Tenant, max_jobs: int) -> Iterator[bytes]:
    """``{"jobs": [...]}`` (at most ``max_jobs``; ``"truncated": true`` when there are more), as a stream of JSON
    bytes: spliced from the watch cache's kept bytes, or the apiserver's list passed through without being parsed
    or held whole (see ``joblist``)."""
    cache = _memory(kube)
    if cache is not None:
        return joblist.SplicedBody(list_chunks(cache.jobs_in(tenant.namespace), max_jobs))
    return joblist.job_list_body(kube.list_jobs_stream(tenant.namespace, limit=max_jobs))


# Lets get_job ask for the Job and its pods at once; threads only wait on the apiserver.
_ALONGSIDE = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kube-alongside")


def get_job(kube: Kube, tenant: Tenant, name: str) -> Any:
    """The Job and its pods' names: from the watch cache when it holds the Job (spliced bytes, no parse unless
    the Job may be held back), else from the apiserver."""
    cache = _memory(kube)
    job = cache.job(tenant.namespace, name) if cache is not None else None
    if cache is None or job is None:
        return _get_job_direct(kube, tenant, name)
    pods = cache.pods_of(job)
    if not job.queue and sum(pod.live for pod in pods) >= job.wanted:
        return orjson.Fragment(get_body(job, pods))
    parsed = orjson.loads(job.body)
    _show_held_back(parsed, held_back(kube, parsed, _phases(pods)))
    return _with_queue(kube, {"instance_names": [pod.name for pod in pods], **parsed})


def _with_queue(kube: Kube, body: dict[str, Any]) -> dict[str, Any]:
    """A Job that went through a queue says where it stands there, as ``queue`` beside it (see queueing.py)."""
    queue = queueing.describe(kube, body)
    return body if queue is None else {**body, "queue": queue}


def _phases(pods: list[PodEntry]) -> list[dict[str, Any]]:
    """What tenancy.held_back reads of a pod."""
    return [{"status": {"phase": pod.phase}} for pod in pods]


def _get_job_direct(kube: Kube, tenant: Tenant, name: str) -> dict[str, Any]:
    """The Job and, in the same round trip, the pods labelled ``job-name=<name>`` (the Job controller sets the
    legacy label too); of those, only the ones the Job's own selector (its controller-uid) matches, so pods of an
    earlier job of the same name never show up."""
    labelled = _ALONGSIDE.submit(kube.list_pods, tenant.namespace, f"job-name={name}")
    job = kube.get_job(tenant.namespace, name)
    pods = _selected(job, labelled.result().get("items") or [])
    _show_held_back(job, held_back(kube, job, pods))
    return _with_queue(kube, {"instance_names": [pod["metadata"]["name"] for pod in pods], **_with_self_link(job)})


HELD_BACK_CONDITION = "PodsHeldBack"


def _show_held_back(job: dict[str, Any], reason: dict[str, Any] | None) -> None:
    """Where a client looks for why a job does not run: a condition in its status (the Job controller only
    writes an event, which the original API never showed)."""
    if reason is None:
        return
    status = job.setdefault("status", {})
    status.setdefault("conditions", []).append({
        "type": HELD_BACK_CONDITION, "status": "True", "reason": reason["reason"], "message": reason["message"],
        "lastProbeTime": reason["since"], "lastTransitionTime": reason["since"]})


def _match_labels(job: dict[str, Any]) -> dict[str, str]:
    return ((job.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}


def _selected(job: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods the Job's selector matches, oldest first."""
    wanted = _match_labels(job).items()
    chosen = [pod for pod in pods
              if wanted and all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in wanted)]
    chosen.sort(key=lambda pod: (pod["metadata"].get("creationTimestamp") or "", pod["metadata"]["name"]))
    return chosen


def _pods_of(kube: Kube, job: dict[str, Any]) -> list[dict[str, Any]]:
    selector = ",".join(f"{key}={value}" for key, value in sorted(_match_labels(job).items()))
    if not selector:
        return []
    return _selected(job, kube.list_pods(job["metadata"]["namespace"], selector).get("items") or [])


def create_job(kube: Kube, walls: TenantWalls, tenant: Tenant, name: str, spec: dict[str, Any],
               settings: Settings) -> dict[str, Any]:
    """Create the Job in the tenant's namespace, which is made theirs and walled first (see ``tenancy``)."""
    manifest = build_job(spec, name=name, namespace=tenant.namespace, username=tenant.username,
                         host_volume_root=settings.host_volume_root, scheduling=pod_scheduling(settings),
                         queue=LOCAL_QUEUE if settings.queue else None)
    try:
        walls.ensure(kube, tenant)
        try:
            created = _create(kube, tenant, manifest)
        except errors.NotFound:  # the namespace was deleted since it was checked
            walls.forget(tenant)
            walls.ensure(kube, tenant)
            created = _create(kube, tenant, manifest)
    except errors.Conflict:
        raise errors.Conflict(f"job {name!r} already exists") from None
    cache = cache_of(kube)
    if cache is not None:
        cache.created(created)  # read-your-writes: no worker's cache answers before it holds this Job
    return {"job": _with_self_link(created)}


_CONFLICT_ATTEMPTS = 3


def _create(kube: Kube, tenant: Tenant, manifest: dict[str, Any]) -> dict[str, Any]:
    """POST the Job. A 409 that is not "already exists" is the ResourceQuota's admission losing a race on its
    own usage ("Operation cannot be fulfilled on resourcequotas ...: the object has been modified"): nothing was
    created, so the create is tried again, then answered 503."""
    for attempt in range(_CONFLICT_ATTEMPTS):
        try:
            return kube.create_job(tenant.namespace, manifest)
        except errors.Conflict as exc:
            if "already exists" in (exc.description or ""):
                raise
    raise errors.Unavailable("the cluster was busy updating the namespace's quota; try again",
                             headers={"Retry-After": "1"})


def delete_job(kube: Kube, tenant: Tenant, name: str) -> dict[str, str]:
    try:
        kube.delete_job(tenant.namespace, name)
    except errors.NotFound:
        raise errors.NotFound(f"job {name!r} not found") from None
    cache = cache_of(kube)
    if cache is not None:
        cache.deleted(tenant.namespace, name)  # and no worker's cache answers before it has seen it go
    return {"jobName": name}


def instances(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str) -> dict[str, Any]:
    """Each instance's story: live pods as they are now, and archived records of pods already gone."""
    by_name = {record["name"]: record for record in archive.instances(tenant.archive, job_name)}
    reason = None
    cache = _memory(kube)
    cached = cache.job(tenant.namespace, job_name) if cache is not None else None
    if cache is not None and cached is not None:
        pods = cache.pods_of(cached)
        for pod in pods:
            by_name[pod.name] = orjson.loads(pod.record)
        if sum(pod.live for pod in pods) < cached.wanted:
            reason = held_back(kube, orjson.loads(cached.body), _phases(pods))
        return _instances_body(by_name, reason)
    try:
        job = kube.get_job(tenant.namespace, job_name)
    except errors.NotFound:
        if not by_name:
            raise errors.NotFound(f"job {job_name!r} not found") from None
    else:
        pods = _pods_of(kube, job)
        for pod in pods:
            by_name[pod["metadata"]["name"]] = instance_record(pod)
        reason = held_back(kube, job, pods)
    return _instances_body(by_name, reason)


def _instances_body(by_name: dict[str, dict[str, Any]], reason: dict[str, Any] | None) -> dict[str, Any]:
    ordered = sorted(by_name.values(), key=lambda r: (r.get("created") or "", r["name"]))
    # held_back: why the Job has fewer instances than it asks for (an exceeded quota, ...), while that lasts
    return {"instances": ordered, **({"held_back": reason} if reason else {})}
