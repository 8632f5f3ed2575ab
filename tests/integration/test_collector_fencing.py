"""Two collectors on one PostgreSQL archive against the real local cluster: the leader is frozen (SIGSTOP) past its
Lease, a standby takes over, the old leader is resumed, and the archive holds every line exactly once. Also the
collector's health listener and metrics."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess

import psycopg
import pytest

from gateway.names import MANAGED_BY, MANAGED_BY_LABEL
from gateway.store import open_store

from tests.support.harness import CollectorProcess, wait_until

pytest_plugins = ["tests.support.archive_pg"]

LINES = 600  # at 20 a second: 30 s of output, long enough to freeze the leader in the middle


def _wait(check, timeout: float, what: str):
    return wait_until(check, timeout, 0.25, what=what)


def job_manifest(name: str, namespace: str, script: str) -> dict:
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": name, "image": "busybox", "command": ["sh", "-c", script]}]}}}}


class Collector(CollectorProcess):
    def metric(self, name: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in self.metrics_text().splitlines()
                   if line.startswith(name + "{") or line.startswith(name + " "))


@pytest.fixture
def cluster_namespace(local_cluster):
    prefix = f"h1f{secrets.token_hex(3)}-"
    namespace, lease_namespace = f"{prefix}jobs", f"{prefix}gateway"
    for name in (namespace, lease_namespace):
        local_cluster.kubectl_run("create", "namespace", name)
    yield prefix, namespace, lease_namespace
    for name in (namespace, lease_namespace):
        local_cluster.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


def test_a_frozen_leader_resumed_after_its_lease_neither_loses_nor_duplicates(local_cluster, postgres_dsn,
                                                                               cluster_namespace, tmp_path):
    prefix, namespace, lease_namespace = cluster_namespace
    env = {**os.environ, "KUBECONFIG": local_cluster.kubeconfig, "GATEWAY_ARCHIVE_URL": postgres_dsn,
           "GATEWAY_NAMESPACE": lease_namespace, "GATEWAY_NAMESPACE_PREFIX": prefix,
           "GATEWAY_COLLECTOR_LEASE_SECONDS": "6", "GATEWAY_REGIONS": "us"}
    name = "steady"
    script = f"i=1; while [ $i -le {LINES} ]; do echo $i; i=$((i+1)); sleep 0.05; done"
    subprocess.run([local_cluster.kubectl, "--kubeconfig", local_cluster.kubeconfig, "apply", "-f", "-"],
                   input=json.dumps(job_manifest(name, namespace, script)), text=True, check=True,
                   capture_output=True)
    open_store(postgres_dsn).close()  # the schema, so that the test can count lines from the start
    first = Collector(env, tmp_path / "first.log")
    second = None

    def archived() -> list[int]:
        with psycopg.connect(postgres_dsn) as conn:
            rows = conn.execute("SELECT l.text FROM log_lines l JOIN log_streams s ON s.id = l.stream"
                                " WHERE s.namespace = %s AND s.job = %s ORDER BY l.seq", (namespace, name))
            return [int(text) for (text,) in rows]

    try:
        _wait(lambda: len(archived()) > 40, 120, "the first collector to archive lines")
        second = Collector(env, tmp_path / "second.log")
        _wait(lambda: second.healthz() == 200, 30, "the standby's health listener")
        assert second.metric("tenx_collector_leader") == 0 and first.metric("tenx_collector_leader") == 1
        os.kill(first.process.pid, signal.SIGSTOP)
        frozen_at = len(archived())
        _wait(lambda: len(archived()) > frozen_at + 40, 60, "the standby to take over")
        os.kill(first.process.pid, signal.SIGCONT)  # it still believes it leads, and has lines in hand
        _wait(lambda: len(archived()) >= LINES, 120, "every line")
        # the old leader knows it is deposed and has no follower left: any late write of its would have landed
        _wait(lambda: first.metric("tenx_collector_leader") == 0
              and first.metric("tenx_collector_streams_followed") == 0, 60, "the old leader to stand down")
        numbers = archived()
        assert numbers == list(range(1, LINES + 1)), (
            f"{len(numbers)} lines, duplicated: {len(numbers) - len(set(numbers))}, "
            f"lost: {sorted(set(range(1, LINES + 1)) - set(numbers))[:20]}")
        assert second.metric("tenx_collector_leader") == 1 and first.metric("tenx_collector_leader") == 0
        assert second.metric("tenx_collector_lines_archived_total") > 0
        assert first.process.poll() is None and first.healthz() == 200  # deposed, alive, standing by
    finally:
        for collector in (first, second):
            if collector is not None:
                collector.stop()
        for log in tmp_path.glob("*.log"):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
