"""ls, get, instances and logs: the reads, each with ``-o table|wide|json|yaml|name``."""
from __future__ import annotations

import datetime as dt
import re
import sys
import time
from collections import deque
from dataclasses import dataclass
from itertools import chain
from typing import Any

import click

from .. import status as st
from ..errors import INTERRUPTED, UsageError
from ..escape import escape
from ..lines import LinePrinter
from ..main import State, cli, complete_job_names
from ..output import FORMATS, colour_on, emit_document, print_table, styled

_OUTPUT = click.option("--output", "-o", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                       help="Output format.")
WATCH_POLL_SECONDS = 2.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def job_row(job: dict[str, Any], now: dt.datetime, wide: bool) -> list[str]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    row = [job.get("metadata", {}).get("name", ""), st.job_status(job), st.completions(job), st.age(job, now),
           st.duration(job, now)]
    if wide:
        row += [str(spec.get("parallelism", 1)), str(status.get("active") or 0), str(status.get("failed") or 0),
                ",".join(st.images(job)), st.command(job)]
    return row


JOB_HEADERS = ["NAME", "STATUS", "COMPLETIONS", "AGE", "DURATION"]
JOB_WIDE = ["PARALLELISM", "ACTIVE", "FAILED", "IMAGE", "COMMAND"]


