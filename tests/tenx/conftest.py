"""Fixtures of the unit tests of tenx: ``serve``, a tiny scripted HTTP server standing in for a gateway (streams or
not); ``run``, the command line called in-process, giving its exit code, stdout and stderr."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tenx.client import Client
from tenx.config import Credentials
from tenx.main import main


class Script:
    """Per path, a list of answers given in turn (the last one repeats); each is (status, content type, body) or
    (status, content type, body, headers). A path ending in ``*`` answers every path it starts."""

    def __init__(self, routes):
        self.routes = {path: list(answers) for path, answers in routes.items()}
        self.requests: list[tuple[str, dict, dict]] = []
        self.bodies: list[tuple[str, bytes]] = []

    def answer(self, path):
        answers = self.routes.get(path) or next((answers for route, answers in self.routes.items()
                                                 if route.endswith("*") and path.startswith(route[:-1])), None)
        if not answers:
            return 404, "application/json", json.dumps({"code": 404, "message": "unknown path"})
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def serve():
    servers = []

    def start(routes) -> tuple[Script, Client]:
        script = Script(routes)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                script.requests.append((url.path, parse_qs(url.query), dict(self.headers)))
                script.bodies.append((self.command, body))
                status, kind, body, *more = script.answer(url.path.removeprefix("/v1/regions/us"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                for name, value in (more[0] if more else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        creds = Credentials(url=f"http://127.0.0.1:{server.server_port}", user="u", token="t", region="us",
                            profile="default")
        return script, Client(creds)

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def run(monkeypatch, tmp_path, capsys):
    for key in ("TENX_URL", "TENX_USER", "TENX_TOKEN", "TENX_REGION", "TENX_PROFILE", "TENX_DEBUG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    def invoke(*argv: str, stdin: str | None = None):
        if stdin is not None:
            import io
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err
    return invoke
