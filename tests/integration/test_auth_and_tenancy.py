"""Credentials on every call, and users who cannot see, read or delete each other's jobs."""
from __future__ import annotations

import base64
import secrets
import time

import requests

from .helpers import condition


def test_each_failure_is_401_json(gateway, user):
    url = f"{gateway.url}/v1/regions/us/jobs"
    token = user.session.headers["Authorization"].split(" ", 1)[1]
    cases = [
        {},
        {"username": user.username},
        {"Authorization": f"token {token}"},
        {"username": user.username, "Authorization": token},
        {"username": user.username, "Authorization": f"Bearer {token}"},
        {"username": user.username, "Authorization": "token "},
        {"username": user.username, "Authorization": f"token {token}x"},
        {"username": "someone-else", "Authorization": f"token {token}"},
        {"username": user.username.upper(), "Authorization": f"token {token}"},
    ]
    for headers in cases:
        response = requests.get(url, headers=headers, timeout=10)
        assert response.status_code == 401, headers
        body = response.json()
        assert body["code"] == 401 and body["status"] == "Unauthorized" and body["message"]
        assert token not in response.text


def test_the_right_credentials_pass(user):
    assert user.get("/jobs").status_code == 200


def test_users_cannot_reach_each_others_jobs(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    name = f"private-{secrets.token_hex(3)}"
    body = {"containers": [{"image": "busybox", "command": ["echo", "secret"]}]}
    assert alice.post(f"/jobs/{name}", json=body).status_code == 200
    job = alice.wait_for(name, lambda j: condition(j, "Complete") is not None)
    instance = job["instance_names"][0]

    assert bob.get("/jobs").json() == {"jobs": []}
    assert bob.get(f"/jobs/{name}").status_code == 404
    assert bob.get(f"/jobs/{name}/instances/{instance}/logs").status_code == 404
    assert bob.delete(f"/jobs/{name}").status_code == 404
    # the same name is free in bob's namespace
    assert bob.post(f"/jobs/{name}", json=body).status_code == 200
    assert alice.get(f"/jobs/{name}").json()["metadata"]["uid"] == job["metadata"]["uid"]
    assert alice.get(f"/jobs/{name}/instances/{instance}/logs").json() == ["secret"]


def test_cli_lists_and_removes_users(gateway, make_user):
    user = make_user("gone")
    listed = gateway.cli("users", "list").stdout
    assert any(line.split("\t")[0] == user.username for line in listed.splitlines())
    gateway.cli("users", "remove", user.username)
    deadline = time.monotonic() + 10  # the gateway trusts its cached user table for GATEWAY_AUTH_CACHE_SECONDS
    while user.get("/jobs").status_code != 401:
        assert time.monotonic() < deadline, "a removed user still gets in"
        time.sleep(0.2)
    assert gateway.cli("users", "remove", user.username, check=False).returncode == 1


def test_cli_refuses_bad_and_duplicate_names(gateway, make_user):
    assert gateway.cli("users", "add", "../evil", check=False).returncode == 1
    user = make_user("twice")
    again = gateway.cli("users", "add", user.username, check=False)
    assert again.returncode == 1 and again.stdout == ""


def test_tokens_are_stored_only_as_hashes(gateway, make_user, local_cluster):
    user = make_user("hashed")
    token = user.session.headers["Authorization"].split(" ", 1)[1]
    secret = local_cluster.kubectl_run("get", "secret", "-n", gateway.env["GATEWAY_NAMESPACE"],
                                       "tenx-gateway-users", "-o", "jsonpath={.data.users\\.json}").stdout
    table = base64.b64decode(secret).decode()
    assert user.username in table and token not in table
