"""A pod -> its instance record: what happened to it and why, kept in the archive after the pod is gone."""
from __future__ import annotations

from typing import Any

from ..names import POD_JOB_NAME_LABELS

TERMINAL_PHASES = ("Succeeded", "Failed")


def job_of(pod: dict[str, Any]) -> str | None:
    labels = pod["metadata"].get("labels") or {}
    for key in POD_JOB_NAME_LABELS:
        if labels.get(key):
            return labels[key]
    return None


def _state(state: dict[str, Any] | None) -> dict[str, Any]:
    """``{"running": {...}}`` -> ``{"state": "running", ...}`` with exit code, reason and message where known."""
    if not state:
        return {"state": "unknown"}
    (kind, detail), = state.items()
    result: dict[str, Any] = {"state": kind}
    for source, target in (("exitCode", "exit_code"), ("signal", "signal"), ("reason", "reason"),
                           ("message", "message"), ("startedAt", "started"), ("finishedAt", "finished")):
        if (detail or {}).get(source) is not None:
            result[target] = detail[source]
    return result


def _container(status: dict[str, Any]) -> dict[str, Any]:
    record = {"name": status["name"], **_state(status.get("state")),
              "restart_count": status.get("restartCount", 0)}
    if status.get("lastState"):
        record["last_state"] = _state(status["lastState"])
    return record


def _scheduling(pod: dict[str, Any]) -> dict[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return {"reason": condition.get("reason", ""), "message": condition.get("message", "")}
    return None


def instance_record(pod: dict[str, Any]) -> dict[str, Any]:
    status = pod.get("status") or {}
    metadata = pod["metadata"]
    containers = [_container(c) for c in status.get("containerStatuses") or []]
    declared = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    reported = {c["name"] for c in containers}
    containers += [{"name": name, "state": "waiting", "reason": "NotStarted", "restart_count": 0}
                   for name in declared if name not in reported]
    phase = status.get("phase", "Pending")
    finished = None
    if phase in TERMINAL_PHASES:
        stamps = [c.get("finished") for c in containers if c.get("finished")]
        finished = max(stamps) if stamps else metadata.get("deletionTimestamp") or status.get("startTime")
    record: dict[str, Any] = {
        "name": metadata["name"],
        "uid": metadata.get("uid"),
        "job": job_of(pod),
        "created": metadata.get("creationTimestamp"),
        "phase": phase,
        "node": (pod.get("spec") or {}).get("nodeName"),
        "started": status.get("startTime"),
        "finished": finished,
        "restart_count": sum(c.get("restart_count", 0) for c in containers),
        "containers": containers,
    }
    if status.get("reason") or status.get("message"):
        record["reason"], record["message"] = status.get("reason", ""), status.get("message", "")
    scheduling = _scheduling(pod)
    if scheduling:
        record["scheduling"] = scheduling
    return record
