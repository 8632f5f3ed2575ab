"""Following a job: its log lines as they come and how it ended.

Where the gateway has the streams (docs/api.md, "Follow and watch": ``follow=true`` logs, ``/watch``), one
Server-Sent Events stream does it, resumed from the last event id when it breaks or the server ends it with
``shutdown``. A gateway that answers anything but ``text/event-stream`` (one without streams, the original API) is
polled instead: the job (``GET /jobs/{name}``), each instance's log from the offset reached (``from``), and at the
end the instance records for the exit codes.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

from . import status as st
from .client import Client, iter_chunks
from .errors import USAGE, NotFound, TenxError, Unavailable, from_response
from .sse import Parser

PAGE = 1000
POLL_SECONDS = 1.0
MAX_RECONNECTS = 5  # in a row without an event in between
_BROKEN = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout)



def debug(message: str) -> None:
    """``TENX_DEBUG=1``: say on stderr how a job is followed (by its stream, or by polling)."""
    if os.environ.get("TENX_DEBUG"):
        print(f"tenx: debug: {message}", file=sys.stderr, flush=True)


def streams_allowed() -> bool:
    """``TENX_NO_STREAMS=1`` polls even a gateway that streams (e.g. behind a proxy that buffers them)."""
    return not os.environ.get("TENX_NO_STREAMS")


Emit = Callable[..., None]  # (instance or None, line[, time]): time, the line's RFC 3339 stamp, with timestamps
OnStatus = Callable[[dict[str, Any]], None]  # a job summary: name, status, active, succeeded, failed, ...


@dataclass
class JobEnd:
    status: str                                         # succeeded | failed | deleted
    outcomes: list[st.Outcome] = field(default_factory=list)  # failed instances: exit code and reason
    reason: str | None = None                           # the Job's Failed condition, if any
    streamed: bool = False                              # whether a stream (not polling) said so

    def first_exit_code(self) -> int | None:
        for outcome in self.outcomes:
            if outcome.exit_code not in (None, 0):
                return outcome.exit_code
        return None


def _outcomes_of(instances: list[dict[str, Any]] | None) -> list[st.Outcome]:
    """From an ``end`` event's instances ``[{"name", "exit_code", "reason"}]`` (or full records)."""
    result = []
    for item in instances or []:
        if "containers" in item:
            result.append(st.instance_outcome(item))
        else:
            code = item.get("exit_code")
            result.append(st.Outcome(item.get("name", "?"), None if code is None else int(code), item.get("reason")))
    return [o for o in result if o.exit_code not in (None, 0) or o.reason not in (None, "Completed")]


def _emit(emit: Emit, instance: str | None, data: dict[str, Any]) -> None:
    """An event's line, with its ``time`` when the gateway sent one (timestamps=true)."""
    if data.get("time") is None:
        emit(instance, data.get("line", ""))
    else:
        emit(instance, data.get("line", ""), data["time"])


