"""The flood case's workload and what watches it while it runs: the flood and neighbour jobs (through the gateway, as
tenants make them), the archive watch (each flood stream's committed line count against the clock, and when each
neighbour job's lines became readable) and the collectors' CPU and memory from /proc."""
from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.store import ContainerKey
from tests.support.harness import ApiClient, wait_until

# ~100-byte lines "f <n> xxx...", numbered from 1, as fast as the runtime takes them for SECONDS, then "done <n>"
# (as tests/integration/test_node_collector.py); busybox awk buffers its output, so each write is a full pipe buffer
FLOOD_LINE = r'n++; printf "f %d ' + "x" * 88 + r'\n", n'
FLOOD = ("awk 'BEGIN { end = systime() + SECONDS; n = 0; while (systime() < end) { " + FLOOD_LINE + " }; "
         r"""printf "done %d\n", n }'""")
NEIGHBOUR_LINES = 5
# a short job: its pod's name is known (GET /jobs) before it prints, since it sleeps first
NEIGHBOUR = f"sleep 2; i=1; while [ $i -le {NEIGHBOUR_LINES} ]; do echo \"n $i\"; i=$((i+1)); done"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def job_body(script: str) -> dict[str, Any]:
    return {"containers": [{"image": "busybox", "command": ["sh", "-c", script]}]}


def create_job(user: ApiClient, name: str, script: str) -> None:
    response = user.post(f"/jobs/{name}", json=job_body(script))
    if response.status_code != 200:
        raise RuntimeError(f"creating {name}: {response.status_code} {response.text[:300]}")


def instance_of(user: ApiClient, name: str, timeout: float) -> str | None:
    """The job's (first) pod, as the gateway shows it."""
    return wait_until(lambda: (user.get(f"/jobs/{name}").json().get("instance_names") or [None])[0], timeout,
                      interval=0.2)


@dataclass
class Neighbour:
    job: str
    key: ContainerKey | None = None
    created: float = 0.0  # clock time
    readable: float | None = None  # clock time the archive first held all its lines
    last_stamp_ns: int | None = None  # the runtime's stamp of its last line

    @property
    def lag(self) -> float | None:
        if self.readable is None or self.last_stamp_ns is None:
            return None
        return self.readable - self.last_stamp_ns / 1e9


@dataclass
class Watch:
    """What the archive watch saw: per flood stream, (clock time, committed line count) each time it changed."""
    commits: dict[ContainerKey, list[tuple[float, int]]] = field(default_factory=dict)
    neighbours: list[Neighbour] = field(default_factory=list)


class ArchiveWatch(threading.Thread):
    """Every ``interval`` seconds: each flood stream's committed line count (the store's resume point, committed
    with the lines), and whether each pending neighbour job's lines are all in."""

    def __init__(self, store, interval: float):
        super().__init__(daemon=True, name="archive-watch")
        self.store, self.interval = store, interval
        self.seen = Watch()
        self.errors, self.last_error = 0, ""
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def follow(self, key: ContainerKey) -> None:
        with self._lock:
            self.seen.commits.setdefault(key, [])

    def expect(self, neighbour: Neighbour) -> None:
        with self._lock:
            self.seen.neighbours.append(neighbour)

    def pending(self) -> int:
        """Neighbour jobs (with a pod) whose lines are not all in yet."""
        with self._lock:
            return sum(1 for n in self.seen.neighbours if n.readable is None and n.key)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self._sample()
            except Exception as exc:  # noqa: BLE001 - a busy archive's error: counted, sampled again
                self.errors += 1
                self.last_error = str(exc)[:300]

    def _sample(self) -> None:
        with self._lock:
            streams = list(self.seen.commits.items())
            waiting = [n for n in self.seen.neighbours if n.readable is None and n.key]
        for key, commits in streams:
            point = self.store.resume_point(key)
            if not commits or commits[-1][1] != point.next_seq:
                commits.append((time.time(), point.next_seq))
        for neighbour in waiting:
            point = self.store.resume_point(neighbour.key)
            if point.next_seq >= NEIGHBOUR_LINES:
                neighbour.readable, neighbour.last_stamp_ns = time.time(), point.last_ts_ns

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)


class Neighbours(threading.Thread):
    """The neighbour tenant: a short job every ``every`` seconds until stopped, each handed to the watch."""

    def __init__(self, user: ApiClient, namespace: str, watch: ArchiveWatch, every: float):
        super().__init__(daemon=True, name="neighbours")
        self.user, self.namespace, self.watch, self.every = user, namespace, watch, every
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        index = 0
        while not self._halt.is_set():
            started = time.monotonic()
            index += 1
            name = f"nb-{index:03d}-{secrets.token_hex(2)}"
            neighbour = Neighbour(name, created=time.time())
            try:
                create_job(self.user, name, NEIGHBOUR)
                instance = instance_of(self.user, name, 60)
                if instance is None:
                    raise RuntimeError(f"{name}: no pod in 60 s")
                neighbour.key = ContainerKey(self.namespace, name, instance, name)
            except Exception as exc:  # noqa: BLE001 - reported with the figures
                self.errors.append(str(exc)[:300])
            self.watch.expect(neighbour)
            self._halt.wait(max(0.0, self.every - (time.monotonic() - started)))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=90)


class ProcSampler(threading.Thread):
    """The collectors' CPU (utime + stime) and resident memory, every ``interval`` seconds, from /proc."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5):
        super().__init__(daemon=True, name="proc-sampler")
        self.pids, self.interval = pids, interval
        self.peak_rss_kib = {name: 0 for name in pids}
        self._halt = threading.Event()

    def cpu_seconds(self) -> dict[str, float]:
        found = {}
        for name, pid in self.pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                found[name] = (int(fields[11]) + int(fields[12])) / CLK_TCK
            except OSError:
                found[name] = 0.0
        return found

    def cpu_wait_seconds(self) -> dict[str, float]:
        """Seconds the collectors' threads were runnable but waiting for a CPU (the scheduler's run-queue delay,
        /proc/<pid>/task/*/schedstat; threads that ended are not counted): how much a busy machine held them."""
        found = {}
        for name, pid in self.pids.items():
            waited = 0
            for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
                try:
                    waited += int(stat.read_text().split()[1])
                except (OSError, IndexError, ValueError):
                    pass
            found[name] = waited / 1e9
        return found

    def status_kib(self, key: str) -> dict[str, int]:
        found = {}
        for name, pid in self.pids.items():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(key + ":"):
                        found[name] = int(line.split()[1])
            except OSError:
                pass
        return found

    def run(self) -> None:
        while not self._halt.is_set():
            for name, rss in self.status_kib("VmRSS").items():
                self.peak_rss_kib[name] = max(self.peak_rss_kib[name], rss)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
