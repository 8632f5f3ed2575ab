"""The collector process: archives the logs and instance records of every job the gateway manages.

``run(settings)`` is ``tenx-gateway collect``: one collector per region until SIGTERM or SIGINT; a Lease per
region makes extra replicas wait as standbys.
"""
from __future__ import annotations

import signal
import threading

from .. import config, jsonlog
from ..kube import Regions


def run(settings: config.Settings | None = None) -> int:
    from ..jobs import archive_namespace
    from ..manifest import namespace_manifest
    from ..store import open_store
    from .follow import Collector
    from .lease import LeaderElector

    jsonlog.configure()
    settings = settings or config.from_env()
    regions = Regions(settings)
    store = open_store(settings.archive_store_url, settings.log_timezone)
    collectors = []
    for region in regions.names:
        kube = regions.get(region)
        kube.create_namespace(namespace_manifest(settings.namespace))
        elector = LeaderElector(kube, settings.namespace, "tenx-gateway-collector")
        collectors.append(Collector(
            kube, store, elector, namespace_prefix=settings.namespace_prefix,
            archive_namespace=lambda ns, r=region: archive_namespace(r, ns, settings.default_region),
            poll_seconds=settings.collector_poll_seconds, retention_days=settings.archive_retention_days,
            max_line_bytes=settings.log_max_bytes))
    threads = [threading.Thread(target=c.run, name=f"collector-{r}") for c, r in zip(collectors, regions.names)]

    def stop(signum, frame):
        for collector in collectors:
            collector.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    return 0
