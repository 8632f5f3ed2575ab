"""The gateway as in production: gunicorn with the shipped gunicorn.conf.py on a free loopback port (environment
as in the integration tests' ``gateway`` fixture), its user CLI, and its workers' memory."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gateway:
    def __init__(self, kubeconfig: str, run_id: str, workdir: str, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.namespace_prefix = f"b{run_id}-"
        self.gateway_namespace = f"tenx-gateway-b{run_id}"
        self.env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "GATEWAY_BIND": f"127.0.0.1:{self.port}",
            "GATEWAY_NAMESPACE": self.gateway_namespace,
            "GATEWAY_NAMESPACE_PREFIX": self.namespace_prefix,
            "GATEWAY_HOST_VOLUME_ROOT": os.path.join(workdir, "app_data"),
            "GATEWAY_DATA_DIR": os.path.join(workdir, "data"),  # the log archive (SQLite) of the archived case
        }
        self.volume_root = self.env["GATEWAY_HOST_VOLUME_ROOT"]
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.collector: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        with open(self.log_path, "wb") as sink:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with open(self.log_path.with_name("collector.log"), "wb") as sink:  # as `make run` does, beside the API
            self.collector = subprocess.Popen([str(VENV_BIN / "tenx-gateway"), "collect"], cwd=ROOT, env=self.env,
                                              stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(self.url + "/v1/regions/us/jobs", timeout=2)  # 401 without credentials: it is up
                if len(self.worker_pids()) >= self.expected_workers():
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gateway did not start:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.2)

    def expected_workers(self) -> int:
        return int(self.env.get("GATEWAY_WORKERS", min(4, os.cpu_count() or 1)))

    def stop(self) -> None:
        for process in (self.process, self.collector):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def worker_pids(self) -> list[int]:
        """gunicorn's workers: the children of the master process."""
        if not self.process:
            return []
        master, pids = self.process.pid, []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry))
        return sorted(pids)

    def cli(self, *args: str) -> str:
        return subprocess.run([str(VENV_BIN / "tenx-gateway"), *args], env=self.env, capture_output=True,
                              text=True, check=True, timeout=60, stdin=subprocess.DEVNULL).stdout.strip()


def proc_status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """Samples VmRSS of every worker every ``interval`` seconds, keeping the peak per case and per worker;
    VmHWM (the kernel's own high-water mark since the worker started) is read at the end."""

    def __init__(self, gateway: Gateway, interval: float = 0.05):
        super().__init__(daemon=True)
        self.gateway, self.interval = gateway, interval
        self.case: str | None = None
        self.case_peak_kb: dict[str, int] = {}
        self.worker_peak_kb: dict[int, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        pids, refreshed = [], 0.0
        while not self._halt.is_set():
            now = time.monotonic()
            if now - refreshed > 1:
                pids, refreshed = self.gateway.worker_pids(), now
            for pid in pids:
                rss = proc_status_kb(pid, "VmRSS")
                if rss is None:
                    continue
                self.worker_peak_kb[pid] = max(rss, self.worker_peak_kb.get(pid, 0))
                if self.case:
                    self.case_peak_kb[self.case] = max(rss, self.case_peak_kb.get(self.case, 0))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def high_water_marks(self) -> dict[int, dict[str, float | None]]:
        result = {}
        for pid in self.gateway.worker_pids():
            hwm, rss = proc_status_kb(pid, "VmHWM"), proc_status_kb(pid, "VmRSS")
            result[pid] = {"vmhwm_mb": _mb(hwm), "vmrss_now_mb": _mb(rss),
                           "sampled_peak_mb": _mb(self.worker_peak_kb.get(pid))}
        return result


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)
