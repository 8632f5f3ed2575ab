"""gateway/logs/reader.py: one instance's lines in the archive's numbering: the archive up to its end, then the
pod's lines after it (never the pod by offset once the archive holds anything: the kubelet rotates a busy log); the
pod alone only while nothing is archived; the archive alone once the pod is gone."""
from __future__ import annotations

import contextlib
from itertools import islice

from gateway.logs.instance import Instance
from gateway.logs.reader import InstanceLog, Start
from gateway.store import ResumePoint
from gateway.jobs.tenancy import Tenant
from gateway.timefmt import NS, from_ns

from tests.support.fake_kube import FakeKube, pod

TENANT = Tenant("alice", "tenx-alice", "us")
T0 = 1_795_856_400 * NS  # 2026-11-28T09:00:00Z
LIVE = Instance("job-abcde", "uid", "job", "Running", {})


def stamp(ts_ns: int) -> str:
    return from_ns(ts_ns).strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{ts_ns % 1000:03d}Z"


class Archive:
    """Lines 0..held-1 of a log whose line i is stamped T0 + i ms; ``searchable``: what a search shows yet (a
    store whose searches trail its commits until ``catch_up``)."""

    def __init__(self, held: int, searchable: int | None = None):
        self.held, self.searchable, self.caught_up = held, held if searchable is None else searchable, 0

    def log_end(self, key, day=None):
        if not self.held:
            return ResumePoint(None, 0), 0
        return ResumePoint(T0 + (self.held - 1) * 1_000_000, 1, 0, self.held), self.held

    def iter_read(self, namespace, instance, container, *, day=None, offset=0, size=1000):
        yield from (f"line {i}" for i in range(offset, min(offset + size, self.searchable)))

    def catch_up(self):
        self.caught_up += 1
        self.searchable = self.held


def pod_log(first: int, last: int) -> FakeKube:
    """The pod's log: lines ``first``..``last`` (the kubelet rotated the ones before ``first`` away)."""
    kube = FakeKube()
    kube.put(pod("job-abcde", "job"))
    kube.write("tenx-alice", "job-abcde", "job",
               [(stamp(T0 + i * 1_000_000), f"line {i}") for i in range(first, last + 1)])
    return kube


def asked(kube: FakeKube) -> list[dict]:
    """What each read of the pod's log asked for."""
    return [{"timestamps": call["timestamps"], "since_time": call["since"]} for call in kube.log_calls]


def page(kube, archive, offset: int, size: int, live=LIVE) -> list[str]:
    log = InstanceLog(kube, archive, TENANT, "job", "job-abcde", live)
    with contextlib.closing(log.rows(Start(offset, None, "UTC", 65536))) as rows:
        return [text for _, text in islice(rows, size)]


def test_the_archive_then_only_the_pods_lines_after_its_end():
    kube = pod_log(first=0, last=14)
    assert page(kube, Archive(10), 8, 5) == ["line 8", "line 9", "line 10", "line 11", "line 12"]
    assert asked(kube) == [{"timestamps": True, "since_time": "2026-11-28T09:00:00Z"}]
    assert page(pod_log(0, 14), Archive(10), 12, 2) == ["line 12", "line 13"]  # past the archive's end


def test_a_rotated_pod_log_does_not_shift_the_numbering():
    """The kubelet's live log holds only its newest file (lines 900.. here): a page from 0 is still line 0."""
    assert page(pod_log(first=900, last=1200), Archive(1000), 0, 3) == ["line 0", "line 1", "line 2"]
    assert page(pod_log(first=900, last=1200), Archive(1000), 999, 3) == ["line 999", "line 1000", "line 1001"]


def test_a_page_below_the_archives_end_reads_no_pod_log():
    kube = pod_log(0, 14)
    assert page(kube, Archive(100), 10, 5) == [f"line {i}" for i in range(10, 15)]
    assert asked(kube) == []


def test_a_store_whose_search_trails_its_end_is_caught_up_not_left_to_the_pod():
    archive = Archive(100, searchable=12)
    assert page(pod_log(0, 14), archive, 10, 5) == [f"line {i}" for i in range(10, 15)]
    assert archive.caught_up == 1


def test_the_pod_alone_while_nothing_is_archived_yet():
    kube = pod_log(0, 5)
    assert page(kube, Archive(0), 2, 2) == ["line 2", "line 3"]
    assert asked(kube) == [{"timestamps": False, "since_time": None}]


def test_a_gone_pods_lines_are_the_archives_alone():
    kube = pod_log(0, 0)
    assert page(kube, Archive(50), 48, 5, live=None) == ["line 48", "line 49"]
    assert asked(kube) == []
