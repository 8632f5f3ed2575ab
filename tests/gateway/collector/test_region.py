"""The collector against an in-memory apiserver (tests/fake_apiserver.py) and a real SQLite archive: churn
without races, fencing, a restart while the stream was down, legacy pods, containers chosen by name."""
from __future__ import annotations

import itertools
import logging
import threading
import time

import pytest

from gateway.collector import metrics
from gateway.collector.region import Options, RegionCollector
from gateway.store import ContainerKey, open_store

from tests.support.fake_kube import FakeKube, pod, stamp
from tests.support.harness import wait_until

_regions = itertools.count()


class FakeElector:
    identity = "test-collector"

    def __init__(self, token: int | None = 1):
        self.token = token

    def valid(self, token: int) -> bool:
        return self.token == token

    def wait_renewed(self, token: int, stop) -> bool:
        return self.valid(token)


def wait_for(check, timeout: float = 20.0, what: str = "condition"):
    return wait_until(check, timeout, 0.05, what=what)


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/archive.db")
    yield store
    store.close()


@pytest.fixture
def make_collector(store):
    started = []

    def make(kube, elector=None, **options):
        region = f"r{next(_regions)}"
        collector = RegionCollector(region, kube, store, elector or FakeElector(),
                                    Options(poll_seconds=0.05, flush_seconds=0.05, **options))
        collector.start()
        threading.Thread(target=collector.run, daemon=True).start()
        started.append(collector)
        return collector

    yield make
    for collector in started:
        collector.stop()


def errors_of(region: str) -> float:
    return sum(sample.value for family in metrics.REGISTRY.collect() if family.name == "tenx_collector_errors"
               for sample in family.samples if sample.labels.get("region") == region
               and sample.name.endswith("_total"))


def lines_of(store, name: str, container: str | None = None) -> list[str]:
    return store.read("tenx-alice", name, container or "job", size=100_000)


