"""build_job: golden dicts, one per feature of job.json."""
import copy

import pytest

from gateway.jobs.manifest import build_job, namespace_manifest
from gateway.jobs.scheduling import PodScheduling
from gateway.api.schemas import JobSpecSchema

from tests.support.seed import SEED_JOB

ROOT = "/tenxcloud/app_data"


def build(body, name="job-api", username="nkwanglei8lrp"):
    spec = JobSpecSchema().load(body)
    return build_job(spec, name=name, namespace="tenx-" + username, username=username, host_volume_root=ROOT)


def only_container(job):
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


MINIMAL = {"containers": [{"image": "busybox"}]}
LABELS = {"name": "job-api", "app.kubernetes.io/managed-by": "tenx-gateway"}
LOCKED_CONTAINER = {"allowPrivilegeEscalation": False, "privileged": False,
                    "seccompProfile": {"type": "RuntimeDefault"}}


def test_minimal_job_has_the_originals_shape():
    assert build(MINIMAL) == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "job-api", "namespace": "tenx-nkwanglei8lrp", "labels": LABELS},
        "spec": {
            "parallelism": 1,
            "completions": 1,
            "template": {
                "metadata": {"name": "job-api", "labels": LABELS},
                "spec": {
                    "containers": [{"name": "job-api", "image": "busybox", "securityContext": LOCKED_CONTAINER}],
                    "restartPolicy": "OnFailure",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                },
            },
        },
    }


def test_a_queued_job_is_labelled_for_its_local_queue_and_created_suspended():
    spec = JobSpecSchema().load(MINIMAL)
    job = build_job(spec, name="job-api", namespace="tenx-nkwanglei8lrp", username="nkwanglei8lrp",
                    host_volume_root=ROOT, queue="tenx-gateway")
    unqueued = build(MINIMAL)
    assert job["metadata"] == {"name": "job-api", "namespace": "tenx-nkwanglei8lrp",
                               "labels": {**LABELS, "kueue.x-k8s.io/queue-name": "tenx-gateway"}}
    assert job["spec"] == {**unqueued["spec"], "suspend": True}
    # the pods are not labelled for the queue: Kueue admits the Job, not its pods
    assert job["spec"]["template"] == unqueued["spec"]["template"]
    assert list(job["spec"])[:3] == ["parallelism", "completions", "suspend"]


def test_without_a_queue_there_is_neither_label_nor_suspend():
    job = build(MINIMAL)
    assert "suspend" not in job["spec"] and "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]


def test_the_seed_job_json_maps_like_the_original_response():
    pod = build(SEED_JOB)["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "volume-name1", "hostPath": {"path": "/tenxcloud/app_data/nkwanglei8lrp/job/job-api/volume-name1",
                                              "type": "DirectoryOrCreate"}},
        {"name": "tenxcloud-time-zone", "hostPath": {"path": "/etc/localtime"}},
    ]
    assert pod["containers"] == [{
        "name": "job-api",
        "image": "index.tenxcloud.com/tenxcloud/perl_job:latest",
        "command": ["echo", "test-cmd"],
        "env": [{"name": "KEY", "value": "value"}],
        "ports": [{"containerPort": 22, "protocol": "TCP"}],
        "resources": {"limits": {"memory": "512Mi"}},
        "volumeMounts": [
            {"name": "volume-name1", "mountPath": "/data"},
            {"name": "tenxcloud-time-zone", "readOnly": True, "mountPath": "/etc/localtime"},
        ],
        "imagePullPolicy": "Always",
        "securityContext": LOCKED_CONTAINER,
    }]


@pytest.mark.parametrize("pull_always, policy", [(True, "Always"), (False, "IfNotPresent")])
def test_pull_always(pull_always, policy):
    job = build({"containers": [{"image": "busybox", "pull_always": pull_always}]})
    assert only_container(job)["imagePullPolicy"] == policy


def test_pull_policy_left_to_kubernetes_when_not_given():
    assert "imagePullPolicy" not in only_container(build(MINIMAL))


def test_command_and_args():
    job = build({"containers": [{"image": "busybox", "command": ["sh", "-c"], "args": ["echo $0", "x"]}]})
    assert only_container(job) == {"name": "job-api", "image": "busybox", "command": ["sh", "-c"],
                                   "args": ["echo $0", "x"], "securityContext": LOCKED_CONTAINER}


def test_env_value_defaults_to_empty():
    job = build({"containers": [{"image": "busybox", "env": [{"name": "A"}, {"name": "B", "value": "b"}]}]})
    assert only_container(job)["env"] == [{"name": "A", "value": ""}, {"name": "B", "value": "b"}]


def test_ports_default_to_tcp():
    job = build({"containers": [{"image": "busybox", "ports": [{"port": 8080}, {"port": 53, "protocol": "UDP"}]}]})
    assert only_container(job)["ports"] == [{"containerPort": 8080, "protocol": "TCP"},
                                            {"containerPort": 53, "protocol": "UDP"}]


def test_cpu_and_memory_limits():
    job = build({"containers": [{"image": "busybox", "resources": {"limits": {"cpu": "125m", "memory": "1Gi"}}}]})
    assert only_container(job)["resources"] == {"limits": {"cpu": "125m", "memory": "1Gi"}}


