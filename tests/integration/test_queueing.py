"""Jobs wait their turn in Kueue (GATEWAY_QUEUE=kueue), through the HTTP API on the local cluster, whose Kueue manager
deploy/local/kueue/kueue.sh runs: in submission order within a tenant, alternating between tenants (admission fair
sharing), a queued job's place and reason in GET, `tenx get` and the console, a deleted queued job's place freed, and
nothing made outside the tenants' namespaces.

The gateway here acts as the deployed ServiceAccount under the deployed admission policies (conftest's
``gateway_identity``), on a ClusterQueue of the test's own whose capacity each test sets (``pods`` quota): the
local cluster's shared ClusterQueue is sized to the nodes and never fills. Capacity is freed by deleting an admitted
job (they all sleep for long): the order of admissions is then the queue's, not the jobs' run times.
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import time

import pytest

from tests.support.harness import GatewayServer, kubectl
from tests.support.kueue import cluster_queue
from tests.support.conditions import until
from tests.support.console_tab import Tab, token_of
from tests.support.tenx_cli import logged_in

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
HOLD = {"containers": [{"image": "busybox", "command": ["sh", "-c", "sleep 3600"]}]}
KUEUE_KINDS = ("localqueues.kueue.x-k8s.io", "workloads.kueue.x-k8s.io")
KUEUE_CLUSTER_KINDS = ("clusterqueues.kueue.x-k8s.io", "resourceflavors.kueue.x-k8s.io", "cohorts.kueue.x-k8s.io",
                       "workloadpriorityclasses.kueue.x-k8s.io", "admissionchecks.kueue.x-k8s.io")


@pytest.fixture(scope="module")
def queue_name(local_cluster):
    name = f"tenx-test-{secrets.token_hex(3)}"
    kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(cluster_queue(name, 1)))
    yield name
    kubectl("delete", "clusterqueue", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def queued_gateway(local_cluster, gateway, gateway_identity, queue_name, tmp_path_factory):
    """A gateway that queues through Kueue, as the session gateway's ServiceAccount (same namespace and users
    Secret, so the session's users work here too), without collectors (no test here reads a log)."""
    server = GatewayServer(tmp_path_factory.mktemp("queued"), letter="q", kubeconfig=gateway_identity.kubeconfig,
                           gateway_namespace=gateway_identity.namespace, GATEWAY_QUEUE="kueue",
                           GATEWAY_QUEUE_CLUSTER_QUEUE=queue_name)
    server.host_volume_root = gateway.host_volume_root  # the jobs policy's root (no job here has a volume)
    try:
        server.start(timeout=60)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.close()


def capacity(queue_name: str, pods: int) -> None:
    kubectl("patch", "clusterqueue", queue_name, "--type=json", "-p", json.dumps([{
        "op": "replace", "path": "/spec/resourceGroups/0/flavors/0/resources/2/nominalQuota", "value": str(pods)}]))


@pytest.fixture
def user_of(queued_gateway, queue_name):
    """Makes users of the queued gateway; afterwards deletes their jobs and waits until the ClusterQueue holds
    none of them, so that the next test starts on an empty queue."""
    made = []

    def make(prefix: str):
        made.append(queued_gateway.add_user(prefix))
        return made[-1]
    yield make
    for client in made:
        for job in client.get("/jobs").json()["jobs"]:
            client.delete(f"/jobs/{job['metadata']['name']}")

    def empty() -> bool:
        status = json.loads(kubectl("get", "clusterqueue", queue_name, "-o", "json").stdout).get("status") or {}
        return not status.get("pendingWorkloads") and not status.get("reservingWorkloads")
    until(empty, 120, f"ClusterQueue {queue_name} empty")


def admitted(client) -> list[str]:
    """The user's jobs Kueue has let start (no longer suspended), by name."""
    jobs = client.get("/jobs").json()["jobs"]
    return sorted(j["metadata"]["name"] for j in jobs if not (j.get("spec") or {}).get("suspend"))


