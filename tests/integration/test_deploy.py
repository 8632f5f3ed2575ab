"""deploy/ (the operators' kustomize base) against the real local apiserver: it builds and passes a server-side
dry run, the pod is locked down, and the ServiceAccount's RBAC is enough for the gateway's whole integration
suite (whose gateway runs as a renamed copy of it, conftest.py's ``gateway_identity``) and no wider. The
Deployment itself is never started: pods of the local cluster run as host processes."""
from __future__ import annotations

import inspect
import json
import os
import re
import runpy
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.harness import ROOT, kubectl, local_nodes
from tests.support.deployed import (ADMISSION_POLICIES, CLUSTER_SCOPED, DEPLOY, ENDPOINTS_ROLE, JOBS_POLICY, NAMESPACE,
                                    SA_USER, SERVICE_ACCOUNT, apply, deployed_service_account, host_volume_root_of,
                                    kustomize, one)
from tests.support.conditions import until

USERS_SECRET = "tenx-gateway-users"
LEASE = "tenx-gateway-collector"
LEASES = "leases.coordination.k8s.io"
USER_NAMESPACE = "tenx-someone"  # stands for any user's namespace, created by the gateway on first use
QUOTA, LIMITS, TENANT_POLICY = "tenx-gateway-quota", "tenx-gateway-limits", "tenx-gateway-tenant"  # gateway/jobs/walls.py
NETWORK_POLICIES = "networkpolicies.networking.k8s.io"
LOCAL_QUEUES, WORKLOADS = "localqueues.kueue.x-k8s.io", "workloads.kueue.x-k8s.io"
LOCAL_QUEUE = "tenx-gateway"  # gateway/names.py

# Every call of gateway/kube/client.py's Kube and the `kubectl auth can-i` arguments the gateway's ServiceAccount needs
# for it (the API server's and the collector's); None: neither makes the call (only the operator's CLI does, with
# the operator's credentials).
# A new call in kube.py fails test_every_kube_call_is_accounted_for until it is added here and to rbac.yaml.
KUBE_CALLS: dict[str, list[tuple[str, ...]] | None] = {
    "create_namespace": [("create", "namespaces")],
    "get_namespace": [("get", "namespaces")],
    # server-side apply: patch, and create when the object is new, of the three walls by name
    "apply": [(verb, f"{resource}/{name}", "-n", USER_NAMESPACE) for verb in ("create", "patch")
              for resource, name in (("resourcequotas", QUOTA), ("limitranges", LIMITS),
                                     (NETWORK_POLICIES, TENANT_POLICY))],
    "list_events": [("list", "events", "-n", USER_NAMESPACE)],
    "get_local_queue": [("get", f"{LOCAL_QUEUES}/{LOCAL_QUEUE}", "-n", USER_NAMESPACE)],
    "create_local_queue": [("create", LOCAL_QUEUES, "-n", USER_NAMESPACE)],
    "list_workloads": [("list", WORKLOADS, "-n", USER_NAMESPACE)],
    "get_endpoints": [("get", "endpoints/kubernetes", "-n", "default")],
    "list_jobs_stream": [("list", "jobs.batch", "-n", USER_NAMESPACE)],
    "get_job": [("get", "jobs.batch", "-n", USER_NAMESPACE)],
    "create_job": [("create", "jobs.batch", "-n", USER_NAMESPACE)],
    "delete_job": [("delete", "jobs.batch", "-n", USER_NAMESPACE)],
    "list_pods": [("list", "pods", "-n", USER_NAMESPACE)],
    "list_pods_all_namespaces": [("list", "pods", "--all-namespaces")],
    # the collector's pod reflector, the API's watch cache (pods and Jobs) and its user table: LIST, then WATCH
    "list_page": [("list", "pods", "--all-namespaces"), ("list", "jobs.batch", "--all-namespaces"),
                  ("list", f"secrets/{USERS_SECRET}", "-n", NAMESPACE)],
    "watch": [("watch", "pods", "--all-namespaces"), ("watch", "jobs.batch", "--all-namespaces"),
              ("watch", f"secrets/{USERS_SECRET}", "-n", NAMESPACE)],
    "get_pod": [("get", "pods", "-n", USER_NAMESPACE)],
    "pod_log": [("get", "pods", "--subresource=log", "-n", USER_NAMESPACE)],
    "get_secret": [("get", f"secrets/{USERS_SECRET}", "-n", NAMESPACE)],
    "get_lease": [("get", f"{LEASES}/{LEASE}", "-n", NAMESPACE)],
    "create_lease": [("create", LEASES, "-n", NAMESPACE)],
    "replace_lease": [("update", f"{LEASES}/{LEASE}", "-n", NAMESPACE)],
    "version": [("get", "/version")],
    "create_secret": None,
    "replace_secret": None,
    "delete_namespace": None,  # `users remove --purge`
}

