"""Log slicing, pure: bytes chunks -> lines -> one day's lines -> ``[from, from+size)``.

Everything here is lazy, so the caller's stream is read only until the slice is complete; a page near the start
of a huge log costs little.
"""
from __future__ import annotations

import datetime as dt
from itertools import chain, islice
from typing import Iterable, Iterator, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import orjson

from . import timefmt

UTC = dt.timezone.utc
_SECONDS = len("2006-01-02T15:04:05")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T", bound=tuple)


def iter_lines(chunks: Iterable[bytes], max_line_bytes: int | None = None) -> Iterator[str]:
    """Split a byte stream into text lines. Lines are cut at ``\\n`` before decoding, so a multi-byte UTF-8
    character split across chunks survives; a last line without a newline is still a line.

    With ``max_line_bytes``, a longer line keeps only its first that many bytes and the rest is skipped as it
    streams by, so a line without end cannot fill the memory.
    """
    cap = max_line_bytes
    pending = bytearray()
    for chunk in chunks:
        if not chunk:
            continue
        start = 0
        newline = chunk.find(b"\n")
        while newline != -1:
            if pending:
                _extend(pending, chunk, start, newline, cap)
                yield pending.decode("utf-8", "replace")
                pending.clear()
            else:
                end = newline if cap is None else min(newline, start + cap)
                yield chunk[start:end].decode("utf-8", "replace")
            start = newline + 1
            newline = chunk.find(b"\n", start)
        _extend(pending, chunk, start, len(chunk), cap)
    if pending:
        yield pending.decode("utf-8", "replace")


def _extend(pending: bytearray, chunk: bytes, start: int, end: int, cap: int | None) -> None:
    if cap is not None:
        end = min(end, start + max(cap - len(pending), 0))
    if end > start:
        pending += chunk[start:end]


