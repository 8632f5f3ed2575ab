"""Resource limits: body size (413, and the connection stays usable), request line and headers (gunicorn's
limit_request_*), `size` and `from`, log bytes per call (GATEWAY_LOG_MAX_BYTES) and jobs per list
(GATEWAY_LIST_MAX_JOBS); and a thousand requests that hit those limits each get their limit's answer, the workers'
memory before and after them recorded (not asserted: the machine is shared).

A gateway of the test's own with small caps (64 KiB of log text a call, 5 jobs a list) so that they are reached
cheaply; the body limit is the default 64 KiB.
"""
from __future__ import annotations

import secrets
import socket
import threading
import time
from collections import Counter

import pytest
import requests

from tests.support.conditions import condition
from tests.support.reliability import GatewayServer, make_namespace, record, wait_until

LOG_MAX_BYTES = 64 * 1024
LIST_MAX_JOBS = 5
MAX_BODY = 64 * 1024
LINES = 2000
LONG_LINE = 300_000
# 2000 lines of ~100 bytes, one line of 300 kB without a break, then one more line
NOISY = {"containers": [{"image": "busybox", "command": [
    "sh", "-c", f"seq -f 'line %05g {'x' * 90}' 1 {LINES}; head -c {LONG_LINE} /dev/zero | tr '\\0' y; echo; "
                "echo after"]}]}
JOB = {"containers": [{"image": "busybox", "command": ["true"]}]}


@pytest.fixture(scope="module")
def limits_gateway(local_cluster, tmp_path_factory):
    server = GatewayServer(tmp_path_factory.mktemp("limits-gateway"), collector=True,
                           GATEWAY_LOG_MAX_BYTES=str(LOG_MAX_BYTES), GATEWAY_LIST_MAX_JOBS=str(LIST_MAX_JOBS)).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def noisy(limits_gateway):
    """A user whose job logged 2000 lines, one 300 kB line and one more; its log archived by the collector."""
    user = limits_gateway.add_user("noisy")
    name = f"noisy-{secrets.token_hex(3)}"
    assert user.post(f"/jobs/{name}", json=NOISY).status_code == 200
    job = user.wait_for(name, lambda j: condition(j, "Complete") is not None)
    instance = job["instance_names"][0]
    archived = wait_until(lambda: user.get(f"/jobs/{name}/logs", params={"from": LINES + 1, "size": 1}).json()
                          == [f"[{instance}] after"], 60, interval=0.5)
    assert archived, "the collector did not archive the whole log"
    return user, name, instance


@pytest.fixture(scope="module")
def crowded(limits_gateway):
    """A user with more jobs than a list returns (no pods: a quota of zero)."""
    user = limits_gateway.add_user("crowded")
    make_namespace(limits_gateway, user, max_pods=0)
    for i in range(LIST_MAX_JOBS + 2):
        assert user.post(f"/jobs/j{i}", json=JOB).status_code == 200
    return user


