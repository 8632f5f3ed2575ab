"""Kubernetes access: the only module that talks to an apiserver or sees its errors.

The official client loads the kubeconfig or in-cluster config and builds the TLS connection pool; requests go
through that pool as raw HTTP so that Job objects pass through as the apiserver wrote them (no model round trip),
every call has a timeout, and a log can be read as a stream and dropped half-way. ``ApiException`` never leaves
this module: failures become the gateway's own 400, 403, 404, 409, 502 or 503 here, never a 500 (see
``_translate``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from typing import Any, Iterator
from urllib.parse import quote, urlencode

import orjson
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from . import errors, metrics
from .config import CURRENT_CONTEXT, IN_CLUSTER, Settings

log = logging.getLogger(__name__)

_UNAVAILABLE_STATUSES = {429, 500, 502, 503, 504}
# How RBAC words a refusal ('jobs.batch is forbidden: User "x" cannot list resource "jobs" ...'): the gateway's own
# identity lacks a permission. Quotas, admission policies and webhooks word theirs otherwise.
_RBAC_DENIAL = re.compile(r'\b(User|ServiceAccount|Group) "[^"]*" cannot ')
_PLURALS = {"ResourceQuota": "resourcequotas", "LimitRange": "limitranges", "NetworkPolicy": "networkpolicies"}
_CHUNK = 64 * 1024
KUEUE_API = "/apis/kueue.x-k8s.io/v1beta2"


class LogNotAvailable(Exception):
    """The apiserver has no log for the container yet (it has not started) or any more."""


class Kube:
    """One region's apiserver: a shared connection pool and the handful of calls the gateway makes."""

    watch_cache: Any = None  # the API process's watch cache of this region (gateway/cache/), once it is attached

    def __init__(self, configuration: k8s_client.Configuration, settings: Settings):
        configuration.retries = urllib3.Retry(total=1, connect=1, read=0, status=0, redirect=0)
        configuration.connection_pool_maxsize = 32
        self._configuration = configuration
        self._pool = k8s_client.ApiClient(configuration).rest_client.pool_manager
        self._timeout = urllib3.Timeout(connect=settings.kube_connect_timeout, read=settings.kube_read_timeout)
        self._retry_after = str(settings.retry_after_seconds)

    # -- raw HTTP ------------------------------------------------------------------------------------------

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        for auth in self._configuration.auth_settings().values():
            if auth["value"]:
                headers[auth["key"]] = auth["value"]
        return headers

    def _url(self, path: str, query: dict[str, Any] | None = None) -> str:
        url = self._configuration.host + path
        return f"{url}?{urlencode(query)}" if query else url

    def _send(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None,
              stream: bool = False, timeout: urllib3.Timeout | None = None,
              content_type: str = "application/json", own: bool = False) -> urllib3.BaseHTTPResponse:
        """``own``: the call is the gateway's own bookkeeping (its users Secret, Leases, readiness), so even a
        policy's 403 is the gateway's problem (502), never the caller's."""
        data = _encode(body) if body is not None else None
        started = time.perf_counter()
        try:
            response = self._pool.request(
                method, self._url(path, query), body=data,
                headers=self._headers(content_type if data is not None else None),
                timeout=timeout or self._timeout, preload_content=not stream)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            metrics.observe_kube_call(method, path, None, started)
            log.warning("apiserver %s %s failed: %s", method, path, type(exc).__name__)
            raise errors.Unavailable("the cluster is not reachable; try again shortly",
                                     headers={"Retry-After": self._retry_after}) from None
        metrics.observe_kube_call(method, path, response.status, started)
        if response.status >= 400:
            body_bytes = response.data if not stream else _read_capped(response)
            raise self._translate(response.status, body_bytes, own=own)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data = self._send(method, path, **kwargs).data
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            log.error("apiserver %s %s answered with a body that is not JSON (%d bytes)", method, path, len(data))
            raise errors.BadGateway("the cluster answered with something that is not JSON") from None

    def _translate(self, status: int, body: bytes, *, own: bool = False) -> Exception:
        """The apiserver's refusal as the gateway's error: what the caller asked for and may change (404, 409,
        400, a quota's or policy's 403) is passed on with the cluster's message; what is the gateway's own
        problem (401: its credentials; an RBAC 403: its permissions; any 403 on its bookkeeping; a status it
        does not expect) is a 502 with the details in the gateway's log only; overload is a 503."""
        try:
            decoded = orjson.loads(body) if body else {}
            message = decoded.get("message", "") if isinstance(decoded, dict) else ""
        except orjson.JSONDecodeError:
            message = ""
        message = str(message)
        if status == 404:
            return errors.NotFound(message or "not found")
        if status == 409:
            return errors.Conflict(message or "conflict")
        if status in (400, 422):
            return errors.BadRequest(f"the cluster rejected the request: {message}")
        if status == 403 and "being terminated" in message:
            return errors.Unavailable("the namespace is being deleted; try again shortly",
                                      headers={"Retry-After": self._retry_after})
        if status == 403 and not own and not _RBAC_DENIAL.search(message):
            # a ResourceQuota exceeded, a ValidatingAdmissionPolicy, a webhook, Pod Security: the request was
            # understood and refused for what it asks; the cluster's message says why
            return errors.Forbidden(f"the cluster refused the request: {message or 'forbidden'}")
        if status == 413:
            return errors.BadRequest(f"the cluster rejected the request as too large: {message}")
        if status in _UNAVAILABLE_STATUSES or status >= 500:
            return errors.Unavailable("the cluster is busy or unavailable; try again shortly",
                                      headers={"Retry-After": self._retry_after})
        log.error("apiserver answered %s: %s", status, message)
        if status == 401:
            return errors.BadGateway("the cluster did not accept the gateway's credentials; the operator must "
                                     "renew them")
        if status == 403:
            return errors.BadGateway("the gateway itself is not allowed to do this in the cluster; the operator "
                                     "must grant it the permission")
        return errors.BadGateway(f"the cluster refused the gateway's request ({status})")

    # -- the calls -----------------------------------------------------------------------------------------

    def list_jobs_stream(self, namespace: str, limit: int | None = None) -> ChunkStream:
        """The JobList as the apiserver writes it, chunk by chunk; a refusal is raised here, before any chunk.
        Close the stream when done with it (read or not): that releases the connection."""
        response = self._send("GET", f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs",
                              query={"limit": limit} if limit else None, stream=True)
        return ChunkStream(response, self._retry_after)

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs/{_q(name)}")

    def create_job(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs", body=manifest)

    def delete_job(self, namespace: str, name: str) -> None:
        self._send("DELETE", f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs/{_q(name)}",
                   body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})

    def list_pods(self, namespace: str, label_selector: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/namespaces/{_q(namespace)}/pods",
                          query={"labelSelector": label_selector})

    def list_pods_all_namespaces(self, label_selector: str) -> dict[str, Any]:
        return self._json("GET", "/api/v1/pods", query={"labelSelector": label_selector}, own=True)

    def get_lease(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"/apis/coordination.k8s.io/v1/namespaces/{_q(namespace)}/leases/{_q(name)}",
                          own=True)

    def create_lease(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/apis/coordination.k8s.io/v1/namespaces/{_q(namespace)}/leases", body=manifest,
                          own=True)

    def replace_lease(self, namespace: str, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """PUT with the manifest's resourceVersion: of two contenders, one gets a Conflict."""
        return self._json("PUT", f"/apis/coordination.k8s.io/v1/namespaces/{_q(namespace)}/leases/{_q(name)}",
                          body=manifest, own=True)

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}")

    def create_namespace(self, manifest: dict[str, Any]) -> None:
        """Create a namespace; one that already exists is fine (another worker may have won the race)."""
        try:
            self._send("POST", "/api/v1/namespaces", body=manifest)
        except errors.Conflict:
            pass

    def get_namespace(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/namespaces/{_q(name)}")

    def delete_namespace(self, name: str) -> bool:
        """Start deleting a namespace and everything in it; False if there was none."""
        try:
            self._send("DELETE", f"/api/v1/namespaces/{_q(name)}",
                       body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
        except errors.NotFound:
            return False
        return True

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/namespaces/{_q(namespace)}/secrets/{_q(name)}", own=True)

    def create_secret(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/namespaces/{_q(namespace)}/secrets", body=manifest, own=True)

    def replace_secret(self, namespace: str, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """PUT with the manifest's resourceVersion: a concurrent change makes this a Conflict, not a lost update."""
        return self._json("PUT", f"/api/v1/namespaces/{_q(namespace)}/secrets/{_q(name)}", body=manifest,
                          own=True)

    def watch_secret(self, namespace: str, name: str, resource_version: str | None,
                     timeout_seconds: int) -> Iterator[dict[str, Any]]:
        """The changes to one Secret after ``resource_version`` (``{"type": "ADDED"|"MODIFIED"|"DELETED"|"ERROR",
        "object": ...}``), until the apiserver ends the watch after ``timeout_seconds``. The name goes in a field
        selector, so RBAC limited to that resourceName allows it."""
        query = {"fieldSelector": f"metadata.name={name}", "watch": "true", "timeoutSeconds": timeout_seconds}
        if resource_version:
            query["resourceVersion"] = resource_version
        timeout = urllib3.Timeout(connect=self._timeout.connect_timeout, read=timeout_seconds + 10)
        response = self._send("GET", f"/api/v1/namespaces/{_q(namespace)}/secrets", query=query, stream=True,
                              timeout=timeout)
        return _watch_events(response)

    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version", own=True)

    # -- tenant walls (gateway/tenancy.py) ---------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The apiserver's URL as configured (kubeconfig or in-cluster)."""
        return self._configuration.host

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a namespaced object the gateway owns (ResourceQuota, LimitRange, NetworkPolicy):
        one idempotent call creates it or brings it back to what the gateway wants."""
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        plural = _PLURALS[kind]
        metadata = manifest["metadata"]
        return self._json("PATCH", f"{base}/namespaces/{_q(metadata['namespace'])}/{plural}/{_q(metadata['name'])}",
                          query={"fieldManager": "tenx-gateway", "force": "true"}, body=manifest,
                          content_type="application/apply-patch+yaml", own=True)  # its own objects: 403 is 502

    # -- job queueing (GATEWAY_QUEUE=kueue; gateway/queueing.py) ----------------------------------------------

    def get_local_queue(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"{KUEUE_API}/namespaces/{_q(namespace)}/localqueues/{_q(name)}", own=True)

    def create_local_queue(self, namespace: str, manifest: dict[str, Any]) -> None:
        """Create a tenant's LocalQueue; one that already exists is fine (another worker may have won the race).
        Not a server-side apply: its ClusterQueue cannot change once it is made."""
        try:
            self._send("POST", f"{KUEUE_API}/namespaces/{_q(namespace)}/localqueues", body=manifest, own=True)
        except errors.Conflict:
            pass

    def list_workloads(self, namespace: str, label_selector: str | None = None) -> dict[str, Any]:
        """Kueue's Workloads in a namespace: one per queued Job, with its place in the queue and why it waits."""
        return self._json("GET", f"{KUEUE_API}/namespaces/{_q(namespace)}/workloads",
                          query={"labelSelector": label_selector} if label_selector else None)

    def list_events(self, namespace: str, field_selector: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/namespaces/{_q(namespace)}/events", query={"fieldSelector": field_selector})

    def get_endpoints(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/namespaces/{_q(namespace)}/endpoints/{_q(name)}")

    @contextlib.contextmanager
    def pod_log(self, namespace: str, name: str, *, container: str, timestamps: bool = False,
                since_time: str | None = None, follow: bool = False,
                idle_timeout: float | None = None, limit_bytes: int | None = None) -> Iterator[Iterator[bytes]]:
        """A container's log as a stream of byte chunks. Leaving the block early reads at most 64 KiB more (so a
        nearly finished answer keeps its connection), then closes the connection: the rest of a long log is never
        read. ``follow`` keeps the stream open while the container runs; ``idle_timeout`` then bounds how long a
        silent stream is waited on; ``limit_bytes`` makes the apiserver end the answer there."""
        query: dict[str, Any] = {"container": container}
        if timestamps:
            query["timestamps"] = "true"
        if since_time:
            query["sinceTime"] = since_time  # not in the client's generated API, hence raw HTTP
        if follow:
            query["follow"] = "true"
        if limit_bytes:
            query["limitBytes"] = limit_bytes  # the answer then ends there: the connection stays reusable
        timeout = None
        if idle_timeout is not None:
            timeout = urllib3.Timeout(connect=self._timeout.connect_timeout, read=idle_timeout)
        try:
            response = self._send("GET", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}/log",
                                  query=query, stream=True, timeout=timeout)
        except errors.BadRequest as exc:  # "container ... is waiting to start" and the like
            raise LogNotAvailable(exc.description) from None
        try:
            yield _chunks(response, self._retry_after)
        finally:
            if not follow:
                _drain_a_little(response)
            _release(response)

    # -- watch and list, for reflectors ------------------------------------------------------------------------

    class Expired(Exception):
        """410 Gone: the resourceVersion a watch or a list continuation asked for is no longer kept; relist."""

    def list_page(self, path: str, *, label_selector: str | None = None, limit: int = 500,
                  continue_token: str | None = None, field_selector: str | None = None) -> dict[str, Any]:
        """One page of a LIST (``limit``/``continue``), as the apiserver's JSON; ``metadata.resourceVersion`` of
        the last page is where a watch starts. An expired continue token raises ``Kube.Expired``."""
        query: dict[str, Any] = {"limit": limit}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if continue_token:
            query["continue"] = continue_token
        response = self._watch_request(path, query, self._timeout)
        try:
            return orjson.loads(response.data)
        finally:
            response.release_conn()

    @contextlib.contextmanager
    def watch(self, path: str, *, resource_version: str, label_selector: str | None = None,
              timeout_seconds: int = 300, field_selector: str | None = None) -> Iterator[Iterator[dict[str, Any]]]:
        """WATCH from ``resource_version`` with bookmarks: the events (``{"type", "object"}``) one by one, as
        they arrive; the apiserver ends the stream after about ``timeout_seconds``. A 410 (at once or as an
        ERROR event) raises ``Kube.Expired``; a broken stream raises ``Unavailable``."""
        query: dict[str, Any] = {"watch": "true", "resourceVersion": resource_version,
                                 "allowWatchBookmarks": "true", "timeoutSeconds": timeout_seconds}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        # silence longer than the server's own timeout plus a margin means the connection is dead
        timeout = urllib3.Timeout(connect=self._timeout.connect_timeout, read=timeout_seconds + 30)
        response = self._watch_request(path, query, timeout, stream=True)
        try:
            yield self._watch_events(response)
        finally:
            _release(response)

    def _watch_events(self, response: urllib3.BaseHTTPResponse) -> Iterator[dict[str, Any]]:
        pending = b""
        for chunk in _chunks(response):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                event = orjson.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    if status.get("code") == 410:
                        raise Kube.Expired(status.get("message", "too old resource version"))
                    raise errors.Unavailable(f"the watch ended with an error: {status.get('message', '')}")
                yield event

    def _watch_request(self, path: str, query: dict[str, Any], timeout: urllib3.Timeout,
                       stream: bool = False) -> urllib3.BaseHTTPResponse:
        """GET, with 410 told apart from the other refusals (``_send`` folds it into a generic error)."""
        started = time.perf_counter()
        try:
            response = self._pool.request("GET", self._url(path, query), headers=self._headers(),
                                          timeout=timeout, preload_content=not stream)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            metrics.observe_kube_call("GET", path, None, started)
            raise errors.Unavailable(f"the cluster is not reachable ({type(exc).__name__})") from None
        metrics.observe_kube_call("GET", path, response.status, started)
        if response.status == 410:
            _read_capped(response)
            raise Kube.Expired("410 Gone")
        if response.status >= 400:
            raise self._translate(response.status, response.data if not stream else _read_capped(response))
        return response

    @contextlib.contextmanager
    def container_log(self, namespace: str, name: str, *, container: str, since_time: str | None,
                      previous: bool = False, follow: bool = False,
                      idle_timeout: float | None = None) -> Iterator[Iterator[bytes]]:
        """A container attempt's timestamped log, for the collector: the current attempt, or with ``previous``
        the one before the last restart (what a stream that was down while the container restarted missed)."""
        query: dict[str, Any] = {"container": container, "timestamps": "true"}
        if since_time:
            query["sinceTime"] = since_time
        if previous:
            query["previous"] = "true"
        if follow:
            query["follow"] = "true"
        timeout = urllib3.Timeout(connect=self._timeout.connect_timeout,
                                  read=idle_timeout if idle_timeout is not None else self._timeout.read_timeout)
        try:
            response = self._send("GET", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}/log",
                                  query=query, stream=True, timeout=timeout)
        except errors.BadRequest as exc:  # "container ... is waiting to start", "previous terminated ... not found"
            raise LogNotAvailable(exc.description) from None
        try:
            yield _chunks(response)
        finally:
            _release(response)


def _chunks(response: urllib3.BaseHTTPResponse, retry_after: str | None = None) -> Iterator[bytes]:
    try:
        yield from response.stream(_CHUNK, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError):
        raise errors.Unavailable("the stream from the cluster broke off; try again",
                                 headers={"Retry-After": retry_after} if retry_after else None) from None


class ChunkStream:
    """A response body chunk by chunk, with a ``close`` that releases the connection even if the body was never
    read (a generator's ``finally`` would not run then: a HEAD request kept the connection forever). A break in
    the middle raises ``Unavailable`` from the iteration."""

    def __init__(self, response: urllib3.BaseHTTPResponse, retry_after: str | None = None):
        self._response = response
        self._chunks = _chunks(response, retry_after)

    def __iter__(self) -> ChunkStream:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()
        _drain_a_little(self._response)
        _release(self._response)


def _encode(body: Any) -> bytes:
    """JSON for the apiserver. What cannot be UTF-8 (a lone surrogate) or an int64 is the caller's 400, not a
    crash; the schemas should have refused it already."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        raise errors.BadRequest(f"the request holds a value the cluster cannot take: {exc}") from None


def _watch_events(response: urllib3.BaseHTTPResponse) -> Iterator[dict[str, Any]]:
    """A watch answer is one JSON event per line."""
    pending = b""
    try:
        for chunk in _chunks(response):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield orjson.loads(line)
    finally:
        _release(response)


def _release(response: urllib3.BaseHTTPResponse) -> None:
    """Close a stream: a no-op for its connection once read to the end (urllib3 has put it back in the pool);
    otherwise the connection is dropped, so the apiserver stops sending."""
    response.close()
    response.release_conn()


def _drain_a_little(response: urllib3.BaseHTTPResponse, budget: int = 64 * 1024) -> None:
    """Read what is left of a stream, up to ``budget`` bytes: when that reaches its end, urllib3 puts the
    connection back in the pool and the next call skips a TLS handshake; a longer rest is dropped with the
    connection."""
    try:
        while budget > 0:
            data = response.read(min(budget, _CHUNK), decode_content=False)
            if not data:
                return
            budget -= len(data)
    except (urllib3.exceptions.HTTPError, OSError):
        pass


def _read_capped(response: urllib3.BaseHTTPResponse, limit: int = 64 * 1024) -> bytes:
    try:
        return response.read(limit)
    finally:
        response.release_conn()


def _q(segment: str) -> str:
    return quote(segment, safe="")


class Regions:
    """Region name -> ``Kube``, built on first use (never at import time) and shared by all threads."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._kubes: dict[str, Kube] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._settings.regions)

    def require(self, region: str) -> None:
        if region not in self._settings.regions:
            raise errors.NotFound(f"unknown region {region!r}; supported regions: {', '.join(self.names)}")

    def get(self, region: str) -> Kube:
        self.require(region)
        kube = self._kubes.get(region)
        if kube is None:
            with self._lock:
                kube = self._kubes.get(region)
                if kube is None:
                    kube = Kube(_load_configuration(region, self._settings.regions[region]), self._settings)
                    self._kubes[region] = kube
        return kube


def _load_configuration(region: str, context: str) -> k8s_client.Configuration:
    configuration = k8s_client.Configuration()
    try:
        if context == IN_CLUSTER or (context == CURRENT_CONTEXT and _only_in_cluster_available()):
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(context=context or None, client_configuration=configuration)
    except (ConfigException, OSError) as exc:
        log.error("region %s: cannot load cluster configuration: %s", region, exc)
        raise errors.Unavailable(f"region {region!r} is not configured correctly on this gateway") from None
    return configuration


def _only_in_cluster_available() -> bool:
    kubeconfig = os.environ.get("KUBECONFIG", os.path.expanduser("~/.kube/config"))
    return "KUBERNETES_SERVICE_HOST" in os.environ and not any(
        os.path.exists(p) for p in kubeconfig.split(os.pathsep) if p)
