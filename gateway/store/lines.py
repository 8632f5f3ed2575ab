"""Timestamped log lines from the apiserver -> ``LogLine``s, and the de-duplication that makes resuming exact."""
from __future__ import annotations

import datetime as dt
import functools
from typing import Iterable, Iterator

from .base import NS, LogLine, ResumePoint

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def stamp_ns(stamp: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 stamp. UTC stamps (what kubelets write) keep all nine fractional
    digits, since datetime keeps six and lines a few hundred nanoseconds apart must stay apart; others are parsed
    by datetime."""
    if stamp.endswith("Z"):
        whole, _, fraction = stamp[:-1].partition(".")
        if not fraction.isdigit() and fraction:
            return None
        seconds = _utc_seconds(whole)
        if seconds is None:
            return None
        return seconds * NS + int(fraction[:9].ljust(9, "0"))
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) * 1000


@functools.lru_cache(maxsize=1024)
def _utc_seconds(whole: str) -> int | None:
    """Seconds since the epoch of 'YYYY-MM-DDTHH:MM:SS' in UTC; cached, since a second's lines share it (the
    collector parses every line of every container)."""
    try:
        moment = dt.datetime.fromisoformat(whole + "+00:00")
    except ValueError:
        return None
    return (moment - _EPOCH) // dt.timedelta(seconds=1)


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
    moment = _EPOCH + dt.timedelta(seconds=point.last_ts_ns // NS)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