def json_of_size(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (a job.json with an unknown field: 400 once parsed)."""
    head = b'{"containers": [{"image": "busybox"}], "padding": "'
    return head + b"p" * (size - len(head) - 2) + b'"}'


def test_bodies_over_the_limit_are_413_and_the_connection_stays_usable(limits_gateway):
    user = limits_gateway.add_user("body")
    session = requests.Session()  # one client, reusing its connection whenever the server lets it
    session.headers.update(user.session.headers)
    url = f"{user.base}/jobs/big"
    answers: Counter = Counter()
    closes = Counter()
    rounds = 25
    for i in range(rounds):
        for body in (json_of_size(MAX_BODY + 1), b"x" * (1024 * 1024)):
            response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
            answers[f"{len(body)} B: {response.status_code}"] += 1
            closes[response.headers.get("Connection")] += 1
            answers[f"next GET: {session.get(f'{user.base}/jobs', timeout=30).status_code}"] += 1
        chunked = session.post(url, data=(b"x" * 65536 for _ in range(4)), timeout=30)  # 256 KiB, no length
        answers[f"chunked 256 KiB: {chunked.status_code}"] += 1
        answers[f"next GET: {session.get(f'{user.base}/jobs', timeout=30).status_code}"] += 1
    at_limit = session.post(url, data=json_of_size(MAX_BODY), headers={"Content-Type": "application/json"},
                            timeout=30)
    record("limits_body", {
        "what": f"{rounds} rounds on one requests.Session: a body of limit+1 bytes, of 1 MiB, and a chunked one of "
                "256 KiB, each followed by a GET on the same session", "answers": dict(answers),
        "connection_header_on_413": dict(closes), "body_of_exactly_the_limit": at_limit.status_code})
    assert answers == {f"{MAX_BODY + 1} B: 413": rounds, "1048576 B: 413": rounds, "chunked 256 KiB: 413": rounds,
                       "next GET: 200": 3 * rounds}
    assert closes == {"close": 2 * rounds}
    assert at_limit.status_code == 400 and "padding" in at_limit.json()["errors"]  # parsed, not refused for size


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        return sock.recv(256)


def test_request_line_and_headers_over_gunicorns_limits_are_4xx(limits_gateway):
    port = limits_gateway.port
    cases = {
        "request line of 5000 bytes": b"GET /v1/regions/us/jobs/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "60 header fields": b"GET /v1/regions/us/jobs HTTP/1.1\r\nHost: x\r\n"
                            + b"".join(b"X-H%d: v\r\n" % i for i in range(60)) + b"\r\n",
        "a header of 9000 bytes": b"GET /v1/regions/us/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n",
        "a username header of 9000 bytes": b"GET /v1/regions/us/jobs HTTP/1.1\r\nHost: x\r\nusername: "
                                           + b"u" * 9000 + b"\r\nAuthorization: token x\r\n\r\n",
    }
    statuses = {name: int(raw_request(port, data).split(b" ", 2)[1]) for name, data in cases.items()}
    after = requests.get(f"{limits_gateway.url}/healthz", timeout=10).status_code
    record("limits_headers", {"what": "requests over gunicorn's limit_request_line (4094), _fields (50), "
                                      "_field_size (8190)", "statuses": statuses, "healthz_after": after})
    assert all(400 <= status < 500 for status in statuses.values()), statuses
    assert after == 200


def test_size_and_from_over_their_caps_are_400(noisy):
    user, name, instance = noisy
    logs = f"/jobs/{name}/instances/{instance}/logs"
    answers = {
        "size=10001": user.get(logs, params={"size": 10001}),
        "size=-1": user.get(logs, params={"size": -1}),
        "from=2^53": user.get(logs, params={"from": 2**53}),
        "from=10^30": user.get(logs, params={"from": 10**30}),
        "job logs size=10001": user.get(f"/jobs/{name}/logs", params={"size": 10001}),
        "size=10000": user.get(logs, params={"size": 10000, "from": LINES + 1}),
        "from=2^53-1": user.get(logs, params={"from": 2**53 - 1}),
    }
    record("limits_size", {"what": "log paging parameters past their caps",
                           "statuses": {k: v.status_code for k, v in answers.items()}})
    for key, response in answers.items():
        expected = 200 if key in ("size=10000", "from=2^53-1") else 400
        assert response.status_code == expected, (key, response.text)
    assert answers["from=2^53-1"].json() == []


def text_bytes(lines: list[str]) -> int:
    return sum(len(line.encode()) for line in lines)


def test_log_pages_stop_at_the_byte_cap(noisy):
    user, name, instance = noisy
    logs = f"/jobs/{name}/instances/{instance}/logs"
    page = user.get(logs, params={"size": 10000})
    long_line = user.get(logs, params={"from": LINES, "size": 1})
    rest = user.get(logs, params={"from": LINES + 1, "size": 10})
    job_page = user.get(f"/jobs/{name}/logs", params={"size": 10000})
    job_long = user.get(f"/jobs/{name}/logs", params={"from": LINES, "size": 1})
    record("limits_log_bytes", {
        "what": f"a log of {LINES} lines of 100 B, one of {LONG_LINE} B and one more; GATEWAY_LOG_MAX_BYTES="
                f"{LOG_MAX_BYTES}; size=10000",
        "instance_page": {"lines": len(page.json()), "text_bytes": text_bytes(page.json()),
                          "body_bytes": len(page.content), "truncated": page.headers.get("X-Log-Truncated")},
        "long_line_bytes": text_bytes(long_line.json()),
        "job_logs_page": {"lines": len(job_page.json()), "text_bytes": text_bytes(job_page.json()),
                          "truncated": job_page.headers.get("X-Log-Truncated")},
        "archived_long_line_bytes": text_bytes(job_long.json()) - len(f"[{instance}] "),
    })
    lines = page.json()
    assert page.headers["X-Log-Truncated"] == "true"
    assert 0 < len(lines) < LINES and text_bytes(lines) <= LOG_MAX_BYTES
    assert lines == [f"line {i:05d} {'x' * 90}" for i in range(1, len(lines) + 1)]  # a prefix, nothing mangled
    # one line longer than the cap: cut so that the JSON sent (`["..."]`) stays within it
    (cut,) = long_line.json()
    assert set(cut) == {"y"} and len(long_line.content) <= LOG_MAX_BYTES and len(cut) >= LOG_MAX_BYTES - 8
    assert long_line.headers["X-Log-Truncated"] == "true"
    assert rest.json() == ["after"] and "X-Log-Truncated" not in rest.headers
    assert job_page.headers["X-Log-Truncated"] == "true" and text_bytes(job_page.json()) <= LOG_MAX_BYTES
    # the collector stored the long line cut as well, at most the cap (less its timestamp's few bytes)
    assert 0 < text_bytes(job_long.json()) <= LOG_MAX_BYTES + len(f"[{instance}] ")


def test_lists_stop_at_the_job_cap(limits_gateway, crowded):
    full = crowded.get("/jobs").json()
    small = limits_gateway.add_user("few")
    make_namespace(limits_gateway, small, max_pods=0)
    for i in range(LIST_MAX_JOBS):
        assert small.post(f"/jobs/j{i}", json=JOB).status_code == 200
    exact = small.get("/jobs").json()
    record("limits_list", {"what": f"GATEWAY_LIST_MAX_JOBS={LIST_MAX_JOBS}; a user with {LIST_MAX_JOBS + 2} jobs, "
                                   f"one with {LIST_MAX_JOBS}",
                           "over": {"jobs": len(full["jobs"]), "truncated": full.get("truncated")},
                           "exact": {"jobs": len(exact["jobs"]), "truncated": exact.get("truncated")}})
    assert len(full["jobs"]) == LIST_MAX_JOBS and full["truncated"] is True
    assert len(exact["jobs"]) == LIST_MAX_JOBS and "truncated" not in exact


def test_a_thousand_oversized_requests_each_get_their_limits_answer(limits_gateway, noisy, crowded):
    """The workers' memory over the thousand is measured and recorded (limits_memory), not asserted."""
    user, name, instance = noisy
    kinds = [
        ("413 body of 1 MiB", lambda s: s.post(f"{user.base}/jobs/x", data=b"x" * (1024 * 1024),
                                               headers={"Content-Type": "application/json"}, timeout=30)),
        ("413 chunked", lambda s: s.post(f"{user.base}/jobs/x", data=(b"x" * 65536 for _ in range(3)), timeout=30)),
        ("400 size", lambda s: s.get(f"{user.base}/jobs/{name}/instances/{instance}/logs",
                                     params={"size": 10**9}, timeout=30)),
        ("431 header", lambda s: s.get(f"{user.base}/jobs", headers={"X-Big": "v" * 9000}, timeout=30)),
        ("capped log page", lambda s: s.get(f"{user.base}/jobs/{name}/instances/{instance}/logs",
                                            params={"size": 10000}, timeout=30)),
        ("capped job logs", lambda s: s.get(f"{user.base}/jobs/{name}/logs", params={"size": 10000}, timeout=30)),
        ("capped list", lambda s: s.get(f"{crowded.base}/jobs", headers=dict(crowded.session.headers), timeout=30)),
    ]
    counts: Counter = Counter()
    lock = threading.Lock()

    def burst(total: int, threads: int = 4) -> None:
        def run(index: int) -> None:
            session = requests.Session()
            session.headers.update(user.session.headers)
            for n in range(index, total, threads):
                label, call = kinds[n % len(kinds)]
                status = call(session).status_code
                with lock:
                    counts[f"{label}: {status}"] += 1
        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    burst(140)  # warm-up: imports, caches and connection pools settle first
    counts.clear()
    before = limits_gateway.workers_rss_kib()
    started = time.monotonic()
    burst(1000)
    took = time.monotonic() - started
    after = limits_gateway.workers_rss_kib()
    record("limits_memory", {
        "what": "1,000 requests over the limits (413 bodies of 1 MiB and chunked, size=10^9, a 9 kB header, "
                "capped log pages live and archived, capped lists), 4 client threads, after 140 to warm up; "
                "RSS summed over the 2 gunicorn workers",
        "rss_before_mib": round(before / 1024, 1), "rss_after_mib": round(after / 1024, 1),
        "growth_mib": round((after - before) / 1024, 1), "seconds": round(took, 1),
        "answers": dict(sorted(counts.items()))})
    assert sum(counts.values()) == 1000
    for label, count in counts.items():
        kind, status = label.rsplit(": ", 1)
        assert status == kind.split(" ", 1)[0] or (kind.startswith("capped") and status == "200"), counts
