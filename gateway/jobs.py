"""What each call of the Jobs API does, in terms of Kubernetes: one user's namespace, one region's ``Kube``."""
from __future__ import annotations

import contextlib
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, Iterator

import orjson

from . import errors, joblist, logs, queueing, timefmt
from .cache import RegionCache, cache_of
from .cache.entries import PodEntry, get_body, list_chunks
from .store import ContainerKey, LogStore
from .store.base import DayClock
from .store.lines import parse_stamped, since_time, unseen
from .store.records import instance_record
from .config import Settings
from .kube import Kube, LogNotAvailable
from .manifest import build_job
from .names import LOCAL_QUEUE, POD_JOB_NAME_LABELS
from .schemas import LOG_MAX_OFFSET
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
    """The region's watch cache if it may answer now (see gateway/cache/region.py), else None: ask the apiserver."""
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


def instance_log(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, instance: str,
                 query: dict[str, Any], settings: Settings) -> logs.Page:
    """Lines ``[from, from+size)`` of one instance's log, of one day if ``date`` is given: from the pod while it
    exists, from the archive once it is gone. At most ``log_max_bytes`` of text: a bigger page is cut short."""
    try:
        pod = _instance_of(kube, tenant, job_name, instance)
    except errors.NotFound:
        if not archive.known_instance(tenant.archive, job_name, instance):
            raise
    else:
        try:
            return _live_log(kube, tenant, pod, query, settings, archive, job_name)
        except errors.NotFound:  # the pod went since it was looked up: its lines are in the archive
            if not archive.known_instance(tenant.archive, job_name, instance):
                raise
    return _archived_log(archive, tenant, job_name, instance, query, settings.log_max_bytes)


def _stamped(query: dict[str, Any]) -> bool:
    """``since`` or ``timestamps=true``: the page is read with each line's stamp (logs.stamped_page)."""
    return query.get("since") is not None or bool(query.get("timestamps"))


def _reach(query: dict[str, Any]) -> int:
    """How far a stamped read may go from ``from``: the page, or with ``since`` on to the log's end (it moves on
    until a line is recent enough, and only a page of lines is kept)."""
    return query["size"] if query["since"] is None else LOG_MAX_OFFSET - query["offset"]


def _archived_log(archive: LogStore, tenant: Tenant, job_name: str, instance: str, query: dict[str, Any],
                  cap: int) -> logs.Page:
    """A gone pod's page, from the archive; the container the live path reads is the first in the pod spec, which
    carries the job's name. Reading stops at the byte cap."""
    if query["size"] == 0:
        return logs.Page([])
    if _stamped(query):
        with contextlib.closing(archive.iter_read_stamped(tenant.archive, instance, job_name, day=query["date"],
                                                          offset=query["offset"], size=_reach(query))) as rows:
            return logs.stamped_page(((ts, "", text) for ts, text in rows), query["offset"], query["size"],
                                     query["since"], query["timestamps"], cap)
    with contextlib.closing(archive.iter_read(tenant.archive, instance, job_name, day=query["date"],
                                              offset=query["offset"], size=query["size"])) as lines:
        return logs.capped(lines, cap)


def _live_log(kube: Kube, tenant: Tenant, pod: dict[str, Any], query: dict[str, Any],
              settings: Settings, archive: LogStore | None = None, job_name: str = "") -> logs.Page:
    instance = pod["metadata"]["name"]
    container = pod["spec"]["containers"][0]["name"]
    offset, size, day = query["offset"], query["size"], query["date"]
    cap = settings.log_max_bytes
    if size == 0:
        return logs.Page([])
    try:
        if _stamped(query):
            return _stamped_live_page(kube, tenant, instance, container, query, settings)
        archived = None
        if archive is not None and _never_restarted(pod, container):
            archived = archived_page(kube, archive, tenant, ContainerKey(tenant.archive, job_name, instance, container),
                                     offset, size, day, settings)
        if archived is not None:
            return archived
        if day is None:
            return _plain_page(kube, tenant.namespace, instance, container, offset, size, cap)
        start, end = logs.day_bounds(day, settings.log_timezone)
        since = timefmt.rfc3339(start)
        with kube.pod_log(tenant.namespace, instance, container=container, timestamps=True,
                          since_time=since) as chunks:
            return logs.page_capped(logs.within(logs.iter_lines(chunks, cap), start, end), offset, size, cap)
    except LogNotAvailable:
        return logs.Page([])


