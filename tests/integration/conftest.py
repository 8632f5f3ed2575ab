"""Fixtures for tests against the real local control plane (deploy/local/), started or reused on first use."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.browser import playwright_browser
from tests.support.harness import LOCAL, ROOT, ApiClient, GatewayServer
from tests.support.deployed import (DEPLOY, NAMESPACE, RBAC_KINDS, SERVICE_ACCOUNT, DeployedIdentity, apply,
                                    deployed_service_account, kustomize, point_the_jobs_policy_at,
                                    service_account_kubeconfig)


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
def gateway_identity(local_cluster, tmp_path_factory) -> DeployedIdentity:
    """The ServiceAccount, RBAC and admission policies of deploy/, under names of this session (deployed.py)."""
    with deployed_service_account(tmp_path_factory.mktemp("serviceaccount")) as identity:
        yield identity


@pytest.fixture(scope="session")
def gateway(local_cluster, gateway_identity, tmp_path_factory) -> GatewayServer:
    """gunicorn serving the gateway as in production, with its collector, on the local cluster, with names unique to
    this session (tests/support/harness.py).

    The API server and the collector act as the deployed ServiceAccount (``gateway_identity``), its namespace as
    GATEWAY_NAMESPACE, under the deployed admission policies, so every test on this gateway also shows that the
    shipped RBAC is enough for what it does and the policies refuse nothing the gateway sends. Fixtures and checks
    behind its back keep the admin kubeconfig, as does the operator's CLI (``add_user``)."""
    server = GatewayServer(tmp_path_factory.mktemp("gateway"), letter="t", collector=True,
                           kubeconfig=gateway_identity.kubeconfig, gateway_namespace=gateway_identity.namespace)
    point_the_jobs_policy_at(gateway_identity, server.host_volume_root)
    try:
        server.start(timeout=60)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.close()


@pytest.fixture(scope="session")
def make_user(gateway):
    """Creates gateway users through the real CLI; returns an ApiClient for each, once every worker accepts it (the
    only calls made as the user: GET /jobs/-, answered 404 without a call to the cluster)."""
    def make(prefix: str = "u") -> ApiClient:
        return gateway.add_user(prefix, check=False)
    return make


@pytest.fixture
def user(make_user) -> ApiClient:
    return make_user()


@pytest.fixture(scope="session")
def manifests(local_cluster) -> list[dict]:
    """What `kubectl apply -k deploy/` would send, built by kubectl's own kustomize."""
    return kustomize(DEPLOY)


@pytest.fixture(scope="session")
def rbac_applied(local_cluster, manifests) -> None:
    """deploy/'s Namespace, ServiceAccount and RBAC, applied for real (the Deployment is not: it would start the
    gateway's pods). Left in place afterwards: applying again is idempotent, and the namespace may hold a
    developer's users Secret from `make run`."""
    objects = [m for m in manifests if m["kind"] in RBAC_KINDS]
    assert {m["kind"] for m in objects} == RBAC_KINDS
    apply(objects)


@pytest.fixture(scope="session")
def sa_kubeconfig(local_cluster, rbac_applied, tmp_path_factory) -> str:
    """A kubeconfig with a fresh 1 h token of the gateway's ServiceAccount, as deployed (tenx-gateway/tenx-gateway)."""
    return service_account_kubeconfig(tmp_path_factory.mktemp("serviceaccount") / "kubeconfig", NAMESPACE,
                                      SERVICE_ACCOUNT)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium under Playwright, one per test module that asks for it (tests/support/browser.py)."""
    with playwright_browser() as launched:
        yield launched
