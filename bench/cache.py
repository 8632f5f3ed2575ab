"""The watch cache's figures (issue 15): apiserver requests per get in steady state, the workers' memory with
10,000 Jobs and 10,000 pods cached, and the issue's targets as PASS/MISS.

Requests are counted twice: by the apiserver (``apiserver_request_total`` from its ``/metrics``, summed over jobs,
pods and events; the cluster is shared, so other clients' requests during the loop count too: an upper bound) and
by the gateway itself (its histogram of apiserver calls, from its metrics listener: exact for this gateway).
Pods for the memory figure are created straight at the apiserver in a namespace of the gateway's prefix, with the
gateway's managed-by and job-name labels, a scheduling gate and a nodeSelector no node has: they stay Pending, nothing
runs. The gate keeps them out of the scheduler's queue: without it the scheduler tried each (a status write and an
event each, about 50 a second here), and every pod of the shared cluster created meanwhile waited behind them for
minutes (the namespace's deletion does not take them out of the queue any faster)."""
from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import requests

from .cluster import Apiserver
from .server import proc_status_kb

_COUNTED = ("jobs", "pods", "events")
_APISERVER_LINE = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$', re.MULTILINE)
_GATEWAY_LINE = re.compile(r'^tenx_gateway_kube_request_duration_seconds_count\{(?P<labels>[^}]*)\} (?P<value>\S+)$',
                           re.MULTILINE)
POD_JOB = "bench-pods"


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', text))


def apiserver_requests(api: Apiserver) -> float:
    """Requests on jobs, pods and events the apiserver has answered (all clients), watches not counted."""
    text = api.session().get(api.url("/metrics"), timeout=30).text
    total = 0.0
    for match in _APISERVER_LINE.finditer(text):
        labels = _labels(match["labels"])
        if labels.get("resource") in _COUNTED and labels.get("verb") != "WATCH":
            total += float(match["value"])
    return total


def gateway_requests(metrics_url: str) -> float:
    """Apiserver calls on jobs, pods, pods/log and events this gateway's workers made."""
    text = requests.get(metrics_url, timeout=30).text
    return sum(float(m["value"]) for m in _GATEWAY_LINE.finditer(text)
               if _labels(m["labels"]).get("resource", "").split("/")[0] in _COUNTED)


def requests_per_get(api: Apiserver, metrics_url: str, get_once: Callable[[], None], n: int) -> dict[str, Any]:
    """``n`` gets in a row after a warm-up, and the requests the apiserver saw and the gateway made meanwhile."""
    for _ in range(20):
        get_once()
    before_api, before_gw = apiserver_requests(api), gateway_requests(metrics_url)
    started = time.perf_counter()
    for _ in range(n):
        get_once()
    seconds = time.perf_counter() - started
    after_api, after_gw = apiserver_requests(api), gateway_requests(metrics_url)
    return {"gets": n, "seconds": round(seconds, 2),
            "apiserver_requests_all_clients": after_api - before_api,
            "apiserver_requests_per_get_upper_bound": round((after_api - before_api) / n, 4),
            "gateway_apiserver_calls": after_gw - before_gw,
            "gateway_apiserver_calls_per_get": round((after_gw - before_gw) / n, 4)}


def pending_pod(name: str, namespace: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "tenx-gateway", "job-name": POD_JOB,
              "batch.kubernetes.io/job-name": POD_JOB, "name": POD_JOB}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"schedulingGates": [{"name": "tenx.io/bench-never"}],
                     "nodeSelector": {"tenx-bench/no-such-node": "true"}, "automountServiceAccountToken": False,
                     "containers": [{"name": POD_JOB, "image": "busybox", "command": ["true"],
                                     "securityContext": {"allowPrivilegeEscalation": False}}]}}


