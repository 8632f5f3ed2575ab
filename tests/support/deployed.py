"""The gateway's deployed identity, for test gateways to run as: deploy/'s Namespace, ServiceAccount, RBAC and
admission policies, applied once more under fresh names (kustomize ``namespace:`` and ``nameSuffix:``) with the
same rules. A gateway running as it shares no users Secret and no collector Lease with a `make run`, another
test session or another xdist worker on the same cluster, and is walled by the policies exactly as deployed.

Two things kustomize cannot rename are done here, as an operator's overlay would: the policies' matchConditions
name the renamed ServiceAccount, and the endpoints Role stays in namespace default. The jobs policy's
hostVolumeRoot is the gateway's own volume root, set with ``point_the_jobs_policy_at`` once that is known, as
kustomize does from gateway.env.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

from gateway.jobs.manifest import build_job, namespace_manifest
from gateway.api.schemas import JobSpecSchema

from .harness import ADMIN_KUBECONFIG, KUBECTL, ROOT, kubectl
from .seed import SEED_JOB

DEPLOY = ROOT / "deploy"
NAMESPACE = "tenx-gateway"
SERVICE_ACCOUNT = "tenx-gateway"
SA_USER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
ENDPOINTS_ROLE = "tenx-gateway-apiserver-endpoints"  # the Role (and RoleBinding) in namespace default
NAMESPACES_POLICY = "tenx-gateway-namespaces"
TENANT_OBJECTS_POLICY = "tenx-gateway-tenant-objects"
JOBS_POLICY = "tenx-gateway-jobs"  # the admission policy that holds GATEWAY_HOST_VOLUME_ROOT
ADMISSION_POLICIES = (NAMESPACES_POLICY, TENANT_OBJECTS_POLICY, JOBS_POLICY)
RBAC_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
ADMISSION_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
                  "ValidatingAdmissionPolicyBinding"}


@dataclass(frozen=True)
class DeployedIdentity:
    namespace: str    # the gateway's own namespace (GATEWAY_NAMESPACE): users Secret, collector Lease
    user: str         # system:serviceaccount:<namespace>:<name>
    kubeconfig: str   # holds only a token of that ServiceAccount
    jobs_policy: str  # this copy's tenx-gateway-jobs, by name


def kustomize(path: Path | str) -> list[dict]:
    """What `kubectl apply -k path` would send, built by kubectl's own kustomize."""
    built = kubectl("kustomize", str(path), check=False, timeout=120)
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def one(manifests: list[dict], kind: str, name: str | None = None) -> dict:
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def apply(objects: list[dict]) -> None:
    """`kubectl apply` of shared objects (deploy/'s own names), which another xdist worker may be applying at the
    same moment: a create that loses the race (AlreadyExists) or a stale update (Conflict) is tried again."""
    for attempt in range(5):
        result = kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects), check=False, timeout=120)
        if result.returncode == 0:
            return
        if "AlreadyExists" not in result.stderr and "the object has been modified" not in result.stderr:
            break
        time.sleep(0.5 * (attempt + 1))
    raise AssertionError(f"kubectl apply failed: {result.stderr}")


def service_account_kubeconfig(path: Path, namespace: str, service_account: str, duration: str = "1h") -> str:
    """A kubeconfig with a fresh token of the ServiceAccount, written by deploy/sa-kubeconfig.sh."""
    env = {**os.environ, "KUBECONFIG": str(ADMIN_KUBECONFIG), "KUBECTL": str(KUBECTL)}
    result = subprocess.run([str(DEPLOY / "sa-kubeconfig.sh"), "--duration", duration, "--namespace", namespace,
                             "--service-account", service_account], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)
    path.chmod(0o600)
    return str(path)


def host_volume_root_of(policy: dict) -> str:
    """The host volume root an admission policy tenx-gateway-jobs holds (a CEL string literal)."""
    (variable,) = [v for v in policy["spec"]["variables"] if v["name"] == "hostVolumeRoot"]
    assert re.fullmatch(r"'[^'\\]*'", variable["expression"]), variable
    return variable["expression"][1:-1]


