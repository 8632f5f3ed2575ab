"""Log slicing, pure: bytes chunks -> lines -> one day's lines -> ``[from, from+size)``.

Everything here is lazy, so the caller's stream is read only until the slice is complete; a page near the start
of a huge log costs little.
"""
from __future__ import annotations

import datetime as dt
from itertools import islice
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
_SECONDS = len("2006-01-02T15:04:05")


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Split a byte stream into text lines. Lines are cut at ``\\n`` before decoding, so a multi-byte UTF-8
    character split across chunks survives; a last line without a newline is still a line."""
    pending = bytearray()
    for chunk in chunks:
        if not chunk:
            continue
        start = 0
        newline = chunk.find(b"\n")
        while newline != -1:
            if pending:
                pending += chunk[start:newline]
                yield pending.decode("utf-8", "replace")
                pending.clear()
            else:
                yield chunk[start:newline].decode("utf-8", "replace")
            start = newline + 1
            newline = chunk.find(b"\n", start)
        pending += chunk[start:]
    if pending:
        yield pending.decode("utf-8", "replace")


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in ``timezone``, as UTC datetimes (a DST day is 23 or 25 hours long)."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(0), zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _utc_key(stamp: str) -> str | None:
    """A sortable 'YYYY-MM-DDTHH:MM:SS' in UTC for an RFC 3339 timestamp; None if it is not one.

    Day bounds fall on whole seconds, so fractions never matter. UTC stamps ('Z', what kubelets write) are
    compared as text, without parsing; others are converted.
    """
    if stamp.endswith("Z") and len(stamp) >= _SECONDS + 1 and stamp[10:11] == "T":
        return stamp[:_SECONDS]
    try:
        parsed = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def within(stamped_lines: Iterable[str], start: dt.datetime, end: dt.datetime) -> Iterator[str]:
    """The messages of ``"<RFC3339 timestamp> <message>"`` lines stamped in [start, end).

    A container's log is in time order, so the first line at or past ``end`` ends the read. A line without a
    readable stamp (none is expected) goes with the line before it.
    """
    low, high = start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")
    inside = False
    for line in stamped_lines:
        stamp, _, message = line.partition(" ")
        key = _utc_key(stamp)
        if key is None:
            if inside:
                yield line
            continue
        if key >= high:
            return
        inside = key >= low
        if inside:
            yield message


def page(lines: Iterable[str], offset: int, size: int) -> list[str]:
    """Lines ``[offset, offset+size)``; stops pulling from ``lines`` once it has them."""
    return list(islice(lines, offset, offset + size))


def strip_timestamps(stamped_lines: Iterable[str]) -> Iterator[str]:
    for line in stamped_lines:
        yield line.partition(" ")[2]
