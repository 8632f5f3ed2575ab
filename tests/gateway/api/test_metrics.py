"""Metrics: Prometheus text, labelled by route and a bounded method (never by a job or user name, nor by anything a
client makes up), summed over processes, served on their own listener and never on the API port."""
import os
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from gateway.api import metrics
from gateway.kube import metrics as kube_metrics

from tests.support.harness import free_port as _free_port


def scrape(client=None) -> dict:
    text = metrics.exposition().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def requests_for(route, status, method="GET"):
    return REGISTRY.get_sample_value("tenx_gateway_http_requests_total",
                                     {"method": method, "route": route, "status": str(status)}) or 0


@pytest.mark.parametrize("path,resource", [
    ("/apis/batch/v1/namespaces/tenx-alice/jobs", "jobs"),
    ("/apis/batch/v1/namespaces/tenx-alice/jobs/my-job", "jobs"),
    ("/api/v1/namespaces/tenx-alice/pods", "pods"),
    ("/api/v1/namespaces/tenx-alice/pods/my-job-x1y2z", "pods"),
    ("/api/v1/namespaces/tenx-alice/pods/my-job-x1y2z/log", "pods/log"),
    ("/api/v1/namespaces", "namespaces"),
    ("/api/v1/namespaces/tenx-gateway/secrets/tenx-gateway-users", "secrets"),
    ("/version", "version"),
])
def test_resource_of_apiserver_paths(path, resource):
    assert kube_metrics.resource_of(path) == resource


def test_requests_are_counted_by_url_rule_not_path(client, alice):
    route = "/v1/regions/<region>/jobs/<job_name>"
    before = requests_for(route, 400, "POST")
    client.post("/v1/regions/us/jobs/alices-secret-job", headers=alice, json={"containers": []})
    assert requests_for(route, 400, "POST") == before + 1
    text = metrics.exposition().decode()
    assert "alices-secret-job" not in text and "alice" not in text


def test_unmatched_paths_share_one_label(client):
    before = requests_for(metrics.UNMATCHED, 404)
    client.get("/no/such/path/with-a-name-in-it")
    assert requests_for(metrics.UNMATCHED, 404) == before + 1
    assert "with-a-name-in-it" not in metrics.exposition().decode()


def test_latency_histogram_by_route(client):
    client.get("/healthz")
    families = scrape(client)
    latency = families["tenx_gateway_http_request_duration_seconds"]
    assert latency.type == "histogram"
    assert any(s.labels.get("route") == "/healthz" and s.name.endswith("_count") and s.value >= 1
               for s in latency.samples)


def test_the_api_has_no_metrics_path(client):
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_known_methods_are_their_own_label(method):
    assert metrics.method_label(method) == method


@pytest.mark.parametrize("method", ["FOO", "get", "PROPFIND", "X" * 100, ""])
def test_any_other_method_is_one_label(method):
    assert metrics.method_label(method) == metrics.OTHER_METHOD


def test_made_up_methods_count_as_other(client):
    before = requests_for(metrics.UNMATCHED, 405, metrics.OTHER_METHOD)
    for i in range(3):
        client.open("/v1/regions/us/jobs", method=f"MADEUP{i}")
    assert requests_for(metrics.UNMATCHED, 405, metrics.OTHER_METHOD) == before + 3
    assert "MADEUP" not in metrics.exposition().decode()


@pytest.mark.parametrize("text,address", [
    ("127.0.0.1:9090", ("127.0.0.1", 9090)),
    ("0.0.0.0:9464", ("0.0.0.0", 9464)),
    (":9090", ("0.0.0.0", 9090)),
    ("[::1]:9090", ("::1", 9090)),
    ("off", None),
    (" OFF ", None),
])
def test_parse_bind(text, address):
    assert metrics.parse_bind(text) == address


@pytest.mark.parametrize("text", ["9090", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:0", "h:70000", ""])
def test_parse_bind_refuses(text):
    with pytest.raises(ValueError, match="GATEWAY_METRICS_BIND"):
        metrics.parse_bind(text)


def test_serve_answers_with_the_samples_on_its_own_address():
    server = metrics.serve(f"127.0.0.1:{_free_port()}")
    try:
        host, port = server.server_address[:2]
        response = requests.get(f"http://{host}:{port}/metrics", timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "tenx_gateway_kube_request_duration_seconds" in response.text
    finally:
        server.shutdown()
        server.server_close()


def test_serve_off_starts_nothing():
    assert metrics.serve("off") is None


def test_kube_calls_are_timed_and_failures_counted():
    labels = {"verb": "GET", "resource": "pods/log"}
    count = REGISTRY.get_sample_value("tenx_gateway_kube_request_duration_seconds_count", labels) or 0
    errors_404 = REGISTRY.get_sample_value("tenx_gateway_kube_errors_total", {**labels, "code": "404"}) or 0
    unreachable = REGISTRY.get_sample_value("tenx_gateway_kube_errors_total", {**labels, "code": "unreachable"}) or 0
    path = "/api/v1/namespaces/tenx-bob/pods/job-abc/log"
    started = time.perf_counter()
    kube_metrics.observe_kube_call("GET", path, 200, started)
    kube_metrics.observe_kube_call("GET", path, 404, started)
    kube_metrics.observe_kube_call("GET", path, None, started)
    assert REGISTRY.get_sample_value("tenx_gateway_kube_request_duration_seconds_count", labels) == count + 3
    assert REGISTRY.get_sample_value("tenx_gateway_kube_errors_total", {**labels, "code": "404"}) == errors_404 + 1
    assert REGISTRY.get_sample_value("tenx_gateway_kube_errors_total",
                                     {**labels, "code": "unreachable"}) == unreachable + 1


_WORKER = """
from gateway import create_app
app = create_app({"regions": {"us": "no-such-context"}})
client = app.test_client()
for _ in range(__N__):
    client.get("/healthz")
if __SCRAPE__:
    from gateway.api import metrics
    print(metrics.exposition().decode())
"""


def test_multiprocess_mode_sums_every_process(tmp_path):
    """As under gunicorn: each process writes its own files in PROMETHEUS_MULTIPROC_DIR; any one scrape sums them."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(n, scrape_it):
        code = _WORKER.replace("__N__", str(n)).replace("__SCRAPE__", str(scrape_it))
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                              timeout=60).stdout

    run(2, False)
    text = run(3, True)
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "tenx_gateway_http_requests_total" and s.labels.get("route") == "/healthz"]
    assert [s.value for s in samples] == [5.0]


_MADE_UP = """
import os
from gateway import create_app
from gateway.api import metrics
app = create_app({"regions": {"us": "no-such-context"}})
client = app.test_client()
for i in range(__N__):
    client.open("/v1/regions/us/jobs" if i % 2 else "/healthz", method=f"M{i:05d}X")
print(len(metrics.exposition()))
"""


def test_made_up_methods_do_not_grow_the_metric_files_or_the_exposition(tmp_path):
    """Unauthenticated requests with 2,000 made-up methods, in multiprocess mode as under gunicorn: the files are as
    big as after 2 such requests and the exposition only longer by digits (before, each method was a label value)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(n):
        code = _MADE_UP.replace("__N__", str(n))
        exposition = int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                        check=True, timeout=120).stdout)
        files = sum(path.stat().st_size for path in tmp_path.iterdir())
        for path in tmp_path.iterdir():
            path.unlink()
        return files, exposition

    few_files, few_text = run(2)
    many_files, many_text = run(2000)
    assert many_files == few_files
    assert many_text - few_text < 200, (few_text, many_text)  # only the counts' and sums' digits grow
