"""Which instance (pod) a logs call reads, and whether the job it names exists at all: from the region's watch
cache when it may answer, else from the apiserver (which alone says a pod is gone); the archive remembers the
instances and jobs whose pods are gone."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .. import errors
from ..kube.cache import cache_of
from ..kube.client import Kube
from ..names import POD_JOB_NAME_LABELS
from ..store import LogStore
from ..jobs.tenancy import Tenant


def container_of(job_name: str) -> str:
    """The container the logs calls read: the first of the pod spec, which carries the job's name (the archive is
    read by it once the pod is gone)."""
    return job_name


@dataclass(frozen=True)
class Instance:
    """A live pod of the job, as the logs calls need it."""
    name: str
    uid: str | None
    container: str
    phase: str | None
    end: dict[str, Any]  # the ``end`` event's data (exit code, reason, phase) as of now


def live_instance(kube: Kube, tenant: Tenant, job_name: str, instance: str) -> Instance | None:
    """The instance's pod if it exists and belongs to the job, else None (500 followers opening at once are not
    500 apiserver GETs: the cache answers when it may)."""
    cache = cache_of(kube)
    entry = cache.pod(tenant.namespace, instance) if cache is not None and cache.usable() else None
    if entry is not None:
        if not any(entry.labels.get(key) == job_name for key in POD_JOB_NAME_LABELS):
            return None
        record = orjson.loads(entry.record)
        return Instance(entry.name, record.get("uid"), entry.container, entry.phase,
                        {**record_end(entry.name, record, entry.container), "phase": entry.phase})
    try:
        pod = kube.get_pod(tenant.namespace, instance)
    except errors.NotFound:
        return None
    labels = pod["metadata"].get("labels") or {}
    if not any(labels.get(key) == job_name for key in POD_JOB_NAME_LABELS):
        return None
    return Instance(pod["metadata"]["name"], pod["metadata"].get("uid"), pod["spec"]["containers"][0]["name"],
                    (pod.get("status") or {}).get("phase"), pod_end(pod))


def require_instance(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, instance: str) -> Instance | None:
    """The live instance, or None when only the archive remembers it; 404 when neither knows it."""
    live = live_instance(kube, tenant, job_name, instance)
    if live is None and not archive.known_instance(tenant.archive, job_name, instance):
        raise errors.NotFound(f"instance {instance!r} of job {job_name!r} not found")
    return live


def require_job(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str) -> None:
    """404 unless the job exists in the cluster or the archive remembers one of its instances."""
    if archive.instances(tenant.archive, job_name):
        return
    try:
        kube.get_job(tenant.namespace, job_name)
    except errors.NotFound:
        raise errors.NotFound(f"job {job_name!r} not found") from None


def pod_end(pod: dict[str, Any]) -> dict[str, Any]:
    """The ``end`` event's data for a pod: its first container's last termination."""
    first = pod["spec"]["containers"][0]["name"]
    status = next((s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s.get("name") == first), {})
    terminated = (status.get("state") or {}).get("terminated") or (status.get("lastState") or {}).get("terminated")
    return {"instance": pod["metadata"]["name"], "exit_code": (terminated or {}).get("exitCode"),
            "reason": (terminated or {}).get("reason"), "phase": (pod.get("status") or {}).get("phase")}


def record_end(instance: str, record: dict[str, Any] | None, container: str | None = None) -> dict[str, Any]:
    """The ``end`` event's data from an instance record (store.records): its ``container`` (the first listed if
    not named), the last termination."""
    record = record or {}
    containers = record.get("containers") or [{}]
    first = next((c for c in containers if c.get("name") == container), containers[0]) if container else containers[0]
    terminated = first if first.get("state") == "terminated" else first.get("last_state") or {}
    return {"instance": instance, "exit_code": terminated.get("exit_code"), "reason": terminated.get("reason"),
            "phase": record.get("phase")}


def archived_record(archive: LogStore, tenant: Tenant, job_name: str, instance: str) -> dict[str, Any] | None:
    return next((r for r in archive.instances(tenant.archive, job_name) if r.get("name") == instance), None)
