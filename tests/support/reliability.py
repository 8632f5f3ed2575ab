"""Helpers for the reliability tests (test_reliability_*.py) and the soak (tests/support/soak.py).

- ``record``: print a test's figures and write them to ``.local/reliability/<name>.json`` (git-ignored), where
  RELIABILITY.md's numbers come from.
- ``SecondApiserver``: a second kube-apiserver process on the shared etcd, with the running one's binary, certificates
  and flags but its own port, so a test can kill, pause and restart *its* apiserver without disturbing the shared
  cluster; and a kubeconfig that points at it.
- ``make_namespace``, ``Load``: a user's namespace made behind the gateway's back; client threads in a loop.
- ``GatewayServer``, ``free_port``, ``wait_until``, ``kubectl``: from tests/support/harness.py (re-exported here).

Nothing here imports pytest, so the soak can use it outside the test run.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import requests

from .harness import (ADMIN_KUBECONFIG, LOCAL, ROOT, VENV_BIN, ApiClient, GatewayServer,  # noqa: F401 (re-exported)
                       free_port, kubectl, wait_until)

RESULTS = LOCAL / "reliability"


def record(name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Print a test's figures and keep them in .local/reliability/<name>.json for RELIABILITY.md."""
    entry = {"test": name, "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **figures}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(entry, indent=2, default=str) + "\n")
    print(f"\n[reliability] {name}: {json.dumps(figures, default=str)}")
    return entry


# -- a second apiserver ------------------------------------------------------------------------------------------


class SecondApiserver:
    """Another kube-apiserver on the local cluster's etcd, for fault injection.

    Its command line is the running apiserver's (read from /proc), with only ``--secure-port`` changed, plus
    ``APIServerIdentity=false``: the identity lease is named after the host, so a second apiserver on the same host
    would otherwise delete the first one's lease on start. The serving certificate covers 127.0.0.1 whatever the port.
    """

    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log = self.workdir / "kube-apiserver.log"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.process: subprocess.Popen | None = None
        self.args = self._args()
        text = ADMIN_KUBECONFIG.read_text()
        self.kubeconfig.write_text(re.sub(r"server: https://127\.0\.0\.1:\d+", f"server: https://127.0.0.1:{self.port}",
                                          text))
        self.kubeconfig.chmod(0o600)
        self._session = requests.Session()
        self._session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment beats `verify` below
        self._session.verify = str(LOCAL / "pki/ca.crt")
        self._session.cert = (str(LOCAL / "pki/admin.crt"), str(LOCAL / "pki/admin.key"))

    @staticmethod
    def _args_of_running() -> list[str]:
        pid = (LOCAL / "run/kube-apiserver.pid").read_text().strip()
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return [a.decode() for a in args if a]

    def _args(self) -> list[str]:
        args = [a for a in self._args_of_running() if not a.startswith("--secure-port")]
        assert args[0].endswith("kube-apiserver"), args[0]
        gates = [a for a in args if a.startswith("--feature-gates=")]
        if gates:
            args.remove(gates[0])
            args.append(gates[0] + ",APIServerIdentity=false")
        else:
            args.append("--feature-gates=APIServerIdentity=false")
        return [*args, f"--secure-port={self.port}"]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, ready_timeout: float = 90) -> float:
        """Start it and wait until /readyz says ok; returns the seconds that took."""
        started = time.monotonic()
        with open(self.log, "ab") as sink:
            self.process = subprocess.Popen(self.args, stdout=sink, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        if not wait_until(self.ready, ready_timeout, interval=0.1):
            tail = self.log.read_text(errors="replace")[-3000:]
            self.kill()
            raise RuntimeError(f"second apiserver not ready within {ready_timeout}s:\n{tail}")
        return time.monotonic() - started

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            return self._session.get(self.url + "/readyz", timeout=2).text == "ok"
        except requests.RequestException:
            return False

    def send(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def pause(self) -> None:
        self.send(signal.SIGSTOP)

    def resume(self) -> None:
        self.send(signal.SIGCONT)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Stop it (SIGTERM: its own graceful shutdown; SIGKILL: at once) and wait for the process to go."""
        if not self.process or self.process.poll() is not None:
            return
        self.resume()  # a stopped process would not act on SIGTERM
        self.send(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def make_namespace(gateway: GatewayServer, client: ApiClient, *, max_pods: int | None = None) -> str:
    """Create a user's namespace as the gateway would (label and annotation), optionally with a ResourceQuota that
    lets no pod (or ``max_pods``) run, so jobs made by fuzzing never run commands on the host."""
    from gateway.names import MANAGED_BY, MANAGED_BY_LABEL, USERNAME_ANNOTATION
    namespace = gateway.namespace_of(client)
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {USERNAME_ANNOTATION: client.username}}}
    kubectl("create", "-f", "-", stdin=json.dumps(manifest))
    if max_pods is not None:
        quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods", "namespace": namespace},
                 "spec": {"hard": {"pods": str(max_pods)}}}
        kubectl("create", "-f", "-", stdin=json.dumps(quota))
    return namespace


# -- load --------------------------------------------------------------------------------------------------------


@dataclass
class Call:
    op: str
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer at all (see error)
    retry_after: str | None = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class Load:
    """Client threads calling the gateway in a loop until stopped, each call recorded as a ``Call``.

    ``ops`` are (name, function(session, thread index, iteration) -> response); each thread has its own
    ``requests.Session`` with the user's headers, so connections are reused as a real client's would be.
    """

    def __init__(self, client: ApiClient, ops: list[tuple[str, Callable]], threads: int = 4, timeout: float = 30):
        self.client = client
        self.ops = ops
        self.threads = threads
        self.timeout = timeout
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _run(self, index: int) -> None:
        session = requests.Session()
        session.headers.update(self.client.session.headers)
        iteration = 0
        while not self._stop.is_set():
            name, op = self.ops[(index + iteration) % len(self.ops)]
            started = time.monotonic()
            try:
                response = op(session, index, iteration)
                call = Call(name, started, time.monotonic(), response.status_code,
                            response.headers.get("Retry-After"))
            except requests.RequestException as exc:
                call = Call(name, started, time.monotonic(), None, error=connection_error_kind(exc))
            with self._lock:
                self.calls.append(call)
            iteration += 1
            if call.status is None:
                self._stop.wait(0.05)  # a client backs off a little when it cannot connect

    def start(self) -> "Load":
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> list[Call]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 10)
        return self.calls

    def between(self, start: float, end: float) -> list[Call]:
        """Calls that started at or after ``start`` and ended by ``end``."""
        with self._lock:
            return [c for c in self.calls if c.started >= start and c.ended <= end]

    def wait_for_calls(self, after: float, count: int, timeout: float) -> bool:
        return bool(wait_until(lambda: len([c for c in list(self.calls) if c.started >= after]) >= count,
                               timeout))


def connection_error_kind(exc: Exception) -> str:
    """'refused' (nothing listens), 'reset' (the connection was dropped without an answer), 'timeout', or the
    exception's type."""
    text = repr(exc)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "refused"
    if any(word in text for word in ("Connection aborted", "RemoteDisconnected", "reset by peer", "BrokenPipe")):
        return "reset"
    if isinstance(exc, requests.Timeout):
        return "timeout"
    return type(exc).__name__


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]  # nearest rank


class _SourceAddressAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, source: str, **kwargs: Any):
        self._source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(source: str, base: str, username: str, token: str) -> ApiClient:
    """An ApiClient whose connections come from another loopback address (127.0.0.0/8 is all this host's), so
    that per-client throttling sees a different client."""
    client = ApiClient(base, username, token)
    client.session.mount("http://", _SourceAddressAdapter(source))
    return client