# What the gateway never does, so its ServiceAccount must not be able to.
DENIED: list[tuple[str, ...]] = [
    ("*", "*"),
    ("list", "namespaces"),
    ("watch", "namespaces"),
    ("delete", "namespaces"),
    ("update", "namespaces"),
    ("patch", "namespaces"),
    # the walls: only the gateway's three objects, never others, never deleted, never a Role
    ("create", "resourcequotas", "-n", USER_NAMESPACE),
    ("patch", "resourcequotas/another-quota", "-n", USER_NAMESPACE),
    ("update", f"resourcequotas/{QUOTA}", "-n", USER_NAMESPACE),
    ("delete", f"resourcequotas/{QUOTA}", "-n", USER_NAMESPACE),
    ("patch", f"resourcequotas/{QUOTA}", "--subresource=status", "-n", USER_NAMESPACE),
    ("patch", "limitranges/another-range", "-n", USER_NAMESPACE),
    ("delete", f"limitranges/{LIMITS}", "-n", USER_NAMESPACE),
    ("patch", f"{NETWORK_POLICIES}/allow-all", "-n", USER_NAMESPACE),
    ("delete", f"{NETWORK_POLICIES}/{TENANT_POLICY}", "-n", USER_NAMESPACE),
    ("list", NETWORK_POLICIES, "-n", USER_NAMESPACE),
    ("create", "roles.rbac.authorization.k8s.io", "-n", USER_NAMESPACE),
    # events are read, never written; endpoints only the API's, in default
    ("create", "events", "-n", USER_NAMESPACE),
    ("watch", "events", "-n", USER_NAMESPACE),
    ("get", "endpoints", "-n", "default"),
    ("list", "endpoints", "-n", "default"),
    ("get", "endpoints/some-service", "-n", "default"),
    ("get", "endpoints/kubernetes", "-n", USER_NAMESPACE),
    ("update", "endpoints/kubernetes", "-n", "default"),
    # its own wall: the admission policies and their bindings
    ("get", f"validatingadmissionpolicies.admissionregistration.k8s.io/{JOBS_POLICY}"),
    ("delete", f"validatingadmissionpolicies.admissionregistration.k8s.io/{JOBS_POLICY}"),
    ("update", f"validatingadmissionpolicies.admissionregistration.k8s.io/{JOBS_POLICY}"),
    ("patch", f"validatingadmissionpolicies.admissionregistration.k8s.io/{JOBS_POLICY}"),
    ("delete", f"validatingadmissionpolicybindings.admissionregistration.k8s.io/{JOBS_POLICY}"),
    ("create", "validatingadmissionpolicybindings.admissionregistration.k8s.io"),
    ("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
    ("list", "secrets", "-n", NAMESPACE),
    ("watch", "secrets", "-n", NAMESPACE),
    ("get", "secrets/some-other-secret", "-n", NAMESPACE),
    ("watch", "secrets/some-other-secret", "-n", NAMESPACE),
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
    # Kueue: LocalQueues read and made (admission.yaml names the one), none changed; Workloads only listed
    ("list", LOCAL_QUEUES, "-n", USER_NAMESPACE),
    ("update", f"{LOCAL_QUEUES}/{LOCAL_QUEUE}", "-n", USER_NAMESPACE),
    ("patch", f"{LOCAL_QUEUES}/{LOCAL_QUEUE}", "-n", USER_NAMESPACE),
    ("delete", f"{LOCAL_QUEUES}/{LOCAL_QUEUE}", "-n", USER_NAMESPACE),
    ("get", f"{WORKLOADS}/some-workload", "-n", USER_NAMESPACE),
    ("watch", WORKLOADS, "-n", USER_NAMESPACE),
    ("update", WORKLOADS, "-n", USER_NAMESPACE),
    ("patch", f"{WORKLOADS}/some-workload", "--subresource=status", "-n", USER_NAMESPACE),
    ("create", "clusterqueues.kueue.x-k8s.io"),
    ("get", "clusterqueues.kueue.x-k8s.io"),
    ("create", "workloadpriorityclasses.kueue.x-k8s.io"),
]

# (API group, resource, verb, the one name it is limited to or None)
EXPECTED_CLUSTER_RULES = {
    ("", "namespaces", "create", None), ("", "namespaces", "get", None),
    ("batch", "jobs", "get", None), ("batch", "jobs", "list", None), ("batch", "jobs", "create", None),
    ("batch", "jobs", "delete", None), ("batch", "jobs", "watch", None),
    ("", "pods", "get", None), ("", "pods", "list", None), ("", "pods", "watch", None),
    ("", "pods/log", "get", None),
    ("", "resourcequotas", "create", QUOTA), ("", "resourcequotas", "patch", QUOTA),
    ("", "limitranges", "create", LIMITS), ("", "limitranges", "patch", LIMITS),
    ("networking.k8s.io", "networkpolicies", "create", TENANT_POLICY),
    ("networking.k8s.io", "networkpolicies", "patch", TENANT_POLICY),
    ("", "events", "list", None),
    ("kueue.x-k8s.io", "localqueues", "get", None), ("kueue.x-k8s.io", "localqueues", "create", None),
    ("kueue.x-k8s.io", "workloads", "list", None),
}


# -- helpers ---------------------------------------------------------------------------------------------------

def _can_i(kubeconfig: str, *args: str) -> bool:
    result = kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, timeout=30, check=False)
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


