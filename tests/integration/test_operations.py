"""Ready for operators: health and readiness, /v1/status and /v1/regions, /metrics after real traffic, real answers
checked against /openapi.json, JSON access logs without tokens, and /docs rendered by headless Chromium."""
from __future__ import annotations

import json
import secrets
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.openapi_check import OpenApiDocument
from tests.support.browser import run_chromium
from tests.support.conditions import condition

ROOT = Path(__file__).resolve().parents[2]
JOB_ROUTES = [("GET", "/v1/regions/<region>/jobs"), ("GET", "/v1/regions/<region>/jobs/<job_name>"),
              ("POST", "/v1/regions/<region>/jobs/<job_name>"), ("DELETE", "/v1/regions/<region>/jobs/<job_name>"),
              ("GET", "/v1/regions/<region>/jobs/<job_name>/instances/<instance_name>/logs")]


@pytest.fixture(scope="module")
def document(gateway) -> OpenApiDocument:
    response = requests.get(f"{gateway.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    return OpenApiDocument(response.json())


@pytest.fixture(scope="module")
def exercised(make_user, gateway):
    """One user going through every call, successes and failures: (user, job name, [(method, path, response)])."""
    user = make_user("ops")
    answers = []  # make_user returns once every worker accepts the user

    def call(method: str, path: str, client=user, **kwargs):
        response = getattr(client.session, method.lower())(client.base + path, timeout=30, **kwargs)
        answers.append((method, client.base[len(gateway.url):] + path, response))
        return response

    name = f"ops-{secrets.token_hex(3)}"
    job = {"containers": [{"image": "busybox", "command": ["sh", "-c", "echo ready; echo steady"]}]}
    assert call("POST", f"/jobs/{name}", json=job).status_code == 200
    assert call("POST", f"/jobs/{name}", json=job).status_code == 409
    assert call("POST", "/jobs/Bad_Name", json=job).status_code == 400
    assert call("POST", f"/jobs/{name}-2", json={"containers": [{"image": "busybox", "bogus": 1}]}).status_code == 400
    # on a connection of its own: gunicorn may drop a kept-alive connection whose request body went unread
    once = SimpleNamespace(session=requests.Session(), base=user.base)
    once.session.headers.update(user.session.headers)
    assert call("POST", f"/jobs/{name}-3", client=once, data=b"x" * (65 * 1024)).status_code == 413
    assert call("PUT", f"/jobs/{name}").status_code == 405
    done = user.wait_for(name, lambda j: condition(j, "Complete") is not None)
    assert call("GET", f"/jobs/{name}").status_code == 200
    assert call("GET", "/jobs").status_code == 200
    instance = done["instance_names"][0]
    logs = call("GET", f"/jobs/{name}/instances/{instance}/logs", params={"from": 1, "size": 5})
    assert logs.status_code == 200 and logs.json() == ["steady"]
    assert call("GET", f"/jobs/{name}/instances/{instance}/logs", params={"size": "many"}).status_code == 400
    assert call("GET", f"/jobs/{name}/instances").status_code == 200
    assert call("GET", f"/jobs/{name}/logs").status_code == 200
    assert call("GET", f"/jobs/{name}-missing").status_code == 404
    assert call("DELETE", f"/jobs/{name}").status_code == 200
    assert call("DELETE", f"/jobs/{name}").status_code == 404
    anonymous = SimpleNamespace(session=requests.Session(), base=user.base)
    assert call("GET", "/jobs", client=anonymous).status_code == 401
    for path in ("/healthz", "/readyz", "/v1/status", "/v1/regions", "/openapi.json", "/docs"):
        response = requests.get(gateway.url + path, timeout=30)
        answers.append(("GET", path, response))
    return user, name, answers


def test_liveness_and_readiness(gateway):
    assert requests.get(f"{gateway.url}/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(f"{gateway.url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}


def test_the_originals_status_call(gateway):
    response = requests.get(f"{gateway.url}/v1/status", timeout=10)
    assert response.status_code == 200 and response.text == "API is running"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_regions_without_credentials(gateway):
    response = requests.get(f"{gateway.url}/v1/regions", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"regions": [{"name": "us", "display_name": "North America", "status": "available"}]}


def test_every_real_answer_matches_the_document(exercised, document):
    _, _, answers = exercised
    statuses = set()
    for method, path, response in answers:
        document.check_response(method, path, response)
        statuses.add(response.status_code)
    assert {200, 400, 401, 404, 405, 409, 413} <= statuses


def test_metrics_count_the_calls_by_route(exercised, gateway):
    user, name, _ = exercised
    assert requests.get(f"{gateway.url}/metrics", timeout=10).status_code == 404  # not on the API port
    text = requests.get(gateway.metrics_url, timeout=10).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def total(name, **labels):
        return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())

    for method, route in JOB_ROUTES:
        assert total("tenx_gateway_http_requests_total", method=method, route=route) > 0, (method, route)
        assert total("tenx_gateway_http_request_duration_seconds_count", method=method, route=route) > 0
    assert total("tenx_gateway_http_requests_total", route="/v1/regions/<region>/jobs/<job_name>", status="409") > 0
    assert total("tenx_gateway_kube_request_duration_seconds_count", verb="POST", resource="jobs") > 0
    assert total("tenx_gateway_kube_request_duration_seconds_count", verb="GET", resource="pods/log") > 0
    assert total("tenx_gateway_kube_errors_total", verb="POST", resource="jobs", code="409") > 0
    assert user.username not in text and name not in text


def test_access_log_is_json_with_user_and_no_token(exercised, gateway):
    user, _, _ = exercised
    token = user.session.headers["Authorization"].split(" ", 1)[1]
    text = gateway.output.read_text()
    assert token not in text
    entries = []
    for line in text.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    access = [e for e in entries if e.get("logger") == "gunicorn.access"]
    mine = [e for e in access if e.get("user") == user.username]
    assert mine and all(e["route"].startswith("/v1/regions/<region>/jobs") for e in mine)
    listed = next(e for e in mine if e["route"] == "/v1/regions/<region>/jobs")
    assert listed["method"] == "GET" and listed["status"] == 200 and listed["path"] == "/v1/regions/us/jobs"
    assert listed["duration_ms"] >= 0 and listed["remote_addr"] == "127.0.0.1"
    assert not any("user" in e for e in access if e["status"] == 401)


def test_docs_page_renders_every_operation(gateway, document, tmp_path_factory):
    url = f"{gateway.url}/docs"
    shot = tmp_path_factory.mktemp("docs") / "docs.png"
    run_chromium(url, f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000, "no screenshot of /docs"
    dom = run_chromium(url, "--dump-dom").stdout
    assert 'id="swagger-ui"' in dom and "tenx-gateway" in dom
    for path, item in document.document["paths"].items():
        for method in item:
            if method != "parameters":
                assert f'class="opblock opblock-{method}' in dom and f'data-path="{path}"' in dom, (method, path)
    assert dom.count('class="opblock opblock-') == sum(
        1 for item in document.document["paths"].values() for method in item if method != "parameters")
