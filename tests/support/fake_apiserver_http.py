"""A small in-memory apiserver behind the gateway's real ``Kube``, for the fuzzer's unit-level run.

It replaces only the connection pool: ``Kube`` still encodes the bodies (orjson), builds and quotes the paths, and
translates the answers, so what breaks there breaks here. Each URL is read the way urllib3 sends it
(``parse_url``: dot segments removed), and only the requests the gateway is meant to make have a route; anything
else is answered 403, as the deployed least-privilege RBAC would, and recorded in ``unexpected``. A Job or
namespace the real apiserver would refuse (a subset of its validation: names, labels, container names, quantities,
volumes, ports) is answered 422 and recorded in ``rejected``: a request the gateway's own validation should have
stopped. ``created`` records every object made, so a 4xx that created something shows.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import urllib3
from kubernetes import client as k8s_client

from gateway.kube.client import Kube, Regions
from gateway.jobs.manifest import namespace_manifest

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
QUANTITY = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]+)?")
ENV_NAME = re.compile(r"[ -<>-~]+")  # printable ASCII but '=' (the apiserver's relaxed rule)
INT32_MAX = 2**31 - 1
HOST = "http://fake-apiserver"


@dataclass
class FakeResponse:
    """What ``Kube`` reads of a urllib3 response."""

    status: int
    data: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    _offset: int = 0
    released: bool = False  # closed, given back, or read to the end (urllib3 then gives the connection back)
    break_after: int | None = None  # the connection breaks once this many bytes have been read

    def stream(self, amount: int = 65536, decode_content: bool = True):
        while chunk := self.read(amount):
            yield chunk

    def read(self, amount: int | None = None, decode_content: bool = True) -> bytes:
        end = len(self.data) if amount is None else self._offset + amount
        if self.break_after is not None and end > self.break_after:
            if self._offset >= self.break_after:
                raise urllib3.exceptions.ProtocolError("Connection broken: fake apiserver went away")
            end = self.break_after
        chunk, self._offset = self.data[self._offset:end], min(end, len(self.data))
        if not chunk:
            self.released = True
        return chunk

    def close(self) -> None:
        self.released = True

    def release_conn(self) -> None:
        self.released = True


def _status(code: int, reason: str, message: str) -> FakeResponse:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message,
            "code": code}
    return FakeResponse(code, json.dumps(body).encode())


def _ok(obj: Any, code: int = 200) -> FakeResponse:
    return FakeResponse(code, json.dumps(obj).encode())


class FakeApiserver:
    """Namespaces, Jobs, pods and pod logs in dicts; ``down = True`` makes every request fail to connect."""

    def __init__(self) -> None:
        self.namespaces: dict[str, dict] = {}
        self.jobs: dict[tuple[str, str], dict] = {}
        self.pods: dict[tuple[str, str], dict] = {}
        self.logs: dict[tuple[str, str], list[tuple[dt.datetime, str]]] = {}
        self.other: dict[tuple[str, str, str], dict] = {}  # (kind plural, namespace, name): quotas, policies
        self.created: list[tuple[str, str, str]] = []  # (kind, namespace, name)
        self.rejected: list[tuple[str, str, list[str]]] = []  # (method, path, problems)
        self.unexpected: list[tuple[str, str]] = []  # (method, path as sent)
        self.streams: list[tuple[str, str, FakeResponse]] = []  # answers the gateway asked to read as streams
        self.down = False
        self.break_streams_after: int | None = None  # streamed answers break after this many bytes
        # (status, message, methods): every request with one of these methods is refused so, as RBAC, a quota
        # or an admission webhook would
        self.refusal: tuple[int, str, tuple[str, ...]] | None = None

    # -- set-up ------------------------------------------------------------------------------------------------

    def add_namespace(self, name: str, username: str) -> None:
        """A user's namespace as the gateway makes it (labelled and annotated)."""
        self.namespaces[name] = namespace_manifest(name, username)

    def add_job_with_pod(self, namespace: str, job: str, pod: str, lines: list[tuple[dt.datetime, str]]) -> None:
        """A Job whose one pod has run and logged ``lines``: the live log path of the logs calls."""
        uid = str(uuid.uuid4())
        selector = {"batch.kubernetes.io/controller-uid": uid}
        self.jobs[(namespace, job)] = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job, "namespace": namespace, "uid": uid, "creationTimestamp": "2026-11-27T10:00:00Z"},
            "spec": {"selector": {"matchLabels": selector}, "template": {"spec": {"containers": [{"name": job}]}}},
            "status": {"succeeded": 1}}
        self.pods[(namespace, pod)] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": namespace, "creationTimestamp": "2026-11-27T10:00:01Z",
                         "labels": {**selector, "job-name": job, "batch.kubernetes.io/job-name": job}},
            "spec": {"containers": [{"name": job, "image": "busybox"}], "nodeName": "node-1"},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": job, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}]}}
        self.logs[(namespace, pod)] = lines

    # -- the urllib3 PoolManager surface ----------------------------------------------------------------------------

    def request(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None,
                timeout: Any = None, preload_content: bool = True, **_: Any) -> FakeResponse:
        if self.down:
            raise urllib3.exceptions.NewConnectionError(None, "fake apiserver is down")  # type: ignore[arg-type]
        parsed = urllib3.util.parse_url(url)  # what urllib3 would put on the wire
        query = {k: v[-1] for k, v in parse_qs(parsed.query or "", keep_blank_values=True).items()}
        path = parsed.path or "/"
        segments = [unquote(s) for s in path.split("/")[1:]]
        if self.refusal and method in self.refusal[2]:
            code, message, _ = self.refusal
            response = _status(code, "Unauthorized" if code == 401 else "Forbidden", message)
        else:
            response = self._route(method, path, segments, query, json.loads(body) if body else None)
        if response is None:
            self.unexpected.append((method, path))
            response = _status(403, "Forbidden", f"forbidden: {method} {path} is not a request the gateway makes")
        if not preload_content:
            response.break_after = self.break_streams_after
            self.streams.append((method, path, response))
        return response

    def open_streams(self) -> list[tuple[str, str]]:
        """Streamed answers the gateway has neither read to the end nor closed: connections it never gave back."""
        return [(method, path) for method, path, response in self.streams if not response.released]

    def _route(self, method: str, path: str, s: list[str], query: dict, body: Any) -> FakeResponse | None:
        n = len(s)
        if path == "/version" and method == "GET":
            return _ok({"major": "1", "minor": "34", "gitVersion": "v1.34.0-fake"})
        if s[:3] == ["api", "v1", "namespaces"]:
            if n == 3 and method == "POST":
                return self._create_namespace(path, body)
            if n == 4 and method == "GET" and s[3]:
                return _ok(self.namespaces[s[3]]) if s[3] in self.namespaces else self._missing("namespaces", s[3])
            if n == 5 and s[4] == "pods" and method == "GET" and "labelSelector" in query:
                return _ok(self._pod_list(s[3], query["labelSelector"]))
            if n == 6 and s[4] == "pods" and method == "GET" and s[5]:
                pod = self.pods.get((s[3], s[5]))
                return _ok(pod) if pod else self._missing("pods", s[5])
            if n == 7 and s[4] == "pods" and s[6] == "log" and method == "GET" and s[5]:
                return self._log(s[3], s[5], query)
            if s[3:] == ["default", "endpoints", "kubernetes"] and method == "GET":
                return _ok({"kind": "Endpoints", "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]})
            if n == 5 and s[4] == "events" and method == "GET":
                return _ok({"kind": "EventList", "items": []})
            if n == 6 and s[4] in ("resourcequotas", "limitranges") and method == "PATCH":
                return self._apply(s[4], s[3], s[5], body)
        if s[:3] == ["api", "v1", "pods"] and n == 3 and method == "GET" and "labelSelector" in query:
            return _ok(self._pod_list(None, query["labelSelector"]))
        if s[:4] == ["apis", "networking.k8s.io", "v1", "namespaces"] and n == 7 and method == "PATCH":
            return self._apply(s[5], s[4], s[6], body)
        if s[:4] == ["apis", "batch", "v1", "namespaces"] and n >= 6 and s[5] == "jobs":
            namespace = s[4]
            if n == 6 and method == "GET":
                items = [j for (ns, _), j in sorted(self.jobs.items()) if ns == namespace]
                return _ok({"kind": "JobList", "apiVersion": "batch/v1", "metadata": {"resourceVersion": "1"},
                            "items": items[: int(query["limit"])] if query.get("limit") else items})
            if n == 6 and method == "POST":
                return self._create_job(path, namespace, body)
            if n == 7 and s[6] and method in ("GET", "DELETE"):
                job = self.jobs.get((namespace, s[6]))
                if job is None:
                    return self._missing("jobs.batch", s[6])
                if method == "DELETE":
                    del self.jobs[(namespace, s[6])]
                    return _ok({"kind": "Status", "status": "Success"})
                return _ok(job)
        return None

    @staticmethod
    def _missing(kind: str, name: str) -> FakeResponse:
        return _status(404, "NotFound", f'{kind} "{name}" not found')

    def _create_namespace(self, path: str, body: dict) -> FakeResponse:
        name = (body.get("metadata") or {}).get("name", "")
        problems = [] if _label(name) else [f"metadata.name: Invalid value: {name!r}"]
        problems += _label_problems(body.get("metadata") or {})
        if problems:
            return self._reject("POST", path, problems)
        if name in self.namespaces:
            return _status(409, "AlreadyExists", f'namespaces "{name}" already exists')
        self.namespaces[name] = body
        self.created.append(("Namespace", "", name))
        return _ok(body, 201)

    def _apply(self, plural: str, namespace: str, name: str, body: dict) -> FakeResponse:
        if namespace not in self.namespaces:
            return self._missing("namespaces", namespace)
        if (plural, namespace, name) not in self.other:
            self.created.append((plural, namespace, name))
        self.other[(plural, namespace, name)] = body
        return _ok(body)

    def _create_job(self, path: str, namespace: str, body: dict) -> FakeResponse:
        if namespace not in self.namespaces:
            return self._missing("namespaces", namespace)
        problems = job_problems(body, namespace)
        if problems:
            return self._reject("POST", path, problems)
        name = body["metadata"]["name"]
        if (namespace, name) in self.jobs:
            return _status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
        uid = str(uuid.uuid4())
        job = json.loads(json.dumps(body))
        job["metadata"].update(uid=uid, resourceVersion="1", creationTimestamp="2026-11-28T00:00:00Z")
        job["spec"].setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        job["status"] = {}
        self.jobs[(namespace, name)] = job
        self.created.append(("Job", namespace, name))
        return _ok(job, 201)

    def _reject(self, method: str, path: str, problems: list[str]) -> FakeResponse:
        self.rejected.append((method, path, problems))
        return _status(422, "Invalid", "; ".join(problems))

    def _pod_list(self, namespace: str | None, selector: str) -> dict:
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        items = [p for (ns, _), p in sorted(self.pods.items()) if namespace in (None, ns)
                 and all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}

    def _log(self, namespace: str, pod: str, query: dict) -> FakeResponse:
        if (namespace, pod) not in self.pods:
            return self._missing("pods", pod)
        containers = [c["name"] for c in self.pods[(namespace, pod)]["spec"]["containers"]]
        if query.get("container") not in containers:
            return _status(400, "BadRequest", f"container {query.get('container')} is not valid for pod {pod}")
        since = None
        if "sinceTime" in query:
            try:
                since = dt.datetime.strptime(query["sinceTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
            except ValueError:
                return _status(400, "BadRequest", f"sinceTime: invalid value {query['sinceTime']!r}")
        stamped = query.get("timestamps") == "true"
        text = "".join(f"{at.strftime('%Y-%m-%dT%H:%M:%S.%f000Z')} {line}\n" if stamped else f"{line}\n"
                       for at, line in self.logs[(namespace, pod)] if since is None or at >= since)
        data = text.encode()
        if query.get("limitBytes"):
            data = data[: int(query["limitBytes"])]
        return FakeResponse(200, data)


def _label(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(DNS1123_LABEL.fullmatch(value))


def _label_problems(metadata: dict) -> list[str]:
    return [f"metadata.labels: Invalid value: {v!r}" for v in (metadata.get("labels") or {}).values()
            if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.fullmatch(v)]


def _int32(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= INT32_MAX


def job_problems(job: dict, namespace: str) -> list[str]:
    """What the apiserver's validation of a batch/v1 Job would refuse (the part the gateway's input reaches)."""
    problems: list[str] = []
    metadata, spec = job.get("metadata") or {}, job.get("spec") or {}
    if not _label(metadata.get("name")):
        problems.append(f"metadata.name: Invalid value: {metadata.get('name')!r}")
    if metadata.get("namespace") not in (None, namespace):
        problems.append("metadata.namespace: does not match the request's")
    problems += _label_problems(metadata)
    for key, minimum in (("parallelism", 0), ("completions", 0), ("backoffLimit", 0),
                         ("activeDeadlineSeconds", 1), ("ttlSecondsAfterFinished", 0)):
        if key in spec and spec[key] is not None and not _int32(spec[key], minimum):
            problems.append(f"spec.{key}: Invalid value: {spec[key]!r}")
    template = spec.get("template") or {}
    problems += _label_problems(template.get("metadata") or {})
    pod = template.get("spec") or {}
    volumes = [v.get("name") for v in pod.get("volumes") or []]
    for name in volumes:
        if not _label(name):
            problems.append(f"spec.template.spec.volumes.name: Invalid value: {name!r}")
    if len(set(volumes)) != len(volumes):
        problems.append("spec.template.spec.volumes: Duplicate value")
    containers = pod.get("containers") or []
    if not containers:
        problems.append("spec.template.spec.containers: Required value")
    names = [c.get("name") for c in containers]
    if len(set(names)) != len(names):
        problems.append(f"spec.template.spec.containers.name: Duplicate value: {names!r}")
    for container in containers:
        problems += _container_problems(container, set(volumes))
    return problems


def _container_problems(container: dict, volumes: set[str]) -> list[str]:
    at = f"containers[{container.get('name')!r}]"
    problems = [] if _label(container.get("name")) else [f"{at}.name: Invalid value"]
    image = container.get("image")
    if not isinstance(image, str) or not image or image != image.strip():
        problems.append(f"{at}.image: Invalid value: {image!r}")
    for env in container.get("env") or []:
        if not isinstance(env.get("name"), str) or not ENV_NAME.fullmatch(env["name"]):
            problems.append(f"{at}.env.name: Invalid value: {env.get('name')!r}")
    for key, value in ((container.get("resources") or {}).get("limits") or {}).items():
        if not isinstance(value, str) or not QUANTITY.fullmatch(value):
            problems.append(f"{at}.resources.limits[{key}]: Invalid value: {value!r}")
    for port in container.get("ports") or []:
        if not _int32(port.get("containerPort"), 1) or port["containerPort"] > 65535 or \
                port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
            problems.append(f"{at}.ports: Invalid value: {port!r}")
    paths = []
    for mount in container.get("volumeMounts") or []:
        if mount.get("name") not in volumes:
            problems.append(f"{at}.volumeMounts.name: Not found: {mount.get('name')!r}")
        paths.append(mount.get("mountPath"))
        if not isinstance(mount.get("mountPath"), str) or not mount["mountPath"]:
            problems.append(f"{at}.volumeMounts.mountPath: Required value")
    if len(set(paths)) != len(paths):
        problems.append(f"{at}.volumeMounts.mountPath: must be unique")
    for key in ("command", "args"):
        for item in container.get(key) or []:
            if not isinstance(item, str):
                problems.append(f"{at}.{key}: Invalid value: {item!r}")
    return problems


class FakeRegions(Regions):
    """``Regions`` whose every configured region is one real ``Kube`` over the fake apiserver."""

    def __init__(self, settings: Any, apiserver: FakeApiserver):
        super().__init__(settings)
        configuration = k8s_client.Configuration()
        configuration.host = HOST
        self.kube = Kube(configuration, settings)
        self.kube._pool = apiserver  # the one seam: the connection pool
        self.apiserver = apiserver

    def get(self, region: str) -> Kube:
        self.require(region)
        return self.kube
