"""Archive reads and writes on the three stores, as the logs call and the collectors make them:
``python -m bench.archive [--lines N] [--stores sqlite,postgres,opensearch] [--cases pages,ingest,node]``.

For each store (SQLite in a temporary file, a throwaway PostgreSQL (tests/support/archive_pg.py), the local OpenSearch
(deploy/local/opensearch, started if needed)), with the store's shipped settings:

- ``pages``: loads one container's log of N lines (one day) in batches of 5,000, then times the pages the HTTP bench
  asks of a live log (100 lines at from=0, from=N/2 and the last 100, by day and over the whole log) against reading
  the whole day, and prints the store's plan for the page read;
- ``ingest``: the apiserver collector's writes: 4 threads, each appending 500-line batches to its own containers
  with a fencing token and the expected next line;
- ``node``: the node collector's writes: one writer thread appending batches of ``--node-batch`` lines (a turn of a
  container's files) of ``--node-containers`` containers in turn, each with its expected next line and its file
  position, lines of about 100 bytes. Reported as lines/s and CPU seconds per 1,000 lines, of this process (all of
  the store for SQLite) and of the database server's processes (PostgreSQL: this run's own server; OpenSearch: the
  shared local node, so whatever else uses it meanwhile counts too).

Store level only: the HTTP path in front of it is the one the live cases measure. Writes
``bench/results/archive.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from gateway.store import ContainerKey, LogLine, open_store

from .measure import percentile

ROOT = Path(__file__).resolve().parents[1]
KEY = ContainerKey("bench", "job", "job-abcde", "job")
NS = 1_000_000_000
STORES = ("sqlite", "postgres", "opensearch")
INGEST_THREADS, INGEST_BATCH = 4, 500


@contextlib.contextmanager
def _archive_url(kind: str, tmp: str) -> Iterator[tuple[str, Callable[[], float]]]:
    """A fresh archive of ``kind``, deleted afterwards, and the CPU seconds its server's processes used so far."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/archive-{secrets.token_hex(3)}.db", lambda: 0.0  # in this process
    elif kind == "postgres":
        import psycopg

        from tests.support.archive_pg import local_postgres
        with local_postgres() as dsn:
            with psycopg.connect(dsn) as conn:
                data = conn.execute("SHOW data_directory").fetchone()[0]
            postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
            yield dsn, lambda: _tree_cpu(postmaster)
    else:
        from tests.support.archive_opensearch import SCRIPT, drop_prefix, opensearch_url
        subprocess.run(["bash", str(SCRIPT), "up"], check=True, stdin=subprocess.DEVNULL)
        base = subprocess.run(["bash", str(SCRIPT), "url"], capture_output=True, text=True,
                              check=True).stdout.strip().split("/tenx-logs-")[0]
        state = Path(os.environ.get("TENX_OPENSEARCH_DIR", ROOT / ".local/opensearch"))
        node = int((state / "run/opensearch.pid").read_text())
        prefix = f"bench-{secrets.token_hex(3)}-"
        try:
            yield opensearch_url(base, prefix), lambda: _tree_cpu(node)
        finally:
            drop_prefix(base, prefix)


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live children (a PostgreSQL server's backends)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        own = int(stat.parent.name) == pid
        if own or int(fields[1]) == pid:  # fields[1]: the parent's pid
            ticks += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if own else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _load(store, lines: int, day: dt.date) -> float:
    start_ns = int(dt.datetime.combine(day, dt.time(1), dt.timezone.utc).timestamp()) * NS
    started = time.perf_counter()
    for first in range(0, lines, 5000):
        batch = [LogLine(start_ns + i * 1000, str(i + 1)) for i in range(first, min(lines, first + 5000))]
        store.append(KEY, batch)
    store.analyze()
    return time.perf_counter() - started


def _time(read, repeat: int) -> dict:
    read()  # warm
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        read()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return {"p50_ms": round(percentile(samples, 50) * 1000, 3), "p99_ms": round(percentile(samples, 99) * 1000, 3)}


def _ingest(store, batches: int) -> dict:
    """lines/s of INGEST_THREADS collector-like writers, each appending ``batches`` batches to 5 containers."""
    start_ns = int(time.time()) * NS
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        keys = [ContainerKey("bench", "ingest", f"ingest-{n}-{c}", "main") for c in range(5)]
        expect = {key: 0 for key in keys}
        try:
            for b in range(batches):
                key = keys[b % len(keys)]
                lines = [LogLine(start_ns + (b * INGEST_BATCH + i) * 1000, f"writer {n} batch {b} line {i} " + "x" * 60)
                         for i in range(INGEST_BATCH)]
                store.append(key, lines, fence=1, expect_next=expect[key])
                expect[key] += len(lines)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(INGEST_THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    total = INGEST_THREADS * batches * INGEST_BATCH
    return {"lines": total, "seconds": round(seconds, 2), "lines_per_s": round(total / seconds)}


def _node_ingest(store, server_cpu: Callable[[], float], lines: int, containers: int, batch: int) -> dict:
    """The node collector's writer: one thread, ``containers`` containers in turn, ``batch`` lines an append, each
    with the expected next line and a file position. The batches are made before the clock starts: the files'
    reading and parsing is the collector's cost, not the store's."""
    keys = [ContainerKey("bench", "flood", f"flood-{c}", "main") for c in range(containers)]
    start_ns = time.time_ns()
    each = lines // containers
    rounds = [[(c, key, [LogLine(start_ns + n * 20_000 + c, f"f {n} " + "abcdefghij" * 9 + f" {c}")
                         for n in range(first, min(first + batch, each))])
               for c, key in enumerate(keys)]
              for first in range(0, each, batch)]
    written = [0] * containers
    offsets = [0] * containers
    process, server = time.process_time(), server_cpu()
    started = time.perf_counter()
    for turn in rounds:
        for c, key, batch_lines in turn:
            offsets[c] += sum(len(line.text) + 40 for line in batch_lines)  # the CRI prefix is about 40 bytes
            store.append(key, batch_lines, attempt=0, expect_next=written[c],
                         position={"v": 1, "attempt": 0, "file": f"{c:020x}", "offset": offsets[c]})
            written[c] += len(batch_lines)
    seconds = time.perf_counter() - started
    process, server = time.process_time() - process, server_cpu() - server
    total = sum(written)
    point = store.resume_point(keys[-1])
    assert point.next_seq == written[-1] and point.position["offset"] == offsets[-1], "the store lost the end"
    return {"lines": total, "containers": containers, "batch": batch, "seconds": round(seconds, 2),
            "lines_per_s": round(total / seconds),
            "process_cpu_s_per_1000": round(process / total * 1000, 4),
            "server_cpu_s_per_1000": round(server / total * 1000, 4)}


def run_store(kind: str, args: argparse.Namespace, tmp: str) -> dict:
    day = dt.datetime.now(dt.timezone.utc).date()
    result: dict = {"store": kind}
    with _archive_url(kind, tmp) as (url, server_cpu):
        store = open_store(url)
        try:
            if "pages" in args.cases:  # first: the ingest cases then append to a store that holds a large log
                result.update(_pages(store, args.lines, args.repeat, day))
            if "ingest" in args.cases:
                result["ingest"] = _ingest(store, args.ingest_batches)
            if "node" in args.cases:
                result["node_ingest"] = _node_ingest(store, server_cpu, args.node_lines, args.node_containers,
                                                     args.node_batch)
        finally:
            store.close()
    return result


def _pages(store, lines: int, repeat: int, day: dt.date) -> dict:
    load_s = _load(store, lines, day)
    page = dict(namespace=KEY.namespace, instance=KEY.instance, container=KEY.container)
    whole = _time(lambda: store.read(**page, day=day, offset=0, size=lines), 3 if lines > 100_000 else 10)
    cases = {}
    for label, offset in (("from 0", 0), ("middle", lines // 2), ("last 100", lines - 100)):
        for dated in (True, False):
            got = store.read(**page, day=day if dated else None, offset=offset, size=100)
            assert got == [str(i + 1) for i in range(offset, offset + 100)], "the store returned wrong lines"
            timing = _time(lambda o=offset, d=dated: store.read(**page, day=day if d else None, offset=o,
                                                                  size=100), repeat)
            ratio = round(timing["p50_ms"] / whole["p50_ms"], 4)
            cases[f"{label}{' (date)' if dated else ''}"] = {**timing, "ratio_to_whole_day": ratio}
    plan = store.explain_read(**page, day=day, offset=lines // 2, size=100)
    return {"lines": lines, "load_seconds": round(load_s, 2), "load_lines_per_s": round(lines / load_s),
            "whole_day": whole, "pages_of_100": cases, "plan": plan}


def _print(kind: str, result: dict) -> None:
    if "pages_of_100" in result:
        print(f"\narchive ({kind}), one container, {result['lines']:,} lines loaded in {result['load_seconds']} s"
              f" ({result['load_lines_per_s']:,} lines/s in 5,000-line appends)")
        print("| read | p50 ms | p99 ms | / whole day |\n|---|---|---|---|")
        print(f"| whole day ({result['lines']:,} lines) | {result['whole_day']['p50_ms']} | "
              f"{result['whole_day']['p99_ms']} | 1 |")
        for name, row in result["pages_of_100"].items():
            print(f"| 100 lines, {name} | {row['p50_ms']} | {row['p99_ms']} | {row['ratio_to_whole_day']} |")
        print("plan of the dated page read:\n" + result["plan"])
    if "ingest" in result:
        ingest = result["ingest"]
        print(f"archive ({kind}) apiserver collector ingest: {ingest['lines']:,} lines in {ingest['seconds']} s = "
              f"{ingest['lines_per_s']:,} lines/s ({INGEST_THREADS} writers, {INGEST_BATCH}-line batches, fenced)")
    if "node_ingest" in result:
        node = result["node_ingest"]
        print(f"archive ({kind}) node collector ingest: {node['lines']:,} lines in {node['seconds']} s = "
              f"{node['lines_per_s']:,} lines/s ({node['containers']} containers in turn, {node['batch']}-line "
              f"appends); CPU s per 1,000 lines: {node['process_cpu_s_per_1000']} writer, "
              f"{node['server_cpu_s_per_1000']} server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--ingest-batches", type=int, default=20, help="500-line batches per ingest thread")
    parser.add_argument("--node-lines", type=int, default=300_000, help="lines the node collector's case appends")
    parser.add_argument("--node-containers", type=int, default=6)
    parser.add_argument("--node-batch", type=int, default=2500, help="lines per append in the node case")
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--cases", default="pages,ingest,node")
    args = parser.parse_args(argv)
    args.cases = set(args.cases.split(","))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            result = run_store(kind, args, tmp)
            results.append(result)
            _print(kind, result)
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "archive.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
