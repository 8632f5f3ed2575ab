"""Followed logs at scale, on the local cluster: ``python -m bench.streams [--quick]``.

One gateway as shipped (gunicorn.conf.py: gevent workers, one per core; started by tests/support/harness.py), one job
whose container prints ``<n> <unix time>`` every 200 ms. For 1, 100 and 500 concurrent followers of its instance
(``follow=true``, each from the log's current end): follow lag (receipt minus the time written in the line)
p50/p99 over a steady window, lines lost; the workers' RSS. Then ``GET /jobs/{name}`` p50/p99 from one client,
without followers and with 500 streaming (target: p99 at most 2x). The followers run in a process of their own
(asyncio, raw sockets), so their parsing does not slow the client that times the GETs. Numbers, not asserts; writes
``bench/results/streams.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import secrets
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.harness import ROOT, GatewayServer, wait_until

from .measure import percentile

PERIOD = 0.2


_LINE = re.compile(rb'"line":"(\d+) (\d+\.\d+)"')


async def _follower(host: str, port: int, path: str, headers: dict[str, str], lags: list[float],
                    seen: list[set[int]], stop: float) -> None:
    """One follower on a raw socket: the lines' numbers and write times are picked out of whatever arrives with
    one regular expression, so a few hundred followers cost the bench little CPU."""
    reader, writer = await asyncio.open_connection(host, port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{head}Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    mine: set[int] = set()
    seen.append(mine)
    pending = b""
    try:
        while time.time() < stop:
            try:
                data = await asyncio.wait_for(reader.read(65536), timeout=max(0.1, stop - time.time()))
            except asyncio.TimeoutError:
                break
            if not data:
                break
            received = time.time()
            pending += data
            cut = pending.rfind(b"\n")
            if cut < 0:
                continue
            complete, pending = pending[:cut + 1], pending[cut + 1:]
            for number, written in _LINE.findall(complete):
                lags.append(received - float(written))
                mine.add(int(number))
    finally:
        writer.close()


def _followers(count: int, host: str, port: int, path: str, headers: dict[str, str], ramp: float, window: float,
               results) -> None:
    """In its own process: ``count`` followers; lags are kept for lines written inside the window only."""
    async def main() -> dict[str, Any]:
        lags: list[float] = []
        seen: list[set[int]] = []
        started = time.time()
        stop = started + ramp + window
        tasks = [asyncio.create_task(_follower(host, port, path, headers, lags, seen, stop)) for _ in range(count)]
        await asyncio.sleep(ramp)
        mark = len(lags)
        await asyncio.gather(*tasks, return_exceptions=True)
        steady = sorted(lags[mark:])
        connected = [s for s in seen if s]
        expected = int(window / PERIOD) - 2
        lost = sum(max(0, expected - len([n for n in s if n >= min(s)])) for s in connected) if connected else None
        return {"followers": count, "connected": len(connected), "lines": len(steady),
                "lag_p50_ms": _ms(percentile(steady, 50)), "lag_p99_ms": _ms(percentile(steady, 99)),
                "lag_max_ms": _ms(steady[-1] if steady else None), "gaps": lost}
    results.put(asyncio.run(main()))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _get_latency(session: requests.Session, url: str, seconds: float) -> dict[str, Any]:
    samples: list[float] = []
    errors = 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.perf_counter()
        response = session.get(url, timeout=30)
        if response.status_code == 200:
            samples.append(time.perf_counter() - started)
        else:
            errors += 1
        time.sleep(0.02)
    samples.sort()
    return {"requests": len(samples), "errors": errors, "p50_ms": _ms(percentile(samples, 50)),
            "p99_ms": _ms(percentile(samples, 99))}


def run(quick: bool) -> dict[str, Any]:
    window, ramp = (10.0, 8.0) if quick else (30.0, 15.0)
    counts = [1, 100, 500]
    workdir = Path(ROOT / ".local" / "bench-streams" / secrets.token_hex(3))
    gateway = GatewayServer(workdir, letter="b", defaults={}, GATEWAY_STREAM_MAX_PER_USER="1000")
    gateway.start()
    out: dict[str, Any] = {"quick": quick, "window_s": window, "workers": gateway.workers, "follow": []}
    try:
        user = gateway.add_user("bench")
        name = f"tick-{secrets.token_hex(3)}"
        lines = int((len(counts) * (ramp + window + 10) + 4 * window + 120) / PERIOD)
        script = f"i=0; while [ $i -lt {lines} ]; do echo \"$i $(date +%s.%N)\"; i=$((i+1)); sleep {PERIOD}; done"
        assert user.post(f"/jobs/{name}", json={"containers": [{"image": "busybox", "command": ["sh", "-c", script]}]}
                         ).status_code == 200
        instance = wait_until(lambda: (user.get(f"/jobs/{name}").json().get("instance_names") or [None])[0], 300,
                              what="the instance")
        logs = f"/jobs/{name}/instances/{instance}/logs"

        def lines_so_far() -> int:
            page = user.get(logs, params={"size": "10000"})
            return len(page.json()) if page.status_code == 200 else 0

        wait_until(lines_so_far, 300, what="the first line")
        job_url = f"{user.base}/jobs/{name}"
        out["get_without_followers"] = _get_latency(user.session, job_url, window)
        out["rss_idle_kib"] = gateway.workers_rss_kib()
        headers = {"username": user.username, "Authorization": user.session.headers["Authorization"]}
        for count in counts:
            start = lines_so_far()
            path = f"/v1/regions/us/jobs/{name}/instances/{instance}/logs?follow=true&from={start}"
            results = multiprocessing.Queue()
            child = multiprocessing.Process(target=_followers, args=(count, "127.0.0.1", gateway.port, path,
                                                                     headers, ramp, window, results))
            child.start()
            time.sleep(ramp)
            rss = gateway.workers_rss_kib()
            row: dict[str, Any] = {}
            if count == counts[-1]:
                out["get_with_followers"] = _get_latency(user.session, job_url, window - 1)
            row = results.get(timeout=ramp + window + 120)
            child.join(30)
            row["rss_kib"] = rss
            out["follow"].append(row)
            print(json.dumps(row), flush=True)
            time.sleep(3)  # the followers' streams close
        base, loaded = out["get_without_followers"]["p99_ms"], out["get_with_followers"]["p99_ms"]
        out["get_p99_ratio"] = round(loaded / base, 2) if base and loaded else None
        user.delete(f"/jobs/{name}")
    finally:
        gateway.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s windows instead of 30 s")
    args = parser.parse_args()
    result = run(args.quick)
    path = ROOT / "bench" / "results" / "streams.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print("\nfollowers | lag p50 ms | lag p99 ms | lag max ms | lines | gaps | workers' RSS MiB")
    for row in result["follow"]:
        print(f"{row['followers']:>9} | {row['lag_p50_ms']} | {row['lag_p99_ms']} | {row['lag_max_ms']} | "
              f"{row['lines']} | {row['gaps']} | {row['rss_kib'] / 1024:.1f}")
    print(f"GET /jobs/{{name}}: without followers {result['get_without_followers']}, with 500 "
          f"{result['get_with_followers']}, p99 ratio {result['get_p99_ratio']} (target <= 2)")
    print(f"workers' RSS idle {result['rss_idle_kib'] / 1024:.1f} MiB; written to {path}")


if __name__ == "__main__":
    main()
