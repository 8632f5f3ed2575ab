"""Serving rules below the API: the send timeout of the workers (gateway/api/workers.py), each user's places for calls
in progress (gateway/api/inflight.py) and the Host header HTTP/1.1 requires (gateway/api/http11.py)."""
from __future__ import annotations

import socket
import threading

import pytest

from gateway import create_app
from gateway.api.workers import PIECE_BYTES, ClientTooSlow, TimedSends

from tests.support.fake_users import TableUsers


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def test_a_client_that_reads_gets_every_byte_in_pieces(pair):
    server, client = pair
    data = bytes(range(256)) * (3 * PIECE_BYTES // 256 + 7)
    received = bytearray()

    def read_all():
        while len(received) < len(data):
            received.extend(client.recv(65536))

    reader = threading.Thread(target=read_all)
    reader.start()
    TimedSends(server, 5).sendall(data)
    reader.join(10)
    assert bytes(received) == data
    assert server.gettimeout() is None  # the socket's own timeout is put back


class SendsWatched:
    """A socket that notes the timeout in effect at each send (the kernel's clock enforces it, not the test's)."""

    def __init__(self, sock):
        self.sock = sock
        self.timeouts: list[float | None] = []

    def sendall(self, data, flags: int = 0) -> None:
        self.timeouts.append(self.sock.gettimeout())
        self.sock.sendall(data, flags)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def test_a_client_that_takes_nothing_is_dropped_after_the_send_timeout(pair):
    server, _ = pair
    watched = SendsWatched(server)
    with pytest.raises(ClientTooSlow) as dropped:
        TimedSends(watched, 0.5).sendall(b"x" * (16 * 1024 * 1024))
    assert dropped.value.errno == 32  # EPIPE: gunicorn drops the connection without a traceback
    assert watched.timeouts and set(watched.timeouts) == {0.5}  # each piece had the send timeout, none waited more
    assert server.gettimeout() is None


def test_everything_else_is_the_sockets(pair):
    server, _ = pair
    assert TimedSends(server, 1).fileno() == server.fileno()


@pytest.fixture
def capped():
    app = create_app({"regions": {"us": "no-such-context"}, "watch_cache": False, "requests_max_per_user": 2})
    app.extensions["tenx"].users = TableUsers({"alice": "alice-token", "bob": "bob-token"})
    return app


def headers(user: str) -> dict[str, str]:
    return {"username": user, "Authorization": f"token {user}-token"}


def test_a_user_past_their_calls_in_progress_gets_429_until_one_is_answered(capped):
    client = capped.test_client()
    # answers not yet sent to the end: their bodies are not closed (the unknown region: a 404 after the login)
    held = [client.get("/v1/regions/nowhere/jobs", headers=headers("alice")) for _ in range(2)]
    assert [r.status_code for r in held] == [404, 404]
    refused = client.get("/v1/regions/nowhere/jobs", headers=headers("alice"))
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert "GATEWAY_REQUESTS_MAX_PER_USER" in refused.get_json()["message"]
    assert client.get("/v1/regions/nowhere/jobs", headers=headers("bob")).status_code == 404  # their own places
    held.pop().close()
    assert client.get("/v1/regions/nowhere/jobs", headers=headers("alice")).status_code == 404
    assert client.get("/healthz").status_code == 200  # calls without credentials take no place


def test_a_place_given_back_just_after_a_call_comes_is_taken_by_it(capped):
    """A client that calls one call after another can send its next before the last answer's place is given back
    (the worker closes that body after its final byte): the call waits a moment for it instead of a 429."""
    import threading

    client = capped.test_client()
    held = [client.get("/v1/regions/nowhere/jobs", headers=headers("alice")) for _ in range(2)]
    closing = threading.Timer(0.05, held.pop().close)
    closing.start()
    try:
        assert client.get("/v1/regions/nowhere/jobs", headers=headers("alice")).status_code == 404
    finally:
        closing.join()


def test_failed_logins_take_no_place(capped):
    client = capped.test_client()
    held = [client.get("/v1/regions/us/jobs", headers={"username": "alice", "Authorization": "token wrong"})
            for _ in range(3)]
    assert {r.status_code for r in held} == {401}


def test_an_http11_request_without_host_is_400(client):
    answer = client.get("/healthz", environ_overrides={"HTTP_HOST": ""})
    assert answer.status_code == 400 and "Host" in answer.get_json()["message"]
    twice = client.get("/healthz", environ_overrides={"HTTP_HOST": "a.example,b.example"})
    assert twice.status_code == 400
    old = client.get("/healthz", environ_overrides={"HTTP_HOST": "", "SERVER_PROTOCOL": "HTTP/1.0"})
    assert old.status_code == 200  # HTTP/1.0 needs none
    assert client.get("/healthz").status_code == 200
