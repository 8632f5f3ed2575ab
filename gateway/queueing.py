"""Jobs that wait their turn in Kueue (GATEWAY_QUEUE=kueue): the tenant's LocalQueue, and what a queued Job's
Workload says about it, in the API's words.

The gateway does not queue anything itself. It labels each Job for the LocalQueue ``tenx-gateway`` of the user's
namespace and creates it suspended (``manifest.build_job``); Kueue makes a Workload for it, admits it when the
ClusterQueue has room (ordering the tenants' LocalQueues by their recent usage: admission fair sharing) and
unsuspends it. ``describe`` reads the namespace's Workloads back to say where a Job stands.
"""
from __future__ import annotations

import logging
from typing import Any

from . import errors, walls
from .kube import Kube
from .names import LOCAL_QUEUE, QUEUE_LABEL

log = logging.getLogger(__name__)

QUEUED, ADMITTED = "queued", "admitted"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"  # Kueue's label on a Job's Workload


def ensure_local_queue(kube: Kube, namespace: str, cluster_queue: str) -> None:
    """The tenant's LocalQueue, made on first use. Its ClusterQueue cannot be changed once made (Kueue refuses):
    one that points elsewhere is left as it is, and said so in the log."""
    try:
        found = kube.get_local_queue(namespace, LOCAL_QUEUE)
    except errors.NotFound:
        try:
            kube.create_local_queue(namespace, walls.local_queue(namespace, cluster_queue))
        except errors.NotFound:  # the namespace is there (just checked): the cluster has no LocalQueue API
            log.error("GATEWAY_QUEUE=kueue, but the cluster has no Kueue LocalQueue API (kueue.x-k8s.io/v1beta2)")
            raise errors.BadGateway("the cluster has no job queue (Kueue) although the gateway is set to use one; "
                                    "the operator must install it or unset GATEWAY_QUEUE") from None
        return
    current = (found.get("spec") or {}).get("clusterQueue")
    if current != cluster_queue:
        log.warning("LocalQueue %s/%s feeds ClusterQueue %s, not %s (GATEWAY_QUEUE_CLUSTER_QUEUE); its jobs go there",
                    namespace, LOCAL_QUEUE, current, cluster_queue)


def queue_of(job: dict[str, Any]) -> str | None:
    return ((job.get("metadata") or {}).get("labels") or {}).get(QUEUE_LABEL)


def describe(kube: Kube, job: dict[str, Any]) -> dict[str, Any] | None:
    """The ``queue`` object of GET /jobs/<name> for a Job that went through a queue, else None. Only a suspended
    Job costs a call (every Workload of its namespace: its place among them); one Kueue has let go says so from
    the Job alone (``admitted_view``)."""
    queue = queue_of(job)
    if queue is None:
        return None
    if not (job.get("spec") or {}).get("suspend"):
        return admitted_view(job)
    namespace = (job.get("metadata") or {}).get("namespace", "")
    try:
        found = kube.list_workloads(namespace)
    except errors.GatewayError as exc:  # the queue's view is a courtesy: never fail the read over it
        log.warning("cannot read the Workloads of %s: %s", namespace, exc.description)
        return {"name": queue, "state": QUEUED}
    return queue_view(job, found.get("items") or [])


def admitted_view(job: dict[str, Any]) -> dict[str, Any]:
    """A queued Job that is no longer suspended was admitted: Kueue unsuspended it, and the Job controller set its
    ``startTime`` then (and sets it again on each resume), which is when it was admitted, to the second."""
    view = {"name": queue_of(job) or "", "state": ADMITTED,
            "queued_at": (job.get("metadata") or {}).get("creationTimestamp"),
            "admitted_at": (job.get("status") or {}).get("startTime")}
    return {key: value for key, value in view.items() if value is not None}


