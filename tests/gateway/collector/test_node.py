"""The node collector against an in-memory apiserver (pods on its node), files laid out as the kubelet lays them,
and a real SQLite archive: numbering, restarts of the collector at any moment, rotation, gaps, fairness, rates."""
from __future__ import annotations

import itertools
import os
import random
import shutil
import threading
import time
from pathlib import Path

import pytest

from gateway.collector import metrics
from gateway.collector.node import NodeCollector, NodeOptions
from gateway.store import ContainerKey

from tests.support.fake_kube import FakeKube, pod
from tests.support.harness import wait_until
from tests.support.kubelet_logs import FakeContainerLog

NODE = "node-a"
_regions = itertools.count()


def on_node(obj: dict, uid: str, node: str = NODE) -> dict:
    return {**obj, "metadata": {**obj["metadata"], "uid": uid}, "spec": {**obj["spec"], "nodeName": node}}


def container_dir(root: Path, obj: dict, container: str) -> Path:
    meta = obj["metadata"]
    return root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / container


@pytest.fixture
def start(store, tmp_path):
    """start(kube, **options) -> a running NodeCollector over tmp_path/pods (the collectors stop at the end)."""
    running = []

    def make(kube, region: str | None = None, **options) -> NodeCollector:
        collector = NodeCollector(region or f"n{next(_regions)}", NODE, kube, store,
                                  NodeOptions(pod_logs_dir=str(tmp_path / "pods"), poll_seconds=0.01, **options))
        collector.start()
        running.append(collector)
        return collector

    yield make
    for collector in running:
        collector.stop()


def archived(store, obj: dict, container: str) -> list[str]:
    meta = obj["metadata"]
    return store.read(meta["namespace"], meta["name"], container, offset=0, size=10**7)


def numbers(texts: list[str]) -> list[int]:
    return [int(t.split()[-1]) for t in texts]


def first_difference(texts: list[str], expected: int) -> str | None:
    """Where ``texts`` stop being lines 0..expected-1, for the failure message; None if they are."""
    for index, text in enumerate(texts):
        if text != f"line {index}":
            return f"line {index} of {len(texts)} is {text!r} (expected {expected} lines)"
    return None if len(texts) == expected else f"{len(texts)} lines, expected {expected}"


def kill(collector: NodeCollector) -> None:
    """As abrupt as threads can be stopped: what was read and not yet written is dropped; an append under way
    commits or not, as a transaction does when its process dies."""
    collector._stop.set()
    collector.reader.join(5)
    with collector._queue.mutex:
        collector._queue.queue.clear()
    collector._queue.put(None)
    collector.writer.join(5)
    assert not collector.reader.is_alive() and not collector.writer.is_alive()


def wait_for(check, timeout: float = 20.0, what: str = "condition"):
    return wait_until(check, timeout, 0.02, what=what)


def rounds(collector: NodeCollector, count: int = 2) -> None:
    """Wait until the reader has come round ``count`` more times (with its pod list in): what it would still read,
    it has read by then."""
    wait_for(collector.pods.synced.is_set, what="the collector's pod list")
    for _ in range(count):
        since = collector.loop_started
        wait_for(lambda: collector.loop_started > since, what="another round of the reader")


def test_lines_and_records_of_the_node_s_pods_only(start, store, tmp_path):
    kube = FakeKube()
    mine = on_node(pod("p1", "job1"), "u1")
    other = on_node(pod("p2", "job2"), "u2", node="node-b")
    for obj in (mine, other):
        kube.put(obj)
        FakeContainerLog(container_dir(tmp_path / "pods", obj, obj["spec"]["containers"][0]["name"])).lines(25)
    collector = start(kube)
    wait_for(lambda: len(archived(store, mine, "job1")) == 25, what="p1's lines")
    assert numbers(archived(store, mine, "job1")) == list(range(25))
    assert [r["name"] for r in store.instances("tenx-alice", "job1")] == ["p1"]
    rounds(collector)  # p2's files are there all along: rounds that read p1's would have read them too
    assert [p["metadata"]["name"] for p in collector.pods.snapshot()] == ["p1"]
    assert archived(store, other, "job2") == [] and store.instances("tenx-alice", "job2") == []


def test_a_collector_stopped_at_any_moment_resumes_without_loss_or_repeat(start, store, tmp_path):
    """Rotations while it runs and while it is down; each stop abandons what it had read but not committed."""
    kube = FakeKube()
    obj = on_node(pod("p", "flood"), "u")
    kube.put(obj)
    kubelet = FakeContainerLog(container_dir(tmp_path / "pods", obj, "flood"), max_files=100)
    done = threading.Event()

    def write() -> None:
        for round_ in range(60):
            kubelet.lines(300, step_ns=10_000)
            if round_ % 4 == 3:
                kubelet.rotate()
            time.sleep(0.03)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    rng = random.Random(7)
    kills = 0
    while not done.is_set():
        collector = start(kube, region="kill")
        time.sleep(rng.uniform(0.02, 0.15))
        kill(collector)
        kills += 1
    writer.join()
    assert kills >= 5
    last = start(kube, region="kill")
    # exactly the lines written: a repeat or a loss on the way there would keep it from ever being so
    wait_until(lambda: first_difference(archived(store, obj, "flood"), kubelet.written) is None, 20, 0.02)
    assert first_difference(archived(store, obj, "flood"), kubelet.written) is None
    rounds(last)
    assert first_difference(archived(store, obj, "flood"), kubelet.written) is None  # nothing read again since