def in_queue(client, name: str) -> dict:
    """The job's ``queue`` object, once Kueue holds a Workload for it."""
    def read():
        body = client.get(f"/jobs/{name}").json()
        queue = body.get("queue") or {}
        return queue if queue.get("reason") != "NoWorkload" and queue.get("queued_at") else None
    return until(read, 60, f"Kueue's Workload for {name}")


def submit_spaced(client, names: list[str]) -> None:
    """Kueue orders a queue by its Workloads' creationTimestamp, to the second (then by UID): each job is sent
    once the previous one's Workload is in the queue and the clock has passed the next second, so that their
    submission order is one Kueue can see."""
    for name in names:
        created = client.post(f"/jobs/{name}", json=HOLD)
        assert created.status_code == 200, created.text
        queued_at = in_queue(client, name)["queued_at"]
        after = dt.datetime.fromisoformat(queued_at.replace("Z", "+00:00")) + dt.timedelta(seconds=1)
        until(lambda: dt.datetime.now(dt.timezone.utc) >= after, 5, "the next second")


def next_admission(clients: dict[str, object], before: set[str], timeout: float = 60) -> list[str]:
    """Wait for jobs to be admitted beyond ``before`` (``tenant:job`` names), return the new ones."""
    def grown():
        now = {f"{tenant}:{name}" for tenant, client in clients.items() for name in admitted(client)}
        return sorted(now - before) or None
    return until(grown, timeout, "the next admission")


def test_jobs_of_one_tenant_start_in_submission_order(queued_gateway, queue_name, user_of):
    capacity(queue_name, 1)
    client = user_of("fifo")
    names = [f"fifo-{i:02d}" for i in range(10)]
    submit_spaced(client, names)
    namespace = queued_gateway.namespace_of(client)
    # the job the gateway made: labelled for the tenant's LocalQueue, created suspended, on the test's ClusterQueue
    job = json.loads(kubectl("get", "job", names[0], "-n", namespace, "-o", "json").stdout)
    assert job["metadata"]["labels"][QUEUE_LABEL] == "tenx-gateway"
    local_queue = json.loads(kubectl("get", "localqueue", "tenx-gateway", "-n", namespace, "-o", "json").stdout)
    assert local_queue["spec"]["clusterQueue"] == queue_name
    # the first was admitted at once; the other nine wait, numbered in submission order
    until(lambda: admitted(client) == [names[0]], 60, "the first job admitted")
    places = {name: in_queue(client, name) for name in names[1:]}
    assert [places[n]["position"] for n in names[1:]] == list(range(1, 10)), places
    assert all(p["waiting"] == 9 and p["state"] == "queued" for p in places.values()), places
    why = places[names[1]]
    assert why["reason"] == "Pending" and "insufficient unused quota" in why["message"], why
    order, running = [], names[0]
    for _ in names:
        order.append(running)
        gone = client.delete(f"/jobs/{running}")
        assert gone.status_code == 200, gone.text
        if len(order) == len(names):
            break
        (running,) = next_admission({"t": client}, {f"t:{n}" for n in order})
        running = running.split(":", 1)[1]
    assert order == names
    print("admission order:", order)


