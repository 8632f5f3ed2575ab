"""A log flood, node collectors against the apiserver collector: ``python -m bench.flood [--quick]``.

The same load twice, each on a fresh gateway (tests/support/harness.py, shipped settings) whose pods run on the real
node ``tenx-real`` (containerd; its kubelet rotates container logs at 1 MiB every 3 s, keeping 3 files): once with a
node collector per node (``collect --node``), once with the collector that follows logs through the apiserver. The load:
3 jobs of one tenant printing numbered ~100-byte lines as fast as the runtime takes them for ``--seconds``, and a
neighbour tenant's short job every ``--every`` seconds meanwhile. Reported per mode, as numbers (nothing asserted):
lines written, archived, lost, duplicated, the lost-lines markers; each line's archive lag; the neighbour's lag; the
collectors' CPU per 1,000 lines/s and peak RSS; pods/log requests. Writes ``bench/results/flood.json`` and
``flood.md`` (and a copy of each per run), and prints the table. bench/README.md says what each figure means.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import requests

from gateway.store import ContainerKey
from tests.support.harness import ROOT, GatewayServer, kubectl, wait_until

from . import flood_figures as figures
from .flood_load import FLOOD, ArchiveWatch, Neighbours, ProcSampler, create_job, instance_of

SELECTOR = "tenx.io/runtime=containerd"
TOLERATION = "tenx.io/runtime=containerd:NoSchedule"
FLOODS = 3
ROWS = ("SELECT l.seq, l.ts_ns, l.text FROM log_lines l JOIN log_streams s ON s.id = l.stream "
        "WHERE s.namespace = ? AND s.instance = ? AND s.container = ? ORDER BY l.seq")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20 s floods instead of 90 s")
    p.add_argument("--seconds", type=int, help="how long each flood prints (default 90, QUICK 20)")
    p.add_argument("--every", type=float, default=5.0, help="seconds between the neighbour's jobs")
    p.add_argument("--modes", default="node,apiserver", help="collector modes in order: node, apiserver")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between the archive watch's samples")
    p.add_argument("--drain", type=float, help="seconds allowed for the last lines after the floods ended")
    p.add_argument("--keep-archive", action="store_true", help="keep each mode's SQLite archive (GBs) to inspect")
    p.add_argument("--out", default=str(ROOT / "bench/results"))
    args = p.parse_args(argv)
    args.seconds = args.seconds or (20 if args.quick else 90)
    args.drain = args.drain or max(300.0, 8.0 * args.seconds)
    return args


def _sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# -- scrapes ---------------------------------------------------------------------------------------------------

def apiserver_metrics() -> str:
    return kubectl("get", "--raw", "/metrics", timeout=60).stdout


def scrape(server: GatewayServer, procs: ProcSampler) -> dict[str, Any]:
    """The collectors' /metrics and CPU, and the apiserver's count of pods/log requests (all clients)."""
    texts = {name: server.collector_metrics(name) for name in server.collectors}
    return {"at": time.time(), "collectors": texts, "cpu": procs.cpu_seconds(), "cpu_wait": procs.cpu_wait_seconds(),
            "load": os.getloadavg()[0],
            "pods_log": figures.total([apiserver_metrics()], "apiserver_request_total", resource="pods",
                                      subresource="log")}


def collectors_ready(server: GatewayServer, mode: str) -> bool:
    for name, port in server.collector_ports.items():
        if server.collectors[name].poll() is not None:
            raise RuntimeError(f"collector {name} exited:\n{server.collector_text()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code != 200:
                return False
        except requests.ConnectionError:
            return False
    return mode != "apiserver" or figures.total([server.collector_metrics("apiserver")], "tenx_collector_leader") >= 1


def complete(user, name: str) -> bool:
    try:
        conditions = (user.get(f"/jobs/{name}").json().get("status") or {}).get("conditions") or []
    except (requests.RequestException, ValueError):  # a busy gateway's blip: asked again
        return False
    return any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)


def done_in_pod(key: ContainerKey) -> int | None:
    """The flood's own count from its pod's log (a pods/log request: only after the last scrape, and only for a
    flood whose "done" line the archive lacks)."""
    tail = kubectl("logs", "-n", key.namespace, key.instance, "-c", key.container, "--tail=1", check=False).stdout
    words = tail.split()
    return int(words[1]) if len(words) == 2 and words[0] == "done" and words[1].isdigit() else None


# -- the archive ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def rows(store, key: ContainerKey) -> Iterator[Iterator[tuple[int, int, str]]]:
    """A stream's archived lines (seq, stamp, text) in order, from the archive's tables (a bench reads them
    directly, as bench/collector.py does)."""
    with store._read() as conn:  # noqa: SLF001
        yield conn.execute(store._sql(ROWS), (key.namespace, key.instance, key.container))  # noqa: SLF001


def last_line(store, key: ContainerKey) -> str | None:
    count = store.resume_point(key).next_seq
    found = store.read(key.namespace, key.instance, key.container, offset=count - 1, size=1) if count else []
    return found[0] if found else None


def read_flood(store, key: ContainerKey, commits: list[tuple[float, int]], lags: Counter) -> dict[str, Any]:
    """One flood container's archive: its numbering, and its lines' lags counted into ``lags``."""
    found = figures.Numbering()
    stamps = {"first": None, "last": None}

    def numbered() -> Iterator[tuple[int, int]]:
        for seq, stamp, text in lines:
            found.add(text)
            if text.startswith("f "):
                stamps["first"] = stamps["first"] or stamp
                yield seq, stamp
            elif text.startswith("done "):
                stamps["last"] = stamp

    with rows(store, key) as lines:
        figures.line_lags(numbered(), commits, lags)
        for _ in numbered():  # lines past the last sample (none once drained) still count in the numbering
            pass
    source = "archive"
    if found.written is None and (written := done_in_pod(key)) is not None:
        found.finish(written)
        source = "pod log"
    final = commits[-1][1] if commits else 0
    committed_at = next((at for at, count in commits if count >= final), None)
    return {"job": key.job, "instance": key.instance, **found.summary(), "written_from": source,
            "first_stamp_ns": stamps["first"],
            "done_stamp_ns": stamps["last"], "last_commit_seen_at": committed_at}


# -- one mode ------------------------------------------------------------------------------------------------

def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server = GatewayServer(workdir / mode, collector=mode, letter="f", defaults={},
                           GATEWAY_POD_NODE_SELECTOR=SELECTOR, GATEWAY_POD_TOLERATIONS=TOLERATION)
    result: dict[str, Any] = {"mode": mode, "load_start": os.getloadavg(), "sample_interval_s": args.interval}
    print(f"{mode}: starting a gateway and its collectors; load {result['load_start']}", flush=True)
    server.start()
    store = watch = procs = neighbours = None
    try:
        wait_until(lambda: collectors_ready(server, mode), 120, interval=1, what=f"the {mode} collectors")
        flooder, neighbour = server.add_user("fl"), server.add_user("nb")
        store = server.open_archive()
        watch = ArchiveWatch(store, args.interval)
        procs = ProcSampler({name: process.pid for name, process in server.collectors.items()})
        watch.start()
        procs.start()
        before = scrape(server, procs)
        names = [f"flood-{i}" for i in range(1, FLOODS + 1)]
        for name in names:
            create_job(flooder, name, FLOOD.replace("SECONDS", str(args.seconds)))
        neighbours = Neighbours(neighbour, server.namespace_of(neighbour), watch, args.every)
        neighbours.start()
        keys = []
        for name in names:
            instance = instance_of(flooder, name, 300)
            if instance is None:
                raise RuntimeError(f"no pod for {name} in 300 s")
            keys.append(ContainerKey(server.namespace_of(flooder), name, instance, name))
            watch.follow(keys[-1])
        print(f"{mode}: flooding for {args.seconds} s ({', '.join(k.instance for k in keys)}), a neighbour job "
              f"every {args.every:g} s", flush=True)
        wait_until(lambda: all(complete(flooder, name) for name in names), args.seconds + 600, interval=1,
                   what="the floods to end")
        neighbours.stop()
        print(f"{mode}: the floods ended; waiting for their last lines in the archive", flush=True)
        drained = wait_until(lambda: all((last_line(store, k) or "").startswith("done ") for k in keys),
                             args.drain, interval=1)
        wait_until(lambda: watch.pending() == 0, 60, interval=0.5)
        after = scrape(server, procs)
        watch.stop()
        procs.stop()
        result.update(figures_of(store, keys, watch, procs, neighbours, before, after))
        result["drained"] = bool(drained)
        result["archive_watch_errors"] = watch.errors
        result["hwm_kib"] = procs.status_kib("VmHWM")
        result["collector_exits"] = {name: p.poll() for name, p in server.collectors.items()}
    finally:
        for thread in (neighbours, watch, procs):
            if thread is not None and thread.is_alive():
                thread.stop()
        if store is not None:
            store.close()
        server.close()
        if not args.keep_archive:  # GBs at full length; the logs stay
            shutil.rmtree(server.workdir / "data", ignore_errors=True)
        prefix, gateway_ns = server.namespace_prefix, server.gateway_namespace
        gone = wait_until(lambda: not [n for n in kubectl("get", "namespaces", "-o", "name", check=False)
                                       .stdout.split() if n.split("/")[1].startswith(prefix)
                                       or n.split("/")[1] == gateway_ns], 180, interval=3)
        result["namespaces_deleted"] = bool(gone)
        result["load_end"] = os.getloadavg()
        result["collector_logs"] = str(server.collector_output.parent)
    return result


def figures_of(store, keys: list[ContainerKey], watch: ArchiveWatch, procs: ProcSampler,
               neighbours: Neighbours, before: dict, after: dict) -> dict[str, Any]:
    lags: Counter = Counter()
    containers = [read_flood(store, key, watch.seen.commits.get(key, []), lags) for key in keys]
    ends = [c["done_stamp_ns"] for c in containers]
    seen = [c["last_commit_seen_at"] for c in containers]
    drain = max(seen) - max(ends) / figures.NS if all(ends) and all(seen) else None
    jobs = list(watch.seen.neighbours)
    neighbour_lags = [n.lag for n in jobs if n.lag is not None]
    return {
        "flood": figures.flood_totals(containers),
        "lag": {**figures.counted_quantiles(lags), "lines": sum(lags.values())},
        "lag_histogram": figures.histogram_quantiles(before["collectors"].values(), after["collectors"].values(),
                                                     "tenx_collector_lag_seconds"),
        "drain_seconds": round(drain, 2) if drain is not None else None,
        "neighbour": {"jobs": len(jobs), "lag": figures.quantiles(neighbour_lags),
                      "not_archived": sum(1 for n in jobs if n.readable is None),
                      "lags": [round(v, 3) for v in neighbour_lags], "errors": neighbours.errors},
        **collector_figures(procs, before, after),
    }


def collector_figures(procs: ProcSampler, before: dict, after: dict) -> dict[str, Any]:
    """The collectors' cost between two scrapes: CPU, the CPU they waited for, lines, RSS, pods/log calls."""
    def grown(name: str, **labels: str) -> float:
        return (figures.total(after["collectors"].values(), name, **labels)
                - figures.total(before["collectors"].values(), name, **labels))

    cpu = {name: round(seconds - before["cpu"].get(name, 0.0), 2) for name, seconds in after["cpu"].items()}
    seconds, lines, window = sum(cpu.values()), grown("tenx_collector_lines_archived_total"), after["at"] - before["at"]
    return {
        "cpu": {"seconds": round(seconds, 2), "per_collector": cpu, "window_s": round(window, 1),
                "waiting_for_a_cpu_s": round(sum(after["cpu_wait"].values()) - sum(before["cpu_wait"].values()), 2),
                "load_1m": [before["load"], after["load"]],
                "lines": int(lines), "lines_per_s": round(lines / window) if window else None,
                "cores_per_1000_lines_per_s": round(seconds / (lines / 1000), 4) if lines else None},
        "rss": {"peak_mib": round(max(procs.peak_rss_kib.values(), default=0) / 1024, 1),
                "per_collector_mib": {k: round(v / 1024, 1) for k, v in procs.peak_rss_kib.items()}},
        "pods_log": {"apiserver_all_clients": after["pods_log"] - before["pods_log"],
                     "collectors": grown("tenx_gateway_kube_request_duration_seconds_count", resource="pods/log")},
        "collector_counters": {name: grown(name) for name in (
            "tenx_collector_lines_lost_total", "tenx_collector_gaps_total", "tenx_collector_held_back_total",
            "tenx_collector_errors_total")},
    }