# -- the kustomize base ----------------------------------------------------------------------------------------



def test_kustomization_holds_the_gateway_and_nothing_of_the_local_cluster(manifests):
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    config_maps = [name for kind, name in names if kind == "ConfigMap"]
    assert len(config_maps) == 1 and config_maps[0].startswith("tenx-gateway-")  # hash suffix: edits roll pods
    assert names - {("ConfigMap", config_maps[0])} == {
        ("Namespace", NAMESPACE), ("ServiceAccount", SERVICE_ACCOUNT),
        ("ClusterRole", "tenx-gateway"), ("ClusterRoleBinding", "tenx-gateway"),
        ("Role", "tenx-gateway"), ("RoleBinding", "tenx-gateway"),
        ("Role", ENDPOINTS_ROLE), ("RoleBinding", ENDPOINTS_ROLE),
        ("PersistentVolumeClaim", "tenx-gateway-data"),
        ("Deployment", "tenx-gateway"), ("Service", "tenx-gateway"), ("Service", "tenx-gateway-metrics"),
        ("PodDisruptionBudget", "tenx-gateway"),
        *(("ValidatingAdmissionPolicy", name) for name in ADMISSION_POLICIES),
        *(("ValidatingAdmissionPolicyBinding", name) for name in ADMISSION_POLICIES),
    }
    for m in manifests:
        if m["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in m["metadata"], m["metadata"]
        elif m["metadata"]["name"] == ENDPOINTS_ROLE:
            assert m["metadata"]["namespace"] == "default"  # where the kubernetes endpoints are
        else:
            assert m["metadata"]["namespace"] == NAMESPACE, m["metadata"]
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert not any("local" in entry for entry in kustomization["resources"])


def test_the_server_accepts_the_whole_base_in_a_dry_run(local_cluster, rbac_applied):
    # A server-side dry run cannot create the namespace, so its objects need the real one (rbac_applied).
    result = kubectl("apply", "--dry-run=server", "-k", str(DEPLOY), check=False)
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/tenx-gateway" in result.stdout and "service/tenx-gateway" in result.stdout
    # The namespace warns about (and enforces) the "restricted" Pod Security level: the pod template must meet it.
    assert "PodSecurity" not in result.stderr, result.stderr


def test_an_image_override_reaches_the_deployment(local_cluster, tmp_path):
    built = _overlay(tmp_path, {
        "images": [{"name": "tenx-gateway", "newName": "registry.example.com/tenx-gateway", "newTag": "1.2.3"}]})
    deployment = one(built, "Deployment")
    images = {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert images == {"api": "registry.example.com/tenx-gateway:1.2.3",
                      "collector": "registry.example.com/tenx-gateway:1.2.3"}


def _overlay(path: Path, kustomization: dict, **files: str) -> list[dict]:
    """An operator's overlay of deploy/ in ``path``, built by kubectl's kustomize."""
    for name, text in files.items():
        (path / name).write_text(text)
    (path / "kustomization.yaml").write_text(yaml.safe_dump({"resources": [os.path.relpath(DEPLOY, path)],
                                                             **kustomization}))
    return kustomize(path)


def test_the_network_policy_component_admits_only_what_the_pod_serves(local_cluster, rbac_applied, manifests,
                                                                      tmp_path):
    components = [os.path.relpath(DEPLOY / "components" / name, tmp_path)
                  for name in ("networkpolicy", "networkpolicy-postgresql")]
    built = _overlay(tmp_path, {"components": components})
    assert len(built) == len(manifests) + 2
    policy = one(built, "NetworkPolicy", "tenx-gateway")
    deployment = one(built, "Deployment", "tenx-gateway")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    api_port, metrics_port = policy["spec"]["ingress"]
    assert api_port == {"ports": [{"port": "http", "protocol": "TCP"}]}  # from anywhere
    assert metrics_port["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics_port["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                                                                           "monitoring"}}}]
    names = {p["name"] for p in _containers(deployment)["api"]["ports"]}
    assert {"http", "metrics"} <= names
    egress_ports = sorted(p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 443, 6443]
    postgres = one(built, "NetworkPolicy", "tenx-gateway-postgresql")
    assert postgres["spec"]["policyTypes"] == ["Egress"]
    assert postgres["spec"]["egress"] == [{"ports": [{"port": 5432, "protocol": "TCP"}]}]
    result = kubectl("apply", "--dry-run=server", "-k", str(tmp_path), check=False)
    assert result.returncode == 0, result.stderr
    assert "networkpolicy.networking.k8s.io/tenx-gateway " in result.stdout


