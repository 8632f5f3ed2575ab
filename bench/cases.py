"""The cases, in the order they run: one job (get, create, delete), logs, then lists at growing scale."""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gateway.store import ContainerKey
from tests.support.harness import wait_until

from . import cluster, ops
from .measure import Samples, Side, concurrent_pair, paired
from .profile import format_profile, profile_side
from .server import RssSampler


@dataclass(frozen=True)
class Plan:
    get_n: int
    create_n: int
    per_client: int  # per client of 16 for get
    list_n: dict[int, int]  # jobs in the namespace -> sequential iterations
    list_per_client: int  # per client of 16 for list at the smallest scale
    log_lines: int
    log_n: int
    warmup: int = 10
    clients: int = 16
    cache_pods: int = 10000  # Pending pods created for the watch cache's memory figure (bench/cache.py)
    running_log_lines: int = 1_000_000  # the log of a job still running, paged once the collector holds it


FULL = Plan(get_n=1000, create_n=300, per_client=100, list_n={100: 300, 1000: 100, 10000: 20}, list_per_client=30,
            log_lines=100_000, log_n=50)
QUICK = Plan(get_n=200, create_n=80, per_client=30, list_n={100: 100, 1000: 20}, list_per_client=10,
             log_lines=10_000, log_n=20, cache_pods=1000, running_log_lines=100_000)


class Runner:
    def __init__(self, target: ops.Target, plan: Plan, rss: RssSampler, worker_pids, out_dir: Path,
                 profile: bool):
        self.t, self.plan, self.rss, self.worker_pids = target, plan, rss, worker_pids
        self.out_dir, self.profile_enabled = out_dir, profile
        self.results: list[dict[str, Any]] = []
        self.profiles: dict[str, dict] = {}

    def _record(self, case: str, operation: str, direct: str, scale: str, concurrency: int, gw: Samples,
                dr: Samples, seconds: float) -> dict:
        g, d = gw.summary(), dr.summary()
        row = {
            "case": case, "operation": operation, "direct_equivalent": direct, "scale": scale,
            "concurrency": concurrency, "gateway": g, "direct": d,
            "delta_p50_ms": _sub(g["p50_ms"], d["p50_ms"]), "delta_p99_ms": _sub(g["p99_ms"], d["p99_ms"]),
            "ratio_p50": _div(g["p50_ms"], d["p50_ms"]), "ratio_p99": _div(g["p99_ms"], d["p99_ms"]),
            "throughput_ratio": _div(g["throughput_rps"], d["throughput_rps"]),
            "gateway_worker_peak_rss_mb": round(self.rss.case_peak_kb.get(case, 0) / 1024, 1) or None,
            "load_1m_after": round(os.getloadavg()[0], 2), "seconds": round(seconds, 1),
        }
        self.results.append(row)
        print(f"  {case:<22} gateway p50 {g['p50_ms']} ms p99 {g['p99_ms']} ms | direct p50 {d['p50_ms']} ms "
              f"p99 {d['p99_ms']} ms | {g['throughput_rps']} vs {d['throughput_rps']} req/s"
              + (f" | errors {g['errors']}/{d['errors']}: {g['first_error'] or d['first_error']}"
                 if g['errors'] or d['errors'] else ""), flush=True)
        return row

    def pair(self, case: str, operation: str, direct: str, scale: str, sides: tuple[Side, Side], n: int,
             warmup: int | None = None) -> dict:
        self.rss.case, start = case, time.perf_counter()
        gw, dr = paired(*sides, n=n, warmup=self.plan.warmup if warmup is None else warmup)
        self.rss.case = None
        return self._record(case, operation, direct, scale, 1, gw, dr, time.perf_counter() - start)

    def concurrent(self, case: str, operation: str, direct: str, scale: str, sides: tuple[Side, Side],
                   per_client: int) -> dict:
        self.rss.case, start = case, time.perf_counter()
        gw, dr = concurrent_pair(*sides, clients=self.plan.clients, per_client=per_client)
        self.rss.case = None
        return self._record(case, operation, direct, scale, self.plan.clients, gw, dr, time.perf_counter() - start)

    def profile(self, case: str, side: Side, n: int) -> None:
        if not self.profile_enabled:
            return
        result = profile_side(side, self.worker_pids(), n, self.out_dir, case.replace(" ", "-"))
        self.profiles[case] = result
        text = format_profile(case, result)
        (self.out_dir / f"profile-{case.replace(' ', '-')}.txt").write_text(text)
        print(text, flush=True)


def _sub(a, b):
    return None if a is None or b is None else round(a - b, 3)


def _div(a, b):
    return None if not a or not b else round(a / b, 3)


def gateway_create(t: ops.Target, name: str, spec: dict) -> None:
    session = t.gateway_session()
    r = session.post(f"{t.base}/jobs/{name}", json=spec, timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"creating {name} through the gateway: {r.status_code} {r.text[:500]}")


