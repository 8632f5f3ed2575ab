"""deploy/ (the operators' kustomize base) against the real local apiserver: it builds and passes a server-side
dry run, the pod is locked down, and the ServiceAccount's RBAC is enough for the gateway's whole integration
suite and no wider. The Deployment itself is never started: pods of the local cluster run as host processes."""
from __future__ import annotations

import inspect
import json
import os
import re
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NAMESPACE = "tenx-gateway"
SERVICE_ACCOUNT = "tenx-gateway"
USERS_SECRET = "tenx-gateway-users"
LEASE = "tenx-gateway-collector"
LEASES = "leases.coordination.k8s.io"
SA_USER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
USER_NAMESPACE = "tenx-someone"  # stands for any user's namespace, created by the gateway on first use
NESTED = "TENX_TEST_NESTED"      # set for the suite run as the ServiceAccount, so it never recurses

# Every call of gateway/kube.py's Kube and the `kubectl auth can-i` arguments the gateway's ServiceAccount needs
# for it (the API server's and the collector's); None: neither makes the call (only the operator's CLI does, with
# the operator's credentials).
# A new call in kube.py fails test_every_kube_call_is_accounted_for until it is added here and to rbac.yaml.
KUBE_CALLS: dict[str, list[tuple[str, ...]] | None] = {
    "create_namespace": [("create", "namespaces")],
    "list_jobs_stream": [("list", "jobs.batch", "-n", USER_NAMESPACE)],
    "get_job": [("get", "jobs.batch", "-n", USER_NAMESPACE)],
    "create_job": [("create", "jobs.batch", "-n", USER_NAMESPACE)],
    "delete_job": [("delete", "jobs.batch", "-n", USER_NAMESPACE)],
    "list_pods": [("list", "pods", "-n", USER_NAMESPACE)],
    "list_pods_all_namespaces": [("list", "pods", "--all-namespaces")],
    "get_pod": [("get", "pods", "-n", USER_NAMESPACE)],
    "pod_log": [("get", "pods", "--subresource=log", "-n", USER_NAMESPACE)],
    "get_secret": [("get", f"secrets/{USERS_SECRET}", "-n", NAMESPACE)],
    "watch_secret": [("watch", f"secrets/{USERS_SECRET}", "-n", NAMESPACE)],
    "get_lease": [("get", f"{LEASES}/{LEASE}", "-n", NAMESPACE)],
    "create_lease": [("create", LEASES, "-n", NAMESPACE)],
    "replace_lease": [("update", f"{LEASES}/{LEASE}", "-n", NAMESPACE)],
    "version": [("get", "/version")],
    "create_secret": None,
    "replace_secret": None,
    "delete_namespace": None,
}

# What the gateway never does, so its ServiceAccount must not be able to.
DENIED: list[tuple[str, ...]] = [
    ("*", "*"),
    ("get", "namespaces"),
    ("list", "namespaces"),
    ("delete", "namespaces"),
    ("update", "namespaces"),
    ("list", "secrets", "-n", NAMESPACE),
    ("watch", "secrets", "-n", NAMESPACE),
    ("get", "secrets/some-other-secret", "-n", NAMESPACE),
    ("create", "secrets", "-n", NAMESPACE),
    ("update", f"secrets/{USERS_SECRET}", "-n", NAMESPACE),
    ("patch", f"secrets/{USERS_SECRET}", "-n", NAMESPACE),
    ("delete", f"secrets/{USERS_SECRET}", "-n", NAMESPACE),
    ("get", f"secrets/{USERS_SECRET}", "-n", USER_NAMESPACE),
    ("get", "secrets", "-n", "kube-system"),
    ("get", "configmaps", "-n", NAMESPACE),
    ("list", LEASES, "-n", NAMESPACE),
    ("get", f"{LEASES}/some-other-lease", "-n", NAMESPACE),
    ("update", f"{LEASES}/some-other-lease", "-n", NAMESPACE),
    ("delete", f"{LEASES}/{LEASE}", "-n", NAMESPACE),
    ("create", LEASES, "-n", USER_NAMESPACE),
    ("update", f"{LEASES}/kube-scheduler", "-n", "kube-system"),
    ("create", "pods", "-n", USER_NAMESPACE),
    ("delete", "pods", "-n", USER_NAMESPACE),
    ("create", "pods", "--subresource=exec", "-n", USER_NAMESPACE),
    ("watch", "jobs.batch", "-n", USER_NAMESPACE),
    ("update", "jobs.batch", "-n", USER_NAMESPACE),
    ("patch", "jobs.batch", "-n", USER_NAMESPACE),
    ("deletecollection", "jobs.batch", "-n", USER_NAMESPACE),
    ("create", "cronjobs.batch", "-n", USER_NAMESPACE),
    ("create", "deployments.apps", "-n", USER_NAMESPACE),
    ("create", "deployments.apps", "-n", NAMESPACE),
    ("create", "rolebindings.rbac.authorization.k8s.io", "-n", USER_NAMESPACE),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts", "-n", NAMESPACE),
    ("create", "serviceaccounts", "--subresource=token", "-n", NAMESPACE),
    ("get", "nodes"),
]

