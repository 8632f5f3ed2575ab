"""The local cluster's node agent (deploy/local/node-agent), end to end through the real API server.

Each test works in a fresh namespace and polls with deadlines; nothing here asserts on timing. The cluster is
started (or reused) by the ``local_cluster`` fixture, which runs ``deploy/local/cluster.sh up``; the agent runs
there with ``--crashloop-base 1s --crashloop-max 10s``.
"""
from __future__ import annotations

import os
import re
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.support.conditions import until

pytestmark = pytest.mark.integration

NODE = "tenx-local"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")


@pytest.fixture(scope="module")
def api(local_cluster):
    api_client = config.new_client_from_config(config_file=local_cluster.kubeconfig)
    yield api_client
    api_client.close()


@pytest.fixture
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def batch(api):
    return client.BatchV1Api(api)


@pytest.fixture
def ns(core):
    """A fresh namespace, deleted (without waiting) afterwards."""
    name = f"lc-{secrets.token_hex(4)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Pods cannot be created before the ServiceAccount controller has made the namespace's default account.
    until(lambda: _exists(lambda: core.read_namespaced_service_account("default", name)), 30,
          f"the default ServiceAccount in {name}")
    yield name
    core.delete_namespace(name, propagation_policy="Background")


# ----------------------------------------------------------------------------------------------- helpers

def _exists(read) -> bool:
    try:
        read()
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def container(command, *, env=None, mounts=None, name="main"):
    return client.V1Container(name=name, image="busybox", command=command, env=env, volume_mounts=mounts)


def make_pod(core, ns, name, containers, *, restart="Never", volumes=None) -> None:
    core.create_namespaced_pod(ns, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(containers=containers, restart_policy=restart, volumes=volumes)))


def make_job(batch, ns, name, containers, *, restart="Never", backoff_limit=0) -> None:
    batch.create_namespaced_job(ns, client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(backoff_limit=backoff_limit, template=client.V1PodTemplateSpec(
            spec=client.V1PodSpec(containers=containers, restart_policy=restart)))))


def wait_phase(core, ns, name, phases, timeout=60) -> client.V1Pod:
    def check():
        pod = core.read_namespaced_pod(name, ns)
        return pod if pod.status.phase in phases else None
    return until(check, timeout, f"pod {ns}/{name} to be {'/'.join(phases)}")


def job_pods(core, ns, job) -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=f"{JOB_NAME_LABEL}={job}").items


def job_condition(batch, ns, job, kind):
    for cond in batch.read_namespaced_job_status(job, ns).status.conditions or []:
        if cond.type == kind and cond.status == "True":
            return cond
    return None


def pod_log(api, ns, pod, **query) -> str:
    """GET pods/<pod>/log with any query parameters (the generated client has no sinceTime)."""
    params = [(key, str(value).lower() if isinstance(value, bool) else str(value)) for key, value in query.items()]
    method, url, headers, _, _ = api.param_serialize(
        "GET", "/api/v1/namespaces/{namespace}/pods/{name}/log", path_params={"namespace": ns, "name": pod},
        query_params=params, auth_settings=["BearerToken"])
    response = api.call_api(method, url, header_params=headers, _request_timeout=60)
    body = response.read().decode()
    if response.status != 200:
        pytest.fail(f"pods/{pod}/log {query} gave HTTP {response.status}: {body}")
    return body


def marker_pids(marker: str) -> list[int]:
    """Live processes whose environment has TENX_TEST_MARKER=<marker>."""
    wanted = f"TENX_TEST_MARKER={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and wanted in environ.split(b"\0"):
            found.append(int(entry))
    return found


def marker_env(marker: str):
    return [client.V1EnvVar(name="TENX_TEST_MARKER", value=marker)]


# ----------------------------------------------------------------------------------------------- tests

def test_node_is_ready_untainted_and_describes_the_host(core):
    node = core.read_node(NODE)
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready["Ready"] == "True"
    assert not node.spec.taints
    assert {"type": "InternalIP", "address": "127.0.0.1"} in [a.to_dict() for a in node.status.addresses]
    assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250
    assert int(node.status.capacity["cpu"]) == os.cpu_count()
    assert node.status.node_info.operating_system == "linux"


