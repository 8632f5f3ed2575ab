"""Fixtures for tests against the real local control plane (deploy/local/), started or reused on first use."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..harness import LOCAL, ROOT, ApiClient, GatewayServer


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


@pytest.fixture(scope="session")
def gateway(local_cluster, tmp_path_factory) -> GatewayServer:
    """gunicorn serving the gateway as in production, with its collector, on the local cluster, with names unique to
    this run (tests/harness.py).

    TENX_TEST_GATEWAY_KUBECONFIG makes the gateway itself use another kubeconfig (a least-privilege one),
    while fixtures keep the admin one for setup and checks. TENX_TEST_GATEWAY_NAMESPACE (used with it by
    test_deploy.py) names the gateway's own namespace instead of a fresh one; that namespace is kept afterwards.
    """
    server = GatewayServer(tmp_path_factory.mktemp("gateway"), letter="t", collector=True,
                           kubeconfig=os.environ.get("TENX_TEST_GATEWAY_KUBECONFIG", local_cluster.kubeconfig),
                           gateway_namespace=os.environ.get("TENX_TEST_GATEWAY_NAMESPACE"))  # deploy hook
    try:
        server.start(timeout=60)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.close()


@pytest.fixture(scope="session")
def make_user(gateway):
    """Creates gateway users through the real CLI; returns an ApiClient for each (no call made as the user yet)."""
    def make(prefix: str = "u") -> ApiClient:
        return gateway.add_user(prefix, check=False)
    return make


@pytest.fixture
def user(make_user) -> ApiClient:
    return make_user()
