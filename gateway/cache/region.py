"""One region's watch cache: the managed Jobs and their pods, LIST then WATCH (``gateway.reflector``), indexed
for the API's reads, with the rules that say when memory may answer (``usable``).

Memory answers a read only when all of these hold; otherwise the read goes to the apiserver, as without a cache:
- both watches have listed once (``synced``);
- neither has been cut off from the apiserver for longer than ``stale_seconds``, and the apiserver was heard
  from (an event, a bookmark, or the prober's ``GET /version`` while the watches are quiet) within that time: a
  hung apiserver whose connections stay open counts as cut off;
- the Jobs watch has reached the newest write any API process of this gateway made (``write_mark``), waiting up to
  ``wait_seconds`` for it, and no delete is in doubt.

Subscribers (a watch stream, say) can wait for changes: ``changes`` counts every event, per namespace too, and
``wait_for_change(namespace, seen, timeout)`` returns the new count once it passes ``seen``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Iterable

from .. import errors
from ..names import MANAGED_BY, MANAGED_BY_LABEL, POD_JOB_NAME_LABELS
from ..reflector import Reflector
from .entries import JobEntry, PodEntry, job_entry, ordered, pod_entry
from .write_mark import WriteMark, version_number

log = logging.getLogger(__name__)

MANAGED = f"{MANAGED_BY_LABEL}={MANAGED_BY}"


class RegionCache:
    def __init__(self, region: str, kube: Any, *, namespace_prefix: str, stale_seconds: float,
                 wait_seconds: float, write_mark: WriteMark | None = None, watch_seconds: int = 300):
        self.region = region
        self._kube = kube
        self._stale = stale_seconds
        self._wait = wait_seconds
        self._mark = write_mark or WriteMark()
        self._cond = threading.Condition()
        self._jobs: dict[str, dict[str, JobEntry]] = {}  # namespace -> name -> Job
        self._pods: dict[tuple[str, str], PodEntry] = {}  # (namespace, pod) -> pod
        self._pods_of: dict[tuple[str, str], set[str]] = {}  # (namespace, job name) -> pod names
        self._jobs_version = 0  # the newest resourceVersion the Job index holds
        self.changes = 0
        self._changes_in: dict[str, int] = {}
        self._probe_ok = 0.0
        self._stop = threading.Event()

        def accept(obj: dict[str, Any]) -> bool:
            metadata = obj.get("metadata") or {}
            return (metadata.get("namespace", "").startswith(namespace_prefix)
                    and (metadata.get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY)

        self.jobs = Reflector(kube, "/apis/batch/v1/jobs", label_selector=MANAGED, accept=accept,
                              transform=job_entry, on_event=self._on_job, on_progress=self._on_jobs_progress,
                              name=f"cache-jobs-{region}", watch_seconds=watch_seconds)
        self.pods = Reflector(kube, "/api/v1/pods", label_selector=MANAGED, accept=accept, transform=pod_entry,
                              on_event=self._on_pod, name=f"cache-pods-{region}", watch_seconds=watch_seconds)

    # -- life --------------------------------------------------------------------------------------------------

    def start(self) -> RegionCache:
        self.jobs.start()
        self.pods.start()
        threading.Thread(target=self._prober, name=f"cache-probe-{self.region}", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.jobs.stop()
        self.pods.stop()

    @property
    def synced(self) -> bool:
        return self.jobs.synced.is_set() and self.pods.synced.is_set()

    def stale(self) -> bool:
        now = time.monotonic()
        for reflector in (self.jobs, self.pods):
            if reflector.broken_since is not None and now - reflector.broken_since >= self._stale:
                return True
        heard = max(self.jobs.last_alive, self.pods.last_alive, self._probe_ok)
        return now - heard >= self._stale

    def _prober(self) -> None:
        """While the watches are quiet, ask the apiserver for its version now and then: a hung apiserver keeps
        a watch's connection open but answers nothing, and only a call shows that."""
        interval = max(0.5, self._stale / 3)
        while not self._stop.wait(interval):
            now = time.monotonic()
            if now - max(self.jobs.last_alive, self.pods.last_alive, self._probe_ok) < interval:
                continue
            try:
                self._kube.version()
            except errors.GatewayError:
                continue
            except Exception:  # noqa: BLE001 - the prober must outlive anything
                log.exception("watch cache %s: probe failed", self.region)
                continue
            self._probe_ok = time.monotonic()

    def usable(self) -> bool:
        """May memory answer a read now (see the module's docstring)? Waits up to ``wait_seconds`` for the
        cache to reach the newest write any API process of this gateway made."""
        if not self.synced or self.stale():
            return False
        mark = self._mark.read()
        if mark is None or mark[1]:
            return False
        version = mark[0]
        if version <= self._jobs_version:
            return True
        with self._cond:
            return self._cond.wait_for(lambda: version <= self._jobs_version, self._wait)

    # -- reads -------------------------------------------------------------------------------------------------

    def job(self, namespace: str, name: str) -> JobEntry | None:
        return self._jobs.get(namespace, {}).get(name)

    def jobs_in(self, namespace: str) -> list[JobEntry]:
        with self._cond:
            return list(self._jobs.get(namespace, {}).values())

    def pods_of(self, job: JobEntry) -> list[PodEntry]:
        """The Job's pods (by its job-name label and its own selector), oldest first."""
        with self._cond:
            names = list(self._pods_of.get((job.namespace, job.name), ()))
            pods = [self._pods.get((job.namespace, name)) for name in names]
        return ordered(pod for pod in pods if pod is not None and pod.selected_by(job.selector))

    def pod(self, namespace: str, name: str) -> PodEntry | None:
        return self._pods.get((namespace, name))

    # -- writes through this process ---------------------------------------------------------------------------

    def created(self, job: dict[str, Any]) -> None:
        """A Job this process created: no process's cache answers before it holds it."""
        version = version_number((job.get("metadata") or {}).get("resourceVersion", ""))
        if version is None:
            self._mark.doubt(self._wait)
        else:
            self._mark.raise_to(version)

    def deleted(self, namespace: str, name: str) -> None:
        """A Job this process deleted: wait (``wait_seconds`` at most) until this cache has seen it go, then no
        process's cache answers before it has too. Not seen in time: every process asks the apiserver a while."""
        if not self.synced:
            self._mark.doubt(self._stale)
            return
        deadline = time.monotonic() + self._wait
        mark = self._mark.read()
        seen = mark[0] if mark is not None else 0
        with self._cond:
            gone = self._cond.wait_for(
                lambda: seen <= self._jobs_version and name not in self._jobs.get(namespace, {}),
                max(0.0, deadline - time.monotonic()))
            version = self._jobs_version
        if gone:
            self._mark.raise_to(version)
        else:
            self._mark.doubt(max(self._stale, self._wait))

    # -- subscribers -------------------------------------------------------------------------------------------

    def wait_for_change(self, namespace: str, seen: int, timeout: float) -> int:
        """The namespace's change count once it passes ``seen`` (or as it is after ``timeout`` seconds)."""
        with self._cond:
            self._cond.wait_for(lambda: self._changes_in.get(namespace, 0) > seen, timeout)
            return self._changes_in.get(namespace, 0)

    # -- the reflectors' handlers (their threads) ---------------------------------------------------------------

    def _changed(self, namespace: str) -> None:
        self.changes += 1
        self._changes_in[namespace] = self._changes_in.get(namespace, 0) + 1
        self._cond.notify_all()

    def _on_job(self, kind: str, job: JobEntry) -> None:
        with self._cond:
            if kind == "DELETED":
                in_namespace = self._jobs.get(job.namespace, {})
                in_namespace.pop(job.name, None)
                if not in_namespace:
                    self._jobs.pop(job.namespace, None)
            else:
                self._jobs.setdefault(job.namespace, {})[job.name] = job
            self._changed(job.namespace)

    def _on_jobs_progress(self, resource_version: str) -> None:
        version = version_number(resource_version)
        if version is not None:
            with self._cond:
                if version > self._jobs_version:
                    self._jobs_version = version
                self._cond.notify_all()

    def _on_pod(self, kind: str, pod: PodEntry) -> None:
        key = (pod.namespace, pod.name)
        with self._cond:
            old = self._pods.pop(key, None)
            if old is not None:
                self._unindex(old)
            if kind != "DELETED":
                self._pods[key] = pod
                for job in _job_names(pod.labels):
                    self._pods_of.setdefault((pod.namespace, job), set()).add(pod.name)
            self._changed(pod.namespace)

    def _unindex(self, pod: PodEntry) -> None:
        for job in _job_names(pod.labels):
            names = self._pods_of.get((pod.namespace, job))
            if names is not None:
                names.discard(pod.name)
                if not names:
                    del self._pods_of[(pod.namespace, job)]


def _job_names(labels: dict[str, str]) -> Iterable[str]:
    return {labels[key] for key in POD_JOB_NAME_LABELS if labels.get(key)}
