"""The gateway's narrow ``Kube`` interface (gateway/kube/client.py) in memory: the one fake of it the unit tests use.

Pods with their LIST, WATCH (410 Gone on demand) and container logs, for the reflector, the watch cache and the
collector; namespaces, Jobs, Leases, cluster Events and the version, for the views, tenancy, the users' CLI, the
collector's leader election and readiness.
Every call is recorded in ``calls`` as ``(method, what)``; ``called(method)`` gives the ``what`` of each. A test that
needs a failure configures it (``version=refuses``, a scripted ``stream``) or subclasses one method. Integration
tests use the real local cluster; this is for what a cluster cannot be made to do on demand (a 410 at a chosen
moment, 200 pods churning in a second, a list stream that breaks off)."""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import threading
from typing import Any, Callable, Iterator

from gateway import errors
from gateway.kube.client import Kube, LogNotAvailable

EPOCH = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone.utc)


def stamp(second: float) -> str:
    moment = EPOCH + dt.timedelta(seconds=second)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def pod(name: str, job: str, *, namespace: str = "tenx-alice", labels: dict[str, str] | None = None,
        phase: str = "Running", containers: dict[str, dict[str, Any]] | None = None,
        node: str | None = None) -> dict[str, Any]:
    """A pod of ``job``; ``containers``: name -> {"state": {...}, "restartCount": n}; ``node``: where it was bound."""
    containers = containers if containers is not None else {job: {"state": {"running": {}}, "restartCount": 0}}
    base = {"batch.kubernetes.io/job-name": job, "job-name": job, "app.kubernetes.io/managed-by": "tenx-gateway"}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels if labels is not None else base,
                         "creationTimestamp": stamp(0)},
            "spec": {"containers": [{"name": c} for c in containers], **({"nodeName": node} if node else {})},
            "status": {"phase": phase, "containerStatuses": [{"name": c, **s} for c, s in containers.items()]}}


MANAGED = {"app.kubernetes.io/managed-by": "tenx-gateway"}


def job(name: str, namespace: str = "tenx-alice", *, uid: str = "u1", **spec) -> dict[str, Any]:
    """A managed Job whose selector is its controller uid; ``spec``: fields of its spec."""
    return {"kind": "Job", "apiVersion": "batch/v1",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": "5",
                         "labels": {**MANAGED, "name": name}},
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}, **spec},
            "status": {}}


def job_pod(name: str, job_name: str, uid: str, *, namespace: str = "tenx-alice",
            phase: str = "Running") -> dict[str, Any]:
    """A pod of the Job ``job_name`` whose controller uid is ``uid``, labelled as the Job controller does."""
    labels = {**MANAGED, "job-name": job_name, "batch.kubernetes.io/job-name": job_name,
              "batch.kubernetes.io/controller-uid": uid}
    return pod(name, job_name, namespace=namespace, labels=labels, phase=phase)


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


