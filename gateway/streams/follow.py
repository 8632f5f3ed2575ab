"""Followed logs: the producers behind ``follow=true`` on an instance's and on a job's logs, which frame as events
what ``gateway/logs`` reads.

Offsets are exactly the paged call's (``from``): the archive's numbering (every attempt, the lost-lines markers
included) once the archive holds anything of the container, and a stream then sends lines as the collectors store
them (within a second or two of their being written); while it holds nothing yet (no collector has reached the
container), the pod's own numbering, read live through the worker's one shared upstream (``hub``), as long as the
pod lives. The job level reads the archive, in its order, as the paged job-level call does.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import orjson

from .. import errors, timefmt
from ..kube.client import Kube, LogNotAvailable
from ..logs.instance import Instance, archived_record, live_instance, record_end
from ..logs.reader import InstanceLog, Start
from ..store import LogStore
from ..store.records import TERMINAL_PHASES
from ..jobs.tenancy import Tenant
from . import sse
from .hub import HUBS, Behind, as_archived, frame
from .runner import Out

POLL_SECONDS = 0.5  # how often an archive read looks for new lines
LIVE_CHECK_SECONDS = 2.0  # how often a stream reading the archive looks whether its pod still runs
SETTLE_SECONDS = 3.0  # the collector archives a line within 1-2 s: quiet this long after the end, nothing is left
GONE_SETTLE_SECONDS = 10.0  # a pod gone without a final record in the archive (deleted while it ran)
_PAGE = 500


@dataclass
class Where:
    """The next offset to send; ``day`` narrows the log to one day as ``date`` does. ``since`` (ns): lines stamped
    before it are counted but not sent, until the first that is not; ``timestamps``: each event's data has its
    line's ``time``. Either reads the log with its stamps (the hub shares plain text only)."""
    offset: int
    day: dt.date | None
    timezone: str
    max_line_bytes: int
    since: int | None = None
    timestamps: bool = False

    @property
    def stamped(self) -> bool:
        return self.since is not None or self.timestamps

    @property
    def start(self) -> Start:
        return Start(self.offset, self.day, self.timezone, self.max_line_bytes)


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


def follow_instance(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, instance: str, where: Where,
                    out: Out, live: Instance | None) -> None:
    """Lines as they come, then ``end`` with the exit code. ``live``: the pod as just looked up (None: gone)."""
    log = InstanceLog(kube, archive, tenant, job_name, instance, live)
    if live is not None and not log.archived():
        live = _follow_pod(kube, tenant, job_name, instance, log, where, out, live)
        if live is not None:
            return  # it ended while the archive held nothing of it: its end is sent
    _follow_archive(kube, archive, tenant, job_name, instance, log, where, out, live)


def _follow_pod(kube: Kube, tenant: Tenant, job_name: str, instance: str, log: InstanceLog, where: Where,
                out: Out, live: Instance | None) -> Instance | None:
    """The pod's own lines while it runs and the archive holds nothing of it; ``end`` once it is over. Returns
    the pod if it ended so, None once it is gone (the archive has the rest)."""
    while live is not None:
        if live.phase in TERMINAL_PHASES:
            try:
                _send_rows(out, where, log.pod_rows(where.start, stamped=where.stamped))
            except LogNotAvailable:
                pass
            out.send(sse.event(live.end, name="end"))
            return live
        started = time.monotonic()
        try:
            if _day_over(where):
                out.sleep(2)  # the day's lines are all sent; only the end is awaited
            elif where.stamped:
                _send_rows(out, where, log.pod_rows(where.start, stamped=True, follow=True))
            else:
                _follow_shared(kube, tenant, log, where, out)
        except (LogNotAvailable, errors.Unavailable, errors.NotFound):
            # not started yet, the stream broke, or the node does not know the pod's log (yet, or any more: a 404
            # from its kubelet, which a CI run met on a pod just started): look at the pod again
            pass
        if time.monotonic() - started < 1:
            out.sleep(1)  # a log that ends at once (a container between attempts) is not asked for in a loop
        live = live_instance(kube, tenant, job_name, instance)
    return None


def _send_rows(out: Out, where: Where, rows) -> int:
    sent = 0
    try:
        for ts_ns, text in rows:
            _line(out, where, text, ts_ns=ts_ns)
            sent += 1
    finally:
        rows.close()
    return sent


def _follow_shared(kube: Kube, tenant: Tenant, log: InstanceLog, where: Where, out: Out) -> None:
    """Send lines as the container writes them, from the worker's one upstream of it (``hub``), until its
    attempt ends."""
    live = log.live
    assert live is not None
    key = (id(kube), tenant.namespace, live.name, live.uid, live.container, where.day, where.timezone,
           where.max_line_bytes)
    day, timezone, cap = where.day, where.timezone, where.max_line_bytes
    hub = HUBS.get(key, lambda skip: (text for _, text in log.pod_rows(Start(skip, day, timezone, cap),
                                                                        follow=True)))
    while True:
        try:
            where.offset = hub.follow(out, where.offset)
        except Behind as behind:  # older than the hub keeps: read up to the present alone, then join
            where.offset = behind.offset
            _send_rows(out, where, log.pod_rows(where.start))
            continue
        if hub.failure is not None:
            raise hub.failure
        return


def _day_over(where: Where) -> bool:
    return where.day is not None and timefmt.now() >= timefmt.day_bounds(where.day, where.timezone)[1]


def _follow_archive(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, instance: str, log: InstanceLog,
                    where: Where, out: Out, live: Instance | None) -> None:
    """The archived lines from ``where.offset`` as the collectors store them; ``end`` once the pod is over (or
    gone) and the archive has been quiet for ``SETTLE_SECONDS`` (``GONE_SETTLE_SECONDS`` for a pod gone without a
    final record, deleted while it ran)."""
    quiet_since = checked = time.monotonic()
    while True:
        if _send_rows(out, where, log.archived_rows(where.start, _PAGE, stamped=where.stamped)):
            quiet_since = time.monotonic()
            continue
        now = time.monotonic()
        if live is not None and now - checked >= LIVE_CHECK_SECONDS:
            live, checked = live_instance(kube, tenant, job_name, instance), now
        if live is not None and live.phase not in TERMINAL_PHASES:
            out.sleep(POLL_SECONDS)  # it runs: more will come
            continue
        if live is not None:
            end, settle = live.end, SETTLE_SECONDS
        else:
            record = archived_record(archive, tenant, job_name, instance)
            end = record_end(instance, record)
            settle = SETTLE_SECONDS if (record or {}).get("phase") in TERMINAL_PHASES else GONE_SETTLE_SECONDS
        if now - quiet_since >= settle:
            out.send(sse.event(end, name="end"))
            return
        out.sleep(POLL_SECONDS)


def replay_archive(archive: LogStore, tenant: Tenant, job_name: str, instance: str, where: Where,
                   out: Out) -> None:
    """A gone pod's archived lines from ``where.offset``, then ``end`` once the collector has nothing more."""
    log = InstanceLog(None, archive, tenant, job_name, instance, None)  # type: ignore[arg-type]
    _follow_archive(None, archive, tenant, job_name, instance, log, where, out, None)  # type: ignore[arg-type]


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
