"""What each call of the Jobs API does, in terms of Kubernetes: one user's namespace, one region's ``Kube``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from . import errors, logs
from .archive import LogStore
from .archive.records import instance_record
from .config import Settings
from .kube import Kube, LogNotAvailable
from .manifest import build_job
from .names import MANAGED_BY, MANAGED_BY_LABEL, POD_JOB_NAME_LABELS, USERNAME_ANNOTATION


@dataclass(frozen=True)
class Tenant:
    username: str
    namespace: str
    # the namespace's name in the log archive, which is shared by all regions (see archive_namespace)
    archived_as: str = ""

    @property
    def archive(self) -> str:
        return self.archived_as or self.namespace


def archive_namespace(region: str, namespace: str, default_region: str) -> str:
    """Namespaces of the first region keep their name in the archive; others are qualified by region, since two
    clusters can hold namespaces of the same name."""
    return namespace if region == default_region else f"{region}:{namespace}"


def self_link(namespace: str, name: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"


def _with_self_link(job: dict[str, Any]) -> dict[str, Any]:
    """Current Kubernetes no longer fills selfLink; the original's clients may still read it."""
    metadata = job.setdefault("metadata", {})
    metadata["selfLink"] = self_link(metadata.get("namespace", ""), metadata.get("name", ""))
    return job


def list_jobs(kube: Kube, tenant: Tenant) -> dict[str, Any]:
    job_list = orjson.loads(kube.list_jobs_raw(tenant.namespace))
    return {"jobs": [_with_self_link(job) for job in job_list.get("items") or []]}


def get_job(kube: Kube, tenant: Tenant, name: str) -> dict[str, Any]:
    job = kube.get_job(tenant.namespace, name)
    return {"instance_names": instance_names(kube, job), **_with_self_link(job)}


def instance_names(kube: Kube, job: dict[str, Any]) -> list[str]:
    """The Job's pods, oldest first, found by the Job's own selector (its controller-uid), so pods of an
    earlier job of the same name never show up."""
    return [pod["metadata"]["name"] for pod in _pods_of(kube, job)]


def _pods_of(kube: Kube, job: dict[str, Any]) -> list[dict[str, Any]]:
    match_labels = ((job.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not match_labels:
        return []
    selector = ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))
    pods = kube.list_pods(job["metadata"]["namespace"], selector).get("items") or []
    pods.sort(key=lambda pod: (pod["metadata"].get("creationTimestamp") or "", pod["metadata"]["name"]))
    return pods


def create_job(kube: Kube, tenant: Tenant, name: str, spec: dict[str, Any], settings: Settings) -> dict[str, Any]:
    manifest = build_job(spec, name=name, namespace=tenant.namespace, username=tenant.username,
                         host_volume_root=settings.host_volume_root)
    try:
        try:
            created = kube.create_job(tenant.namespace, manifest)
        except errors.NotFound:  # the user's first job: their namespace does not exist yet
            kube.create_namespace(_namespace_manifest(tenant))
            created = kube.create_job(tenant.namespace, manifest)
    except errors.Conflict:
        raise errors.Conflict(f"job {name!r} already exists") from None
    return {"job": _with_self_link(created)}


def _namespace_manifest(tenant: Tenant) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": tenant.namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {USERNAME_ANNOTATION: tenant.username},
    }}


def delete_job(kube: Kube, tenant: Tenant, name: str) -> dict[str, str]:
    try:
        kube.delete_job(tenant.namespace, name)
    except errors.NotFound:
        raise errors.NotFound(f"job {name!r} not found") from None
    return {"jobName": name}


def instance_log(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, instance: str,
                 query: dict[str, Any], settings: Settings) -> list[str]:
    """Lines ``[from, from+size)`` of one instance's log, of one day if ``date`` is given: from the pod while it
    exists, from the archive once it is gone."""
    try:
        pod = _instance_of(kube, tenant, job_name, instance)
    except errors.NotFound:
        if not archive.known_instance(tenant.archive, job_name, instance):
            raise
        containers = archive.containers(tenant.archive, instance)
        if not containers or query["size"] == 0:
            return []
        return archive.read(tenant.archive, instance, containers[0], day=query["date"],
                            offset=query["offset"], size=query["size"])
    return _live_log(kube, tenant, pod, query, settings)


def _live_log(kube: Kube, tenant: Tenant, pod: dict[str, Any], query: dict[str, Any],
              settings: Settings) -> list[str]:
    instance = pod["metadata"]["name"]
    container = pod["spec"]["containers"][0]["name"]
    offset, size, day = query["offset"], query["size"], query["date"]
    if size == 0:
        return []
    try:
        if day is None:
            with kube.pod_log(tenant.namespace, instance, container=container) as chunks:
                return logs.page(logs.iter_lines(chunks), offset, size)
        start, end = logs.day_bounds(day, settings.log_timezone)
        since = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        with kube.pod_log(tenant.namespace, instance, container=container, timestamps=True,
                          since_time=since) as chunks:
            return logs.page(logs.within(logs.iter_lines(chunks), start, end), offset, size)
    except LogNotAvailable:
        return []


def job_log(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, query: dict[str, Any]) -> list[str]:
    """Every instance's lines in time order, each prefixed by ``[instance]``; read from the archive, which the
    collector fills within a second or two of the lines being written."""
    rows = archive.read_job(tenant.archive, job_name, day=query["date"], offset=query["offset"],
                            size=query["size"]) if query["size"] else []
    if not rows:
        _require_job_somewhere(kube, archive, tenant, job_name)
    return [f"[{instance}] {text}" for instance, text in rows]


def instances(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str) -> dict[str, Any]:
    """Each instance's story: live pods as they are now, and archived records of pods already gone."""
    by_name = {record["name"]: record for record in archive.instances(tenant.archive, job_name)}
    try:
        job = kube.get_job(tenant.namespace, job_name)
    except errors.NotFound:
        if not by_name:
            raise errors.NotFound(f"job {job_name!r} not found") from None
    else:
        for pod in _pods_of(kube, job):
            by_name[pod["metadata"]["name"]] = instance_record(pod)
    ordered = sorted(by_name.values(), key=lambda r: (r.get("created") or "", r["name"]))
    return {"instances": ordered}


def _require_job_somewhere(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str) -> None:
    if archive.instances(tenant.archive, job_name):
        return
    try:
        kube.get_job(tenant.namespace, job_name)
    except errors.NotFound:
        raise errors.NotFound(f"job {job_name!r} not found") from None


def _instance_of(kube: Kube, tenant: Tenant, job_name: str, instance: str) -> dict[str, Any]:
    not_found = errors.NotFound(f"instance {instance!r} of job {job_name!r} not found")
    try:
        pod = kube.get_pod(tenant.namespace, instance)
    except errors.NotFound:
        raise not_found from None
    labels = pod["metadata"].get("labels") or {}
    if not any(labels.get(key) == job_name for key in POD_JOB_NAME_LABELS):
        raise not_found
    return pod
