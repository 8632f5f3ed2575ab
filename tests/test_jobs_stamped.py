"""gateway/jobs: ``since`` and ``timestamps=true`` on the paged logs calls, from a live pod's timestamped log and from
the archive's stamped reads; ``from`` and ``size`` count the same lines as without them."""
from __future__ import annotations

import contextlib
import datetime as dt

from gateway import errors, jobs
from gateway.config import Settings
from gateway.tenancy import Tenant
from gateway.timefmt import NS

TENANT = Tenant("alice", "tenx-alice", "us")
T0 = 1_795_856_400 * NS  # 2026-11-28T09:00:00Z
STAMPS = ["2026-11-28T09:00:00Z", "2026-11-28T09:00:01.5Z", "2026-11-28T09:00:02.123456789Z", "2026-11-28T09:00:03Z",
          "2026-11-29T00:00:01Z"]
TEXTS = ["zero", "one", "two", "three", "next day"]
NS_OF = [T0, T0 + 1_500_000_000, T0 + 2 * NS + 123_456_789, T0 + 3 * NS, T0 + 54001 * NS]


def query(**given):
    return {"date": None, "offset": 0, "size": 1000, "since": None, "timestamps": False, **given}


class Kube:
    """A pod of job "job" whose container "job" logged TEXTS at STAMPS; pod_log answers as the apiserver does."""

    def __init__(self, pod_exists: bool = True):
        self.pod_exists = pod_exists
        self.asked: list[dict] = []

    def get_pod(self, namespace, name):
        if not self.pod_exists:
            raise errors.NotFound("gone")
        return {"metadata": {"name": name, "labels": {"job-name": "job"}},
                "spec": {"containers": [{"name": "job"}]}, "status": {}}

    @contextlib.contextmanager
    def pod_log(self, namespace, name, *, container, timestamps=False, since_time=None, **_):
        self.asked.append({"timestamps": timestamps, "since_time": since_time})
        kept = [(stamp, text) for stamp, text in zip(STAMPS, TEXTS) if since_time is None or stamp >= since_time]
        body = "".join(f"{stamp} {text}\n" if timestamps else f"{text}\n" for stamp, text in kept).encode()
        yield iter([body[:7], body[7:]])  # a chunk boundary inside the first stamp


class Archive:
    """The archive's calls for a pod that is gone, holding the same lines."""

    def known_instance(self, namespace, job, instance):
        return True

    def iter_read_stamped(self, namespace, instance, container, *, day=None, offset=0, size=1000):
        held = [(ts, text) for ts, text in zip(NS_OF, TEXTS)
                if day is None or dt.datetime.fromtimestamp(ts // NS, dt.timezone.utc).date() == day]
        yield from held[offset:offset + size]

    def iter_read(self, namespace, instance, container, *, day=None, offset=0, size=1000):
        for _, text in self.iter_read_stamped(namespace, instance, container, day=day, offset=offset, size=size):
            yield text

    def iter_read_job_stamped(self, namespace, job, *, day=None, offset=0, size=1000):
        for ts, text in list(self.iter_read_stamped(namespace, "", "", day=day))[offset:offset + size]:
            yield "job-abcde", ts, text

    def instances(self, namespace, job):
        return [{"name": "job-abcde"}]


def instance_page(kube, **given):
    return jobs.instance_log(kube, Archive(), TENANT, "job", "job-abcde", query(**given), Settings())


def both_sources():
    return [Kube(pod_exists=True), Kube(pod_exists=False)]


def test_timestamps_prefix_each_line_with_its_stamp_from_the_pod_and_the_archive():
    for kube in both_sources():
        page = instance_page(kube, timestamps=True, offset=1, size=2)
        assert page.lines == ["2026-11-28T09:00:01.500000000Z one", "2026-11-28T09:00:02.123456789Z two"]
        assert page.first is None
    live = Kube()
    instance_page(live, timestamps=True)
    assert live.asked == [{"timestamps": True, "since_time": None}]


def test_since_moves_the_start_on_and_says_where():
    for kube in both_sources():
        page = instance_page(kube, since=T0 + 2 * NS, size=2)
        assert page.lines == ["two", "three"] and page.first == 2
        later = instance_page(kube, since=T0 + 2 * NS, offset=3, size=10)  # from is later than since's line
        assert later.lines == ["three", "next day"] and later.first == 3
        none_yet = instance_page(kube, since=T0 + 10**6 * NS)
        assert none_yet.lines == [] and none_yet.first == 5


def test_a_days_page_counts_from_the_days_first_line():
    for kube in both_sources():
        page = instance_page(kube, date=dt.date(2026, 11, 28), since=T0 + NS, timestamps=True, offset=0, size=1)
        assert page.lines == ["2026-11-28T09:00:01.500000000Z one"] and page.first == 1
        next_day = instance_page(kube, date=dt.date(2026, 11, 29), timestamps=True)
        assert next_day.lines == ["2026-11-29T00:00:01.000000000Z next day"]


def test_without_since_or_timestamps_the_page_is_as_before():
    page = instance_page(Kube(pod_exists=False), offset=1, size=2)
    assert page.lines == ["one", "two"] and page.first is None  # the archive's plain read


def test_the_jobs_log_puts_the_stamp_after_the_instance():
    page = jobs.job_log(Kube(), Archive(), TENANT, "job", query(timestamps=True, since=T0 + 3 * NS), 10_000)
    assert page.lines == ["[job-abcde] 2026-11-28T09:00:03.000000000Z three",
                          "[job-abcde] 2026-11-29T00:00:01.000000000Z next day"]
    assert page.first == 3
