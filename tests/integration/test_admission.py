"""deploy/admission.yaml against the real local apiserver, with the gateway's ServiceAccount's own token: the
cluster, not the gateway's code, refuses what the gateway must never write (a Job outside a user namespace, a pod
that can escalate or carries a token, a host folder outside the owner's, a namespace without the managed-by label),
each with the policy's message, and accepts exactly what the gateway builds (gateway/jobs/manifest.py, gateway/jobs/walls.py).

Creates are server-side dry runs where nothing needs to exist afterwards: admission runs on them all the same.
"""
from __future__ import annotations

import copy
import json
import secrets

import pytest
import yaml

from gateway.jobs import walls
from gateway.settings import Settings
from gateway.jobs.manifest import build_job, namespace_manifest
from gateway.api.schemas import JobSpecSchema
from tests.support.harness import kubectl
from tests.support.seed import SEED_JOB

from tests.support.conditions import until
from tests.support.deployed import (ADMISSION_KINDS, JOBS_POLICY, NAMESPACES_POLICY, SA_USER, TENANT_OBJECTS_POLICY,
                                    apply, host_volume_root_of, one)

MANAGED_BY = {"app.kubernetes.io/managed-by": "tenx-gateway"}


# -- fixtures --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def host_volume_root(manifests) -> str:
    """The host folder root the policy holds as deploy/ ships it: GATEWAY_HOST_VOLUME_ROOT of gateway.env."""
    root = host_volume_root_of(one(manifests, "ValidatingAdmissionPolicy", JOBS_POLICY))
    assert root == one(manifests, "ConfigMap")["data"]["GATEWAY_HOST_VOLUME_ROOT"]
    return root


@pytest.fixture(scope="module")
def admission(local_cluster, manifests, rbac_applied, sa_kubeconfig):
    """deploy/'s policies and bindings, applied for real (cluster-scoped, idempotent, left in place like the RBAC:
    they bind only the deployed ServiceAccount), and in force: the first refusal seen."""
    objects = [m for m in manifests if m["kind"] in ADMISSION_KINDS]
    assert len(objects) == 6
    apply(objects)
    # the apiserver compiles a new or changed policy in the background: wait until each of the three refuses
    until(lambda: _policy_of(_as_gateway(sa_kubeconfig, "create", "--dry-run=server", "-f", "-",
                                         stdin=json.dumps(_namespace(f"adm-probe-{secrets.token_hex(3)}", labels={}))))
          == NAMESPACES_POLICY, 60, "the namespace policy to take effect")
    until(lambda: _policy_of(_create_job(sa_kubeconfig, _bare_job("kube-system")))
          == JOBS_POLICY, 60, "the Job policy to take effect")
    until(lambda: _policy_of(_apply(sa_kubeconfig, _quota("kube-system"), "--dry-run=server"))
          == TENANT_OBJECTS_POLICY, 60, "the tenant-objects policy to take effect")
    return sa_kubeconfig


@pytest.fixture(scope="module")
def tenant(local_cluster, admission):
    """A user namespace made the way the gateway makes it, by the ServiceAccount: (namespace, owner)."""
    owner = f"Adm.{secrets.token_hex(3)}"  # not a DNS label: the folder is the user name as given
    namespace = f"tenx-adm-{secrets.token_hex(3)}"
    created = _as_gateway(admission, "create", "-f", "-",
                          stdin=json.dumps(namespace_manifest(namespace, owner)))
    assert created.returncode == 0, created.stderr
    until(lambda: _policy_of(_create_job(admission, _privileged(_gateway_job(namespace, owner,
                                                                                           "/")))) == JOBS_POLICY,
          60, "the pod policy to take effect")
    yield namespace, owner
    kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def job(tenant, host_volume_root) -> dict:
    """The Job the gateway builds for the seed job.json (a host volume, /etc/localtime read-only) in the tenant's
    namespace: each test breaks one thing of it."""
    namespace, owner = tenant
    return _gateway_job(namespace, owner, host_volume_root)


# -- helpers ---------------------------------------------------------------------------------------------------

