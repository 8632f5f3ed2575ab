"""Races on one name: many creates at once (also as a user's very first job, so the namespace is created
concurrently too), and creates racing deletes. The cluster is the judge: exactly one Job, and GET agrees with it."""
from __future__ import annotations

import secrets
import threading
from collections import Counter

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from gateway.names import namespace_for

from tests.support.reliability import ADMIN_KUBECONFIG, record

CREATORS = 20
JOB = {"containers": [{"image": "busybox", "command": ["true"]}]}


def batch_api() -> k8s_client.BatchV1Api:
    return k8s_client.BatchV1Api(k8s_config.new_client_from_config(config_file=str(ADMIN_KUBECONFIG)))


def at_once(count: int, call) -> list:
    """Run ``call(i)`` in ``count`` threads released together by a barrier; the results in thread order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # noqa: BLE001 - judged by the caller
            results[i] = type(exc).__name__

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def jobs_named(batch, namespace: str, name: str) -> list:
    return [j for j in batch.list_namespaced_job(namespace).items if j.metadata.name == name]


def test_twenty_concurrent_creates_of_one_name(gateway, make_user):
    batch = batch_api()
    figures = {}
    for case in ("first job (namespace made concurrently)", "namespace already there"):
        user = make_user("race")
        if case == "namespace already there":
            assert user.post("/jobs/warm-up", json=JOB).status_code == 200
        name = f"race-{secrets.token_hex(3)}"
        statuses = at_once(CREATORS, lambda i: user.post(f"/jobs/{name}", json=JOB).status_code)
        counted = Counter(statuses)
        namespace = namespace_for(user.username, gateway.namespace_prefix)
        in_cluster = jobs_named(batch, namespace, name)
        figures[case] = {"statuses": dict(counted), "jobs_in_cluster": len(in_cluster)}
        assert counted == {200: 1, 409: CREATORS - 1}, (case, statuses)
        assert len(in_cluster) == 1
        assert user.get(f"/jobs/{name}").json()["metadata"]["uid"] == in_cluster[0].metadata.uid
    record("race_creates", {"what": f"{CREATORS} concurrent POSTs of one job name by one user", **figures})


def test_creates_racing_deletes_end_consistent(gateway, make_user):
    """Rounds of creates and deletes of one name released together; after each round GET says what the cluster
    says: 200 with the cluster's Job (same uid), or 404 and no Job of that name."""
    batch = batch_api()
    user = make_user("churn")
    assert user.post("/jobs/warm-up", json=JOB).status_code == 200
    namespace = namespace_for(user.username, gateway.namespace_prefix)
    name = f"churn-{secrets.token_hex(3)}"
    rounds, seen, outcomes = 12, Counter(), Counter()
    for _ in range(rounds):
        def call(i: int):
            if i % 2 == 0:
                return "create", user.post(f"/jobs/{name}", json=JOB).status_code
            return "delete", user.delete(f"/jobs/{name}").status_code
        for result in at_once(6, call):
            seen[f"{result[0]} {result[1]}" if isinstance(result, tuple) else result] += 1
        in_cluster = jobs_named(batch, namespace, name)
        answer = user.get(f"/jobs/{name}")
        if in_cluster and in_cluster[0].metadata.deletion_timestamp is None:
            assert answer.status_code == 200 and answer.json()["metadata"]["uid"] == in_cluster[0].metadata.uid
            outcomes["exists"] += 1
        else:
            assert answer.status_code == 404, (answer.status_code, in_cluster)
            outcomes["gone"] += 1
        listed = [j["metadata"]["name"] for j in user.get("/jobs").json()["jobs"]]
        assert (name in listed) == (answer.status_code == 200)
    record("race_create_delete", {"what": f"{rounds} rounds of 3 creates + 3 deletes of one name released together; "
                                          "after each, GET and list compared with the cluster",
                                  "answers": dict(seen), "rounds_ending": dict(outcomes), "inconsistent": 0})
    assert set(seen) <= {"create 200", "create 409", "delete 200", "delete 404"}, seen
