"""Graceful shutdown: SIGTERM to gunicorn's master in the middle of a burst (6 client threads listing jobs, 2 reading a
late page of a 7 MB log, each thread on its own kept-alive connection). Every request sent before the signal must be
answered in full (a worker still busy at GATEWAY_GRACEFUL_TIMEOUT would be killed, and its answers with it); the
master must exit with 0. How long it took is recorded, not asserted.

After the signal gunicorn answers requests arriving on open connections with `Connection: close`, and the workers
keep the listening socket until they exit: a new connection made then waits in the kernel's backlog and is reset
when they go, or is refused once they are gone. Those requests were never accepted; they are counted apart.
"""
from __future__ import annotations

import secrets
import signal
import subprocess
import time
from collections import Counter

import pytest

from tests.support.conditions import condition
from tests.support.reliability import GatewayServer, Load, percentile, record

GRACE = 10  # GATEWAY_GRACEFUL_TIMEOUT of this test's gateway
BIG_LOG = {"containers": [{"image": "busybox", "command": ["seq", "1", "1000000"]}]}


@pytest.fixture
def draining_gateway(local_cluster, tmp_path):
    server = GatewayServer(tmp_path / "gateway", GATEWAY_GRACEFUL_TIMEOUT=str(GRACE))
    server.start()
    yield server
    server.close()


def test_sigterm_during_a_burst_drops_no_accepted_request(draining_gateway):
    user = draining_gateway.add_user("drain")
    name = f"big-{secrets.token_hex(3)}"
    assert user.post(f"/jobs/{name}", json=BIG_LOG).status_code == 200
    instance = user.wait_for(name, lambda j: condition(j, "Complete") is not None)["instance_names"][0]
    logs = f"{user.base}/jobs/{name}/instances/{instance}/logs"
    ops = [("list", lambda s, i, n: s.get(f"{user.base}/jobs", timeout=60))] * 3 + \
          [("late log page", lambda s, i, n: s.get(logs, params={"from": 999_990, "size": 10}, timeout=60))]
    load = Load(user, ops, threads=8)  # each thread: three lists, then a log page, and again
    load.start()
    try:
        assert load.wait_for_calls(0, 40, timeout=60)
        assert [c for c in load.calls if c.op == "late log page"], "no log page read yet"
        workers = draining_gateway.worker_pids()
        signalled = time.monotonic()
        draining_gateway.process.send_signal(signal.SIGTERM)
        try:
            code = draining_gateway.process.wait(timeout=GRACE + 20)
        except subprocess.TimeoutExpired:
            code = None
        exited = time.monotonic()
    finally:
        calls = load.stop()

    before = [c for c in calls if c.started < signalled]
    in_flight = [c for c in before if c.ended >= signalled]
    after = [c for c in calls if c.started >= signalled]
    after_kinds = Counter(str(c.status) if c.status else c.error for c in after)
    log_seconds = [c.seconds for c in before if c.op == "late log page" and c.status == 200]
    gunicorn_log = draining_gateway.log_text()
    record("graceful_shutdown", {
        "what": "SIGTERM to gunicorn's master under 8 client threads, each on a kept-alive connection cycling three "
                f"GET /jobs and one late page of a 1M-line log; GATEWAY_GRACEFUL_TIMEOUT={GRACE}",
        "requests_before_signal": len(before), "in_flight_at_signal": len(in_flight),
        "in_flight_ops": dict(Counter(c.op for c in in_flight)),
        "failed_before_or_in_flight": sum(1 for c in before if c.status != 200),
        "after_signal": dict(after_kinds),
        "late_log_page_p50_s": round(percentile(log_seconds, 0.5) or 0, 2),
        "exit_seconds": round(exited - signalled, 2), "exit_code": code, "workers": len(workers),
    })
    assert code == 0, gunicorn_log[-3000:]
    assert [(c.op, c.status, c.error) for c in before if c.status != 200] == []
    assert all(c.status in (None, 200) for c in after), after_kinds  # answered ones are whole answers
    assert all(c.error in (None, "refused", "reset") for c in after), after_kinds
    assert "WORKER TIMEOUT" not in gunicorn_log and '"level": "error"' not in gunicorn_log
