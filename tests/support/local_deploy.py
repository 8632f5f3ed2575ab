"""The gateway as `make deploy-local` deploys it (deploy/local/deploy.sh), for the tests that call it from outside.

- ``deployment()``: deploy once (under a lock: the deployment has deploy/'s own names, one per cluster at a time),
  yield a ``LocalDeployment``, and take down what runs afterwards (``deploy.sh down``: the namespaces, RBAC and
  admission policies stay, as the other tests use them too).
- ``ServiceClient``: the original API's two headers on every call, each call on a connection of its own, so that the
  Service may send it to either replica.
- ``port_forward``: ``kubectl port-forward`` to one pod's port (a replica on its own, a node collector's metrics).
- ``kill_container``: SIGKILL to every process of a pod's container, from the host (what an OOM kill or a crash
  does; the kubelet starts it again).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import requests

from .harness import ADMIN_KUBECONFIG, KUBECTL, LOCAL, ROOT, VENV_BIN, kubectl

DEPLOY = ROOT / "deploy/local/deploy.sh"
LOCK = LOCAL / "run/deploy-local.lock"
REPORT = ROOT / "build/deploy-local/measured.json"
NAMESPACE = "tenx-gateway"
NODES_NAMESPACE = "tenx-gateway-nodes"
API_SELECTOR = "app.kubernetes.io/name=tenx-gateway"
NODE_COLLECTOR_SELECTOR = "app.kubernetes.io/name=tenx-gateway-node-collector"
HOST_VOLUME_ROOT = Path("/tenxcloud/app_data")  # deploy/gateway.env's, kept by the local overlay
DEPLOY_TIMEOUT = 1800  # a cold image build (2-5 min), a first pull and the pods' start, on a loaded machine
LOCK_TIMEOUT = 3600    # another checkout's run of these tests may hold the deployment that long


def record(**figures) -> None:
    """Keep a measured figure in build/deploy-local/measured.json (timings are reported, never asserted)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    REPORT.write_text(json.dumps({**known, **figures}, indent=2, sort_keys=True) + "\n")


class ServiceClient:
    """A TenxCloud-style client whose every call opens a connection of its own (``Connection: close``)."""

    def __init__(self, url: str, username: str, token: str, region: str = "us"):
        self.url = url
        self.base = f"{url}/v1/regions/{region}"
        self.username = username
        self.token = token
        self.headers = {"username": username, "Authorization": f"token {token}", "Connection": "close"}

    def call(self, method: str, path: str, timeout: float = 30, **kwargs) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, timeout=timeout, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.call("DELETE", path, **kwargs)


KNOWN_IN_A_ROW = 12  # answers in a row that must accept a new user's token before it is used


def wait_until_known(client: ServiceClient, timeout: float = 120) -> None:
    """Wait until the replicas accept ``client``'s new token: each of their workers learns it through its watch
    on the users Secret, in milliseconds on a quiet machine, in seconds on a loaded one. Each call is a connection
    of its own, which the Service and gunicorn hand to any worker of any replica, so KNOWN_IN_A_ROW answers in a
    row that let it in stand for all of them (none of them can be asked on its own from here). The call, GET
    /jobs/- (a name no Job has), is 404 once the credentials pass, without a call to the cluster; the poll backs
    off, as each 401 counts as a failed login."""
    deadline, interval, in_a_row = time.monotonic() + timeout, 0.02, 0
    while in_a_row < KNOWN_IN_A_ROW:
        status = client.get("/jobs/-").status_code
        if status not in (401, 429, 503):
            in_a_row += 1
            continue
        in_a_row = 0
        assert time.monotonic() < deadline, f"{client.username} still answered {status} after {timeout}s"
        time.sleep(interval)
        interval = min(1.0, interval * 2)


