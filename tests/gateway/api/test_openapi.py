"""The OpenAPI document: valid, complete for the url_map, and true to what the app answers (no cluster needed)."""
import pytest
from openapi_spec_validator import validate

from gateway.api.openapi import build_spec, documented_routes, openapi_path, undocumented

from tests.support.openapi_check import OpenApiDocument

JOBS = "/v1/regions/us/jobs"
JOB_CALLS = [("get", "/v1/regions/{region}/jobs"), ("get", "/v1/regions/{region}/jobs/{job_name}"),
             ("post", "/v1/regions/{region}/jobs/{job_name}"), ("delete", "/v1/regions/{region}/jobs/{job_name}"),
             ("get", "/v1/regions/{region}/jobs/{job_name}/instances/{instance_name}/logs")]
# the calls that may answer with a stream, where a stream token may replace the headers
STREAM_CALLS = {("get", "/v1/regions/{region}/jobs"), ("get", "/v1/regions/{region}/jobs/{job_name}/watch"),
                ("get", "/v1/regions/{region}/jobs/{job_name}/instances/{instance_name}/logs"),
                ("get", "/v1/regions/{region}/jobs/{job_name}/logs")}


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


@pytest.fixture
def checker(document):
    return OpenApiDocument(document)


def test_the_document_is_valid_openapi_3(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_route_is_documented_and_every_entry_routed(app):
    assert undocumented(app, app.extensions["tenx"].settings) == []


def test_paths_and_methods_are_exactly_the_url_map(app, document):
    routed = {(openapi_path(rule.rule), method.lower()) for rule, method in documented_routes(app)}
    described = {(path, method) for path, item in document["paths"].items() for method in item
                 if method != "parameters"}
    assert described == routed
    assert ("/v1/regions/{region}/jobs/{job_name}", "post") in described


def test_a_new_undocumented_route_is_reported(app):
    app.add_url_rule("/v1/secret-feature", "secret_feature", lambda: "x", methods=["PUT"])
    settings = app.extensions["tenx"].settings
    assert undocumented(app, settings) == ["PUT secret_feature: no documentation"]
    operation = build_spec(app, settings)["paths"]["/v1/secret-feature"]["put"]
    assert operation["summary"] == "(undocumented)"


def test_path_parameters_are_described(document):
    for path, item in document["paths"].items():
        names = [p["name"] for p in item.get("parameters", [])]
        assert sorted(names) == sorted(part[1:-1] for part in path.split("/") if part.startswith("{")), path
        assert all(p["description"] and p["required"] for p in item.get("parameters", [])), path


@pytest.mark.parametrize("method,path", JOB_CALLS)
def test_job_calls_need_credentials_and_list_every_status(document, method, path):
    operation = document["paths"][path][method]
    headers = {"username": [], "token": []}
    assert operation["security"] == ([headers, {"streamToken": []}] if (method, path) in STREAM_CALLS else [headers])
    assert {"200", "401", "404", "405", "429", "500", "503"} <= set(operation["responses"])
    assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]
    assert operation["responses"]["503"]["headers"]["Retry-After"]


def test_create_and_logs_list_their_own_statuses(document):
    create = document["paths"]["/v1/regions/{region}/jobs/{job_name}"]["post"]
    assert {"400", "409", "413"} <= set(create["responses"])
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobSpec"}
    logs = document["paths"]["/v1/regions/{region}/jobs/{job_name}/instances/{instance_name}/logs"]["get"]
    assert "400" in logs["responses"]
    query = {p["name"]: p for p in logs["parameters"] if p["in"] == "query"}
    assert set(query) == {"date", "from", "size", "since", "timestamps", "follow", "last_event_id"}
    number, empty = query["size"]["schema"]["anyOf"]
    assert number["maximum"] == 10000 and number["default"] == 1000
    assert empty == {"type": "string", "maxLength": 0}  # `size=` is as if absent
    assert "X-Log-Offset" in logs["responses"]["200"]["headers"]


@pytest.mark.parametrize("text, valid", [("10m", True), ("1h30m", True), ("2026-11-28T09:00:00.5Z", True),
                                         ("2026-11-28T17:00:00+08:00", True), ("10", False), ("10d", False),
                                         ("2026-11-28", False), ("yesterday", False)])
