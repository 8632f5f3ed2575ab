"""A stand-in apiserver: a local HTTP server whose every answer the test scripts (``server.answer = lambda
handler: handler.send_json(...)`` or ``handler.send_chunks(...)``, which can break off mid-body), for the Kube client
and the gateway under gunicorn where a real cluster cannot be made to misbehave on demand."""
from __future__ import annotations

import http.server
import socket
import threading

import orjson


class StandIn(http.server.ThreadingHTTPServer):
    """Answers every request with ``self.answer(handler)``; counts requests and connections."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = lambda handler: handler.send_json(200, {})
        self.requests: list[str] = []
        self.connections = 0
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def get_request(self):
        self.connections += 1
        return super().get_request()

    def handle_error(self, request, client_address):
        pass  # a client that drops the connection half-way is what some tests do

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.requests.append(f"{self.command} {self.path}")
        self.server.answer(self)

    do_GET = do_POST = do_PUT = do_DELETE = _any

    def send_json(self, status, body):
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_chunks(self, chunks, *, finish=True):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if finish:
            self.wfile.write(b"0\r\n\r\n")
        else:  # the connection breaks off in the middle of the body
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
