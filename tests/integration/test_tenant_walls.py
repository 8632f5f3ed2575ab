"""Tenant walls on the real local cluster: caps on one request, a namespace's quota, limits and network policy,
locked-down pods, the quota's reason shown through the API, and a neighbour's jobs unharmed by a user at quota."""
from __future__ import annotations

import json
import secrets
import time

import pytest

from tests.support.harness import GatewayServer, kubectl
from tests.support.seed import SEED_JOB
from tests.support.conditions import condition, until
from tests.support.reliability import record

SLEEPER = {"containers": [{"image": "busybox", "command": ["sleep", "300"]}]}
ECHO = {"containers": [{"image": "busybox", "command": ["sh", "-c", "echo walled-in-$((6*7))"]}]}


def namespace_of(gateway, client) -> str:
    listed = gateway.cli("users", "list").stdout.splitlines()
    return next(line.split("\t")[1] for line in listed if line.split("\t")[0] == client.username)


def get_json(*args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_the_flood_request_is_refused_and_nothing_is_created(gateway, user):
    statuses = []
    for _ in range(20):
        response = user.post("/jobs/flood", json={**SLEEPER, "parallelism": 1000000, "completions": 1000000})
        statuses.append(response.status_code)
        body = response.json()
        assert body["code"] == 400
        assert body["errors"]["parallelism"] == ["must be at most 10 (GATEWAY_JOB_MAX_PARALLELISM)"]
        assert body["errors"]["completions"] == ["must be at most 100 (GATEWAY_JOB_MAX_COMPLETIONS)"]
    assert statuses == [400] * 20
    assert user.get("/jobs/flood").status_code == 404
    # refused before any cluster call: the user's namespace was not even made
    namespace = namespace_of(gateway, user)
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0
    record("tenant-walls-flood", {"requests": len(statuses), "status_400": statuses.count(400),
                                  "namespaces_made": 0, "jobs_made": 0})


@pytest.mark.parametrize("body, field", [
    ({"containers": [{"image": "busybox", "command": ["true"]}] * 6}, "containers"),
    ({"containers": [{"image": "busybox", "command": ["echo"] * 257}]}, "containers.0.command"),
    ({"containers": [{"image": "busybox", "command": ["echo"], "env": [{"name": f"E{i}"} for i in range(129)]}]},
     "containers.0.env"),
    ({"containers": [{"image": "busybox", "command": ["echo", "x" * 40000]}]}, "containers.0"),
])
def test_every_cap_names_its_field(user, body, field):
    response = user.post("/jobs/big", json=body)
    assert response.status_code == 400, response.text
    assert "GATEWAY_JOB_MAX_" in " ".join(response.json()["errors"][field])
    assert user.get("/jobs/big").status_code == 404


def test_a_new_namespace_is_walled_and_its_pods_locked_down(gateway, user):
    assert user.post("/jobs/walls", json=SEED_JOB).status_code == 200
    namespace = namespace_of(gateway, user)
    ns = get_json("namespace", namespace)["metadata"]
    assert ns["labels"]["app.kubernetes.io/managed-by"] == "tenx-gateway"
    assert ns["annotations"]["tenx-gateway/username"] == user.username
    quota = get_json("resourcequota", "tenx-gateway-quota", "-n", namespace)
    assert quota["spec"]["hard"]["pods"] == "20"
    assert quota["spec"]["hard"]["count/jobs.batch"] == "100"
    limits = get_json("limitrange", "tenx-gateway-limits", "-n", namespace)
    assert limits["spec"]["limits"][0]["default"] == {"cpu": "500m", "memory": "512Mi"}
    policy = get_json("networkpolicy", "tenx-gateway-tenant", "-n", namespace)["spec"]
    assert not policy.get("ingress")  # no rule: nothing may come in
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    denied = [cidr for rule in policy["egress"] for peer in rule["to"] for cidr in peer["ipBlock"].get("except", [])]
    assert "169.254.169.254/32" in denied
    assert "127.0.0.1/32" in denied  # the local apiserver's address, from its endpoints

    job = user.wait_for("walls", lambda j: condition(j, "Complete"), timeout=90)
    pod = get_json("pod", job["instance_names"][0], "-n", namespace)["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(v.get("projected") or v.get("secret") for v in pod.get("volumes", []))
    container = pod["containers"][0]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "privileged": False,
                                            "seccompProfile": {"type": "RuntimeDefault"}}
    # job.json gave only a memory limit: the LimitRange filled in the rest
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert container["resources"]["requests"]["cpu"] == "10m"


def test_job_json_nulls_are_absent_end_to_end(user):
    body = {"containers": [{"image": "busybox", "command": ["echo", "nulls"], "env": None, "ports": None,
                            "volumeMounts": None, "resources": None}], "volumes": None}
    assert user.post("/jobs/nulls", json=body).status_code == 200
    job = user.wait_for("nulls", lambda j: condition(j, "Complete"), timeout=90)
    assert user.get(f"/jobs/nulls/instances/{job['instance_names'][0]}/logs").json() == ["nulls"]


@pytest.fixture(scope="module")
def small_quota(local_cluster, tmp_path_factory):
    """A gateway of this module's own whose tenants may run two pods at once, with its collector."""
    server = GatewayServer(tmp_path_factory.mktemp("walls"), letter="w", collector=True,
                           GATEWAY_TENANT_QUOTA_PODS="2")
    server.start()
    yield server
    server.close()


def test_a_user_at_quota_gets_no_more_pods_says_why_and_spares_the_neighbour(small_quota):
    greedy, neighbour = small_quota.add_user("greedy"), small_quota.add_user("nb")
    started = time.monotonic()
    response = greedy.post("/jobs/greedy", json={**SLEEPER, "parallelism": 3, "completions": 3})
    assert response.status_code == 200, response.text

    def held() -> dict | None:
        job = greedy.get("/jobs/greedy").json()
        return job if condition(job, "PodsHeldBack") and len(job["instance_names"]) == 2 else None

    job = until(held, 60, "the third pod to be refused by the quota")
    held_after = time.monotonic() - started
    reason = condition(job, "PodsHeldBack")
    assert reason["reason"] == "ExceededQuota"
    assert "exceeded quota" in reason["message"] and "tenx-gateway-quota" in reason["message"]
    instances = greedy.get("/jobs/greedy/instances").json()
    assert instances["held_back"]["reason"] == "ExceededQuota"
    assert "exceeded quota" in instances["held_back"]["message"]
    # still two, a while later
    assert len(greedy.get("/jobs/greedy").json()["instance_names"]) == 2

    name = f"nb-{secrets.token_hex(2)}"
    neighbour_started = time.monotonic()
    assert neighbour.post(f"/jobs/{name}", json=ECHO).status_code == 200
    done = neighbour.wait_for(name, lambda j: condition(j, "Complete"), timeout=90)
    completed_after = time.monotonic() - neighbour_started
    assert not condition(done, "PodsHeldBack")
    archived = until(lambda: neighbour.get(f"/jobs/{name}/logs").json() or None, 30, "the archived log")
    archived_after = time.monotonic() - neighbour_started
    assert archived == [f"[{done['instance_names'][0]}] walled-in-42"]
    still = len(greedy.get("/jobs/greedy").json()["instance_names"])
    assert still == 2
    assert greedy.delete("/jobs/greedy").status_code == 200
    record("tenant-walls-quota", {"quota_pods": 2, "asked": 3, "pods_made": still,
                                  "held_back_reported_after_s": round(held_after, 2),
                                  "held_back_reason": reason["reason"], "held_back_message": reason["message"],
                                  "neighbour_completed_after_s": round(completed_after, 2),
                                  "neighbour_archived_after_s": round(archived_after, 2)})


def test_an_old_namespace_gets_its_walls_on_the_next_create(small_quota):
    """A namespace made by an earlier gateway (labelled and annotated, no walls) is walled by the first create."""
    old = small_quota.add_user("old")
    namespace = namespace_of(small_quota, old)
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": namespace, "labels": {"app.kubernetes.io/managed-by": "tenx-gateway"},
        "annotations": {"tenx-gateway/username": old.username}}}
    kubectl("create", "-f", "-", stdin=json.dumps(manifest))
    assert kubectl("get", "resourcequota", "-n", namespace, "-o", "name").stdout.strip() == ""
    assert old.post("/jobs/upgraded", json=ECHO).status_code == 200
    names = kubectl("get", "resourcequota,limitrange,networkpolicy", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(names) == ["limitrange/tenx-gateway-limits", "networkpolicy.networking.k8s.io/tenx-gateway-tenant",
                             "resourcequota/tenx-gateway-quota"]


def test_a_namespace_that_is_not_the_users_is_refused(small_quota):
    """A user whose namespace was made by someone else (here: an unlabelled one) creates nothing in it."""
    stranger = small_quota.add_user("str")
    namespace = namespace_of(small_quota, stranger)
    kubectl("create", "namespace", namespace)
    response = stranger.post("/jobs/intrude", json=ECHO)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == 403 and "not managed by tenx-gateway" in response.json()["message"]
    assert kubectl("get", "jobs,resourcequota", "-n", namespace, "-o", "name").stdout.strip() == ""
    kubectl("delete", "namespace", namespace, "--wait=false")