def test_files_deleted_while_it_was_down_leave_a_marker_with_about_how_many_lines(start, store, tmp_path):
    kube = FakeKube()
    obj = on_node(pod("p", "gap"), "u")
    kube.put(obj)
    kubelet = FakeContainerLog(container_dir(tmp_path / "pods", obj, "gap"), max_files=2)
    kubelet.lines(100)
    first = start(kube, region="gap")
    wait_for(lambda: len(archived(store, obj, "gap")) == 100, what="the first lines")
    first.stop()
    for _ in range(4):  # 400 lines in files the kubelet rotates away and deletes
        kubelet.lines(100)
        kubelet.rotate()
    kubelet.lines(100)
    lost_before = metrics.LOST.labels("gap")._value.get()
    start(kube, region="gap")
    wait_for(lambda: len(archived(store, obj, "gap")) == 301, what="the marker and the 200 lines still there")
    texts = archived(store, obj, "gap")
    assert numbers(texts[:100]) == list(range(100))
    assert texts[100].startswith("[tenx-gateway: about ") and "lines lost here" in texts[100]
    estimate = int(texts[100].split()[2].replace(",", ""))
    assert 300 <= estimate <= 500  # 400 lines are gone: 300 in deleted files, 100 in the one gzipped away first
    assert numbers(texts[101:]) == list(range(kubelet.written - len(texts[101:]), kubelet.written))
    assert metrics.LOST.labels("gap")._value.get() - lost_before == estimate


def test_attempts_in_order_and_an_unfinished_last_line(start, store, tmp_path):
    kube = FakeKube()
    running = on_node(pod("p", "retry", containers={"retry": {"state": {"running": {}}, "restartCount": 0}}), "u")
    kube.put(running)
    directory = container_dir(tmp_path / "pods", running, "retry")
    first = FakeContainerLog(directory, attempt=0)
    first.lines(3, prefix="first")
    first.write("no newline", partial=True)
    start(kube)
    wait_for(lambda: len(archived(store, running, "retry")) == 3, what="attempt 0's whole lines")
    second = FakeContainerLog(directory, attempt=1, start_ns=first.ts + 1_000_000)
    second.lines(2, prefix="second")
    kube.put(on_node(pod("p", "retry", phase="Failed", containers={"retry": {
        "state": {"terminated": {"exitCode": 1}}, "restartCount": 1}}), "u"))
    wait_for(lambda: len(archived(store, running, "retry")) == 6, what="both attempts")
    assert archived(store, running, "retry") == ["first 0", "first 1", "first 2", "no newline", "second 0",
                                                 "second 1"]
    assert store.resume_point(ContainerKey("tenx-alice", "retry", "p", "retry")).attempt == 1


def test_a_flood_does_not_hold_back_a_neighbour(start, store, tmp_path):
    """A flood of 200,000 lines read at its container's rate (20,000 a second: ten seconds of backlog); the
    neighbour in another namespace, whose pod comes after the flood began, is archived within its first turns."""
    kube = FakeKube()
    flood = on_node(pod("flood", "flood", namespace="tenx-bob"), "u1")
    quiet = on_node(pod("quiet", "quiet"), "u2")
    kube.put(flood)
    FakeContainerLog(container_dir(tmp_path / "pods", flood, "flood")).lines(200_000)
    start(kube, container_lines_per_second=20_000, namespace_lines_per_second=1e9)
    wait_for(lambda: archived(store, flood, "flood")[:1], what="the flood's first lines")
    kube.put(quiet)
    FakeContainerLog(container_dir(tmp_path / "pods", quiet, "quiet")).lines(5)
    wait_for(lambda: len(archived(store, quiet, "quiet")) == 5, what="the neighbour's lines")
    assert len(archived(store, flood, "flood")) <= 100_000  # the flood was still waiting in its file


def test_over_its_rate_a_container_waits_in_its_files_and_loses_nothing(start, store, tmp_path):
    kube = FakeKube()
    obj = on_node(pod("p", "rated"), "u")
    kube.put(obj)
    FakeContainerLog(container_dir(tmp_path / "pods", obj, "rated")).lines(3000)
    held = metrics.HELD_BACK.labels("rated")._value.get()
    start(kube, region="rated", container_lines_per_second=2000, turn_bytes=4096)
    wait_for(lambda: len(archived(store, obj, "rated")) == 3000, what="every line")
    # 3,000 lines at 2,000 a second after a 2,000 burst: the container's turns were held back
    assert metrics.HELD_BACK.labels("rated")._value.get() > held
    assert numbers(archived(store, obj, "rated")) == list(range(3000))