class Follower:
    def __init__(self, client: Client, name: str, *, poll_seconds: float = POLL_SECONDS,
                 sleep: Callable[[float], None] = time.sleep, since: str | None = None, timestamps: bool = False,
                 start: int | None = None):
        """``since``, ``timestamps``: as the logs calls take them; ``start``: the job's log from that offset."""
        self.client = client
        self.name = name
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.offsets: dict[str, int] = {}
        self.streamed = False
        self.since = since
        self.timestamps = timestamps
        self.start = start

    def _log_query(self) -> dict[str, Any]:
        return {key: value for key, value in (("since", self.since), ("timestamps", "true" if self.timestamps
                                                                      else None)) if value is not None}

    # --- streams ---

    def _stream(self, path: str, params: dict[str, Any] | None, handle: Callable[[Any], Any]) -> Any:
        """Read events until ``handle`` returns something other than None (the end); reconnect with the last
        event id after a break or a ``shutdown``. None (and no event handled) when the gateway has no stream."""
        parser = Parser()
        failures = 0
        if not streams_allowed():
            return None
        while True:
            response = self.client.open_stream(path, params, last_event_id=parser.last_event_id)
            if response is None:
                debug(f"{path}: the gateway answered without text/event-stream; polling")
                return None
            debug(f"{path}: following the event stream" + (f" from id {parser.last_event_id}"
                                                             if parser.last_event_id is not None else ""))
            self.streamed = True
            try:
                for event in parser.events(iter_chunks(response)):
                    failures = 0
                    if event.event == "error":
                        body = event.json() or {}
                        code = int(body.get("code") or 500)
                        if code >= 500:  # the stream broke on the gateway's side: the plain calls may still work
                            debug(f"{path}: the stream failed ({code} {body.get('message')}); polling")
                            return None
                        raise from_response(code, body)
                    if event.event == "shutdown":
                        break
                    result = handle(event)
                    if result is not None:
                        return result
            except _BROKEN:
                pass
            finally:
                response.close()
            failures += 1
            if failures > MAX_RECONNECTS:
                raise Unavailable(f"the stream of job {self.name!r} kept breaking off")
            self.sleep(min(5.0, (parser.retry or 1000) / 1000))

    def stream_job(self, emit: Emit) -> JobEnd | None:
        def handle(event):
            data = event.json()
            if event.event == "message":
                instance = data.get("instance")
                if instance:  # where polling would carry on from, should the stream fail
                    self.offsets[instance] = self.offsets.get(instance, 0) + 1
                _emit(emit, instance, data)
            elif event.event == "end":
                return JobEnd(data.get("status") or st.DELETED, _outcomes_of(data.get("instances")),
                              streamed=True)
            return None
        params = {"follow": "true", **self._log_query(), **({"from": self.start} if self.start else {})}
        return self._stream_or_none(f"/jobs/{self.name}/logs", params, handle)

    def stream_instance(self, instance: str, emit: Emit, **query: Any) -> JobEnd | None:
        params = {"follow": "true", **self._log_query(),
                  **{("from" if k == "offset" else k): v for k, v in query.items() if v is not None}}

        def handle(event):
            data = event.json()
            if event.event == "message":
                if isinstance(data.get("offset"), int):
                    self.offsets[instance] = data["offset"] + 1
                _emit(emit, None, data)
            elif event.event == "end":
                code = data.get("exit_code")
                phase = data.get("phase")
                outcome = st.Outcome(instance, None if code is None else int(code), data.get("reason"))
                failed = phase == "Failed" or outcome.exit_code not in (None, 0)
                return JobEnd(st.FAILED if failed else st.SUCCEEDED, [outcome] if failed else [], streamed=True)
            return None
        return self._stream_or_none(f"/jobs/{self.name}/instances/{instance}/logs", params, handle)

    def stream_watch(self, on_status: OnStatus) -> JobEnd | None:
        def handle(event):
            data = event.json() or {}
            if event.event == "status":
                on_status(data)
            elif event.event == "end":
                return JobEnd(data.get("status") or st.DELETED, st.failed_outcomes(data.get("instances") or []),
                              streamed=True)
            return None
        return self._stream_or_none(f"/jobs/{self.name}/watch", None, handle)

    def _stream_or_none(self, path: str, params: dict[str, Any] | None, handle: Callable[[Any], Any]):
        """A 404 from a stream call is "no such call" on a gateway without it, when the job itself exists."""
        try:
            return self._stream(path, params, handle)
        except NotFound:
            if self.streamed:
                raise
            self.client.get_job(self.name)  # raises NotFound if the job is what is missing
            return None

    # --- polling ---

    def drain(self, instance: str, emit: Emit, prefix: bool, **query: Any) -> None:
        """Every line of ``instance`` from the offset reached so far, page by page."""
        while True:
            offset = self.offsets.get(instance, query.get("offset") or 0)
            try:
                page = self.client.instance_logs(self.name, instance, date=query.get("date"), offset=offset,
                                                 size=PAGE, **self._log_query())
            except NotFound:
                return  # gone between the listing and the read, and not archived (yet)
            start = since_start(page, self.since, offset)
            for line in page.lines:  # with timestamps, the gateway put the time in the line
                emit(instance if prefix else None, line)
            self.offsets[instance] = start + len(page.lines)
            if len(page.lines) < PAGE and not page.truncated:
                return

    def _job_or_deleted(self) -> dict[str, Any] | None:
        try:
            return self.client.get_job(self.name)
        except NotFound:
            return None

    def poll_job(self, emit: Emit, on_status: OnStatus | None = None, *, logs: bool = True) -> JobEnd:
        debug(f"job {self.name}: polling every {self.poll_seconds:g} s")
        seen_once = False
        while True:
            job = self._job_or_deleted()
            if job is None:
                if not seen_once:
                    raise NotFound(f"job {self.name!r} not found")
                return JobEnd(st.DELETED)
            seen_once = True
            phase = st.job_status(job)
            if on_status:
                on_status(summary(job))
            names = job.get("instance_names") or []
            if logs:
                for instance in names:
                    self.drain(instance, emit, prefix=multi(job, names))
            if phase in st.TERMINAL:
                records = self.client.instances(self.name)
                if records is None:
                    records = [{"name": n} for n in names]
                if logs:
                    for record in records:  # pods already gone: their lines from the archive
                        self.drain(record["name"], emit, prefix=multi(job, [r["name"] for r in records]))
                return JobEnd(phase, st.failed_outcomes(records), st.failure_reason(job))
            self.sleep(self.poll_seconds)

    def poll_instance(self, instance: str, emit: Emit, **query: Any) -> JobEnd:
        debug(f"instance {instance}: polling every {self.poll_seconds:g} s")
        while True:
            self.drain(instance, emit, prefix=False, **query)
            job = self._job_or_deleted()
            records = self.client.instances(self.name) if job is None or st.job_status(job) in st.TERMINAL \
                else None
            record = next((r for r in records or [] if r.get("name") == instance), None)
            if job is None or st.job_status(job) in st.TERMINAL or (record and record.get("phase") in
                                                                    ("Succeeded", "Failed")):
                self.drain(instance, emit, prefix=False, **query)
                outcomes = st.failed_outcomes([record]) if record else []
                return JobEnd(st.FAILED if outcomes else (st.job_status(job) if job else st.DELETED), outcomes)
            self.sleep(self.poll_seconds)

    # --- what the commands call ---

    def follow_job(self, emit: Emit) -> JobEnd:
        end = self.stream_job(emit)
        if end is None:
            return self.poll_job(emit)
        if end.status == st.FAILED:
            self._explain(end)
        return end

    def _explain(self, end: JobEnd) -> None:
        """A stream's ``end`` names the status; why the job failed (its Failed condition) and, if the event had
        none, the instances' exit codes come from the plain calls."""
        try:
            end.reason = st.failure_reason(self.client.get_job(self.name))
            # the records hold the previous attempt too: a program's own code rather than the 143 of the restart
            # the Job controller stopped (docs/api.md, "Follow and watch")
            records = self.client.instances(self.name)
            if records:
                end.outcomes = st.failed_outcomes(records) or end.outcomes
        except TenxError:
            pass  # deleted meanwhile: the status alone is still the answer

    def follow_instance(self, instance: str, emit: Emit, **query: Any) -> JobEnd:
        return self.stream_instance(instance, emit, **query) or self.poll_instance(instance, emit, **query)

    def wait(self, on_status: OnStatus) -> JobEnd:
        end = self.stream_watch(on_status)
        if end is not None:
            if end.status == st.FAILED:
                self._explain(end)
            return end
        return self.poll_job(lambda *_: None, on_status, logs=False)


def since_start(page: Any, since: str | None, offset: int) -> int:
    """Where a page asked for at ``offset`` starts: where ``since`` moved it (X-Log-Offset). A gateway that sent no
    such header ignored ``since``: its lines would not be the ones asked for."""
    if since is None:
        return offset
    if page.offset is None:
        raise TenxError("this gateway does not take --since (its logs calls have no `since` parameter)",
                        exit_code=USAGE)
    return page.offset


def multi(job: dict[str, Any], names: list[str]) -> bool:
    """Prefix lines with their instance when the job has, or may have, more than one."""
    spec = job.get("spec") or {}
    return len(names) > 1 or (spec.get("parallelism") or 1) > 1 or (spec.get("completions") or 1) > 1


def summary(job: dict[str, Any]) -> dict[str, Any]:
    """The watch stream's status summary, from a Job object (the polling path's equivalent)."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    return {"name": (job.get("metadata") or {}).get("name"), "status": st.job_status(job),
            "active": status.get("active") or 0, "succeeded": status.get("succeeded") or 0,
            "failed": status.get("failed") or 0, "completions": spec.get("completions"),
            "parallelism": spec.get("parallelism")}


__all__ = ["Follower", "JobEnd", "TenxError", "multi", "since_start", "summary"]
