"""The stream calls against careless and hostile clients, on gunicorn with the shipped config (issue 24): a HEAD
holds no stream place, a removed user's open streams end, a genuine stream token that expired is no failed login,
a NUL in a line is sent at an offset as a page of that offset shows it, and thousands of streams dropped at any
point never abort a worker."""
from __future__ import annotations

import base64
import json
import random
import secrets
import socket
import struct
import threading
import time

import pytest

from tests.support.harness import start_gateway, wait_until
from tests.support.reliability import client_from, record
from tests.support.streams import EventReader, create, follow, lines_of, ticking

CAP = 20  # GATEWAY_STREAM_MAX_PER_USER's default
FAILURE_LIMIT = 5
STREAMS_DROPPED = 3600


@pytest.fixture(scope="module")
def streams_gateway(local_cluster, tmp_path_factory):
    """Its own gateway: failed logins from its clients, users removed under it, streams ended quickly (heartbeat
    1 s, so a removal is noticed within about a second; idle 30 s, so a stream that is not cut ends anyway)."""
    server = start_gateway(tmp_path_factory.mktemp("hostile-streams"), GATEWAY_STREAM_HEARTBEAT_SECONDS="1",
                           GATEWAY_STREAM_IDLE_SECONDS="30", GATEWAY_STREAM_TOKEN_SECONDS="5",
                           GATEWAY_AUTH_FAILURE_LIMIT=str(FAILURE_LIMIT))
    yield server
    server.close()


def test_head_on_stream_calls_holds_no_stream_place(streams_gateway):
    """20 HEADs used to take all 20 places of the user for good (the unread body never gave its place back) and
    leave a producer running behind each."""
    user = streams_gateway.add_user("head")
    name, instance = create(user, ticking(lines=3, period=0.05), prefix="hd")
    paths = ["/jobs?watch=true", f"/jobs/{name}/watch", f"/jobs/{name}/instances/{instance}/logs?follow=true",
             f"/jobs/{name}/logs?follow=true"]
    heads = []
    for n in range(CAP + 10):
        started = time.monotonic()
        answer = user.session.head(user.base + paths[n % len(paths)], timeout=30)
        heads.append((answer.status_code, time.monotonic() - started))
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
        assert answer.content == b"" and "Content-Length" not in answer.headers  # as the GET: a stream
    for path in paths:  # each kind still opens (the job is over: all but the list's end by themselves)
        with user.session.get(user.base + path, stream=True, timeout=30) as response:
            assert response.status_code == 200, (path, response.status_code, response.text[:200])
    opened = []

    def one_more_place():
        response = user.session.get(user.base + paths[0], stream=True, timeout=30)
        if response.status_code != 200:
            response.close()
            return None
        opened.append(response)
        return response

    try:
        # and every place is there (the list's watch never ends by itself); the ones just read give theirs back
        # when their worker sees them closed (its next heartbeat) or once they end (the job's: 3 s of quiet)
        for _ in range(CAP):
            wait_until(one_more_place, 20, interval=0.5, what=f"place {len(opened) + 1} of {CAP}")
        refused = user.session.get(user.base + paths[1], stream=True, timeout=30)
        assert refused.status_code == 429 and refused.json()["message"].startswith(f"at most {CAP} streams")
        assert user.session.head(user.base + paths[1], timeout=30).status_code == 429  # as the GET would
    finally:
        for response in opened:
            response.close()
    record("hostile_stream_heads", {
        "heads": len(heads), "statuses": sorted({s for s, _ in heads}),
        "slowest_head_s": round(max(t for _, t in heads), 3), "streams_opened_after": len(opened),
        "the_21st": 429})
    user.delete(f"/jobs/{name}")


def test_a_removed_users_open_streams_end_at_their_next_heartbeat(streams_gateway):
    user = streams_gateway.add_user("gone")
    name, instance = create(user, ticking(lines=300, period=0.2), prefix="rm")
    busy = follow(user, f"/jobs/{name}/instances/{instance}/logs")
    quiet = user.session.get(f"{user.base}/jobs", params={"watch": "true"}, stream=True, timeout=60)
    assert quiet.status_code == 200
    readers = [EventReader(busy), EventReader(quiet)]
    readers[0].read(stop_after=lambda e: e.get("id") == "2")
    readers[1].read(stop_after=lambda e: e.get("event") == "job")
    removed = time.monotonic()
    streams_gateway.cli("users", "remove", user.username)
    ends, took = [], []
    for reader, response in zip(readers, (busy, quiet)):
        with response:
            events = reader.read(timeout=60)
        took.append(round(time.monotonic() - removed, 2))
        ends.append(events[-1])
    assert [e.get("event") for e in ends] == ["error", "error"], ends
    assert all(json.loads(e["data"])["code"] == 401 for e in ends)
    assert user.get("/jobs").status_code == 401
    record("hostile_removed_user_streams", {"streams": 2, "ended_with": "error 401",
                                            "seconds_after_removal": took, "heartbeat_s": 1})


def _expiry(token: str) -> int:
    payload = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["x"]


