"""Who a tenant is, which namespace and archive key are theirs, and the walls around that namespace.

A user's jobs live in one namespace per region (``names.namespace_for``), labelled managed-by tenx-gateway and
annotated with the user's name. Before the first create in a namespace (per process, and again every
``_RECHECK_SECONDS``) the gateway checks that the namespace is that user's — never the gateway's own, never one
made by someone else — and applies its walls (``walls.py``): an upgrade walls old tenants on their next create.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from . import errors, queueing, walls
from .config import Settings
from .kube import Kube
from .manifest import namespace_manifest
from .names import MANAGED_BY, MANAGED_BY_LABEL, USERNAME_ANNOTATION, namespace_for

log = logging.getLogger(__name__)

_RECHECK_SECONDS = 300.0


@dataclass(frozen=True)
class Tenant:
    username: str
    namespace: str
    region: str = ""
    # the namespace's name in the log archive, which is shared by all regions (see archive_namespace)
    archived_as: str = ""

    @classmethod
    def of(cls, username: str, region: str, settings: Settings) -> Tenant:
        namespace = namespace_for(username, settings.namespace_prefix)
        return cls(username, namespace, region, archive_namespace(region, namespace, settings.default_region))

    @property
    def archive(self) -> str:
        return self.archived_as or self.namespace


def archive_namespace(region: str, namespace: str, default_region: str) -> str:
    """Namespaces of the first region keep their name in the archive; others are qualified by region, since two
    clusters can hold namespaces of the same name."""
    return namespace if region == default_region else f"{region}:{namespace}"


def owner_problem(namespace: dict[str, Any], username: str) -> str | None:
    """Why ``namespace`` (as the apiserver returned it) is not ``username``'s to use, or None if it is."""
    metadata = namespace.get("metadata") or {}
    name = metadata.get("name", "?")
    if (metadata.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY:
        return f"namespace {name} exists and is not managed by tenx-gateway"
    owner = (metadata.get("annotations") or {}).get(USERNAME_ANNOTATION)
    if owner != username:
        return (f"namespace {name} belongs to user {owner!r}" if owner
                else f"namespace {name} is tenx-gateway's own, not a user's")
    return None


class TenantWalls:
    """Makes sure a tenant's namespace is theirs and walled before a job is created in it."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._checked: dict[tuple[str, str], float] = {}
        self._apiserver: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def ensure(self, kube: Kube, tenant: Tenant) -> None:
        key = (tenant.region, tenant.namespace)
        if self._checked.get(key, 0.0) > time.monotonic():
            return
        if tenant.namespace == self._settings.namespace:
            raise errors.Forbidden(f"user {tenant.username!r} maps to the gateway's own namespace; ask the "
                                   "operator for another user name")
        namespace = self._namespace(kube, tenant)
        problem = owner_problem(namespace, tenant.username)
        if problem:
            log.warning("refused a create for user %s: %s", tenant.username, problem)
            raise errors.Forbidden(f"{problem}; ask the operator")
        denied = walls.egress_denied(self._settings.tenant_egress_deny, self._apiserver_addresses(kube, tenant))
        for manifest in walls.tenant_walls(tenant.namespace, self._settings, denied):
            kube.apply(manifest)
        if self._settings.queue:
            queueing.ensure_local_queue(kube, tenant.namespace, self._settings.queue_cluster_queue)
        with self._lock:
            self._checked[key] = time.monotonic() + _RECHECK_SECONDS

    def forget(self, tenant: Tenant) -> None:
        """The namespace vanished (deleted by the operator): check and wall it again on the next create."""
        with self._lock:
            self._checked.pop((tenant.region, tenant.namespace), None)

    def _namespace(self, kube: Kube, tenant: Tenant) -> dict[str, Any]:
        try:
            return kube.get_namespace(tenant.namespace)
        except errors.NotFound:
            kube.create_namespace(namespace_manifest(tenant.namespace, tenant.username))
            return kube.get_namespace(tenant.namespace)  # ours, or a concurrent creator's: checked the same way

    def _apiserver_addresses(self, kube: Kube, tenant: Tenant) -> list[str]:
        """The Kubernetes API's IP addresses as pods reach it: the service address, its endpoints (NetworkPolicy
        is mostly judged after the service address is translated), and the configured server if it is an IP."""
        if tenant.region in self._apiserver:
            return self._apiserver[tenant.region]
        found = set()
        for host in (os.environ.get("KUBERNETES_SERVICE_HOST", ""), urlparse(kube.server).hostname or ""):
            if _is_ip(host):
                found.add(host)
        try:
            endpoints = kube.get_endpoints("default", "kubernetes")
        except errors.GatewayError as exc:
            log.warning("cannot read the kubernetes endpoints to block tenants' egress to the API: %s",
                        exc.description)
        else:
            for subset in endpoints.get("subsets") or []:
                found.update(a["ip"] for a in subset.get("addresses") or [] if _is_ip(a.get("ip", "")))
        self._apiserver[tenant.region] = sorted(found)
        return self._apiserver[tenant.region]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def held_back(kube: Kube, job: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Why a running Job has fewer pods than it asks for, from the Job controller's latest FailedCreate event
    (an exceeded quota, a LimitRange or admission refusal); None when nothing holds it back."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    finished = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in status.get("conditions") or [])
    if finished or spec.get("suspend"):
        return None
    running = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    parallelism = 1 if spec.get("parallelism") is None else spec["parallelism"]
    remaining = max((spec.get("completions") or 1) - (status.get("succeeded") or 0), 0)
    wanted = min(parallelism, remaining)
    if len(running) >= wanted:
        return None
    metadata = job.get("metadata") or {}
    try:
        events = kube.list_events(metadata.get("namespace", ""),
                                  f"involvedObject.uid={metadata.get('uid', '')},reason=FailedCreate")
    except errors.GatewayError:
        return None  # the reason is a courtesy: never fail the read over it
    latest = max(events.get("items") or [], key=_event_time, default=None)
    if latest is None:
        return None
    message = latest.get("message", "")
    return {"reason": "ExceededQuota" if "exceeded quota" in message else "FailedCreate", "message": message,
            "since": _event_time(latest)}


def _event_time(event: dict[str, Any]) -> str:
    return event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get(
        "creationTimestamp") or ""