def single_job_cases(r: Runner) -> None:
    t, plan = r.t, r.plan
    job = cluster.wait_job_done(t.api, t.namespace, "bench-get")
    get = ops.get_sides(t, job)
    what, direct = "GET /jobs/{name} (1 pod)", "GET job + LIST pods by the job's selector (what the gateway's get does)"
    r.pair("get", what, direct, "1 job", get, plan.get_n)
    r.concurrent("get c16", what, direct, "1 job", get, plan.per_client)
    r.profile("get", get[0], min(300, plan.get_n))

    count = plan.create_n + plan.warmup
    gw, dr, made_gw, made_direct = ops.create_sides(t, "bc", count)
    r.pair("create", "POST /jobs/{name} (job.json)", "POST the Job the gateway builds", "1 job", (gw, dr),
           plan.create_n)
    delete = ops.delete_sides(t, made_gw, made_direct)
    r.pair("delete", "DELETE /jobs/{name}", "DELETE job, propagationPolicy Background", "1 job", delete,
           min(len(made_gw), len(made_direct)) - plan.warmup)
    if r.profile_enabled:
        n = min(100, plan.create_n)
        gw, _, made, _ = ops.create_sides(t, "bp", 0)
        r.profile("create", gw, n)
        r.profile("delete", ops.delete_sides(t, made, [])[0], len(made))


