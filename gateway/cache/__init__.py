"""The API process's watch caches, one per region it serves (``region.RegionCache``): Jobs and their pods in the
gateway's namespaces, kept by LIST then WATCH, so that gets, lists, the instances call and the logs call's pod
lookup are answered from memory (``gateway.jobs`` decides, per read, whether memory may answer).

Each region's cache is attached to its ``Kube`` (``kube.watch_cache``) once the region's client is built; a
region whose configuration cannot be loaded yet is tried again every 30 s. ``problems()`` names the regions whose
cache has not listed yet, for ``/readyz``.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from ..config import Settings
from .region import RegionCache
from .write_mark import ArchiveMark

log = logging.getLogger(__name__)

__all__ = ["RegionCache", "WatchCaches", "cache_of"]

_RETRY_SECONDS = 30.0


def cache_of(kube: Any) -> RegionCache | None:
    return getattr(kube, "watch_cache", None)


class WatchCaches:
    def __init__(self, regions: Any, settings: Settings, archive: Any = None):
        self._regions = regions
        self._settings = settings
        self._archive = archive  # the LazyStore that keeps the read-your-writes mark (None: this process only)
        self.caches: dict[str, RegionCache] = {}
        self._stop = threading.Event()

    def start(self) -> WatchCaches:
        """Build each region's cache in the background (a region's client may need a while, or a retry)."""
        if self._settings.watch_cache:
            threading.Thread(target=self._attach_all, name="cache-start", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for cache in self.caches.values():
            cache.stop()

    def _attach_all(self) -> None:
        pending = list(self._regions.names)
        while pending and not self._stop.is_set():
            for region in list(pending):
                try:
                    kube = self._regions.get(region)
                except Exception:  # noqa: BLE001 - logged by Regions; tried again
                    continue
                self.caches[region] = self.attach(region, kube)
                pending.remove(region)
            self._stop.wait(_RETRY_SECONDS)

    def attach(self, region: str, kube: Any) -> RegionCache:
        settings = self._settings
        cache = RegionCache(region, kube, namespace_prefix=settings.namespace_prefix,
                            stale_seconds=settings.cache_stale_seconds, wait_seconds=settings.cache_wait_seconds,
                            write_mark=ArchiveMark(self._archive.get, region) if self._archive else None)
        kube.watch_cache = cache
        return cache.start()

    def problems(self) -> dict[str, str]:
        """Region -> why its cache cannot answer yet (not listed yet); empty when all have synced."""
        return {f"cache:{region}": "the watch cache has not listed the region's jobs and pods yet"
                for region, cache in self.caches.items() if not cache.synced}
