"""Token buckets for the node collector's fairness: lines per second per container and per namespace. A reader
over its rate waits (its lines stay in the node's files); nothing is dropped."""
from __future__ import annotations

import time
from typing import Callable


class Bucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``take`` may overdraw (a turn's lines are counted
    after they are read), and the debt is waited off."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst if burst is not None else rate
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def available(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return self._tokens

    def take(self, count: float) -> None:
        self.available()
        self._tokens -= count
