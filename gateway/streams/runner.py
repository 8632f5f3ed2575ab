"""A producer -> an SSE response body: the ``retry`` hint, heartbeats, the idle and total timeouts, the
``shutdown`` event on SIGTERM, the ``error`` event, and the end of the producer when the client goes away.

The producer runs apart from the response (a greenlet under gunicorn's gevent worker, a thread otherwise) and hands
events over through a bounded queue; the response side waits on that queue at most a second at a time, so a
heartbeat, a timeout or a shutdown is never late by more than that. When the response ends for any reason (the
client left, a timeout, the shutdown) the producer is stopped: killed at its blocking point under gevent (which
closes its apiserver stream), told to stop at its next line otherwise.
"""
from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .. import errors
from . import sse

log = logging.getLogger(__name__)

RETRY_MILLISECONDS = 2000
_TICK = 1.0  # the longest the response side waits before it looks at the clock and the shutdown flag again
_QUEUE = 256
_BATCH = 64  # events written at once when the client is behind

_shutting_down = False


def begin_shutdown() -> None:
    """Every open stream of this process sends ``shutdown`` and ends within a second (gunicorn.conf.py calls this
    when the worker gets SIGTERM). Only sets a flag: safe in a signal handler."""
    global _shutting_down
    _shutting_down = True


def shutting_down() -> bool:
    return _shutting_down


class Stopped(Exception):
    """Raised in the producer by ``Out.send`` once the response has ended."""


@dataclass(frozen=True)
class Limits:
    heartbeat: float
    idle: float
    total: float


class Out:
    """What a producer writes to: events, and whether anyone still listens."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue(_QUEUE)
        self._stopped = threading.Event()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def send(self, chunk: bytes, id: Any = None) -> None:
        """Hand one framed event over (``id``: what ``shutdown`` names as ``resume`` once it is sent); blocks
        while the client reads slowly, raises ``Stopped`` once the response has ended."""
        while True:
            if self._stopped.is_set():
                raise Stopped()
            try:
                self._queue.put((chunk, id), timeout=_TICK)
                return
            except queue.Full:
                continue

    def offer(self, chunk: bytes, id: Any = None) -> bool:
        """``send`` without waiting (a hub hands one line to all its subscribers): False if the client is too far
        behind (or gone), and nothing was queued."""
        if self._stopped.is_set():
            return False
        try:
            self._queue.put_nowait((chunk, id))
        except queue.Full:
            return False
        return True

    def sleep(self, seconds: float) -> None:
        """Wait, but raise ``Stopped`` as soon as the response has ended."""
        if self._stopped.wait(seconds):
            raise Stopped()

    def _finish(self, chunk: bytes | None) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put((chunk, None, True), timeout=_TICK)
                return
            except queue.Full:
                continue


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


def _spawn(run: Callable[[], None]) -> Callable[[], None]:
    """Start ``run`` apart; return how to stop it at once (a no-op for a thread, which stops by itself)."""
    if _gevent_patched():
        import gevent
        greenlet = gevent.spawn(run)
        return lambda: greenlet.kill(block=False)
    threading.Thread(target=run, name="stream-producer", daemon=True).start()
    return lambda: None


def body(produce: Callable[[Out], None], limits: Limits, *, on_close: Callable[[], None] = lambda: None,
         clock: Callable[[], float] = time.monotonic) -> Iterator[bytes]:
    """The response body of a stream whose events ``produce(out)`` sends. ``on_close`` runs once, whatever ends
    it (it gives the user's stream slot back)."""
    out = Out()

    def run() -> None:
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
        out._finish(final)

    stop = _spawn(run)
    return _respond(out, limits, stop, on_close, clock)


def _respond(out: Out, limits: Limits, stop: Callable[[], None], on_close: Callable[[], None],
             clock: Callable[[], float]) -> Iterator[bytes]:
    started = last_event = last_write = clock()
    resume = None
    try:
        yield sse.retry(RETRY_MILLISECONDS)
        while True:
            now = clock()
            if _shutting_down:
                yield _shutdown("shutdown", resume)
                return
            if now - started >= limits.total or now - last_event >= limits.idle:
                yield _shutdown("timeout", resume)
                return
            wait = max(0.0, min(_TICK, limits.heartbeat - (now - last_write)))
            try:
                item = out._queue.get(timeout=wait)
            except queue.Empty:
                if clock() - last_write >= limits.heartbeat:
                    yield sse.KEEPALIVE
                    last_write = clock()
                continue
            batch: list[bytes] = []
            while True:  # everything already queued goes in one write
                chunk, id_ = item[0], item[1]
                if len(item) == 3:  # the producer's end: its last event (end or error) was queued before
                    if chunk is not None:
                        batch.append(chunk)
                    yield b"".join(batch)
                    return
                batch.append(chunk)
                if id_ is not None:
                    resume = id_
                if len(batch) >= _BATCH:
                    break
                try:
                    item = out._queue.get_nowait()
                except queue.Empty:
                    break
            yield b"".join(batch)
            last_event = last_write = clock()
    finally:
        out._stopped.set()
        stop()
        on_close()


def _shutdown(reason: str, resume: Any) -> bytes:
    return sse.event({"reason": reason, "resume": resume}, name="shutdown")
