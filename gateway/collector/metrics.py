"""The collector's own metrics, in a registry of its own (the API's live in gateway/api/metrics.py): served by the
collector's health listener at ``/metrics``, with the process's apiserver calls (a node collector makes no
``pods/log`` call: they show it)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..kube.metrics import KUBE_ERRORS, KUBE_LATENCY

REGISTRY = CollectorRegistry(auto_describe=True)
REGISTRY.register(KUBE_LATENCY)
REGISTRY.register(KUBE_ERRORS)

LEADER = Gauge("tenx_collector_leader", "1 while this collector leads its region, 0 while it stands by.",
               ["region"], registry=REGISTRY)
STREAMS = Gauge("tenx_collector_streams_followed", "Container log streams being followed now.", ["region"],
                registry=REGISTRY)
QUEUED = Gauge("tenx_collector_streams_queued", "Container streams waiting for a free follower slot.", ["region"],
               registry=REGISTRY)
PODS = Gauge("tenx_collector_pods_cached", "Pods in the reflector's copy.", ["region"], registry=REGISTRY)
LINES = Counter("tenx_collector_lines_archived_total", "Log lines committed to the archive.", ["region"],
                registry=REGISTRY)
LAG = Histogram("tenx_collector_lag_seconds", "Seconds from a line's timestamp to its commit in the archive.",
                ["region"], buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300),
                registry=REGISTRY)
ERRORS = Counter("tenx_collector_errors_total", "Failures, by where they happened (stream, records, loop, ...).",
                 ["region", "where"], registry=REGISTRY)
FENCED = Counter("tenx_collector_fenced_writes_total",
                 "Appends the store refused: a newer leader holds the stream.", ["region"], registry=REGISTRY)
GAPS = Counter("tenx_collector_gaps_total", "Places in the archive where lines were lost before they were read "
               "(each holds a marker line).", ["region"], registry=REGISTRY)
LOST = Counter("tenx_collector_lines_lost_total", "Lines lost before they were read, as estimated at each gap (a gap "
               "of unknown size adds 0).", ["region"], registry=REGISTRY)
BACKLOG = Gauge("tenx_collector_backlog_bytes", "Bytes written to the node's log files that the node collector has "
                "not read yet.", ["region"], registry=REGISTRY)
HELD_BACK = Counter("tenx_collector_held_back_total", "Turns a container's reading waited on its own or its "
                    "namespace's rate limit (its lines wait in the node's files).", ["region"], registry=REGISTRY)
LISTS = Gauge("tenx_collector_reflector_lists", "LISTs the collector's reflectors made since it started (steady state: "
              "no new ones).", ["region"], registry=REGISTRY)


def init(region: str) -> None:
    """Every series of a region from the start, at 0: a scrape shows them before anything happened."""
    for metric in (LEADER, STREAMS, QUEUED, PODS, LISTS):
        metric.labels(region).set(0)
    LINES.labels(region)
    FENCED.labels(region)
    GAPS.labels(region)
    LOST.labels(region)
    HELD_BACK.labels(region)
    BACKLOG.labels(region).set(0)
    LAG.labels(region)
    for where in ("stream", "records", "loop"):
        ERRORS.labels(region, where)