@dataclass
class LocalDeployment:
    url: str
    metrics_url: str
    deploy_output: str
    users: list[str] = field(default_factory=list)

    @property
    def admin_env(self) -> dict[str, str]:
        """What the operator's CLI runs with: the admin kubeconfig, the deployed gateway's namespace and archive."""
        return {**os.environ, "KUBECONFIG": str(ADMIN_KUBECONFIG), "GATEWAY_NAMESPACE": NAMESPACE,
                "GATEWAY_ARCHIVE_URL": self.archive_url}

    @property
    def archive_url(self) -> str:
        """The archive the deployment writes to, as the host reaches it (the pods reach 10.88.0.1:19200)."""
        secret = json.loads(kubectl("get", "secret", "-n", NAMESPACE, "-l", API_SELECTOR, "-o", "json").stdout)
        (url,) = {_b64(item["data"]["url"]) for item in secret["items"] if "url" in item.get("data", {})}
        return url.replace("10.88.0.1", "127.0.0.1")

    def add_user(self, prefix: str) -> ServiceClient:
        """A user made by the operator's CLI, once the replicas accept its token (``wait_until_known``)."""
        name = f"{prefix}{os.urandom(3).hex()}"
        token = subprocess.run([str(VENV_BIN / "tenx-gateway"), "users", "add", name], env=self.admin_env,
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        self.users.append(name)
        client = ServiceClient(self.url, name, token)
        wait_until_known(client)
        return client

    def remove_users(self) -> None:
        """The users this run made, their namespaces, archived lines and host folders."""
        for name in self.users:
            subprocess.run([str(VENV_BIN / "tenx-gateway"), "users", "remove", "--purge", name], env=self.admin_env,
                           capture_output=True, text=True, timeout=300)
            shutil.rmtree(HOST_VOLUME_ROOT / name, ignore_errors=True)
        for folder in (HOST_VOLUME_ROOT, HOST_VOLUME_ROOT.parent):  # made by this run's jobs' hostPaths alone
            with contextlib.suppress(OSError):
                folder.rmdir()

    def pods(self, namespace: str = NAMESPACE, selector: str = API_SELECTOR) -> list[dict]:
        """The pods that serve, not those on their way out (a rollout's old ones, terminating)."""
        listed = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json")
        return [pod for pod in json.loads(listed.stdout)["items"] if not pod["metadata"].get("deletionTimestamp")]


def _b64(text: str) -> str:
    import base64
    return base64.b64decode(text).decode()


@contextlib.contextmanager
def exclusive(path: Path, timeout: float) -> Iterator[None]:
    """An flock on ``path`` (.local is shared by every checkout of the cluster), waited for up to ``timeout``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another run holds {path} (a deployment of the gateway) past {timeout} s")
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def deployment() -> Iterator[LocalDeployment]:
    """`deploy.sh up` once; what it deployed is taken down afterwards (`deploy.sh down`)."""
    with exclusive(LOCK, LOCK_TIMEOUT):
        started = time.monotonic()
        done = subprocess.run([str(DEPLOY), "up"], capture_output=True, text=True, timeout=DEPLOY_TIMEOUT,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"deploy.sh up failed:\n{done.stderr[-6000:]}"
        record(deploy_seconds=round(time.monotonic() - started, 1),
               deploy_steps=[line.split("]", 1)[1].strip() for line in done.stderr.splitlines()
                             if re.match(r"\[deploy-local\]\s+\S.*\s\d+ s$", line)])
        url = done.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), f"the last line is not the API's URL: {url!r}"
        deployed = LocalDeployment(url, metrics_url=f"http://127.0.0.1:{_node_port('tenx-gateway-metrics')}/metrics",
                                   deploy_output=done.stderr)
        try:
            yield deployed
        finally:
            deployed.remove_users()
            subprocess.run([str(DEPLOY), "down"], capture_output=True, text=True, timeout=600,
                           stdin=subprocess.DEVNULL)


def _node_port(service: str) -> int:
    got = json.loads(kubectl("get", "service", service, "-n", NAMESPACE, "-o", "json").stdout)
    return got["spec"]["ports"][0]["nodePort"]


@contextlib.contextmanager
def port_forward(namespace: str, pod: str, port: int) -> Iterator[str]:
    """``kubectl port-forward`` to ``pod``'s ``port``: yields ``http://127.0.0.1:<local port>``."""
    process = subprocess.Popen([str(KUBECTL), "--kubeconfig", str(ADMIN_KUBECONFIG), "port-forward", "-n", namespace,
                                f"pod/{pod}", f":{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    try:
        line = process.stdout.readline()  # "Forwarding from 127.0.0.1:41234 -> 8080"
        found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) ->", line)
        assert found, f"kubectl port-forward said {line!r}: {process.stderr.read() if process.poll() else ''}"
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def kill_container(pod: dict, container: str) -> int:
    """SIGKILL every process of ``container`` in ``pod`` (its cgroup's, as the host sees them): no goodbye, as an
    OOM kill. Returns how many processes it signalled."""
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == container]
    container_id = status["containerID"].split("://", 1)[1]
    uid = pod["metadata"]["uid"]
    # cgroupfs: <controller>/<kubelet's cgroupRoot>/kubepods[/<qos>]/pod<uid>/<container id>
    found = [p for p in Path("/sys/fs/cgroup/pids").glob(f"*/kubepods*/**/pod{uid}/{container_id}/cgroup.procs")]
    assert len(found) == 1, f"no single cgroup for container {container_id} of pod {uid}: {found}"
    pids = [int(p) for p in found[0].read_text().split()]
    assert pids, f"container {container} of {pod['metadata']['name']} has no process"
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
