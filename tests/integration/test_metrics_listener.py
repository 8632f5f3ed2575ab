"""Metrics live on their own listener (GATEWAY_METRICS_BIND, served by gunicorn's master), never on the API port, and
nothing a client without credentials sends makes them grow: 2,000 requests with made-up HTTP methods leave the
metric files as big as before and the exposition with no new series."""
from __future__ import annotations

from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.harness import GatewayServer
from tests.support.reliability import record

MADE_UP = 2000


@pytest.fixture(scope="module")
def metrics_gateway(local_cluster, tmp_path_factory):
    server = GatewayServer(tmp_path_factory.mktemp("metrics-gateway")).start()
    yield server
    server.close()


def files_bytes(server: GatewayServer) -> int:
    return sum(path.stat().st_size for path in Path(server.env["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"))


def other_method_requests(text: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "tenx_gateway_http_requests_total" and s.labels.get("method") == "other")


def series(text: str) -> set[tuple]:
    """The exposition's series (name and labels), but the apiserver calls': the gateway's watch cache makes those
    in the background (a watch that ends, a relist), whatever the clients send."""
    return {(s.name, tuple(sorted(s.labels.items()))) for family in text_string_to_metric_families(text)
            for s in family.samples if not s.name.startswith("tenx_gateway_kube_")}


def test_metrics_are_not_on_the_api_port(metrics_gateway):
    assert requests.get(f"{metrics_gateway.url}/metrics", timeout=10).status_code == 404
    requests.get(f"{metrics_gateway.url}/healthz", timeout=10)
    response = requests.get(metrics_gateway.metrics_url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert 'route="/healthz"' in response.text


def test_made_up_methods_do_not_grow_the_metrics(metrics_gateway):
    session = requests.Session()
    paths = ("/v1/regions/us/jobs", "/healthz", "/no/such/path")

    def send(count: int, start: int, new_connection_every: int = 100) -> list[int]:
        # a new connection now and then, so that both workers answer some
        statuses = []
        for i in range(start, start + count):
            if i % new_connection_every == 0:
                session.close()
            statuses.append(session.request(f"X{i:05d}", metrics_gateway.url + paths[i % len(paths)],
                                            timeout=10).status_code)
        return statuses

    # each route's "other" label exists in each worker from here on: 30 new connections, each 10 requests over
    # the three paths; gunicorn hands each connection to either worker (all 30 to one: about 1 in 10^9)
    send(300, 0, new_connection_every=10)
    before_files, before_text = files_bytes(metrics_gateway), requests.get(metrics_gateway.metrics_url, timeout=10)
    statuses = send(MADE_UP, 10_000)
    after_files, after_text = files_bytes(metrics_gateway), requests.get(metrics_gateway.metrics_url, timeout=10)
    record("metrics_made_up_methods", {
        "what": f"{MADE_UP} requests, each with its own made-up HTTP method, no credentials, over 3 paths; metric "
                "files (PROMETHEUS_MULTIPROC_DIR) and the exposition measured before and after",
        "statuses": sorted(set(statuses)), "files_bytes_before": before_files, "files_bytes_after": after_files,
        "exposition_bytes_before": len(before_text.content), "exposition_bytes_after": len(after_text.content),
        "other_counted": other_method_requests(after_text.text) - other_method_requests(before_text.text)})
    assert after_files == before_files
    assert series(after_text.text) == series(before_text.text)
    assert "X1" not in after_text.text
    assert other_method_requests(after_text.text) - other_method_requests(before_text.text) == MADE_UP