def test_job_runs_command_and_log_is_exact(core, batch, api, ns):
    make_job(batch, ns, "echo", [container(["echo", "test-cmd"])])
    until(lambda: job_condition(batch, ns, "echo", "Complete"), 60, "Job echo to complete")
    [pod] = job_pods(core, ns, "echo")
    assert pod.spec.node_name == NODE
    assert pod.status.phase == "Succeeded"
    assert pod.status.host_ip == "127.0.0.1"
    state = pod.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (0, "Completed")
    assert state.started_at and state.finished_at and state.finished_at >= state.started_at
    assert pod_log(api, ns, pod.metadata.name) == "test-cmd\n"


def test_on_failure_restarts_count_toward_backoff_limit(core, batch, ns):
    """The Job controller counts container restarts of OnFailure pods; at backoffLimit it fails the Job and
    deletes the pod. The pod's restarts are watched so they are seen before the pod goes away."""
    seen = {"restarts": 0, "last_exit": None, "crash_loop": False}
    stop = threading.Event()
    watcher = watch.Watch()

    # the watch starts from a LIST made before the pod exists: it replays every change after that, however late
    # the watch request itself goes out
    since = core.list_namespaced_pod(ns).metadata.resource_version

    def observe():
        try:
            for event in watcher.stream(core.list_namespaced_pod, ns, resource_version=since, timeout_seconds=90):
                for status in event["object"].status.container_statuses or []:
                    seen["restarts"] = max(seen["restarts"], status.restart_count)
                    last = status.last_state.terminated if status.last_state else None
                    if last:
                        seen["last_exit"] = last.exit_code
                    if status.state.waiting and status.state.waiting.reason == "CrashLoopBackOff":
                        seen["crash_loop"] = True
                if stop.is_set():
                    return
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            seen["error"] = repr(exc)

    thread = threading.Thread(target=observe, daemon=True)
    thread.start()
    marker = secrets.token_hex(8)
    make_job(batch, ns, "boom", [container(["sh", "-c", "echo boom; exit 3"], env=marker_env(marker))],
             restart="OnFailure", backoff_limit=2)
    failed = until(lambda: job_condition(batch, ns, "boom", "Failed"), 90, "Job boom to fail")
    assert failed.reason == "BackoffLimitExceeded"
    until(lambda: seen["restarts"] >= 2, 10, f"the watch to report restartCount 2 (saw {seen})")
    assert seen["last_exit"] == 3
    assert seen["crash_loop"]
    until(lambda: not job_pods(core, ns, "boom"), 60, "the Job controller to delete the failed pod")
    until(lambda: not marker_pids(marker), 30, "the pod's processes to be gone")
    stop.set()
    watcher.stop()
    thread.join(timeout=5)


def test_deleting_job_removes_pods_and_host_processes(core, batch, ns):
    marker = secrets.token_hex(8)
    make_job(batch, ns, "sleeper", [container(["sh", "-c", "sleep 300; echo never"], env=marker_env(marker))],
             restart="OnFailure")
    until(lambda: [p for p in job_pods(core, ns, "sleeper") if p.status.phase == "Running"], 60,
          "the sleeper pod to run")
    until(lambda: marker_pids(marker), 10, "the sleeper's host process")
    batch.delete_namespaced_job("sleeper", ns, propagation_policy="Background")
    until(lambda: not job_pods(core, ns, "sleeper"), 60, "the Job's pods to be deleted")
    until(lambda: not marker_pids(marker), 30, "the sleeper's host processes to be gone")


def test_host_path_volumes_rw_and_ro(core, api, ns, tmp_path):
    rw_host = tmp_path / "host" / "rw"           # missing: created like DirectoryOrCreate
    ro_host = tmp_path / "host" / "ro"
    ro_host.mkdir(parents=True)
    (ro_host / "in.txt").write_text("from-host\n")
    rw_mnt, ro_mnt = tmp_path / "mnt" / "data", tmp_path / "mnt" / "config"
    script = (f"echo written-in-pod > {rw_mnt}/out.txt && cat {ro_mnt}/in.txt && "
              f"if ( : > {ro_mnt}/new.txt ) 2>/dev/null; then echo ro-writable; exit 1; fi; echo ro-ok")
    make_pod(core, ns, "vols", [container(["sh", "-c", script], mounts=[
        client.V1VolumeMount(name="rw", mount_path=str(rw_mnt)),
        client.V1VolumeMount(name="ro", mount_path=str(ro_mnt), read_only=True),
    ])], volumes=[
        client.V1Volume(name="rw", host_path=client.V1HostPathVolumeSource(path=str(rw_host))),
        client.V1Volume(name="ro", host_path=client.V1HostPathVolumeSource(path=str(ro_host), type="Directory")),
    ])
    pod = wait_phase(core, ns, "vols", {"Succeeded", "Failed"})
    log = pod_log(api, ns, "vols")
    assert pod.status.phase == "Succeeded", log
    assert log == "from-host\nro-ok\n"
    assert (rw_host / "out.txt").read_text() == "written-in-pod\n"
    assert not (ro_host / "new.txt").exists()
    assert not (rw_mnt / "out.txt").exists(), "the bind mount must stay in the pod's mount namespace"


