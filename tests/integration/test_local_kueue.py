"""deploy/local/kueue/kueue.sh: the local cluster's Kueue manager, a host process whose webhooks the apiserver reaches
by URL on loopback, only for what it serves; `up` again leaves a running manager alone."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.harness import LOCAL, ROOT, kubectl

KUEUE_SH = ROOT / "deploy/local/kueue/kueue.sh"
PIDFILE = LOCAL / "kueue/run/kueue.pid"


@pytest.fixture(scope="module")
def kueue(local_cluster):
    """Kueue as `make test` starts it (idempotent: it is up already)."""
    subprocess.run([str(KUEUE_SH), "up"], check=True, stdin=subprocess.DEVNULL, timeout=1200)
    return int(PIDFILE.read_text())


def test_up_again_leaves_the_running_manager_alone(kueue):
    again = subprocess.run([str(KUEUE_SH), "up"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "restarting" not in again.stderr and "starting" not in again.stderr, again.stderr
    assert int(PIDFILE.read_text()) == kueue
    status = subprocess.run([str(KUEUE_SH), "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and f"pid {kueue}" in status.stdout and "tenx-gateway" in status.stdout, status.stdout
    assert Path(f"/proc/{kueue}/cmdline").read_bytes().split(b"\0")[0] == bytes(LOCAL / "kueue/bin/kueue")


def test_webhooks_are_urls_on_loopback_and_only_for_what_kueue_serves(kueue):
    hooks = []
    for kind in ("mutating", "validating"):
        found = json.loads(kubectl("get", f"{kind}webhookconfiguration", f"kueue-{kind}-webhook-configuration",
                                   "-o", "json").stdout)
        hooks += found["webhooks"]
    paths = set()
    for hook in hooks:
        config = hook["clientConfig"]
        assert "service" not in config and config["url"].startswith("https://127.0.0.1:18443/"), config
        assert config["caBundle"]
        paths.add(config["url"].split("18443", 1)[1])
        if hook["rules"][0]["resources"] == ["jobs"]:
            # only Jobs that ask for a queue go through Kueue: every other Job of the cluster never waits on it
            assert hook["objectSelector"] == {"matchExpressions": [
                {"key": "kueue.x-k8s.io/queue-name", "operator": "Exists"}]}
        else:
            assert hook["rules"][0]["apiGroups"] == ["kueue.x-k8s.io"], hook["rules"]
    assert {"/mutate-batch-v1-job", "/validate-batch-v1-job", "/mutate-kueue-x-k8s-io-v1beta2-workload",
            "/validate-kueue-x-k8s-io-v1beta2-clusterqueue"} <= paths
    assert not any("pod" in p or "deployment" in p or "statefulset" in p for p in paths), paths
    workloads = json.loads(kubectl("get", "crd", "workloads.kueue.x-k8s.io", "-o", "json").stdout)
    conversion = workloads["spec"]["conversion"]["webhook"]["clientConfig"]
    assert conversion["url"] == "https://127.0.0.1:18443/convert" and conversion["caBundle"]


def test_a_job_without_a_queue_is_not_kueue_s(kueue, tmp_path):
    """No queue label: the Job runs at once, unsuspended, and Kueue makes no Workload for it."""
    namespace = f"kueue-plain-{kueue}"
    kubectl("create", "namespace", namespace)
    try:
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "plain", "namespace": namespace},
               "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                   {"name": "c", "image": "busybox", "command": ["true"]}]}}}}
        created = json.loads(kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(job)).stdout)
        assert not created["spec"].get("suspend")
        kubectl("wait", "--for=condition=Complete", "job/plain", "-n", namespace, "--timeout=120s", timeout=150)
        assert json.loads(kubectl("get", "workloads", "-n", namespace, "-o", "json").stdout)["items"] == []
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