def test_a_pod_whose_log_the_node_deleted_before_any_was_read(start, store, tmp_path, monkeypatch):
    from gateway.collector import tail
    monkeypatch.setattr(tail, "GONE_MARKER_SECONDS", 0.1)
    kube = FakeKube()
    obj = on_node(pod("p", "gone", phase="Succeeded", containers={"gone": {
        "state": {"terminated": {"exitCode": 0, "startedAt": "2026-12-07T10:00:00Z"}}, "restartCount": 0}}), "u")
    kube.put(obj)
    assert not os.path.exists(tmp_path / "pods")
    start(kube)
    wait_for(lambda: archived(store, obj, "gone"), what="the marker")
    assert archived(store, obj, "gone") == [
        "[tenx-gateway: lines may be lost here: the node deleted the container's log before the collector read "
        "any of it]"]


def succeeded(obj: dict) -> dict:
    name = obj["spec"]["containers"][0]["name"]
    done = pod(obj["metadata"]["name"], name, phase="Succeeded", containers={name: {
        "state": {"terminated": {"exitCode": 0}}, "restartCount": 0}})
    return on_node(done, obj["metadata"]["uid"])


def test_a_container_read_to_its_end_whose_files_are_gone_is_no_gap(start, store, tmp_path):
    kube = FakeKube()
    obj = on_node(pod("p", "whole"), "u")
    kube.put(obj)
    FakeContainerLog(container_dir(tmp_path / "pods", obj, "whole")).lines(5)
    first = start(kube, region="whole")
    wait_for(lambda: len(archived(store, obj, "whole")) == 5, what="the lines")
    kube.put(succeeded(obj))
    key = ContainerKey("tenx-alice", "whole", "p", "whole")
    wait_for(lambda: (store.resume_point(key).position or {}).get("attempt") == 1, what="the attempt's end committed")
    kill(first)
    shutil.rmtree(tmp_path / "pods")  # the kubelet removes the pod's logs with the pod
    rounds(start(kube, region="whole"))
    assert numbers(archived(store, obj, "whole")) == list(range(5))
    assert store.resume_point(key).position["attempt"] == 1  # met again, not read again


def test_files_gone_before_a_restarted_collector_read_the_rest_are_a_gap(start, store, tmp_path):
    kube = FakeKube()
    obj = on_node(pod("p", "cut"), "u")
    kube.put(obj)
    kubelet = FakeContainerLog(container_dir(tmp_path / "pods", obj, "cut"))
    kubelet.lines(5)
    first = start(kube, region="cut")
    wait_for(lambda: len(archived(store, obj, "cut")) == 5, what="the first lines")
    kill(first)
    kubelet.lines(5)
    kube.put(succeeded(obj))
    shutil.rmtree(tmp_path / "pods")
    start(kube, region="cut")
    wait_for(lambda: len(archived(store, obj, "cut")) == 6, what="the marker")
    assert archived(store, obj, "cut")[5] == ("[tenx-gateway: lines may be lost here: the node deleted the container's "
                                              "log files before the collector read them]")


def test_an_attempt_first_seen_in_a_rotated_file_long_after_it_started_is_a_gap(start, store, tmp_path):
    kube = FakeKube()
    obj = on_node(pod("p", "late", containers={"late": {
        "state": {"running": {"startedAt": "2026-12-07T10:00:00Z"}}, "restartCount": 0}}), "u")
    kube.put(obj)
    kubelet = FakeContainerLog(container_dir(tmp_path / "pods", obj, "late"), max_files=2)
    for _ in range(5):  # five seconds of lines, the first three in files deleted before any collector ran
        kubelet.lines(1000, step_ns=1_000_000)
        kubelet.rotate()
    start(kube, region="late")
    wait_for(lambda: len(archived(store, obj, "late")) == 1001, what="the marker and the last file's lines")
    marker, *rest = archived(store, obj, "late")
    estimate = int(marker.split()[2].replace(",", ""))
    assert 3500 <= estimate <= 4500 and "lines lost here" in marker  # 4,000 lines are gone
    assert numbers(rest) == list(range(4000, 5000))


def test_a_round_writes_the_containers_with_fewest_lines_first_each_in_its_order():
    from gateway.collector.node import Record, _fair_order
    from gateway.collector.tail import Batch

    flood, neighbour = object(), object()
    record = Record({"metadata": {}}, deleted=False)

    def batch(tail, lines, attempt=1):
        return Batch(tail, 0, [f"{attempt}-{n}" for n in range(lines)], attempt, {})

    merged = [batch(flood, 2600), record, batch(flood, 5, attempt=2), batch(neighbour, 3), ("beat", None)]
    ordered = _fair_order(merged)
    assert ordered[0] is record  # a record first: never archived later than the lines read after it
    assert [(item.tail, item.attempt) for item in ordered[1:4]] == [(neighbour, 1), (flood, 1), (flood, 2)]
    assert ordered[4:] == [("beat", None)]
