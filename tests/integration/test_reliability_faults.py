"""Cluster faults, on a second kube-apiserver of the test's own (same etcd, certificates and flags as the shared
one, another port) so the shared cluster never notices: killed, restarted, hung, and killed in the middle of
first creates. A gateway of the test's own (gunicorn, shipped config) talks only to that apiserver.

While the apiserver is down or hung, every call answers 503 with Retry-After (a client's read timeout of 30 s, ten
times the gateway's own to the apiserver, is all that catches one that hangs); once it is back, calls succeed again
without restarting the gateway; no worker is ever replaced. How long each took (the issue's bounds: 503 within 5 s,
success within 10 s of the apiserver's return) is measured and recorded, not asserted: the machine is shared.
"""
from __future__ import annotations

import secrets
import signal
import threading
import time
from typing import Callable

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from tests.support.reliability import (ADMIN_KUBECONFIG, GatewayServer, Load, SecondApiserver, make_namespace,
                                       percentile, record, wait_until)

RECOVERY_DEADLINE = 120.0  # seconds to wait for a first success once the apiserver is back: a failure only if never
READ_TIMEOUT = 3  # GATEWAY_KUBE_READ_TIMEOUT of this test's gateway
JOB = {"containers": [{"image": "busybox", "command": ["true"]}]}