def queue_view(job: dict[str, Any], workloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Where ``job`` stands in its LocalQueue, from the Workloads of its namespace (pure).

    ``state``: queued or admitted; while queued, ``position`` among the tenant's waiting jobs in Kueue's order
    (1 goes next) of ``waiting``, and ``reason``/``message``/``since`` from the Workload's QuotaReserved condition
    (why it waits: "couldn't assign flavors ...: insufficient unused quota ..."); ``admitted_at`` once admitted."""
    metadata = job.get("metadata") or {}
    queue = queue_of(job) or ""
    own = _own_workload(metadata.get("uid", ""), workloads)
    view: dict[str, Any] = {"name": queue}
    if own is None:
        # Kueue has not made the Workload yet (moments after the create), or it is not running
        suspended = bool((job.get("spec") or {}).get("suspend"))
        view.update(state=QUEUED if suspended else ADMITTED)
        if suspended:
            view.update(reason="NoWorkload", message="waiting for Kueue to take the job into its queue")
        return view
    status = own.get("status") or {}
    view["cluster_queue"] = (status.get("admission") or {}).get("clusterQueue")
    view["queued_at"] = (own.get("metadata") or {}).get("creationTimestamp")
    if _reserved(own):  # admitted, and the Job not yet unsuspended
        reserved = _condition(own, "Admitted") or _condition(own, "QuotaReserved") or {}
        view.update(state=ADMITTED, admitted_at=reserved.get("lastTransitionTime"))
        return {key: value for key, value in view.items() if value is not None}
    view["state"] = QUEUED
    pending = sorted((w for w in workloads if _waiting(w) and _queue_name(w) == _queue_name(own)), key=_order)
    uids = [(w.get("metadata") or {}).get("uid") for w in pending]
    own_uid = (own.get("metadata") or {}).get("uid")
    if own_uid in uids:  # not when Kueue deactivated it: it waits for no turn then
        view["position"] = uids.index(own_uid) + 1
    view["waiting"] = len(pending)
    view.update(_why(own))
    return {key: value for key, value in view.items() if value is not None}


def _own_workload(job_uid: str, workloads: list[dict[str, Any]]) -> dict[str, Any] | None:
    for workload in workloads:
        metadata = workload.get("metadata") or {}
        owners = metadata.get("ownerReferences") or []
        if (metadata.get("labels") or {}).get(JOB_UID_LABEL) == job_uid or any(
                owner.get("uid") == job_uid and owner.get("controller") for owner in owners):
            return workload
    return None


def _condition(workload: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (workload.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def _is_true(workload: dict[str, Any], kind: str) -> bool:
    condition = _condition(workload, kind)
    return bool(condition) and condition.get("status") == "True"


def _queue_name(workload: dict[str, Any]) -> str:
    return (workload.get("spec") or {}).get("queueName") or ""


def _reserved(workload: dict[str, Any]) -> bool:
    return any(_is_true(workload, kind) for kind in ("QuotaReserved", "Admitted", "Finished"))


def _waiting(workload: dict[str, Any]) -> bool:
    """Pending in its queue: no quota reserved, not finished, not deactivated, not being deleted."""
    if (workload.get("spec") or {}).get("active") is False or (workload.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return not _reserved(workload)


def _order(workload: dict[str, Any]) -> tuple[int, str, str]:
    """Kueue's order within one LocalQueue: higher priority first, then older (creationTimestamp, to the second),
    then, within the same second, by UID (Kueue's own tie-break: not the order the jobs were created in)."""
    metadata = workload.get("metadata") or {}
    return (-int((workload.get("spec") or {}).get("priority") or 0), metadata.get("creationTimestamp") or "",
            metadata.get("uid") or "")


def _why(workload: dict[str, Any]) -> dict[str, Any]:
    """Why a Workload waits: its QuotaReserved condition (Kueue's scheduler writes "couldn't assign flavors ...:
    insufficient unused quota for pods in flavor ..., 1 more needed"), else its Evicted or Requeued reason."""
    for kind in ("QuotaReserved", "Evicted", "Requeued"):
        condition = _condition(workload, kind)
        if condition and condition.get("status") == ("False" if kind == "QuotaReserved" else "True"):
            return {"reason": condition.get("reason"), "message": condition.get("message"),
                    "since": condition.get("lastTransitionTime")}
    return {"reason": "Pending", "message": "waiting for Kueue to consider the job"}
