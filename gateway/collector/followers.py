"""Following container logs: a bounded pool of threads, and what one follower does with one container.

Why threads with a cap and a queue, not asyncio: a followed log is a chunked HTTP response that is mostly idle;
the gateway's apiserver access (TLS, auth, timeouts, error translation) is the synchronous urllib3 pool in
gateway/kube/client.py, and the store is synchronous too. A thread blocked on a socket costs a stack (mostly untouched
virtual memory) and no CPU, so a few thousand are affordable, while asyncio would need a second HTTP client and a
second error path for the same apiserver. The cap (``collector_max_streams``) bounds them; past it, containers
wait in a FIFO queue, and while anyone waits a follower hands its slot on after ``slice_seconds`` (its next turn
resumes exactly where the store says it stopped).

Every follower's work is wrapped: an exception is logged and counted, and the container is followed again at the
next pod event or resync; it never stops another stream.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Hashable
from typing import Callable

log = logging.getLogger(__name__)

AGAIN = "again"  # the work's answer when it gave its slot up and wants to go to the back of the queue


class Pool:
    """At most ``cap`` threads run ``work(key)``; each key is queued or running at most once. Taking a key and
    counting the thread busy happen under one lock, so a burst of keys never waits behind a thread that only
    looked idle."""

    def __init__(self, work: Callable[[Hashable], str | None], *, cap: int, name: str,
                 on_error: Callable[[Hashable, BaseException], None] = lambda key, exc: None,
                 idle_seconds: float = 60.0):
        self._work = work
        self._cap = cap
        self._name = name
        self._on_error = on_error
        self._idle_seconds = idle_seconds
        self._waiting: collections.deque[Hashable] = collections.deque()
        self._keys: set[Hashable] = set()  # waiting or running; only changed under _cond
        self._cond = threading.Condition()
        self._threads = 0
        self._idle = 0  # threads waiting for a key
        self.running = 0
        self._closed = False

    def submit(self, key: Hashable) -> bool:
        """Queue ``key`` unless it is queued or running already; True if it was queued now."""
        with self._cond:
            if self._closed or key in self._keys:
                return False
            self._keys.add(key)
            self._waiting.append(key)
            if len(self._waiting) > self._idle and self._threads < self._cap:
                self._threads += 1
                threading.Thread(target=self._worker, name=f"{self._name}-{self._threads}", daemon=True).start()
            self._cond.notify()
        return True

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def crowded(self) -> bool:
        """Someone waits for a slot."""
        with self._cond:
            return len(self._waiting) > self._idle

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._waiting.clear()
            self._cond.notify_all()

    def _take(self) -> Hashable | None:
        with self._cond:
            self._idle += 1
            try:
                while not self._waiting:
                    if self._closed or not self._cond.wait(self._idle_seconds) and not self._waiting:
                        self._threads -= 1  # nothing to do for a while: the thread goes away
                        return None
            finally:
                self._idle -= 1
            self.running += 1
            return self._waiting.popleft()

    def _worker(self) -> None:
        while True:
            key = self._take()
            if key is None:
                return
            again = False
            try:
                again = self._work(key) == AGAIN
            except Exception as exc:  # noqa: BLE001 - one stream's failure is its own
                log.exception("%s: follower of %s failed", self._name, key)
                self._on_error(key, exc)
            finally:
                with self._cond:
                    self.running -= 1
                    self._keys.discard(key)
            if again:
                self.submit(key)


class Batch:
    """Lines waiting to be appended for one stream: flushed by its follower when it grows or when the follower
    reads on, and by the region's flusher thread once the oldest line has waited ``max_wait`` seconds (a quiet
    container's last line must not sit in memory until the stream speaks again). Appends for one stream are
    serialized by the batch's lock."""

    def __init__(self, flush: Callable[[list], None], *, max_lines: int = 500, max_wait: float = 0.5):
        self._flush = flush
        self._lines: list = []
        self._first_at = 0.0
        self._lock = threading.Lock()
        self.max_lines, self.max_wait = max_lines, max_wait
        self.failure: BaseException | None = None  # a flush by the flusher thread that failed: the follower raises it

    def add(self, line) -> None:
        with self._lock:
            self._raise_failure()
            if not self._lines:
                self._first_at = time.monotonic()
            self._lines.append(line)
            if len(self._lines) >= self.max_lines:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._raise_failure()
            self._flush_locked()

    def flush_if_due(self) -> None:
        """From the flusher thread: never raises; a failure waits for the follower."""
        with self._lock:
            if self._lines and self.failure is None and time.monotonic() - self._first_at >= self.max_wait:
                try:
                    self._flush_locked()
                except Exception as exc:  # noqa: BLE001 - handed to the follower
                    self.failure = exc

    def _flush_locked(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._flush(lines)

    def _raise_failure(self) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