def _stamped_live_page(kube: Kube, tenant: Tenant, instance: str, container: str, query: dict[str, Any],
                       settings: Settings) -> logs.Page:
    """``since`` or ``timestamps`` on a live pod: its timestamped log, numbered exactly as the plain read's (a
    line each; of ``date``'s day from the day's first). The archive splice (``archived_page``) is not used here."""
    offset, day, cap = query["offset"], query["date"], settings.log_max_bytes
    bounds = logs.day_bounds(day, settings.log_timezone) if day is not None else None
    with kube.pod_log(tenant.namespace, instance, container=container, timestamps=True,
                      since_time=timefmt.rfc3339(bounds[0]) if bounds else None) as chunks:
        if bounds is None:
            rows = ((line.ts_ns, "", line.text) for line in
                    parse_stamped(logs.iter_lines(logs.skip_lines(chunks, offset), cap)))
        else:
            stamped = ((line.ts_ns, "", line.text) for line in parse_stamped(logs.iter_lines(chunks, cap)))
            rows = islice(logs.stamped_within(stamped, *bounds), offset, None)
        return logs.stamped_page(rows, offset, query["size"], query["since"], query["timestamps"], cap)


def _never_restarted(pod: dict[str, Any], container: str) -> bool:
    """The live log then holds the container's whole log, as the archive does (which keeps every attempt's)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return not status.get("restartCount") and not status.get("lastState")
    return False  # not started: nothing to page anyway


def archived_page(kube: Kube, archive: LogStore, tenant: Tenant, key: ContainerKey, offset: int, size: int,
                  day: dt.date | None, settings: Settings) -> logs.Page | None:
    """A running container's page read from the archive up to the collector's watermark (its resume point), by
    index, and only the lines after it from the pod (``sinceTime`` the last archived stamp, the archived lines at
    that stamp dropped, exactly as the collector resumes). A page of a day: only a day the archive holds whole
    (before the day of its last line). None when the archive cannot answer: read the pod as before."""
    point = archive.resume_point(key)
    if point.last_ts_ns is None or point.attempt not in (None, 0):
        return None
    cap = settings.log_max_bytes
    if day is not None:
        if day >= DayClock(settings.log_timezone).day(point.last_ts_ns):
            return None
        held = _archived_lines(archive, key, cap, day=day, offset=offset, size=size)
        return None if held is None else logs.capped(held, cap)
    watermark = point.next_seq
    held = []
    if offset < watermark:
        wanted = min(size, watermark - offset)
        held = _archived_lines(archive, key, cap, offset=offset, size=wanted)
        if held is None or (len(held) < wanted and sum(map(len, held)) <= cap):
            # short of the watermark below the byte cap: a store whose searches trail the resume point it reads
            # by id (OpenSearch until its next refresh) has not shown every line yet; the pod has them all
            return None

    def lines() -> Iterator[str]:
        yield from held
        if offset + size > watermark:
            with kube.pod_log(tenant.namespace, key.instance, container=key.container, timestamps=True,
                              since_time=since_time(point)) as chunks:
                fresh = unseen(parse_stamped(logs.iter_lines(chunks, cap)), point)
                for index, line in enumerate(fresh):
                    if index >= offset - watermark:
                        yield line.text

    with contextlib.closing(lines()) as page:
        return logs.page_capped(page, 0, size, cap)


# Container runtimes store a line longer than this in partial entries (containerd: 16 KiB), and a timestamped read
# (the collector's, so the archive's) carries each entry's own timestamp inside the line; the plain live read is
# exact. A page holding such a line is read from the pod.
PARTIAL_LINE_BYTES = 8 * 1024


def _archived_lines(archive: LogStore, key: ContainerKey, cap: int, **page: Any) -> list[str] | None:
    """A page's archived lines, up to ``cap`` bytes of text (the page ends there anyway); None if one of them may
    hold a runtime's inner timestamps."""
    held, total = [], 0
    with contextlib.closing(archive.iter_read(key.namespace, key.instance, key.container, **page)) as rows:
        for text in rows:
            if len(text) * 4 >= PARTIAL_LINE_BYTES and len(text.encode("utf-8", "replace")) >= PARTIAL_LINE_BYTES:
                return None
            held.append(text)
            total += len(text)
            if total > cap:
                break
    return held