def _as_gateway(kubeconfig: str, *args: str, stdin: str | None = None):
    return kubectl(*args, kubeconfig=kubeconfig, stdin=stdin, timeout=60, check=False)


def _create_job(kubeconfig: str, job: dict):
    return _as_gateway(kubeconfig, "create", "--dry-run=server", "-o", "name", "-f", "-",
                       stdin=json.dumps(job))


def _policy_of(result) -> str | None:
    """The policy that refused the request, or None (accepted, or refused by something else)."""
    marker = "ValidatingAdmissionPolicy '"
    if result.returncode == 0 or marker not in result.stderr:
        return None
    return result.stderr.split(marker, 1)[1].split("'", 1)[0]


def _refused(result, policy: str, *message: str) -> None:
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert _policy_of(result) == policy, result.stderr
    assert "denied request:" in result.stderr and "Forbidden" in result.stderr, result.stderr
    for part in message:
        assert part in result.stderr, result.stderr


def _accepted(result) -> None:
    assert result.returncode == 0, result.stderr


def _namespace(name: str, labels: dict, annotations: dict | None = None) -> dict:
    metadata = {"name": name, "labels": labels, **({"annotations": annotations} if annotations else {})}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def _gateway_job(namespace: str, owner: str, root: str) -> dict:
    spec = JobSpecSchema().load(copy.deepcopy(SEED_JOB))
    return build_job(spec, name=f"adm-{secrets.token_hex(3)}", namespace=namespace, username=owner,
                     host_volume_root=root)


def _bare_job(namespace: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "adm-probe", "namespace": namespace},
            "spec": {"suspend": True, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}


def _quota(namespace: str) -> dict:
    return walls.resource_quota(namespace, pods=1, jobs=1, cpu="1", memory="1Gi")


def _apply(kubeconfig: str, objects: dict | list[dict], *args: str):
    """Server-side apply as the gateway does it (field manager tenx-gateway)."""
    stream = yaml.safe_dump_all(objects if isinstance(objects, list) else [objects])
    return _as_gateway(kubeconfig, "apply", "--server-side", "--field-manager=tenx-gateway",
                       "--force-conflicts", *args, "-f", "-", stdin=stream)


