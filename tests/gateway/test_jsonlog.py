"""JSON-lines logs: gunicorn's access lines carry the route and the proven user, and never a header's secret."""
import datetime as dt
import json
import logging
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from werkzeug.test import EnvironBuilder

from gateway.jsonlog import ROUTE_KEY, USER_KEY, GunicornLogger, JsonFormatter, access_fields, redact

ENVIRON = {"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/regions/us/jobs", "QUERY_STRING": "",
           "REMOTE_ADDR": "10.1.2.3", "HTTP_USER_AGENT": "curl/8", "HTTP_USERNAME": "alice",
           "HTTP_AUTHORIZATION": "token s3cret", "RAW_URI": "/v1/regions/us/jobs", "SERVER_PROTOCOL": "HTTP/1.1",
           ROUTE_KEY: "/v1/regions/<region>/jobs", USER_KEY: "alice"}


def test_formatter_writes_one_json_object_with_fields():
    record = logging.LogRecord("gateway.kube", logging.WARNING, __file__, 1, "apiserver %s failed", ("GET",), None)
    record.fields = {"status": 503}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warning" and entry["logger"] == "gateway.kube"
    assert entry["message"] == "apiserver GET failed" and entry["status"] == 503
    assert entry["time"].endswith("+00:00") and isinstance(entry["pid"], int)


def test_formatter_keeps_the_traceback_inside_the_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record = logging.LogRecord("gateway", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


def test_access_fields_never_take_headers_but_the_user_agent():
    fields = access_fields(200, ENVIRON, dt.timedelta(milliseconds=12.5), 321)
    assert fields == {"method": "GET", "path": "/v1/regions/us/jobs", "route": "/v1/regions/<region>/jobs",
                      "status": 200, "duration_ms": 12.5, "bytes": 321, "remote_addr": "10.1.2.3",
                      "user": "alice", "user_agent": "curl/8"}


def test_gunicorn_access_line(tmp_path):
    log_file = tmp_path / "access.log"
    cfg = Config()
    cfg.set("accesslog", str(log_file))
    cfg.set("errorlog", str(tmp_path / "error.log"))
    root_handlers = list(logging.getLogger().handlers)
    root_level = logging.getLogger().level
    try:
        logger = GunicornLogger(cfg)
        response = SimpleNamespace(status="401 UNAUTHORIZED", sent=99, headers=[])
        environ = {k: v for k, v in ENVIRON.items() if k != USER_KEY}
        logger.access(response, SimpleNamespace(headers=[("Authorization", "token s3cret")]), environ,
                      dt.timedelta(seconds=1, microseconds=500))
        logging.getLogger("gateway.test").warning("from the app")
    finally:
        for handler in GunicornLogger._app_handlers:
            logging.getLogger().removeHandler(handler)
            handler.close()
        logging.getLogger().handlers[:] = root_handlers
        logging.getLogger().setLevel(root_level)
    text = log_file.read_text()
    assert "s3cret" not in text
    entry = json.loads(text)
    assert entry["logger"] == "gunicorn.access" and entry["status"] == 401 and "user" not in entry
    assert entry["duration_ms"] == 1000.5 and entry["message"] == "GET /v1/regions/us/jobs 401"
    app_line = json.loads((tmp_path / "error.log").read_text().splitlines()[-1])
    assert app_line["logger"] == "gateway.test" and app_line["message"] == "from the app"


def _serve(app, path, headers):
    """Run one request through the WSGI app, as gunicorn does, and return the environ it leaves behind."""
    environ = EnvironBuilder(path=path, headers=headers).get_environ()
    b"".join(app(environ, lambda status, headers, exc_info=None: None))
    return environ


def test_the_app_hands_route_and_proven_user_to_the_access_log(app, alice):
    environ = _serve(app, "/v1/regions/us/jobs/Not_A_Job", alice)
    assert environ[ROUTE_KEY] == "/v1/regions/<region>/jobs/<job_name>" and environ[USER_KEY] == "alice"
    environ = _serve(app, "/v1/regions/us/jobs", {"username": "alice"})
    assert USER_KEY not in environ  # not authenticated: no user name in the log


def test_configure_for_processes_without_gunicorn(capsys):
    from gateway.jsonlog import configure
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure()
        logging.getLogger("gateway.archive").info("swept %d pods", 3)
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["logger"] == "gateway.archive" and entry["message"] == "swept 3 pods"


TOKEN = "Zq3-vJt8_Kd1xWm0pLr5sYb7nHc2eUf9aGi4oTk6QwE"  # an API token's shape: 43 URL-safe base64 characters


@pytest.mark.parametrize("text", [
    f"GET /v1/regions/us/jobs?watch=true&stream_token={TOKEN}&x=1",
    f"Invalid Request Line 'GET /x?stream%5Ftoken={TOKEN} HTTP/1.1 extra'",
    f"Invalid Request Line 'GET /x?stream%5ftoken%3D{TOKEN} HTTP/1.1 extra'",
    "Invalid Request Line 'GET /x?%73tream_token=s3cr3t HTTP/1.1 extra'",
    "Invalid HTTP Header: 'Authorization token s3cr3t'",
    "Invalid HTTP Header: 'authorization: Bearer s3cr3t'",
    "headers {'Authorization': 'token s3cr3t'}",
    'sent {"Authorization": "token s3cr3t", "username": "alice"}',
    f'{{"stream_token": "{TOKEN}"}}',
    f"a line with token {TOKEN[:24]} inside",
    f"and a bare one: {TOKEN}.",
])
def test_whatever_logs_a_credential_the_line_has_it_redacted(text):
    record = logging.LogRecord("gunicorn.error", logging.WARNING, __file__, 1, "Invalid request from ip=%s: %s",
                               ("127.0.0.1", text), None)
    line = JsonFormatter().format(record)
    assert "s3cr3t" not in line and TOKEN not in line and TOKEN[:24] not in line
    assert "[redacted]" in json.loads(line)["message"]


@pytest.mark.parametrize("text", [
    "the Authorization header is missing", "the Authorization header must be 'token <api token>'",
    "invalid or expired stream token", "GET /v1/regions/us/jobs/job-api-x7k2p-abcdefghij-0123456789abcdefghij/logs",
    "test_a_client_that_leaves_stops_the_producer_and_more_words", "sha256 " + "ab12" * 16,
])
def test_what_is_no_credential_is_left_as_it_is(text):
    assert redact(text) == text
