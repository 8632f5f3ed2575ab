"""A watched job: its status, conditions and instances, an event at the start and at each change, ``end`` when it
succeeds, fails or is deleted. Each look is gateway.jobs' own calls (``get_job``, ``instances``), so the stream
says exactly what ``GET /jobs/{name}`` and ``GET /jobs/{name}/instances`` would."""
from __future__ import annotations

from typing import Any, Callable

from .. import errors
from . import sse
from .follow import job_state
from .runner import Out

POLL_SECONDS = 1.0


def summary(job: dict[str, Any], instances: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The ``status`` event's data: the job's state and counts, its conditions (with the gateway's PodsHeldBack),
    and, unless None, its instances."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    data: dict[str, Any] = {
        "name": job["metadata"]["name"], "status": job_state(job),
        "active": status.get("active", 0), "succeeded": status.get("succeeded", 0), "failed": status.get("failed", 0),
        "completions": spec.get("completions"), "parallelism": spec.get("parallelism"),
        "conditions": status.get("conditions") or [],
    }
    if instances is not None:
        data["instances"] = instances
    return data


def watch_job(look: Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]], out: Out) -> None:
    """``look()`` -> (the job as GET /jobs/{name} answers it, its instances); NotFound once it is deleted."""
    counter, last = 0, None
    while True:
        try:
            job, instances = look()
        except errors.NotFound:
            out.send(sse.event({**(last or {}), "status": "deleted"}, name="end"))
            return
        current = summary(job, instances)
        if current != last:
            counter += 1
            out.send(sse.event(current, id=counter, name="status"), id=counter)
            last = current
        if current["status"] in ("succeeded", "failed"):
            out.send(sse.event(current, name="end"))
            return
        out.sleep(POLL_SECONDS)


LIST_POLL_SECONDS = 2.0


def watch_jobs(list_jobs: Callable[[], list[dict[str, Any]]], out: Out) -> None:
    """``event: job`` with ``{"type": "ADDED"|"MODIFIED"|"DELETED", "job": <summary without instances>}``: an
    ADDED per job at the start, then each change seen by listing every ``LIST_POLL_SECONDS`` (from the watch cache
    when it may answer). Never ends by itself (the idle and total timeouts, or the client, end it)."""
    known: dict[str, dict[str, Any]] = {}
    counter = 0
    while True:
        listed = {job["metadata"]["name"]: summary(job, None) for job in list_jobs()}
        changes = [("DELETED", known[name]) for name in sorted(known.keys() - listed.keys())]
        changes += [("ADDED" if name not in known else "MODIFIED", data) for name, data in listed.items()
                    if known.get(name) != data]
        for kind, data in changes:
            counter += 1
            out.send(sse.event({"type": kind, "job": data}, id=counter, name="job"), id=counter)
        known = listed
        out.sleep(LIST_POLL_SECONDS)
