"""/metrics: Prometheus text, labelled by route (never by a job or user name), and summed over processes."""
import os
import subprocess
import sys
import time

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.get_data(as_text=True))}


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
    assert metrics.resource_of(path) == resource


def test_requests_are_counted_by_url_rule_not_path(client, alice):
    route = "/v1/regions/<region>/jobs/<job_name>"
    before = requests_for(route, 400, "POST")
    client.post("/v1/regions/us/jobs/alices-secret-job", headers=alice, json={"containers": []})
    assert requests_for(route, 400, "POST") == before + 1
    text = client.get("/metrics").get_data(as_text=True)
    assert "alices-secret-job" not in text and "alice" not in text


def test_unmatched_paths_share_one_label(client):
    before = requests_for(metrics.UNMATCHED, 404)
    client.get("/no/such/path/with-a-name-in-it")
    assert requests_for(metrics.UNMATCHED, 404) == before + 1
    assert "with-a-name-in-it" not in client.get("/metrics").get_data(as_text=True)


def test_latency_histogram_by_route(client):
    client.get("/healthz")
    families = scrape(client)
    latency = families["tenx_gateway_http_request_duration_seconds"]
    assert latency.type == "histogram"
    assert any(s.labels.get("route") == "/healthz" and s.name.endswith("_count") and s.value >= 1
               for s in latency.samples)


def test_scrapes_are_not_counted(client):
    before = requests_for("/metrics", 200)
    scrape(client)
    scrape(client)
    assert requests_for("/metrics", 200) == before


def test_kube_calls_are_timed_and_failures_counted():
    labels = {"verb": "GET", "resource": "pods/log"}
    count = REGISTRY.get_sample_value("tenx_gateway_kube_request_duration_seconds_count", labels) or 0
    errors_404 = REGISTRY.get_sample_value("tenx_gateway_kube_errors_total", {**labels, "code": "404"}) or 0
    unreachable = REGISTRY.get_sample_value("tenx_gateway_kube_errors_total", {**labels, "code": "unreachable"}) or 0
    path = "/api/v1/namespaces/tenx-bob/pods/job-abc/log"
    started = time.perf_counter()
    metrics.observe_kube_call("GET", path, 200, started)
    metrics.observe_kube_call("GET", path, 404, started)
    metrics.observe_kube_call("GET", path, None, started)
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
    print(client.get("/metrics").get_data(as_text=True))
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