def test_a_queued_job_s_place_reason_and_admission_in_get_tenx_and_the_console(queued_gateway, queue_name,
                                                                                  user_of, tmp_path, browser):
    capacity(queue_name, 1)
    tenx = logged_in(queued_gateway, user_of, tmp_path / "config")
    client = tenx.api
    submit_spaced(client, ["first", "second", "third"])
    until(lambda: admitted(client) == ["first"], 60, "the first job admitted")
    third = in_queue(client, "third")
    assert (third["state"], third["position"], third["waiting"], third["reason"]) == ("queued", 2, 2, "Pending")
    shown = tenx("get", "third")
    assert shown.returncode == 0, shown.stderr
    assert "Status:        queued" in shown.stdout
    assert "Queue:         tenx-gateway, 2 of 2 waiting (Pending: couldn't assign flavors" in shown.stdout
    listed = dict(line.split()[:2] for line in tenx("ls").stdout.splitlines()[1:])
    assert listed["second"] == listed["third"] == "queued" and listed["first"] in ("pending", "running"), listed
    tab = Tab(browser, queued_gateway)
    try:
        tab.sign_in(client.username, token_of(client))
        tab.page.wait_for_selector("#jobs-table, .jobs")
        tab.go("#/jobs/third")
        notice = tab.page.locator("#job-queue")
        notice.wait_for(state="visible")
        assert "Queued in tenx-gateway — 2 of 2 waiting (Pending: couldn't assign flavors" in notice.inner_text()
        assert tab.page.locator("#job-status").inner_text() == "queued"
        tab.shoot("job-queued")
        # the first goes; the second is admitted, and the third moves up, which the page shows by itself
        assert client.delete("/jobs/first").status_code == 200
        tab.page.locator("#job-queue", has_text="1 of 1 waiting").wait_for(timeout=60_000)
        tab.go("#/jobs/second")
        tab.page.locator("#job-queue", has_text="Admitted from queue tenx-gateway at").wait_for(timeout=60_000)
        tab.shoot("job-admitted-from-queue")
        tab.assert_clean()
    finally:
        tab.close()
    second = client.get("/jobs/second").json()["queue"]
    assert second["state"] == "admitted" and second["admitted_at"], second
    shown = tenx("get", "second")
    assert f"Queue:         tenx-gateway, admitted {second['admitted_at']}" in shown.stdout, shown.stdout


def test_deleting_a_queued_job_frees_its_place(queued_gateway, queue_name, user_of):
    capacity(queue_name, 1)
    client = user_of("del")
    submit_spaced(client, ["holder", "early", "late"])
    until(lambda: admitted(client) == ["holder"], 60, "the holder admitted")
    assert in_queue(client, "late")["position"] == 2
    assert client.delete("/jobs/early").status_code == 200
    namespace = queued_gateway.namespace_of(client)
    until(lambda: in_queue(client, "late").get("position") == 1 and in_queue(client, "late")["waiting"] == 1, 60,
          "the late job moved up")
    workloads = json.loads(kubectl("get", "workloads", "-n", namespace, "-o", "json").stdout)["items"]
    assert not any(w["metadata"]["name"].startswith("job-early-") for w in workloads)
    assert client.delete("/jobs/holder").status_code == 200
    until(lambda: admitted(client) == ["late"], 60, "the late job admitted next")


def test_two_tenants_take_turns_and_one_alone_borrows_all_and_gives_it_back(queued_gateway, queue_name, user_of):
    """Capacity 2. Tenant a submits six jobs alone and takes both places (nobody else wants them); then tenant b
    submits six. Each time a place frees (the oldest running job is deleted), admission fair sharing gives it to
    the tenant whose LocalQueue has used the least lately (its decayed usage, sampled every 30 s, plus a penalty
    per admission): b first although a's jobs are older, b again until it has caught up on a's head start, then in
    turns while both wait."""
    capacity(queue_name, 2)
    clients = {"a": user_of("fa"), "b": user_of("fb")}
    for name in (f"a{i}" for i in range(6)):
        assert clients["a"].post(f"/jobs/{name}", json=HOLD).status_code == 200
    until(lambda: admitted(clients["a"]) == ["a0", "a1"], 60, "tenant a alone in both places")
    for name in (f"b{i}" for i in range(6)):
        assert clients["b"].post(f"/jobs/{name}", json=HOLD).status_code == 200
    for name in (f"b{i}" for i in range(6)):
        in_queue(clients["b"], name)
    running = ["a:a0", "a:a1"]
    order = list(running)
    while len(order) < 12:
        tenant, name = running.pop(0).split(":")
        assert clients[tenant].delete(f"/jobs/{name}").status_code == 200
        new = next_admission(clients, set(order))
        assert len(new) == 1, new
        order += new
        running += new
    tenants = "".join(entry[0] for entry in order)
    print("admission order:", " ".join(order), "tenants:", tenants)
    assert tenants[:3] == "aab", tenants  # b's first job before a's third, though a's are older
    # then b catches up on a's head start (a's two running jobs are in its usage from the first sample on): b gets
    # most of the next places. How many in a row depends on when Kueue last sampled the usage (every 30 s here):
    # measured aabbbabababa (twice), aabbabababab and aabbbbbbaaaa. A plain FIFO queue gives aaaaaabbbbbb.
    assert tenants[2:8].count("b") >= 4, tenants