def test_the_node_collector_component_runs_one_reader_per_node_with_only_what_it_needs(local_cluster, rbac_applied,
                                                                                      tmp_path):
    """components/node-collector: a DaemonSet reading /var/log/pods read-only, as root without capabilities, in a
    namespace of its own; its settings agree with the gateway's; its ServiceAccount may list and watch pods and
    nothing else (no pods/log); the gateway's pod loses its apiserver collector. Server-side dry run."""
    components = [os.path.relpath(DEPLOY / "components" / name, tmp_path) for name in ("opensearch", "node-collector")]
    built = _overlay(tmp_path, {"components": components})
    daemonset = one(built, "DaemonSet", "tenx-gateway-node-collector")
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["tenx-gateway", "collect", "--node", "$(NODE_NAME)"]
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["GATEWAY_ARCHIVE_URL"]["valueFrom"] == {"secretKeyRef": {"name": "tenx-gateway-archive", "key": "url"}}
    (logs,) = [v for v in pod["volumes"] if "hostPath" in v]
    assert logs["hostPath"]["path"] == "/var/log/pods"
    assert {"name": logs["name"], "mountPath": "/var/log/pods", "readOnly": True} in container["volumeMounts"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    config_maps = {m["metadata"]["name"].rsplit("-", 1)[0]: m["data"] for m in built if m["kind"] == "ConfigMap"}
    settings, gateway_settings = config_maps["tenx-gateway-node-collector"], config_maps["tenx-gateway"]
    for shared in ("GATEWAY_REGIONS", "GATEWAY_NAMESPACE_PREFIX", "GATEWAY_LOG_TIMEZONE",
                   "GATEWAY_ARCHIVE_RETENTION_DAYS"):
        assert settings[shared] == gateway_settings[shared], shared
    from gateway import settings as config
    parsed = config.from_env({**settings, "GATEWAY_NAMESPACE": NAMESPACE})
    assert parsed.collector_pod_logs_dir == "/var/log/pods"
    assert set(_containers(one(built, "Deployment", "tenx-gateway"))) == {"api"}
    apply([m for m in built if m["kind"] in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")
           and "node-collector" in m["metadata"]["labels"].get("app.kubernetes.io/name", "")])
    who = "system:serviceaccount:tenx-gateway-nodes:tenx-gateway-node-collector"
    for verb, resource, allowed in (("list", "pods", "yes"), ("watch", "pods", "yes"), ("get", "pods/log", "no"),
                                    ("get", "secrets", "no"), ("list", "jobs.batch", "no")):
        answer = kubectl("auth", "can-i", verb, resource, "--all-namespaces", f"--as={who}", check=False)
        assert answer.stdout.strip() == allowed, (verb, resource, answer.stdout)
    result = kubectl("apply", "--dry-run=server", "-k", str(tmp_path), check=False)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^daemonset\.apps/tenx-gateway-node-collector (created|configured|unchanged) \(server dry run\)$",
                     result.stdout, re.M), result.stdout