@contextlib.contextmanager
def deployed_service_account(workdir: Path, token_duration: str = "4h",
                             components: tuple[str, ...] = ()) -> Iterator[DeployedIdentity]:
    """deploy/'s identity and walls under fresh names, applied for real; removed afterwards. ``components``:
    deploy/components/ to build in, as an operator's overlay would (their RBAC and policies only)."""
    suffix = f"sa{secrets.token_hex(3)}"
    namespace = f"tenx-gateway-{suffix}"
    workdir.mkdir(parents=True, exist_ok=True)
    with_components = {"components": [os.path.relpath(DEPLOY / "components" / c, workdir / "as-shipped")
                                      for c in components]} if components else {}
    (workdir / "as-shipped").mkdir(exist_ok=True)
    (workdir / "as-shipped" / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(DEPLOY, workdir / "as-shipped")], **with_components}))
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": ["as-shipped"], "namespace": namespace, "nameSuffix": f"-{suffix}"}))
    objects = [m for m in kustomize(workdir) if m["kind"] in RBAC_KINDS | ADMISSION_KINDS]
    service_account = one(objects, "ServiceAccount")["metadata"]["name"]
    user = f"system:serviceaccount:{namespace}:{service_account}"
    for m in objects:
        if m["metadata"]["name"] == f"{ENDPOINTS_ROLE}-{suffix}":
            m["metadata"]["namespace"] = "default"
        if m["kind"] in CLUSTER_SCOPED:
            m["metadata"].pop("namespace", None)
        if m["kind"] == "ValidatingAdmissionPolicy":
            (condition,) = m["spec"]["matchConditions"]
            assert SA_USER in condition["expression"]
            condition["expression"] = condition["expression"].replace(SA_USER, user)
    shipped = kustomize(workdir / "as-shipped")
    for kind, base in (("ClusterRole", "tenx-gateway"), ("Role", "tenx-gateway"), ("Role", ENDPOINTS_ROLE),
                       *(("ValidatingAdmissionPolicy", name) for name in ADMISSION_POLICIES)):
        renamed, original = one(objects, kind, f"{base}-{suffix}"), one(shipped, kind, base)
        if kind == "ValidatingAdmissionPolicy":  # renaming must not have touched what is checked
            assert renamed["spec"]["validations"] == original["spec"]["validations"]
        else:  # nor what is granted
            assert renamed["rules"] == original["rules"]
    doomed = [f"{m['kind'].lower()}.{m['apiVersion'].split('/')[0]}/{m['metadata']['name']}" for m in objects
              if m["kind"] in CLUSTER_SCOPED - {"Namespace"}]
    try:
        applied = kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects), check=False, timeout=120)
        assert applied.returncode == 0, applied.stderr
        kubeconfig = service_account_kubeconfig(workdir / "kubeconfig", namespace, service_account, token_duration)
        yield DeployedIdentity(namespace, user, kubeconfig, f"{JOBS_POLICY}-{suffix}")
    finally:
        kubectl("delete", "--ignore-not-found", "--wait=false", *doomed, f"namespace/{namespace}", check=False,
                timeout=120)
        kubectl("delete", "--ignore-not-found", "-n", "default",
                f"role.rbac.authorization.k8s.io/{ENDPOINTS_ROLE}-{suffix}",
                f"rolebinding.rbac.authorization.k8s.io/{ENDPOINTS_ROLE}-{suffix}", check=False, timeout=120)


def point_the_jobs_policy_at(identity: DeployedIdentity, root: Path | str) -> None:
    """Write a gateway's host volume root (GATEWAY_HOST_VOLUME_ROOT) into this copy of tenx-gateway-jobs and wait
    until the policy accepts, from the ServiceAccount, a Job the gateway would build with a folder under it."""
    root = str(root)
    got = kubectl("get", "validatingadmissionpolicy", identity.jobs_policy, "-o", "json")
    variables = json.loads(got.stdout)["spec"]["variables"]
    index = next(i for i, v in enumerate(variables) if v["name"] == "hostVolumeRoot")
    assert "'" not in root and "\\" not in root, root
    kubectl("patch", "validatingadmissionpolicy", identity.jobs_policy, "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": f"/spec/variables/{index}/expression", "value": f"'{root}'"}]))
    # a user namespace of a user "probe", where the Job the gateway builds passes a dry run once the policy has it
    probe = f"{identity.jobs_policy}-probe"
    kubectl("apply", "-f", "-", stdin=json.dumps(namespace_manifest(probe, "probe")))
    job = build_job(JobSpecSchema().load(SEED_JOB), name="probe", namespace=probe, username="probe",
                    host_volume_root=root)
    try:
        deadline = time.monotonic() + 60
        while True:
            result = kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(job),
                             kubeconfig=identity.kubeconfig, check=False)
            if result.returncode == 0:
                return
            assert time.monotonic() < deadline, f"the admission policy did not take {root}: {result.stderr}"
            time.sleep(0.2)
    finally:
        kubectl("delete", "namespace", probe, "--wait=false", "--ignore-not-found", check=False)