_FIRST = dt.datetime.min.replace(tzinfo=UTC)
_LAST = dt.datetime.max.replace(tzinfo=UTC)


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in ``timezone``, as UTC datetimes (a DST day is 23 or 25 hours long).

    At the ends of the calendar (0001.01.01 east of UTC, 9999.12.31) a bound that Python cannot represent is
    clamped to its first or last moment: such a day simply holds no line, rather than overflowing."""
    zone = ZoneInfo(timezone)
    return _utc_midnight(day, zone, _FIRST), (
        _LAST if day == dt.date.max else _utc_midnight(day + dt.timedelta(days=1), zone, _LAST))


def _utc_midnight(day: dt.date, zone: ZoneInfo, clamp: dt.datetime) -> dt.datetime:
    try:
        return dt.datetime.combine(day, dt.time(0), zone).astimezone(UTC)
    except OverflowError:
        return clamp


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
    return _seconds(parsed.astimezone(UTC))


def within(stamped_lines: Iterable[str], start: dt.datetime, end: dt.datetime) -> Iterator[str]:
    """The messages of ``"<RFC3339 timestamp> <message>"`` lines stamped in [start, end).

    A container's log is in time order, so the first line at or past ``end`` ends the read. A line without a
    readable stamp (none is expected) goes with the line before it.
    """
    low, high = _seconds(start), _seconds(end)
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


def _seconds(moment: dt.datetime) -> str:
    """'YYYY-MM-DDTHH:MM:SS' with four year digits even before year 1000 (strftime's %Y writes '1' for year 1)."""
    return moment.isoformat(timespec="seconds")[:_SECONDS]


def page(lines: Iterable[str], offset: int, size: int) -> list[str]:
    """Lines ``[offset, offset+size)``; stops pulling from ``lines`` once it has them."""
    return list(islice(lines, offset, offset + size))


class Page(NamedTuple):
    lines: list[str]
    # cut short by the byte limit: fewer lines than asked for, though the log may go on
    truncated: bool = False
    # with ``since``: the offset of the first line (past the page's end, where the next line will be, if none)
    first: int | None = None


def since_seek(stamped: Iterable[T], since_ns: int | None) -> tuple[int, Iterator[T]]:
    """``since``: skip the leading items (whose first field is a line's stamp, in ns) stamped before ``since_ns``.
    (How many were skipped, the rest.) A log is in time order, so this is a seek: what follows is not filtered."""
    rest = iter(stamped)
    if since_ns is None:
        return 0, rest
    skipped = 0
    for item in rest:
        if item[0] >= since_ns:
            return skipped, chain((item,), rest)
        skipped += 1
    return skipped, iter(())


def stamped_within(lines: Iterable[T], start: dt.datetime, end: dt.datetime) -> Iterator[T]:
    """``within`` for stamped lines ((ts_ns, text) first fields): those stamped in [start, end); the first at or
    past ``end`` ends the read."""
    low, high = _ns(start), _ns(end)
    for line in lines:
        if line[0] >= high:
            return
        if line[0] >= low:
            yield line


def stamped_page(rows: Iterable[tuple[int, str, str]], offset: int, size: int, since_ns: int | None,
                 timestamps: bool, max_bytes: int) -> Page:
    """A page of (ts_ns, prefix, text) rows read from ``offset``: moved on past the rows stamped before ``since_ns``,
    ``size`` of them at most ``max_bytes``, each ``prefix`` + (with ``timestamps``) its RFC 3339 stamp and a space
    + text. ``first`` is the offset the page starts at, when ``since`` may have moved it."""
    skipped, rest = since_seek(rows, since_ns)
    lines = (f"{prefix}{timefmt.rfc3339_nano(ts)} {text}" if timestamps else prefix + text
             for ts, prefix, text in islice(rest, size))
    page = capped(lines, max_bytes)
    return page if since_ns is None else page._replace(first=offset + skipped)


def _ns(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def json_size(line: str) -> int:
    """Bytes the line takes in the JSON array sent: its encoding (a control character escapes to 6 bytes, a
    quote or backslash to 2) and the comma before the next one."""
    return len(orjson.dumps(line)) + 1


def capped(lines: Iterable[str], max_bytes: int) -> Page:
    """The leading lines of ``lines`` whose JSON array (as sent, with its brackets and commas) is at most
    ``max_bytes``; stops pulling once over. A first line too long on its own is cut to fit, so a page is never
    empty just for being big."""
    kept: list[str] = []
    used = 1  # "[" and, in place of the last line's comma, "]"
    for line in lines:
        size = json_size(line)
        if used + size > max_bytes:
            if not kept:
                kept.append(_cut_to(line, max_bytes - used - 1))
            return Page(kept, True)
        kept.append(line)
        used += size
    return Page(kept)


def _cut_to(line: str, budget: int) -> str:
    """The longest start of ``line`` whose JSON string is at most ``budget`` bytes (a character at a time from
    the UTF-8 cut, which is never shorter than the JSON)."""
    text = line.encode()[:max(budget - 2, 0)].decode("utf-8", "ignore")
    size = len(orjson.dumps(text))
    while size > budget and text:
        # drop about as many characters as the JSON is over, then refine
        text = text[: max(len(text) - max((size - budget) // 6, 1), 0)]
        size = len(orjson.dumps(text))
    return text


def page_capped(lines: Iterable[str], offset: int, size: int, max_bytes: int) -> Page:
    """``page`` with a byte budget: lines ``[offset, offset+size)``, but no more than ``max_bytes`` of them."""
    return capped(islice(lines, offset, offset + size), max_bytes)


def skip_lines(chunks: Iterable[bytes], count: int) -> Iterator[bytes]:
    """The byte stream after its first ``count`` lines. Newlines are counted in C, a chunk at a time, so the
    lines before a late page are never split or decoded, and nothing is buffered."""
    for chunk in chunks:
        if count:
            newlines = chunk.count(b"\n")
            if newlines < count:
                count -= newlines
                continue
            chunk = chunk.split(b"\n", count)[-1]
            count = 0
        if chunk:
            yield chunk
