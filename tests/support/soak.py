"""Soak: `make soak` (not part of `make test`). Ten minutes (SOAK_SECONDS) of mixed traffic from several users
(creates, gets, lists, instance and job logs, instances, deletes) against a gateway (gunicorn, shipped config, with
its collector) whose apiserver is a second kube-apiserver of the soak's own, which is hung (SIGSTOP/SIGCONT) and
killed and restarted in turn (every SOAK_FAULT_EVERY seconds, for SOAK_FAULT_SECONDS). The shared cluster is never
touched but for the users' namespaces.

Reports the answers by operation and status, in and out of fault windows, latency percentiles, the workers' and the
collector's memory over time, and writes it all to .local/reliability/soak.json. Exits 1 if an answer outside the
fault windows (and the 10 s allowed for recovery after each) was not one of the expected ones.

    SOAK_SECONDS=180 make soak
"""
from __future__ import annotations

import os
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from .harness import GatewayServer, rss_kib
from .reliability import SecondApiserver, connection_error_kind, percentile, record

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
USERS = int(os.environ.get("SOAK_USERS", "4"))
THREADS_PER_USER = int(os.environ.get("SOAK_THREADS_PER_USER", "2"))
FAULT_EVERY = float(os.environ.get("SOAK_FAULT_EVERY", "30"))
FAULT_SECONDS = float(os.environ.get("SOAK_FAULT_SECONDS", "5"))
CREATE_EVERY = float(os.environ.get("SOAK_CREATE_EVERY", "10"))  # seconds between a thread's creates: pods run
RECOVERY = 10.0  # seconds after a fault in which 503s are still expected
JOB_SCRIPT = "echo start; seq 1 200; echo done"
EXPECTED = {"list": {200}, "get": {200}, "create": {200}, "delete": {200}, "logs": {200}, "job logs": {200},
            "instances": {200}}
# weights of the operations a client thread picks from
OPS = ["list"] * 3 + ["get"] * 3 + ["logs"] * 2 + ["job logs", "instances", "create", "delete"]


class Client(threading.Thread):
    """One client thread of one user: keeps a few jobs of its own (one new every CREATE_EVERY seconds, the oldest
    deleted past three) and calls on them at random."""

    def __init__(self, soak: "Soak", user, index: int):
        super().__init__(daemon=True)
        self.soak, self.user, self.index = soak, user, index
        self.session = requests.Session()
        self.session.headers.update(user.session.headers)
        self.jobs: dict[str, str | None] = {}  # name -> an instance name, once known
        self.random = random.Random(index)
        self.last_create = 0.0

    def call(self, op: str, method: str, path: str, **kwargs) -> requests.Response | None:
        started = time.monotonic()
        try:
            response = self.session.request(method, self.user.base + path, timeout=60, **kwargs)
            status: int | str = response.status_code
        except requests.RequestException as exc:
            response, status = None, connection_error_kind(exc)
        self.soak.note(op, status, started, time.monotonic())
        if response is None:
            self.soak.stopping.wait(0.1)
        return response

    def step(self) -> None:
        op = self.random.choice(OPS) if self.jobs else "create"
        if op == "create" and time.monotonic() - self.last_create < CREATE_EVERY and self.jobs:
            op = "list"
        if op == "create":
            self.last_create = time.monotonic()
            name = f"s{self.index}-{secrets.token_hex(4)}"
            body = {"containers": [{"image": "busybox", "command": ["sh", "-c", JOB_SCRIPT]}]}
            response = self.call("create", "POST", f"/jobs/{name}", json=body)
            if response is not None and response.status_code == 200:
                self.jobs[name] = None
            return
        name = self.random.choice(list(self.jobs))
        if op == "list":
            self.call(op, "GET", "/jobs")
        elif op == "get":
            response = self.call(op, "GET", f"/jobs/{name}")
            if response is not None and response.status_code == 200 and response.json().get("instance_names"):
                self.jobs[name] = response.json()["instance_names"][0]
        elif op == "logs" and self.jobs[name]:
            self.call(op, "GET", f"/jobs/{name}/instances/{self.jobs[name]}/logs", params={"from": 0, "size": 100})
        elif op == "job logs":
            self.call(op, "GET", f"/jobs/{name}/logs", params={"size": 100})
        elif op == "instances":
            self.call(op, "GET", f"/jobs/{name}/instances")
        elif op == "delete" and len(self.jobs) > 3:
            name = next(iter(self.jobs))  # the oldest
            self.call(op, "DELETE", f"/jobs/{name}")
            del self.jobs[name]  # even if the answer was lost in a fault: it may be gone, so it is not used again

    def run(self) -> None:
        while not self.soak.stopping.is_set():
            self.step()


