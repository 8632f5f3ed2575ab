"""Following container logs: a bounded pool of threads, and what one follower does with one container.

Why threads with a cap and a queue, not asyncio: a followed log is a chunked HTTP response that is mostly idle;
the gateway's apiserver access (TLS, auth, timeouts, error translation) is the synchronous urllib3 pool in
gateway/kube.py, and the store is synchronous too. A thread blocked on a socket costs a stack (mostly untouched
virtual memory) and no CPU, so a few thousand are affordable, while asyncio would need a second HTTP client and a
second error path for the same apiserver. The cap (``collector_max_streams``) bounds them; past it, containers
wait in a FIFO queue, and while anyone waits a follower hands its slot on after ``slice_seconds`` (its next turn
resumes exactly where the store says it stopped).

Every follower's work is wrapped: an exception is logged and counted, and the container is followed again at the
next pod event or resync; it never stops another stream.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Hashable
from typing import Callable

log = logging.getLogger(__name__)

AGAIN = "again"  # the work's answer when it gave its slot up and wants to go to the back of the queue


class Pool:
    """At most ``cap`` threads run ``work(key)``; each key is queued or running at most once."""

    def __init__(self, work: Callable[[Hashable], str | None], *, cap: int, name: str,
                 on_error: Callable[[Hashable, BaseException], None] = lambda key, exc: None):
        self._work = work
        self._cap = cap
        self._name = name
        self._on_error = on_error
        self._queue: queue.SimpleQueue[Hashable | None] = queue.SimpleQueue()
        self._keys: set[Hashable] = set()  # queued or running; only changed under _lock
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self.running = 0
        self._closed = False

    def submit(self, key: Hashable) -> bool:
        """Queue ``key`` unless it is queued or running already; True if it was queued now."""
        with self._lock:
            if self._closed or key in self._keys:
                return False
            self._keys.add(key)
            self._queue.put(key)
            if self._queue.qsize() > self._idle and self._threads < self._cap:  # more waiting than idle
                self._threads += 1
                threading.Thread(target=self._worker, name=f"{self._name}-{self._threads}", daemon=True).start()
        return True

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def crowded(self) -> bool:
        """Someone waits for a slot."""
        return self._queue.qsize() > 0 and self._idle == 0

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _ in range(self._threads):
                self._queue.put(None)

    def _worker(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                key = self._queue.get(timeout=60)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._queue.qsize() == 0:  # a thread with nothing to do goes away
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
            if key is None:
                return
            again = False
            with self._lock:
                self.running += 1
            try:
                again = self._work(key) == AGAIN
            except Exception as exc:  # noqa: BLE001 - one stream's failure is its own
                log.exception("%s: follower of %s failed", self._name, key)
                self._on_error(key, exc)
            finally:
                with self._lock:
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
