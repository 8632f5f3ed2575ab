"""Throttling of failed logins: after ``limit`` failures within ``window`` seconds, a key (a client address or a
user name) is refused with 429 until the oldest of those failures ages out. Per process: with N gunicorn workers an
attacker gets at most N x limit tries per window, still far too few to guess a 256-bit token. How the keys combine
(a user name's block applies only to clients that failed themselves) is gateway/api/auth.py's."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Iterable


class FailureThrottle:
    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str]) -> float:
        """Seconds until every key may try again; 0 if none is blocked."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                failures = self._failures.get(key)
                if failures is not None and len(failures) >= self._limit:
                    wait = max(wait, failures[0] + self._window - now)
        return max(wait, 0.0)

    def failed(self, key: str) -> bool:
        """Whether ``key`` failed at least once within the window."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(key)
            return bool(failures) and failures[-1] > now - self._window

    def record_failure(self, keys: Iterable[str]) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                failures = self._failures.pop(key, None) or deque(maxlen=self._limit)
                while failures and failures[0] <= now - self._window:
                    failures.popleft()
                failures.append(now)
                self._failures[key] = failures  # most recently failed last, so eviction drops the stalest
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)
