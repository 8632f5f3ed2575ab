"""Leader election on a coordination.k8s.io Lease, so that of several collectors exactly one writes."""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
from typing import Any, Callable

from .. import errors
from ..kube import Kube

log = logging.getLogger(__name__)
UTC = dt.timezone.utc


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _micro_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(stamp) if stamp else None


class LeaderElector:
    """Holds the Lease while ``try_lead()`` is called more often than ``duration`` seconds.

    A holder that stops renewing loses the Lease once ``duration`` has passed since its last renewal; every write
    carries the resourceVersion read just before, so two contenders can never both believe they won.
    """

    def __init__(self, kube: Kube, namespace: str, name: str, *, duration: int = 15,
                 identity: str | None = None, clock: Callable[[], dt.datetime] = _now):
        self._kube = kube
        self._namespace = namespace
        self._name = name
        self._duration = duration
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._clock = clock
        self.leading = False

    def try_lead(self) -> bool:
        try:
            self.leading = self._acquire_or_renew()
        except errors.Conflict:
            self.leading = False  # another collector wrote first; it leads
        except errors.GatewayError as exc:
            log.warning("lease %s/%s: %s", self._namespace, self._name, exc.description)
            self.leading = False
        return self.leading

    def _spec(self, now: dt.datetime, transitions: int, acquired: dt.datetime) -> dict[str, Any]:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": self._duration,
                "acquireTime": _micro_time(acquired), "renewTime": _micro_time(now),
                "leaseTransitions": transitions}

    def _acquire_or_renew(self) -> bool:
        now = self._clock()
        try:
            lease = self._kube.get_lease(self._namespace, self._name)
        except errors.NotFound:
            self._kube.create_lease(self._namespace, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self._name, "namespace": self._namespace},
                "spec": self._spec(now, 0, now)})
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds") or self._duration
        expired = renewed is None or renewed + dt.timedelta(seconds=duration) < now
        if holder != self.identity and holder and not expired:
            return False
        transitions = spec.get("leaseTransitions", 0) + (0 if holder == self.identity else 1)
        acquired = _parse(spec.get("acquireTime")) if holder == self.identity else now
        lease["spec"] = self._spec(now, transitions, acquired or now)
        self._kube.replace_lease(self._namespace, self._name, lease)
        return True

    def release(self) -> None:
        """Give the Lease up at shutdown, so a successor need not wait for it to expire."""
        if not self.leading:
            return
        try:
            lease = self._kube.get_lease(self._namespace, self._name)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["renewTime"] = None
                self._kube.replace_lease(self._namespace, self._name, lease)
        except errors.GatewayError:
            pass
        self.leading = False