def test_the_kueue_component_queues_every_job_on_its_cluster_queue(local_cluster, rbac_applied, manifests, tmp_path):
    """components/kueue: the ClusterQueue (shared, admission fair sharing, fed only from the gateway's namespaces)
    and its ResourceFlavor, the setting on, the base's RBAC unchanged (it already has LocalQueues get/create and
    Workloads list); its policy rules in force for a copy of the ServiceAccount: a Job without the queue label or
    not suspended is refused, one with both accepted, a LocalQueue on another ClusterQueue refused. Server-side dry
    run of the whole overlay (the local cluster runs Kueue: deploy/local/kueue/kueue.sh)."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    built = _overlay(overlay, {"components": [os.path.relpath(DEPLOY / "components/kueue", overlay)]})
    queue = one(built, "ClusterQueue", "tenx-gateway")["spec"]
    assert queue["admissionScope"] == {"admissionMode": "UsageBasedAdmissionFairSharing"}
    assert queue["namespaceSelector"] == {"matchLabels": {"app.kubernetes.io/managed-by": "tenx-gateway"}}
    assert {f["name"] for g in queue["resourceGroups"] for f in g["flavors"]} == {
        one(built, "ResourceFlavor")["metadata"]["name"]}
    assert "namespace" not in one(built, "ClusterQueue")["metadata"]
    from gateway import settings as config
    settings = config.from_env({**one(built, "ConfigMap")["data"], "GATEWAY_NAMESPACE": NAMESPACE})
    assert (settings.queue, settings.queue_cluster_queue) == ("kueue", "tenx-gateway")
    assert one(built, "ClusterRole", "tenx-gateway") == one(manifests, "ClusterRole", "tenx-gateway")
    for name, added in ((JOBS_POLICY, 1), ("tenx-gateway-tenant-objects", 1)):
        base = one(manifests, "ValidatingAdmissionPolicy", name)["spec"]["validations"]
        assert one(built, "ValidatingAdmissionPolicy", name)["spec"]["validations"][:len(base)] == base
        assert len(one(built, "ValidatingAdmissionPolicy", name)["spec"]["validations"]) == len(base) + added
    result = kubectl("apply", "--dry-run=server", "-k", str(overlay), check=False)
    assert result.returncode == 0, result.stderr
    assert "clusterqueue.kueue.x-k8s.io/tenx-gateway" in result.stdout

    from gateway.jobs import walls
    from gateway.jobs.manifest import build_job, namespace_manifest
    from gateway.api.schemas import JobSpecSchema
    with deployed_service_account(tmp_path / "identity", "1h", components=("kueue",)) as identity:
        user_namespace = f"{identity.namespace}-user"
        kubectl("apply", "-f", "-", stdin=json.dumps(namespace_manifest(user_namespace, "kueueuser")))
        try:
            spec = JobSpecSchema().load({"containers": [{"image": "busybox"}]})

            def create(job: dict) -> subprocess.CompletedProcess:
                return kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(job),
                               kubeconfig=identity.kubeconfig, check=False)
            queued = build_job(spec, name="queued", namespace=user_namespace, username="kueueuser",
                               host_volume_root="/srv", queue="tenx-gateway")
            until(lambda: "must be created with the label" in create(
                build_job(spec, name="plain", namespace=user_namespace, username="kueueuser",
                          host_volume_root="/srv")).stderr, 60, "the component's Job rule in force")
            # (a labelled Job created unsuspended is accepted: Kueue's own webhook suspends it before the policy
            # looks; the rule holds where that webhook is missing)
            assert create(queued).returncode == 0, create(queued).stderr
            # the LocalQueue rule is another policy's: the apiserver takes each policy's change in on its own
            until(lambda: "feed the ClusterQueue tenx-gateway (components/kueue) only" in kubectl(
                "create", "--dry-run=server", "-f", "-", kubeconfig=identity.kubeconfig, check=False,
                stdin=json.dumps(walls.local_queue(user_namespace, "another-cluster-queue"))).stderr, 60,
                "the component's LocalQueue rule in force")
            mine = kubectl("create", "--dry-run=server", "-f", "-", kubeconfig=identity.kubeconfig, check=False,
                           stdin=json.dumps(walls.local_queue(user_namespace, "tenx-gateway")))
            assert mine.returncode == 0, mine.stderr
        finally:
            kubectl("delete", "namespace", user_namespace, "--wait=false", "--ignore-not-found", check=False)


def _containers(deployment: dict) -> dict[str, dict]:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_the_pod_is_locked_down_and_configured(manifests):
    deployment = one(manifests, "Deployment", "tenx-gateway")
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
    config_map = one(manifests, "ConfigMap")
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
        assert claim == one(manifests, "PersistentVolumeClaim")["metadata"]["name"]
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}
        assert container["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
        namespace_env = next(e for e in container["env"] if e["name"] == "GATEWAY_NAMESPACE")
        assert namespace_env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"

    # One SQLite writer on a ReadWriteOnce volume: never two pods at once.
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    assert "GATEWAY_ARCHIVE_URL" not in data  # a PostgreSQL URL holds a password: a Secret, not the ConfigMap

    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert ports == {"http": 8080, "metrics": 9090}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert all(key.startswith("GATEWAY_") for key in data)
    assert data["GATEWAY_BIND"] == "0.0.0.0:8080"
    assert data["GATEWAY_METRICS_BIND"] == "0.0.0.0:9090"  # its own listener, the port named metrics
    assert data["GATEWAY_REGIONS"] == "us=@in-cluster"

    # The settings parse, and name the Secret and the Lease the Role grants, in the namespace the Role is in.
    from gateway import settings as config
    settings = config.from_env({**data, "GATEWAY_NAMESPACE": deployment["metadata"]["namespace"]})
    assert settings.regions == {"us": config.IN_CLUSTER}
    role = one(manifests, "Role", "tenx-gateway")
    assert role["metadata"]["namespace"] == settings.namespace
    assert [settings.users_secret] in [rule.get("resourceNames") for rule in role["rules"]]

    # SIGKILL only after the preStop sleep and gunicorn's graceful shutdown are over.
    graceful = int(data["GATEWAY_GRACEFUL_TIMEOUT"] if "GATEWAY_GRACEFUL_TIMEOUT" in data
                   else _gunicorn_default("graceful_timeout"))
    pre_stop = api["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > graceful + int(pre_stop[1])


def test_the_collector_lease_is_the_one_the_role_grants():
    """The Lease's name is fixed in gateway/collector/; the Role grants get and update on that name only."""
    from gateway.collector import LEASE as collector_lease
    assert collector_lease == LEASE, "the collector's Lease name changed"


