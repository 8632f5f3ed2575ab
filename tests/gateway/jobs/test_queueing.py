"""gateway/jobs/queueing.py: where a queued Job stands, from its namespace's Kueue Workloads (pure), and the tenant's
LocalQueue made on first use."""
import pytest

from gateway import errors
from gateway.jobs import queueing
from gateway.jobs.walls import local_queue

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
WHY = ("couldn't assign flavors to pod set main: insufficient unused quota for pods in flavor tenx-gateway, "
       "1 more needed")


def job(uid, *, suspend=True, created="2026-12-07T06:00:00Z", start=None):
    status = {"startTime": start} if start else {}
    return {"metadata": {"name": f"job-{uid}", "namespace": "tenx-a", "uid": uid, "creationTimestamp": created,
                         "labels": {"name": f"job-{uid}", QUEUE_LABEL: "tenx-gateway"}},
            "spec": {"suspend": suspend}, "status": status}


def workload(job_uid, created, *, uid=None, conditions=(), queue="tenx-gateway", priority=None, active=None,
             admission=None):
    spec = {"queueName": queue}
    if priority is not None:
        spec["priority"] = priority
    if active is not None:
        spec["active"] = active
    status = {"conditions": list(conditions)}
    if admission:
        status["admission"] = admission
    return {"metadata": {"name": f"job-job-{job_uid}-1a2b3", "namespace": "tenx-a", "uid": uid or f"w-{job_uid}",
                         "creationTimestamp": created, "labels": {"kueue.x-k8s.io/job-uid": job_uid},
                         "ownerReferences": [{"kind": "Job", "uid": job_uid, "controller": True}]},
            "spec": spec, "status": status}


PENDING = {"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": WHY,
           "lastTransitionTime": "2026-12-07T06:00:01Z"}
RESERVED = {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved",
            "lastTransitionTime": "2026-12-07T06:00:05Z"}
ADMITTED = {"type": "Admitted", "status": "True", "reason": "Admitted", "lastTransitionTime": "2026-12-07T06:00:05Z"}


def test_a_waiting_job_says_its_place_among_the_tenants_waiting_jobs_and_why():
    workloads = [workload("c", "2026-12-07T06:00:03Z", conditions=[PENDING]),
                 workload("a", "2026-12-07T06:00:01Z", conditions=[RESERVED, ADMITTED],
                          admission={"clusterQueue": "tenx-gateway"}),
                 workload("b", "2026-12-07T06:00:02Z", conditions=[PENDING])]
    assert queueing.queue_view(job("c"), workloads) == {
        "name": "tenx-gateway", "queued_at": "2026-12-07T06:00:03Z", "state": "queued", "position": 2,
        "waiting": 2, "reason": "Pending", "message": WHY, "since": "2026-12-07T06:00:01Z"}
    assert queueing.queue_view(job("b"), workloads)["position"] == 1


def test_kueue_s_order_priority_then_age_then_uid_within_a_second():
    workloads = [workload("old", "2026-12-07T06:00:01Z", conditions=[PENDING]),
                 workload("urgent", "2026-12-07T06:00:09Z", priority=100, conditions=[PENDING]),
                 workload("y", "2026-12-07T06:00:05Z", uid="w-2", conditions=[PENDING]),
                 workload("x", "2026-12-07T06:00:05Z", uid="w-1", conditions=[PENDING])]
    places = {uid: queueing.queue_view(job(uid), workloads)["position"] for uid in ("old", "urgent", "x", "y")}
    assert places == {"urgent": 1, "old": 2, "x": 3, "y": 4}


def test_only_the_same_queue_s_waiting_workloads_count():
    workloads = [workload("a", "2026-12-07T06:00:01Z", queue="another", conditions=[PENDING]),
                 workload("b", "2026-12-07T06:00:02Z", active=False, conditions=[PENDING]),
                 workload("c", "2026-12-07T06:00:03Z", conditions=[PENDING])]
    assert queueing.queue_view(job("c"), workloads)["position"] == 1
    assert queueing.queue_view(job("c"), workloads)["waiting"] == 1
    deactivated = queueing.queue_view(job("b"), workloads)
    assert deactivated["state"] == "queued" and "position" not in deactivated


def test_admitted_but_not_yet_unsuspended_says_when():
    workloads = [workload("a", "2026-12-07T06:00:01Z", conditions=[RESERVED, ADMITTED],
                          admission={"clusterQueue": "tenx-gateway"})]
    assert queueing.queue_view(job("a"), workloads) == {
        "name": "tenx-gateway", "cluster_queue": "tenx-gateway", "queued_at": "2026-12-07T06:00:01Z",
        "state": "admitted", "admitted_at": "2026-12-07T06:00:05Z"}


def test_before_kueue_made_the_workload():
    assert queueing.queue_view(job("a"), []) == {
        "name": "tenx-gateway", "state": "queued", "reason": "NoWorkload",
        "message": "waiting for Kueue to take the job into its queue"}


def test_an_unsuspended_job_was_admitted_when_it_started():
    started = job("a", suspend=False, start="2026-12-07T06:00:07Z")
    assert queueing.admitted_view(started) == {"name": "tenx-gateway", "state": "admitted",
                                               "queued_at": "2026-12-07T06:00:00Z",
                                               "admitted_at": "2026-12-07T06:00:07Z"}


class NoCalls:
    def __getattr__(self, name):
        raise AssertionError(f"no apiserver call expected, got {name}")


def test_describe_asks_the_apiserver_only_for_a_suspended_job():
    assert queueing.describe(NoCalls(), {"metadata": {"name": "plain"}, "spec": {}}) is None
    assert queueing.describe(NoCalls(), job("a", suspend=False, start="2026-12-07T06:00:07Z"))["state"] == "admitted"


def test_the_local_queue_manifest():
    assert local_queue("tenx-a", "tenx-gateway") == {
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
        "metadata": {"name": "tenx-gateway", "namespace": "tenx-a",
                     "labels": {"app.kubernetes.io/managed-by": "tenx-gateway"}},
        "spec": {"clusterQueue": "tenx-gateway"}}


class LocalQueues:
    """The two calls ensure_local_queue makes; ``api``: whether the cluster serves Kueue's LocalQueues."""

    def __init__(self, existing=None, api=True):
        self.existing, self.api, self.created = existing, api, []

    def get_local_queue(self, namespace, name):
        if self.existing is None:
            raise errors.NotFound("not found")
        return self.existing

    def create_local_queue(self, namespace, manifest):
        if not self.api:
            raise errors.NotFound("the server could not find the requested resource")
        self.created.append(manifest)


def test_the_local_queue_is_made_once():
    kube = LocalQueues()
    queueing.ensure_local_queue(kube, "tenx-a", "tenx-gateway")
    assert kube.created == [local_queue("tenx-a", "tenx-gateway")]
    there = LocalQueues(existing=local_queue("tenx-a", "elsewhere"))
    queueing.ensure_local_queue(there, "tenx-a", "tenx-gateway")  # its ClusterQueue cannot change: left alone
    assert there.created == []


def test_a_cluster_without_kueue_is_the_operator_s_problem():
    with pytest.raises(errors.BadGateway, match="no job queue"):
        queueing.ensure_local_queue(LocalQueues(api=False), "tenx-a", "tenx-gateway")