@pytest.fixture(scope="module")
def apiserver(local_cluster, tmp_path_factory):
    server = SecondApiserver(tmp_path_factory.mktemp("apiserver2"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_gateway(local_cluster, apiserver, tmp_path_factory):
    server = GatewayServer(tmp_path_factory.mktemp("fault-gateway"), kubeconfig=apiserver.kubeconfig,
                           GATEWAY_KUBE_READ_TIMEOUT=str(READ_TIMEOUT), GATEWAY_KUBE_CONNECT_TIMEOUT="1",
                           GATEWAY_RETRY_AFTER_SECONDS="2",
                           # these bounds are for calls that reach the apiserver; a watch cache answers reads
                           # from memory for up to GATEWAY_CACHE_STALE_SECONDS of an outage (tests/test_cache.py)
                           GATEWAY_WATCH_CACHE="false",
                           # thousands of creates under load: the tenant's Job quota is not what is tested here
                           GATEWAY_TENANT_QUOTA_JOBS="1000000").start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def tenant(fault_gateway, apiserver):
    """A user with one job; pods are held back by a quota of zero (no command needs to run for these tests)."""
    user = fault_gateway.add_user("fault")
    make_namespace(fault_gateway, user, max_pods=0)
    assert user.post("/jobs/steady", json=JOB).status_code == 200
    return user


def mixed_ops(base: str):
    """What clients keep calling during a fault: reads, a create of a new name, a delete of a missing one."""
    return [
        ("list", lambda s, i, n: s.get(f"{base}/jobs", timeout=30)),
        ("get", lambda s, i, n: s.get(f"{base}/jobs/steady", timeout=30)),
        ("instances", lambda s, i, n: s.get(f"{base}/jobs/steady/instances", timeout=30)),
        ("create", lambda s, i, n: s.post(f"{base}/jobs/c{i}-{n}-{secrets.token_hex(2)}", json=JOB, timeout=30)),
        ("delete", lambda s, i, n: s.delete(f"{base}/jobs/missing-{i}", timeout=30)),
    ]


def ok(call) -> bool:
    return call.status in (200, 404)


def outage(load: Load, apiserver: SecondApiserver, begin_fault, end_fault, hold: float,
           until: Callable[[float], bool] | None = None) -> dict:
    """Start the fault, keep it ``hold`` seconds (and, with ``until``, until ``until(down_at)`` holds too), end it;
    measure what the clients saw. Returns figures."""
    fault_started = time.monotonic()
    begin_fault()
    down_at = time.monotonic()  # the fault is in effect from here on (the process is gone, or stopped)
    load.wait_for_calls(down_at, 12, timeout=60)
    time.sleep(max(0.0, hold - (time.monotonic() - down_at)))  # how long the fault lasts; not a synchronisation
    if until is not None:
        wait_until(lambda: until(down_at), 60, interval=0.2, what="what the fault is held for")
    restart_at = time.monotonic()
    end_fault()
    back_at = time.monotonic()  # the apiserver answers /readyz (or was continued)
    first_ok = wait_until(lambda: next((c for c in list(load.calls) if c.started >= back_at and ok(c)), None),
                          RECOVERY_DEADLINE)
    recovered_at = first_ok.ended if first_ok else None
    if recovered_at is not None:  # a little steady traffic after: calls that started once the first succeeded
        load.wait_for_calls(recovered_at, 12, timeout=60)
    during = load.between(down_at, restart_at)
    after = [c for c in load.calls if recovered_at is not None and c.started >= recovered_at]
    return {
        "fault_took_effect_s": round(down_at - fault_started, 2),
        "held_s": round(restart_at - down_at, 2),
        "calls_while_down": len(during),
        "calls_while_down_503_with_retry_after": sum(1 for c in during if c.status == 503 and c.retry_after),
        "calls_while_down_other": sorted({f"{c.op}:{c.status or c.error}" for c in during
                                          if not (c.status == 503 and c.retry_after)}),
        "slowest_while_down_s": round(max((c.seconds for c in during), default=0), 2),
        "p99_while_down_s": round(percentile([c.seconds for c in during], 0.99) or 0, 2),
        "back_to_first_success_s": round(recovered_at - back_at, 2) if recovered_at else None,
        "restart_to_first_success_s": round(recovered_at - restart_at, 2) if recovered_at else None,
        "calls_after_recovery": len(after),
        "failed_after_recovery": sorted({f"{c.op}:{c.status or c.error}" for c in after if not ok(c)}),
        "slowest_overall_s": round(max((c.seconds for c in load.calls), default=0), 2),
        "_during": during, "_recovered": recovered_at is not None,
    }


def check_outage(figures: dict) -> None:
    during = figures.pop("_during")
    assert during, "no call was made while the apiserver was down"
    for call in during:
        assert call.status == 503 and call.retry_after, f"{call.op} answered {call.status or call.error} while down"
    assert figures.pop("_recovered"), f"no call succeeded within {RECOVERY_DEADLINE:g}s of the apiserver's return"
    assert figures["failed_after_recovery"] == []


def check_answered(load: Load) -> None:
    """Every call got an HTTP answer: none was left to the client's read timeout (a hung worker or thread)."""
    unanswered = sorted({f"{c.op}:{c.error}" for c in load.calls if c.status is None})
    assert not unanswered, unanswered


def check_workers(gateway: GatewayServer, workers_before: list[int]) -> None:
    assert gateway.worker_pids() == workers_before, "a gunicorn worker was replaced"
    assert "WORKER TIMEOUT" not in gateway.log_text()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_apiserver_stopped_then_started_again(fault_gateway, apiserver, tenant, how):
    workers = fault_gateway.worker_pids()
    load = Load(tenant, mixed_ops(tenant.base), threads=4).start()
    try:
        assert load.wait_for_calls(time.monotonic() - 60, 10, timeout=20)
        figures = outage(load, apiserver, lambda: apiserver.stop(getattr(signal, how)),
                         lambda: apiserver.start(), hold=4)
    finally:
        load.stop()
    check_workers(fault_gateway, workers)
    record(f"fault_apiserver_{how.lower()}", {
        "what": f"second apiserver stopped with {how} under 4 client threads (list/get/instances/create/delete), "
                "held down 4 s, started again; gateway not restarted",
        **{k: v for k, v in figures.items() if not k.startswith("_")},
        "calls_total": len(load.calls), "workers_replaced": 0})
    check_outage(figures)


def test_hung_apiserver_gives_503_within_the_read_timeout(fault_gateway, apiserver, tenant):
    """SIGSTOP: connections stay open and nothing answers. Each call must give up after the read timeout
    (GATEWAY_KUBE_READ_TIMEOUT=3 here), not hang its thread, and the worker must stay alive."""
    workers = fault_gateway.worker_pids()
    load = Load(tenant, mixed_ops(tenant.base), threads=4).start()
    try:
        assert load.wait_for_calls(time.monotonic() - 60, 10, timeout=20)
        figures = outage(load, apiserver, apiserver.pause, apiserver.resume, hold=8)
    finally:
        apiserver.resume()
        load.stop()
    check_workers(fault_gateway, workers)
    record("fault_apiserver_sigstop", {
        "what": "second apiserver SIGSTOPped (hung, not dead) for 8 s under 4 client threads, then SIGCONT; "
                f"GATEWAY_KUBE_READ_TIMEOUT={READ_TIMEOUT}, GATEWAY_KUBE_CONNECT_TIMEOUT=1",
        **{k: v for k, v in figures.items() if not k.startswith("_")},
        "calls_total": len(load.calls), "workers_replaced": 0})
    check_outage(figures)
    # the calls caught in flight by the pause are the ones that wait out the read timeout: they too are answered
    # (503, or 200/404 once resumed), none left to hang until the client gives up
    check_answered(load)


def test_a_create_cut_off_half_way_leaves_nothing_a_retry_trips_over(fault_gateway, apiserver):
    """First creates of fresh users (namespace, then Job) while the apiserver is killed under them; after it is
    back, each user retries until the gateway answers something other than 503. The retry must succeed: 200, or
    409 only when the first attempt did create the Job. Also the plain case: the namespace already made (as by an
    earlier attempt that got no further), the Job not."""
    api = k8s_config.new_client_from_config(config_file=str(ADMIN_KUBECONFIG))  # the shared apiserver
    core, batch = k8s_client.CoreV1Api(api), k8s_client.BatchV1Api(api)

    half_made = fault_gateway.add_user("half")
    make_namespace(fault_gateway, half_made)
    assert half_made.post("/jobs/after-half", json=JOB).status_code == 200

    users = [fault_gateway.add_user("cut") for _ in range(6)]  # no namespace yet: the gateway makes it
    namespaces = {fault_gateway.namespace_of(u) for u in users}
    first: dict[str, object] = {}

    def first_create(user):
        try:
            first[user.username] = user.post("/jobs/first", json=JOB).status_code
        except Exception as exc:  # noqa: BLE001 - recorded, judged below
            first[user.username] = type(exc).__name__

    threads = [threading.Thread(target=first_create, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    # the kill lands as soon as the first of these namespaces exists: between a namespace and its Job, if anywhere
    wait_until(lambda: namespaces & {n.metadata.name for n in core.list_namespace().items}, 30, interval=0.005)
    apiserver.kill()
    for thread in threads:
        thread.join(timeout=60)
    states = {}
    for user in users:
        namespace = fault_gateway.namespace_of(user)
        has_namespace = any(n.metadata.name == namespace for n in core.list_namespace().items)
        has_job = has_namespace and any(j.metadata.name == "first" for j in
                                        batch.list_namespaced_job(namespace).items)
        states[user.username] = "complete" if has_job else "namespace only" if has_namespace else "nothing"
    apiserver.start()

    retries: dict[str, int] = {}
    for user in users:
        def settled():
            response = user.post("/jobs/first", json=JOB)
            return [response] if response.status_code != 503 else None  # a 4xx Response is falsy
        answer = wait_until(settled, RECOVERY_DEADLINE, interval=0.5)
        assert answer is not None, f"{user.username}: still 503 after the apiserver came back"
        response = answer[0]
        retries[user.username] = response.status_code
        expected = {200, 409} if states[user.username] == "complete" else {200}
        assert response.status_code in expected, (user.username, states[user.username], response.text)
        namespace = fault_gateway.namespace_of(user)
        assert [j.metadata.name for j in batch.list_namespaced_job(namespace).items] == ["first"]
    record("fault_half_made_create", {
        "what": "6 fresh users' first creates (namespace + Job) with the second apiserver SIGKILLed under them, "
                "then restarted and each create retried; plus a namespace made by hand before the first create",
        "first_attempt": {str(v): list(first.values()).count(v) for v in set(first.values())},
        "state_after_kill": {s: list(states.values()).count(s) for s in set(states.values())},
        "retry": {str(v): list(retries.values()).count(v) for v in set(retries.values())},
        "premade_namespace_create": 200,
    })


STALE = 2.0  # GATEWAY_CACHE_STALE_SECONDS of the cached gateway


@pytest.fixture(scope="module")
def cached_gateway(local_cluster, apiserver, tmp_path_factory):
    """The default serving path: reads from the watch cache. One worker: each keeps a cache of its own, which goes
    stale on its own clock, so only with one does a refused read mean that no later read may come from memory."""
    server = GatewayServer(tmp_path_factory.mktemp("cached-gateway"), kubeconfig=apiserver.kubeconfig,
                           GATEWAY_KUBE_READ_TIMEOUT=str(READ_TIMEOUT), GATEWAY_KUBE_CONNECT_TIMEOUT="1",
                           GATEWAY_RETRY_AFTER_SECONDS="2", GATEWAY_CACHE_STALE_SECONDS=str(STALE),
                           GATEWAY_TENANT_QUOTA_JOBS="1000000", GATEWAY_WORKERS="1").start()
    yield server
    server.close()


def refused_as_stale(load: Load, down_at: float) -> bool:
    """Each read has been answered 503 during the outage: the cache went stale for all of them."""
    refused = {c.op for c in load.between(down_at, time.monotonic()) if c.status == 503}
    return {"list", "get", "instances"} <= refused


def test_with_the_watch_cache_an_outage_is_served_from_memory_only_until_stale(cached_gateway, apiserver):
    """While the apiserver is down, a read may come from memory (200) only until the cache is GATEWAY_CACHE_STALE_
    SECONDS behind; later reads, and every write, are 503 with Retry-After; nothing else. Once it is back, reads
    and writes succeed again without a restart. The outage lasts until every kind of read has been refused, so
    the stale end is always reached; that no read of a kind came from memory after one of that kind was refused
    is what shows the cache was not used once stale (the age at which it goes stale is tests/test_cache.py's,
    on a clock of its own; here it is recorded)."""
    user = cached_gateway.add_user("cache")
    make_namespace(cached_gateway, user, max_pods=0)
    assert user.post("/jobs/steady", json=JOB).status_code == 200
    assert wait_until(lambda: user.get("/jobs/steady").status_code == 200, 10)
    workers = cached_gateway.worker_pids()
    load = Load(user, mixed_ops(user.base), threads=4).start()
    try:
        assert load.wait_for_calls(time.monotonic() - 60, 10, timeout=20)
        figures = outage(load, apiserver, lambda: apiserver.stop(signal.SIGKILL), lambda: apiserver.start(),
                         hold=STALE + 4, until=lambda down_at: refused_as_stale(load, down_at))
    finally:
        load.stop()
    check_workers(cached_gateway, workers)
    during = figures.pop("_during")
    down_at = min(c.started for c in during)
    from_memory = [c for c in during if c.status == 200]
    record("fault_apiserver_with_watch_cache", {
        "what": f"SIGKILL of the second apiserver for {figures['held_s']:.0f} s under 4 client threads, the gateway's "
                f"watch cache on with GATEWAY_CACHE_STALE_SECONDS={STALE:g}, one worker",
        **{k: v for k, v in figures.items() if not k.startswith("_")},
        "reads_from_memory_while_down": len(from_memory),
        "last_read_from_memory_after_down_s": round(max((c.started for c in from_memory), default=down_at)
                                                    - down_at, 2)})
    assert during, "no call was made while the apiserver was down"
    for call in during:
        if call.status == 200:
            assert call.op in ("list", "get", "instances"), f"{call.op} answered 200 with the apiserver down"
        elif call.op == "delete" and call.status == 404:
            pass  # the name was never there: a cache that is still fresh may say so without the apiserver
        else:
            assert call.status == 503 and call.retry_after, f"{call.op} answered {call.status or call.error}"
    for op in ("list", "get", "instances", "delete"):
        refused = [c.ended for c in during if c.op == op and c.status == 503]
        from_memory = [c for c in during if c.op == op and c.status in (200, 404)]
        late = [c for c in from_memory if refused and c.started > min(refused)]
        assert not late, f"{op} answered {late[0].status} from memory after a {op} was refused as stale"
    assert {"list", "get", "instances"} <= {c.op for c in during if c.status == 503}, \
        "no read reached the apiserver once the cache was stale"
    assert figures.pop("_recovered"), f"no call succeeded within {RECOVERY_DEADLINE:g}s of the apiserver's return"
    assert figures["failed_after_recovery"] == []
