"""One JSON error shape for every status the API returns before it needs a cluster."""
import io
import json

import pytest

JOBS = "/v1/regions/us/jobs"


def assert_error(response, code, status):
    assert response.status_code == code
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == code and body["status"] == status and body["message"]
    return body


def test_401_without_credentials(client):
    response = client.get(JOBS)
    assert_error(response, 401, "Unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("headers", [
    {"username": "alice"},
    {"Authorization": "token alice-token"},
    {"username": "alice", "Authorization": "alice-token"},
    {"username": "alice", "Authorization": "token wrong"},
    {"username": "bob", "Authorization": "token alice-token"},
])
def test_401_for_each_credential_problem(client, headers):
    body = assert_error(client.get(JOBS, headers=headers), 401, "Unauthorized")
    assert "alice-token" not in str(body)


def test_unknown_region_is_404_after_auth(client, alice):
    assert client.get("/v1/regions/eu/jobs").status_code == 401
    body = assert_error(client.get("/v1/regions/eu/jobs", headers=alice), 404, "Not Found")
    assert body["message"] == "unknown region 'eu'; supported regions: us"


def test_unknown_path_is_404(client):
    assert_error(client.get("/v2/nothing"), 404, "Not Found")


def test_405_lists_allowed_methods(client, alice):
    response = client.put(f"{JOBS}/x", headers=alice)
    assert_error(response, 405, "Method Not Allowed")
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST", "DELETE"}


def test_400_with_field_errors_before_any_cluster_call(client, alice):
    body = assert_error(client.post(f"{JOBS}/ok", json={"containers": [{}]}, headers=alice), 400, "Bad Request")
    assert body["errors"] == {"containers": {"0": {"image": ["Missing data for required field."]}}}


def test_400_for_a_bad_job_name(client, alice):
    body = assert_error(client.post(f"{JOBS}/Bad_Name", json={}, headers=alice), 400, "Bad Request")
    assert "job_name" in body["errors"]


@pytest.mark.parametrize("data", [b"{not json", b"[]", b"null"])
def test_400_for_a_body_that_is_not_an_object(client, alice, data):
    assert_error(client.post(f"{JOBS}/ok", data=data, headers=alice, content_type="application/json"),
                 400, "Bad Request")


def test_413_for_a_body_over_the_cap(client, alice):
    body = b'{"containers": [{"image": "' + b"x" * 70_000 + b'"}]}'
    assert_error(client.post(f"{JOBS}/ok", data=body, headers=alice, content_type="application/json"),
                 413, "Request Entity Too Large")


def test_400_for_bad_log_parameters(client, alice):
    body = assert_error(client.get(f"{JOBS}/j/instances/i/logs?from=-1&size=x", headers=alice), 400, "Bad Request")
    assert set(body["errors"]) == {"from", "size"}


def test_503_when_the_region_cannot_be_reached(client, alice):
    response = client.get(JOBS, headers=alice)
    assert_error(response, 503, "Service Unavailable")


def test_no_stack_trace_leaves_the_process(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    body = assert_error(client.get("/boom"), 500, "Internal Server Error")
    assert "secret internals" not in str(body) and body["message"] == "internal error"


def test_429_after_repeated_bad_tokens(client, alice):
    bad = {"username": "alice", "Authorization": "token guess"}
    for _ in range(10):
        assert client.get(JOBS, headers=bad).status_code == 401
    response = client.get(JOBS, headers=bad)
    assert_error(response, 429, "Too Many Requests")
    assert 0 < int(response.headers["Retry-After"]) <= 60
    # the user name is throttled too, even for a caller who now has the right token
    assert client.get(JOBS, headers=alice).status_code == 429


def test_double_slashes_are_404_json_not_a_redirect(client, alice):
    response = client.get("/v1/regions/us/jobs//myjob", headers=alice)
    assert response.status_code == 404 and response.get_json()["code"] == 404


def test_413_for_a_chunked_body_over_the_cap(client, alice):
    """No Content-Length: werkzeug would cut the body at the cap and hand on the first 64 KiB as if whole."""
    body = json.dumps({"containers": [{"image": "busybox"}]}).encode() + b" " * (3 * 65536)
    response = client.post("/v1/regions/us/jobs/myjob", headers={**alice, "Transfer-Encoding": "chunked"},
                           input_stream=io.BytesIO(body), environ_base={"wsgi.input_terminated": True})
    assert response.status_code == 413 and response.get_json()["code"] == 413
