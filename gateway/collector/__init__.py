"""The collector process (``tenx-gateway collect``): archives the logs and instance records of every job the
gateway manages, so both outlive the pods.

One ``RegionCollector`` per region (``region.py``), each with its Lease (``lease.py``), pod reflector
(``gateway/reflector.py``) and bounded follower pool (``followers.py``); a health and metrics listener
(``health.py``). The main thread is a watchdog: if a thread that must never end has died, the process exits 1,
so ``make run`` and the Deployment restart it, rather than staying up and archiving nothing.
"""
from __future__ import annotations

import logging
import signal
import threading
import time

from .. import config, errors, jsonlog
from ..kube import Regions
from ..reflector import Backoff

log = logging.getLogger(__name__)
LEASE = "tenx-gateway-collector"
START_ATTEMPTS = 8


def run(settings: config.Settings | None = None) -> int:
    """Run until SIGTERM or SIGINT (0) or until something that must never stop has (1)."""
    from ..tenancy import archive_namespace
    from ..manifest import namespace_manifest
    from ..store import open_store
    from . import health
    from .lease import LeaderElector
    from .region import Options, RegionCollector

    jsonlog.configure()
    # Followed streams outnumber the apiserver connection pool by design; each one's connection is dropped when
    # it ends, which urllib3 would report once per stream.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    settings = settings or config.from_env()
    regions = Regions(settings)
    try:
        store = open_store(settings.archive_store_url, settings.log_timezone)
    except Exception:  # noqa: BLE001 - reported, then the process fails visibly
        log.exception("collector: cannot open the log archive")
        return 1
    options = Options(namespace_prefix=settings.namespace_prefix, retention_days=settings.archive_retention_days,
                      max_line_bytes=settings.log_max_bytes, max_streams=settings.collector_max_streams,
                      poll_seconds=settings.collector_poll_seconds)
    collectors: list[tuple[RegionCollector, LeaderElector, threading.Thread]] = []
    for region in regions.names:
        kube = regions.get(region)
        if not _with_retries(lambda: kube.create_namespace(namespace_manifest(settings.namespace)),
                             f"region {region}: create namespace {settings.namespace}"):
            return 1
        elector = LeaderElector(kube, settings.namespace, LEASE, duration=settings.collector_lease_seconds,
                                fence_floor=store.max_fence)
        collector = RegionCollector(region, kube, store, elector, options,
                                    archive_namespace=lambda ns, r=region: archive_namespace(
                                        r, ns, settings.default_region))
        collectors.append((collector, elector, threading.Thread(target=collector.run, name=f"collector-{region}",
                                                                daemon=True)))

    def problems() -> dict[str, str]:
        found = {}
        for collector, elector, thread in collectors:
            dead = [what for what, alive in (("loop", thread.is_alive()), ("lease renewal", elector.alive),
                                             ("pod reflector", collector.pods.alive)) if not alive]
            if dead:
                found[collector.region] = f"thread(s) ended: {', '.join(dead)}"
            elif health.stuck(collector.loop_started):
                found[collector.region] = f"the loop has not come round for {health.STUCK_SECONDS:g} s"
        return found

    def unready() -> dict[str, str]:
        return {c.region: "the pod list is not in yet" for c, _, _ in collectors if not c.pods.synced.is_set()}

    stopping = threading.Event()

    def stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = (health.serve(settings.collector_port, problems, unready, host=settings.collector_host)
              if settings.collector_port else None)
    for collector, elector, thread in collectors:
        elector.start()
        collector.start()
        thread.start()
    code = 0
    while not stopping.wait(1.0):
        found = problems()
        if found:
            log.critical("collector: %s; exiting so that it is restarted", found)
            code = 1
            break
    for collector, elector, _ in collectors:
        collector.stop()
        elector.stop()  # gives the Lease up, so a standby takes over at once
    if server is not None:
        server.shutdown()
    store.close()
    return code


def _with_retries(action, what: str) -> bool:
    backoff = Backoff(first=1.0, cap=15.0)
    for attempt in range(START_ATTEMPTS):
        try:
            action()
            return True
        except errors.GatewayError as exc:
            delay = backoff.next()
            log.warning("collector: %s failed (%s); retrying in %.1f s", what, exc.description, delay)
            time.sleep(delay)
    log.error("collector: %s failed %d times; giving up", what, START_ATTEMPTS)
    return False
