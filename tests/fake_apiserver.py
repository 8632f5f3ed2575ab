"""An in-memory stand-in for the few apiserver calls the collector makes (list, watch, container logs), for unit
tests of the reflector and the collector. Integration tests use the real local cluster; this is for what a
cluster cannot be made to do on demand (a 410 at a chosen moment, 200 pods churning in a second)."""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any, Iterator

from gateway import errors
from gateway.kube.client import Kube, LogNotAvailable

EPOCH = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone.utc)


def stamp(second: float) -> str:
    moment = EPOCH + dt.timedelta(seconds=second)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def pod(name: str, job: str, *, namespace: str = "tenx-alice", labels: dict[str, str] | None = None,
        phase: str = "Running", containers: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A pod of ``job``; ``containers``: name -> {"state": {...}, "restartCount": n}."""
    containers = containers if containers is not None else {job: {"state": {"running": {}}, "restartCount": 0}}
    base = {"batch.kubernetes.io/job-name": job, "job-name": job, "app.kubernetes.io/managed-by": "tenx-gateway"}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels if labels is not None else base,
                         "creationTimestamp": stamp(0)},
            "spec": {"containers": [{"name": c} for c in containers]},
            "status": {"phase": phase, "containerStatuses": [{"name": c, **s} for c, s in containers.items()]}}


def _matches(selector: str | None, labels: dict[str, str]) -> bool:
    for term in (selector or "").split(","):
        if not term:
            continue
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


class FakeKube:
    Expired = Kube.Expired

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 1
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.oldest_kept = 0  # watches from a version below this get 410
        self.lists: list[str | None] = []  # label selectors of LIST calls
        # (namespace, pod, container) -> attempts, each [lines (stamp, text)], the last one current
        self.logs: dict[tuple[str, str, str], list[list[tuple[str, str]]]] = {}
        self.ended: set[tuple[str, str, str]] = set()  # current attempt finished: a follow ends
        self.log_calls: list[dict[str, Any]] = []

    # -- what tests do --------------------------------------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self.version += 1
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            kind = "MODIFIED" if key in self.pods else "ADDED"
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}}
            self.pods[key] = obj
            self.events.append((self.version, kind, obj))
            self._lock.notify_all()

    def delete(self, namespace: str, name: str) -> None:
        with self._lock:
            obj = self.pods.pop((namespace, name), None)
            if obj is None:
                return
            self.version += 1
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}}
            self.events.append((self.version, "DELETED", obj))
            self._lock.notify_all()

    def write(self, namespace: str, name: str, container: str, lines: list[tuple[str, str]], *,
              new_attempt: bool = False) -> None:
        with self._lock:
            attempts = self.logs.setdefault((namespace, name, container), [[]])
            if new_attempt:
                attempts.append([])
                self.ended.discard((namespace, name, container))
            attempts[-1].extend(lines)
            self._lock.notify_all()

    def end(self, namespace: str, name: str, container: str) -> None:
        with self._lock:
            self.ended.add((namespace, name, container))
            self._lock.notify_all()

    def compact(self) -> None:
        """Forget every event so far: a watch from an older version gets 410 Gone."""
        with self._lock:
            self.oldest_kept = self.version + 1
            self.events = []
            self._lock.notify_all()

    # -- the calls ------------------------------------------------------------------------------------------

    def list_page(self, path: str, *, label_selector: str | None = None, limit: int = 500,
                  continue_token: str | None = None, field_selector: str | None = None) -> dict[str, Any]:
        with self._lock:
            self.lists.append(label_selector)
            items = [p for p in self.pods.values() if _matches(label_selector, p["metadata"]["labels"])
                     and _on_node(field_selector, p)]
            return {"items": items, "metadata": {"resourceVersion": str(self.version)}}

    @contextlib.contextmanager
    def watch(self, path: str, *, resource_version: str, label_selector: str | None = None,
              timeout_seconds: int = 300, field_selector: str | None = None) -> Iterator[Iterator[dict[str, Any]]]:
        if int(resource_version) < self.oldest_kept - 1:
            raise Kube.Expired("too old")
        events = self._events(int(resource_version), label_selector)
        yield (e for e in events if e["type"] == "BOOKMARK" or _on_node(field_selector, e["object"]))

    def _events(self, after: int, selector: str | None) -> Iterator[dict[str, Any]]:
        while True:
            bookmark = None
            with self._lock:
                if after < self.oldest_kept - 1:
                    raise Kube.Expired("too old")
                ready = [(v, k, o) for v, k, o in self.events if v > after]
                if not ready and not self._lock.wait(0.5):
                    after = self.version  # nothing after `after` is kept unseen: a bookmark may move it on
                    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": str(after)}}}
            if bookmark:
                yield bookmark
            for version, kind, obj in ready:
                after = version
                if _matches(selector, obj["metadata"]["labels"]):
                    yield {"type": kind, "object": obj}

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            if (namespace, name) not in self.pods:
                raise errors.NotFound("pod not found")
            return self.pods[(namespace, name)]

    @contextlib.contextmanager
    def pod_log(self, namespace: str, name: str, *, container: str, timestamps: bool = False,
                since_time: str | None = None, follow: bool = False, previous: bool = False,
                idle_timeout: float | None = None, limit_bytes: int | None = None) -> Iterator[Iterator[bytes]]:
        assert timestamps, "the collector reads stamped lines"
        self.log_calls.append({"pod": name, "container": container, "previous": previous, "follow": follow,
                               "since": since_time})
        key = (namespace, name, container)
        with self._lock:
            if (namespace, name) not in self.pods:
                raise errors.NotFound("pod not found")
            attempts = self.logs.get(key)
            if not attempts or (previous and len(attempts) < 2):
                raise LogNotAvailable("no such attempt")
            index = len(attempts) - 2 if previous else len(attempts) - 1
        yield self._log(key, index, since_time, follow and not previous)

    def _log(self, key: tuple[str, str, str], index: int, since: str | None, follow: bool) -> Iterator[bytes]:
        sent = 0
        while True:
            with self._lock:
                lines = self.logs[key][index][sent:]
                sent += len(lines)
                done = not follow or key in self.ended or index != len(self.logs[key]) - 1 or key[:2] not in self.pods
            for when, text in lines:
                if since is None or when[:19] >= since[:19]:
                    yield f"{when} {text}\n".encode()
            if done:
                return
            with self._lock:
                if len(self.logs[key][index]) == sent and key not in self.ended:
                    self._lock.wait(0.2)


def _on_node(field_selector: str | None, pod: dict[str, Any]) -> bool:
    """The one field selector the gateway sends: ``spec.nodeName=<node>``."""
    if not field_selector:
        return True
    key, _, value = field_selector.partition("=")
    assert key == "spec.nodeName", field_selector
    return (pod.get("spec") or {}).get("nodeName") == value
