"""Timestamped log lines, pure: the apiserver's ``"<RFC 3339 stamp> <text>"`` lines -> ``LogLine``s, a day's lines
of them, and the de-duplication that makes resuming at a stored point exact (the apiserver collector resumes so, and
a page reads a running pod's lines after the archive's end so)."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Iterator, TypeVar

from ..store.base import LogLine, ResumePoint
from ..timefmt import NS, from_ns, ns_of, rfc3339, stamp_ns

T = TypeVar("T", bound=tuple)


def parse_stamped(lines: Iterable[str]) -> Iterator[LogLine]:
    """``"<stamp> <text>"`` lines -> LogLines; a line without a readable stamp takes its predecessor's."""
    last = 0
    for line in lines:
        stamp, _, text = line.partition(" ")
        ts = stamp_ns(stamp)
        if ts is None:
            ts, text = last, line
        last = ts
        yield LogLine(ts, text)


def since_time(point: ResumePoint) -> str | None:
    """The apiserver's ``sinceTime`` (whole seconds, rounded down) for resuming at ``point``."""
    if point.last_ts_ns is None:
        return None
    return rfc3339(from_ns(point.last_ts_ns // NS * NS))


def unseen(lines: Iterable[LogLine], point: ResumePoint) -> Iterator[LogLine]:
    """Drop what the store already holds: lines before the last stored stamp, and as many lines stamped exactly
    at it as were stored."""
    if point.last_ts_ns is None:
        yield from lines
        return
    to_skip = point.lines_at_last_ts
    for line in lines:
        if line.ts_ns < point.last_ts_ns:
            continue
        if line.ts_ns == point.last_ts_ns and to_skip:
            to_skip -= 1
            continue
        yield line


def within(stamped_lines: Iterable[str], start: dt.datetime, end: dt.datetime) -> Iterator[str]:
    """The texts of ``"<RFC3339 stamp> <text>"`` lines stamped in [start, end).

    A container's log is in time order, so the first line at or past ``end`` ends the read. A line without a
    readable stamp (none is expected) goes with the line before it.
    """
    rows = ((line.ts_ns, line.text) for line in parse_stamped(stamped_lines))
    for _, text in stamped_within(rows, start, end):
        yield text


def stamped_within(lines: Iterable[T], start: dt.datetime, end: dt.datetime) -> Iterator[T]:
    """``(ts_ns, ...)`` rows stamped in [start, end); the first at or past ``end`` ends the read."""
    low, high = ns_of(start), ns_of(end)
    for line in lines:
        if line[0] >= high:
            return
        if line[0] >= low:
            yield line
