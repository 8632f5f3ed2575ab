"""The objects that wall in one user's namespace, as manifests. Pure: no I/O.

- a ResourceQuota, so one user cannot take the cluster: non-finished pods, Job objects, and the CPU and memory
  their pods request (what the scheduler reserves for them);
- a LimitRange, so a container whose job.json names no limits still gets requests and limits (a quota on requests
  refuses pods without them), and no one container's limits pass the whole quota;
- a NetworkPolicy: no ingress, and no egress to the cloud metadata address or the Kubernetes API. It is enforced
  only by a NetworkPolicy-capable CNI (Calico, Cilium, ...); elsewhere it is stored and has no effect;
- with GATEWAY_QUEUE=kueue, a Kueue LocalQueue on the operator's ClusterQueue, where the tenant's jobs wait their
  turn (the quota stays, as a backstop under the queue).
"""
from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from .names import LOCAL_QUEUE, MANAGED_BY, MANAGED_BY_LABEL

QUOTA_NAME = "tenx-gateway-quota"
LIMITS_NAME = "tenx-gateway-limits"
NETWORK_POLICY_NAME = "tenx-gateway-tenant"
APISERVER = "@apiserver"  # in GATEWAY_TENANT_EGRESS_DENY: the Kubernetes API's addresses, found at run time


def _metadata(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}}


def resource_quota(namespace: str, *, pods: int, jobs: int, cpu: str, memory: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": _metadata(QUOTA_NAME, namespace),
        "spec": {"hard": {"pods": str(pods), "count/jobs.batch": str(jobs),
                          "requests.cpu": cpu, "requests.memory": memory}},
    }


def limit_range(namespace: str, *, cpu: str, memory: str, cpu_request: str, memory_request: str, max_cpu: str,
                max_memory: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "LimitRange", "metadata": _metadata(LIMITS_NAME, namespace),
        "spec": {"limits": [{"type": "Container", "default": {"cpu": cpu, "memory": memory},
                             "defaultRequest": {"cpu": cpu_request, "memory": memory_request},
                             "max": {"cpu": max_cpu, "memory": max_memory}}]},
    }


def network_policy(namespace: str, denied: Iterable[str]) -> dict[str, Any]:
    """Deny every ingress; allow egress anywhere except ``denied`` (CIDRs, IPv4 and IPv6 apart)."""
    blocks = []
    for family, everything in ((4, "0.0.0.0/0"), (6, "::/0")):
        excepted = sorted({cidr for cidr in denied if ipaddress.ip_network(cidr).version == family})
        block: dict[str, Any] = {"cidr": everything}
        if excepted:
            block["except"] = excepted
        blocks.append({"ipBlock": block})
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _metadata(NETWORK_POLICY_NAME, namespace),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": [{"to": blocks}]},
    }


def local_queue(namespace: str, cluster_queue: str) -> dict[str, Any]:
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "metadata": _metadata(LOCAL_QUEUE, namespace),
        "spec": {"clusterQueue": cluster_queue},
    }


def egress_denied(setting: str, apiserver_addresses: Iterable[str]) -> list[str]:
    """GATEWAY_TENANT_EGRESS_DENY as CIDRs: ``@apiserver`` becomes one host route per address given."""
    cidrs: list[str] = []
    for item in (part.strip() for part in setting.split(",")):
        if item == APISERVER:
            cidrs += [str(ipaddress.ip_network(address)) for address in apiserver_addresses]
        elif item:
            cidrs.append(str(ipaddress.ip_network(item, strict=False)))
    return sorted(set(cidrs))


def tenant_walls(namespace: str, settings: Any, denied: Iterable[str]) -> list[dict[str, Any]]:
    return [
        resource_quota(namespace, pods=settings.tenant_quota_pods, jobs=settings.tenant_quota_jobs,
                       cpu=settings.tenant_quota_cpu, memory=settings.tenant_quota_memory),
        limit_range(namespace, cpu=settings.tenant_default_cpu, memory=settings.tenant_default_memory,
                    cpu_request=settings.tenant_default_cpu_request,
                    memory_request=settings.tenant_default_memory_request,
                    max_cpu=settings.tenant_quota_cpu, max_memory=settings.tenant_quota_memory),
        network_policy(namespace, denied),
    ]
