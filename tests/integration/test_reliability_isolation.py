"""Tenant isolation, object by object: user B aims every call at user A's job and instance names, spelled every way
a path can be bent (case, percent-encoding, dot segments, trailing and double slashes, encoded slashes, a namespace
smuggled into the name or the query). Every answer must be 404, or for a create, B's own new job (or 400 for a name
that is not one); A's jobs stay as they were. Requests go out byte for byte as written (http.client: no client-side
normalisation of dot segments or encodings), to the session's gateway, which runs the log collector.
"""
from __future__ import annotations

import http.client
import json
import secrets
from urllib.parse import urlsplit

import pytest

from gateway.names import namespace_for

from tests.support.conditions import condition, until
from tests.support.reliability import record


def raw(gateway_url: str, client, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    """One request with ``client``'s credentials, the path sent exactly as given."""
    parts = urlsplit(gateway_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {k: v for k, v in client.session.headers.items() if k in ("username", "Authorization")}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def spellings(name: str, namespace: str) -> list[str]:
    """The path segment(s) standing in for ``name``, bent every way a router or a proxy might straighten."""
    encoded_first = f"%{ord(name[0]):02X}{name[1:]}"
    return [
        name,
        name.capitalize(), name.upper(),  # MyJob: Kubernetes names are lower case, never folded
        encoded_first, "".join(f"%{ord(c):02x}" for c in name),  # %6Dyjob: decodes to A's very name
        f"{name}/", f"/{name}",  # trailing slash; double slash before it
        f"x/../{name}", f"%2e%2e/{name}", f"..%2F{name}", f"%2E%2E%2F{name}",  # dot segments, plain and encoded
        f"{name}%2F", f"%2F{name}", f"{name}%2f.",  # encoded slashes
        f"..%2F..%2Fnamespaces%2F{namespace}%2Fjobs%2F{name}",  # A's namespace smuggled into the name
        f"{name}?namespace={namespace}",  # ... or into the query
        f"{name}%00", f"{name}%20", f"{name};x",  # NUL, space, path parameter
    ]


@pytest.fixture(scope="module")
def alice(make_user, gateway):
    """A with three finished jobs: j1 and j2 live, j3 deleted after its log reached the archive."""
    user = make_user("alice")
    names = {key: f"{key}-{secrets.token_hex(3)}" for key in ("j1", "j2", "j3")}
    for key, name in names.items():
        body = {"containers": [{"image": "busybox", "command": ["sh", "-c", f"echo {key}-secret-line"]}]}
        assert user.post(f"/jobs/{name}", json=body).status_code == 200
    jobs = {key: user.wait_for(name, lambda j: condition(j, "Complete") is not None) for key, name in names.items()}
    instances = {key: job["instance_names"][0] for key, job in jobs.items()}
    until(lambda: user.get(f"/jobs/{names['j3']}/logs").json() == [f"[{instances['j3']}] j3-secret-line"], 30,
          "j3's log in the archive")
    assert user.delete(f"/jobs/{names['j3']}").status_code == 200
    until(lambda: user.get(f"/jobs/{names['j3']}").status_code == 404
          and user.get(f"/jobs/{names['j3']}/instances/{instances['j3']}/logs").json() == ["j3-secret-line"],
          60, "j3 deleted, its log served from the archive")
    return {"user": user, "names": names, "instances": instances, "jobs": jobs,
            "namespace": jobs["j1"]["metadata"]["namespace"]}


def snapshot(alice) -> dict:
    user, names, instances = alice["user"], alice["names"], alice["instances"]
    state = {}
    for key in ("j1", "j2"):
        job = user.get(f"/jobs/{names[key]}").json()
        state[key] = (job["metadata"]["uid"], job["metadata"]["creationTimestamp"], job["spec"]["template"],
                      job["instance_names"],
                      user.get(f"/jobs/{names[key]}/instances/{instances[key]}/logs").json())
    state["j3"] = user.get(f"/jobs/{names['j3']}/instances/{instances['j3']}/logs").json()
    state["list"] = sorted(j["metadata"]["name"] for j in user.get("/jobs").json()["jobs"])
    return state


def test_another_user_reaches_nothing_of_alices_whatever_the_spelling(gateway, make_user, alice):
    before = snapshot(alice)
    bob = make_user("bob")
    base = "/v1/regions/us/jobs"
    names, instances, namespace = alice["names"], alice["instances"], alice["namespace"]
    wrong: list[str] = []
    tried = 0

    def expect(method: str, path: str, allowed: set[int], body: dict | None = None) -> int:
        nonlocal tried
        tried += 1
        status, text = raw(gateway.url, bob, method, path, body)
        if status not in allowed or b"secret-line" in text or namespace.encode() in text:
            wrong.append(f"{method} {path} -> {status} {text[:200]!r}")
        return status

    for key in ("j1", "j2", "j3"):
        for job in spellings(names[key], namespace):
            expect("GET", f"{base}/{job}", {404})
            expect("GET", f"{base}/{job}/instances", {404})
            expect("GET", f"{base}/{job}/logs", {404})
            expect("DELETE", f"{base}/{job}", {404})
            for instance in spellings(instances[key], namespace)[:12]:
                expect("GET", f"{base}/{job}/instances/{instance}/logs?from=0&size=10", {404})
            # an instance of A's named under another of A's jobs, or under a job of B's own
            expect("GET", f"{base}/{names['j1']}/instances/{instances['j2']}/logs", {404})

    # create over A's names: B gets a job of B's own (or 400 for a spelling that is no job name), never A's
    # (the exact name first, so it is 200: a 409 then would tell B the name is taken, by A; later spellings that
    # decode to the same name meet B's own job, and 409 is then right)
    created: dict[int, int] = {}
    body = {"containers": [{"image": "busybox", "command": ["echo", "bob"]}]}
    for key in ("j1", "j3"):
        for index, job in enumerate(spellings(names[key], namespace)):
            status = expect("POST", f"{base}/{job}", {200} if index == 0 else {200, 400, 404, 409}, body)
            created[status] = created.get(status, 0) + 1
    bob_jobs = bob.get("/jobs").json()["jobs"]
    assert {j["metadata"]["namespace"] for j in bob_jobs} == {namespace_for(bob.username, gateway.namespace_prefix)}
    assert {j["metadata"]["name"] for j in bob_jobs} == {names["j1"], names["j3"]}
    # B now has jobs of A's names: A's instances are still nothing to B, through B's own jobs too
    for key in ("j1", "j3"):
        expect("GET", f"{base}/{names[key]}/instances/{instances[key]}/logs", {404})
        assert all(i["name"] != instances[key] for i in bob.get(f"/jobs/{names[key]}/instances").json()["instances"])

    # A's own jobs: an instance of one job is not found under another
    for other, key in (("j1", "j2"), ("j2", "j1"), ("j1", "j3"), ("j3", "j1")):
        status, _ = raw(gateway.url, alice["user"], "GET", f"{base}/{names[other]}/instances/{instances[key]}/logs")
        tried += 1
        if status != 404:
            wrong.append(f"alice: {other}'s instance path with {key}'s instance -> {status}")

    after = snapshot(alice)
    record("isolation", {
        "what": "user B against user A's 3 jobs (2 live, 1 deleted and archived) and their instances: get, delete, "
                "instances, job logs, instance logs, create-over, each name in 19 spellings (instances in 12); plus "
                "A's instance of one job under another of A's jobs",
        "requests": tried, "answers_not_404": len(wrong), "create_over_statuses": created,
        "alice_unchanged": before == after,
    })
    assert wrong == []
    assert before == after
