"""Prometheus metrics: HTTP requests by route, and the apiserver calls behind them.

Labels never carry a job, user or instance name, nor anything else a client makes up: HTTP requests are labelled
with the Flask URL rule (``/v1/regions/<region>/jobs/<job_name>``) and one of the HTTP methods the API knows (any
other counts as ``other``), apiserver calls with the resource kind taken from the path. So no request, with or
without credentials, adds a label value beyond a fixed set. Under gunicorn every worker writes its samples to
``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py sets it before the workers fork) and the master serves their sum on
its own listener (``GATEWAY_METRICS_BIND``), never on the API port: ``serve`` below.
"""
from __future__ import annotations

import os
import re
import time

from flask import Flask, Response, g, request
from prometheus_client import (REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
                               start_http_server)
from prometheus_client.multiprocess import MultiProcessCollector

from .version import __version__, commit

# A metric without labels writes its multiprocess file as soon as it is defined: the directory must be there even
# in a process gunicorn.conf.py did not prepare (the CLI, the collector, with the variable inherited).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

UNMATCHED = "<unmatched>"  # 404 and 405 answers: no rule, and the raw path is not a label value
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER_METHOD = "other"  # any other method, made up or not: one label value, however many are sent
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
STREAMS_REFUSED = Counter("tenx_gateway_streams_refused_total",
                          "Stream calls answered 429 because their user already held GATEWAY_STREAM_MAX_PER_USER "
                          "streams (the slots were full).")
# Which build answers (the usual *_build_info pattern: join on it, or alert on two versions at once); "max" sums the
# workers' files to one series of value 1.
BUILD_INFO = Gauge("tenx_gateway_build_info", "Always 1; its labels say the gateway's version and the git commit it "
                   "was built from ('' when unknown).", ["version", "commit"], multiprocess_mode="max")

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


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


def registry() -> CollectorRegistry:
    """All workers' samples under gunicorn (their files summed), else this process's own."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        summed = CollectorRegistry()
        MultiProcessCollector(summed)
        return summed
    return REGISTRY


def exposition() -> bytes:
    """The samples in the Prometheus text format (0.0.4)."""
    return generate_latest(registry())


def parse_bind(text: str) -> tuple[str, int] | None:
    """``"127.0.0.1:9090"`` -> ``("127.0.0.1", 9090)``, ``"[::1]:9090"`` -> ``("::1", 9090)``, ``":9090"`` -> all
    addresses; ``"off"`` -> ``None`` (no listener). Anything else is a ValueError naming the setting."""
    text = text.strip()
    if text.lower() == "off":
        return None
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"GATEWAY_METRICS_BIND: {text!r} is not host:port or 'off'")
    return host or "0.0.0.0", int(port)


def serve(bind: str):
    """Serve the summed samples on ``bind`` from a daemon thread of this process (gunicorn's master, which never
    serves API requests and outlives its workers): the WSGI server, or None when ``bind`` is ``off``. Any path
    answers with the samples; an address in use raises OSError."""
    address = parse_bind(bind)
    if address is None:
        return None
    server, _ = start_http_server(address[1], address[0], registry=registry())
    return server


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    route, method = route_of_request(), method_label(request.method)
    started = g.get("metrics_started")
    if started is not None:
        HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)
    HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
    return response


def init_app(app: Flask) -> None:
    BUILD_INFO.labels(__version__, commit() or "").set(1)
    app.before_request(_start_timer)
    app.after_request(_observe)
