"""Attacks on the credentials: guessing is throttled (429 with Retry-After) per client address and per user name;
tokens never show in a response, the gateway's logs (at debug level) or the collector's, and only their hashes are
stored. A gateway of the test's own with a low failure limit; clients come from distinct loopback addresses
(127.0.0.0/8 is all this host's), since every address has its own failure count.

Throttling counts per worker process (README, Limits): with W workers an attacker gets at most W x limit answers
other than 429 within the window.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets

import pytest
import requests

from .reliability import GatewayServer, client_from, kubectl, record, wait_until

LIMIT = 5
WORKERS = 2


@pytest.fixture(scope="module")
def auth_gateway(local_cluster, tmp_path_factory):
    server = GatewayServer(tmp_path_factory.mktemp("auth-gateway"), collector=True,
                           GATEWAY_AUTH_FAILURE_LIMIT=str(LIMIT), GATEWAY_AUTH_FAILURE_WINDOW_SECONDS="60",
                           GATEWAY_WORKERS=str(WORKERS), GATEWAY_LOG_LEVEL="debug").start()
    yield server
    server.close()


def guess(client, tag: str) -> requests.Response:
    """One login attempt on a new connection (so that both workers get attempts), tagged in the User-Agent: the
    access log then tells which worker answered it."""
    client.session.close()
    return client.get("/jobs", headers={"User-Agent": f"reliability/{tag}"})


def workers_by_tag(gateway: GatewayServer) -> dict[str, int]:
    pids = {}
    for line in gateway.log_text().splitlines():
        if '"gunicorn.access"' in line and "reliability/" in line:
            entry = json.loads(line)
            pids[entry["user_agent"].split("/", 1)[1]] = entry["pid"]
    return pids


def attack(gateway: GatewayServer, clients, prefix: str, attempts: int = 6 * WORKERS * LIMIT) -> list[tuple]:
    """Wrong tokens, each on a new connection: [(worker pid, status, Retry-After)] in order."""
    answers = [(f"{prefix}{i}", guess(next(clients), f"{prefix}{i}")) for i in range(attempts)]
    pids = wait_until(lambda: (lambda p: p if all(t in p for t, _ in answers) else None)(workers_by_tag(gateway)), 10)
    assert pids, "the access log lacks some attempts"
    return [(pids[tag], a.status_code, a.headers.get("Retry-After"), a) for tag, a in answers]


def check_throttled(answers: list[tuple]) -> dict[int, list[int]]:
    """Per worker: at most LIMIT failures answered 401, every later attempt 429 with a Retry-After."""
    per_worker: dict[int, list[int]] = {}
    for pid, status, retry_after, answer in answers:
        per_worker.setdefault(pid, []).append(status)
        assert status in (401, 429), status
        if status == 429:
            assert int(retry_after) > 0 and answer.json()["code"] == 429
    for pid, statuses in per_worker.items():
        failures = min(len(statuses), LIMIT)
        assert statuses == [401] * failures + [429] * (len(statuses) - failures), (pid, statuses)
    return per_worker


def summary(answers: list[tuple], per_worker: dict[int, list[int]]) -> dict:
    statuses = [status for _, status, _, _ in answers]
    return {"attempts": len(statuses), "401": statuses.count(401), "429": statuses.count(429),
            "attempts_per_worker": sorted(len(s) for s in per_worker.values()),
            "401_per_worker": sorted(s.count(401) for s in per_worker.values()),
            "retry_after": sorted({r for _, status, r, _ in answers if status == 429})}


def blocked_where_limit_reached(gateway: GatewayServer, client, per_worker: dict[int, list[int]], prefix: str,
                                tries: int = 4 * WORKERS) -> list[tuple[int, int]]:
    """The right credentials, tried on new connections: 429 on every worker that saw LIMIT failures, else 200."""
    answers = [(f"{prefix}{i}", guess(client, f"{prefix}{i}").status_code) for i in range(tries)]
    pids = wait_until(lambda: (lambda p: p if all(t in p for t, _ in answers) else None)(workers_by_tag(gateway)), 10)
    result = [(pids[tag], status) for tag, status in answers]
    for pid, status in result:
        reached = per_worker.get(pid, []).count(401) >= LIMIT
        assert status == (429 if reached else 200), (pid, status, per_worker)
    return result


def test_guessing_from_one_client_is_throttled(auth_gateway):
    base = auth_gateway.url
    attacker = (client_from("127.0.0.2", base, f"nobody{i}", secrets.token_urlsafe(32)) for i in range(1000))
    answers = attack(auth_gateway, attacker, "client-")
    per_worker = check_throttled(answers)
    real = auth_gateway.add_user("real")
    token = real.session.headers["Authorization"][6:]
    same_client = blocked_where_limit_reached(auth_gateway, client_from("127.0.0.2", base, real.username, token),
                                              per_worker, "client-right-")
    other_client = guess(client_from("127.0.0.3", base, real.username, token), "client-other").status_code
    record("auth_throttle_per_client", {
        "what": f"wrong tokens for ever-new user names from one client address, each on a new connection; limit "
                f"{LIMIT} per worker, {WORKERS} workers, window 60 s", **summary(answers, per_worker),
        "right_token_same_client": [status for _, status in same_client], "right_token_other_client": other_client})
    assert sum(s.count(401) for s in per_worker.values()) <= WORKERS * LIMIT
    assert other_client == 200


def test_guessing_one_user_name_from_many_clients_is_throttled(auth_gateway):
    base = auth_gateway.url
    victim = auth_gateway.add_user("victim")
    token = victim.session.headers["Authorization"][6:]
    attacker = (client_from(f"127.0.{1 + i // 250}.{1 + i % 250}", base, victim.username, secrets.token_urlsafe(32))
                for i in range(1000))
    answers = attack(auth_gateway, attacker, "user-")
    per_worker = check_throttled(answers)
    owner = blocked_where_limit_reached(auth_gateway, client_from("127.0.9.1", base, victim.username, token),
                                        per_worker, "user-owner-")
    bystander = auth_gateway.add_user("bystander")
    other_user = guess(client_from("127.0.9.2", base, bystander.username,
                                   bystander.session.headers["Authorization"][6:]), "user-other").status_code
    record("auth_throttle_per_user", {
        "what": "wrong tokens for one real user name, each attempt from a new client address and connection",
        **summary(answers, per_worker), "owner_right_token": [status for _, status in owner],
        "other_user": other_user})
    assert sum(s.count(401) for s in per_worker.values()) <= WORKERS * LIMIT
    assert other_user == 200


def test_tokens_never_show_in_answers_or_logs_and_are_stored_hashed(auth_gateway):
    alice, bob = auth_gateway.add_user("alice"), auth_gateway.add_user("bob")
    tokens = {"alice": alice.session.headers["Authorization"][6:], "bob": bob.session.headers["Authorization"][6:],
              "forged": secrets.token_urlsafe(32)}
    base = auth_gateway.url
    ok = client_from("127.0.0.5", base, alice.username, tokens["alice"])
    answers: list[requests.Response] = []

    # successful calls, every kind
    name = f"tok-{secrets.token_hex(3)}"
    answers.append(ok.post(f"/jobs/{name}", json={"containers": [{"image": "busybox", "command": ["echo", "hi"]}]}))
    answers += [ok.get("/jobs"), ok.get(f"/jobs/{name}"), ok.get(f"/jobs/{name}/instances"),
                ok.get(f"/jobs/{name}/logs")]
    instance = (answers[2].json().get("instance_names") or ["none"])[0]
    answers += [ok.get(f"/jobs/{name}/instances/{instance}/logs"), ok.get("/jobs/nope"),
                ok.post("/jobs/Bad_Name", json={}), ok.get(f"/jobs/{name}?token={tokens['alice']}"),
                ok.delete(f"/jobs/{name}")]
    # failing ones, from another address: wrong pairings, forged and mangled tokens, tokens where they do not go
    failing = [
        (alice.username, tokens["bob"]), (bob.username, tokens["alice"]), (alice.username, tokens["forged"]),
        (alice.username, tokens["alice"] + "x"), (tokens["alice"], tokens["alice"]),
    ]
    for i, (username, token) in enumerate(failing):
        answers.append(client_from(f"127.0.2.{i + 1}", base, username, token).get("/jobs"))
    raw_headers = [{"username": alice.username, "Authorization": f"Bearer {tokens['alice']}"},
                   {"username": alice.username, "Authorization": tokens["alice"]},
                   {"username": alice.username, "Authorization": f"token {tokens['alice']} {tokens['bob']}"}]
    for headers in raw_headers:
        answers.append(requests.get(f"{alice.base}/jobs", headers=headers, timeout=30))
    # throttled ones: alice's name under attack answers 429 from now on
    for i in range(WORKERS * LIMIT + 2):
        answers.append(client_from(f"127.0.3.{i + 1}", base, alice.username, f"{tokens['alice'][:-1]}{i}").get("/jobs"))

    auth_gateway.terminate()  # flushes and closes both logs
    statuses = sorted({a.status_code for a in answers})
    texts = {"responses": "\n".join(a.text + json.dumps(dict(a.headers)) for a in answers),
             "gunicorn log": auth_gateway.log_text(), "collector log": auth_gateway.collector_text()}
    leaks = [f"{which} token in the {where}" for which, token in tokens.items() for where, text in texts.items()
             if token in text]
    secret = kubectl("get", "secret", "-n", auth_gateway.admin_env["GATEWAY_NAMESPACE"], "tenx-gateway-users",
                     "-o", "jsonpath={.data.users\\.json}").stdout
    table = json.loads(base64.b64decode(secret))
    stored_raw = [which for which, token in tokens.items() if token in json.dumps(table) or token in secret]
    record("auth_token_leaks", {
        "what": "known tokens (2 real, 1 forged) used in successful and failing calls (wrong pairings, mangled, wrong "
                "scheme, in the username header and the query, throttled); every response, the gunicorn output at "
                "debug level and the collector output searched for them; the users Secret read",
        "calls": len(answers), "statuses": statuses,
        "log_lines_searched": texts["gunicorn log"].count("\n") + texts["collector log"].count("\n"),
        "leaks": leaks, "tokens_stored_raw": stored_raw})
    assert 200 in statuses and 401 in statuses and 429 in statuses
    assert leaks == []
    assert stored_raw == []
    for name_, token in (("alice", tokens["alice"]), ("bob", tokens["bob"])):
        username = alice.username if name_ == "alice" else bob.username
        assert table[username]["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
