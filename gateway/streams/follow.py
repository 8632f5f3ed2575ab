"""Followed logs: the producers behind ``follow=true`` on an instance's and on a job's logs.

Offsets are exactly the paged call's (``from``): for an instance while its pod exists, lines of the current
container attempt, of ``date``'s day if given, counted from 0; once the pod is gone, the archive's numbering (every
attempt). The job level reads the archive, in its order, as the paged job-level call does.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import time
from dataclasses import dataclass
from typing import Any, Iterator

import orjson

from .. import errors, logs, timefmt
from ..cache import cache_of
from ..kube import Kube, LogNotAvailable
from ..names import POD_JOB_NAME_LABELS
from ..store import LogStore
from ..store.lines import parse_stamped
from ..store.records import TERMINAL_PHASES
from ..tenancy import Tenant
from . import sse
from .hub import HUBS, Behind, as_archived, frame
from .runner import Out

POLL_SECONDS = 0.5  # how often an archive read looks for new lines
SETTLE_SECONDS = 3.0  # the collector archives a line within 1-2 s: quiet this long after the end, nothing is left
GONE_SETTLE_SECONDS = 10.0  # a pod gone without a final record in the archive (deleted while it ran)
_UPSTREAM_IDLE = 120.0  # a followed pod log silent this long is reopened (a dead connection is found then)
_PAGE = 500


@dataclass
class Where:
    """The next offset to send; ``day`` narrows the log to one day as ``date`` does. ``since`` (ns): lines stamped
    before it are counted but not sent, until the first that is not; ``timestamps``: each event's data has its
    line's ``time``. Either reads the log with its stamps, on a stream of its own (the hub shares plain text)."""
    offset: int
    day: dt.date | None
    timezone: str
    max_line_bytes: int
    since: int | None = None
    timestamps: bool = False

    @property
    def stamped(self) -> bool:
        return self.since is not None or self.timestamps


@dataclass(frozen=True)
class Pod:
    """What following a pod needs of it: which container to read, whether it is over, and how it ended."""
    name: str
    uid: str | None
    container: str  # the first container of the spec: the one the paged call reads
    phase: str | None
    end: dict[str, Any]  # the ``end`` event's data as of now


def pod_of(kube: Kube, tenant: Tenant, job_name: str, instance: str) -> Pod | None:
    """The instance's pod if it exists and belongs to the job, else None: from the region's watch cache when it
    may answer and holds the pod (500 followers opening at once would otherwise be 500 apiserver GETs), else from
    the apiserver, which alone says that a pod is gone."""
    cache = cache_of(kube)
    entry = cache.pod(tenant.namespace, instance) if cache is not None and cache.usable() else None
    if entry is not None:
        if not any(entry.labels.get(key) == job_name for key in POD_JOB_NAME_LABELS):
            return None
        record = orjson.loads(entry.record)
        return Pod(entry.name, record.get("uid"), entry.container, entry.phase,
                   {**record_end(entry.name, record, entry.container), "phase": entry.phase})
    try:
        pod = kube.get_pod(tenant.namespace, instance)
    except errors.NotFound:
        return None
    labels = pod["metadata"].get("labels") or {}
    if not any(labels.get(key) == job_name for key in POD_JOB_NAME_LABELS):
        return None
    return Pod(pod["metadata"]["name"], pod["metadata"].get("uid"), pod["spec"]["containers"][0]["name"],
               (pod.get("status") or {}).get("phase"), pod_end(pod))


def _first_status(pod: dict[str, Any]) -> dict[str, Any]:
    first = pod["spec"]["containers"][0]["name"]
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == first:
            return status
    return {}


def pod_end(pod: dict[str, Any]) -> dict[str, Any]:
    """The ``end`` event's data for a pod: its first container's last termination."""
    status = _first_status(pod)
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


def _line(out: Out, where: Where, text: str, instance: str | None = None, ts_ns: int | None = None) -> None:
    if where.since is not None and ts_ns is not None:
        if ts_ns < where.since:
            where.offset += 1  # older than ``since``: counted, not sent
            return
        where.since = None  # a log is in time order: from here on every line goes
    if instance is None and not where.timestamps:
        out.send(frame(where.offset, text), id=where.offset)
    else:
        data = {"offset": where.offset, **({"instance": instance} if instance is not None else {}),
                "line": as_archived(text)}
        if where.timestamps and ts_ns is not None:
            data["time"] = timefmt.rfc3339_nano(ts_ns)
        out.send(sse.event(data, id=where.offset), id=where.offset)
    where.offset += 1


