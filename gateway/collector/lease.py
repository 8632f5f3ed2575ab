"""Leader election on a coordination.k8s.io Lease, so that of several collectors exactly one writes
(client-go's ``tools/leaderelection``, with a fencing token).

- Renewal runs in its own thread, every ``duration / 5`` seconds, whatever the rest of the collector is doing.
- Expiry is judged by when *this* process observed the record last change (monotonic clock), never by the
  holder's ``renewTime``: clocks of two hosts need not agree.
- A leader trusts itself only for ``2/3 * duration`` after a renewal *started*; a contender waits a full
  ``duration`` after it saw the last change, so the old leader has stopped (``valid``) before anyone takes over,
  unless it was frozen; then the store's fencing check refuses its writes.
- The token is the Lease's ``leaseTransitions`` after this process acquired it: every new leader's is larger.
  A Lease created afresh (deleted by someone) starts above the largest token the store has seen.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from typing import Any, Callable

from .. import errors, timefmt
from ..kube.client import Kube

log = logging.getLogger(__name__)


class LeaderElector:
    def __init__(self, kube: Kube, namespace: str, name: str, *, duration: float = 15,
                 identity: str | None = None, fence_floor: Callable[[], int] = lambda: 0,
                 monotonic: Callable[[], float] = time.monotonic):
        self._kube = kube
        self._namespace, self._name = namespace, name
        self.duration = duration
        self.renew_deadline = duration * 2 / 3
        self.retry_period = duration / 5
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._fence_floor = fence_floor
        self._monotonic = monotonic
        self._token: int | None = None
        self._renewed_at = float("-inf")
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.changed = threading.Condition()  # notified when leadership is gained or lost
        self.transitions = 0  # times this process became leader (a metric)

    # -- what the workers ask ----------------------------------------------------------------------------

    @property
    def token(self) -> int | None:
        """The fencing token while this process leads and its last renewal is recent enough; else None."""
        token = self._token
        if token is not None and self._monotonic() - self._renewed_at < self.renew_deadline:
            return token
        return None

    def valid(self, token: int) -> bool:
        """Whether work started under ``token`` may still write."""
        return self.token == token

    @property
    def leading(self) -> bool:
        return self.token is not None

    def wait_renewed(self, token: int, stop: threading.Event) -> bool:
        """After ``valid(token)`` failed: wait while this process still holds ``token`` but its renewal is late
        (a loaded machine, a slow apiserver), up to one lease duration; True if ``token`` became valid again."""
        deadline = self._monotonic() + self.duration
        while self._token == token and self._monotonic() < deadline and not stop.is_set():
            if self.valid(token):
                return True
            stop.wait(0.2)
        return self.valid(token)

    # -- the renewal thread ------------------------------------------------------------------------------

    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self.run, name=f"lease-{self._name}", daemon=True)
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.try_lead()
            except Exception:  # noqa: BLE001 - renewal must go on whatever one round did
                log.exception("lease %s/%s: renewal round failed", self._namespace, self._name)
                self._set(None)
            self._stop.wait(self.retry_period)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.duration)
        self.release()

    def try_lead(self) -> bool:
        started = self._monotonic()
        try:
            token = self._acquire_or_renew(started)
        except errors.Conflict:
            token = None  # another collector wrote first; it leads
        except errors.GatewayError as exc:
            log.warning("lease %s/%s: %s", self._namespace, self._name, exc.description)
            if self._token is not None and started - self._renewed_at < self.renew_deadline:
                return True  # a failed renewal: still ours until the deadline, then `token` says None
            token = None
        if token is not None:
            self._renewed_at = started
        self._set(token)
        return token is not None

    def _set(self, token: int | None) -> None:
        if token != self._token:
            if token is not None:
                self.transitions += 1
                log.info("lease %s/%s: leading as %s (token %d)", self._namespace, self._name, self.identity, token)
            else:
                log.warning("lease %s/%s: not leading any more", self._namespace, self._name)
            self._token = token
            with self.changed:
                self.changed.notify_all()

    def _spec(self, transitions: int, acquired: str) -> dict[str, Any]:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(round(self.duration)),
                "acquireTime": acquired, "renewTime": timefmt.rfc3339_micro(timefmt.now()),
                "leaseTransitions": transitions}

    def _acquire_or_renew(self, now: float) -> int | None:
        try:
            lease = self._kube.get_lease(self._namespace, self._name)
        except errors.NotFound:
            transitions = self._fence_floor() + 1
            self._kube.create_lease(self._namespace, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self._name, "namespace": self._namespace},
                "spec": self._spec(transitions, timefmt.rfc3339_micro(timefmt.now()))})
            return transitions
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = spec.get("leaseDurationSeconds") or self.duration
        if holder and holder != self.identity and now - self._observed_at < duration:
            return None
        transitions = spec.get("leaseTransitions") or 0
        if holder != self.identity or self._token is None:
            transitions = max(transitions + 1, self._fence_floor() + 1)
            acquired = timefmt.rfc3339_micro(timefmt.now())
        else:
            acquired = spec.get("acquireTime") or timefmt.rfc3339_micro(timefmt.now())
        lease["spec"] = self._spec(transitions, acquired)
        self._kube.replace_lease(self._namespace, self._name, lease)
        return transitions

    def release(self) -> None:
        """Give the Lease up at shutdown, so a successor need not wait for it to expire."""
        if self._token is None:
            return
        self._set(None)
        try:
            lease = self._kube.get_lease(self._namespace, self._name)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["renewTime"] = None
                self._kube.replace_lease(self._namespace, self._name, lease)
        except errors.GatewayError:
            pass
