"""How soon a waiting job starts once capacity frees, on the local cluster: ``python -m bench.queue [--quick]``.

Two paths, same load: ``CAPACITY`` jobs fit, ``CAPACITY + ROUNDS`` are submitted (each sleeps for an hour), through
a gateway as shipped (tests/support/harness.py) acting as admin.

- **kueue**: GATEWAY_QUEUE=kueue on a ClusterQueue of the bench's own with a ``pods`` quota of ``CAPACITY``; the
  jobs over it wait suspended in the user's LocalQueue until Kueue admits them.
- **quota**: no queue; the user's ResourceQuota (GATEWAY_TENANT_QUOTA_PODS) is ``CAPACITY``: the Jobs over it are
  created and their pods refused (``PodsHeldBack``); the Job controller tries again with its back-off.

Once ``CAPACITY`` pods run, each round deletes the oldest running job through the API (capacity frees: t0) and
waits for a pod of another job to be Running (t1), polling the apiserver every 50 ms. Both paths run on the process
agent node (pods are host processes, so the start itself is quick and the same). Numbers, not asserts; writes
``bench/results/queue.json``.
"""
from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.harness import ROOT, GatewayServer, kubectl
from tests.support.kueue import cluster_queue

from .measure import percentile

CAPACITY = 2
HOLD = {"containers": [{"image": "busybox", "command": ["sh", "-c", "sleep 3600"]}]}
ROUND_TIMEOUT = 180.0


def running_pods(namespace: str) -> dict[str, str]:
    """Pod name -> its job's name, for the pods that are Running now."""
    listed = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json", timeout=30).stdout)["items"]
    return {p["metadata"]["name"]: p["metadata"]["labels"].get("job-name", "") for p in listed
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def wait_running(namespace: str, count: int, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        pods = running_pods(namespace)
        if len(pods) >= count:
            return pods
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} pods did not run in {namespace} within {timeout} s")
        time.sleep(0.2)


def one_path(path: str, rounds: int, workdir: Path) -> dict[str, Any]:
    queue = f"tenx-bench-{secrets.token_hex(3)}"
    settings = {"GATEWAY_QUEUE": "kueue", "GATEWAY_QUEUE_CLUSTER_QUEUE": queue} if path == "kueue" else {
        "GATEWAY_TENANT_QUOTA_PODS": str(CAPACITY)}
    if path == "kueue":
        kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(cluster_queue(queue, CAPACITY)))
    server = GatewayServer(workdir / path, letter="b", **settings)
    samples: list[float] = []
    order: list[str] = []
    try:
        server.start(timeout=90)
        client = server.add_user("bq")
        namespace = server.namespace_of(client)
        names = [f"{path}-{i:02d}" for i in range(CAPACITY + rounds)]
        for name in names:
            created = client.post(f"/jobs/{name}", json=HOLD)
            assert created.status_code == 200, created.text
        seen = wait_running(namespace, CAPACITY, ROUND_TIMEOUT)
        started = sorted(set(seen.values()))
        order += started
        for _ in range(rounds):
            oldest = order[len(order) - CAPACITY]
            before = set(seen)
            t0 = time.monotonic()
            assert client.delete(f"/jobs/{oldest}").status_code == 200
            while True:
                now = running_pods(namespace)
                fresh = {pod: job for pod, job in now.items() if pod not in before and job != oldest}
                if fresh:
                    samples.append(time.monotonic() - t0)
                    order += sorted(set(fresh.values()))
                    seen = now
                    break
                if time.monotonic() - t0 > ROUND_TIMEOUT:
                    raise TimeoutError(f"{path}: no job started within {ROUND_TIMEOUT} s of {oldest}'s delete")
                time.sleep(0.05)
    finally:
        server.close()
        if path == "kueue":
            kubectl("delete", "clusterqueue", queue, "--wait=false", "--ignore-not-found", check=False)
    return {"capacity": CAPACITY, "rounds": rounds, "seconds": [round(s, 3) for s in samples],
            "p50": round(percentile(sorted(samples), 50), 3), "p90": round(percentile(sorted(samples), 90), 3),
            "max": round(max(samples), 3),
            "mean": round(sum(samples) / len(samples), 3), "start_order": order}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds per path instead of 8")
    args = parser.parse_args()
    rounds = 3 if args.quick else 8
    load = [Path("/proc/loadavg").read_text().split()[:3]]
    with tempfile.TemporaryDirectory(prefix="tenx-bench-queue-") as tmp:
        results = {path: one_path(path, rounds, Path(tmp)) for path in ("kueue", "quota")}
    load.append(Path("/proc/loadavg").read_text().split()[:3])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    report = {"case": "capacity freed -> next waiting job's pod Running", "commit": commit.strip(),
              "load_before_after": load, **results}
    out = ROOT / "bench/results/queue.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for path, result in results.items():
        print(f"{path:6} capacity {CAPACITY}, {rounds} rounds: p50 {result['p50']:.2f} s, p90 {result['p90']:.2f} s, "
              f"mean {result['mean']:.2f} s, max {result['max']:.2f} s   {result['seconds']}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