def test_the_service_reaches_the_pods(manifests):
    """The API Service (the one an Ingress points at) reaches the API port only; /metrics has its own Service."""
    deployment = one(manifests, "Deployment", "tenx-gateway")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for name, port_name, number in (("tenx-gateway", "http", 80), ("tenx-gateway-metrics", "metrics", 9090)):
        service = one(manifests, "Service", name)
        assert service["spec"]["type"] == "ClusterIP"
        (port,) = service["spec"]["ports"]
        assert port["port"] == number and port["targetPort"] == port_name
        assert port_name in {p["name"] for p in _containers(deployment)["api"]["ports"]}
        assert service["spec"]["selector"].items() <= labels.items()
    annotations = one(manifests, "Service", "tenx-gateway-metrics")["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                           "prometheus.io/path": "/metrics"}
    assert "annotations" not in one(manifests, "Service", "tenx-gateway")["metadata"]


def test_the_probed_endpoints_exist():
    from gateway import create_app
    rules = {rule.rule for rule in create_app().url_map.iter_rules()}
    assert {"/healthz", "/readyz"} <= rules


def test_the_image_matches_the_deployment(manifests):
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert len(stages) >= 2 and "debian:bookworm-slim" in dockerfile  # Debian's python3.11, as make image
    final = dockerfile[dockerfile.rindex("\nFROM"):]
    user = re.search(r"^USER\s+(\d+)", final, re.M)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert user and int(user.group(1)) == pod["securityContext"]["runAsUser"]
    assert "install.sh python /tmp/wheels" in final and "gunicorn.conf.py" in final and "wsgi.py" in final
    assert "--no-index" in (ROOT / "deploy/image/install.sh").read_text()  # the builder's wheels only
    assert re.search(r"^WORKDIR\s+/app", final, re.M)
    assert all(container["workingDir"] == "/app" for container in pod["containers"])
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".local", ".venv", ".git", "tests", "bench", "deploy/local"} <= ignored


