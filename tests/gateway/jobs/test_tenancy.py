"""Tenants: whose namespace is whose, the walls applied once per process, why a job is held back.

The Kubernetes side is the recording fake (tests/support/fake_kube.py) here; tests/integration/test_tenant_walls.py
does it for real."""
import pytest

from gateway import errors
from gateway.settings import Settings
from gateway.jobs.tenancy import Tenant, TenantWalls, archive_namespace, held_back, owner_problem

from tests.support.fake_kube import FakeKube

MANAGED = {"app.kubernetes.io/managed-by": "tenx-gateway"}


def namespace(name, labels=None, owner=None):
    metadata = {"name": name, "labels": labels or {}}
    if owner:
        metadata["annotations"] = {"tenx-gateway/username": owner}
    return {"metadata": metadata}


def test_tenant_of_maps_namespace_and_archive_key():
    settings = Settings(regions={"us": "", "eu": "x"})
    assert Tenant.of("alice", "us", settings) == Tenant("alice", "tenx-alice", "us", "tenx-alice")
    assert Tenant.of("alice", "eu", settings).archive == "eu:tenx-alice"
    assert archive_namespace("us", "tenx-a", "us") == "tenx-a"


@pytest.mark.parametrize("ns, problem", [
    (namespace("tenx-alice", MANAGED, "alice"), None),
    (namespace("tenx-alice"), "not managed by tenx-gateway"),
    (namespace("tenx-alice", MANAGED), "tenx-gateway's own"),
    (namespace("tenx-alice", MANAGED, "bob"), "belongs to user 'bob'"),
    (namespace("tenx-alice", {"app.kubernetes.io/managed-by": "helm"}, "alice"), "not managed by tenx-gateway"),
])
def test_owner_problem(ns, problem):
    found = owner_problem(ns, "alice")
    assert (found is None) if problem is None else (problem in found)


def test_a_new_namespace_is_created_checked_and_walled_once():
    kube, walls = FakeKube(), TenantWalls(Settings())
    tenant = Tenant.of("alice", "us", Settings())
    walls.ensure(kube, tenant)
    walls.ensure(kube, tenant)
    assert kube.calls == [("get_namespace", "tenx-alice"), ("create_namespace", "tenx-alice"),
                          ("get_namespace", "tenx-alice"), ("get_endpoints", "kubernetes"),
                          ("apply", "ResourceQuota"), ("apply", "LimitRange"), ("apply", "NetworkPolicy")]
    assert kube.namespaces["tenx-alice"]["metadata"]["annotations"] == {"tenx-gateway/username": "alice"}


def test_forget_makes_the_next_create_check_again():
    kube, walls = FakeKube(), TenantWalls(Settings())
    tenant = Tenant.of("alice", "us", Settings())
    walls.ensure(kube, tenant)
    walls.forget(tenant)
    kube.calls.clear()
    walls.ensure(kube, tenant)
    assert ("apply", "ResourceQuota") in kube.calls


@pytest.mark.parametrize("existing", [namespace("tenx-alice"), namespace("tenx-alice", MANAGED, "bob"),
                                      namespace("tenx-alice", MANAGED)])
def test_a_namespace_that_is_not_the_users_is_refused_and_never_walled(existing):
    kube = FakeKube({"tenx-alice": existing})
    with pytest.raises(errors.Forbidden):
        TenantWalls(Settings()).ensure(kube, Tenant.of("alice", "us", Settings()))
    assert not [call for call in kube.calls if call[0] in ("apply", "create_namespace")]


def test_the_gateways_own_namespace_is_refused_without_asking_the_cluster():
    kube = FakeKube()
    with pytest.raises(errors.Forbidden, match="gateway's own namespace"):
        TenantWalls(Settings()).ensure(kube, Tenant.of("gateway", "us", Settings()))
    assert kube.calls == []


QUOTA_EVENT = {"reason": "FailedCreate", "lastTimestamp": "2026-11-28T09:00:00Z",
               "message": 'Error creating: pods "j-x" is forbidden: exceeded quota: tenx-gateway-quota, '
                          'requested: pods=1, used: pods=2, limited: pods=2'}


def job(parallelism=1, completions=1, succeeded=0, conditions=()):
    return {"metadata": {"namespace": "tenx-a", "uid": "u1"},
            "spec": {"parallelism": parallelism, "completions": completions},
            "status": {"succeeded": succeeded, "conditions": list(conditions)}}


def test_held_back_reports_the_quota():
    kube = FakeKube(cluster_events=[{**QUOTA_EVENT, "lastTimestamp": "2026-11-28T08:00:00Z", "message": "older"},
                            QUOTA_EVENT])
    assert held_back(kube, job(), []) == {"reason": "ExceededQuota", "message": QUOTA_EVENT["message"],
                                          "since": "2026-11-28T09:00:00Z"}
    assert kube.calls == [("list_events", "involvedObject.uid=u1,reason=FailedCreate")]


@pytest.mark.parametrize("the_job, pods", [
    (job(), [{"status": {"phase": "Running"}}]),
    (job(conditions=[{"type": "Complete", "status": "True"}]), []),
    (job(completions=2, succeeded=2), []),
    (job(parallelism=0), []),
])
def test_nothing_held_back_asks_nothing(the_job, pods):
    kube = FakeKube(cluster_events=[QUOTA_EVENT])
    assert held_back(kube, the_job, pods) is None
    assert kube.calls == []


def test_held_back_without_events_is_none():
    assert held_back(FakeKube(), job(), [{"status": {"phase": "Succeeded"}}]) is None
