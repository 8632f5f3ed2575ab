"""Where a gateway request's time goes: py-spy records every worker (wall clock, idle threads included, so time
spent waiting on the apiserver shows up) while one client repeats the call; the stacks of request-handling
threads are summed per function and divided by the number of requests."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .measure import Samples, Side, timed

RATE = 250  # samples per second
_REQUEST_FRAME = "ThreadWorker.handle ("  # gunicorn gthread: on the stack only while a request is handled


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def profile_side(side: Side, pids: list[int], n: int, out_dir: Path, label: str, top: int = 25) -> dict:
    """Run ``n`` operations of ``side`` sequentially under py-spy; return the per-function breakdown."""
    binary = py_spy()
    if not binary:
        return {"error": "py-spy is not installed (pip install -e '.[bench]')"}
    raws = [out_dir / f"profile-{label}-{pid}.raw" for pid in pids]
    spies = [subprocess.Popen([binary, "record", "--pid", str(pid), "--format", "raw", "--rate", str(RATE),
                               "--idle", "--nolineno", "--nonblocking", "--output", str(raw)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
             for pid, raw in zip(pids, raws)]
    session, samples = side.new_session(), Samples()
    try:
        time.sleep(1.0)  # let py-spy attach
        for i in range(n):
            timed(side, session, i, samples)
    finally:
        session.close()
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        errors = []
        for spy in spies:
            try:
                _, err = spy.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, err = spy.communicate()
            if spy.returncode not in (0, -signal.SIGINT, 130) and err:
                errors.append(err.decode(errors="replace")[-500:])
    done = len(samples.latencies)
    result = summarize([r for r in raws if r.exists()], done, top)
    result.update({"requests": done, "client_mean_ms": round(sum(samples.latencies) / done * 1000, 2) if done
                   else None, "raw_files": [str(r) for r in raws if r.exists()]})
    if errors and not result.get("cpu_functions"):
        result["error"] = " | ".join(errors)
    return result


_WAIT_LEAVES = ("SSLSocket.read (", "SSLSocket.do_handshake (", "socket.recv", "select (", "poll (",
                "do_poll (", "Condition.wait (", "SocketIO.readinto (")


def summarize(raws: list[Path], requests_done: int, top: int) -> dict:
    """Per request: wall time of request-handling threads, split into waiting on a socket (the apiserver or a
    handshake) and the gateway's own CPU; the functions that hold that CPU time; the gateway's functions."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for raw in raws:
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if stack and count_text.isdigit() and _REQUEST_FRAME in stack:
                stacks[tuple(stack.split(";"))] += int(count_text)
    handling = sum(stacks.values())
    waiting = sum(c for frames, c in stacks.items() if frames[-1].startswith(_WAIT_LEAVES))
    cpu_inclusive: Counter[str] = Counter()
    cpu_self: Counter[str] = Counter()
    gateway: Counter[str] = Counter()
    for frames, count in stacks.items():
        for frame in set(frames):
            if "(gateway/" in frame:
                gateway[frame] += count
        if frames[-1].startswith(_WAIT_LEAVES):
            continue
        for frame in set(frames):
            cpu_inclusive[frame] += count
        cpu_self[frames[-1]] += count
    cpu = handling - waiting

    def ms(count: int) -> float:
        return round(count / RATE * 1000 / max(requests_done, 1), 3)

    common = {f for f, c in cpu_inclusive.items() if c >= 0.97 * cpu}  # the call chain every request has
    return {
        "handling_ms_per_request": ms(handling),
        "waiting_ms_per_request": ms(waiting),
        "cpu_ms_per_request": ms(cpu),
        "cpu_functions": [{"function": f, "inclusive_ms": ms(c), "self_ms": ms(cpu_self[f])}
                          for f, c in cpu_inclusive.most_common() if f not in common][:top],
        "cpu_self": [{"function": f, "self_ms": ms(c)} for f, c in cpu_self.most_common(top)],
        "gateway_functions": [{"function": f, "inclusive_ms": ms(c)} for f, c in gateway.most_common(top)],
    }


def format_profile(label: str, result: dict) -> str:
    if result.get("error") and "cpu_functions" not in result:
        return f"profile {label}: {result['error']}\n"
    lines = [f"profile {label}: {result.get('requests')} requests, client mean {result.get('client_mean_ms')} ms; "
             f"per request, request-handling threads: {result['handling_ms_per_request']} ms wall = "
             f"{result['waiting_ms_per_request']} ms waiting on sockets + {result['cpu_ms_per_request']} ms CPU "
             f"(py-spy {RATE} Hz, non-blocking)",
             "  gateway functions (wall, inclusive):"]
    lines += [f"  {row['inclusive_ms']:>10.3f}  {row['function']}" for row in result["gateway_functions"]]
    lines.append("  CPU (not waiting), inclusive / self ms, common call chain left out:")
    lines += [f"  {row['inclusive_ms']:>10.3f} {row['self_ms']:>8.3f}  {row['function']}"
              for row in result["cpu_functions"]]
    lines.append("  CPU self time:")
    lines += [f"  {row['self_ms']:>10.3f}  {row['function']}" for row in result["cpu_self"][:15]]
    return "\n".join(lines) + "\n"
