"""gateway/logs/pages.py: ``since`` and ``timestamps=true`` on the paged logs calls, from a live pod's timestamped log
(nothing of it archived yet) and from the archive's stamped reads; ``from`` and ``size`` count the same lines as
without them."""
from __future__ import annotations

import datetime as dt

from gateway import logs
from gateway.settings import Settings
from gateway.timefmt import NS

from tests.support.fake_logs import NS_OF, T0, TENANT, Archive, Kube, query

def instance_page(kube, **given):
    return logs.instance_page(kube, Archive(), TENANT, "job", "job-abcde", query(**given), Settings())


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
    page = logs.job_page(Kube(), Archive(), TENANT, "job", query(timestamps=True, since=T0 + 3 * NS), 10_000)
    assert page.lines == ["[job-abcde] 2026-11-28T09:00:03.000000000Z three",
                          "[job-abcde] 2026-11-29T00:00:01.000000000Z next day"]
    assert page.first == 3
