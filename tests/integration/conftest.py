"""Fixtures for tests against the real local control plane (deploy/local/), started or reused on first use."""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from gateway.users import _MISS_REFRESH_SECONDS

from .helpers import ApiClient

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / ".local"
VENV_BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class LocalCluster:
    kubeconfig: str
    kubectl: str

    def kubectl_run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([self.kubectl, "--kubeconfig", self.kubeconfig, *args], capture_output=True,
                              text=True, check=check, timeout=timeout)


@pytest.fixture(scope="session")
def local_cluster() -> LocalCluster:
    """The local cluster, brought up (idempotently) by deploy/local/cluster.sh; never skipped."""
    subprocess.run([str(ROOT / "deploy/local/cluster.sh"), "up"], check=True, stdin=subprocess.DEVNULL)
    return LocalCluster(kubeconfig=str(LOCAL / "kubeconfig"), kubectl=str(LOCAL / "bin/kubectl"))


@pytest.fixture(scope="session")
def kube_api(local_cluster):
    """The official Python client on the admin kubeconfig, for checks behind the gateway's back."""
    from kubernetes import client, config
    api_client = config.new_client_from_config(config_file=local_cluster.kubeconfig)
    yield client
    api_client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningGateway:
    url: str
    env: dict[str, str]
    namespace_prefix: str
    host_volume_root: Path
    process: subprocess.Popen
    output: Path
    collector: subprocess.Popen
    server_env: dict[str, str]

    def start_collector(self) -> subprocess.Popen:
        with open(self.output.with_name("collector.log"), "ab") as sink:
            self.collector = subprocess.Popen([str(VENV_BIN / "tenx-gateway"), "collect"], cwd=ROOT,
                                              env=self.server_env, stdout=sink, stderr=subprocess.STDOUT)
        return self.collector

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "tenx-gateway"), *args], env=self.env, capture_output=True,
                              text=True, check=check, timeout=60)


@pytest.fixture(scope="session")
def gateway(local_cluster, tmp_path_factory) -> RunningGateway:
    """gunicorn serving the gateway as in production, on the local cluster, with names unique to this run.

    TENX_TEST_GATEWAY_KUBECONFIG makes the gateway itself use another kubeconfig (a least-privilege one),
    while fixtures keep the admin one for setup and checks. TENX_TEST_GATEWAY_NAMESPACE (used with it by
    test_deploy.py) names the gateway's own namespace instead of a fresh one; that namespace is kept afterwards.
    """
    run_id = secrets.token_hex(2)
    given_namespace = os.environ.get("TENX_TEST_GATEWAY_NAMESPACE")  # deploy hook: see test_deploy.py
    volume_root = tmp_path_factory.mktemp("app_data")
    port = _free_port()
    env = {
        **os.environ,
        "KUBECONFIG": local_cluster.kubeconfig,
        "GATEWAY_BIND": f"127.0.0.1:{port}",
        "GATEWAY_NAMESPACE": given_namespace or f"tenx-gateway-t{run_id}",
        "GATEWAY_NAMESPACE_PREFIX": f"t{run_id}-",
        "GATEWAY_HOST_VOLUME_ROOT": str(volume_root),
        "GATEWAY_AUTH_CACHE_SECONDS": "1",
        "GATEWAY_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "GATEWAY_WORKERS": "2",
    }
    server_env = dict(env, KUBECONFIG=os.environ.get("TENX_TEST_GATEWAY_KUBECONFIG", local_cluster.kubeconfig))
    output = tmp_path_factory.mktemp("gateway") / "gunicorn.log"
    with open(output, "wb") as sink:
        process = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
                                   cwd=ROOT, env=server_env, stdout=sink, stderr=subprocess.STDOUT)
    running = RunningGateway(f"http://127.0.0.1:{port}", env, f"t{run_id}-", volume_root, process, output,
                             None, server_env)
    collector = running.start_collector()
    url = running.url
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url + "/v1/regions/us/jobs", timeout=2)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                collector.kill()
                pytest.fail(f"gateway did not start:\n{output.read_text()[-4000:]}")
            time.sleep(0.2)
    yield running
    for child in (process, running.collector):
        child.terminate()
    for child in (process, running.collector):
        child.wait(timeout=30)
    _delete_namespaces(local_cluster, None if given_namespace else env["GATEWAY_NAMESPACE"],
                       running.namespace_prefix)


def _delete_namespaces(cluster: LocalCluster, gateway_namespace: str | None, prefix: str) -> None:
    listed = cluster.kubectl_run("get", "namespaces", "-o", "name", check=False).stdout.split()
    doomed = [n.split("/", 1)[1] for n in listed if n.split("/", 1)[1].startswith(prefix)]
    doomed += [gateway_namespace] if gateway_namespace else []
    if doomed:
        cluster.kubectl_run("delete", "namespace", "--wait=false", "--ignore-not-found", *doomed, check=False)


@pytest.fixture(scope="session")
def make_user(gateway):
    """Creates gateway users through the real CLI; returns an ApiClient for each."""
    def make(prefix: str = "u") -> ApiClient:
        name = f"{prefix}{secrets.token_hex(3)}"
        token = gateway.cli("users", "add", name).stdout.strip()
        # a worker that read the user table less than _MISS_REFRESH_SECONDS before the add does not re-read it for
        # an unknown name until then: a call right away could be a 401 (and count as a failed login)
        time.sleep(_MISS_REFRESH_SECONDS + 0.1)
        return ApiClient(gateway.url, name, token)
    return make


@pytest.fixture
def user(make_user) -> ApiClient:
    return make_user()
