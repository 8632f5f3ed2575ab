"""Server-Sent Events, parsed as the HTML standard says (pure): bytes in, events out.

Lines end in CRLF, LF or CR (a CR at a chunk's end may be the first half of a CRLF); a line starting with ``:`` is a
comment (the gateway's ``: keepalive``); ``data`` lines join with LF; a blank line dispatches the event; ``id``
persists as the last event id, which is what a reconnect sends as ``Last-Event-ID``.
"""
from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator


@dataclass(frozen=True)
class Event:
    event: str          # "message" when the stream named none
    data: str
    id: str | None      # the last event id in force when it was dispatched
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data) if self.data else None


def lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded lines without their terminators; a last line without one is dropped, as the standard says."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer = ""
    for chunk in chunks:
        buffer += decoder.decode(chunk)
        start = 0
        while True:
            cr, lf = buffer.find("\r", start), buffer.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                if cr + 1 == len(buffer):
                    break  # wait: the next chunk may start with the LF of this CRLF
                yield buffer[start:cr]
                start = cr + 2 if buffer[cr + 1] == "\n" else cr + 1
            else:
                yield buffer[start:lf]
                start = lf + 1
        buffer = buffer[start:]
    if buffer.endswith("\r"):
        yield buffer[:-1]


class Parser:
    """Keeps the last event id and retry across events (and across reconnects, when the caller keeps it)."""

    def __init__(self, last_event_id: str | None = None):
        self.last_event_id = last_event_id
        self.retry: int | None = None

    def events(self, chunks: Iterable[bytes]) -> Iterator[Event]:
        data: list[str] = []
        name = ""
        for line in lines(chunks):
            if not line:
                if data:
                    yield Event(name or "message", "\n".join(data), self.last_event_id, self.retry)
                data, name = [], ""
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if key == "data":
                data.append(value)
            elif key == "event":
                name = value
            elif key == "id":
                if "\0" not in value:
                    self.last_event_id = value
            elif key == "retry" and value.isdigit():
                self.retry = int(value)
