"""Archive reads and writes on the three stores, as the logs call and the collector make them:
``python -m bench.archive [--lines N] [--stores sqlite,postgres,opensearch]``.

For each store (SQLite in a temporary file, a throwaway PostgreSQL (tests/archive_pg.py), the local OpenSearch
(deploy/local/opensearch, started if needed)): loads one container's log of N lines (one day) in batches of 5,000,
then times the pages the HTTP bench asks of a live log (100 lines at from=0, from=N/2 and the last 100, by day and
over the whole log) against reading the whole day, and prints the store's plan for the page read. Then the
collector's ingest: 4 threads, each appending 500-line batches (the collector's batch) to its own containers with
a fencing token and the expected next line, as the collector does, with the store's shipped settings (OpenSearch:
appends wait for the refresh that makes them searchable). Store level only: the HTTP path in front of it is the one
the live cases measure. Writes ``bench/results/archive.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from gateway.store import ContainerKey, LogLine, open_store

from .measure import percentile

ROOT = Path(__file__).resolve().parents[1]
KEY = ContainerKey("bench", "job", "job-abcde", "job")
NS = 1_000_000_000
STORES = ("sqlite", "postgres", "opensearch")
INGEST_THREADS, INGEST_BATCH = 4, 500


@contextlib.contextmanager
def _archive_url(kind: str, tmp: str) -> Iterator[str]:
    """A fresh archive of ``kind``, deleted afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/archive-{secrets.token_hex(3)}.db"
    elif kind == "postgres":
        from tests.archive_pg import local_postgres
        with local_postgres() as dsn:
            yield dsn
    else:
        from tests.archive_opensearch import SCRIPT, drop_prefix, opensearch_url
        subprocess.run(["bash", str(SCRIPT), "up"], check=True, stdin=subprocess.DEVNULL)
        base = subprocess.run(["bash", str(SCRIPT), "url"], capture_output=True, text=True,
                              check=True).stdout.strip().split("/tenx-logs-")[0]
        prefix = f"bench-{secrets.token_hex(3)}-"
        try:
            yield opensearch_url(base, prefix)
        finally:
            drop_prefix(base, prefix)


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


def run_store(kind: str, lines: int, repeat: int, ingest_batches: int, tmp: str) -> dict:
    day = dt.datetime.now(dt.timezone.utc).date()
    with _archive_url(kind, tmp) as url:
        store = open_store(url)
        try:
            load_s = _load(store, lines, day)
            page = dict(namespace=KEY.namespace, instance=KEY.instance, container=KEY.container)
            whole = _time(lambda: store.read(**page, day=day, offset=0, size=lines), 3 if lines > 100_000 else 10)
            cases = {}
            for label, offset in (("from 0", 0), ("middle", lines // 2), ("last 100", lines - 100)):
                for dated in (True, False):
                    got = store.read(**page, day=day if dated else None, offset=offset, size=100)
                    assert got == [str(i + 1) for i in range(offset, offset + 100)], f"{kind} returned wrong lines"
                    timing = _time(lambda o=offset, d=dated: store.read(**page, day=day if d else None, offset=o,
                                                                          size=100), repeat)
                    ratio = round(timing["p50_ms"] / whole["p50_ms"], 4)
                    cases[f"{label}{' (date)' if dated else ''}"] = {**timing, "ratio_to_whole_day": ratio}
            plan = store.explain_read(**page, day=day, offset=lines // 2, size=100)
            ingest = _ingest(store, ingest_batches)
        finally:
            store.close()
    return {"store": kind, "lines": lines, "load_seconds": round(load_s, 2),
            "load_lines_per_s": round(lines / load_s), "whole_day": whole, "pages_of_100": cases, "plan": plan,
            "ingest": ingest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--ingest-batches", type=int, default=20, help="500-line batches per ingest thread")
    parser.add_argument("--stores", default=",".join(STORES))
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            result = run_store(kind, args.lines, args.repeat, args.ingest_batches, tmp)
            results.append(result)
            print(f"\narchive ({kind}), one container, {result['lines']:,} lines loaded in {result['load_seconds']} s"
                  f" ({result['load_lines_per_s']:,} lines/s in 5,000-line appends)")
            print("| read | p50 ms | p99 ms | / whole day |\n|---|---|---|---|")
            print(f"| whole day ({result['lines']:,} lines) | {result['whole_day']['p50_ms']} | "
                  f"{result['whole_day']['p99_ms']} | 1 |")
            for name, row in result["pages_of_100"].items():
                print(f"| 100 lines, {name} | {row['p50_ms']} | {row['p99_ms']} | {row['ratio_to_whole_day']} |")
            ingest = result["ingest"]
            print(f"collector ingest: {ingest['lines']:,} lines in {ingest['seconds']} s = {ingest['lines_per_s']:,}"
                  f" lines/s ({INGEST_THREADS} writers, {INGEST_BATCH}-line batches, fenced)")
            print("plan of the dated page read:\n" + result["plan"])
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "archive.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
