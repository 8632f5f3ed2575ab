"""Server-Sent Events framing (https://html.spec.whatwg.org/multipage/server-sent-events.html), pure.

Every ``data`` is one line of JSON (orjson never writes a raw CR or LF), so a log line with line breaks inside
cannot break the framing."""
from __future__ import annotations

from typing import Any

import orjson

CONTENT_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keepalive\n\n"


def event(data: Any, *, id: int | str | None = None, name: str | None = None) -> bytes:
    """One event: ``event:`` (if named), ``id:`` (if given), ``data:`` as one line of JSON, a blank line."""
    parts = []
    if name is not None:
        parts.append(b"event: " + name.encode() + b"\n")
    if id is not None:
        parts.append(b"id: " + str(id).encode() + b"\n")
    parts.append(b"data: " + orjson.dumps(data) + b"\n\n")
    return b"".join(parts)


def retry(milliseconds: int) -> bytes:
    """How long an EventSource waits before it reconnects by itself."""
    return f"retry: {int(milliseconds)}\n\n".encode()