EXPECTED_CLUSTER_RULES = {
    ("", "namespaces", "create"),
    ("batch", "jobs", "get"), ("batch", "jobs", "list"), ("batch", "jobs", "create"), ("batch", "jobs", "delete"),
    ("", "pods", "get"), ("", "pods", "list"),
    ("", "pods/log", "get"),
}

RBAC_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


# -- helpers ---------------------------------------------------------------------------------------------------

def _kubectl(cluster, *args: str, kubeconfig: str | None = None, stdin: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([cluster.kubectl, "--kubeconfig", kubeconfig or cluster.kubeconfig, *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout)


def _one(manifests: list[dict], kind: str, name: str | None = None) -> dict:
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _can_i(cluster, kubeconfig: str, *args: str) -> bool:
    result = _kubectl(cluster, "auth", "can-i", *args, kubeconfig=kubeconfig, timeout=30)
    answer = result.stdout.strip()
    assert answer.startswith(("yes", "no")), f"kubectl auth can-i {' '.join(args)}: {result.stderr}"
    assert "doesn't have a resource type" not in result.stderr, result.stderr
    return answer.startswith("yes") and result.returncode == 0


def _gunicorn_default(name: str) -> int:
    """A setting of the shipped gunicorn.conf.py as it is without GATEWAY_* overrides."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("GATEWAY_")}
    try:
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))[name]
    finally:
        os.environ.update(saved)


# -- fixtures --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def manifests(local_cluster) -> list[dict]:
    """What `kubectl apply -k deploy/` would send, built by kubectl's own kustomize."""
    result = _kubectl(local_cluster, "kustomize", str(DEPLOY))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rbac_applied(local_cluster, manifests) -> None:
    """deploy/'s Namespace, ServiceAccount and RBAC, applied for real (the Deployment is not: it would start the
    gateway's pods). Left in place afterwards: applying again is idempotent, and the namespace may hold a
    developer's users Secret from `make run`."""
    objects = [m for m in manifests if m["kind"] in RBAC_KINDS]
    assert {m["kind"] for m in objects} == RBAC_KINDS
    stream = yaml.safe_dump_all(objects)
    result = _kubectl(local_cluster, "apply", "-f", "-", stdin=stream)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def sa_kubeconfig(local_cluster, rbac_applied, tmp_path_factory) -> str:
    """A kubeconfig with a fresh 1 h token of the gateway's ServiceAccount, as deployed (tenx-gateway/tenx-gateway)."""
    return _service_account_kubeconfig(local_cluster, tmp_path_factory.mktemp("serviceaccount") / "kubeconfig",
                                       NAMESPACE, SERVICE_ACCOUNT)


# -- the kustomize base ----------------------------------------------------------------------------------------

def test_kustomization_holds_the_gateway_and_nothing_of_the_local_cluster(manifests):
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    config_maps = [name for kind, name in names if kind == "ConfigMap"]
    assert len(config_maps) == 1 and config_maps[0].startswith("tenx-gateway-")  # hash suffix: edits roll pods
    assert names - {("ConfigMap", config_maps[0])} == {
        ("Namespace", NAMESPACE), ("ServiceAccount", SERVICE_ACCOUNT),
        ("ClusterRole", "tenx-gateway"), ("ClusterRoleBinding", "tenx-gateway"),
        ("Role", "tenx-gateway"), ("RoleBinding", "tenx-gateway"), ("PersistentVolumeClaim", "tenx-gateway-data"),
        ("Deployment", "tenx-gateway"), ("Service", "tenx-gateway"), ("PodDisruptionBudget", "tenx-gateway"),
    }
    for m in manifests:
        if m["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert m["metadata"]["namespace"] == NAMESPACE, m["metadata"]
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert not any("local" in entry for entry in kustomization["resources"])


def test_the_server_accepts_the_whole_base_in_a_dry_run(local_cluster, rbac_applied):
    # A server-side dry run cannot create the namespace, so its objects need the real one (rbac_applied).
    result = _kubectl(local_cluster, "apply", "--dry-run=server", "-k", str(DEPLOY))
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/tenx-gateway" in result.stdout and "service/tenx-gateway" in result.stdout
    # The namespace warns about (and enforces) the "restricted" Pod Security level: the pod template must meet it.
    assert "PodSecurity" not in result.stderr, result.stderr


def test_an_image_override_reaches_the_deployment(local_cluster, tmp_path):
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(DEPLOY, tmp_path)],
        "images": [{"name": "tenx-gateway", "newName": "registry.example.com/tenx-gateway", "newTag": "1.2.3"}],
    }))
    result = _kubectl(local_cluster, "kustomize", str(tmp_path))
    assert result.returncode == 0, result.stderr
    deployment = _one(list(yaml.safe_load_all(result.stdout)), "Deployment")
    images = {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert images == {"api": "registry.example.com/tenx-gateway:1.2.3",
                      "collector": "registry.example.com/tenx-gateway:1.2.3"}


POSTGRES_PATCH = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: tenx-gateway, namespace: tenx-gateway}
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  template:
    spec:
      containers:
        - name: api
          env:
            - name: GATEWAY_ARCHIVE_URL
              valueFrom: {secretKeyRef: {name: tenx-gateway-archive, key: url}}
        - name: collector
          env:
            - name: GATEWAY_ARCHIVE_URL
              valueFrom: {secretKeyRef: {name: tenx-gateway-archive, key: url}}
      volumes:
        - name: data
          persistentVolumeClaim: null
          emptyDir: {}
