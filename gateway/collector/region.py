"""One region's collector: a pod reflector feeds instance records and container followers, while the Lease says
this process leads.

Threads: the reflector (LIST once, then WATCH), the Lease's renewal, this loop (records, follower hand-out,
resync from the local copy, heartbeat, daily prune), a flusher for quiet streams, and the follower pool. The
loop is supervised by ``run``: an exception restarts it after a capped backoff.

Pods are selected by the apiserver with ``app.kubernetes.io/managed-by=tenx-gateway`` (set on every pod template
the gateway builds). Pods of jobs created before that label existed lack it: a second reflector selects
``job-name,!app.kubernetes.io/managed-by`` (the legacy key, which every Kubernetes version sets), keeps those in
the gateway's namespaces, and stops for good once none is left, so a cluster without legacy pods pays one LIST at
start-up and nothing after.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .. import errors, timefmt
from ..kube.client import Kube, LogNotAvailable
from ..logs.text import iter_lines
from ..names import MANAGED_BY, MANAGED_BY_LABEL
from ..kube.reflector import Backoff, Reflector, key_of
from ..store import ContainerKey, Deposed, LogStore, StreamMoved
from ..logs.stamps import parse_stamped, since_time, unseen
from ..store.records import TERMINAL_PHASES, job_of
from . import metrics
from .followers import AGAIN, Batch, Pool
from .lease import LeaderElector
from .records import Records
from .skips import SkipDetector
from .writer import Writer

log = logging.getLogger(__name__)

MANAGED_PODS = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
LEGACY_PODS = f"job-name,!{MANAGED_BY_LABEL}"
RESYNC_SECONDS = 30.0
HEARTBEAT_SECONDS = 5.0


class LeadershipLost(Exception):
    """This process's own check, before a write: its Lease renewal is too old (or another leads)."""


@dataclass(frozen=True)
class Stream:
    """A container to follow: its pod's real namespace, and its key in the archive (maybe region-qualified)."""
    namespace: str
    key: ContainerKey


@dataclass
class Options:
    namespace_prefix: str = "tenx-"
    retention_days: int = 30
    idle_timeout: float = 60.0  # a followed stream silent this long is reopened
    max_line_bytes: int | None = None  # a line without end must not fill the collector's memory
    max_streams: int = 2000
    slice_seconds: float = 30.0  # while containers wait for a slot, a follower hands its slot on after this
    flush_seconds: float = 0.5
    poll_seconds: float = 1.0


