"""CRI entries -> lines: partial entries joined per stream, stamps, a cap on long lines, and what a resume keeps."""
from __future__ import annotations

from gateway.collector.cri import Joiner, entry_ns
from gateway.store import LogLine

from tests.support.kubelet_logs import entry

NS = 1_000_000_000


def test_stamps_containerd_trims_and_offsets():
    assert entry_ns(b"2026-12-07T10:00:00.123456789Z") == 1796637600 * NS + 123456789
    assert entry_ns(b"2026-12-07T10:00:00.5Z") == 1796637600 * NS + 500_000_000
    assert entry_ns(b"2026-12-07T10:00:00Z") == 1796637600 * NS
    assert entry_ns(b"2026-12-07T18:00:00.25+08:00") == 1796637600 * NS + 250_000_000
    for bad in (b"2026-12-07T10:00:00.12x4Z", b"yesterday", b"2026-13-07T10:00:00Z", b"\xff" * 25):
        assert entry_ns(bad) is None


def test_full_lines_in_order_with_their_stamps():
    data = entry(5 * NS, "one") + entry(6 * NS, "two", "stderr") + entry(7 * NS, "")
    assert Joiner().feed(data) == [LogLine(5 * NS, "one"), LogLine(6 * NS, "two"), LogLine(7 * NS, "")]


def test_partials_join_per_stream_and_take_the_last_stamp():
    data = (entry(1, "a" * 5, partial=True) + entry(2, "err", "stderr") + entry(3, "b" * 5, partial=True)
            + entry(4, "c"))
    assert Joiner().feed(data) == [LogLine(2, "err"), LogLine(4, "aaaaabbbbbc")]


def test_a_line_split_across_feeds_and_a_multibyte_character_split_across_entries():
    joiner = Joiner()
    word = "héllo".encode()
    assert joiner.feed(entry(1, word[:2], partial=True)) == []
    assert joiner.feed(entry(2, word[2:])) == [LogLine(2, "héllo")]


def test_an_unfinished_line_is_a_line_when_the_attempt_ends():
    joiner = Joiner()
    assert joiner.feed(entry(1, "done", partial=True)) == []
    assert joiner.flush() == [LogLine(1, "done")]
    assert joiner.flush() == []


def test_a_line_past_the_cap_is_cut_and_its_rest_skipped():
    joiner = Joiner(max_line_bytes=8)
    data = entry(1, "12345", partial=True) + entry(2, "67890", partial=True) + entry(3, "abc")
    assert joiner.feed(data) == [LogLine(3, "12345678")]


def test_a_foreign_line_is_kept_with_the_last_stamp():
    assert Joiner().feed(entry(9, "x") + b"not an entry\n") == [LogLine(9, "x"), LogLine(9, "not an entry")]


def test_unfinished_lines_survive_a_resume():
    first = Joiner()
    first.feed(entry(1, "ab", partial=True) + entry(2, "other", "stderr"))
    saved = first.state()
    assert saved == {"stdout": "ab"}
    second = Joiner()
    second.restore(saved, 2)
    assert second.feed(entry(3, "c")) == [LogLine(3, "abc")]
    assert Joiner().state() is None


def test_invalid_utf8_is_replaced_not_fatal():
    assert Joiner().feed(entry(1, b"\xff\xfeok")) == [LogLine(1, "\ufffd\ufffdok")]