def _lines(kube: Kube, tenant: Tenant, pod: Pod, where: Where, skip: int, *, follow: bool) -> Iterator[str]:
    """The container's lines after the first ``skip`` (of ``where.day`` if set), followed while it runs."""
    instance, container = pod.name, pod.container
    since = bounds = None
    if where.day is not None:
        bounds = logs.day_bounds(where.day, where.timezone)
        since = timefmt.rfc3339(bounds[0])
    with kube.pod_log(tenant.namespace, instance, container=container, timestamps=bounds is not None,
                      since_time=since, follow=follow, idle_timeout=_UPSTREAM_IDLE if follow else None) as chunks:
        if bounds is None:
            yield from logs.iter_lines(logs.skip_lines(chunks, skip), where.max_line_bytes)
        else:
            yield from itertools.islice(logs.within(logs.iter_lines(chunks, where.max_line_bytes), *bounds), skip,
                                        None)


def _stamped_lines(kube: Kube, tenant: Tenant, pod: Pod, where: Where, skip: int, *,
                   follow: bool) -> Iterator[tuple[int, str]]:
    """``_lines`` with each line's stamp: (ts_ns, text), numbered alike."""
    bounds = logs.day_bounds(where.day, where.timezone) if where.day is not None else None
    with kube.pod_log(tenant.namespace, pod.name, container=pod.container, timestamps=True,
                      since_time=timefmt.rfc3339(bounds[0]) if bounds else None, follow=follow,
                      idle_timeout=_UPSTREAM_IDLE if follow else None) as chunks:
        lines = logs.iter_lines(chunks if bounds else logs.skip_lines(chunks, skip), where.max_line_bytes)
        stamped = ((line.ts_ns, line.text) for line in parse_stamped(lines))
        yield from stamped if bounds is None else itertools.islice(logs.stamped_within(stamped, *bounds), skip, None)


def _read_live(kube: Kube, tenant: Tenant, pod: Pod, where: Where, out: Out, *, follow: bool = False) -> None:
    """Send the pod's lines from ``where.offset`` to the log's present end (with ``follow``, on as they come until
    the attempt ends), on a stream of its own."""
    if where.stamped:
        stamped = _stamped_lines(kube, tenant, pod, where, where.offset, follow=follow)
        try:
            for ts_ns, text in stamped:
                _line(out, where, text, ts_ns=ts_ns)
        finally:
            stamped.close()
        return
    lines = _lines(kube, tenant, pod, where, where.offset, follow=follow)
    try:
        for text in lines:
            _line(out, where, text)
    finally:
        lines.close()


def _follow_shared(kube: Kube, tenant: Tenant, pod: Pod, where: Where, out: Out) -> None:
    """Send lines as the container writes them, from the worker's one upstream of it (``hub``), until its
    attempt ends."""
    key = (id(kube), tenant.namespace, pod.name, pod.uid, pod.container, where.day, where.timezone,
           where.max_line_bytes)
    day, timezone, cap = where.day, where.timezone, where.max_line_bytes
    hub = HUBS.get(key, lambda skip: _lines(kube, tenant, pod, Where(skip, day, timezone, cap), skip, follow=True))
    while True:
        try:
            where.offset = hub.follow(out, where.offset)
        except Behind as behind:  # older than the hub keeps: read up to the present alone, then join
            where.offset = behind.offset
            _read_live(kube, tenant, pod, where, out)
            continue
        if hub.failure is not None:
            raise hub.failure
        return


def _day_over(where: Where) -> bool:
    return where.day is not None and timefmt.now() >= logs.day_bounds(where.day, where.timezone)[1]


def follow_instance(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, instance: str, where: Where,
                    out: Out, pod: Pod | None) -> None:
    """Lines as they are written while the pod lives, then the rest; ``end`` with the exit code. A pod already
    gone (or gone meanwhile) is read from the archive until its lines are all there. ``pod``: as just looked up."""
    while pod is not None:
        if pod.phase in TERMINAL_PHASES:
            with contextlib.suppress(LogNotAvailable):
                _read_live(kube, tenant, pod, where, out)
            out.send(sse.event(pod.end, name="end"))
            return
        started = time.monotonic()
        try:
            if _day_over(where):
                out.sleep(2)  # the day's lines are all sent; only the end is awaited
            elif where.stamped:
                _read_live(kube, tenant, pod, where, out, follow=True)
            else:
                _follow_shared(kube, tenant, pod, where, out)
        except (LogNotAvailable, errors.Unavailable):
            pass  # not started yet, or the stream broke: look at the pod again
        if time.monotonic() - started < 1:
            out.sleep(1)  # a log that ends at once (a container between attempts) is not asked for in a loop
        pod = pod_of(kube, tenant, job_name, instance)
    replay_archive(archive, tenant, job_name, instance, where, out)