_WINDOW_BYTES_PER_LINE = 256  # an early page is first looked for in the log's first 256 bytes per line wanted
_MAX_WINDOW = 1024 * 1024


def _plain_page(kube: Kube, namespace: str, instance: str, container: str, offset: int, size: int,
                cap: int) -> logs.Page:
    """Lines [offset, offset+size) of the whole log. An early page is first read from a window of the log's
    start (``limitBytes``): that answer ends by itself, so the apiserver connection is kept (no TLS handshake on
    the next call); only if the window is too short is the log streamed."""
    limit = max(16 * 1024, (offset + size) * _WINDOW_BYTES_PER_LINE)
    if limit <= _MAX_WINDOW:
        with kube.pod_log(namespace, instance, container=container, limit_bytes=limit) as chunks:
            window = b"".join(chunks)
        if len(window) < limit or window.count(b"\n") >= offset + size:
            if len(window) >= limit:
                window = window[: window.rfind(b"\n") + 1]  # the window may end inside a line
            return logs.page_capped(logs.iter_lines(logs.skip_lines([window], offset), cap), 0, size, cap)
    with kube.pod_log(namespace, instance, container=container) as chunks:
        return logs.page_capped(logs.iter_lines(logs.skip_lines(chunks, offset), cap), 0, size, cap)


def job_log(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, query: dict[str, Any],
            max_bytes: int) -> logs.Page:
    """Every instance's lines in time order, each prefixed by ``[instance]``; read from the archive, which the
    collector fills within a second or two of the lines being written. At most ``max_bytes`` of text; the page
    walks an index from a keyset cursor and stops reading at the cap."""
    if not query["size"]:
        _require_job_somewhere(kube, archive, tenant, job_name)
        return logs.Page([])
    if _stamped(query):
        with contextlib.closing(archive.iter_read_job_stamped(tenant.archive, job_name, day=query["date"],
                                                              offset=query["offset"], size=_reach(query))) as rows:
            page = logs.stamped_page(((ts, f"[{instance}] ", text) for instance, ts, text in rows),
                                     query["offset"], query["size"], query["since"], query["timestamps"], max_bytes)
    else:
        with contextlib.closing(archive.iter_read_job(tenant.archive, job_name, day=query["date"],
                                                      offset=query["offset"], size=query["size"])) as rows:
            page = logs.capped((f"[{instance}] {text}" for instance, text in rows), max_bytes)
    if not page.lines:
        _require_job_somewhere(kube, archive, tenant, job_name)
    return page


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


def _require_job_somewhere(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str) -> None:
    if archive.instances(tenant.archive, job_name):
        return
    try:
        kube.get_job(tenant.namespace, job_name)
    except errors.NotFound:
        raise errors.NotFound(f"job {job_name!r} not found") from None


def _instance_of(kube: Kube, tenant: Tenant, job_name: str, instance: str) -> dict[str, Any]:
    not_found = errors.NotFound(f"instance {instance!r} of job {job_name!r} not found")
    cache = _memory(kube)
    cached = cache.pod(tenant.namespace, instance) if cache is not None else None
    if cached is not None:
        if not any(cached.labels.get(key) == job_name for key in POD_JOB_NAME_LABELS):
            raise not_found
        return cached.as_pod()
    try:
        pod = kube.get_pod(tenant.namespace, instance)
    except errors.NotFound:
        raise not_found from None
    labels = pod["metadata"].get("labels") or {}
    if not any(labels.get(key) == job_name for key in POD_JOB_NAME_LABELS):
        raise not_found
    return pod
