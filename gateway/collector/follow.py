"""The collector: follows the log of every container of every job the gateway manages and appends it to the
archive, and keeps each instance's record, so both outlive the pods.

One thread lists the jobs' pods every ``poll_seconds`` while this process holds the Lease; one thread per started
container follows its log. A follower resumes from what the store holds (``resume_point``), so a restart of the
collector, a broken stream or a container restart loses and duplicates no line.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any, Callable

from .. import errors
from ..kube import Kube, LogNotAvailable
from ..logs import iter_lines
from .lease import LeaderElector
from ..store.lines import parse_stamped, since_time, unseen
from ..store.records import TERMINAL_PHASES, instance_record, job_of
from ..store import ContainerKey, LogStore

log = logging.getLogger(__name__)

JOB_PODS = "batch.kubernetes.io/job-name"
_BATCH_LINES = 500
_BATCH_SECONDS = 0.5


class Collector:
    def __init__(self, kube: Kube, store: LogStore, elector: LeaderElector, *, namespace_prefix: str,
                 archive_namespace: Callable[[str], str] = lambda namespace: namespace,
                 poll_seconds: float = 1.0, retention_days: int = 30, idle_timeout: float = 60.0,
                 max_line_bytes: int | None = None):
        self._kube = kube
        self._archived_as = archive_namespace
        self._store = store
        self._elector = elector
        self._prefix = namespace_prefix
        self._poll = poll_seconds
        self._retention_days = retention_days
        self._idle_timeout = idle_timeout
        self._max_line_bytes = max_line_bytes  # a line without end must not fill the collector's memory
        # keyed by (real namespace, archive key): the archive's namespace may be region-qualified
        self._followers: dict[tuple[str, ContainerKey], threading.Thread] = {}
        self._done: set[tuple[str, ContainerKey]] = set()
        # (namespace, pod) -> (resourceVersion, record) last stored
        self._records: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._last_prune = 0.0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            if self._elector.try_lead():
                try:
                    self.sweep()
                    self._prune_daily()
                except errors.GatewayError as exc:
                    log.warning("collector sweep failed: %s", exc.description)
            self._stop.wait(self._poll)
        for thread in list(self._followers.values()):
            thread.join(timeout=5)
        self._elector.release()

    def sweep(self) -> None:
        """One pass: store changed instance records and start a follower for each new started container."""
        pods = self._kube.list_pods_all_namespaces(JOB_PODS).get("items") or []
        for pod in pods:
            namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            job = job_of(pod)
            if not namespace.startswith(self._prefix) or not job:
                continue
            version = pod["metadata"].get("resourceVersion", "")
            if self._records.get((namespace, name), ("",))[0] != version:
                record = instance_record(pod)
                self._store.put_instance(self._archived_as(namespace), job, name, record)
                self._records[(namespace, name)] = (version, record)
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                if _has_started(status):
                    self._ensure_follower(namespace, ContainerKey(self._archived_as(namespace), job, name,
                                                                  status["name"]))
        live = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
        for key in [key for key in self._records if key not in live]:
            self._record_deleted(*key, self._records.pop(key)[1])
        self._done = {(ns, key) for ns, key in self._done if (ns, key.instance) in live}
        self._followers = {key: t for key, t in self._followers.items() if t.is_alive()}

    def _record_deleted(self, namespace: str, name: str, record: dict[str, Any]) -> None:
        """A pod that vanished before it finished (its Job was deleted) is finished now, for retention's sake."""
        if record.get("finished"):
            return
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._store.put_instance(self._archived_as(namespace), record["job"], name,
                                 {**record, "finished": now, "deleted": True})

    def _ensure_follower(self, namespace: str, key: ContainerKey) -> None:
        if (namespace, key) in self._done or (namespace, key) in self._followers:
            return
        thread = threading.Thread(target=self._follow, args=(namespace, key), daemon=True,
                                  name=f"follow-{key.instance}/{key.container}")
        self._followers[(namespace, key)] = thread
        thread.start()

    def _follow(self, namespace: str, key: ContainerKey) -> None:
        """Read the container's log until the pod is gone or finished and its stream has ended."""
        while not self._stop.is_set() and self._elector.leading:
            try:
                self._read_stream(namespace, key)
            except LogNotAvailable:
                pass  # not started yet, or between restarts
            except errors.NotFound:
                break
            except errors.GatewayError as exc:
                log.info("log stream of %s/%s broke off: %s", key.instance, key.container, exc.description)
            if self._finished(namespace, key):
                self._read_stream(namespace, key, final=True)
                self._done.add((namespace, key))
                break
            self._stop.wait(self._poll)

    def _read_stream(self, namespace: str, key: ContainerKey, final: bool = False) -> None:
        point = self._store.resume_point(key)
        try:
            with self._kube.pod_log(namespace, key.instance, container=key.container, timestamps=True,
                                    since_time=since_time(point), follow=not final,
                                    idle_timeout=self._idle_timeout) as chunks:
                batch: list = []
                flushed = time.monotonic()
                for line in unseen(parse_stamped(iter_lines(chunks, self._max_line_bytes)), point):
                    batch.append(line)
                    if len(batch) >= _BATCH_LINES or time.monotonic() - flushed >= _BATCH_SECONDS:
                        self._store.append(key, batch)
                        batch, flushed = [], time.monotonic()
                    if self._stop.is_set():
                        break
                if batch:
                    self._store.append(key, batch)
        except (LogNotAvailable, errors.NotFound):
            if not final:
                raise

    def _finished(self, namespace: str, key: ContainerKey) -> bool:
        """True once the pod is gone or finished: its log will not grow any more."""
        try:
            pod = self._kube.get_pod(namespace, key.instance)
        except errors.NotFound:
            return True
        self._store.put_instance(key.namespace, key.job, key.instance, instance_record(pod))
        return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES

    def _prune_daily(self) -> None:
        if time.monotonic() - self._last_prune < 3600:
            return
        self._last_prune = time.monotonic()
        cutoff = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=self._retention_days)
        removed = self._store.prune(cutoff)
        if removed:
            log.info("archive retention: removed %d rows older than %s", removed, cutoff)


def _has_started(status: dict[str, Any]) -> bool:
    state = status.get("state") or {}
    return "running" in state or "terminated" in state or bool(status.get("lastState"))