def _record(archive: LogStore, tenant: Tenant, job_name: str, instance: str) -> dict[str, Any] | None:
    return next((r for r in archive.instances(tenant.archive, job_name) if r.get("name") == instance), None)


def replay_archive(archive: LogStore, tenant: Tenant, job_name: str, instance: str, where: Where,
                   out: Out) -> None:
    """The archived lines from ``where.offset``, then ``end`` once the collector has nothing more: the record says
    the pod finished and no line came for ``SETTLE_SECONDS`` (``GONE_SETTLE_SECONDS`` without such a record)."""
    container = job_name  # the first container, the one the live log reads, carries the job's name
    quiet_since = time.monotonic()
    while True:
        before = where.offset
        if where.stamped:
            with contextlib.closing(archive.iter_read_stamped(tenant.archive, instance, container, day=where.day,
                                                              offset=where.offset, size=_PAGE)) as stamped:
                for ts_ns, text in stamped:
                    _line(out, where, text, ts_ns=ts_ns)
        else:
            with contextlib.closing(archive.iter_read(tenant.archive, instance, container, day=where.day,
                                                      offset=where.offset, size=_PAGE)) as rows:
                for text in rows:
                    _line(out, where, text)
        if where.offset > before:
            quiet_since = time.monotonic()
            continue
        record = _record(archive, tenant, job_name, instance)
        settle = SETTLE_SECONDS if (record or {}).get("phase") in TERMINAL_PHASES else GONE_SETTLE_SECONDS
        if time.monotonic() - quiet_since >= settle:
            out.send(sse.event(record_end(instance, record), name="end"))
            return
        out.sleep(POLL_SECONDS)


JOB_CHECK_SECONDS = 2.0


def parsed(body: Any) -> dict[str, Any]:
    """A body of gateway.jobs as a dict: ``get_job`` may answer with the watch cache's bytes (an orjson
    Fragment), which only orjson can read back."""
    return body if isinstance(body, dict) else orjson.loads(orjson.dumps(body))


def job_state(job: dict[str, Any]) -> str:
    """``pending``, ``running``, ``succeeded`` or ``failed`` from a Job's status."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True":
            if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
                return "succeeded"
            if condition.get("type") in ("Failed", "FailureTarget"):
                return "failed"
    return "running" if status.get("active") else "pending"


def instance_ends(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each instance's name, exit code and reason, for the job's ``end`` event."""
    return [{"name": r["name"], **{k: v for k, v in record_end(r["name"], r).items() if k in ("exit_code", "reason")}}
            for r in records]


def follow_job(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, where: Where, out: Out,
               get_job, list_instances) -> None:
    """Every instance's archived lines in the job-level order (the paged call's), as the collector stores them
    (1-2 s after they are written); ``end`` once the job has succeeded, failed or been deleted and the archive has
    been quiet for ``SETTLE_SECONDS`` since. ``get_job``/``list_instances`` are gateway.jobs' calls."""
    quiet_since = time.monotonic()
    checked, final, final_since = 0.0, None, 0.0
    while True:
        with contextlib.closing(archive.iter_read_job_stamped(tenant.archive, job_name, day=where.day,
                                                              offset=where.offset, size=_PAGE)) as rows:
            before = where.offset
            for instance, ts_ns, text in rows:
                _line(out, where, text, instance, ts_ns)
        now = time.monotonic()
        if where.offset > before:
            quiet_since = now
            continue
        if final is None and now - checked >= JOB_CHECK_SECONDS:
            checked = now
            try:
                state = job_state(parsed(get_job(kube, tenant, job_name)))
            except errors.NotFound:
                state = "deleted"
            if state in ("succeeded", "failed", "deleted"):
                final, final_since = state, now
        if final is not None and now - max(quiet_since, final_since) >= SETTLE_SECONDS:
            try:
                records = list_instances(kube, archive, tenant, job_name)["instances"]
            except errors.NotFound:
                records = []
            out.send(sse.event({"status": final, "instances": instance_ends(records)}, name="end"))
            return
        out.sleep(POLL_SECONDS)