def _pod(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def _privileged(job: dict) -> dict:
    # privileged implies escalation: the apiserver's validation refuses privileged with allowPrivilegeEscalation false
    _pod(job)["containers"][0]["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)
    return job


def _volume(job: dict, name: str) -> dict:
    return next(v for v in _pod(job)["volumes"] if v["name"] == name)


# -- what the gateway builds passes ----------------------------------------------------------------------------

def test_the_gateway_s_own_job_is_accepted(local_cluster, admission, job, host_volume_root, tenant):
    pod = _pod(job)
    paths = sorted(v["hostPath"]["path"] for v in pod["volumes"])
    assert paths == ["/etc/localtime", f"{host_volume_root}/{tenant[1]}/job/{job['metadata']['name']}/volume-name1"]
    _accepted(_create_job(admission, job))


def test_a_user_namespace_and_its_walls_are_accepted(local_cluster, admission, tenant):
    """gateway/jobs/walls.py's quota, limits and network policy, server-side applied as the gateway does (field manager
    tenx-gateway): RBAC lets the apply create them by name, and the policy lets them into a user namespace."""
    namespace, _ = tenant
    result = _apply(admission, walls.tenant_walls(namespace, Settings(), ["10.0.0.1/32"]))
    _accepted(result)
    assert len(result.stdout.splitlines()) == 3, result.stdout


def test_a_queued_job_and_the_tenant_s_local_queue_are_accepted(local_cluster, admission, tenant, host_volume_root):
    """With GATEWAY_QUEUE=kueue: the Job labelled for the LocalQueue and suspended, and the LocalQueue itself
    (gateway/jobs/walls.py), created by the ServiceAccount as the gateway creates it (RBAC: localqueues create)."""
    namespace, owner = tenant
    spec = JobSpecSchema().load(copy.deepcopy(SEED_JOB))
    queued = build_job(spec, name=f"adm-{secrets.token_hex(3)}", namespace=namespace, username=owner,
                       host_volume_root=host_volume_root, queue="tenx-gateway")
    assert queued["spec"]["suspend"] is True
    _accepted(_create_job(admission, queued))
    _accepted(_as_gateway(admission, "create", "--dry-run=server", "-f", "-",
                          stdin=json.dumps(walls.local_queue(namespace, "tenx-gateway"))))


# -- what it must never write is refused -----------------------------------------------------------------------

@pytest.mark.parametrize("where, key, value", [
    ("job-label", "kueue.x-k8s.io/queue-name", "another-queue"),
    ("job-label", "kueue.x-k8s.io/priority-class", "urgent"),
    ("job-label", "kueue.x-k8s.io/prebuilt-workload-name", "w"),
    ("job-annotation", "kueue.x-k8s.io/job-min-parallelism", "1"),
    ("pod-label", "kueue.x-k8s.io/queue-name", "tenx-gateway"),
    ("pod-annotation", "kueue.x-k8s.io/podset-required-topology", "zone"),
    ("managed-by", "kueue.x-k8s.io/multikueue", ""),
])
def test_only_the_queue_label_of_kueue_s_is_accepted(local_cluster, admission, job, where, key, value):
    """The queue label names the namespace's own LocalQueue and nothing else of Kueue's goes on a Job: no priority
    to jump the queue, no prebuilt Workload, no partial admission or topology, no other controller."""
    metadata = job["metadata"] if where.startswith("job") else job["spec"]["template"]["metadata"]
    if where.endswith("label"):
        metadata["labels"][key] = value
    elif where.endswith("annotation"):
        metadata.setdefault("annotations", {})[key] = value
    else:
        job["spec"]["managedBy"] = key
    _refused(_create_job(admission, job), JOBS_POLICY,
             "of Kueue's labels and annotations it may carry only kueue.x-k8s.io/queue-name=tenx-gateway")


@pytest.mark.parametrize("change", ["name", "weight", "stop"])
def test_a_local_queue_other_than_the_tenant_s_own_is_refused(local_cluster, admission, tenant, change):
    namespace, _ = tenant
    queue = walls.local_queue(namespace, "tenx-gateway")
    if change == "name":
        queue["metadata"]["name"] = "fast-lane"
    elif change == "weight":
        queue["spec"]["fairSharing"] = {"weight": "100"}
    else:
        queue["spec"]["stopPolicy"] = "Hold"
    result = _as_gateway(admission, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(queue))
    _refused(result, TENANT_OBJECTS_POLICY, "may only create the LocalQueue tenx-gateway")


def test_a_local_queue_outside_a_user_namespace_is_refused(local_cluster, admission):
    result = _as_gateway(admission, "create", "--dry-run=server", "-f", "-",
                         stdin=json.dumps(walls.local_queue("kube-system", "tenx-gateway")))
    _refused(result, TENANT_OBJECTS_POLICY, "localqueues in namespace kube-system refused")


def test_a_job_in_kube_system_is_refused(local_cluster, admission, job):
    job["metadata"]["namespace"] = "kube-system"
    _refused(_create_job(admission, job), JOBS_POLICY,
             "jobs in namespace kube-system refused", "only in a user namespace")


def test_a_job_in_the_gateway_s_own_kind_of_namespace_is_refused(local_cluster, admission, job):
    """Labelled managed-by tenx-gateway but owned by no user, like the gateway's own namespace."""
    namespace = f"tenx-adm-own-{secrets.token_hex(3)}"
    created = _as_gateway(admission, "create", "-f", "-", stdin=json.dumps(namespace_manifest(namespace)))
    try:
        _accepted(created)
        job["metadata"]["namespace"] = namespace
        _refused(_create_job(admission, job), JOBS_POLICY, f"jobs in namespace {namespace} refused")
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def test_a_job_cannot_be_deleted_outside_a_user_namespace(local_cluster, admission):
    """RBAC lets the gateway delete Jobs anywhere (user namespaces cannot be named in advance); the policy does not."""
    name = f"adm-{secrets.token_hex(3)}"
    job = _bare_job("kube-system")
    job["metadata"]["name"] = name
    _accepted(kubectl("create", "-f", "-", stdin=json.dumps(job), check=False))  # suspended: no pod
    try:
        result = _as_gateway(admission, "delete", "--dry-run=server", "-n", "kube-system", f"job/{name}")
        _refused(result, TENANT_OBJECTS_POLICY, "jobs in namespace kube-system refused")
    finally:
        kubectl("delete", "-n", "kube-system", f"job/{name}", "--ignore-not-found", check=False)


def test_walls_outside_a_user_namespace_are_refused(local_cluster, admission):
    result = _apply(admission, _quota("kube-system"), "--dry-run=server")
    _refused(result, TENANT_OBJECTS_POLICY, "resourcequotas in namespace kube-system refused")


def test_a_privileged_pod_is_refused(local_cluster, admission, job):
    _refused(_create_job(admission, _privileged(job)), JOBS_POLICY,
             f"container(s) {_pod(job)['containers'][0]['name']} must set securityContext allowPrivilegeEscalation: "
             "false and may not be privileged")


def test_a_pod_that_may_escalate_is_refused(local_cluster, admission, job):
    del _pod(job)["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    _refused(_create_job(admission, job), JOBS_POLICY, "must set securityContext "
             "allowPrivilegeEscalation: false")


@pytest.mark.parametrize("change", ["capabilities", "seccomp", "procMount"])
def test_a_container_that_widens_its_sandbox_is_refused(local_cluster, admission, job, change):
    context = _pod(job)["containers"][0]["securityContext"]
    context.update({"capabilities": {"capabilities": {"add": ["NET_ADMIN"]}},
                    "seccomp": {"seccompProfile": {"type": "Unconfined"}},
                    "procMount": {"procMount": "Unmasked"}}[change])
    if change == "procMount":
        _pod(job)["hostUsers"] = False  # else the apiserver's own validation refuses Unmasked first
    _refused(_create_job(admission, job), JOBS_POLICY, "may not add capabilities")


@pytest.mark.parametrize("namespace", ["hostNetwork", "hostPID", "hostIPC"])
def test_host_namespaces_are_refused(local_cluster, admission, job, namespace):
    _pod(job)[namespace] = True
    _refused(_create_job(admission, job), JOBS_POLICY,
             "may not use the host's network, PID or IPC namespace")


def test_host_ports_are_refused(local_cluster, admission, job):
    _pod(job)["containers"][0]["ports"] = [{"containerPort": 22, "hostPort": 2222, "protocol": "TCP"}]
    _refused(_create_job(admission, job), JOBS_POLICY, "may not use host ports")


def test_the_seccomp_profile_is_required(local_cluster, admission, job):
    del _pod(job)["securityContext"]
    _refused(_create_job(admission, job), JOBS_POLICY, "seccompProfile.type: RuntimeDefault")


def test_init_containers_are_refused(local_cluster, admission, job):
    init = copy.deepcopy(_pod(job)["containers"][0])
    init["name"] = "init"
    _pod(job)["initContainers"] = [init]
    _refused(_create_job(admission, job), JOBS_POLICY, "may not have init or ephemeral containers")


def test_a_host_path_of_etc_is_refused(local_cluster, admission, job, host_volume_root, tenant):
    _volume(job, "volume-name1")["hostPath"]["path"] = "/etc"
    _refused(_create_job(admission, job), JOBS_POLICY, "volume(s) volume-name1 not allowed",
             f"only hostPath directories under {host_volume_root}/{tenant[1]}/")


# (a ".." segment is refused by the apiserver's own validation before admission; the policy refuses it too)
@pytest.mark.parametrize("path", ["{root}/someone-else/job/x/v", "{root}/{owner}", "{root}/{owner}/",
                                  "{root}/{owner}x/job/x/v", "/{owner}/job/x/v", "{root}//{owner}/job/x/v",
                                  "{root}/./{owner}/job/x/v"])
def test_a_host_path_outside_the_owner_s_folder_is_refused(local_cluster, admission, job, host_volume_root, tenant,
                                                             path):
    _volume(job, "volume-name1")["hostPath"]["path"] = path.format(root=host_volume_root, owner=tenant[1])
    _refused(_create_job(admission, job), JOBS_POLICY, "volume(s) volume-name1 not allowed")


@pytest.mark.parametrize("kind", ["BlockDevice", "CharDevice", "Socket", "File", ""])
def test_only_directories_in_the_owner_s_folder(local_cluster, admission, job, kind):
    """A device node or socket a tenant's root planted in their own folder is no volume for a later job."""
    _volume(job, "volume-name1")["hostPath"]["type"] = kind
    _refused(_create_job(admission, job), JOBS_POLICY, "volume(s) volume-name1 not allowed")


def test_localtime_must_be_read_only(local_cluster, admission, job):
    for container in _pod(job)["containers"]:
        for mount in container["volumeMounts"]:
            mount.pop("readOnly", None)
    _refused(_create_job(admission, job), JOBS_POLICY, "or /etc/localtime mounted read-only")


def test_a_mounted_service_account_token_is_refused(local_cluster, admission, job):
    _pod(job)["automountServiceAccountToken"] = True
    _refused(_create_job(admission, job), JOBS_POLICY, "automountServiceAccountToken: false")


def test_a_pod_that_leaves_the_token_to_the_default_is_refused(local_cluster, admission, job):
    del _pod(job)["automountServiceAccountToken"]
    _refused(_create_job(admission, job), JOBS_POLICY, "automountServiceAccountToken: false")


def test_a_projected_service_account_token_is_refused(local_cluster, admission, job):
    _pod(job)["volumes"].append({"name": "token", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}})
    _pod(job)["containers"][0]["volumeMounts"].append({"name": "token", "mountPath": "/var/run/token"})
    _refused(_create_job(admission, job), JOBS_POLICY, "volume(s) token not allowed")


@pytest.mark.parametrize("source", [{"secret": {"secretName": "s"}}, {"configMap": {"name": "c"}},
                                    {"emptyDir": {}}])
def test_other_volume_types_are_refused(local_cluster, admission, job, source):
    _pod(job)["volumes"].append({"name": "other", **source})
    _refused(_create_job(admission, job), JOBS_POLICY, "volume(s) other not allowed")


def test_another_service_account_is_refused(local_cluster, admission, job):
    _pod(job)["serviceAccountName"] = "deployer"
    _refused(_create_job(admission, job), JOBS_POLICY, "may not name a ServiceAccount")


def test_a_namespace_without_the_label_is_refused(local_cluster, admission):
    name = f"adm-unlabelled-{secrets.token_hex(3)}"
    result = _as_gateway(admission, "create", "--dry-run=server", "-f", "-",
                         stdin=json.dumps(_namespace(name, labels={"app.kubernetes.io/managed-by": "someone"},
                                                     annotations={"tenx-gateway/username": "alice"})))
    _refused(result, NAMESPACES_POLICY, f"namespace {name} refused", "app.kubernetes.io/managed-by=tenx-gateway")


def test_a_namespace_owned_by_a_path_is_refused(local_cluster, admission):
    name = f"adm-path-{secrets.token_hex(3)}"
    result = _as_gateway(admission, "create", "--dry-run=server", "-f", "-",
                         stdin=json.dumps(_namespace(name, MANAGED_BY, {"tenx-gateway/username": "../etc"})))
    _refused(result, NAMESPACES_POLICY, "annotation is not a user name")


def test_the_policies_bind_only_the_gateway(local_cluster, admission, job):
    """The same privileged Job from the operator's (admin) credentials reaches the apiserver's own checks: the
    policies are no wall for anyone but the gateway's ServiceAccount."""
    whoami = _as_gateway(admission, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == SA_USER
    result = kubectl("create", "--dry-run=server", "-o", "name", "-f", "-",
                      stdin=json.dumps(_privileged(job)), check=False)
    _accepted(result)