def test_the_documented_since_pattern_is_what_the_schema_takes(document, text, valid):
    import re
    from marshmallow import ValidationError
    from gateway.api.schemas import LogsQuerySchema
    logs = document["paths"]["/v1/regions/{region}/jobs/{job_name}/logs"]["get"]
    since = next(p for p in logs["parameters"] if p["name"] == "since")["schema"]["anyOf"][0]
    assert bool(re.fullmatch(since["pattern"], text)) is valid
    try:
        LogsQuerySchema(default_size=10, max_size=10).load({"since": text})
    except ValidationError:
        assert not valid
    else:
        assert valid


def test_the_stream_switches_resume_points_and_stream_tokens_are_documented(document):
    paths = document["paths"]
    for path in ("/v1/regions/{region}/jobs/{job_name}/instances/{instance_name}/logs",
                 "/v1/regions/{region}/jobs/{job_name}/logs"):
        parameters = {(p["in"], p["name"]) for p in paths[path]["get"]["parameters"]}
        assert {("query", "follow"), ("query", "last_event_id"), ("header", "Last-Event-ID")} <= parameters
    listing = paths["/v1/regions/{region}/jobs"]["get"]
    assert ("query", "watch") in {(p["in"], p["name"]) for p in listing["parameters"]}
    assert set(listing["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert document["components"]["securitySchemes"]["streamToken"] == {
        "type": "apiKey", "in": "query", "name": "stream_token",
        "description": document["components"]["securitySchemes"]["streamToken"]["description"]}
    with_tokens = {(method, path) for path, item in paths.items() for method, operation in item.items()
                   if isinstance(operation, dict) and {"streamToken": []} in operation.get("security", [])}
    assert with_tokens == STREAM_CALLS


def test_security_schemes_are_the_original_headers(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["username"] == {"type": "apiKey", "in": "header", "name": "username",
                                   "description": schemes["username"]["description"]}
    assert schemes["token"]["in"] == "header" and schemes["token"]["name"] == "Authorization"


def test_job_spec_comes_from_the_validator(document):
    schemas = document["components"]["schemas"]
    job_spec = schemas["JobSpec"]
    assert job_spec["additionalProperties"] is False and job_spec["required"] == ["containers"]
    assert "volumeMounts" in schemas["Container"]["properties"]  # data_key, as clients send it
    assert schemas["Job"]["additionalProperties"] is True  # passed through from the apiserver


def test_health_calls_are_public(document):
    for path in ("/healthz", "/readyz", "/v1/status", "/v1/regions", "/openapi.json", "/docs"):
        assert document["paths"][path]["get"]["security"] == []


@pytest.mark.parametrize("method,path,kwargs,status", [
    ("GET", JOBS, {}, 401),
    ("GET", "/v1/regions/eu/jobs", {"headers": "alice"}, 404),
    ("PUT", JOBS, {}, 405),
    ("POST", JOBS + "/Bad_Name", {"headers": "alice", "json": {}}, 400),
    ("POST", JOBS + "/ok", {"headers": "alice", "json": {"containers": []}}, 400),
    ("POST", JOBS + "/ok", {"headers": "alice", "data": "x" * (65 * 1024)}, 413),
    ("GET", JOBS + "/j/instances/i/logs?size=-1", {"headers": "alice"}, 400),
    ("GET", JOBS + "/Not_A_Job", {"headers": "alice"}, 404),
])
def test_error_answers_match_the_document(client, checker, alice, method, path, kwargs, status):
    if kwargs.get("headers") == "alice":
        kwargs = {**kwargs, "headers": alice}
    response = client.open(path, method=method, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    checker.check_response(method, path, response)


def test_success_answers_without_a_cluster_match_the_document(client, checker):
    for path in ("/healthz", "/v1/regions", "/openapi.json", "/docs"):
        response = client.get(path)
        assert response.status_code == 200, path
        checker.check_response("GET", path, response)


def test_undocumented_status_is_caught(checker):
    with pytest.raises(AssertionError, match="status 418 is not documented"):
        checker.check("GET", "/healthz", 418, "application/json", b"{}")
    with pytest.raises(AssertionError, match="does not match"):
        checker.check("GET", "/v1/regions/us/jobs", 200, "application/json", b'{"jobs": [{"spec": {}}]}')


def test_docs_page_loads_nothing_from_elsewhere(client):
    import re
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(url.startswith("/docs/static/") for url in assets)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "connect-src 'self'" in response.headers["Content-Security-Policy"]
    for url in assets:
        assert client.get(url).status_code == 200, url


def test_error_examples_carry_their_own_status(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for code, response in operation["responses"].items():
                example = response.get("content", {}).get("application/json", {}).get("example")
                if code >= "400" and example is not None:
                    assert example["code"] == int(code), (method, path, code)
