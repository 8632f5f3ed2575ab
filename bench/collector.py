"""The log collector at scale, on the local cluster: ``python -m bench.collector [--containers 100,300]``.

For each count N: N containers (``--per-pod`` to a pod, since the node takes 110 pods) each print 5 numbered lines a
second for ``--seconds``; one collector (SQLite archive) follows them. Reported per N: the time until all ran, and
over a steady minute starting 15 s after all run: lag from a line's timestamp to its commit (p50/p99, from the
collector's own histogram, by bucket bounds), collector RSS (peak) and CPU, LIST requests on pods counted by the
apiserver (``apiserver_request_total{verb="LIST",resource="pods"}``: all clients, the cluster is shared, and
cluster-scoped ones, which only collectors make) and the collector's own reflector LISTs; after the job: lines lost and
duplicated per container. Then ``--ha``: 2 collectors on PostgreSQL, the leader SIGKILLed (and restarted, as a
Deployment would) and later the new leader SIGSTOPped past its Lease and resumed: time to take over, lost and
duplicated. Numbers, not asserts. Writes ``bench/results/collector.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.harness import CollectorProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG = os.environ.get("KUBECONFIG") or str(ROOT / ".local" / "kubeconfig")
KUBECTL = str(ROOT / ".local" / "bin" / "kubectl")
RATE = 5  # lines a second per container
PRINTER = "$|=1; for $i (1..{n}) {{ print \"$i\\n\"; select(undef, undef, undef, 0.2) }}"  # perl: no fork per line
CLK_TCK = os.sysconf("SC_CLK_TCK")
SETTLE = 15  # seconds between "all running" and the steady window


def kubectl(*args: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL, "--kubeconfig", KUBECONFIG, *args], input=input_text, text=True,
                          capture_output=True, check=check, timeout=300)


def wait(check, timeout: float, interval: float = 0.5):
    return wait_until(check, timeout, interval)


# -- the collector process ------------------------------------------------------------------------------------

class Collector(CollectorProcess):
    def __init__(self, env: dict[str, str], log: Path):
        super().__init__(env, log)
        self.peak_rss_kib = 0

    def metrics(self) -> dict[str, float]:
        try:
            text = self.metrics_text(timeout=2)
        except requests.RequestException:
            return {}
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("tenx_collector"):
                name, value = line.rsplit(" ", 1)
                found[name] = float(value)
        return found

    def leader(self) -> bool:
        return self.metrics().get('tenx_collector_leader{region="us"}') == 1.0

    def rss_kib(self) -> int:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                    self.peak_rss_kib = max(self.peak_rss_kib, rss)
                    return rss
        except OSError:
            pass
        return 0

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except OSError:
            return 0.0


def lag_quantiles(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """p50/p99 of the lag histogram's growth between two scrapes: the upper bound of the bucket holding them."""
    buckets = []
    for name, value in after.items():
        match = re.match(r'tenx_collector_lag_seconds_bucket\{le="([^"]+)",region="us"\}', name)
        if match:
            buckets.append((float(match.group(1)), value - before.get(name, 0.0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    result: dict[str, Any] = {"lines_committed": int(total)}
    for q in (50, 99):
        bound = next((le for le, count in buckets if total and count >= total * q / 100), None)
        result[f"lag_p{q}_s_at_most"] = bound
    return result


# -- the apiserver's count of LISTs on pods ------------------------------------------------------------------

def pod_lists() -> dict[str, float]:
    text = kubectl("get", "--raw", "/metrics").stdout
    total = cluster = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{") and 'resource="pods"' in line and 'verb="LIST"' in line \
                and 'subresource=""' in line:
            value = float(line.rsplit(" ", 1)[1])
            total += value
            if 'scope="cluster"' in line:
                cluster += value
    return {"all": total, "cluster_scope": cluster}


# -- the workload --------------------------------------------------------------------------------------------

def job(name: str, namespace: str, pods: int, per_pod: int, lines: int) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": "busybox", "command": ["perl", "-e", PRINTER.format(n=lines)],
                   "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}} for i in range(per_pod)]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"parallelism": pods, "completions": pods, "backoffLimit": 0, "template": {
                "metadata": {"labels": {"app.kubernetes.io/managed-by": "tenx-gateway"}},
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": containers}}}}


def running_containers(namespace: str) -> tuple[int, int]:
    items = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    running = done = 0
    for pod in items:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            state = status.get("state") or {}
            running += "running" in state
            done += "terminated" in state
    return running, done


def archived(store, namespace: str) -> dict[tuple[str, str], list[str]]:
    with store._read() as conn:  # noqa: SLF001 - a bench reads the tables directly
        rows = conn.execute(store._sql("SELECT s.instance, s.container, l.text FROM log_lines l JOIN log_streams s"
                                       " ON s.id = l.stream WHERE s.namespace = ? ORDER BY l.stream, l.seq"),
                            (namespace,)).fetchall()
    found: dict[tuple[str, str], list[str]] = {}
    for instance, container, text in rows:
        found.setdefault((instance, container), []).append(text)
    return found


def count_losses(store, namespace: str, containers: int, lines: int) -> dict[str, int]:
    got = archived(store, namespace)
    expected = [str(i) for i in range(1, lines + 1)]
    lost = duplicated = 0
    for texts in got.values():
        lost += len(set(expected) - set(texts))
        duplicated += len(texts) - len(set(texts))
    lost += (containers - len(got)) * lines
    return {"containers_archived": len(got), "lines_archived": sum(map(len, got.values())), "lost": lost,
            "duplicated": duplicated}


class Namespaces:
    def __init__(self) -> None:
        self.prefix = f"bc{secrets.token_hex(3)}-"
        self.jobs, self.gateway = f"{self.prefix}jobs", f"{self.prefix}gw"
        for name in (self.jobs, self.gateway):
            kubectl("create", "namespace", name)

    def delete(self) -> None:
        for name in (self.jobs, self.gateway):
            kubectl("delete", "namespace", name, "--wait=false", check=False)


def collector_env(names: Namespaces, archive_url: str, lease_seconds: int) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": KUBECONFIG, "GATEWAY_ARCHIVE_URL": archive_url,
            "GATEWAY_NAMESPACE": names.gateway, "GATEWAY_NAMESPACE_PREFIX": names.prefix, "GATEWAY_REGIONS": "us",
            "GATEWAY_COLLECTOR_LEASE_SECONDS": str(lease_seconds)}


# -- the cases -----------------------------------------------------------------------------------------------

def scale_case(containers: int, per_pod: int, seconds: int, workdir: Path) -> dict[str, Any]:
    from gateway.store import open_store
    names = Namespaces()
    url = f"sqlite:///{workdir}/archive-{containers}.db"
    pods = -(-containers // per_pod)
    containers = pods * per_pod
    lines = seconds * RATE
    result: dict[str, Any] = {"containers": containers, "pods": pods, "lines_per_container": lines}
    collector = Collector(collector_env(names, url, 15), workdir / f"collector-{containers}.log")
    store = open_store(url)
    try:
        wait(collector.leader, 60)
        started = time.monotonic()
        kubectl("apply", "-f", "-", input_text=json.dumps(job("printers", names.jobs, pods, per_pod, lines)))
        all_running = wait(lambda: running_containers(names.jobs)[0] >= containers, timeout=seconds * 0.6,
                           interval=2)
        result["seconds_until_all_running"] = round(time.monotonic() - started, 1) if all_running else None
        result["max_running_seen"] = running_containers(names.jobs)[0]
        time.sleep(SETTLE)  # the backlog of the start-up (all containers starting at once) is not steady state
        # a steady minute, or what is left of the printing once all run
        window = max(10.0, min(60.0, seconds - (time.monotonic() - started) - 5))
        lists_before, metrics_before, cpu_before = pod_lists(), collector.metrics(), collector.cpu_seconds()
        steady_start = time.monotonic()
        while time.monotonic() - steady_start < window:
            collector.rss_kib()
            time.sleep(1)
        elapsed = time.monotonic() - steady_start
        lists_after, metrics_after = pod_lists(), collector.metrics()
        result["steady_window_s"] = round(elapsed, 1)
        result["steady"] = {
            **lag_quantiles(metrics_before, metrics_after),
            "collector_cpu_percent": round(100 * (collector.cpu_seconds() - cpu_before) / elapsed, 1),
            "collector_rss_peak_mib": round(collector.peak_rss_kib / 1024, 1),
            "apiserver_pod_lists_all_clients": lists_after["all"] - lists_before["all"],
            "apiserver_pod_lists_cluster_scope": lists_after["cluster_scope"] - lists_before["cluster_scope"],
            "collector_reflector_lists": metrics_after.get('tenx_collector_reflector_lists{region="us"}', 0)
            - metrics_before.get('tenx_collector_reflector_lists{region="us"}', 0),
            "streams_followed": metrics_after.get('tenx_collector_streams_followed{region="us"}'),
            "errors": sum(v for k, v in metrics_after.items() if k.startswith("tenx_collector_errors_total")),
        }
        wait(lambda: running_containers(names.jobs)[1] >= containers, timeout=seconds + 180, interval=3)
        wait(lambda: count_losses(store, names.jobs, containers, lines)["lost"] == 0, timeout=60, interval=2)
        result["after"] = count_losses(store, names.jobs, containers, lines)
        result["collector_rss_peak_mib"] = round(collector.peak_rss_kib / 1024, 1)
        result["collector_exit"] = collector.process.poll()
    finally:
        collector.stop()
        store.close()
        names.delete()
    return result


def start_postgres(workdir: Path) -> tuple[str, Any]:
    """PostgreSQL of Debian's (installed by scripts/install-postgres.sh), as the archive tests start it."""
    from tests.support import archive_pg
    bin_dir = archive_pg._bin_dir()  # noqa: SLF001
    home = Path(tempfile.mkdtemp(prefix="tenx-bench-pg-"))  # not in workdir: the postgres user must reach it
    data, log, port = home / "data", home / "server.log", free_port()
    if os.geteuid() == 0:
        import pwd
        owner = pwd.getpwnam("postgres")
        os.chown(home, owner.pw_uid, owner.pw_gid)
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8",
              "--no-sync"]
    archive_pg._run(initdb, "initdb")  # noqa: SLF001
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c max_connections=60"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    archive_pg._run([*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", options, "start"], "start", log)  # noqa: SLF001
    import psycopg
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE archive")

    def stop() -> None:
        command = archive_pg._as_owner([*pg_ctl, "-m", "fast", "stop"])  # noqa: SLF001
        subprocess.run(command, capture_output=True, timeout=60)
        import shutil
        shutil.rmtree(home, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/archive", stop


def takeover(collectors: list[Collector], old: Collector, timeout: float) -> float | None:
    started = time.monotonic()
    found = wait(lambda: any(c is not old and c.process.poll() is None and c.leader() for c in collectors),
                 timeout, interval=0.2)
    return round(time.monotonic() - started, 1) if found else None


def ha_case(containers: int, per_pod: int, seconds: int, lease: int, workdir: Path) -> dict[str, Any]:
    from gateway.store import open_store
    url, stop_postgres = start_postgres(workdir)
    names = Namespaces()
    pods = -(-containers // per_pod)
    containers, lines = pods * per_pod, seconds * RATE
    env = collector_env(names, url, lease)
    store = open_store(url)
    collectors = [Collector(env, workdir / "ha-a.log"), Collector(env, workdir / "ha-b.log")]
    result: dict[str, Any] = {"containers": containers, "lines_per_container": lines, "lease_seconds": lease}
    try:
        wait(lambda: any(c.leader() for c in collectors), 60)
        kubectl("apply", "-f", "-", input_text=json.dumps(job("printers", names.jobs, pods, per_pod, lines)))
        wait(lambda: running_containers(names.jobs)[0] >= containers, timeout=seconds * 0.4, interval=2)
        time.sleep(10)
        leader = next(c for c in collectors if c.leader())
        os.kill(leader.process.pid, signal.SIGKILL)
        result["sigkill_takeover_s"] = takeover(collectors, leader, lease * 4)
        collectors.append(Collector(env, workdir / "ha-c.log"))  # what the Deployment would do
        time.sleep(10)
        leader = next((c for c in collectors if c.process.poll() is None and c.leader()), None)
        if leader is not None:
            os.kill(leader.process.pid, signal.SIGSTOP)
            result["sigstop_takeover_s"] = takeover(collectors, leader, lease * 4)
            time.sleep(3)
            os.kill(leader.process.pid, signal.SIGCONT)  # resumed with lines in hand, believing it leads
        wait(lambda: running_containers(names.jobs)[1] >= containers, timeout=seconds + 180, interval=3)
        wait(lambda: count_losses(store, names.jobs, containers, lines)["lost"] == 0, timeout=90, interval=2)
        result["after"] = count_losses(store, names.jobs, containers, lines)
        result["fenced_writes"] = sum(c.metrics().get('tenx_collector_fenced_writes_total{region="us"}', 0)
                                      for c in collectors if c.process.poll() is None)
    finally:
        for collector in collectors:
            collector.stop()
        store.close()
        names.delete()
        stop_postgres()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.collector", description=__doc__.splitlines()[0])
    parser.add_argument("--containers", default="100,300", help="comma-separated container counts")
    parser.add_argument("--per-pod", type=int, default=10, help="containers per pod (the node takes 110 pods)")
    parser.add_argument("--seconds", type=int, default=150, help="how long each container prints")
    parser.add_argument("--ha", type=int, default=100, help="containers in the 2-replica PostgreSQL case; 0: skip")
    parser.add_argument("--lease", type=int, default=15, help="Lease seconds in the HA case")
    args = parser.parse_args()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="tenx-bench-collector-"))
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}, "scale": [], "ha": None}
    for count in (int(c) for c in args.containers.split(",") if c):
        case = scale_case(count, args.per_pod, args.seconds, workdir)
        results["scale"].append(case)
        print(json.dumps(case), flush=True)
        (out / "collector.json").write_text(json.dumps(results, indent=2))
    if args.ha:
        results["ha"] = ha_case(args.ha, args.per_pod, args.seconds, args.lease, workdir)
        print(json.dumps(results["ha"]), flush=True)
    (out / "collector.json").write_text(json.dumps(results, indent=2))
    print(f"collector logs: {workdir}")


if __name__ == "__main__":
    main()
