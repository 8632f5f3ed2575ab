"""Archive reads, as the logs call makes them once a pod is gone: ``python -m bench.archive [--lines N]``.

Loads one container's log of N lines (one day) into a fresh SQLite archive, then times the pages the HTTP bench
asks of a live log (100 lines at from=0, from=N/2 and the last 100, by day and over the whole log) against reading
the whole day from the same store, and prints the database's plan for the page read. Store level only: the HTTP
path in front of it is the one the live cases measure. Writes ``bench/results/archive.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

from gateway.store import ContainerKey, LogLine, open_store

from .measure import percentile

ROOT = Path(__file__).resolve().parents[1]
KEY = ContainerKey("bench", "job", "job-abcde", "job")
NS = 1_000_000_000


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


def run(lines: int, repeat: int) -> dict:
    day = dt.datetime.now(dt.timezone.utc).date()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/archive.db")
        load_s = _load(store, lines, day)
        page = dict(namespace=KEY.namespace, instance=KEY.instance, container=KEY.container)
        whole = _time(lambda: store.read(**page, day=day, offset=0, size=lines), max(5, repeat // 20))
        cases = {}
        for label, offset in (("from 0", 0), (f"from {lines // 2}", lines // 2), ("last 100", lines - 100)):
            for dated in (True, False):
                got = store.read(**page, day=day if dated else None, offset=offset, size=100)
                assert got == [str(i + 1) for i in range(offset, offset + 100)], "archive returned wrong lines"
                timing = _time(lambda o=offset, d=dated: store.read(**page, day=day if d else None, offset=o,
                                                                      size=100), repeat)
                ratio = round(timing["p50_ms"] / whole["p50_ms"], 4)
                cases[f"{label}{' (date)' if dated else ''}"] = {**timing, "ratio_to_whole_day": ratio}
        plan = store.explain_read(**page, day=day, offset=lines // 2, size=100)
        store.close()
    return {"store": "sqlite", "lines": lines, "load_seconds": round(load_s, 2), "whole_day": whole,
            "pages_of_100": cases, "plan": plan}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    result = run(args.lines, args.repeat)
    print(f"archive (SQLite), one container, {result['lines']:,} lines loaded in {result['load_seconds']} s")
    print("| read | p50 ms | p99 ms | / whole day |\n|---|---|---|---|")
    print(f"| whole day ({result['lines']:,} lines) | {result['whole_day']['p50_ms']} | "
          f"{result['whole_day']['p99_ms']} | 1 |")
    for name, row in result["pages_of_100"].items():
        print(f"| 100 lines, {name} | {row['p50_ms']} | {row['p99_ms']} | {row['ratio_to_whole_day']} |")
    print("plan of the dated page read:\n" + result["plan"])
    out = ROOT / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "archive.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
