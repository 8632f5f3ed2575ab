"""The one way tests, bench and soak start the gateway and wait on things.

- ``free_port()``: a free loopback port.
- ``wait_until(predicate, timeout, interval, what=None)``: poll until ``predicate()`` is truthy.
- ``GatewayServer`` / ``start_gateway(...)``: gunicorn with the shipped gunicorn.conf.py serving ``wsgi:app``, and
  (optionally) its collectors beside it as ``make run`` does (a node collector per node of the local cluster, or the
  apiserver collector), on a kubeconfig and settings of the caller's choosing, with names (gateway namespace, user
  namespace prefix) unique to the instance so that several run at once on the shared cluster.
- ``ApiClient``: a TenxCloud-style client (the original's two headers on every call).

The seed job.json is ``tests.seed.SEED_JOB``. Nothing here imports pytest, so bench and soak use it outside a test run.
"""
from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import requests

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / ".local"
VENV_BIN = Path(sys.executable).parent
ADMIN_KUBECONFIG = LOCAL / "kubeconfig"
KUBECTL = LOCAL / "bin/kubectl"

# What the test gateways run with unless told otherwise: a short user cache (tests add and remove users) and two
# workers (the machine is shared). bench passes ``defaults={}`` to measure the shipped defaults.
TEST_SETTINGS = {"GATEWAY_AUTH_CACHE_SECONDS": "1", "GATEWAY_WORKERS": "2"}

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.1, *,
               what: str | None = None) -> T | None:
    """Poll until ``predicate()`` is truthy and return that value. Past ``timeout`` seconds: None, or, when ``what``
    names the awaited thing, a ``TimeoutError`` that says so."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            if what is not None:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            return None
        time.sleep(interval)


class ApiClient:
    """A TenxCloud-style client: the original's headers on every call."""

    def __init__(self, base: str, username: str, token: str, region: str = "us"):
        self.base = f"{base}/v1/regions/{region}"
        self.username = username
        self.session = requests.Session()
        self.session.headers.update({"username": username, "Authorization": f"token {token}"})

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.base + path, timeout=30, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.session.delete(self.base + path, timeout=30, **kwargs)

    def wait_for(self, name: str, done: Callable[[dict], Any], timeout: float = 90) -> dict:
        """Poll GET /jobs/<name> until ``done(job)``; fail with the last body otherwise."""
        last: dict = {}

        def check() -> dict | None:
            nonlocal last
            last = self.get(f"/jobs/{name}").json()
            return last if done(last) else None

        found = wait_until(check, timeout, interval=0.5)
        assert found is not None, f"job {name} did not get there in {timeout}s: {last.get('status')}"
        return found


