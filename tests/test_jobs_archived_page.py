"""gateway/jobs.archived_page: a running container's page from the archive up to the collector's watermark, and
when it must be read from the pod instead."""
from __future__ import annotations

from gateway import jobs
from gateway.config import Settings
from gateway.store import ContainerKey, ResumePoint

KEY = ContainerKey("ns", "job", "job-abcde", "job")


class Archive:
    """The two calls archived_page makes of a store: where the collector stands, and a page of lines."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    def resume_point(self, key):
        return ResumePoint(last_ts_ns=1_700_000_000 * 10**9, lines_at_last_ts=1, attempt=0,
                           next_seq=len(self.lines))

    def iter_read(self, namespace, instance, container, *, day=None, offset=0, size=1000):
        yield from self.lines[offset:offset + size]  # a generator, closable as the stores' readers are


class NoPod:
    def pod_log(self, *args, **kwargs):
        raise AssertionError("the page is below the watermark: the pod's log must not be read")


def test_a_page_below_the_watermark_is_the_archives_lines():
    archive = Archive([f"line {i}" for i in range(100)])
    page = jobs.archived_page(NoPod(), archive, None, KEY, 10, 5, None, Settings())
    assert page.lines == [f"line {i}" for i in range(10, 15)] and not page.truncated


def test_a_page_holding_a_line_a_runtime_splits_is_left_to_the_pod():
    """The archive's copy of a line past the runtime's partial size holds the runtime's inner timestamps."""
    inner = "y" * 16384 + "2026-11-28T13:20:01.123456789Z " + "y" * 100
    for long_line in (inner, "\u00e9" * (jobs.PARTIAL_LINE_BYTES // 2)):  # counted in bytes, not characters
        archive = Archive(["short", long_line, "short"])
        assert jobs.archived_page(NoPod(), archive, None, KEY, 0, 3, None, Settings()) is None
    assert jobs.archived_page(NoPod(), Archive(["a", "b", "c"]), None, KEY, 0, 3, None, Settings()).lines == \
        ["a", "b", "c"]


class TrailingArchive(Archive):
    """An OpenSearch archive before its refresh: the resume point (read by id) is ahead of what searches find."""

    def __init__(self, lines: list[str], searchable: int):
        super().__init__(lines)
        self.searchable = searchable

    def iter_read(self, namespace, instance, container, *, day=None, offset=0, size=1000):
        yield from self.lines[:self.searchable][offset:offset + size]


def test_a_page_the_archive_does_not_show_whole_yet_is_left_to_the_pod():
    lines = [f"line {i}" for i in range(300)]
    for searchable in (0, 12, 14):
        assert jobs.archived_page(NoPod(), TrailingArchive(lines, searchable), None, KEY, 10, 5, None,
                                  Settings()) is None
    page = jobs.archived_page(NoPod(), TrailingArchive(lines, 15), None, KEY, 10, 5, None, Settings())
    assert page.lines == lines[10:15]
    assert jobs.archived_page(NoPod(), TrailingArchive(lines, 299), None, KEY, 250, 50, None, Settings()) is None


def test_a_page_cut_short_by_the_byte_cap_is_still_the_archives():
    lines = ["x" * 600 for _ in range(10)]
    page = jobs.archived_page(NoPod(), Archive(lines), None, KEY, 0, 10, None, Settings(log_max_bytes=1024))
    assert page is not None and page.truncated