# -- RBAC ------------------------------------------------------------------------------------------------------

def test_rbac_is_exactly_the_gateway_calls_without_wildcards(manifests):
    roles = [m for m in manifests if m["kind"] in ("ClusterRole", "Role")]
    assert "*" not in json.dumps(roles)
    cluster_role = one(manifests, "ClusterRole", "tenx-gateway")
    granted = {(group, resource, verb, name) for rule in cluster_role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]
               for name in rule.get("resourceNames", [None])}
    assert granted == EXPECTED_CLUSTER_RULES
    assert not any("nonResourceURLs" in rule for rule in cluster_role["rules"])
    endpoints = one(manifests, "Role", ENDPOINTS_ROLE)
    assert endpoints["metadata"]["namespace"] == "default"
    assert endpoints["rules"] == [{"apiGroups": [""], "resources": ["endpoints"], "resourceNames": ["kubernetes"],
                                   "verbs": ["get"]}]
    role = one(manifests, "Role", "tenx-gateway")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [USERS_SECRET], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [LEASE],
         "verbs": ["get", "update"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    for binding in (m for m in manifests if m["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}]


def test_every_kube_call_is_accounted_for():
    from gateway.kube.client import Kube
    calls = {name for name, _ in inspect.getmembers(Kube, inspect.isfunction) if not name.startswith("_")}
    assert calls == set(KUBE_CALLS), (
        "gateway/kube/client.py's calls changed: give each new one its rule in deploy/rbac.yaml (and its comment there) "
        f"and an entry in KUBE_CALLS; new: {sorted(calls - set(KUBE_CALLS))}, gone: {sorted(set(KUBE_CALLS) - calls)}")


def test_the_kubeconfig_holds_only_the_service_account_token(local_cluster, sa_kubeconfig):
    written = yaml.safe_load(Path(sa_kubeconfig).read_text())
    admin = yaml.safe_load(Path(local_cluster.kubeconfig).read_text())
    (user,) = written["users"]
    assert set(user["user"]) == {"token"}
    (cluster,) = written["clusters"]
    assert cluster["cluster"]["server"] in {c["cluster"]["server"] for c in admin["clusters"]}
    assert cluster["cluster"]["certificate-authority-data"]
    whoami = kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}",
                      kubeconfig=sa_kubeconfig, check=False)
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout == SA_USER


@pytest.mark.parametrize("args", [args for checks in KUBE_CALLS.values() if checks for args in checks],
                         ids=lambda args: " ".join(args))
def test_the_service_account_may_make_each_call(local_cluster, sa_kubeconfig, args):
    assert _can_i(sa_kubeconfig, *args), f"{SA_USER} cannot {' '.join(args)}"


@pytest.mark.parametrize("args", DENIED, ids=lambda args: " ".join(args))
def test_the_service_account_may_do_nothing_else(local_cluster, sa_kubeconfig, args):
    assert not _can_i(sa_kubeconfig, *args), f"{SA_USER} can {' '.join(args)}"


def test_the_job_policy_holds_the_gateway_s_host_volume_root(manifests, local_cluster, tmp_path):
    """Copied from gateway.env by kustomize; an overlay that changes the setting repeats the replacement (as
    deploy/README.md shows) and the policy follows."""
    settings = one(manifests, "ConfigMap")["data"]
    assert host_volume_root_of(one(manifests, "ValidatingAdmissionPolicy", JOBS_POLICY)) == \
        settings["GATEWAY_HOST_VOLUME_ROOT"] == "/tenxcloud/app_data"
    base = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    built = _overlay(tmp_path, {
        "configMapGenerator": [{"name": "tenx-gateway", "namespace": NAMESPACE, "behavior": "merge",
                                "literals": ["GATEWAY_HOST_VOLUME_ROOT=/srv/tenx"]}],
        "replacements": base["replacements"]})
    assert host_volume_root_of(one(built, "ValidatingAdmissionPolicy", JOBS_POLICY)) == "/srv/tenx"
    readme = (DEPLOY / "README.md").read_text()
    assert "GATEWAY_HOST_VOLUME_ROOT=/srv/tenx" in readme and "spec.variables.[name=hostVolumeRoot].expression" \
        in readme


def test_the_suite_s_gateway_acts_as_the_deployed_service_account(gateway, gateway_identity, make_user):
    """Every integration test on the session's ``gateway`` checks the shipped RBAC and admission policies along the
    way, provided that gateway really acts as the ServiceAccount under them: its API server and its collector hold
    no other credential, its own objects are in the ServiceAccount's namespace, and the jobs policy's copy holds
    its host volume root."""
    for process in (gateway.process, *gateway.collectors.values()):
        environ = dict(item.split("=", 1) for item in
                       Path(f"/proc/{process.pid}/environ").read_text().split("\0") if "=" in item)
        assert environ["KUBECONFIG"] == gateway_identity.kubeconfig
        assert environ["GATEWAY_NAMESPACE"] == gateway_identity.namespace
    written = yaml.safe_load(Path(gateway_identity.kubeconfig).read_text())
    (user,) = written["users"]
    assert set(user["user"]) == {"token"}
    whoami = kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}",
                            kubeconfig=gateway_identity.kubeconfig)
    assert whoami.stdout == gateway_identity.user
    policy = json.loads(kubectl("get", "validatingadmissionpolicy", gateway_identity.jobs_policy,
                                       "-o", "json").stdout)
    assert host_volume_root_of(policy) == str(gateway.host_volume_root)
    assert gateway_identity.user in policy["spec"]["matchConditions"][0]["expression"]
    client = make_user("sa")
    assert client.get("/jobs").status_code == 200  # its namespace and walls were made as the ServiceAccount
    secret = kubectl("get", "secret", USERS_SECRET, "-n", gateway_identity.namespace, "-o", "name")
    assert secret.stdout.strip() == f"secret/{USERS_SECRET}"
    # its node collectors list and watch the pods of their nodes as the ServiceAccount, and report to its archive
    archive = gateway.open_archive()
    try:
        nodes = {f"us/node/{node}" for node in local_nodes()}
        until(lambda: nodes <= set(archive.heartbeats()), 60, "every node collector's heartbeat in the archive")
    finally:
        archive.close()
