"""One upstream per followed container, shared: however many clients of one worker follow an instance, the worker
reads its log from the apiserver once, and frames each line once.

A ``Hub`` follows a container's current attempt from its first line (so it counts offsets exactly as the paged
call does) and keeps the last lines (``BUFFER_LINES``, ``BUFFER_BYTES``). A subscriber first takes what it lacks
from that buffer (at its own pace), then joins: from then on the hub's reader hands each new line, framed once, to
every subscriber's queue without waiting. One that falls ``runner._QUEUE`` events behind is let go (``overrun``)
and catches up from the buffer again, so a slow client never holds the others back. The hub ends when its
upstream ends (the container's attempt is over: subscribers then look at the pod) or when nobody has listened for
``IDLE_SECONDS``. A subscriber older than the buffer reads that part itself (``Behind``), then joins.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Hashable, Iterator

from .. import errors
from . import sse
from .runner import Out, Stopped

BUFFER_LINES = 10_000
BUFFER_BYTES = 8 * 1024 * 1024
IDLE_SECONDS = 10.0
_RETRY_SECONDS = 1.0


class Behind(Exception):
    """The subscriber's offset (``offset``, the next line it needs) is older than the buffer: read up to
    ``Hub.first`` elsewhere, then come back."""

    def __init__(self, offset: int):
        super().__init__(offset)
        self.offset = offset


def as_archived(text: str) -> str:
    """A line as the archive stores it (NUL becomes U+FFFD, store/base.py), so that a stream sends at an offset
    what a page of that offset shows."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def frame(offset: int, text: str) -> bytes:
    """An instance's log line as its SSE event."""
    return sse.event({"offset": offset, "line": as_archived(text)}, id=offset)


class Subscriber:
    def __init__(self, out: Out, offset: int):
        self.out = out
        self.offset = offset  # the next line it needs
        self.released = threading.Event()  # the hub ended, or let it go for being too slow
        self.overrun = False


class Hub:
    def __init__(self, open_lines: Callable[[int], Iterator[str]], on_exit: Callable[[], None]):
        """``open_lines(skip)``: the container's lines after the first ``skip``, followed (a generator that ends
        when the container's attempt ends and raises Unavailable when the stream breaks)."""
        self._open_lines = open_lines
        self._on_exit = on_exit
        self._lines: deque[bytes] = deque()  # framed
        self._bytes = 0
        self.first = 0  # offset of the oldest kept line
        self.next = 0  # offset of the next line to come
        self.ended = False  # the upstream ended: no more lines will come from this hub
        self.failure: Exception | None = None
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._last_listener = time.monotonic()

    def start(self) -> Hub:
        threading.Thread(target=self._run, name="stream-hub", daemon=True).start()
        return self

    # -- the reader --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._idle():
                lines = self._open_lines(self.next)
                try:
                    for line in lines:
                        self._append(line)
                        if self._idle():
                            return
                    return  # the attempt ended
                except errors.Unavailable:  # broken or silent too long: reopen where it stopped
                    time.sleep(_RETRY_SECONDS)
                finally:
                    lines.close()  # the upstream connection goes now, not when the generator is collected
        except Exception as exc:  # noqa: BLE001 - handed to the subscribers (LogNotAvailable: not started yet)
            self.failure = exc
        finally:
            with self._lock:
                self.ended = True
                for subscriber in self._subscribers:
                    subscriber.released.set()
                self._subscribers.clear()
            self._on_exit()

    def _append(self, text: str) -> None:
        with self._lock:
            offset = self.next
            framed = frame(offset, text)
            self._lines.append(framed)
            self._bytes += len(framed)
            self.next += 1
            while len(self._lines) > BUFFER_LINES or (self._bytes > BUFFER_BYTES and len(self._lines) > 1):
                self._bytes -= len(self._lines.popleft())
                self.first += 1
            slow = []
            for subscriber in self._subscribers:
                if subscriber.offset != offset:  # it joined ahead of the log (from=N past its end): not yet
                    continue
                if subscriber.out.offer(framed, offset):
                    subscriber.offset = offset + 1
                else:
                    slow.append(subscriber)
            for subscriber in slow:
                self._subscribers.discard(subscriber)
                subscriber.overrun = True
                subscriber.released.set()
            if self._subscribers:
                self._last_listener = time.monotonic()

    def _idle(self) -> bool:
        return not self._subscribers and time.monotonic() - self._last_listener > IDLE_SECONDS

    # -- the subscribers ---------------------------------------------------------------------------------------

    def follow(self, out: Out, offset: int) -> int:
        """Send ``out`` every line from ``offset`` until the hub ends; the next offset. Raises ``Behind`` if the
        offset it reached is older than the buffer, ``Stopped`` when the client is gone."""
        subscriber = Subscriber(out, offset)
        while True:
            with self._lock:
                if subscriber.offset < self.first:
                    raise Behind(subscriber.offset)
                start = subscriber.offset - self.first
                pending = [self._lines[i] for i in range(start, min(len(self._lines), start + 256))]
                if not pending:
                    if self.ended:
                        return subscriber.offset
                    subscriber.released.clear()
                    subscriber.overrun = False
                    self._subscribers.add(subscriber)
                    self._last_listener = time.monotonic()
            if pending:  # catching up, at the client's pace, outside the lock
                for framed in pending:
                    out.send(framed, subscriber.offset)
                    subscriber.offset += 1
                continue
            try:
                while not subscriber.released.wait(1.0):
                    if out.stopped:
                        raise Stopped()
            finally:
                with self._lock:
                    self._subscribers.discard(subscriber)
                    self._last_listener = time.monotonic()
            if not subscriber.overrun:  # the hub ended: what it had was all handed over
                return subscriber.offset


class Hubs:
    """The hubs of one process, by key; a hub that ended is forgotten, so the next subscriber starts a new one."""

    def __init__(self) -> None:
        self._hubs: dict[Hashable, Hub] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, open_lines: Callable[[int], Iterator[str]]) -> Hub:
        with self._lock:
            hub = self._hubs.get(key)
            if hub is None or hub.ended:
                hub = Hub(open_lines, lambda: self._forget(key, hub))
                self._hubs[key] = hub
                hub.start()
            return hub

    def _forget(self, key: Hashable, hub: Hub | None) -> None:
        with self._lock:
            if self._hubs.get(key) is hub:
                del self._hubs[key]

    def __len__(self) -> int:
        return len(self._hubs)


HUBS = Hubs()
