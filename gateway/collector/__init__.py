"""The collector processes: archive the logs and instance records of every job the gateway manages, so both
outlive the pods. Two sources, one writer path (``writer.py``), one record keeper (``records.py``):

- ``tenx-gateway collect --node NAME`` (``node.py``): one per node (a DaemonSet), reading the kubelet's log files
  of the gateway's pods on that node (``files.py``, ``cri.py``, ``tail.py``). No log byte crosses the apiserver,
  nothing is lost while it runs, and it scales with the nodes. Needs the node's ``/var/log/pods``.
- ``tenx-gateway collect`` (``region.py``): one active per region, chosen by a Lease (``lease.py``), following each
  container's log through the apiserver (``followers.py``). For clusters where the gateway may not read node paths;
  it can fall behind the kubelet's rotation under a flood (docs/architecture.md, "Limits").

A health and metrics listener (``health.py``). The main thread is a watchdog: if a thread that must never end has
died, the process exits 1, so ``make run`` and the Deployment restart it, rather than staying up and archiving
nothing.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Callable

from .. import errors, jsonlog
from ..settings import Settings, from_env
from ..kube.client import Regions
from ..kube.reflector import Backoff

log = logging.getLogger(__name__)
LEASE = "tenx-gateway-collector"
START_ATTEMPTS = 8


def run(settings: Settings | None = None) -> int:
    """Run until SIGTERM or SIGINT (0) or until something that must never stop has (1)."""
    from ..jobs.tenancy import archive_namespace
    from ..jobs.manifest import namespace_manifest
    from ..store import open_store
    from . import health
    from .lease import LeaderElector
    from .region import Options, RegionCollector

    jsonlog.configure()
    # Followed streams outnumber the apiserver connection pool by design; each one's connection is dropped when
    # it ends, which urllib3 would report once per stream.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    settings = settings or from_env()
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

    def start() -> None:
        for collector, elector, thread in collectors:
            elector.start()
            collector.start()
            thread.start()

    def stop() -> None:
        for collector, elector, _ in collectors:
            collector.stop()
            elector.stop()  # gives the Lease up, so a standby takes over at once

    code = _serve_until_stopped("collector", settings, problems, unready, start, stop)
    store.close()
    return code


def run_node(node: str, region: str | None = None, settings: Settings | None = None) -> int:
    """The node collector of ``node`` until SIGTERM or SIGINT (0) or until a thread that must not end has (1)."""
    from ..store import open_store
    from ..jobs.tenancy import archive_namespace
    from . import health
    from .node import NodeCollector, NodeOptions

    jsonlog.configure()
    settings = settings or from_env()
    region = region or settings.default_region
    regions = Regions(settings)
    regions.require(region)
    try:
        store = open_store(settings.archive_store_url, settings.log_timezone)
    except Exception:  # noqa: BLE001 - reported, then the process fails visibly
        log.exception("node collector: cannot open the log archive")
        return 1
    _more_open_files()
    options = NodeOptions(pod_logs_dir=settings.collector_pod_logs_dir, namespace_prefix=settings.namespace_prefix,
                          retention_days=settings.archive_retention_days, max_line_bytes=settings.log_max_bytes,
                          container_lines_per_second=settings.collector_container_lines_per_second,
                          namespace_lines_per_second=settings.collector_namespace_lines_per_second)
    collector = NodeCollector(region, node, regions.get(region), store, options,
                              archive_namespace=lambda ns: archive_namespace(region, ns, settings.default_region))

    def problems() -> dict[str, str]:
        if not collector.alive:
            return {node: "a thread ended (reader, writer or pod reflector)"}
        if health.stuck(collector.loop_started):
            return {node: f"the reader has not come round for {health.STUCK_SECONDS:g} s"}
        return {}

    def unready() -> dict[str, str]:
        return {} if collector.pods.synced.is_set() else {node: "the pod list is not in yet"}

    log.info("node collector for node %s of region %s: reading %s", node, region, options.pod_logs_dir)
    code = _serve_until_stopped("node collector", settings, problems, unready, collector.start, collector.stop)
    store.close()
    return code


def _serve_until_stopped(what: str, settings: Settings, problems: Callable[[], dict[str, str]],
                         unready: Callable[[], dict[str, str]], start: Callable[[], None],
                         stop: Callable[[], None]) -> int:
    """Start, with /healthz and /metrics on the collector port if set, until SIGTERM or SIGINT (0) or until
    ``problems`` names one (1: the process exits so that it is restarted); then stop, the listener last."""
    from . import health

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    server = (health.serve(settings.collector_port, problems, unready, host=settings.collector_host)
              if settings.collector_port else None)
    start()
    code = 0
    while not stopping.wait(1.0):
        found = problems()
        if found:
            log.critical("%s: %s; exiting so that it is restarted", what, found)
            code = 1
            break
    stop()
    if server is not None:
        server.shutdown()
    return code


def _more_open_files() -> None:
    """Every log file not yet read whole is held open (so a rotation cannot take it away): raise the soft limit
    on open files to the hard one."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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
