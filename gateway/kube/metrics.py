"""Prometheus metrics of the apiserver calls, by verb and resource kind (never a name a client made up): every
process that calls an apiserver records them (the API's workers, summed by gunicorn's master on its metrics
listener; the collectors, on theirs)."""
from __future__ import annotations

import os
import re
import time

from prometheus_client import Counter, Histogram

# A metric's multiprocess file is written where it is recorded: the directory must be there even in a process
# gunicorn.conf.py did not prepare (the CLI, a collector, with the variable inherited).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
KUBE_LATENCY = Histogram("tenx_gateway_kube_request_duration_seconds",
                         "Apiserver calls: time until the response headers arrived, by verb and resource.",
                         ["verb", "resource"], buckets=_BUCKETS)
KUBE_ERRORS = Counter("tenx_gateway_kube_errors_total",
                      "Apiserver calls that failed, by verb, resource and code (an HTTP status, or 'unreachable').",
                      ["verb", "resource", "code"])

# /api/v1/namespaces/<ns>/pods/<name>/log -> pods/log ; /apis/batch/v1/namespaces/<ns>/jobs -> jobs
_RESOURCE_PATH = re.compile(r"^/apis?/(?:[^/]+/)?v[^/]+(?:/namespaces/[^/]+)?/([^/?]+)(?:/[^/?]+(?:/([^/?]+))?)?")


def resource_of(path: str) -> str:
    """The resource kind an apiserver path names, for a label: ``jobs``, ``pods``, ``pods/log``, ``version``."""
    match = _RESOURCE_PATH.match(path)
    if match:
        kind, sub = match.groups()
        return f"{kind}/{sub}" if sub else kind
    return path.strip("/").split("/", 1)[0].split("?", 1)[0] or "root"


def observe_kube_call(verb: str, path: str, status: int | None, started: float) -> None:
    """Called by ``Kube._send`` once the apiserver answered (``status``) or could not be reached (``None``)."""
    resource = resource_of(path)
    KUBE_LATENCY.labels(verb, resource).observe(time.perf_counter() - started)
    if status is None or status >= 400:
        KUBE_ERRORS.labels(verb, resource, str(status) if status else "unreachable").inc()