READY_ENDPOINTS = {"subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]}


def answers() -> dict[str, str]:
    """The apiserver's /version: the region answers."""
    return {"major": "1", "minor": "34"}


class FakeKube:
    Expired = Kube.Expired
    server = "https://127.0.0.1:6443"

    def __init__(self, namespaces: dict[str, dict[str, Any]] | None = None, *,
                 cluster_events: list[dict[str, Any]] = (), version: Callable[[], dict[str, Any]] = answers) -> None:
        self.namespaces = dict(namespaces or {})
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.cluster_events = list(cluster_events)  # what list_events answers
        self.answer_version = version  # called by version(): may answer, raise or hang
        self.stream: Any = None  # what list_jobs_stream gives: an iterator of a JobList's chunks
        self.calls: list[tuple[str, ...]] = []
        self._lock = threading.Condition()
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.resource_version = 1
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
            self.resource_version += 1
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            kind = "MODIFIED" if key in self.pods else "ADDED"
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.resource_version)}}
            self.pods[key] = obj
            self.events.append((self.resource_version, kind, obj))
            self._lock.notify_all()

    def delete(self, namespace: str, name: str) -> None:
        with self._lock:
            obj = self.pods.pop((namespace, name), None)
            if obj is None:
                return
            self.resource_version += 1
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.resource_version)}}
            self.events.append((self.resource_version, "DELETED", obj))
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
            self.oldest_kept = self.resource_version + 1
            self.events = []
            self._lock.notify_all()

    def called(self, method: str) -> list[Any]:
        """What each call of ``method`` was about (a name, a kind, a selector), in order."""
        return [call[1] if len(call) > 1 else None for call in self.calls if call[0] == method]

    # -- the calls ------------------------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        self.calls.append(("version",))
        return self.answer_version()

    def get_namespace(self, name: str) -> dict[str, Any]:
        self.calls.append(("get_namespace", name))
        if name not in self.namespaces:
            raise errors.NotFound(f"namespace {name} not found")
        return self.namespaces[name]

    def create_namespace(self, manifest: dict[str, Any]) -> None:
        self.calls.append(("create_namespace", manifest["metadata"]["name"]))
        self.namespaces[manifest["metadata"]["name"]] = manifest

    def delete_namespace(self, name: str) -> bool:
        self.calls.append(("delete_namespace", name))
        return self.namespaces.pop(name, None) is not None

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("apply", manifest["kind"]))
        return manifest

    def get_endpoints(self, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("get_endpoints", name))
        return READY_ENDPOINTS

    def list_events(self, namespace: str, field_selector: str) -> dict[str, Any]:
        self.calls.append(("list_events", field_selector))
        return {"items": self.cluster_events}

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("get_job", name))
        if (namespace, name) not in self.jobs:
            raise errors.NotFound("job not found")
        return self.jobs[(namespace, name)]

    def list_jobs_stream(self, namespace: str, limit: int | None = None) -> Any:
        self.calls.append(("list_jobs_stream", namespace))
        return self.stream

    def get_lease(self, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("get_lease", name))
        if (namespace, name) not in self.leases:
            raise errors.NotFound("no lease")
        return copy.deepcopy(self.leases[(namespace, name)])

    def create_lease(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create_lease", manifest["metadata"]["name"]))
        if (namespace, manifest["metadata"]["name"]) in self.leases:
            raise errors.Conflict("exists")
        return self._store_lease(namespace, manifest)

    def replace_lease(self, namespace: str, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """With the apiserver's optimistic concurrency: a stale resourceVersion is a Conflict."""
        self.calls.append(("replace_lease", name))
        current = self.leases.get((namespace, name))
        if current is None or manifest["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise errors.Conflict("stale")
        return self._store_lease(namespace, manifest)

    def _store_lease(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.resource_version += 1
            lease = copy.deepcopy(manifest)
            lease["metadata"]["resourceVersion"] = str(self.resource_version)
            self.leases[(namespace, lease["metadata"]["name"])] = lease
        return copy.deepcopy(lease)

    def list_pods(self, namespace: str, label_selector: str) -> dict[str, Any]:
        self.calls.append(("list_pods", label_selector))
        with self._lock:
            return {"items": [p for (ns, _), p in self.pods.items()
                              if ns == namespace and _matches(label_selector, p["metadata"]["labels"])]}

    def list_page(self, path: str, *, label_selector: str | None = None, limit: int = 500,
                  continue_token: str | None = None, field_selector: str | None = None) -> dict[str, Any]:
        with self._lock:
            self.lists.append(label_selector)
            items = [p for p in self.pods.values() if _matches(label_selector, p["metadata"]["labels"])
                     and _on_node(field_selector, p)]
            return {"items": items, "metadata": {"resourceVersion": str(self.resource_version)}}

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
                    after = self.resource_version  # nothing after `after` is kept unseen: a bookmark may move it on
                    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": str(after)}}}
            if bookmark:
                yield bookmark
            for version, kind, obj in ready:
                after = version
                if _matches(selector, obj["metadata"]["labels"]):
                    yield {"type": kind, "object": obj}

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("get_pod", name))
        with self._lock:
            if (namespace, name) not in self.pods:
                raise errors.NotFound("pod not found")
            return self.pods[(namespace, name)]

    @contextlib.contextmanager
    def pod_log(self, namespace: str, name: str, *, container: str, timestamps: bool = False,
                since_time: str | None = None, follow: bool = False, previous: bool = False,
                idle_timeout: float | None = None, limit_bytes: int | None = None) -> Iterator[Iterator[bytes]]:
        self.calls.append(("pod_log", name))
        self.log_calls.append({"pod": name, "container": container, "previous": previous, "follow": follow,
                               "since": since_time, "timestamps": timestamps})
        key = (namespace, name, container)
        with self._lock:
            if (namespace, name) not in self.pods:
                raise errors.NotFound("pod not found")
            attempts = self.logs.get(key)
            if not attempts or (previous and len(attempts) < 2):
                raise LogNotAvailable("no such attempt")
            index = len(attempts) - 2 if previous else len(attempts) - 1
        yield self._log(key, index, since_time, follow and not previous, timestamps)

    def _log(self, key: tuple[str, str, str], index: int, since: str | None, follow: bool,
             timestamps: bool) -> Iterator[bytes]:
        sent = 0
        while True:
            with self._lock:
                lines = self.logs[key][index][sent:]
                sent += len(lines)
                done = not follow or key in self.ended or index != len(self.logs[key]) - 1 or key[:2] not in self.pods
            for when, text in lines:
                if since is None or when[:19] >= since[:19]:
                    yield f"{when} {text}\n".encode() if timestamps else f"{text}\n".encode()
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



class TwoKinds:
    """Jobs and pods for the watch cache, each a ``FakeKube`` of its own (their versions are counted apart, as etcd
    would not; the cache compares only Job versions); ``version()`` calls are counted in ``versions``."""

    def __init__(self) -> None:
        self.jobs, self.pods = FakeKube(), FakeKube()
        self.versions = 0

    def _of(self, path: str) -> FakeKube:
        return self.jobs if "/jobs" in path else self.pods

    def list_page(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._of(path).list_page(path, **kwargs)

    def watch(self, path: str, **kwargs: Any):
        return self._of(path).watch(path, **kwargs)

    def version(self) -> dict[str, Any]:
        self.versions += 1
        return {}


class FakeRegions:
    """The configured regions, each a ``FakeKube`` (``FakeRegions(us=kube, eu=other)``)."""

    def __init__(self, **kubes: FakeKube) -> None:
        self.kubes = kubes
        self.names = list(kubes)

    def require(self, region: str) -> None:
        if region not in self.kubes:
            raise errors.NotFound("unknown region")

    def get(self, region: str) -> FakeKube:
        self.require(region)
        return self.kubes[region]