def seed_pods(api: Apiserver, namespace: str, count: int, concurrency: int = 16) -> dict[str, Any]:
    """``count`` Pending pods in ``namespace`` (created first), straight at the apiserver."""
    session = api.session()
    session.post(api.url("/api/v1/namespaces"), timeout=30,
                 json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    local = threading.local()
    url = api.url(f"/api/v1/namespaces/{namespace}/pods")

    def post(index: int) -> int:
        if not hasattr(local, "session"):
            local.session = api.session()
        body = json.dumps(pending_pod(f"{POD_JOB}-{index:05d}", namespace)).encode()
        for attempt in range(5):
            try:
                status = local.session.post(url, data=body, headers={"Content-Type": "application/json"},
                                            timeout=60).status_code
            except requests.RequestException:
                status = 0
            if status in (201, 409):
                return status
            time.sleep(0.2 * 2 ** attempt)
        return status

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(post, range(count)))
    return {"pods": count, "failed": sum(1 for s in statuses if s not in (201, 409)),
            "seconds": round(time.perf_counter() - started, 1)}


def rss_mb(pids: list[int]) -> dict[int, float]:
    return {pid: round((proc_status_kb(pid, "VmRSS") or 0) / 1024, 1) for pid in pids}


def settled_rss(pids: Callable[[], list[int]], quiet: float = 5.0, timeout: float = 180.0) -> dict[int, float]:
    """The workers' RSS once none has grown by more than 1 MB for ``quiet`` seconds (their caches caught up)."""
    last, steady_since, deadline = rss_mb(pids()), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1)
        now = rss_mb(pids())
        if any(now.get(pid, 0) - last.get(pid, 0) > 1 for pid in now):
            steady_since = time.monotonic()
        last = now
        if time.monotonic() - steady_since >= quiet:
            break
    return last


def _verdict(value: float | None, op: str, limit: float) -> str:
    if value is None:
        return "n/a"
    return "PASS" if (value <= limit if op == "<=" else value >= limit) else "MISS"


def targets(results: list[dict], figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: get p50 <= 0.8x direct, 16-client get throughput >= 1.5x, list of 10,000 <= 0.5x,
    0 apiserver requests per get, <= 150 MB per worker with 10,000 Jobs and 10,000 pods cached; a 100-line page
    of a running job's 1,000,000-line log, once archived: p50 <= 10 ms and <= 2% of reading the whole log."""
    rows = {r["case"]: r for r in results}

    def of(case: str, key: str) -> float | None:
        return (rows.get(case) or {}).get(key)

    per_get = (figures.get("requests_per_get") or {}).get("gateway_apiserver_calls_per_get")
    memory = figures.get("memory") or {}
    peak = max((memory.get("rss_with_pods_mb") or {}).values(), default=None)
    found = [
        ("get p50 <= 0.8x direct", of("get", "ratio_p50"), "<=", 0.8),
        ("16-client get throughput >= 1.5x direct", of("get c16", "throughput_ratio"), ">=", 1.5),
        ("list of 10,000 jobs p50 <= 0.5x direct", of("list 10000", "ratio_p50"), "<=", 0.5),
        ("apiserver calls per get in steady state = 0", per_get, "<=", 0),
        (f"RSS per worker with {memory.get('jobs', '?')} jobs and {memory.get('pods', '?')} pods cached <= 150 MB",
         peak, "<=", 150),
    ]
    for label in ("from 0", "from mid", "last 100"):
        found.append((f"running log {label}, 100 lines: p50 <= 10 ms", of(f"running {label}", "gateway") and
                      rows[f"running {label}"]["gateway"]["p50_ms"], "<=", 10))
        found.append((f"running log {label}: p50 <= 2% of the whole-log read", of(f"running {label}", "ratio_p50"),
                      "<=", 0.02))
    return [{"target": name, "value": value, "op": op, "limit": limit, "verdict": _verdict(value, op, limit)}
            for name, value, op, limit in found]


def targets_text(found: list[dict[str, Any]]) -> str:
    lines = ["| watch cache target (issue 15) | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['value']} | {t['verdict']} |" for t in found]
    return "\n".join(lines)