def test_read_only_mount():
    job = build({"containers": [{"image": "busybox", "volumeMounts": [
        {"name": "v", "mountPath": "/in", "readOnly": True}]}], "volumes": [{"name": "v", "type": "host"}]})
    assert only_container(job)["volumeMounts"] == [{"name": "v", "mountPath": "/in", "readOnly": True}]


def test_host_volume_root_and_user_make_the_path():
    spec = JobSpecSchema().load({"containers": [{"image": "x"}], "volumes": [{"name": "data", "type": "host"}]})
    job = build_job(spec, name="j", namespace="ns", username="Alice.B", host_volume_root="/srv/vols/")
    assert job["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"] == "/srv/vols/Alice.B/job/j/data"


def test_sync_timezone_mounts_localtime_in_every_container():
    job = build({"containers": [{"image": "a"}, {"image": "b"}], "sync_timezone": True})
    for container in job["spec"]["template"]["spec"]["containers"]:
        assert container["volumeMounts"] == [
            {"name": "tenxcloud-time-zone", "readOnly": True, "mountPath": "/etc/localtime"}]


def test_every_pod_is_locked_down_whatever_job_json_says():
    job = build({"containers": [{"image": "a"}, {"image": "b"}], "volumes": [{"name": "v", "type": "host"}],
                 "sync_timezone": True})
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert not {"hostNetwork", "hostPID", "hostIPC", "serviceAccountName", "initContainers"} & set(pod)
    assert [c["securityContext"] for c in pod["containers"]] == [LOCKED_CONTAINER] * 2
    pod["containers"][0]["securityContext"]["privileged"] = True  # one manifest's edit leaks into no other
    assert build(MINIMAL)["spec"]["template"]["spec"]["containers"][0]["securityContext"] == LOCKED_CONTAINER


def test_a_63_character_name_ending_like_a_suffix_keeps_container_names_apart():
    job = build({"containers": [{"image": "a"}, {"image": "b"}]}, name="x" * 61 + "-1")
    names = [c["name"] for c in job["spec"]["template"]["spec"]["containers"]]
    assert len(set(names)) == 2 and names[0] == "x" * 61 + "-1"


def test_second_container_gets_an_indexed_name():
    job = build({"containers": [{"image": "a"}, {"image": "b"}]}, name="x" * 63)
    names = [c["name"] for c in job["spec"]["template"]["spec"]["containers"]]
    assert names == ["x" * 63, "x" * 61 + "-1"]


@pytest.mark.parametrize("field, key, value", [
    ("parallelism", "parallelism", 3),
    ("completions", "completions", 5),
    ("backoff_limit", "backoffLimit", 2),
    ("active_deadline_seconds", "activeDeadlineSeconds", 600),
    ("ttl_seconds_after_finished", "ttlSecondsAfterFinished", 0),
])
def test_job_spec_extensions(field, key, value):
    job = build({**MINIMAL, field: value})
    assert job["spec"][key] == value


def test_operator_scheduling_goes_to_every_pod_and_only_there():
    scheduling = PodScheduling({"tenx.io/runtime": "containerd"},
                               [{"key": "tenx.io/runtime", "operator": "Equal", "value": "containerd",
                                 "effect": "NoSchedule"}])
    spec = JobSpecSchema().load(MINIMAL)
    job = build_job(spec, name="job-api", namespace="tenx-u", username="u", host_volume_root=ROOT,
                    scheduling=scheduling)
    plain = build_job(spec, name="job-api", namespace="tenx-u", username="u", host_volume_root=ROOT)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"tenx.io/runtime": "containerd"}
    assert pod["tolerations"] == [{"key": "tenx.io/runtime", "operator": "Equal", "value": "containerd",
                                   "effect": "NoSchedule"}]
    pod["tolerations"][0]["key"] = "edited"  # the manifest holds copies: the settings stay as they were
    pod["nodeSelector"]["edited"] = "yes"
    assert scheduling == PodScheduling({"tenx.io/runtime": "containerd"},
                                       [{"key": "tenx.io/runtime", "operator": "Equal", "value": "containerd",
                                         "effect": "NoSchedule"}])
    del pod["nodeSelector"], pod["tolerations"]
    assert job == plain


def test_input_is_not_mutated():
    spec = JobSpecSchema().load({"containers": [{"image": "a", "command": ["x"], "env": [{"name": "A"}]}],
                                 "volumes": [{"name": "v", "type": "host"}], "sync_timezone": True})
    before = copy.deepcopy(spec)
    job = build_job(spec, name="j", namespace="n", username="u", host_volume_root=ROOT)
    job["spec"]["template"]["spec"]["containers"][0]["command"].append("y")
    assert spec == before


def test_namespaces_the_gateway_manages():
    assert namespace_manifest("tenx-gateway") == {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "tenx-gateway", "labels": {"app.kubernetes.io/managed-by": "tenx-gateway"}}}
    assert namespace_manifest("tenx-alice", "alice")["metadata"] == {
        "name": "tenx-alice", "labels": {"app.kubernetes.io/managed-by": "tenx-gateway"},
        "annotations": {"tenx-gateway/username": "alice"}}
