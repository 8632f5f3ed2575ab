"""Streams on a gateway of the test's own: the per-user cap holds across workers (429 with Retry-After), and
SIGTERM ends every open stream with a ``shutdown`` event naming where to resume (one cut off by gunicorn at its
graceful timeout would have none); how long after the signal each ended is recorded, not asserted."""
from __future__ import annotations

import json
import signal
import time

import pytest
import requests

from tests.support.harness import start_gateway, wait_until
from tests.support.reliability import record
from tests.support.streams import EventReader, create, ticking

CAP = 3


@pytest.fixture(scope="module")
def own_gateway(local_cluster, tmp_path_factory):
    server = start_gateway(tmp_path_factory.mktemp("streams-gateway"), GATEWAY_STREAM_MAX_PER_USER=str(CAP),
                           GATEWAY_STREAM_HEARTBEAT_SECONDS="1")
    yield server
    server.close()


def open_stream(user, path: str):
    return user.session.get(f"{user.base}{path}", params={"follow": "true"}, stream=True, timeout=60)


def test_over_the_per_user_cap_is_429_across_workers(own_gateway):
    user = own_gateway.add_user("cap")
    other = own_gateway.add_user("cap")
    name, instance = create(user, ticking(lines=300, period=0.2))
    path = f"/jobs/{name}/instances/{instance}/logs"
    # each on its own connection, so gunicorn spreads them over its workers
    clients = [type(user.session)() for _ in range(CAP + 1)]
    for client in clients:
        client.headers.update(user.session.headers)
    held = [client.get(f"{user.base}{path}", params={"follow": "true"}, stream=True, timeout=60)
            for client in clients[:CAP]]
    try:
        assert [r.status_code for r in held] == [200] * CAP
        refused = clients[CAP].get(f"{user.base}{path}", params={"follow": "true"}, stream=True, timeout=60)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert refused.json()["message"].startswith(f"at most {CAP} streams")
        # what the PrometheusRule's "stream slots full" alert watches (deploy/components/monitoring)
        assert "\ntenx_gateway_streams_refused_total 1.0\n" in requests.get(own_gateway.metrics_url, timeout=10).text
        assert other.get(f"/jobs/{name}").status_code == 404  # another user's cap is their own
        assert user.get(f"/jobs/{name}").status_code == 200  # and ordinary calls are not capped
        held.pop().close()
        again = None

        def reopened():
            nonlocal again
            again = clients[CAP].get(f"{user.base}{path}", params={"follow": "true"}, stream=True, timeout=60)
            if again.status_code != 200:
                again.close()
                return False
            return True

        # the slot comes back when the worker sees the client gone (its next write, within a heartbeat)
        wait_until(reopened, 60, interval=0.5, what="the slot of the closed stream to come back")
        held.append(again)
    finally:
        for response in held:
            response.close()
    user.delete(f"/jobs/{name}")


def test_sigterm_ends_open_streams_with_shutdown_and_a_resume_point(own_gateway):
    user = own_gateway.add_user("term")
    name, instance = create(user, ticking(lines=600, period=0.1))
    streams = [open_stream(user, f"/jobs/{name}/instances/{instance}/logs") for _ in range(2)]
    assert [s.status_code for s in streams] == [200, 200]
    readers = [EventReader(s) for s in streams]
    firsts = [reader.read(stop_after=lambda e: e.get("id") == "3") for reader in readers]
    signalled = time.monotonic()
    own_gateway.process.send_signal(signal.SIGTERM)
    took = []
    for stream, reader, first in zip(streams, readers, firsts):
        with stream:
            events = first + reader.read(timeout=60)
        took.append(round(time.monotonic() - signalled, 2))
        last = events[-1]
        assert last["event"] == "shutdown", events[-3:]
        sent = [int(e["id"]) for e in events if "event" not in e]
        assert json.loads(last["data"]) == {"reason": "shutdown", "resume": sent[-1]}
        assert sent == list(range(len(sent)))
    assert own_gateway.process.wait(timeout=60) == 0
    record("sigterm_streams", {"what": "two followed streams open, SIGTERM to gunicorn (graceful timeout 25 s)",
                               "ended_after_signal_s": took,
                               "exited_after_signal_s": round(time.monotonic() - signalled, 2)})