def rss_kib(pids) -> int:
    """Resident memory of the processes, summed, in KiB (VmRSS from /proc); a process gone counts 0."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"^VmRSS:\s+(\d+) kB", status, flags=re.MULTILINE).group(1))
    return total


def local_nodes() -> dict[str, Path]:
    """The local cluster's nodes and where each keeps its pods' log files (``cluster.sh nodes``)."""
    listed = subprocess.run([str(ROOT / "deploy/local/cluster.sh"), "nodes"], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    return {name: Path(path) for name, path in (line.split(" ", 1) for line in listed.splitlines() if line)}


def kubectl(*args: str, kubeconfig: Path | str = ADMIN_KUBECONFIG, check: bool = True,
            stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          check=check, timeout=timeout, input=stdin)


class GatewayServer:
    """gunicorn with the shipped config serving the gateway (and optionally its collector).

    ``kubeconfig`` is what the API server and the collector use (default: the local cluster's admin one); the CLI
    (``cli``, ``add_user``) uses ``admin_kubeconfig``, as an operator would. ``letter`` starts the run's names
    (``t``: the tests' session gateway, ``r``: a test's own, ``b``: bench). ``gateway_namespace`` names an existing
    namespace for the gateway's own objects instead of a fresh one; it is kept by ``close()``. ``settings`` are
    ``GATEWAY_*`` variables over ``defaults``. ``collector``: ``True`` or ``"node"`` runs a node collector for each node
    of the local cluster (as ``make run`` does), ``"apiserver"`` the collector that follows logs through the
    apiserver. ``app``: the WSGI application gunicorn serves (``module:variable``, importable from the checkout).
    """

    def __init__(self, workdir: Path | str, *, kubeconfig: Path | str | None = None, collector: bool | str = False,
                 letter: str = "r", gateway_namespace: str | None = None, output: Path | None = None,
                 defaults: dict[str, str] = TEST_SETTINGS, run_id: str | None = None,
                 admin_kubeconfig: Path | str = ADMIN_KUBECONFIG, app: str = "wsgi:app", **settings: str):
        self.app = app
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        run_id = run_id or secrets.token_hex(3)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_port = free_port()  # GATEWAY_METRICS_BIND: /metrics is not on the API port
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.namespace_prefix = f"{letter}{run_id}-"
        self.gateway_namespace = gateway_namespace or f"tenx-gateway-{letter}{run_id}"
        self.keep_gateway_namespace = gateway_namespace is not None
        self.output = Path(output) if output else self.workdir / "gunicorn.log"
        self.collector_output = self.output.with_name("collector.log")
        self.host_volume_root = self.workdir / "app_data"
        self.admin_env = {
            **os.environ,
            "KUBECONFIG": str(admin_kubeconfig),
            "GATEWAY_BIND": f"127.0.0.1:{self.port}",
            "GATEWAY_NAMESPACE": self.gateway_namespace,
            "GATEWAY_NAMESPACE_PREFIX": self.namespace_prefix,
            "GATEWAY_HOST_VOLUME_ROOT": str(self.host_volume_root),
            "GATEWAY_DATA_DIR": str(self.workdir / "data"),  # the log archive (SQLite)
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
            "GATEWAY_METRICS_BIND": f"127.0.0.1:{self.metrics_port}",
            **defaults,
            **settings,
        }
        self.server_env = dict(self.admin_env, KUBECONFIG=str(kubeconfig or admin_kubeconfig))
        self.process: subprocess.Popen | None = None
        self.collectors: dict[str, subprocess.Popen] = {}  # node name, or "apiserver"
        self.collector_ports: dict[str, int] = {}  # their /healthz and /metrics
        self.collector_mode = "node" if collector is True else (collector or None)
        assert self.collector_mode in (None, "node", "apiserver"), collector

    @property
    def env(self) -> dict[str, str]:
        """The settings with the admin kubeconfig (for the CLI and checks behind the gateway's back)."""
        return self.admin_env

    @property
    def volume_root(self) -> str:
        return str(self.host_volume_root)

    @property
    def workers(self) -> int:
        """gunicorn's worker count, as gunicorn.conf.py computes it."""
        return int(self.server_env.get("GATEWAY_WORKERS") or min(4, os.cpu_count() or 1))

    def start(self, timeout: float = 60) -> "GatewayServer":
        """Start gunicorn (and the collector) and return once every worker is up and /healthz answers."""
        with open(self.output, "ab") as sink:
            self.process = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
                                             self.app], cwd=ROOT, env=self.server_env, stdout=sink,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if self.collector_mode:
            self.start_collector()

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_text()[-3000:]}")
            try:
                requests.get(self.url + "/healthz", timeout=2)
            except requests.ConnectionError:
                return False
            return len(self.worker_pids()) >= self.workers

        try:
            if not wait_until(up, timeout):
                raise RuntimeError(f"gateway did not start within {timeout}s:\n{self.log_text()[-3000:]}")
        except BaseException:
            self.terminate()
            raise
        return self

    def start_collector(self) -> None:
        """The collectors (``collector_mode``), with the server's settings, as ``make run`` starts them beside the
        API: without gunicorn's PROMETHEUS_MULTIPROC_DIR, whose stale files gunicorn deletes as it starts (a
        collector's own, just made, went with them and it died). Output in ``collector[-<node>].log``."""
        env = {k: v for k, v in self.server_env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        if self.collector_mode == "apiserver":
            runs = {"apiserver": ([], env, self.collector_output)}
        else:
            runs = {node: (["--node", node], {**env, "GATEWAY_COLLECTOR_POD_LOGS_DIR": str(directory)},
                           self.collector_output.with_name(f"collector-{node}.log"))
                    for node, directory in local_nodes().items()}
        for name, (args, run_env, output) in runs.items():
            self.collector_ports[name] = free_port()
            run_env = {**run_env, "GATEWAY_COLLECTOR_PORT": str(self.collector_ports[name])}
            with open(output, "ab") as sink:
                self.collectors[name] = subprocess.Popen([str(VENV_BIN / "tenx-gateway"), "collect", *args],
                                                         cwd=ROOT, env=run_env, stdout=sink,
                                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def open_archive(self):
        """The gateway's log archive, opened beside it (close it when done)."""
        from gateway.store import open_store
        return open_store(self.server_env.get("GATEWAY_ARCHIVE_URL")
                          or f"sqlite:///{self.workdir / 'data' / 'archive.db'}")

    def collector_metrics(self, name: str) -> str:
        """A collector's /metrics (``name``: its node, or "apiserver")."""
        return requests.get(f"http://127.0.0.1:{self.collector_ports[name]}/metrics", timeout=10).text

    def stop_collectors(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Signal every collector and wait for it (SIGKILL: no goodbye, as a crash)."""
        for process in self.collectors.values():
            if process.poll() is None:
                process.send_signal(sig)
        for process in self.collectors.values():
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)

    def worker_pids(self) -> list[int]:
        """gunicorn's workers: the master's children (the metrics dir cleanup forks nothing)."""
        if not self.process:
            return []
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return sorted(int(c) for c in children)

    def workers_rss_kib(self) -> int:
        """Resident memory of all workers, summed, in KiB (VmRSS from /proc)."""
        return rss_kib(self.worker_pids())

    def log_text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def collector_text(self) -> str:
        """Every collector's output so far."""
        outputs = sorted(self.collector_output.parent.glob("collector*.log"))
        return "".join(path.read_text(errors="replace") for path in outputs)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``tenx-gateway`` with this gateway's settings, on the admin kubeconfig."""
        return subprocess.run([str(VENV_BIN / "tenx-gateway"), *args], env=self.admin_env, capture_output=True,
                              text=True, check=check, timeout=60, stdin=subprocess.DEVNULL)

    def add_user(self, prefix: str = "u", *, check: bool = True) -> ApiClient:
        """A new user, once every worker accepts its token (``wait_until_known``). ``check``: also make sure a
        GET /jobs is a 200."""
        name = f"{prefix}{secrets.token_hex(3)}"
        token = GatewayServer.cli(self, "users", "add", name).stdout.strip()  # the base cli, not an override
        client = ApiClient(self.url, name, token)
        self.wait_until_known(client)
        if check and (status := client.get("/jobs").status_code) != 200:
            raise RuntimeError(f"user {name} not accepted by the gateway: {status}")
        return client

    def wait_until_known(self, client: ApiClient, timeout: float = 120) -> None:
        """Wait until every worker accepts ``client``'s token: each learns a new user through its watch on the users
        Secret, in milliseconds on a quiet machine, in seconds on a loaded one (a fixed sleep failed unrelated
        tests with 401). A connection stays with the worker that accepted it (found in /proc), so new connections
        are made until each worker has let the user in on one; they come from a loopback address of their own, so
        the failed logins they may count are that address's, not the tests' (127.0.0.1). The call, GET /jobs/- (a
        name no Job has), is answered 404 once the credentials pass, without a call to the cluster."""
        deadline = time.monotonic() + timeout
        source = f"127.{secrets.randbelow(250) + 2}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
        headers = dict(client.session.headers)
        path = client.base[len(self.url):] + "/jobs/-"
        confirmed: set[int] = set()
        interval = 0.02
        while not set(self.worker_pids()) <= confirmed:
            assert time.monotonic() < deadline, \
                f"not every worker accepted {client.username} within {timeout}s (those that did: {confirmed})"
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
            try:
                connection.connect()
                local_port = connection.sock.getsockname()[1]
                worker = wait_until(lambda: self._worker_serving(local_port), 10)
                while worker is not None and worker not in confirmed:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    if response.status not in (401, 429, 503):
                        confirmed.add(worker)
                    elif time.monotonic() < deadline:
                        time.sleep(interval)  # a backing-off poll: each 401 counts as a failed login of the user
                        interval = min(1.0, interval * 2)
                    else:
                        break
            except (http.client.HTTPException, OSError):
                pass  # the worker dropped the connection: ask again on a new one
            finally:
                connection.close()

    def _worker_serving(self, client_port: int) -> int | None:
        """The worker holding the server end of the loopback connection from ``client_port`` (None until one has
        accepted it): the socket's inode in /proc/net/tcp, looked up among the workers' open files."""
        sockets = set()
        for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[1].split(":")[1], 16) == self.port and int(fields[2].split(":")[1], 16) == client_port:
                sockets.add(f"socket:[{fields[9]}]")
        for pid in self.worker_pids():
            try:
                descriptors = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in descriptors:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                        return pid
                except OSError:
                    continue
        return None

    def namespace_of(self, client: ApiClient) -> str:
        from gateway.names import namespace_for
        return namespace_for(client.username, self.namespace_prefix)

    def terminate(self, timeout: float = 60) -> int | None:
        """SIGTERM to gunicorn's master and the collectors, SIGKILL past ``timeout``; returns gunicorn's exit code."""
        children = [self.process, *self.collectors.values()]
        for child in children:
            if child and child.poll() is None:
                child.terminate()
        for child in children:
            if child:
                try:
                    child.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(timeout=30)
        return self.process.returncode if self.process else None

    def close(self) -> None:
        """Stop it and delete its namespaces (the users' ones and, unless it was given, the gateway's own)."""
        self.terminate()
        admin = self.admin_env["KUBECONFIG"]
        listed = kubectl("get", "namespaces", "-o", "name", kubeconfig=admin, check=False).stdout.split()
        doomed = [n.split("/", 1)[1] for n in listed if n.split("/", 1)[1].startswith(self.namespace_prefix)]
        if not self.keep_gateway_namespace:
            doomed.append(self.gateway_namespace)
        kubectl("delete", "namespace", "--wait=false", "--ignore-not-found", *doomed, kubeconfig=admin, check=False)


class CollectorProcess:
    """``tenx-gateway collect`` alone with ``env``, its health and metrics on a port of its own (the collector
    tests and bench run several at once); output appended to ``log``."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.log = log
        with open(log, "ab") as sink:
            self.process = subprocess.Popen([str(VENV_BIN / "tenx-gateway"), "collect"], cwd=ROOT,
                                            env={**env, "GATEWAY_COLLECTOR_PORT": str(self.port)},
                                            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def metrics_text(self, timeout: float = 5) -> str:
        return requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=timeout).text

    def healthz(self) -> int:
        """/healthz's status, 0 when nothing answers."""
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code
        except requests.ConnectionError:
            return 0

    def stop(self) -> None:
        """SIGCONT (a test may have frozen it), SIGTERM, SIGKILL after 30 s."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gateway(workdir: Path | str, **options: Any) -> GatewayServer:
    """A started ``GatewayServer`` (see there for ``options``)."""
    return GatewayServer(workdir, **options).start()