def log_cases(r: Runner, job: str) -> None:
    t, plan = r.t, r.plan
    cluster.wait_job_done(t.api, t.namespace, job, timeout=600)
    session = t.gateway_session()
    pod = session.get(f"{t.base}/jobs/{job}", timeout=60).json()["instance_names"][0]
    started = t.api.session().get(t.api.url(f"/api/v1/namespaces/{t.namespace}/pods/{pod}"),
                                  timeout=60).json()["status"].get("startTime") or ""
    day = (started[:10] or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")).replace("-", ".")
    lines = plan.log_lines
    scale = f"{lines:,}-line log"
    whole = "GET pods/{pod}/log (whole log) + slice client-side"
    for label, offset in (("from 0", 0), ("from mid", lines // 2), ("last 100", lines - 100)):
        sides = ops.log_sides(t, job, pod, job, offset, 100)
        case = f"logs {label}"
        n = plan.log_n * (2 if offset == 0 else 1)
        check = ops.check_log_page(t, job, pod, job, offset, 100)
        r.pair(case, f"GET .../logs?from={offset}&size=100", whole, scale, sides, n, warmup=3)["check"] = check
        r.profile(case, sides[0], 40 if offset == 0 else 15)
    sides = ops.log_sides(t, job, pod, job, 0, 100, day=day)
    check = ops.check_log_page(t, job, pod, job, 0, 100, day=day)
    r.pair("logs date", f"GET .../logs?date={day}&from=0&size=100",
           "GET pods/{pod}/log?timestamps&sinceTime=<day> (whole day) + first 100 of the day client-side",
           scale, sides, plan.log_n * 2, warmup=3)["check"] = check
    r.profile("logs date", sides[0], 40)


ARCHIVED_JOB = "bench-archived"


def archived_log_cases(r: Runner, live_job: str) -> None:
    """Pages of an instance whose Job was deleted, so the gateway reads the log archive (filled by the collector
    the bench runs beside the gateway). Direct side: reading the same log whole from the live twin's pod."""
    t, plan = r.t, r.plan
    lines = plan.log_lines
    cluster.wait_job_done(t.api, t.namespace, ARCHIVED_JOB, timeout=600)
    session = t.gateway_session()
    pod = session.get(f"{t.base}/jobs/{ARCHIVED_JOB}", timeout=60).json()["instance_names"][0]
    live_pod = session.get(f"{t.base}/jobs/{live_job}", timeout=60).json()["instance_names"][0]
    last_line = f"{t.base}/jobs/{ARCHIVED_JOB}/logs"
    wait_until(lambda: session.get(last_line, params={"from": lines - 1, "size": 1}, timeout=60).json(), 300,
               interval=1, what="the collector to archive the whole log")
    if session.delete(f"{t.base}/jobs/{ARCHIVED_JOB}", timeout=60).status_code != 200:
        raise RuntimeError("deleting the archived job through the gateway failed")
    pod_url = t.api.url(f"/api/v1/namespaces/{t.namespace}/pods/{pod}")
    wait_until(lambda: t.api.session().get(pod_url, timeout=60).status_code == 404, 120,
               interval=1, what="the pod to be deleted")
    scale = f"{lines:,}-line log, archived"
    for label, offset in (("from 0", 0), ("from mid", lines // 2), ("last 100", lines - 100)):
        archived = ops.log_sides(t, ARCHIVED_JOB, pod, ARCHIVED_JOB, offset, 100)[0]
        whole_live = ops.log_sides(t, live_job, live_pod, live_job, offset, 100)[1]
        r.pair(f"archived {label}", f"GET .../logs?from={offset}&size=100 (pod and job deleted)",
               "GET pods/{pod}/log (whole log, of a live twin) + slice client-side", scale,
               (archived, whole_live), plan.log_n, warmup=3)


RUNNING_JOB = "bench-running"


def running_spec(lines: int) -> dict:
    """A job that prints ``lines`` numbered lines, then keeps running (sleeps) for the rest of the bench."""
    return {"containers": [{"image": "busybox", "command": ["sh", "-c", f"seq 1 {lines}; sleep 7200"]}]}


def wait_running_archived(r: Runner, open_archive: Callable[[], Any]) -> dict:
    """Wait for the running job's pod and for the collector to hold its whole log in the archive (asked directly:
    the gateway would answer a page the archive lacks from the running pod).

    The job is created with the run's first jobs, before the list cases seed 10,000 Jobs and the cache's figure
    10,000 Pending pods: created after them, its Job waited behind the Job controller's backlog of seeded Jobs
    (it settles them at its client's 20 requests/s) and its pod behind the scheduler's queue, more than the 300 s
    the bench allowed. Awaited before the timed cases: archiving the million lines takes the collector a core."""
    t, lines = r.t, r.plan.running_log_lines
    session = t.gateway_session()
    started = time.monotonic()
    pod = wait_until(lambda: (session.get(f"{t.base}/jobs/{RUNNING_JOB}", timeout=60).json().get("instance_names")
                              or [None])[0], 300, interval=1, what="the running job's pod")
    pod_seconds = time.monotonic() - started
    key = ContainerKey(t.namespace, RUNNING_JOB, pod, RUNNING_JOB)
    archive = open_archive()
    try:
        wait_until(lambda: archive.resume_point(key).next_seq >= lines, 1200, interval=2,
                   what="the collector to archive the running job's log")
    finally:
        archive.close()
    figures = {"pod_seconds": round(pod_seconds, 1), "archived_seconds": round(time.monotonic() - started, 1)}
    print(f"  the running job's pod in {figures['pod_seconds']} s; the collector held its {lines:,} lines "
          f"{figures['archived_seconds']} s after its creation", flush=True)
    return figures


def running_log_cases(r: Runner) -> None:
    """Pages of a running job's log, archived whole (``wait_running_archived``): the gateway reads the archive up
    to the collector's watermark and only what follows from the pod (nothing here). Direct: the whole log."""
    t, plan = r.t, r.plan
    lines = plan.running_log_lines
    session = t.gateway_session()
    pod = session.get(f"{t.base}/jobs/{RUNNING_JOB}", timeout=60).json()["instance_names"][0]
    scale = f"{lines:,}-line log, running, archived"
    for label, offset in (("from 0", 0), ("from mid", lines // 2), ("last 100", lines - 100)):
        sides = ops.log_sides(t, RUNNING_JOB, pod, RUNNING_JOB, offset, 100)
        check = ops.check_log_page(t, RUNNING_JOB, pod, RUNNING_JOB, offset, 100)
        r.pair(f"running {label}", f"GET .../logs?from={offset}&size=100 (pod running)",
               "GET pods/{pod}/log (whole log) + slice client-side", scale, sides, max(10, plan.log_n // 2),
               warmup=3)["check"] = check


def list_cases(r: Runner, username: str) -> list[dict]:
    t, plan = r.t, r.plan
    seeding = []
    sides = ops.list_sides(t)
    next_index = 0
    for scale, n in sorted(plan.list_n.items()):
        have = cluster.count_jobs(t.api, t.namespace)
        missing = [f"seed-{k:05d}" for k in range(next_index, next_index + max(0, scale - have))]
        next_index += len(missing)
        print(f"seeding {len(missing)} suspended jobs (namespace has {have}) ...", flush=True)
        seeded = cluster.seed_jobs(t.api, t.namespace, missing,
                                   lambda name: _suspended(t.manifest(name)))
        seeded.update(cluster.wait_controller_settled(t.api, t.namespace, timeout=min(90, 30 + scale / 20)))
        seeded["jobs_in_namespace"] = cluster.count_jobs(t.api, t.namespace)
        seeding.append({"scale": scale, **seeded})
        print(f"  seeded: {json.dumps(seeded)}", flush=True)
        label = f"{seeded['jobs_in_namespace']:,} jobs"
        check = ops.check_list(t)
        r.pair(f"list {scale}", "GET /jobs", "LIST jobs in the namespace", label, sides, n,
               warmup=min(plan.warmup, max(2, n // 10)))["check"] = check
        if scale == min(plan.list_n):
            r.concurrent(f"list {scale} c16", "GET /jobs", "LIST jobs in the namespace", label, sides,
                         plan.list_per_client)
        r.profile(f"list {scale}", sides[0], max(5, min(100, n // 3)))
    return seeding


def _suspended(manifest: dict) -> dict:
    manifest["spec"]["suspend"] = True
    return manifest
