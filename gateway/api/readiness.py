"""Readiness: does each region's apiserver answer ``GET /version`` within a short timeout?

The apiserver calls keep their own (longer) timeouts; the probe waits for them only ``timeout`` seconds. A call
still running from an earlier probe is waited on again rather than started anew, so a hung apiserver costs at
most one thread per region per process however often the probe is asked.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from .. import errors
from ..kube.client import Regions

AVAILABLE = "available"
UNAVAILABLE = "unavailable"


class Readiness:
    def __init__(self, regions: Regions, timeout: float):
        self._regions = regions
        self._timeout = timeout
        self._inflight: dict[str, Future] = {}
        self._executor: ThreadPoolExecutor | None = None  # threads start on first use, never at import
        self._lock = threading.Lock()

    def problems(self) -> dict[str, str]:
        """Region -> why it is not ready; empty when every region answered."""
        futures = {name: self._probe(name) for name in self._regions.names}
        wait(futures.values(), timeout=self._timeout)
        found: dict[str, str] = {}
        for name, future in futures.items():
            if not future.done():
                found[name] = f"the apiserver did not answer GET /version within {self._timeout:g} s"
            elif future.exception() is not None:
                found[name] = _describe(future.exception())
        return found

    def statuses(self) -> dict[str, str]:
        """Region -> ``available`` or ``unavailable``, in the configured order."""
        problems = self.problems()
        return {name: UNAVAILABLE if name in problems else AVAILABLE for name in self._regions.names}

    def _probe(self, region: str) -> Future:
        with self._lock:
            future = self._inflight.get(region)
            if future is None or future.done():
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=max(1, len(self._regions.names)),
                                                        thread_name_prefix="readiness")
                future = self._executor.submit(self._version, region)
                self._inflight[region] = future
            return future

    def _version(self, region: str) -> None:
        self._regions.get(region).version()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, errors.GatewayError) and exc.description:
        return exc.description
    return f"the apiserver call failed ({type(exc).__name__})"


def archive_problems(heartbeats: dict[str, tuple[float, float]], limit: float) -> dict[str, str]:
    """Region -> why its log archive is behind: the leading collector reported a lag past ``limit`` seconds, or
    has not reported for that long (stopped, hung, or cut off). No heartbeat at all (no collector ever ran
    against this archive) is not a problem of this API replica's.

    Node collectors (``<region>/node/<node>``) report one heartbeat each, and a node's outlives the node: one that
    has gone silent while others of its region still report is a node gone (or its collector restarting, which the
    DaemonSet does), not an archive every replica should leave the Service for. Silence counts only when every node
    collector of the region is silent; a lag counts from any that still reports."""
    found: dict[str, str] = {}
    nodes: dict[str, list[tuple[float, float]]] = {}
    for key, (age, lag) in sorted(heartbeats.items()):
        if "/node/" in key:
            nodes.setdefault(key.split("/node/", 1)[0], []).append((age, lag))
        elif age > limit:
            found[f"archive:{key}"] = f"archive lagging: the collector last reported {age:.0f} s ago"
        elif lag > limit:
            found[f"archive:{key}"] = f"archive lagging: lines reach the archive {lag:.0f} s after they are written"
    for region, beats in nodes.items():
        reporting = [lag for age, lag in beats if age <= limit]
        if not reporting:
            newest = min(age for age, _ in beats)
            found[f"archive:{region}/node"] = f"archive lagging: no node collector has reported for {newest:.0f} s"
        elif max(reporting) > limit:
            found[f"archive:{region}/node"] = (f"archive lagging: lines reach the archive {max(reporting):.0f} s "
                                               "after they are written")
    return found
