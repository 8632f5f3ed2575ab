"""Timing loops and statistics. One HTTP client (``requests`` Sessions, keep-alive) drives both sides, so the
client's own overhead is the same for the gateway and for the direct calls."""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import requests

Op = Callable[[requests.Session, int], None]


class UnexpectedResponse(Exception):
    """A call answered something other than success: counted as an error, not as a sample."""


def expect(response: requests.Response, *statuses: int) -> bytes:
    body = response.content  # always read the whole body: that is part of the call
    if response.status_code not in statuses:
        raise UnexpectedResponse(f"{response.request.method} {response.url} -> {response.status_code}: "
                                 f"{body[:300]!r}")
    return body


@dataclass
class Side:
    """One side of a comparison: how to make a client session and what one operation is."""

    name: str
    new_session: Callable[[], requests.Session]
    op: Op


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)  # seconds
    wall: float = 0.0  # seconds during which the samples were taken (all clients together)
    errors: int = 0
    first_error: str | None = None

    def error(self, exc: Exception) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = str(exc)[:500]

    def merge(self, other: "Samples") -> None:
        self.latencies += other.latencies
        self.wall += other.wall
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        return {
            "n": len(lat),
            "p50_ms": _ms(percentile(lat, 50)),
            "p99_ms": _ms(percentile(lat, 99)),
            "mean_ms": _ms(sum(lat) / len(lat)) if lat else None,
            "max_ms": _ms(lat[-1]) if lat else None,
            "throughput_rps": round(len(lat) / self.wall, 1) if self.wall > 0 and lat else None,
            "errors": self.errors,
            "first_error": self.first_error,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (k - low)


def timed(side: Side, session: requests.Session, i: int, samples: Samples) -> None:
    start = time.perf_counter()
    try:
        side.op(session, i)
    except (UnexpectedResponse, requests.RequestException) as exc:
        samples.error(exc)
        return
    samples.latencies.append(time.perf_counter() - start)


def paired(a: Side, b: Side, n: int, warmup: int, max_errors: int | None = None) -> tuple[Samples, Samples]:
    """n operations on each side, one client each, interleaved (a b, b a, a b, ...) so that drift in the
    machine's load hits both sides alike. Returns (samples of a, samples of b)."""
    sa, sb = a.new_session(), b.new_session()
    counter = itertools.count()
    for _ in range(warmup):
        i = next(counter)
        for side, session in ((a, sa), (b, sb)):
            try:
                side.op(session, i)
            except (UnexpectedResponse, requests.RequestException):
                pass
    res_a, res_b = Samples(), Samples()
    limit = max_errors if max_errors is not None else max(5, n // 10)
    for round_ in range(n):
        i = next(counter)
        order = ((a, sa, res_a), (b, sb, res_b)) if round_ % 2 == 0 else ((b, sb, res_b), (a, sa, res_a))
        for side, session, res in order:
            timed(side, session, i, res)
        if res_a.errors > limit or res_b.errors > limit:
            break
    res_a.wall, res_b.wall = sum(res_a.latencies), sum(res_b.latencies)
    sa.close()
    sb.close()
    return res_a, res_b


def concurrent(side: Side, clients: int, per_client: int, warmup: int = 2) -> Samples:
    """``clients`` threads, each with its own keep-alive session, each doing ``per_client`` operations back to
    back after ``warmup`` untimed ones; wall time runs from the common start to the last client's end."""
    sessions = [side.new_session() for _ in range(clients)]
    results = [Samples() for _ in range(clients)]
    ready = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        for w in range(warmup):
            try:
                side.op(sessions[k], -(k * warmup + w) - 1)
            except (UnexpectedResponse, requests.RequestException):
                pass
        ready.wait()
        for j in range(per_client):
            timed(side, sessions[k], k * per_client + j, results[k])

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    total = Samples(wall=time.perf_counter() - start)
    for r in results:
        total.latencies += r.latencies
        total.errors += r.errors
        total.first_error = total.first_error or r.first_error
    for s in sessions:
        s.close()
    return total


def concurrent_pair(a: Side, b: Side, clients: int, per_client: int) -> tuple[Samples, Samples]:
    """A B B A halves, so a trend in the machine's load does not favour the side that ran first."""
    half = max(1, per_client // 2)
    res_a, res_b = Samples(), Samples()
    for side, res in ((a, res_a), (b, res_b), (b, res_b), (a, res_a)):
        res.merge(concurrent(side, clients, half))
    return res_a, res_b
