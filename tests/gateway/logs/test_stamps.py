"""Parsing the apiserver's timestamped lines, and resuming without loss or duplicates."""
from gateway.logs.stamps import parse_stamped, since_time, unseen
from gateway.timefmt import stamp_ns
from gateway.store.base import LogLine, ResumePoint

BASE = 1_795_719_953 * 10**9  # 2026-11-26T19:05:53Z


def test_stamps_keep_nanoseconds():
    assert stamp_ns("2026-11-26T19:05:53.123456789Z") == BASE + 123_456_789
    assert stamp_ns("2026-11-26T19:05:53.1Z") == BASE + 100_000_000
    assert stamp_ns("2026-11-26T19:05:53Z") == BASE


def test_offset_stamps_and_garbage():
    assert stamp_ns("2026-11-27T03:05:53.5+08:00") == BASE + 500_000_000
    assert stamp_ns("garbage") is None
    assert stamp_ns("2026-11-26T19:05:53.12x3Z") is None
    assert stamp_ns("2026-11-26T19:05:53") is None


def test_parse_stamped_keeps_spaces_and_empty_text():
    lines = list(parse_stamped(["2026-11-26T19:05:53Z a  b", "2026-11-26T19:05:53Z ", "no stamp here"]))
    assert lines == [LogLine(BASE, "a  b"), LogLine(BASE, ""), LogLine(BASE, "no stamp here")]


def test_since_time_rounds_down_to_the_second():
    assert since_time(ResumePoint(BASE + 999_999_999, 1)) == "2026-11-26T19:05:53Z"
    assert since_time(ResumePoint(None, 0)) is None


def test_unseen_drops_what_the_store_holds():
    stream = [LogLine(BASE, "old"), LogLine(BASE + 5, "a"), LogLine(BASE + 5, "b"), LogLine(BASE + 5, "c"),
              LogLine(BASE + 6, "d")]
    assert [l.text for l in unseen(stream, ResumePoint(BASE + 5, 2))] == ["c", "d"]
    assert [l.text for l in unseen(stream, ResumePoint(None, 0))] == ["old", "a", "b", "c", "d"]
    assert [l.text for l in unseen(stream, ResumePoint(BASE + 6, 1))] == []