def test_nothing_is_made_outside_the_tenants_namespaces(queued_gateway, queue_name, gateway_identity, user_of):
    """Two users with a running and a waiting job each (and whatever users the tests above left): the gateway's
    LocalQueues are one per user namespace, each feeding the configured ClusterQueue; there are none in the
    gateway's own namespace or a system one; each Workload of its users' Jobs is in that Job's namespace; and no
    cluster-scoped Kueue object exists but the test's ClusterQueue and what the cluster had
    (deploy/components/kueue's ClusterQueue and ResourceFlavor)."""
    capacity(queue_name, 2)
    for prefix in ("na", "nb"):
        client = user_of(prefix)
        for name in ("one", "two"):
            assert client.post(f"/jobs/{name}", json=HOLD).status_code == 200
        in_queue(client, "two")
    prefix = queued_gateway.namespace_prefix
    local_queues = json.loads(kubectl("get", KUEUE_KINDS[0], "--all-namespaces", "-o", "json").stdout)["items"]
    mine = [q for q in local_queues if q["metadata"]["namespace"].startswith(prefix)]
    assert len(mine) >= 2 and {q["metadata"]["name"] for q in mine} == {"tenx-gateway"}
    assert {q["spec"]["clusterQueue"] for q in mine} == {queue_name}
    assert not [q for q in local_queues
                if q["metadata"]["namespace"] in (gateway_identity.namespace, "default", "kube-system")]
    jobs = json.loads(kubectl("get", "jobs", "--all-namespaces", "-o", "json").stdout)["items"]
    namespace_of_job = {j["metadata"]["uid"]: j["metadata"]["namespace"] for j in jobs
                        if j["metadata"]["namespace"].startswith(prefix)}
    workloads = json.loads(kubectl("get", KUEUE_KINDS[1], "--all-namespaces", "-o", "json").stdout)["items"]
    ours = [w for w in workloads if w["metadata"].get("labels", {}).get("kueue.x-k8s.io/job-uid") in namespace_of_job]
    assert len(ours) >= 4 and all(w["metadata"]["namespace"] == namespace_of_job[w["metadata"]["labels"][
        "kueue.x-k8s.io/job-uid"]] for w in ours)
    cluster_scoped = {kind: {n.split("/", 1)[1] for n in kubectl("get", kind, "-o", "name").stdout.split()}
                      for kind in KUEUE_CLUSTER_KINDS}
    assert not cluster_scoped["workloadpriorityclasses.kueue.x-k8s.io"]
    assert not cluster_scoped["cohorts.kueue.x-k8s.io"] and not cluster_scoped["admissionchecks.kueue.x-k8s.io"]
    assert cluster_scoped["resourceflavors.kueue.x-k8s.io"] == {"tenx-gateway"}
    assert queue_name in cluster_scoped["clusterqueues.kueue.x-k8s.io"]
    assert all(name == "tenx-gateway" or name.startswith("tenx-test-")
               for name in cluster_scoped["clusterqueues.kueue.x-k8s.io"]), cluster_scoped
