"""What a Job object and its instance records say, in the words the command line shows (pure)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

PENDING, RUNNING, SUCCEEDED, FAILED, DELETED = "pending", "running", "succeeded", "failed", "deleted"
QUEUED = "queued"  # waiting its turn in a Kueue queue (the gateway's GATEWAY_QUEUE=kueue)
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
TERMINAL = (SUCCEEDED, FAILED, DELETED)


def _true(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def job_status(job: dict[str, Any]) -> str:
    """queued | pending | running | succeeded | failed, from the Job's conditions (Complete/Failed), its queue
    label with suspend (Kueue has not admitted it yet) and active pods."""
    if _true(job, "Complete"):
        return SUCCEEDED
    if _true(job, "Failed"):
        return FAILED
    if (job.get("spec") or {}).get("suspend") and QUEUE_LABEL in ((job.get("metadata") or {}).get("labels") or {}):
        return QUEUED
    if ((job.get("status") or {}).get("active") or 0) > 0:
        return RUNNING
    return PENDING


def completions(job: dict[str, Any]) -> str:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    wanted = spec.get("completions")
    return f"{status.get('succeeded') or 0}/{wanted if wanted is not None else 1}"


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float | None) -> str:
    """kubectl's short form: 45s, 3m12s, 2h5m, 3d4h."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def age(job: dict[str, Any], now: dt.datetime) -> str:
    created = parse_time((job.get("metadata") or {}).get("creationTimestamp"))
    return human_duration((now - created).total_seconds()) if created else "-"


def finished(job: dict[str, Any]) -> str | None:
    """When the job ended: its completionTime, or for a failed job its Failed condition's time."""
    failed = _true(job, "Failed")
    return (job.get("status") or {}).get("completionTime") or (failed or {}).get("lastTransitionTime")


def duration(job: dict[str, Any], now: dt.datetime) -> str:
    """From start to completion (or to now while it runs); a failed job to its Failed condition's time."""
    status = job.get("status") or {}
    start = parse_time(status.get("startTime"))
    if start is None:
        return "-"
    end = parse_time(status.get("completionTime"))
    failed = _true(job, "Failed")
    if end is None and failed:
        end = parse_time(failed.get("lastTransitionTime"))
    if end is None and job_status(job) in TERMINAL:
        return "-"
    return human_duration(((end or now) - start).total_seconds())


def images(job: dict[str, Any]) -> list[str]:
    pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c.get("image", "") for c in pod.get("containers") or []]


def command(job: dict[str, Any]) -> str:
    pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or [{}]
    return " ".join([*(containers[0].get("command") or []), *(containers[0].get("args") or [])])


def held_back(job: dict[str, Any]) -> str | None:
    """Why the job has fewer pods than it wants (the gateway's PodsHeldBack condition), if it says so."""
    condition = _true(job, "PodsHeldBack")
    return condition.get("message") or condition.get("reason") if condition else None


def queue_place(job: dict[str, Any]) -> str | None:
    """Where the job stands in its queue (the gateway's ``queue`` object): its place and why it waits, or when it
    was admitted."""
    queue = job.get("queue")
    if not queue:
        return None
    if queue.get("state") == "admitted":
        return f"{queue.get('name')}, admitted {queue.get('admitted_at') or ''}".rstrip()
    place = f", {queue['position']} of {queue.get('waiting')} waiting" if queue.get("position") else ""
    why = ": ".join(part for part in (queue.get("reason"), queue.get("message")) if part)
    return f"{queue.get('name')}{place}" + (f" ({why})" if why else "")


def failure_reason(job: dict[str, Any]) -> str | None:
    condition = _true(job, "Failed")
    if not condition:
        return None
    return ": ".join(part for part in (condition.get("reason"), condition.get("message")) if part) or None


KILLED = (137, 143)  # SIGKILL, SIGTERM: how a container stopped from outside ends


@dataclass(frozen=True)
class Outcome:
    """How one instance ended (or is): the first container's exit code and reason, where known."""

    instance: str
    exit_code: int | None
    reason: str | None


def instance_outcome(record: dict[str, Any]) -> Outcome:
    """The first container's last termination: its current state if terminated, else the previous attempt's
    (a container restarted by OnFailure shows its failure there)."""
    containers = record.get("containers") or [{}]
    first = containers[0]
    ended = [state for state in (first, first.get("last_state") or {})
             if state.get("state") == "terminated" and state.get("exit_code") is not None]
    if len(ended) == 2 and ended[0]["exit_code"] in KILLED and ended[1]["exit_code"] not in (0, *KILLED):
        # OnFailure restarted the failing program and the Job controller then stopped the restart: the program's
        # own code is the previous attempt's
        ended.reverse()
    if ended:
        return Outcome(record.get("name", "?"), int(ended[0]["exit_code"]), ended[0].get("reason"))
    return Outcome(record.get("name", "?"), None, first.get("reason") or record.get("reason"))


def failed_outcomes(records: list[dict[str, Any]]) -> list[Outcome]:
    """Instances whose first container last ended with a non-zero code, or whose pod failed without one."""
    failed = []
    for record in records:
        outcome = instance_outcome(record)
        if (outcome.exit_code not in (None, 0)) or (outcome.exit_code is None and record.get("phase") == "Failed"):
            failed.append(outcome)
    return failed


def exit_summary(outcome: Outcome) -> str:
    code = "unknown" if outcome.exit_code is None else str(outcome.exit_code)
    return f"instance {outcome.instance}: exit code {code}" + (f" ({outcome.reason})" if outcome.reason else "")


def instance_duration(record: dict[str, Any], now: dt.datetime) -> str:
    start = parse_time(record.get("started"))
    if start is None:
        return "-"
    end = parse_time(record.get("finished"))
    return human_duration(((end or now) - start).total_seconds())
