"""The gateway's promises on a real runtime: jobs sent through the API run on the local cluster's real node
(`tenx-real`: upstream kubelet, containerd, runc, images from the local registry; deploy/local/realnode/), chosen
with the operator settings GATEWAY_POD_NODE_SELECTOR and GATEWAY_POD_TOLERATIONS. What Kubernetes says (reasons,
exit codes, restarts) is read back through the gateway's instances call, what the container saw through its logs."""
from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest

from tests.support.harness import GatewayServer, kubectl
from tests.support.seed import SEED_JOB
from tests.support.conditions import condition, until
from tests.support.real_node import ON_REAL_NODE, REAL_NODE

BUSYBOX = "busybox"  # docker.io/library/busybox:latest in the local registry
# a job here takes ~3-4 s; the bound is for a machine whose scheduler is busy with another run's thousands of pods
WAIT = 240


@pytest.fixture(scope="module")
def real(local_cluster, tmp_path_factory):
    """A gateway of this module's own whose pods go to the real node, with its collector."""
    ready = kubectl("get", "node", REAL_NODE, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                    check=False)
    assert ready.stdout == "True", f"node {REAL_NODE} is not Ready (deploy/local/cluster.sh up): {ready.stderr}"
    server = GatewayServer(tmp_path_factory.mktemp("runtime"), letter="k", collector=True, **ON_REAL_NODE)
    server.start()
    yield server
    server.close()


@pytest.fixture
def user(real):
    return real.add_user("rt")


def job(command: list[str], image: str = BUSYBOX, **container) -> dict:
    return {"containers": [{"image": image, "command": command, **container}]}


def run(user, body: dict, done=lambda j: condition(j, "Complete") or condition(j, "Failed"),
        timeout: float = WAIT) -> tuple[str, dict]:
    name = f"rt-{secrets.token_hex(3)}"
    response = user.post(f"/jobs/{name}", json=body)
    assert response.status_code == 200, response.text
    return name, user.wait_for(name, done, timeout=timeout)


def instances(user, name: str) -> list[dict]:
    return user.get(f"/jobs/{name}/instances").json()["instances"]


def container_where(user, name: str, predicate, timeout: float, what: str) -> dict:
    """The first instance's first container once ``predicate(container)`` holds (polled through the API)."""
    def check():
        found = instances(user, name)
        return found and found[0]["containers"] and predicate(found[0]["containers"][0]) and found[0]
    return until(check, timeout, what, interval=0.5)


def logs(user, name: str, instance: str) -> list[str]:
    return user.get(f"/jobs/{name}/instances/{instance}/logs").json()


def pod_of(user, name: str, real: GatewayServer) -> dict:
    (instance,) = user.get(f"/jobs/{name}").json()["instance_names"]
    return json.loads(kubectl("get", "pod", instance, "-n", real.namespace_of(user), "-o", "json").stdout)


def test_the_seed_job_runs_in_a_container_on_the_real_node(real, user):
    name, done = run(user, SEED_JOB)
    assert condition(done, "Complete"), done["status"]
    (instance,) = done["instance_names"]
    (record,) = instances(user, name)
    assert record["node"] == REAL_NODE
    assert record["containers"][0]["state"] == "terminated"
    assert record["containers"][0]["reason"] == "Completed" and record["containers"][0]["exit_code"] == 0
    assert logs(user, name, instance) == ["test-cmd"]
    pod = pod_of(user, name, real)
    assert pod["spec"]["nodeSelector"] == {"tenx.io/runtime": "containerd"}
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
    assert pod["status"]["containerStatuses"][0]["image"] == "index.tenxcloud.com/tenxcloud/perl_job:latest"


def _pulled_message(real, user, pod: dict) -> str:
    def pulled():
        events = json.loads(kubectl("get", "events", "-n", real.namespace_of(user), "-o", "json",
                                    "--field-selector", f"involvedObject.name={pod['metadata']['name']}").stdout)
        return next((e["message"] for e in events["items"] if e["reason"] == "Pulled"), None)
    return until(pulled, 30, "the kubelet's Pulled event")


@pytest.mark.parametrize("pull_always, policy, pulled", [
    (True, "Always", "Successfully pulled image"),
    (False, "IfNotPresent", "already present on machine"),
])
def test_pull_always_is_the_pull_policy_and_the_kubelet_follows_it(real, user, pull_always, policy, pulled):
    name, done = run(user, job(["echo", "pulled"], pull_always=pull_always))
    assert condition(done, "Complete"), done["status"]
    pod = pod_of(user, name, real)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy
    assert pulled in _pulled_message(real, user, pod)


def test_an_image_never_pushed_fails_to_pull_with_kubernetes_reasons(user):
    name, _ = run(user, job(["echo", "never"], image="index.tenxcloud.com/tenxcloud/never-pushed:latest"),
                  done=lambda j: j["instance_names"])
    seen = set()

    def reason(wanted):
        def check(container):
            seen.add(container.get("reason"))
            return container["state"] == "waiting" and container.get("reason") == wanted
        return check
    first = container_where(user, name, reason("ErrImagePull"), WAIT, "ErrImagePull in the instances call")
    assert "never-pushed" in first["containers"][0]["message"]
    container_where(user, name, reason("ImagePullBackOff"), WAIT, "ImagePullBackOff in the instances call")
    assert {"ErrImagePull", "ImagePullBackOff"} <= seen
    assert user.delete(f"/jobs/{name}").status_code == 200


