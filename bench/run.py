"""Entry point of `make bench`: ``python -m bench.run [--quick] [--profile]``.

Starts the gateway with gunicorn and the shipped gunicorn.conf.py on a free loopback port, makes a bench user with
the real CLI, and compares each call with its direct equivalent at the apiserver in the same run and namespace.
Cleans up (the user, its namespace, the gateway's namespace, the admin binding) whatever happens.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

from . import cache as cache_bench
from . import cases, cluster, ops, report
from .server import ROOT, Gateway, RssSampler

USER = "bench"


def _sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced set, under five minutes")
    p.add_argument("--profile", action="store_true", help="after each case, py-spy the gateway side")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG") or str(ROOT / ".local/kubeconfig"))
    p.add_argument("--kubectl", default=str(ROOT / ".local/bin/kubectl"))
    p.add_argument("--out", default=str(ROOT / "bench/results"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = cases.QUICK if args.quick else cases.FULL
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id, stamp = secrets.token_hex(2), dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work = cluster.workdir()
    kubectl = cluster.Kubectl(args.kubectl, args.kubeconfig)
    api = cluster.Apiserver(kubectl, work)
    gateway = Gateway(args.kubeconfig, run_id, work, out_dir / "gunicorn.log")
    started = time.monotonic()
    meta = {
        "quick": args.quick, "profile": args.profile, "run_id": run_id, "started_at": stamp,
        "uptime_start": _sh("uptime"), "loadavg_start": os.getloadavg(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "git_commit": _sh("git", "rev-parse", "HEAD"),
        "git_dirty": bool(_sh("git", "status", "--porcelain", "--", "gateway", "gunicorn.conf.py", "wsgi.py")),
        "apiserver": api.server, "plan": plan.__dict__,
        "gateway_env": {k: v for k, v in gateway.env.items() if k.startswith("GATEWAY_")},
        "client": "python-requests Sessions (keep-alive), Accept-Encoding: identity, on both sides",
    }
    runner: cases.Runner | None = None
    rss = RssSampler(gateway)
    seeding, failure = [], None
    print(f"bench run {run_id} ({'QUICK' if args.quick else 'full'}); load: {meta['uptime_start']}", flush=True)
    try:
        gateway.start()
        rss.start()
        meta["gateway_workers"] = len(gateway.worker_pids())
        meta["gateway_threads"] = int(gateway.env.get("GATEWAY_THREADS", 8))
        token = gateway.cli("users", "add", USER)
        from gateway.names import namespace_for
        namespace = namespace_for(USER, gateway.namespace_prefix)
        try:
            api.use_admin_token(gateway.gateway_namespace, "bench-admin", f"tenx-bench-{run_id}-admin")
        except (subprocess.CalledProcessError, RuntimeError) as exc:
            print(f"no admin token ({exc}); direct calls use the kubeconfig's client certificate", flush=True)
        meta["direct_auth"] = api.auth
        meta["namespace"] = namespace
        meta["apiserver_version"] = api.session().get(api.url("/version"), timeout=10).json().get("gitVersion")
        target = ops.Target(gateway.url, USER, token, api, namespace, gateway.volume_root)
        # The user's first jobs, through the gateway (which creates the user's namespace as in real use).
        cases.gateway_create(target, "bench-get", {"containers": [{"image": "busybox", "command": ["true"]}]})
        for job in ("bench-log", cases.ARCHIVED_JOB):  # the same log twice: one stays live, one gets archived
            cases.gateway_create(target, job, {"containers": [
                {"image": "busybox", "command": ["seq", "1", str(plan.log_lines)]}]})
        # first too: a job created after the seeding below waits minutes for its pod (cases.wait_running_archived)
        cases.gateway_create(target, cases.RUNNING_JOB, cases.running_spec(plan.running_log_lines))
        profile_dir = out_dir / f"profile-{stamp}"
        if args.profile:
            profile_dir.mkdir(parents=True, exist_ok=True)
        runner = cases.Runner(target, plan, rss, gateway.worker_pids, profile_dir, args.profile)
        meta["running_job"] = cases.wait_running_archived(runner, gateway.open_archive)
        meta["cache"] = {"rss_start_mb": cache_bench.rss_mb(gateway.worker_pids())}
        cases.single_job_cases(runner)
        get_session = target.gateway_session()
        meta["cache"]["requests_per_get"] = cache_bench.requests_per_get(
            api, gateway.metrics_url, lambda: get_session.get(f"{target.base}/jobs/bench-get", timeout=60).content,
            plan.get_n)
        print(f"  requests per get: {json.dumps(meta['cache']['requests_per_get'])}", flush=True)
        cases.log_cases(runner, "bench-log")
        cases.archived_log_cases(runner, "bench-log")
        seeding = cases.list_cases(runner, USER)
        meta["cache"]["memory"] = cache_memory(api, gateway, plan, namespace)
        cases.running_log_cases(runner)
    except BaseException as exc:  # report what was measured, then clean up, whatever went wrong
        failure = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        traceback.print_exc()
    finally:
        workers = {}
        try:
            rss.stop()
            workers = rss.high_water_marks()
            meta["gateway_workers_memory"] = workers
        finally:
            gateway.stop()
            for attempt in range(4):  # the shared local cluster may be restarting: try again for a while
                try:
                    meta["cleanup"] = cleanup(api, kubectl, gateway, run_id, wait=60 if args.quick else 300)
                    break
                except Exception as exc:  # noqa: BLE001 - report, never hide the measurements
                    meta["cleanup"] = f"failed: {exc}"
                    print(f"cleanup failed ({exc}); retrying in 20 s", flush=True)
                    time.sleep(20)
            else:
                print(f"clean up by hand: kubectl delete clusterrolebinding tenx-bench-{run_id}-admin; kubectl "
                      f"delete namespace {gateway.namespace_prefix}{USER} {gateway.gateway_namespace}", flush=True)
            shutil.rmtree(work, ignore_errors=True)
    meta.update(uptime_end=_sh("uptime"), loadavg_end=os.getloadavg(),
                seconds=round(time.monotonic() - started, 1), failure=failure, seeding=seeding)
    results = runner.results if runner else []
    peak = max((w["vmhwm_mb"] or 0 for w in workers.values()), default=None) or None
    found = report.targets(results, peak, args.quick)
    cache_found = cache_bench.targets(results, meta.get("cache") or {})
    text = "\n\n".join([
        f"tenx-gateway bench, {'QUICK' if args.quick else 'full'} run {stamp} (commit {meta['git_commit'][:10]}"
        f"{', gateway/ modified' if meta['git_dirty'] else ''}); load at start: {meta['uptime_start']}; "
        f"at end: {meta['uptime_end']}",
        report.table(results),
        "Peak RSS per gateway worker (VmHWM): " + ", ".join(
            f"pid {pid}: {w['vmhwm_mb']} MB" for pid, w in workers.items()),
        report.targets_table(found),
        "Watch cache: " + json.dumps(meta.get("cache")),
        cache_bench.targets_text(cache_found),
    ]) + "\n"
    print("\n" + text)
    if failure:
        print(f"RUN FAILED: {failure}")
    document = {"meta": meta, "cases": results, "targets": found, "cache_targets": cache_found,
                "profiles": runner.profiles if runner else {}}
    print(f"wrote {report.write(out_dir, document, text, stamp)}")
    return 1 if failure or not results else 0


def pods_namespace(gateway: Gateway) -> str:
    return f"{gateway.namespace_prefix}bench-pods"


def cache_memory(api: cluster.Apiserver, gateway: Gateway, plan: cases.Plan, namespace: str) -> dict:
    """The workers' RSS once their caches hold the seeded Jobs, then also ``plan.cache_pods`` Pending pods."""
    jobs = cluster.count_jobs(api, namespace)
    with_jobs = cache_bench.settled_rss(gateway.worker_pids)
    print(f"seeding {plan.cache_pods} Pending pods for the cache's memory ...", flush=True)
    seeded = cache_bench.seed_pods(api, pods_namespace(gateway), plan.cache_pods)
    with_pods = cache_bench.settled_rss(gateway.worker_pids)
    figures = {"jobs": jobs, "pods": plan.cache_pods, "pod_seeding": seeded, "rss_with_jobs_mb": with_jobs,
               "rss_with_pods_mb": with_pods}
    print(f"  cache memory: {json.dumps(figures)}", flush=True)
    cluster.delete_namespaces(api, [pods_namespace(gateway)], wait=0)  # other gateways on the cluster watch pods too
    return figures


