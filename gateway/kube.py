"""Kubernetes access: the only module that talks to an apiserver or sees its errors.

The official client loads the kubeconfig or in-cluster config and builds the TLS connection pool; requests go
through that pool as raw HTTP so that Job objects pass through as the apiserver wrote them (no model round trip),
every call has a timeout, and a log can be read as a stream and dropped half-way. ``ApiException`` never leaves
this module: failures become the gateway's own 404, 409, 400 or 503 here.
"""
from __future__ import annotations

import contextlib
import logging
import os
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
_CHUNK = 64 * 1024


class LogNotAvailable(Exception):
    """The apiserver has no log for the container yet (it has not started) or any more."""


class Kube:
    """One region's apiserver: a shared connection pool and the handful of calls the gateway makes."""

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
              stream: bool = False, timeout: urllib3.Timeout | None = None) -> urllib3.BaseHTTPResponse:
        data = orjson.dumps(body) if body is not None else None
        started = time.perf_counter()
        try:
            response = self._pool.request(
                method, self._url(path, query), body=data,
                headers=self._headers("application/json" if data is not None else None),
                timeout=timeout or self._timeout, preload_content=not stream)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            metrics.observe_kube_call(method, path, None, started)
            log.warning("apiserver %s %s failed: %s", method, path, type(exc).__name__)
            raise errors.Unavailable("the cluster is not reachable; try again shortly",
                                     headers={"Retry-After": self._retry_after}) from None
        metrics.observe_kube_call(method, path, response.status, started)
        if response.status >= 400:
            body_bytes = response.data if not stream else _read_capped(response)
            raise self._translate(response.status, body_bytes)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return orjson.loads(self._send(method, path, **kwargs).data)

    def _translate(self, status: int, body: bytes) -> Exception:
        try:
            message = orjson.loads(body).get("message", "") if body else ""
        except orjson.JSONDecodeError:
            message = ""
        if status == 404:
            return errors.NotFound(message or "not found")
        if status == 409:
            return errors.Conflict(message or "conflict")
        if status in (400, 422):
            return errors.BadRequest(f"the cluster rejected the request: {message}")
        if status == 403 and "being terminated" in message:
            return errors.Unavailable("the namespace is being deleted; try again shortly",
                                      headers={"Retry-After": self._retry_after})
        if status in _UNAVAILABLE_STATUSES:
            return errors.Unavailable("the cluster is busy or unavailable; try again shortly",
                                      headers={"Retry-After": self._retry_after})
        log.error("apiserver answered %s: %s", status, message)
        return errors.GatewayError("the cluster refused the gateway's request")

    # -- the calls -----------------------------------------------------------------------------------------

    def list_jobs_stream(self, namespace: str, limit: int | None = None) -> Iterator[bytes]:
        """The JobList as the apiserver writes it, chunk by chunk; a refusal is raised here, before any chunk."""
        response = self._send("GET", f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs",
                              query={"limit": limit} if limit else None, stream=True)
        return _all_chunks(response)

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
        return self._json("GET", "/api/v1/pods", query={"labelSelector": label_selector})

    def get_lease(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"/apis/coordination.k8s.io/v1/namespaces/{_q(namespace)}/leases/{_q(name)}")

    def create_lease(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/apis/coordination.k8s.io/v1/namespaces/{_q(namespace)}/leases", body=manifest)

    def replace_lease(self, namespace: str, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """PUT with the manifest's resourceVersion: of two contenders, one gets a Conflict."""
        return self._json("PUT", f"/apis/coordination.k8s.io/v1/namespaces/{_q(namespace)}/leases/{_q(name)}",
                          body=manifest)

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}")

    def create_namespace(self, manifest: dict[str, Any]) -> None:
        """Create a namespace; one that already exists is fine (another worker may have won the race)."""
        try:
            self._send("POST", "/api/v1/namespaces", body=manifest)
        except errors.Conflict:
            pass

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/namespaces/{_q(namespace)}/secrets/{_q(name)}")

    def create_secret(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/namespaces/{_q(namespace)}/secrets", body=manifest)

    def replace_secret(self, namespace: str, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """PUT with the manifest's resourceVersion: a concurrent change makes this a Conflict, not a lost update."""
        return self._json("PUT", f"/api/v1/namespaces/{_q(namespace)}/secrets/{_q(name)}", body=manifest)

    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version")

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
            yield _chunks(response)
        finally:
            if not follow:
                _drain_a_little(response)
            _release(response)


def _chunks(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    try:
        yield from response.stream(_CHUNK, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError):
        raise errors.Unavailable("the log stream from the cluster broke off; try again") from None


def _all_chunks(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    try:
        yield from _chunks(response)
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
