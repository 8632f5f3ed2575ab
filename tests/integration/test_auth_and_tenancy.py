"""Credentials on every call, and users who cannot see, read or delete each other's jobs."""
from __future__ import annotations

import base64
import re
import secrets
import subprocess
import time

import requests

from gateway.names import MANAGED_BY, MANAGED_BY_LABEL, USERNAME_ANNOTATION, namespace_for

from tests.support.harness import VENV_BIN, ApiClient
from tests.support.conditions import condition


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
    deadline = time.monotonic() + 60  # each worker learns it through its watch: usually milliseconds
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


# -- a name owns its namespace (issue 10, item 5) ---------------------------------------------------------------


def cli_with(gateway, overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``tenx-gateway`` with this run's settings but for ``overrides``."""
    return subprocess.run([str(VENV_BIN / "tenx-gateway"), *args], env={**gateway.env, **overrides},
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_cli_refuses_the_gateways_own_namespace(gateway):
    # as in the issue: with the default prefix, `gateway` maps to tenx-gateway, the gateway's own namespace
    own = cli_with(gateway, {"GATEWAY_NAMESPACE": "tenx-gateway", "GATEWAY_NAMESPACE_PREFIX": "tenx-"},
                   "users", "add", "gateway")
    if own.returncode == 0:  # the check failed: take the user out again before failing
        cli_with(gateway, {"GATEWAY_NAMESPACE": "tenx-gateway"}, "users", "remove", "gateway")
    assert own.returncode == 1 and own.stdout == ""
    assert "tenx-gateway, the gateway's own" in own.stderr
    # and this run's gateway namespace (tenx-gateway-t<run>), reached through the default prefix
    namespace = gateway.env["GATEWAY_NAMESPACE"]
    again = cli_with(gateway, {"GATEWAY_NAMESPACE_PREFIX": "tenx-"}, "users", "add", namespace[len("tenx-"):])
    assert again.returncode == 1 and again.stdout == "" and f"{namespace}, the gateway's own" in again.stderr


def test_cli_refuses_a_namespace_not_made_for_the_name(gateway, local_cluster):
    name = f"squat{secrets.token_hex(3)}"
    namespace = namespace_for(name, gateway.namespace_prefix)
    local_cluster.kubectl_run("create", "namespace", namespace)
    try:
        plain = gateway.cli("users", "add", name, check=False)
        assert plain.returncode == 1 and plain.stdout == ""
        assert f"namespace {namespace} exists and is not managed by tenx-gateway" in plain.stderr
        local_cluster.kubectl_run("label", "namespace", namespace, f"{MANAGED_BY_LABEL}={MANAGED_BY}")
        local_cluster.kubectl_run("annotate", "namespace", namespace, f"{USERNAME_ANNOTATION}=someone-else")
        theirs = gateway.cli("users", "add", name, "--adopt", check=False)
        assert theirs.returncode == 1 and "belongs to user 'someone-else'" in theirs.stderr
        assert name not in gateway.cli("users", "list").stdout
    finally:
        local_cluster.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_removed_name_comes_back_only_purged_or_adopted(gateway, make_user, local_cluster):
    user = make_user("again")
    namespace = namespace_for(user.username, gateway.namespace_prefix)
    job = f"left-{secrets.token_hex(3)}"
    assert user.post(f"/jobs/{job}", json={"containers": [{"image": "busybox", "command": ["echo", "kept"]}]}
                     ).status_code == 200
    user.wait_for(job, lambda j: condition(j, "Complete") is not None)
    deadline = time.monotonic() + 120  # the collector archives the line, usually within a few seconds
    while user.get(f"/jobs/{job}/logs").json() != [f"[{user.get(f'/jobs/{job}').json()['instance_names'][0]}] kept"]:
        assert time.monotonic() < deadline, "the job's log was not archived"
        time.sleep(0.5)

    gateway.cli("users", "remove", user.username)
    refused = gateway.cli("users", "add", user.username, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"namespace {namespace} (region us) exists from an earlier user" in refused.stderr
    assert "--purge" in refused.stderr and "--adopt" in refused.stderr

    token = gateway.cli("users", "add", user.username, "--adopt").stdout.strip()
    adopted = ApiClient(gateway.url, user.username, token)
    gateway.wait_until_known(adopted)
    assert adopted.get(f"/jobs/{job}").status_code == 200  # the earlier user's job is the new one's

    purged = gateway.cli("users", "remove", user.username, "--purge")
    assert f"deleted namespace us/{namespace}" in purged.stderr
    rows = int(re.search(r"deleted (\d+) archived log lines", purged.stderr).group(1))
    assert rows >= 2  # the line and the instance record
    assert f"host volumes under {gateway.volume_root}/{user.username}/" in purged.stderr
    assert "still on nodes " in purged.stderr  # the node that ran the pod
    gone = local_cluster.kubectl_run("get", "namespace", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr  # the purge waits for the namespace to go

    again = gateway.cli("users", "remove", user.username, "--purge")  # nothing left: the archive is empty too
    assert f"no user {user.username!r}" in again.stderr and "deleted 0 archived log lines" in again.stderr
    fresh = gateway.cli("users", "add", user.username, check=False)  # a purged name is free again
    assert fresh.returncode == 0 and fresh.stdout.strip()
    gateway.cli("users", "remove", user.username)