def test_an_expired_genuine_stream_token_is_no_failed_login(streams_gateway):
    """26 reconnects with one expired token (what an EventSource does after a ``shutdown``) put the whole client
    address on 429 before, both users' header calls included."""
    user, neighbour = streams_gateway.add_user("exp"), streams_gateway.add_user("exp")
    address = "127.0.0.5"  # a client address of its own: failures here throttle no other test's calls
    token = user.post("/stream-tokens").json()["stream_token"]
    until_expired = _expiry(token) + 1
    wait_until(lambda: time.time() > until_expired, 30, what="the stream token's expiry")
    answers = []
    for _ in range(26):  # a new connection each time: both workers see some
        fresh = client_from(address, streams_gateway.url, user.username, "unused")
        answers.append(fresh.get("/jobs", params={"watch": "true", "stream_token": token}, stream=True).status_code)
    same_address = [client_from(address, streams_gateway.url, u.username, u.session.headers["Authorization"][6:])
                    for u in (user, neighbour)]
    after = [c.get("/jobs").status_code for c in same_address]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    forged_answers = [client_from(address, streams_gateway.url, user.username, "unused").get(
        "/jobs", params={"watch": "true", "stream_token": forged}).status_code for _ in range(2 * FAILURE_LIMIT + 2)]
    record("hostile_expired_stream_token", {"expired_reconnects": answers.count(401),
                                            "statuses": {str(s): answers.count(s) for s in set(answers)},
                                            "header_calls_after": after, "forged_after": forged_answers})
    assert answers == [401] * 26
    assert after == [200, 200]
    assert 429 in forged_answers  # a forged token still counts


def test_a_nul_is_sent_by_a_stream_as_a_page_shows_it(gateway, make_user):
    """Pages read the archive (which stores NUL as U+FFFD, as PostgreSQL must); a followed log read the pod and
    sent ``\\u0000`` at the same offset."""
    user = make_user("nul")
    name = f"nul-{secrets.token_hex(3)}"
    spec = {"containers": [{"image": "busybox", "command": ["sh", "-c", r"printf 'a\000b\nplain\n'"]}],
            "backoff_limit": 0}
    assert user.post(f"/jobs/{name}", json=spec).status_code == 200
    instance = user.wait_for(name, lambda job: job.get("instance_names"), 180)["instance_names"][0]
    wait_until(lambda: len(user.get(f"/jobs/{name}/logs").json()) == 2, 60, what="both lines in the archive")
    page = user.get(f"/jobs/{name}/instances/{instance}/logs").json()
    with follow(user, f"/jobs/{name}/instances/{instance}/logs") as stream:
        streamed = [line for _, line in lines_of(EventReader(stream).read(stop_after=lambda e: e.get("event")))]
    assert page == ["a\ufffdb", "plain"]
    assert streamed == page
    user.delete(f"/jobs/{name}")


@pytest.fixture(scope="module")
def uncached_gateway(local_cluster, tmp_path_factory):
    """Its own gateway with the watch cache off: every producer's look at the job or pod is an apiserver call, so
    streams are dropped while their producer waits on an apiserver socket."""
    server = start_gateway(tmp_path_factory.mktemp("dropped-streams"), GATEWAY_WATCH_CACHE="false",
                           GATEWAY_STREAM_MAX_PER_USER="200", GATEWAY_STREAM_HEARTBEAT_SECONDS="0.5")
    yield server
    server.close()


def _open_and_drop(server, request: bytes, rng: random.Random) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        for _ in range(rng.randint(0, 3)):
            if not sock.recv(4096):
                break
        if rng.random() < 0.5:  # half of them reset (RST) rather than closed
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_streams_dropped_by_the_thousand_never_abort_a_worker(uncached_gateway):
    """Killing the producer greenlet (greenlet.kill) at its blocking point when a stream ended made libev abort the
    worker now and then ("epoll_modify: Assertion ... I/O watcher with invalid fd"): 5 workers in 4,536 dropped
    streams before. The producer is now stopped cooperatively."""
    server = uncached_gateway
    user = server.add_user("drop")
    name, instance = create(user, ticking(lines=3000, period=0.05), prefix="drop")
    paths = [f"/jobs/{name}/instances/{instance}/logs?follow=true", f"/jobs/{name}/watch",
             f"/jobs/{name}/logs?follow=true", "/jobs?watch=true"]
    requests_ = [(f"GET {user.base[len(server.url):]}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nusername: "
                  f"{user.username}\r\nAuthorization: {user.session.headers['Authorization']}\r\n\r\n").encode()
                 for path in paths]
    workers = server.worker_pids()
    dropped, failed = [], []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(STREAMS_DROPPED // 12):
            try:
                _open_and_drop(server, rng.choice(requests_), rng)
                dropped.append(1)
            except OSError as exc:
                failed.append(repr(exc))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(12)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log = server.log_text()
    record("hostile_dropped_streams", {"dropped": len(dropped), "client_errors": len(failed),
                                       "seconds": round(time.monotonic() - started, 1),
                                       "workers_replaced": len(set(server.worker_pids()) - set(workers)),
                                       "libev_aborts": log.count("epoll_modify")})
    assert "epoll_modify" not in log and "SIGABRT" not in log
    assert server.worker_pids() == workers
    assert not failed, failed[:5]
    user.delete(f"/jobs/{name}")
