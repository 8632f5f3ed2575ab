"""The CRI log format the kubelet's runtime writes (and the local process agent too), pure: entries -> lines.

One entry per line of the file: ``<RFC 3339 stamp> <stream> <tag> <content>``. ``stream`` is stdout or stderr;
``tag`` is ``F`` for a full line (the newline the program wrote is the entry's) or ``P`` for a partial one, which
the runtime writes for a line longer than its buffer (containerd: 16 KiB) and for a last line without a newline.
The program's line is the stream's ``P`` entries joined up to its next ``F``, exactly as the kubelet's plain log
read joins them, so that the archive counts lines as a live read counts them. A joined line takes its last
entry's stamp: the moment it was complete, which keeps the lines of a file in time order as they come out.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..store import LogLine
from ..timefmt import NS, stamp_ns

_EPOCH = dt.datetime(1970, 1, 1)
_seconds: dict[bytes, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch seconds (UTC): a second's lines share it


def entry_ns(stamp: bytes) -> int | None:
    """Nanoseconds since the epoch of an entry's stamp; None if unreadable. UTC stamps (containerd's and the
    process agent's) take a cached fast path, with all nine fraction digits; containerd trims trailing zeros."""
    if len(stamp) >= 20 and stamp[-1] == 0x5A and stamp[10] == 0x54:  # ...Z, with the T
        whole = stamp[:19]
        seconds = _seconds.get(whole)
        if seconds is None:
            try:
                seconds = int((dt.datetime.fromisoformat(whole.decode("ascii")) - _EPOCH).total_seconds())
            except (ValueError, UnicodeDecodeError):
                return None
            if len(_seconds) > 4096:
                _seconds.clear()
            _seconds[whole] = seconds
        if len(stamp) == 20:
            return seconds * NS
        fraction = stamp[20:-1]
        if stamp[19] != 0x2E or not fraction.isdigit():
            return None
        return seconds * NS + int(fraction[:9].ljust(9, b"0"))
    try:
        return stamp_ns(stamp.decode("ascii"))
    except UnicodeDecodeError:
        return None


@dataclass
class Joiner:
    """P entries waiting for their F, per stream; and the last stamp read, which a malformed entry takes.

    ``pending`` is part of a resume point (``state``/``restore``): lines of the other stream may be archived
    while a long line is still half written."""
    max_line_bytes: int | None = None
    pending: dict[bytes, bytearray] = field(default_factory=dict)
    last_ns: int = 0

    def feed(self, data: bytes) -> list[LogLine]:
        """The lines completed by ``data``: whole entries, each ending with ``\\n``."""
        out: list[LogLine] = []
        cap = self.max_line_bytes
        pending = self.pending
        last = self.last_ns
        for raw in data.split(b"\n")[:-1]:
            parts = raw.split(b" ", 3)
            ts = entry_ns(parts[0]) if len(parts) >= 3 else None
            if ts is None:  # not an entry (a torn or foreign line): kept as a full line of its own
                stream, partial, content, ts = b"", False, raw, last
            else:
                stream, partial = parts[1], parts[2] == b"P"
                content = parts[3] if len(parts) == 4 else b""
            last = ts
            held = pending.get(stream)
            if partial:
                if held is None:
                    pending[stream] = held = bytearray()
                if cap is None or len(held) < cap:
                    held += content
                continue
            if held is not None:
                held += content
                content = bytes(held)
                del pending[stream]
            if cap is not None and len(content) > cap:
                content = content[:cap]
            out.append(LogLine(ts, content.decode("utf-8", "replace")))
        self.last_ns = last
        return out

    def flush(self) -> list[LogLine]:
        """The streams' unfinished lines, as lines: the attempt is over (its output ended without a newline)."""
        out = []
        for stream in sorted(self.pending):
            content = bytes(self.pending[stream])
            if self.max_line_bytes is not None:
                content = content[:self.max_line_bytes]
            out.append(LogLine(self.last_ns, content.decode("utf-8", "replace")))
        self.pending.clear()
        return out

    def state(self) -> dict[str, str] | None:
        """The unfinished lines, JSON-able (bytes as latin-1 text); None when there are none."""
        if not self.pending:
            return None
        return {stream.decode("latin-1"): bytes(held).decode("latin-1") for stream, held in self.pending.items()}

    def restore(self, state: dict[str, str] | None, last_ns: int) -> None:
        self.pending = {stream.encode("latin-1"): bytearray(held.encode("latin-1"))
                        for stream, held in (state or {}).items()}
        self.last_ns = last_ns
