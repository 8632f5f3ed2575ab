"""The collector's small HTTP listener: ``/healthz`` (liveness), ``/readyz`` and ``/metrics``.

Liveness fails when a region's loop, Lease renewal or pod reflector thread has died, or a loop has not come round
for ``STUCK_SECONDS``: the kubelet then restarts the container. Readiness: every region's pod reflector has its
first LIST in (a standby is ready too: it is ready to take over).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from .metrics import REGISTRY

log = logging.getLogger(__name__)
STUCK_SECONDS = 300.0


def serve(port: int, problems: Callable[[], dict[str, str]], unready: Callable[[], dict[str, str]],
          host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start the listener in a daemon thread; ``problems()``/``unready()`` map a region to what is wrong."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_PLAIN_0_0_4)
            elif self.path in ("/healthz", "/readyz"):
                found = problems() if self.path == "/healthz" else {**problems(), **unready()}
                body = {"status": "ok"} if not found else {"status": "failing", "errors": found}
                self._send(503 if found else 200, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b'{"status": "not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - probes every few seconds: not logged
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="collector-health", daemon=True).start()
    log.info("collector health and metrics on port %d", server.server_address[1])
    return server


def stuck(since: float) -> bool:
    return since > 0 and time.monotonic() - since > STUCK_SECONDS