def test_env_reaches_the_process(core, api, ns):
    env = [
        client.V1EnvVar(name="GREETING", value="hello world"),
        client.V1EnvVar(name="POD_NAME", value_from=client.V1EnvVarSource(
            field_ref=client.V1ObjectFieldSelector(field_path="metadata.name"))),
        client.V1EnvVar(name="POD_NAMESPACE", value_from=client.V1EnvVarSource(
            field_ref=client.V1ObjectFieldSelector(field_path="metadata.namespace"))),
    ]
    script = ('echo "greeting=$GREETING pod=$POD_NAME ns=$POD_NAMESPACE host=$HOSTNAME '
              'svc=${KUBERNETES_SERVICE_HOST:-unset} expanded=$(GREETING)"; echo "path=$PATH"')
    make_pod(core, ns, "env", [container(["sh", "-c", script], env=env)])
    wait_phase(core, ns, "env", {"Succeeded"})
    first, second = pod_log(api, ns, "env").splitlines()
    assert first == f"greeting=hello world pod=env ns={ns} host=env svc=unset expanded=hello world"
    assert second.startswith("path=/") and "/bin" in second


def test_pod_log_options(core, api, ns):
    """timestamps, sinceTime, tailLines, limitBytes and previous, on a container that ran twice: the first run
    prints 'old', two seconds later five lines and a last line without newline, and fails; the second run
    prints 'second-run' and keeps running."""
    script = ("if [ -e ran-once ]; then echo second-run; exec sleep 300; fi; touch ran-once; "
              "echo old; sleep 2.2; for i in 1 2 3 4 5; do echo line-$i; done; printf no-newline; exit 1")
    make_pod(core, ns, "logs", [container(["sh", "-c", script])], restart="OnFailure")

    def second_run_started():
        status = (core.read_namespaced_pod("logs", ns).status.container_statuses or [None])[0]
        return status and status.restart_count == 1 and status.state.running
    until(second_run_started, 60, "the container's second run")
    until(lambda: pod_log(api, ns, "logs") == "second-run\n", 10, "the second run's log")

    first_run = "old\nline-1\nline-2\nline-3\nline-4\nline-5\nno-newline"
    assert pod_log(api, ns, "logs", previous=True) == first_run

    stamped = pod_log(api, ns, "logs", previous=True, timestamps=True).split("\n")
    matches = [STAMPED.match(line) for line in stamped]
    assert all(matches), stamped
    assert [m.group(2) for m in matches] == first_run.split("\n")
    times = [datetime.strptime(m.group(1)[:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ") for m in matches]
    assert times == sorted(times)

    # sinceTime has whole seconds: 'line-1' came >= 2s after 'old', so its second excludes 'old'.
    since = times[1].replace(microsecond=0, tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert pod_log(api, ns, "logs", previous=True, sinceTime=since) == first_run.split("\n", 1)[1]
    assert pod_log(api, ns, "logs", previous=True, sinceSeconds=3600) == first_run

    assert pod_log(api, ns, "logs", previous=True, tailLines=2) == "line-5\nno-newline"
    assert pod_log(api, ns, "logs", previous=True, limitBytes=6) == "old\nli"
    assert pod_log(api, ns, "logs", tailLines=1, timestamps=True).endswith(" second-run\n")


def test_follow_streams_until_the_container_exits(core, api, ns):
    make_pod(core, ns, "follow", [container(["sh", "-c", "echo a; sleep 1.5; echo b; sleep 1; echo c"])])
    wait_phase(core, ns, "follow", {"Running", "Succeeded"})
    # Returns only once the stream ends, which it does when the container exits.
    assert pod_log(api, ns, "follow", follow=True) == "a\nb\nc\n"
    wait_phase(core, ns, "follow", {"Succeeded"}, timeout=30)


def test_container_without_command_fails_clearly(core, ns):
    make_pod(core, ns, "nocmd", [client.V1Container(name="main", image="busybox")], restart="OnFailure")
    pod = wait_phase(core, ns, "nocmd", {"Failed"})
    assert pod.status.reason == "EntrypointUnsupported"
    assert "default entrypoint" in pod.status.message