# -- the run -------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="tenx-bench-flood-"))
    meta = {"quick": args.quick, "started_at": stamp, "uptime_start": _sh("uptime"), "cpus": os.cpu_count(),
            "git_commit": _sh("git", "rev-parse", "HEAD"), "seconds": args.seconds, "floods": FLOODS,
            "neighbour_every_s": args.every, "sample_interval_s": args.interval, "workdir": str(workdir)}
    print(f"flood bench ({'QUICK' if args.quick else 'full'}, {args.seconds} s); load: {meta['uptime_start']}",
          flush=True)
    if kubectl("get", "nodes", "-l", SELECTOR, "-o", "name", check=False).stdout.strip() == "":
        print(f"no node labelled {SELECTOR} (the local cluster's real node, tenx-real): the flood needs its kubelet's "
              "rotation; not run", flush=True)
        return 1
    modes: dict[str, dict[str, Any]] = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        try:
            modes[mode] = run_mode(mode, args, workdir)
        except Exception as exc:  # noqa: BLE001 - the other mode still runs; the failure is reported
            traceback.print_exc()
            modes.setdefault(mode, {"mode": mode})["failure"] = "".join(
                traceback.format_exception_only(type(exc), exc)).strip()
        print(f"{mode}: {json.dumps({k: v for k, v in modes[mode].items() if k != 'flood'}, default=str)[:3000]}",
              flush=True)
    meta["uptime_end"] = _sh("uptime")
    found = figures.targets(modes.get("node"))
    text = "\n\n".join([
        f"tenx-gateway flood bench, {'QUICK' if args.quick else 'full'} run {stamp} (commit {meta['git_commit'][:10]})"
        f": {FLOODS} floods of {args.seconds} s and a neighbour job every {args.every:g} s, on the real node; load "
        f"at start: {meta['uptime_start']}; at end: {meta['uptime_end']}",
        figures.table(modes),
        figures.targets_table(found),
    ] + [f"{mode} FAILED: {m['failure']}" for mode, m in modes.items() if m.get("failure")]) + "\n"
    print("\n" + text)
    body = json.dumps({"meta": meta, "modes": modes, "targets": found}, indent=2, default=str)
    kind = "quick" if args.quick else "full"
    for path, content in ((out / "flood.json", body), (out / f"flood-{kind}-{stamp}.json", body),
                          (out / "flood.md", text), (out / f"flood-{kind}-{stamp}.md", text)):
        path.write_text(content)
    print(f"wrote {out / 'flood.json'}")
    return 1 if any(m.get("failure") for m in modes.values()) or not modes else 0


if __name__ == "__main__":
    sys.exit(main())
