"""What each call of the Jobs API does, in terms of Kubernetes: one user's namespace, one region's ``Kube``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from . import errors, logs
from .config import Settings
from .kube import Kube, LogNotAvailable
from .manifest import build_job
from .names import MANAGED_BY, MANAGED_BY_LABEL, POD_JOB_NAME_LABELS, USERNAME_ANNOTATION


@dataclass(frozen=True)
class Tenant:
    username: str
    namespace: str


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
    match_labels = ((job.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not match_labels:
        return []
    selector = ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))
    pods = kube.list_pods(job["metadata"]["namespace"], selector).get("items") or []
    pods.sort(key=lambda pod: (pod["metadata"].get("creationTimestamp") or "", pod["metadata"]["name"]))
    return [pod["metadata"]["name"] for pod in pods]


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


def instance_log(kube: Kube, tenant: Tenant, job_name: str, instance: str, query: dict[str, Any],
                 settings: Settings) -> list[str]:
    """Lines ``[from, from+size)`` of one instance's log, of one day if ``date`` is given."""
    pod = _instance_of(kube, tenant, job_name, instance)
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
