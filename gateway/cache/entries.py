"""What the watch cache keeps of each Job and pod, and the API's bodies spliced from it. Pure: no I/O.

A Job is kept as the bytes the API sends for it (the apiserver's JSON with ``metadata.selfLink`` added) plus the
few fields a read decides on; a pod as the fields that pick it (labels), order it, page its log (first container)
and its instance record, already serialised. The rest of either object is dropped as soon as it is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import orjson

from ..names import QUEUE_LABEL
from ..store.records import instance_record

_TERMINAL = ("Succeeded", "Failed")


def self_link(namespace: str, name: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"


@dataclass(frozen=True, slots=True)
class JobEntry:
    namespace: str
    name: str
    resource_version: str
    body: bytes  # the Job as the API sends it: the apiserver's JSON, selfLink included
    selector: tuple[tuple[str, str], ...]  # spec.selector.matchLabels
    # pods the Job wants running now (0 when finished or suspended): fewer live pods than this sends a read to
    # the apiserver's events for why (tenancy.held_back)
    wanted: int
    # the LocalQueue it waits or waited in (kueue.x-k8s.io/queue-name), "" for none: a read then says where it
    # stands (gateway/queueing.py), which the kept bytes cannot
    queue: str = ""


@dataclass(frozen=True, slots=True)
class PodEntry:
    namespace: str
    name: str
    resource_version: str
    labels: dict[str, str]
    created: str
    phase: str
    container: str  # the first container of the spec: the one the logs call reads
    restarts: int  # that container's restartCount, 0 if it has not started (see jobs.archived_page)
    record: bytes  # store.records.instance_record(pod), as JSON

    def selected_by(self, selector: tuple[tuple[str, str], ...]) -> bool:
        return bool(selector) and all(self.labels.get(key) == value for key, value in selector)

    @property
    def live(self) -> bool:
        return self.phase not in _TERMINAL

    def as_pod(self) -> dict[str, Any]:
        """The little of the pod the logs call reads (see jobs._live_log)."""
        return {"metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
                "spec": {"containers": [{"name": self.container}]},
                "status": {"containerStatuses": [{"name": self.container, "restartCount": self.restarts}]}}


def job_entry(job: dict[str, Any]) -> JobEntry:
    metadata = job.get("metadata") or {}
    namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
    job = {**job, "metadata": _linked(metadata, self_link(namespace, name))}  # the input is left as it was
    spec, status = job.get("spec") or {}, job.get("status") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    return JobEntry(namespace, name, metadata.get("resourceVersion", ""), _compact(orjson.dumps(job)),
                    tuple(sorted(labels.items())), _wanted(spec, status),
                    (metadata.get("labels") or {}).get(QUEUE_LABEL, ""))


def _compact(data: bytes) -> bytes:
    """A copy of exactly its size: orjson's bytes keep their growing buffer's spare room (about as much again)."""
    return bytes(memoryview(data))


def _linked(metadata: dict[str, Any], link: str) -> dict[str, Any]:
    """``metadata`` with ``selfLink`` right after ``namespace``, where Go writes it (and joblist puts it)."""
    linked: dict[str, Any] = {}
    for key, value in metadata.items():
        if key != "selfLink":
            linked[key] = value
        if key == "namespace":
            linked["selfLink"] = link
    linked.setdefault("selfLink", link)
    return linked


def _wanted(spec: dict[str, Any], status: dict[str, Any]) -> int:
    """As tenancy.held_back counts it."""
    finished = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in status.get("conditions") or [])
    if finished or spec.get("suspend"):
        return 0
    parallelism = 1 if spec.get("parallelism") is None else spec["parallelism"]
    remaining = max((spec.get("completions") or 1) - (status.get("succeeded") or 0), 0)
    return min(parallelism, remaining)


def pod_entry(pod: dict[str, Any]) -> PodEntry:
    metadata = pod.get("metadata") or {}
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    first = containers[0].get("name", "")
    status = pod.get("status") or {}
    restarts = next((s.get("restartCount", 0) + (1 if s.get("lastState") else 0)
                     for s in status.get("containerStatuses") or [] if s.get("name") == first), 0)
    return PodEntry(metadata.get("namespace", ""), metadata.get("name", ""), metadata.get("resourceVersion", ""),
                    dict(metadata.get("labels") or {}), metadata.get("creationTimestamp") or "",
                    status.get("phase", "Pending"), first, restarts, _compact(orjson.dumps(instance_record(pod))))


def ordered(pods: Iterable[PodEntry]) -> list[PodEntry]:
    """Oldest first, as the pass-through get orders them."""
    return sorted(pods, key=lambda pod: (pod.created, pod.name))


def get_body(job: JobEntry, pods: list[PodEntry]) -> bytes:
    """``{"instance_names": [...], <Job>...}`` spliced from the kept bytes, no parse."""
    names = orjson.dumps([pod.name for pod in pods])
    return b'{"instance_names":' + names + (b"," + job.body[1:] if len(job.body) > 2 else b"}")


_CHUNK = 64 * 1024


def list_chunks(jobs: list[JobEntry], max_jobs: int) -> Iterator[bytes]:
    """``{"jobs": [...]}`` in chunks of about 64 KiB, by name, at most ``max_jobs`` (then ``"truncated": true``
    first, as the pass-through list writes it)."""
    jobs = sorted(jobs, key=lambda job: job.name)
    truncated = len(jobs) > max_jobs
    yield b'{"truncated":true,"jobs":[' if truncated else b'{"jobs":['
    parts: list[bytes] = []
    size = 0
    for index, job in enumerate(jobs[:max_jobs]):
        if index:
            parts.append(b",")
        parts.append(job.body)
        size += len(job.body)
        if size >= _CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    parts.append(b"]}")
    yield b"".join(parts)
