"""A producer -> an SSE response body: the ``retry`` hint, heartbeats, the idle and total timeouts, the
``shutdown`` event on SIGTERM, the ``error`` event, the user's recheck, and the end of the producer when the
response ends.

The body (``StreamBody``) owns the stream's resources. The producer starts only when the body's first byte is
asked for, and ``close()`` (which the WSGI server calls however the response ends: the client left, a timeout, a
shutdown, a HEAD whose body is never read) stops it and gives the user's stream slot back, once.

The producer runs apart from the response (a greenlet under gunicorn's gevent worker, a thread otherwise) and hands
events over through a queue bounded in events and in bytes; the response side waits on that queue at most a second
at a time, so a heartbeat, a timeout or a shutdown is never late by more than that. The producer is stopped
cooperatively: its next ``send``, ``sleep`` or wait raises ``Stopped``, and it unwinds through its own ``finally``
blocks (closing its apiserver stream there). It is never killed at an arbitrary blocking point: a greenlet killed
inside a socket read left gevent's event loop watching a file descriptor that was closed under it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .. import errors
from . import sse

log = logging.getLogger(__name__)

RETRY_MILLISECONDS = 2000
_TICK = 1.0  # the longest the response side waits before it looks at the clock and the shutdown flag again
_QUEUE = 256  # events queued for one client at most
# bytes queued for one client at most (one event larger than this still passes alone): a client that does not read
# holds this much of its worker's memory, not _QUEUE lines of up to GATEWAY_LOG_MAX_BYTES each
_QUEUE_BYTES = 1024 * 1024
_BATCH = 64  # events written at once when the client is behind
REVOKED = "the user was removed or their API token changed"

_shutting_down = False


def begin_shutdown() -> None:
    """Every open stream of this process sends ``shutdown`` and ends within a second (gunicorn.conf.py calls this
    when the worker gets SIGTERM). Only sets a flag: safe in a signal handler."""
    global _shutting_down
    _shutting_down = True


def shutting_down() -> bool:
    return _shutting_down


class Stopped(Exception):
    """Raised in the producer by ``Out.send`` (and ``sleep``) once the response has ended."""


@dataclass(frozen=True)
class Limits:
    heartbeat: float
    idle: float
    total: float


class Out:
    """What a producer writes to: events, and whether anyone still listens."""

    def __init__(self) -> None:
        self._items: deque[tuple[bytes | None, Any, bool]] = deque()
        self._bytes = 0
        self._max_events, self._max_bytes = _QUEUE, _QUEUE_BYTES
        self._changed = threading.Condition()
        self._stopped = threading.Event()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _has_room(self, size: int) -> bool:
        return not self._items or (len(self._items) < self._max_events and self._bytes + size <= self._max_bytes)

    def _put(self, chunk: bytes | None, id: Any, last: bool) -> None:
        self._items.append((chunk, id, last))
        self._bytes += len(chunk or b"")
        self._changed.notify_all()

    def send(self, chunk: bytes, id: Any = None) -> None:
        """Hand one framed event over (``id``: what ``shutdown`` names as ``resume`` once it is sent); blocks
        while the client reads slowly, raises ``Stopped`` once the response has ended."""
        with self._changed:
            while not self._has_room(len(chunk)):
                if self._stopped.is_set():
                    raise Stopped()
                self._changed.wait(_TICK)
            if self._stopped.is_set():
                raise Stopped()
            self._put(chunk, id, False)

    def offer(self, chunk: bytes, id: Any = None) -> bool:
        """``send`` without waiting (a hub hands one line to all its subscribers): False if the client is too far
        behind (or gone), and nothing was queued."""
        with self._changed:
            if self._stopped.is_set() or not self._has_room(len(chunk)):
                return False
            self._put(chunk, id, False)
            return True

    def sleep(self, seconds: float) -> None:
        """Wait, but raise ``Stopped`` as soon as the response has ended."""
        if self._stopped.wait(seconds):
            raise Stopped()

    def take(self, timeout: float, most: int = _BATCH) -> list[tuple[bytes | None, Any, bool]]:
        """Up to ``most`` queued items, ``(chunk, id, last)``, waiting up to ``timeout`` for the first; ``last``
        marks the producer's end (its final event, if any, is the chunk)."""
        with self._changed:
            if not self._items and timeout > 0:
                self._changed.wait(timeout)
            taken = []
            while self._items and len(taken) < most:
                item = self._items.popleft()
                self._bytes -= len(item[0] or b"")
                taken.append(item)
            if taken:
                self._changed.notify_all()
            return taken

    def stop(self) -> None:
        """Nobody listens any more: the producer's next ``send``, ``offer`` or ``sleep`` says so."""
        self._stopped.set()
        with self._changed:
            self._items.clear()
            self._bytes = 0
            self._changed.notify_all()

    def finish(self, chunk: bytes | None) -> None:
        """The producer's end, after its last event ``chunk`` (None: it ended with ``end`` sent already)."""
        with self._changed:
            while not self._has_room(len(chunk or b"")) and not self._stopped.is_set():
                self._changed.wait(_TICK)
            if not self._stopped.is_set():
                self._put(chunk, None, True)


