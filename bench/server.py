"""The gateway as in production: gunicorn with the shipped gunicorn.conf.py and its collector on a free loopback
port, started by the tests' harness (tests/support/harness.py) with the shipped defaults; and its workers' memory."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.support.harness import ROOT, GatewayServer

__all__ = ["ROOT", "Gateway", "RssSampler", "proc_status_kb"]


# The bench's one user holds 10,000 suspended Jobs for the list case and creates hundreds more: the shipped
# per-tenant quota (100 Jobs) would refuse them, so the bench's tenant gets room; everything else is as shipped.
BENCH_SETTINGS = {"GATEWAY_TENANT_QUOTA_JOBS": "100000"}


class Gateway(GatewayServer):
    """The bench's gateway: names ``b<run_id>-...``, no test settings (the shipped worker count and caches), the
    bench user's namespace and the gateway's cleaned up by bench/run.py."""

    def __init__(self, kubeconfig: str, run_id: str, workdir: str, log_path: Path):
        super().__init__(workdir, kubeconfig=kubeconfig, collector=True, letter="b", run_id=run_id, output=log_path,
                         defaults=BENCH_SETTINGS, admin_kubeconfig=kubeconfig)

    def expected_workers(self) -> int:
        return self.workers

    def stop(self) -> None:
        self.terminate(timeout=30)

    def cli(self, *args: str, check: bool = True) -> str:  # type: ignore[override]
        """The CLI's output, stripped (the token of ``users add``)."""
        return super().cli(*args, check=check).stdout.strip()


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