def cleanup(api: cluster.Apiserver, kubectl: cluster.Kubectl, gateway: Gateway, run_id: str, wait: float) -> dict:
    """Remove the bench user, its namespace, the gateway's namespace (with the users Secret and the bench's
    ServiceAccount) and the admin binding."""
    outcome = {}
    try:
        gateway.cli("users", "remove", USER)
        outcome["user"] = "removed"
    except subprocess.CalledProcessError as exc:
        outcome["user"] = f"not removed: {exc.stderr.strip()[:200]}"
    r = kubectl("delete", "clusterrolebinding", f"tenx-bench-{run_id}-admin", "--ignore-not-found", check=False)
    outcome["clusterrolebinding"] = "deleted" if r.returncode == 0 else r.stderr.strip()[:200]
    from gateway.names import namespace_for
    api.token = None  # the token's ServiceAccount goes with its namespace: use the kubeconfig's identity
    started = time.monotonic()
    outcome["namespaces"] = cluster.delete_namespaces(
        api, [namespace_for(USER, gateway.namespace_prefix), gateway.gateway_namespace, pods_namespace(gateway)], wait)
    outcome["namespace_delete_seconds"] = round(time.monotonic() - started, 1)
    print(f"cleanup: {outcome}", flush=True)
    return outcome


if __name__ == "__main__":
    sys.exit(main())