def test_churn_of_many_pods_races_nothing(store, make_collector, caplog):
    """The old collector died of 'Set changed size during iteration' under churn. 200 pods start, print, finish
    and are deleted while others start; no error may be logged and every line of every pod must be archived."""
    kube = FakeKube()
    collector = make_collector(kube)
    wait_for(collector.pods.synced.is_set, what="the first list")
    caplog.set_level(logging.ERROR)

    def churn(first: int, count: int) -> None:
        for i in range(first, first + count):
            name = f"job-{i}"
            kube.put(pod(name, "job"))
            kube.write("tenx-alice", name, "job", [(stamp(i + n / 10), f"{name} line {n}") for n in range(5)])
            kube.end("tenx-alice", name, "job")
            kube.put(pod(name, "job", phase="Succeeded",
                         containers={"job": {"state": {"terminated": {"exitCode": 0}}, "restartCount": 0}}))

    threads = [threading.Thread(target=churn, args=(n * 50, 50)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(200):
        wait_for(lambda: len(lines_of(store, f"job-{i}")) == 5, what=f"job-{i}'s lines")
    for i in range(0, 200, 2):
        kube.delete("tenx-alice", f"job-{i}")
    wait_for(lambda: all(store.instances("tenx-alice", "job")), what="records")
    for i in range(200):
        assert lines_of(store, f"job-{i}") == [f"job-{i} line {n}" for n in range(5)]
    assert [r.message for r in caplog.records] == []
    assert errors_of(collector.region) == 0 and collector.restarts == 0
    assert kube.lists.count("app.kubernetes.io/managed-by=tenx-gateway") == 1  # no periodic LIST


def test_a_deposed_leader_stops_writing(store, make_collector, caplog):
    """Leadership lost: the follower writes nothing more, even as its stream goes on; the store refuses a write
    that carries an older token than one the stream has seen."""
    caplog.set_level(logging.INFO, logger="gateway.collector.region")
    kube = FakeKube()
    elector = FakeElector(token=3)
    collector = make_collector(kube, elector)
    kube.put(pod("job-a", "job"))
    kube.write("tenx-alice", "job-a", "job", [(stamp(n), f"old leader {n}") for n in range(3)])
    wait_for(lambda: len(lines_of(store, "job-a")) == 3, what="three lines")
    elector.token = None
    kube.write("tenx-alice", "job-a", "job", [(stamp(10), "after the loss")])
    kube.end("tenx-alice", "job-a", "job")  # the follower must then flush what it holds: it gives up instead
    # (it says so only on a write tried after the loss)
    wait_for(lambda: any("leadership lost; stopped following" in r.getMessage() for r in caplog.records),
             what="the follower to give up")
    assert lines_of(store, "job-a") == [f"old leader {n}" for n in range(3)]
    from gateway.store import Deposed
    from gateway.store.base import LogLine
    key = ContainerKey("tenx-alice", "job", "job-a", "job")
    store.append(key, [LogLine(11 * 10**9, "new leader")], fence=4)
    with pytest.raises(Deposed):
        store.append(key, [LogLine(12 * 10**9, "resumed old leader")], fence=3)
    assert errors_of(collector.region) == 0


def test_a_new_leader_continues_exactly_where_the_old_one_stopped(store, make_collector):
    kube = FakeKube()
    first = FakeElector(token=1)
    old = make_collector(kube, first)
    kube.put(pod("job-a", "job"))
    kube.write("tenx-alice", "job-a", "job", [(stamp(n), f"line {n}") for n in range(5)])
    wait_for(lambda: len(lines_of(store, "job-a")) == 5, what="five lines")
    first.token = None
    kube.write("tenx-alice", "job-a", "job", [(stamp(5 + n), f"line {5 + n}") for n in range(5)])
    make_collector(kube, FakeElector(token=2))
    kube.end("tenx-alice", "job-a", "job")
    # the last line written: everything before it in the stream has been read and stored by then, duplicates too
    wait_for(lambda: lines_of(store, "job-a")[-1:] == ["line 9"], what="the last line")
    assert lines_of(store, "job-a") == [f"line {n}" for n in range(10)]
    assert old.pool.running == 0 or not old._elector.token


def test_a_restart_while_the_stream_was_down_reads_the_previous_attempt(store, make_collector):
    """Attempt 0 printed 3 lines, the collector archived 1, then was away while the container printed 2 more,
    failed and restarted. The next collector reads the rest of attempt 0 with previous=true, then attempt 1."""
    from gateway.store.base import LogLine
    from gateway.timefmt import stamp_ns
    kube = FakeKube()
    key = ContainerKey("tenx-alice", "job", "job-a", "job")
    kube.write("tenx-alice", "job-a", "job", [(stamp(n), f"attempt 0 line {n}") for n in range(3)])
    store.append(key, [LogLine(stamp_ns(stamp(0)), "attempt 0 line 0")], attempt=0)
    kube.write("tenx-alice", "job-a", "job", [(stamp(10 + n), f"attempt 1 line {n}") for n in range(2)],
               new_attempt=True)
    kube.put(pod("job-a", "job", containers={"job": {"state": {"running": {}}, "restartCount": 1,
                                                     "lastState": {"terminated": {"exitCode": 1}}}}))
    make_collector(kube)
    want = [f"attempt 0 line {n}" for n in range(3)] + [f"attempt 1 line {n}" for n in range(2)]
    wait_for(lambda: lines_of(store, "job-a") == want, what="both attempts")
    assert any(call["previous"] for call in kube.log_calls)
    with store._read() as conn:  # the archive keeps attempts apart
        attempts = [a for (a,) in conn.execute("SELECT attempt FROM log_lines ORDER BY seq")]
    assert attempts == [0, 0, 0, 1, 1]


def test_pods_with_only_the_legacy_job_name_label_are_found(store, make_collector):
    """Pods of jobs created before the managed-by label, on a cluster that sets only `job-name`: found by the
    legacy reflector, which stops once none is left."""
    kube = FakeKube()
    kube.put(pod("old-a", "old", labels={"job-name": "old"}))
    kube.put(pod("foreign", "x", namespace="kube-system", labels={"job-name": "x"}))
    kube.write("tenx-alice", "old-a", "old", [(stamp(0), "from a legacy pod")])
    kube.end("tenx-alice", "old-a", "old")
    collector = make_collector(kube)
    wait_for(lambda: store.read("tenx-alice", "old-a", "old") == ["from a legacy pod"], what="the legacy pod")
    assert collector.legacy.get("kube-system", "foreign") is None  # not a gateway namespace
    kube.put(pod("old-a", "old", labels={"job-name": "old"}, phase="Succeeded",
                 containers={"old": {"state": {"terminated": {"exitCode": 0}}, "restartCount": 0}}))
    kube.delete("tenx-alice", "old-a")
    wait_for(lambda: not collector.legacy.alive or collector.legacy._stop.is_set(), what="the legacy watch to stop")
    assert store.instances("tenx-alice", "old")[0]["name"] == "old-a"


def test_a_two_container_pod_archives_each_container_under_its_name(store, make_collector):
    kube = FakeKube()
    containers = {"job": {"state": {"running": {}}, "restartCount": 0},
                  "job-1": {"state": {"running": {}}, "restartCount": 0}}
    kube.write("tenx-alice", "pair-a", "job-1", [(stamp(0), "from-side")])
    kube.write("tenx-alice", "pair-a", "job", [(stamp(1), "from-main")])
    kube.put(pod("pair-a", "job", containers=containers))
    make_collector(kube)
    wait_for(lambda: store.read("tenx-alice", "pair-a", "job") == ["from-main"], what="the main container")
    wait_for(lambda: store.read("tenx-alice", "pair-a", "job-1") == ["from-side"], what="the side container")


def test_the_pool_runs_up_to_its_cap_at_once_and_queues_the_rest():
    """Long-running work (a followed stream) must get a thread each up to the cap, however fast it arrives;
    past the cap it waits, and a key is never queued twice."""
    from gateway.collector.followers import Pool
    release = threading.Event()
    running, lock = set(), threading.Lock()

    def work(key):
        if key == "quick":
            return
        with lock:
            running.add(key)
        release.wait(10)

    pool = Pool(work, cap=8, name="test")
    pool.submit("quick")
    wait_for(lambda: pool._idle == 1 and pool.running == 0, what="an idle thread")  # it waits for more work
    assert all(pool.submit(i) for i in range(12))
    assert not pool.submit(3)
    wait_for(lambda: len(running) == 8, what="eight running at once")
    assert pool.running == 8 and pool.queued == 4 and pool.crowded()
    release.set()
    wait_for(lambda: len(running) == 12, what="the queued four")
    pool.close()
