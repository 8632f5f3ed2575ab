"""Timestamped log lines from the apiserver -> ``LogLine``s, and the de-duplication that makes resuming exact."""
from __future__ import annotations

from typing import Iterable, Iterator

from ..timefmt import NS, from_ns, rfc3339, stamp_ns
from .base import LogLine, ResumePoint

__all__ = ["parse_stamped", "since_time", "stamp_ns", "unseen"]

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