class Soak:
    def __init__(self, workdir: Path):
        self.apiserver = SecondApiserver(workdir / "apiserver")
        self.gateway = GatewayServer(workdir / "gateway", kubeconfig=self.apiserver.kubeconfig, collector=True,
                                     GATEWAY_KUBE_READ_TIMEOUT="3", GATEWAY_KUBE_CONNECT_TIMEOUT="1",
                                     GATEWAY_TENANT_QUOTA_JOBS="1000000")  # ten minutes of creates per user
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.calls: list[tuple[str, int | str, float, float]] = []
        self.faults: list[tuple[str, float, float]] = []
        self.memory: list[dict] = []

    def note(self, op: str, status: int | str, started: float, ended: float) -> None:
        with self.lock:
            self.calls.append((op, status, started, ended))

    def collector_rss_kib(self) -> int:
        """The collectors' resident memory, summed (one node collector per node)."""
        return rss_kib(process.pid for process in self.gateway.collectors.values())

    def sample_memory(self, start: float) -> None:
        self.memory.append({"t": round(time.monotonic() - start), "workers_mib": round(
            self.gateway.workers_rss_kib() / 1024, 1), "collector_mib": round(self.collector_rss_kib() / 1024, 1)})

    def inject_faults(self, start: float) -> None:
        kinds = ["SIGSTOP", "SIGKILL"]
        n = 0
        while not self.stopping.wait(FAULT_EVERY):
            if time.monotonic() - start > SECONDS - FAULT_EVERY / 2:
                break
            kind = kinds[n % len(kinds)]
            n += 1
            began = time.monotonic()
            if kind == "SIGSTOP":
                self.apiserver.pause()
                self.stopping.wait(FAULT_SECONDS)
                self.apiserver.resume()
            else:
                self.apiserver.kill()
                self.stopping.wait(FAULT_SECONDS)
                self.apiserver.start()
            self.faults.append((kind, began, time.monotonic()))
            print(f"[soak] {time.monotonic() - start:6.0f}s {kind} for {time.monotonic() - began:.1f}s", flush=True)

    def in_fault(self, started: float, ended: float) -> bool:
        return any(started <= end + RECOVERY and ended >= begin for _, begin, end in self.faults)

    def run(self) -> int:
        self.apiserver.start()
        self.gateway.start()
        users = [self.gateway.add_user(f"soak{i}-") for i in range(USERS)]
        workers_at_start = self.gateway.worker_pids()
        clients = [Client(self, user, u * THREADS_PER_USER + t) for u, user in enumerate(users)
                   for t in range(THREADS_PER_USER)]
        start = time.monotonic()
        self.sample_memory(start)
        for client in clients:
            client.start()
        faults = threading.Thread(target=self.inject_faults, args=(start,), daemon=True)
        faults.start()
        while time.monotonic() - start < SECONDS and not self.stopping.is_set():
            self.stopping.wait(min(10.0, max(0.0, SECONDS - (time.monotonic() - start))))
            self.sample_memory(start)
            with self.lock:
                done = len(self.calls)
            print(f"[soak] {time.monotonic() - start:6.0f}s {done} calls, memory {self.memory[-1]}", flush=True)
        self.stopping.set()
        for thread in (*clients, faults):
            thread.join(timeout=120)
        self.apiserver.resume()
        return self.report(start, workers_at_start)

    def report(self, start: float, workers_at_start: list[int]) -> int:
        steady = [c for c in self.calls if not self.in_fault(c[2], c[3])]
        faulty = [c for c in self.calls if self.in_fault(c[2], c[3])]
        unexpected = Counter(f"{op} {status}" for op, status, _, _ in steady if status not in EXPECTED[op])
        latencies = [end - begin for _, status, begin, end in steady if isinstance(status, int)]
        log = self.gateway.log_text()
        warm = self.memory[1] if len(self.memory) > 1 else self.memory[0]
        figures = {
            "what": f"{USERS} users x {THREADS_PER_USER} threads of mixed calls for {SECONDS:.0f} s; the gateway's "
                    f"own apiserver hung (SIGSTOP) or killed in turn every {FAULT_EVERY:.0f} s for "
                    f"{FAULT_SECONDS:.0f} s",
            "seconds": round(time.monotonic() - start), "calls": len(self.calls),
            "faults": dict(Counter(kind for kind, _, _ in self.faults)),
            "steady_answers": dict(sorted(Counter(f"{op} {status}" for op, status, _, _ in steady).items())),
            "fault_window_answers": dict(sorted(Counter(f"{op} {status}" for op, status, _, _ in faulty).items())),
            "unexpected_outside_faults": dict(unexpected),
            "server_errors_not_503": sum(1 for _, s, _, _ in self.calls if isinstance(s, int) and s >= 500
                                         and s != 503),
            "latency_steady_s": {"p50": round(percentile(latencies, 0.5) or 0, 3),
                                 "p99": round(percentile(latencies, 0.99) or 0, 3),
                                 "max": round(max(latencies, default=0), 3)},
            "latency_in_faults_max_s": round(max((e - b for _, _, b, e in faulty), default=0), 3),
            "workers_rss_mib": {"start": self.memory[0]["workers_mib"], "after_10s": warm["workers_mib"],
                                "end": self.memory[-1]["workers_mib"],
                                "max": max(m["workers_mib"] for m in self.memory)},
            "collector_rss_mib": {"after_10s": warm["collector_mib"], "end": self.memory[-1]["collector_mib"]},
            "workers_replaced": self.gateway.worker_pids() != workers_at_start,
            "worker_timeouts": log.count("WORKER TIMEOUT"),
            "gateway_error_lines": log.count('"level": "error"'),
            "collector_alive": bool(self.gateway.collectors) and all(
                process.poll() is None for process in self.gateway.collectors.values()),
            "collector_error_lines": self.gateway.collector_text().count('"level": "error"'),
            "memory_samples": self.memory,
        }
        record("soak", figures)
        return 1 if unexpected or figures["server_errors_not_503"] or figures["workers_replaced"] else 0

    def close(self) -> None:
        self.stopping.set()
        self.apiserver.resume()
        self.gateway.close()
        self.apiserver.stop()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tenx-soak-") as workdir:
        soak = Soak(Path(workdir))
        signal.signal(signal.SIGTERM, lambda *_: soak.stopping.set())
        try:
            return soak.run()
        finally:
            soak.close()


if __name__ == "__main__":
    sys.exit(main())