class RegionCollector:
    def __init__(self, region: str, kube: Kube, store: LogStore, elector: LeaderElector, options: Options, *,
                 archive_namespace: Callable[[str], str] = lambda namespace: namespace):
        self.region = region
        self._kube, self._store, self._elector, self._options = kube, store, elector, options
        self._archived_as = archive_namespace
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._dirty: dict[tuple[str, str], dict[str, Any]] = {}  # pods changed since the loop last looked
        self._gone: dict[tuple[str, str], dict[str, Any]] = {}  # pods deleted since then
        self._dirty_lock = threading.Lock()
        self._records = Records(store, archive_namespace)
        self._writer = Writer(store, region)
        self._done: set[Stream] = set()  # followed to the end; forgotten when the pod goes
        self._done_lock = threading.Lock()
        self._batches: dict[Stream, Batch] = {}
        self._batches_lock = threading.Lock()
        accept = lambda pod: pod["metadata"].get("namespace", "").startswith(options.namespace_prefix)  # noqa: E731
        self.pods = Reflector(kube, "/api/v1/pods", label_selector=MANAGED_PODS, on_event=self._on_pod,
                              accept=accept, name=f"pods-{region}")
        self.legacy = Reflector(kube, "/api/v1/pods", label_selector=LEGACY_PODS, on_event=self._on_legacy_pod,
                                accept=accept, name=f"legacy-pods-{region}")
        self.pool = Pool(self._follow, cap=options.max_streams, name=f"follow-{region}",
                         on_error=lambda key, exc: metrics.ERRORS.labels(region, "stream").inc())
        metrics.init(region)
        self.loop_started = 0.0  # monotonic time the loop last completed a round: /healthz reads it
        self.restarts = 0

    # -- reflector events (reflector threads: quick, hand over to the loop) -----------------------------------

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        key = key_of(pod)
        with self._dirty_lock:
            if kind == "DELETED":
                self._dirty.pop(key, None)
                self._gone[key] = pod
            else:
                self._dirty[key] = pod
        self._wake.set()

    def _on_legacy_pod(self, kind: str, pod: dict[str, Any]) -> None:
        self._on_pod(kind, pod)

    def _pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pods.get(namespace, name) or self.legacy.get(namespace, name)

    # -- the loop ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.pods.start()
        self.legacy.start()
        threading.Thread(target=self._flusher, name=f"flush-{self.region}", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.pods.stop()
        self.legacy.stop()
        self.pool.close()

    def run(self) -> None:
        """The supervised loop: restarted after a failure, with capped exponential backoff."""
        backoff = Backoff(first=1.0, cap=60.0)
        while not self._stop.is_set():
            try:
                self._loop()
            except Exception:  # noqa: BLE001 - the supervisor's job is to outlive it
                self.restarts += 1
                metrics.ERRORS.labels(self.region, "loop").inc()
                delay = backoff.next()
                log.exception("collector loop of region %s failed; restarting in %.1f s", self.region, delay)
                self._stop.wait(delay)
            else:
                backoff.reset()

    def _loop(self) -> None:
        token = None
        last_resync = last_beat = last_prune = 0.0
        while not self._stop.is_set():
            self.loop_started = time.monotonic()
            now = time.monotonic()
            current = self._elector.token
            metrics.LEADER.labels(self.region).set(1 if current is not None else 0)
            metrics.STREAMS.labels(self.region).set(self.pool.running)
            metrics.QUEUED.labels(self.region).set(self.pool.queued)
            metrics.PODS.labels(self.region).set(len(self.pods) + len(self.legacy))
            metrics.LISTS.labels(self.region).set(self.pods.lists + self.legacy.lists)
            if self.legacy.synced.is_set() and len(self.legacy) == 0 and self.legacy.alive:
                self.legacy.stop()  # no pod without the managed-by label is left, and none can appear
            if current is not None:
                if current != token or now - last_resync >= RESYNC_SECONDS:
                    self._resync(records=current != token)
                    token, last_resync = current, now
                self._handle_changes()
                if now - last_beat >= HEARTBEAT_SECONDS:
                    self._store.heartbeat(self.region, self._elector.identity, self._writer.take_lag())
                    last_beat = now
                if now - last_prune >= 3600:
                    self._prune()
                    last_prune = now
            else:
                token = None
            self._wake.wait(self._options.poll_seconds)
            self._wake.clear()

    def _resync(self, records: bool) -> None:
        """Everything in the local copy, as if it had just changed (no apiserver call): on new leadership (then
        every record is written again too), and periodically as a safety net for a follower that gave up."""
        pods = self.pods.snapshot() + self.legacy.snapshot()
        with self._dirty_lock:
            for pod in pods:
                self._dirty.setdefault(key_of(pod), pod)
        live = {key_of(pod) for pod in pods}
        with self._done_lock:
            self._done = {s for s in self._done if (s.namespace, s.key.instance) in live}
        if records:
            self._records.forget_all()

    def _handle_changes(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, {}
            gone, self._gone = self._gone, {}
        for key, pod in gone.items():
            self._guarded("records", self._records.deleted, pod)
            with self._done_lock:
                self._done = {s for s in self._done if (s.namespace, s.key.instance) != key}
            # its running followers see it gone and end after a last read
        for key, pod in dirty.items():
            self._guarded("records", self._records.changed, pod)
            self._start_followers(pod)

    def _guarded(self, where: str, action: Callable[..., Any], *args: Any) -> bool:
        try:
            action(*args)
            return True
        except Exception:  # noqa: BLE001 - one pod's failure must not stop the others
            metrics.ERRORS.labels(self.region, where).inc()
            log.exception("collector (%s): %s failed", self.region, where)
            return False

    def _start_followers(self, pod: dict[str, Any]) -> None:
        job = job_of(pod)
        if not job:
            return
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if _has_started(status):
                stream = Stream(namespace, ContainerKey(self._archived_as(namespace), job, name, status["name"]))
                with self._done_lock:
                    done = stream in self._done
                if not done:
                    self.pool.submit(stream)

    def _prune(self) -> None:
        cutoff = timefmt.now().date() - dt.timedelta(days=self._options.retention_days)
        removed = self._store.prune(cutoff)
        if removed:
            log.info("archive retention: removed %d rows older than %s", removed, cutoff)

    # -- followers (pool threads) -----------------------------------------------------------------------------

    def _follow(self, stream: Stream) -> str | None:
        """Archive a container's log until it ends for good, leadership is lost, or the slot is needed."""
        token = self._elector.token
        if token is None:
            return None  # the next leadership's resync brings it back
        began = time.monotonic()
        while not self._stop.is_set() and (self._elector.valid(token)
                                           or self._elector.wait_renewed(token, self._stop)):
            pod = self._pod(stream.namespace, stream.key.instance)
            final = pod is None or (pod.get("status") or {}).get("phase") in TERMINAL_PHASES
            try:
                self._read_attempts(stream, pod, token, follow=not final)
            except (LogNotAvailable, errors.NotFound):
                final = final or pod is None
            except StreamMoved:
                continue  # someone else appended (an old leader, resumed): read the resume point again
            except LeadershipLost:
                if self._elector.wait_renewed(token, self._stop):
                    continue  # the renewal was late, not lost: resume from what the store holds
                log.info("collector (%s): leadership lost; stopped following %s", self.region, stream.key)
                return None
            except Deposed:
                metrics.FENCED.labels(self.region).inc()
                log.warning("collector (%s): a newer leader holds %s; stopping", self.region, stream.key)
                return None
            except errors.GatewayError as exc:
                log.info("log stream of %s/%s broke off: %s", stream.key.instance, stream.key.container,
                         exc.description)
                self._stop.wait(self._options.poll_seconds)
                continue
            if final:
                with self._done_lock:
                    self._done.add(stream)
                return None
            status = _status(self._pod(stream.namespace, stream.key.instance), stream.key.container)
            if status is None or "running" not in (status.get("state") or {}):
                return None  # stopped or restarting: the pod's next event brings the follower back
            if self.pool.crowded() and time.monotonic() - began >= self._options.slice_seconds:
                return AGAIN
            self._stop.wait(min(self._options.poll_seconds, 0.2))  # ended while running: the cache lags a little
        return None

    def _read_attempts(self, stream: Stream, pod: dict[str, Any] | None, token: int, follow: bool) -> None:
        """The previous attempt's tail if the container restarted since the last stored line, then the current."""
        point = self._store.resume_point(stream.key)
        status = _status(pod, stream.key.container)
        restarts = (status or {}).get("restartCount", 0)
        if pod is not None and restarts > 0 and (point.attempt is None or point.attempt < restarts):
            try:
                self._read(stream, token, previous=True, attempt=restarts - 1, follow=False)
            except LogNotAvailable:
                pass  # the kubelet keeps one previous attempt only
        self._read(stream, token, previous=False, attempt=restarts, follow=follow)

    def _read(self, stream: Stream, token: int, *, previous: bool, attempt: int, follow: bool) -> None:
        point = self._store.resume_point(stream.key)
        expect = [point.next_seq]

        def append(lines: list) -> None:
            if not self._elector.valid(token):
                raise LeadershipLost()
            expect[0] = self._writer.append(stream.key, lines, attempt=attempt, fence=token,
                                            expect_next=expect[0])

        batch = Batch(append, max_wait=self._options.flush_seconds)
        with self._batches_lock:
            self._batches[stream] = batch
        try:
            with self._kube.pod_log(stream.namespace, stream.key.instance, container=stream.key.container,
                                    timestamps=True, since_time=since_time(point), previous=previous, follow=follow,
                                    idle_timeout=self._options.idle_timeout) as chunks:
                skips = SkipDetector()
                for line in unseen(parse_stamped(iter_lines(chunks, self._options.max_line_bytes)), point):
                    marker = skips.check(line, time.time())
                    if marker is not None:
                        batch.add(marker)
                    batch.add(line)
                    if self._stop.is_set():
                        break
            batch.flush()
        finally:
            with self._batches_lock:
                self._batches.pop(stream, None)
            with contextlib.suppress(Exception):
                batch.flush_if_due()

    def _flusher(self) -> None:
        while not self._stop.wait(self._options.flush_seconds / 2):
            with self._batches_lock:
                batches = list(self._batches.values())
            for batch in batches:
                batch.flush_if_due()


def _status(pod: dict[str, Any] | None, container: str) -> dict[str, Any] | None:
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return status
    return None


def _has_started(status: dict[str, Any]) -> bool:
    state = status.get("state") or {}
    return "running" in state or "terminated" in state or bool(status.get("lastState"))
