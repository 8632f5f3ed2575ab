"""Prometheus metrics: HTTP requests by route, and the apiserver calls behind them.

Labels never carry a job, user or instance name: HTTP requests are labelled with the Flask URL rule
(``/v1/regions/<region>/jobs/<job_name>``), apiserver calls with the resource kind taken from the path. Under gunicorn
every worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py sets it before the workers fork)
and ``/metrics`` adds up all workers' files, whichever worker answers the scrape.
"""
from __future__ import annotations

import os
import re
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

SCRAPE_ENDPOINT = "metrics.metrics"  # gateway/views/metrics.py, not counted
UNMATCHED = "<unmatched>"  # 404 and 405 answers: no rule, and the raw path is not a label value
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter("tenx_gateway_http_requests_total", "HTTP requests answered, by method, route and status.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("tenx_gateway_http_request_duration_seconds",
                         "Time from request start to response, by method and route.", ["method", "route"],
                         buckets=_BUCKETS)
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


def route_of_request() -> str:
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED


def exposition() -> Response:
    """All workers' samples in the Prometheus text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    if request.endpoint == SCRAPE_ENDPOINT:  # scrapes would outnumber everything else
        return response
    route = route_of_request()
    started = g.get("metrics_started")
    if started is not None:
        HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
    HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_observe)
