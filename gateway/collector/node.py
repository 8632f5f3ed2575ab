"""The node collector (``tenx-gateway collect --node NAME``): archives the logs of the gateway's pods on one node
from the files the kubelet keeps, and their instance records; one per node (a DaemonSet), no Lease.

Why from the node: every log byte then stays off the apiserver, the collectors scale with the nodes, and the node is
the single writer of its containers' lines, so it numbers them densely with no cluster-wide election. Why nothing is
lost: each file is held open from the moment it is seen, so rotation and the pod's removal cannot take it away
unread, and the position in the files is committed with the lines (see ``tail``).

Two threads besides the pod reflector:
- the reader takes the containers in turn, each at most ``turn_bytes`` of its files per turn and only while its
  own and its namespace's rate allow (``rate.Bucket``): one container's flood never delays another's lines by more
  than a turn, and a flood over its rate waits in the node's files (backpressure), never dropped;
- the writer appends the reader's batches (the one writer path, ``writer.Writer``), all that are queued in one round,
  the containers with the fewest lines first, each container's in order; a full queue stops the reader, which is
  the backpressure of a slow archive.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .. import errors, timefmt
from ..names import MANAGED_BY, MANAGED_BY_LABEL
from ..kube.reflector import Backoff, Reflector, key_of
from ..store import ContainerKey, LogStore, StreamMoved
from ..store.records import TERMINAL_PHASES, job_of
from ..timefmt import NS, parse_rfc3339
from . import metrics
from .rate import Bucket
from .records import Records
from .tail import Batch, ContainerTail
from .writer import Writer, lost_marker

log = logging.getLogger(__name__)

MANAGED_PODS = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
HEARTBEAT_SECONDS = 5.0
PRUNE_SECONDS = 3600.0


@dataclass
class NodeOptions:
    pod_logs_dir: str = "/var/log/pods"
    namespace_prefix: str = "tenx-"
    retention_days: int = 30
    max_line_bytes: int | None = None
    container_lines_per_second: float = 50_000
    namespace_lines_per_second: float = 100_000
    turn_bytes: int = 256 * 1024
    poll_seconds: float = 0.1  # a round that found nothing new waits this long
    # Batches read and not yet written: the longest a neighbour's lines can wait behind a flood's, about
    # queue_batches * turn_bytes of lines (1 MiB: ~0.5 s at 20,000 lines/s), and the writer's largest round.
    queue_batches: int = 4


@dataclass(frozen=True)
class Record:
    """A record write, queued behind the lines read before it."""
    pod: dict[str, Any]
    deleted: bool


class NodeCollector:
    def __init__(self, region: str, node: str, kube: Any, store: LogStore, options: NodeOptions, *,
                 archive_namespace: Callable[[str], str] = lambda namespace: namespace):
        self.region, self.node = region, node
        self.identity = f"{region}/node/{node}"  # its heartbeat's key in the archive
        self._store, self._options = store, options
        self._archived_as = archive_namespace
        self._writer = Writer(store, region)
        self._records = Records(store, archive_namespace)
        self._stop = threading.Event()
        self._wake = threading.Event()  # a pod changed, or stop: the reader's idle wait ends early
        self._changes: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._changes_lock = threading.Lock()
        self._tails: dict[tuple[str, str, str], ContainerTail] = {}  # (namespace, pod uid, container)
        self._done: set[tuple[str, str, str]] = set()  # read to their end; forgotten when their pod goes
        self._namespaces: dict[str, Bucket] = {}
        self._containers: dict[tuple[str, str, str], Bucket] = {}
        self._queue: queue.Queue = queue.Queue(options.queue_batches)
        accept = lambda pod: pod["metadata"].get("namespace", "").startswith(options.namespace_prefix)  # noqa: E731
        self.pods = Reflector(kube, "/api/v1/pods", label_selector=MANAGED_PODS,
                              field_selector=f"spec.nodeName={node}", on_event=self._on_pod, accept=accept,
                              name=f"pods-{node}")
        self.reader = threading.Thread(target=self._supervised, args=(self._read_loop, "reader"),
                                       name=f"read-{node}", daemon=True)
        self.writer = threading.Thread(target=self._supervised, args=(self._write_loop, "writer"),
                                       name=f"write-{node}", daemon=True)
        self.loop_started = 0.0  # monotonic time the reader last came round: /healthz reads it
        metrics.init(region)

    # -- life -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.pods.start()
        self.reader.start()
        self.writer.start()

    def stop(self) -> None:
        """Stop reading, let the writer commit what was read, then stop."""
        self._stop.set()
        self._wake.set()
        self.pods.stop()
        self.reader.join(10)
        self._queue.put(None)
        self.writer.join(30)
        for tail in self._tails.values():
            tail.close()

    @property
    def alive(self) -> bool:
        return self.reader.is_alive() and self.writer.is_alive() and self.pods.alive

    def _supervised(self, loop: Callable[[], None], name: str) -> None:
        backoff = Backoff(first=1.0, cap=30.0)
        while not self._stop.is_set():
            try:
                loop()
                return
            except Exception:  # noqa: BLE001 - the loop must outlive a bug in one round
                metrics.ERRORS.labels(self.region, "loop").inc()
                delay = backoff.next()
                log.exception("node collector %s: the %s failed; restarting it in %.1f s", self.node, name, delay)
                self._stop.wait(delay)

    # -- pod events (reflector thread) ------------------------------------------------------------------------

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        with self._changes_lock:
            self._changes[key_of(pod)] = (kind, pod)
        self._wake.set()  # a new container is read, and a finished pod's record archived, without waiting a poll

    # -- the reader -------------------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        last_beat = last_prune = 0.0
        while not self._stop.is_set():
            self.loop_started = now = time.monotonic()
            self._wake.clear()  # before taking the changes: one that comes after them wakes the next wait
            self._apply_changes()
            busy = self._round()
            if now - last_beat >= HEARTBEAT_SECONDS:
                self._beat()
                last_beat = now
            if now - last_prune >= PRUNE_SECONDS and self.pods.synced.is_set():
                last_prune = now
                self._put(("prune", None))
            if not busy:
                self._wake.wait(self._options.poll_seconds)

    def _apply_changes(self) -> None:
        with self._changes_lock:
            changes, self._changes = self._changes, {}
        for kind, pod in changes.values():
            self._put(Record(pod, deleted=kind == "DELETED"))
            self._follow(pod, gone=kind == "DELETED")

    def _follow(self, pod: dict[str, Any], *, gone: bool) -> None:
        """Tails for the pod's started containers, told what the pod says of them now."""
        job = job_of(pod)
        if not job:
            return
        metadata, status = pod["metadata"], pod.get("status") or {}
        namespace, name, uid = metadata["namespace"], metadata["name"], metadata.get("uid", "")
        pod_over = gone or status.get("phase") in TERMINAL_PHASES
        statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
        directory = os.path.join(self._options.pod_logs_dir, f"{namespace}_{name}_{uid}")
        for container in (pod.get("spec") or {}).get("containers") or []:
            cname = container["name"]
            key = (namespace, uid, cname)
            if gone:
                self._done.discard(key)
            tail = self._tails.get(key)
            cstatus = statuses.get(cname) or {}
            if tail is None:
                if gone or not _started(cstatus) or key in self._done:
                    continue
                tail = self._tails[key] = ContainerTail(
                    ContainerKey(self._archived_as(namespace), job, name, cname), os.path.join(directory, cname),
                    max_line_bytes=self._options.max_line_bytes)
            state = tail.state
            state.restarts = cstatus.get("restartCount", state.restarts)
            state.terminated = "terminated" in (cstatus.get("state") or {})
            state.pod_over = state.pod_over or pod_over
            running = (cstatus.get("state") or {}).get("running") or (cstatus.get("state") or {}).get("terminated")
            started = parse_rfc3339((running or {}).get("startedAt"))
            if started is not None:
                state.started_ns = int(started.timestamp()) * NS

    def _round(self) -> bool:
        """Each container's turn; True if any read something."""
        busy = False
        for key, tail in list(self._tails.items()):
            if self._stop.is_set():
                break
            if not tail.loaded:
                tail.load(self._store.resume_point(tail.key))
            own = self._containers.get(key)
            if own is None:
                own = self._containers[key] = Bucket(self._options.container_lines_per_second)
            shared = self._namespaces.get(key[0])
            if shared is None:
                shared = self._namespaces[key[0]] = Bucket(self._options.namespace_lines_per_second)
            if own.available() <= 0 or shared.available() <= 0:
                metrics.HELD_BACK.labels(self.region).inc()
                continue
            try:
                batch = tail.read(self._options.turn_bytes)
            except OSError:  # one container's files failing must not stop the others: start it over
                metrics.ERRORS.labels(self.region, "stream").inc()
                log.exception("node collector %s: reading %s failed; reading it again from the archive's "
                              "position", self.node, tail.key)
                tail.close()
                tail.reset_requested = True
                continue
            if batch is not None:
                own.take(len(batch.lines))
                shared.take(len(batch.lines))
                self._put(batch)
                busy = True
            if tail.finished:
                if tail.gone_unread:
                    self._put_lost(tail)
                tail.close()
                del self._tails[key]
                self._containers.pop(key, None)
                self._done.add(key)  # until its pod is deleted: a later event must not start it over
        live = {key[0] for key in self._tails}
        for namespace in [n for n in self._namespaces if n not in live]:
            del self._namespaces[namespace]
        return busy

    def _put_lost(self, tail: ContainerTail) -> None:
        marker = lost_marker(tail.state.started_ns or time.time_ns(), None,
                             "the node deleted the container's log before the collector read any of it")
        self._put(Batch(tail, tail.generation, [marker], tail.state.restarts,
                        {"v": 1, "attempt": tail.state.restarts + 1, "file": None, "offset": 0}))

    def _put(self, item: Any) -> None:
        """Queue for the writer; waits while it is full (the archive is slower than the files)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _beat(self) -> None:
        metrics.PODS.labels(self.region).set(len(self.pods))
        metrics.STREAMS.labels(self.region).set(len(self._tails))
        metrics.LISTS.labels(self.region).set(self.pods.lists)
        metrics.BACKLOG.labels(self.region).set(sum(t.backlog() for t in list(self._tails.values())))
        self._put(("beat", None))

    # -- the writer -------------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            items = [item]
            while len(items) < 64:  # whatever else is ready goes in the same round
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._write_all(items)
                    return
                items.append(more)
            self._write_all(items)

    def _write_all(self, items: list[Any]) -> None:
        for item in _fair_order(_merged(items)):
            self._write(item)

    def _write(self, item: Any) -> None:
        backoff = Backoff(first=0.5, cap=15.0)
        while True:
            try:
                self._write_once(item)
                return
            except errors.GatewayError as exc:
                delay = backoff.next()
                log.warning("node collector %s: archive write failed (%s); retrying in %.1f s", self.node,
                            exc.description, delay)
            except Exception:  # noqa: BLE001 - an archive that is down: the same write again, in order
                delay = backoff.next()
                metrics.ERRORS.labels(self.region, "write").inc()
                log.exception("node collector %s: archive write failed; retrying in %.1f s", self.node, delay)
            if self._stop.wait(delay) and isinstance(item, tuple):
                return

    def _write_once(self, item: Any) -> None:
        if isinstance(item, Batch):
            tail = item.tail
            if item.generation != tail.generation or tail.reset_requested:
                return  # read before a reset: the reader reads it again from the committed position
            try:
                tail.committed_next = self._writer.append(tail.key, item.lines, attempt=item.attempt,
                                                          expect_next=tail.committed_next, position=item.position)
            except StreamMoved:
                log.warning("node collector %s: %s was appended to by another writer; reading on from what "
                            "the archive holds", self.node, tail.key)
                tail.reset_requested = True
        elif isinstance(item, Record):
            (self._records.deleted if item.deleted else self._records.changed)(item.pod)
        elif item[0] == "beat":
            self._store.heartbeat(self.identity, self.node, self._writer.take_lag())
        elif item[0] == "prune":
            self._prune()

    def _prune(self) -> None:
        """Retention, by one node collector a region: the one whose node sorts first among those alive."""
        alive = sorted(key for key, (age, _) in self._store.heartbeats().items()
                       if key.startswith(f"{self.region}/node/") and age < 3 * HEARTBEAT_SECONDS)
        if alive and alive[0] != self.identity:
            return
        cutoff = timefmt.now().date() - dt.timedelta(days=self._options.retention_days)
        removed = self._store.prune(cutoff)
        if removed:
            log.info("archive retention: removed %d rows older than %s", removed, cutoff)


def _merged(items: list[Any]) -> list[Any]:
    """A round's batches of one container attempt become one append (one transaction); each container's batches
    keep their order, and different containers' never depended on one another's."""
    merged: list[Any] = []
    latest: dict[int, int] = {}  # id(tail) -> index in merged of its last batch
    for item in items:
        if isinstance(item, Batch):
            index = latest.get(id(item.tail))
            last = merged[index] if index is not None else None
            if last is not None and last.generation == item.generation and last.attempt == item.attempt:
                merged[index] = Batch(item.tail, item.generation, last.lines + item.lines, item.attempt,
                                      item.position)
                continue
            latest[id(item.tail)] = len(merged)
        merged.append(item)
    return merged


def _fair_order(merged: list[Any]) -> list[Any]:
    """A round's writes, the containers with the fewest lines first: a neighbour's few lines are not written after a
    flood's thousands that happened to be queued before them. Each container's batches keep their order (the sort
    is stable and keyed by container). Instance records go first, in their order, as the reader queued them (at
    the start of its round): a record is never later than the lines read after it, so a reader who sees a pod's
    last line archived sees the state the collector knew of it then (a deleted job's instances read from the
    archive). Beats and the retention prune go last: a beat's lag then counts the round's lines."""
    records = [item for item in merged if isinstance(item, Record)]
    batches = [item for item in merged if isinstance(item, Batch)]
    others = [item for item in merged if not isinstance(item, (Batch, Record))]
    lines: dict[int, int] = {}
    for batch in batches:
        lines[id(batch.tail)] = lines.get(id(batch.tail), 0) + len(batch.lines)
    batches.sort(key=lambda batch: lines[id(batch.tail)])
    return records + batches + others


def _started(status: dict[str, Any]) -> bool:
    state = status.get("state") or {}
    return "running" in state or "terminated" in state or bool(status.get("lastState"))