def _jobs_sorted(body: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(body.get("jobs") or [], key=lambda job: job.get("metadata", {}).get("name", ""))


def show_jobs(body: dict[str, Any], fmt: str) -> None:
    if fmt in ("json", "yaml"):
        emit_document(body, fmt)
        return
    jobs = _jobs_sorted(body)
    if fmt == "name":
        for job in jobs:
            click.echo(job.get("metadata", {}).get("name", ""))
        return
    now, wide = _now(), fmt == "wide"
    print_table(JOB_HEADERS + (JOB_WIDE if wide else []), [job_row(job, now, wide) for job in jobs], status_column=1)
    if body.get("truncated"):
        click.echo("tenx: the list was cut at the gateway's GATEWAY_LIST_MAX_JOBS", err=True)


@cli.command("ls")
@_OUTPUT
@click.option("--watch", "-w", is_flag=True, help="Keep showing changes (Ctrl-C to stop).")
@click.pass_obj
def ls(state: State, fmt: str, watch: bool) -> int:
    """List your jobs: name, status, completions, age, duration."""
    client = state.client()
    body = client.list_jobs()
    if not watch:
        show_jobs(body, fmt)
        return 0
    try:
        _watch_jobs(client, body, fmt)
    except KeyboardInterrupt:
        return INTERRUPTED
    return 0


def _watch_jobs(client, body: dict[str, Any], fmt: str) -> None:
    """On a terminal, the table redrawn in place; otherwise the table once and then a row per change (kubectl's
    ``get -w``). Changes come from ``GET /jobs?watch=true`` where the gateway streams it, else from a list every
    2 seconds."""
    wide = fmt == "wide"
    live = colour_on(sys.stdout) and fmt in ("table", "wide")

    def rows_of(listing):
        now = _now()
        return {row[0]: row for row in (job_row(job, now, wide) for job in _jobs_sorted(listing))}

    def key(row):  # what counts as a change: status and completions, not the ticking age
        return tuple(row[1:3])

    if live:
        from rich.console import Console
        from rich.live import Live
        from ..output import rich_table
        headers = JOB_HEADERS + (JOB_WIDE if wide else [])
        with Live(rich_table(headers, list(rows_of(body).values()), 1), console=Console(), auto_refresh=False) as view:
            for listing in _listings(client, body):
                view.update(rich_table(headers, list(rows_of(listing).values()), 1), refresh=True)
        return
    show_jobs(body, fmt)
    seen = {name: key(row) for name, row in rows_of(body).items()}
    for listing in _listings(client, body):
        current = rows_of(listing)
        for name, row in current.items():
            if seen.get(name) != key(row):
                click.echo(name if fmt == "name" else "  ".join(row))
        for name in set(seen) - set(current):
            click.echo(name if fmt == "name" else f"{name}  deleted")
        seen = {name: key(row) for name, row in current.items()}


def _listings(client, first: dict[str, Any]):
    """A new job list after each change: on each event of the job watch stream (at most one list a second), or
    every WATCH_POLL_SECONDS from a gateway without the stream."""
    from ..client import iter_chunks
    from ..sse import Parser
    from ..errors import TenxError
    from ..follow import debug, streams_allowed
    stream = None
    if streams_allowed():
        try:
            stream = client.open_stream("/jobs", {"watch": "true"})
        except TenxError:  # a gateway without the job watch: poll
            stream = None
    debug("job list: " + ("following the event stream" if stream else f"polling every {WATCH_POLL_SECONDS:g} s"))
    if stream is None:
        while True:
            time.sleep(WATCH_POLL_SECONDS)
            yield client.list_jobs()
    last = 0.0
    try:
        for event in Parser().events(iter_chunks(stream)):
            if event.event == "job" and time.monotonic() - last >= 1:
                last = time.monotonic()
                yield client.list_jobs()
    finally:
        stream.close()
    while True:  # the stream ended: carry on by polling
        time.sleep(WATCH_POLL_SECONDS)
        yield client.list_jobs()


def instance_row(record: dict[str, Any], now: dt.datetime, wide: bool) -> list[str]:
    outcome = st.instance_outcome(record)
    first = (record.get("containers") or [{}])[0]
    row = [record.get("name", ""), record.get("phase", ""), first.get("state", ""),
           "-" if outcome.exit_code is None else str(outcome.exit_code),
           outcome.reason or (record.get("scheduling") or {}).get("reason") or "-",
           str(record.get("restart_count", 0)), st.instance_duration(record, now)]
    if wide:
        row += [record.get("node") or "-", record.get("started") or "-", record.get("finished") or "-"]
    return row


INSTANCE_HEADERS = ["NAME", "PHASE", "STATE", "EXIT", "REASON", "RESTARTS", "DURATION"]
INSTANCE_WIDE = ["NODE", "STARTED", "FINISHED"]


def _instance_table(records: list[dict[str, Any]], wide: bool) -> None:
    now = _now()
    print_table(INSTANCE_HEADERS + (INSTANCE_WIDE if wide else []),
                [instance_row(r, now, wide) for r in records], status_column=1)


@cli.command()
@click.argument("name", shell_complete=complete_job_names)
@_OUTPUT
@click.pass_obj
def instances(state: State, name: str, fmt: str) -> int:
    """A job's instances (pods), with exit codes and reasons, including those already gone."""
    client = state.client()
    records = client.instances(name)
    if records is None:  # a gateway without the extension: the names from the job
        records = [{"name": n} for n in client.get_job(name).get("instance_names") or []]
    if fmt in ("json", "yaml"):
        emit_document({"instances": records}, fmt)
    elif fmt == "name":
        for record in records:
            click.echo(record.get("name", ""))
    else:
        _instance_table(records, fmt == "wide")
    return 0


@cli.command()
@click.argument("name", shell_complete=complete_job_names)
@_OUTPUT
@click.pass_obj
def get(state: State, name: str, fmt: str) -> int:
    """A job's summary and its instances with exit codes and reasons."""
    client = state.client()
    job = client.get_job(name)
    if fmt in ("json", "yaml"):
        emit_document(job, fmt)
        return 0
    if fmt == "name":
        click.echo(job.get("metadata", {}).get("name", name))
        return 0
    now = _now()
    spec, status, meta = job.get("spec") or {}, job.get("status") or {}, job.get("metadata") or {}
    phase = st.job_status(job)
    colour = {"succeeded": "green", "failed": "red", "running": "cyan"}.get(phase, "yellow")
    fields = [("Name", meta.get("name", name)), ("Status", styled(phase, colour)),
              ("Completions", f"{st.completions(job)} (parallelism {spec.get('parallelism', 1)})"),
              ("Active/Failed", f"{status.get('active') or 0}/{status.get('failed') or 0}"),
              ("Created", f"{meta.get('creationTimestamp', '-')} ({st.age(job, now)} ago)"),
              ("Started", status.get("startTime") or "-"), ("Finished", st.finished(job) or "-"),
              ("Duration", st.duration(job, now)), ("Image", ", ".join(st.images(job))),
              ("Command", st.command(job) or "-")]
    if st.failure_reason(job):
        fields.append(("Failed", st.failure_reason(job)))
    if st.held_back(job):
        fields.append(("Held back", st.held_back(job)))
    if st.queue_place(job):
        fields.append(("Queue", st.queue_place(job)))
    for label, value in fields:
        click.echo(f"{label + ':':<15}{value if label == 'Status' else escape(str(value))}")
    records = client.instances(name)
    if records is None:
        records = [{"name": n} for n in job.get("instance_names") or []]
    click.echo("\nInstances:" if records else "\nInstances: none yet")
    if records:
        _instance_table(records, fmt == "wide")
    return 0


def parse_date(text: str | None) -> str | None:
    """``YYYY.MM.DD`` (the API's form), ``YYYY-MM-DD``, ``today`` or ``yesterday`` (UTC) -> ``YYYY.MM.DD``."""
    if text is None:
        return None
    today = _now().date()
    named = {"today": today, "yesterday": today - dt.timedelta(days=1)}
    if text in named:
        return named[text].strftime("%Y.%m.%d")
    try:
        return dt.datetime.strptime(text.replace("-", "."), "%Y.%m.%d").strftime("%Y.%m.%d")
    except ValueError:
        raise UsageError(f"--date {text!r}: expected YYYY.MM.DD, YYYY-MM-DD, today or yesterday") from None


def days_between(start: str | None, end: str | None, today: dt.date) -> list[str]:
    """Each UTC day an instance may have written on, a day either side (the gateway's log timezone may be
    another), as ``YYYY.MM.DD``."""
    first = st.parse_time(start)
    last = st.parse_time(end)
    begin = (first.date() if first else today) - dt.timedelta(days=1)
    finish = min((last.date() if last else today) + dt.timedelta(days=1), today + dt.timedelta(days=1))
    return [(begin + dt.timedelta(days=n)).strftime("%Y.%m.%d") for n in range((finish - begin).days + 1)]


class Pages:
    """The lines of one log (an instance's, or the job's) from ``offset``: ``size`` of them, or all, page by page.
    ``offset`` ends past the last line read (where ``since`` moved the first page's start, it starts there)."""

    PAGE = 1000

    def __init__(self, fetch, offset: int, size: int | None, since: str | None = None):
        self.fetch, self.offset, self.size, self.since = fetch, offset, size, since

    def __iter__(self):
        from ..follow import since_start
        size = self.size
        while True:
            want = self.PAGE if size is None else min(self.PAGE, size)
            page = self.fetch(self.offset, want)
            self.offset = since_start(page, self.since, self.offset)
            for line in page.lines:
                self.offset += 1
                yield line
            if size is not None:
                size -= len(page.lines)
                if size <= 0:
                    return
            if not page.lines or (len(page.lines) < want and not page.truncated):
                return


def _last(lines, tail: int | None):
    """All of ``lines``, or only the last ``tail`` (read to the end, keeping that many)."""
    return lines if tail is None else deque(lines, maxlen=tail)


# kubectl and docker: a duration back from now (Go style) or an RFC 3339 time; the gateway checks it again
_SINCE = re.compile(r"(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
                    r"(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


def parse_since(text: str | None) -> str | None:
    if text is None:
        return None
    if not text or not _SINCE.fullmatch(text):
        raise UsageError(f"--since {text!r}: expected a duration such as 10m, 1h30m or 45s, or an RFC 3339 time "
                         "such as 2026-11-28T09:00:00Z")
    return text


@cli.command()
@click.argument("name", shell_complete=complete_job_names)
@click.argument("instance", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job (or instance) ends.")
@click.option("--tail", type=click.IntRange(-1), default=-1, metavar="N", show_default=True,
              help="Only the last N lines (of the job's log, or of each instance read alone); -1: all.")
@click.option("--since", metavar="DURATION|TIME",
              help="Only lines from then on: 10m, 1h30m, 45s back from now, or an RFC 3339 time.")
@click.option("--timestamps", "-t", is_flag=True, help="Each line's time (RFC 3339, UTC) before its text.")
@click.option("--raw", is_flag=True, help="The lines exactly as the job wrote them, terminal control sequences "
              "included (by default they are shown escaped: \\x1b, \\r, ...).")
@click.option("--date", metavar="YYYY.MM.DD", help="Only that day's lines (also YYYY-MM-DD, today, yesterday).")
@click.option("--from", "offset", type=click.IntRange(0), default=0, help="Start at this line (0-based).")
@click.option("--size", type=click.IntRange(0), help="At most this many lines (default: all).")
@click.option("--all-days", is_flag=True, help="Ask day by day (date=...), for gateways that need a date.")
@click.pass_obj
def logs(state: State, name: str, instance: str | None, follow: bool, tail: int, since: str | None,
         timestamps: bool, raw: bool, date: str | None, offset: int, size: int | None, all_days: bool) -> int:
    """Print a job's logs: one instance's, or every instance's prefixed with its name.

    \b
    tenx logs hello --tail 20 -f      the last 20 lines, then new ones as they come
    tenx logs hello --since 10m -t    the last ten minutes' lines, with their times
    """
    if all_days and (date or follow):
        raise UsageError("--all-days goes with neither --date nor --follow")
    day = parse_date(date)
    read = Read(since=parse_since(since), timestamps=timestamps, tail=None if tail < 0 else tail,
                printer=LinePrinter(raw=raw))
    client = state.client()
    try:
        if follow:
            return _follow_logs(client, name, instance, day, offset, read)
        _print_logs(client, name, instance, day, offset, size, all_days, read)
    except KeyboardInterrupt:
        return INTERRUPTED
    return 0


@dataclass
class Read:
    """How ``logs`` reads and prints: the gateway's ``since`` and ``timestamps``, kubectl's ``--tail``."""
    since: str | None
    timestamps: bool
    tail: int | None
    printer: LinePrinter

    def query(self) -> dict[str, Any]:
        return {"since": self.since, "timestamps": self.timestamps}


def _targets(client, name: str, instance: str | None) -> list[str]:
    if instance is not None:
        return [instance]
    records = client.instances(name)
    return [r["name"] for r in records] if records is not None else \
        list(client.get_job(name).get("instance_names") or [])


def _print_logs(client, name, instance, day, offset, size, all_days, read: Read) -> None:
    targets = _targets(client, name, instance)
    several = instance is None and len(targets) > 1
    if several and not all_days and _job_level(client, name, day, offset, size, read):
        return
    records_by_name = {}
    if all_days:
        records_by_name = {r["name"]: r for r in (client.instances(name) or [])}
    read.printer.prefix = several
    for target in targets:
        days = [day]
        if all_days:
            record = records_by_name.get(target, {})
            days = days_between(record.get("started") or record.get("created"), record.get("finished"),
                                _now().date())
        lines = (line for one_day in days for line in Pages(
            lambda o, s, d=one_day, t=target: client.instance_logs(name, t, date=d, offset=o, size=s,
                                                                   **read.query()), offset, size, read.since))
        for line in _last(lines, read.tail):
            read.printer(target if several else None, line)


def _job_level(client, name, day, offset, size, read: Read) -> bool:
    """The extension's job-level call: every instance's lines in time order, ``[instance] line``. False from a
    gateway without it (the original API), before anything is printed: the caller then reads instance by
    instance."""
    from ..errors import TenxError
    pages = iter(Pages(lambda o, s: client.job_logs(name, date=day, offset=o, size=s, **read.query()), offset, size,
                       read.since))
    try:
        first = next(pages, None)
    except TenxError as exc:
        if exc.status in (404, 405):
            return False
        raise
    if first is not None:
        for line in _last(chain([first], pages), read.tail):
            read.printer(None, line)  # the gateway prefixed them
    return True


def _tail_start(client, name, instance, day, offset, read: Read) -> int | None:
    """``-f --tail N``: print the last N lines there are now and return the offset after them, where following
    goes on (None: the gateway has no job-level log; each instance is then followed from its start)."""
    if instance is not None:
        fetch = (lambda o, s: client.instance_logs(name, instance, date=day, offset=o, size=s, **read.query()))
    else:
        fetch = (lambda o, s: client.job_logs(name, date=day, offset=o, size=s, **read.query()))
    pages = Pages(fetch, offset, None, read.since)
    from ..errors import TenxError
    try:
        kept = deque(pages, maxlen=read.tail)
    except TenxError as exc:
        if instance is None and exc.status in (404, 405):
            return None
        raise
    for line in kept:
        if instance is None and line.startswith("[") and "] " in line:
            # the job's log: "[instance] text", printed as the stream's lines are (prefixed only once there are
            # several instances)
            who, _, text = line[1:].partition("] ")
            read.printer(who, text)
        else:
            read.printer(None, line)
    return pages.offset


def _follow_logs(client, name, instance, day, offset, read: Read) -> int:
    from ..follow import Follower
    start = _tail_start(client, name, instance, day, offset, read) if read.tail is not None else None
    follower = Follower(client, name, since=read.since, timestamps=read.timestamps,
                        start=start if instance is None else None)
    try:
        if instance is not None:
            end = follower.follow_instance(instance, read.printer, date=day,
                                           offset=(start if start is not None else offset) or None)
        else:
            end = follower.follow_job(read.printer)
    except KeyboardInterrupt:
        click.echo(f"\ntenx: stopped following; job {name} keeps running", err=True)
        return INTERRUPTED
    return 0 if end.status == st.SUCCEEDED else 1
