"""The walls of a user namespace: golden manifests."""
import pytest

from gateway.settings import Settings
from gateway.jobs.walls import egress_denied, limit_range, network_policy, resource_quota, tenant_walls

LABELS = {"app.kubernetes.io/managed-by": "tenx-gateway"}


def test_resource_quota():
    assert resource_quota("tenx-a", pods=20, jobs=100, cpu="8", memory="16Gi") == {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "tenx-gateway-quota", "namespace": "tenx-a", "labels": LABELS},
        "spec": {"hard": {"pods": "20", "count/jobs.batch": "100", "requests.cpu": "8", "requests.memory": "16Gi"}}}


def test_limit_range_fills_requests_and_limits():
    assert limit_range("tenx-a", cpu="500m", memory="512Mi", cpu_request="10m", memory_request="32Mi", max_cpu="8",
                       max_memory="16Gi") == {
        "apiVersion": "v1", "kind": "LimitRange",
        "metadata": {"name": "tenx-gateway-limits", "namespace": "tenx-a", "labels": LABELS},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "512Mi"},
                             "defaultRequest": {"cpu": "10m", "memory": "32Mi"},
                             "max": {"cpu": "8", "memory": "16Gi"}}]}}


def test_network_policy_denies_ingress_and_named_egress():
    assert network_policy("tenx-a", ["169.254.169.254/32", "10.96.0.1/32", "fd00:ec2::254/128"]) == {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "tenx-gateway-tenant", "namespace": "tenx-a", "labels": LABELS},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [],
                 "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                                                 "except": ["10.96.0.1/32", "169.254.169.254/32"]}},
                                    {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::254/128"]}}]}]}}


def test_network_policy_without_denials_still_denies_ingress():
    spec = network_policy("tenx-a", [])["spec"]
    assert spec["ingress"] == [] and spec["egress"] == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}},
                                                               {"ipBlock": {"cidr": "::/0"}}]}]


def test_egress_denied_expands_the_apiserver():
    assert egress_denied("169.254.169.254/32, @apiserver", ["10.96.0.1", "192.168.1.5"]) == [
        "10.96.0.1/32", "169.254.169.254/32", "192.168.1.5/32"]
    assert egress_denied("@apiserver", []) == []
    assert egress_denied("", ["10.0.0.1"]) == []
    assert egress_denied("10.0.0.7/8", []) == ["10.0.0.0/8"]


@pytest.mark.parametrize("bad", ["not-an-ip", "300.1.1.1/32", "@other"])
def test_egress_denied_refuses_what_is_not_a_cidr(bad):
    with pytest.raises(ValueError):
        egress_denied(bad, [])


def test_tenant_walls_follow_the_settings():
    settings = Settings(tenant_quota_pods=3, tenant_quota_jobs=4, tenant_quota_cpu="2", tenant_quota_memory="1Gi",
                        tenant_default_cpu="100m", tenant_default_memory="64Mi")
    quota, limits, policy = tenant_walls("tenx-a", settings, ["169.254.169.254/32"])
    assert quota["spec"]["hard"]["pods"] == "3" and quota["spec"]["hard"]["count/jobs.batch"] == "4"
    assert limits["spec"]["limits"][0]["default"] == {"cpu": "100m", "memory": "64Mi"}
    assert limits["spec"]["limits"][0]["max"] == {"cpu": "2", "memory": "1Gi"}
    assert policy["kind"] == "NetworkPolicy"