"""
DELETE_CLAIM = """
$patch: delete
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: tenx-gateway-data}
"""


def test_the_readmes_postgres_overlay_scales_out(local_cluster, rbac_applied, tmp_path):
    """deploy/README.md's overlay for several replicas sharing a PostgreSQL archive builds and passes a dry run."""
    (tmp_path / "postgres-patch.yaml").write_text(POSTGRES_PATCH)
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(DEPLOY, tmp_path)],
        "patches": [{"path": "postgres-patch.yaml"},
                    {"target": {"kind": "PersistentVolumeClaim", "name": "tenx-gateway-data"},
                     "patch": DELETE_CLAIM}],
    }))
    built = _kubectl(local_cluster, "kustomize", str(tmp_path))
    assert built.returncode == 0, built.stderr
    manifests = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert not [m for m in manifests if m["kind"] == "PersistentVolumeClaim"]
    deployment = _one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    for container in _containers(deployment).values():
        assert any(e["name"] == "GATEWAY_ARCHIVE_URL" for e in container["env"])
    result = _kubectl(local_cluster, "apply", "--dry-run=server", "-k", str(tmp_path))
    assert result.returncode == 0, result.stderr


def _containers(deployment: dict) -> dict[str, dict]:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_the_pod_is_locked_down_and_configured(manifests):
    deployment = _one(manifests, "Deployment", "tenx-gateway")
    pod = deployment["spec"]["template"]["spec"]
    containers = _containers(deployment)
    assert set(containers) == {"api", "collector"}
    api, collector = containers["api"], containers["collector"]
    assert api["command"][:3] == ["gunicorn", "-c", "/app/gunicorn.conf.py"]
    assert collector["command"] == ["tenx-gateway", "collect"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = _one(manifests, "ConfigMap")
    data = config_map["data"]

    for container in containers.values():
        assert container["image"] == "tenx-gateway:latest"
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == pod["securityContext"]["runAsUser"]
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        # the archive's directory is the shared, persistent volume
        claim = volumes[mounts[data["GATEWAY_DATA_DIR"]]]["persistentVolumeClaim"]["claimName"]
        assert claim == _one(manifests, "PersistentVolumeClaim")["metadata"]["name"]
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}
        assert container["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
        namespace_env = next(e for e in container["env"] if e["name"] == "GATEWAY_NAMESPACE")
        assert namespace_env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"

    # One SQLite writer on a ReadWriteOnce volume: never two pods at once.
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    assert "GATEWAY_ARCHIVE_URL" not in data  # a PostgreSQL URL holds a password: a Secret, not the ConfigMap

    (port,) = api["ports"]
    assert port["containerPort"] == 8080
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert all(key.startswith("GATEWAY_") for key in data)
    assert data["GATEWAY_BIND"] == "0.0.0.0:8080"
    assert data["GATEWAY_REGIONS"] == "us=@in-cluster"

    # The settings parse, and name the Secret and the Lease the Role grants, in the namespace the Role is in.
    from gateway import config
    settings = config.from_env({**data, "GATEWAY_NAMESPACE": deployment["metadata"]["namespace"]})
    assert settings.regions == {"us": config.IN_CLUSTER}
    role = _one(manifests, "Role")
    assert role["metadata"]["namespace"] == settings.namespace
    assert [settings.users_secret] in [rule.get("resourceNames") for rule in role["rules"]]

    # SIGKILL only after the preStop sleep and gunicorn's graceful shutdown are over.
    graceful = int(data.get("GATEWAY_GRACEFUL_TIMEOUT", _gunicorn_default("graceful_timeout")))
    pre_stop = api["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > graceful + int(pre_stop[1])


def test_the_collector_lease_is_the_one_the_role_grants():
    """The Lease's name is fixed in gateway/cli.py; the Role grants get and update on that name only."""
    source = (ROOT / "gateway/cli.py").read_text()
    assert re.search(rf'LeaderElector\([^)]*"{LEASE}"', source), "the collector's Lease name changed"


def test_the_service_reaches_the_pods(manifests):
    service = _one(manifests, "Service", "tenx-gateway")
    deployment = _one(manifests, "Deployment", "tenx-gateway")
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    (container_port,) = _containers(deployment)["api"]["ports"]
    assert port["targetPort"] in (container_port["name"], container_port["containerPort"])
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_the_probed_endpoints_exist():
    from gateway import create_app
    rules = {rule.rule for rule in create_app().url_map.iter_rules()}
    assert {"/healthz", "/readyz"} <= rules


def test_the_image_matches_the_deployment(manifests):
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert len(stages) >= 2 and "python:3.11-slim" in dockerfile
    final = dockerfile[dockerfile.rindex("\nFROM"):]
    user = re.search(r"^USER\s+(\d+)", final, re.M)
    pod = _one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert user and int(user.group(1)) == pod["securityContext"]["runAsUser"]
    assert "--no-index" in final and "gunicorn.conf.py" in final and "wsgi.py" in final
    assert re.search(r"^WORKDIR\s+/app", final, re.M)
    assert all(container["workingDir"] == "/app" for container in pod["containers"])
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".local", ".venv", ".git", "tests", "bench", "deploy/local"} <= ignored


# -- RBAC ------------------------------------------------------------------------------------------------------

def test_rbac_is_exactly_the_gateway_calls_without_wildcards(manifests):
    roles = [m for m in manifests if m["kind"] in ("ClusterRole", "Role")]
    assert "*" not in json.dumps(roles)
    cluster_role = _one(manifests, "ClusterRole", "tenx-gateway")
    granted = {(group, resource, verb) for rule in cluster_role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == EXPECTED_CLUSTER_RULES
    assert not any("resourceNames" in rule or "nonResourceURLs" in rule for rule in cluster_role["rules"])
    role = _one(manifests, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [USERS_SECRET], "verbs": ["get", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [LEASE],
         "verbs": ["get", "update"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    for binding in (m for m in manifests if m["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}]


def test_every_kube_call_is_accounted_for():
    from gateway.kube import Kube
    calls = {name for name, _ in inspect.getmembers(Kube, inspect.isfunction) if not name.startswith("_")}
    assert calls == set(KUBE_CALLS), (
        "gateway/kube.py's calls changed: give each new one its rule in deploy/rbac.yaml (and its comment there) "
        f"and an entry in KUBE_CALLS; new: {sorted(calls - set(KUBE_CALLS))}, gone: {sorted(set(KUBE_CALLS) - calls)}")


def test_the_kubeconfig_holds_only_the_service_account_token(local_cluster, sa_kubeconfig):
    written = yaml.safe_load(Path(sa_kubeconfig).read_text())
    admin = yaml.safe_load(Path(local_cluster.kubeconfig).read_text())
    (user,) = written["users"]
    assert set(user["user"]) == {"token"}
    (cluster,) = written["clusters"]
    assert cluster["cluster"]["server"] in {c["cluster"]["server"] for c in admin["clusters"]}
    assert cluster["cluster"]["certificate-authority-data"]
    whoami = _kubectl(local_cluster, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}",
                      kubeconfig=sa_kubeconfig)
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout == SA_USER


@pytest.mark.parametrize("args", [args for checks in KUBE_CALLS.values() if checks for args in checks],
                         ids=lambda args: " ".join(args))
def test_the_service_account_may_make_each_call(local_cluster, sa_kubeconfig, args):
    assert _can_i(local_cluster, sa_kubeconfig, *args), f"{SA_USER} cannot {' '.join(args)}"


@pytest.mark.parametrize("args", DENIED, ids=lambda args: " ".join(args))
def test_the_service_account_may_do_nothing_else(local_cluster, sa_kubeconfig, args):
    assert not _can_i(local_cluster, sa_kubeconfig, *args), f"{SA_USER} can {' '.join(args)}"


def _service_account_kubeconfig(cluster, path: Path, namespace: str, service_account: str) -> str:
    """A kubeconfig with a fresh 1 h token of the ServiceAccount, written by deploy/sa-kubeconfig.sh."""
    env = {**os.environ, "KUBECONFIG": cluster.kubeconfig, "KUBECTL": cluster.kubectl}
    result = subprocess.run([str(DEPLOY / "sa-kubeconfig.sh"), "--duration", "1h", "--namespace", namespace,
                             "--service-account", service_account], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def isolated_service_account(local_cluster, manifests, tmp_path):
    """deploy/'s Namespace, ServiceAccount and RBAC once more, renamed by kustomize (``namespace:`` and
    ``nameSuffix:``) with the same rules, so that the gateway running as it shares no users Secret and no collector
    Lease with a `make run` or another test run on the same cluster. Removed afterwards."""
    suffix = f"sa{secrets.token_hex(3)}"
    namespace = f"tenx-gateway-{suffix}"
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(DEPLOY, tmp_path)], "namespace": namespace, "nameSuffix": f"-{suffix}"}))
    built = _kubectl(local_cluster, "kustomize", str(tmp_path))
    assert built.returncode == 0, built.stderr
    objects = [m for m in yaml.safe_load_all(built.stdout) if m and m["kind"] in RBAC_KINDS]
    for kind in ("ClusterRole", "Role"):  # renaming must not have touched what is granted
        assert _one(objects, kind)["rules"] == _one(manifests, kind)["rules"]
    cluster_scoped = [f"{m['kind'].lower()}.rbac.authorization.k8s.io/{m['metadata']['name']}" for m in objects
                      if m["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    try:
        applied = _kubectl(local_cluster, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
        assert applied.returncode == 0, applied.stderr
        kubeconfig = _service_account_kubeconfig(local_cluster, tmp_path / "kubeconfig", namespace,
                                                 _one(objects, "ServiceAccount")["metadata"]["name"])
        yield namespace, kubeconfig
    finally:
        _kubectl(local_cluster, "delete", "--ignore-not-found", "--wait=false", *cluster_scoped,
                 f"namespace/{namespace}")


def test_the_gateway_integration_suite_passes_as_the_service_account(isolated_service_account, tmp_path):
    """Every other integration test that starts the gateway, with the API server and the collector (not the
    fixtures, not the operator's CLI) acting as the deployed ServiceAccount, its namespace as GATEWAY_NAMESPACE:
    the RBAC is enough for everything the API and the collector do."""
    if os.environ.get(NESTED):
        pytest.skip("this is the ServiceAccount run already")  # never the case outside that run
    namespace, kubeconfig = isolated_service_account
    suites = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests/integration").glob("test_*.py")
                    if path.name != Path(__file__).name)
    assert suites
    env = {**os.environ, NESTED: "1", "TENX_TEST_GATEWAY_KUBECONFIG": kubeconfig,
           "TENX_TEST_GATEWAY_NAMESPACE": namespace}
    # -p this module: its pytest_collection_modifyitems keeps only the tests that start the gateway
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", __name__,
         f"--basetemp={tmp_path / 'run'}", *suites],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    output = result.stdout + result.stderr
    first_failure = output[output.find("=" * 10):][:5000] if "=" * 10 in output else ""
    assert result.returncode == 0, (f"the integration suite failed with the gateway as the ServiceAccount of "
                                    f"{namespace}:\n{first_failure}\n[...]\n{output[-4000:]}")
    assert " passed" in output.splitlines()[-1], output[-2000:]


def pytest_collection_modifyitems(config, items):
    """Plugin hook for the ServiceAccount run only (loaded there with ``-p``; pytest ignores hooks in test modules):
    keep the tests that use the ``gateway`` fixture, directly or through ``user``/``make_user``. The others (the
    local cluster's own tests, for one) never run the gateway, so running them again as it proves nothing."""
    if not os.environ.get(NESTED):
        return
    keep = [item for item in items if "gateway" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
