"""Kueue objects for the tests and the bench that queue jobs (GATEWAY_QUEUE=kueue) on the local cluster."""
from __future__ import annotations

from typing import Any


def cluster_queue(name: str, pods: int) -> dict[str, Any]:
    """deploy/components/kueue/queues.yaml's ClusterQueue, with a capacity of ``pods`` jobs."""
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": name},
            "spec": {"namespaceSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "tenx-gateway"}},
                     "queueingStrategy": "BestEffortFIFO",
                     "admissionScope": {"admissionMode": "UsageBasedAdmissionFairSharing"},
                     "resourceGroups": [{"coveredResources": ["cpu", "memory", "pods"], "flavors": [{
                         "name": "tenx-gateway", "resources": [{"name": "cpu", "nominalQuota": "4"},
                                                               {"name": "memory", "nominalQuota": "46Gi"},
                                                               {"name": "pods", "nominalQuota": str(pods)}]}]}]}}