def _run(produce: Callable[[Out], None], out: Out) -> None:
    final: bytes | None = None
    try:
        produce(out)
    except Stopped:
        return
    except errors.GatewayError as exc:
        final = sse.event(errors.error_body(exc.code, exc.description or ""), name="error")
    except Exception:  # noqa: BLE001 - the client gets an error event, the log the details
        log.exception("a stream failed")
        final = sse.event(errors.error_body(500, "internal error"), name="error")
    out.finish(final)


class StreamBody:
    """The body of one stream response: an iterator of byte chunks whose ``close()`` releases everything the
    stream holds, whether or not the body was ever iterated."""

    def __init__(self, produce: Callable[[Out], None], limits: Limits, on_close: Callable[[], None],
                 still_allowed: Callable[[], bool] | None, clock: Callable[[], float]):
        self._produce = produce
        self._limits = limits
        self._on_close = on_close
        self._still_allowed = still_allowed
        self._clock = clock
        self._chunks: Iterator[bytes] | None = None
        self._closed = False
        self.out = Out()

    def __iter__(self) -> StreamBody:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        if self._chunks is None:
            self._chunks = self._respond()
        return next(self._chunks)

    def close(self) -> None:
        """Idempotent. A body never started (a HEAD, a client gone before the first byte) only gives its slot
        back; one started stops its producer too (the generator's ``finally``)."""
        if self._closed:
            return
        self._closed = True
        if self._chunks is not None:
            self._chunks.close()
        else:
            self._on_close()

    def _respond(self) -> Iterator[bytes]:
        out, limits, clock = self.out, self._limits, self._clock
        started = last_event = last_write = checked = clock()
        resume = None
        try:
            threading.Thread(target=_run, args=(self._produce, out), name="stream-producer", daemon=True).start()
            yield sse.retry(RETRY_MILLISECONDS)
            while True:
                now = clock()
                if _shutting_down:
                    yield _shutdown("shutdown", resume)
                    return
                if now - started >= limits.total or now - last_event >= limits.idle:
                    yield _shutdown("timeout", resume)
                    return
                if self._still_allowed is not None and now - checked >= limits.heartbeat:
                    checked = now
                    if not self._allowed():
                        yield sse.event(errors.error_body(401, REVOKED), name="error")
                        return
                items = out.take(max(0.0, min(_TICK, limits.heartbeat - (now - last_write))))
                if not items:
                    if clock() - last_write >= limits.heartbeat:
                        yield sse.KEEPALIVE
                        last_write = clock()
                    continue
                batch = []
                for chunk, id_, last in items:
                    if chunk is not None:
                        batch.append(chunk)
                    if last:  # the producer's end: its last event (end or error) was queued before
                        yield b"".join(batch)
                        return
                    if id_ is not None:
                        resume = id_
                yield b"".join(batch)
                last_event = last_write = clock()
        finally:
            out.stop()
            self._on_close()

    def _allowed(self) -> bool:
        try:
            return self._still_allowed()
        except Exception:  # noqa: BLE001 - a user table that cannot be read now cuts no stream
            log.warning("a stream could not recheck its user", exc_info=True)
            return True


def body(produce: Callable[[Out], None], limits: Limits, *, on_close: Callable[[], None] = lambda: None,
         still_allowed: Callable[[], bool] | None = None, clock: Callable[[], float] = time.monotonic) -> StreamBody:
    """The response body of a stream whose events ``produce(out)`` sends. ``on_close`` runs once, whatever ends
    it (it gives the user's stream slot back); ``still_allowed()``, asked every heartbeat period, ends the stream
    with a 401 ``error`` event once it is False (the user was removed)."""
    return StreamBody(produce, limits, on_close, still_allowed, clock)


def _shutdown(reason: str, resume: Any) -> bytes:
    return sse.event({"reason": reason, "resume": resume}, name="shutdown")