def test_a_memory_limit_is_enforced_and_the_reason_is_oomkilled(user):
    # tail keeps its newline-free input in memory, without end: the container's main process passes 64 MiB
    name, _ = run(user, job(["tail", "/dev/zero"], resources={"limits": {"memory": "64Mi"}}),
                  done=lambda j: j["instance_names"])

    def oom_killed(container):
        states = [container, container.get("last_state") or {}]
        return any(s.get("reason") == "OOMKilled" and s.get("exit_code") == 137 for s in states)
    container_where(user, name, oom_killed, WAIT, "OOMKilled, exit code 137, in the instances call")
    assert user.delete(f"/jobs/{name}").status_code == 200


def test_the_locked_down_security_context_is_applied_by_the_runtime(user):
    # no_new_privs (allowPrivilegeEscalation: false), seccomp filter mode 2 (RuntimeDefault), the runtime's default
    # capability set (not all of them), no service account token (automountServiceAccountToken: false)
    script = ("grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status; "
              "ls /var/run/secrets/kubernetes.io/serviceaccount 2>/dev/null || echo no-token; "
              "mount -t tmpfs none /mnt 2>/dev/null && echo mounted || echo mount-refused")
    name, done = run(user, job(["sh", "-c", script]))
    assert condition(done, "Complete"), done["status"]
    lines = logs(user, name, done["instance_names"][0])
    status = dict(line.split(":\t") for line in lines[:3])
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2", lines
    cap_eff = int(status["CapEff"], 16)
    assert cap_eff and not cap_eff & (1 << 21), lines  # some capabilities, but never CAP_SYS_ADMIN
    assert lines[3:] == ["no-token", "mount-refused"]


def test_host_volumes_read_only_and_read_write(real, user):
    name = f"rt-{secrets.token_hex(3)}"
    root = Path(real.host_volume_root) / user.username / "job" / name
    (root / "input").mkdir(parents=True)
    (root / "input" / "in.txt").write_text("from the host\n")
    body = {"containers": [{
        "image": BUSYBOX, "command": ["sh", "-c", "cat /in/in.txt; echo written > /out/out.txt; "
                                                  "(echo x > /in/x) 2>/dev/null && echo ro-written || echo ro-refused"],
        "volumeMounts": [{"name": "input", "mountPath": "/in", "readOnly": True}, {"name": "output", "mountPath": "/out"}],
    }], "volumes": [{"name": "input", "type": "host"}, {"name": "output", "type": "host"}]}
    assert user.post(f"/jobs/{name}", json=body).status_code == 200
    done = user.wait_for(name, lambda j: condition(j, "Complete") or condition(j, "Failed"), timeout=WAIT)
    assert condition(done, "Complete"), done["status"]
    assert logs(user, name, done["instance_names"][0]) == ["from the host", "ro-refused"]
    assert (root / "output" / "out.txt").read_text() == "written\n"
    assert not (root / "input" / "x").exists()


def test_sync_timezone_gives_the_container_the_hosts_localtime(user):
    name, done = run(user, {**job(["sh", "-c", "md5sum /etc/localtime; grep -c ' /etc/localtime ' /proc/self/mountinfo"]),
                            "sync_timezone": True})
    assert condition(done, "Complete"), done["status"]
    digest = hashlib.md5(Path("/etc/localtime").read_bytes()).hexdigest()
    assert logs(user, name, done["instance_names"][0]) == [f"{digest}  /etc/localtime", "1"]
    name, done = run(user, job(["sh", "-c", "test -e /etc/localtime && echo present || echo absent"]))
    assert logs(user, name, done["instance_names"][0]) == ["absent"]  # the busybox image has none of its own


def test_the_walls_default_limits_are_the_containers_cgroup_limits(user):
    # job.json gives no limits: the namespace's LimitRange fills in 500m CPU and 512Mi, and runc enforces them
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
              "/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    name, done = run(user, job(["sh", "-c", script]))
    assert condition(done, "Complete"), done["status"]
    assert logs(user, name, done["instance_names"][0]) == [str(512 * 1024 * 1024), "50000", "100000"]


def test_a_failing_container_restarts_with_its_last_state_in_the_instances_call(user):
    name, _ = run(user, job(["sh", "-c", "echo attempt; exit 3"]), done=lambda j: j["instance_names"])

    def restarted(container):
        return container["restart_count"] >= 1 and (container.get("last_state") or {}).get("exit_code") == 3
    found = container_where(user, name, restarted, WAIT, "a restart in the instances call")
    container = found["containers"][0]
    assert container["last_state"]["state"] == "terminated" and container["last_state"]["reason"] == "Error"
    assert found["restart_count"] >= 1
    assert "attempt" in logs(user, name, found["name"])
    assert user.delete(f"/jobs/{name}").status_code == 200
