"""Log slicing: lines from byte chunks, one day's lines, and paging, on edge cases."""
import datetime as dt

import pytest

from gateway import logs

UTC = dt.timezone.utc


def lines(*chunks):
    return list(logs.iter_lines(chunks))


def test_lines_across_chunks():
    assert lines(b"a\nb", b"c\n", b"\nd\n") == ["a", "bc", "", "d"]


def test_empty_stream():
    assert lines() == [] and lines(b"") == []


def test_last_line_without_newline():
    assert lines(b"one\ntwo") == ["one", "two"]


def test_multibyte_character_split_between_chunks():
    encoded = "日志\n".encode()
    assert lines(encoded[:2], encoded[2:4], encoded[4:]) == ["日志"]


def test_invalid_utf8_is_replaced_not_fatal():
    assert lines(b"ok\xff\n") == ["ok\ufffd"]


def test_page_bounds():
    assert logs.page(iter(range(10)), 0, 3) == [0, 1, 2]
    assert logs.page(iter(range(10)), 8, 5) == [8, 9]
    assert logs.page(iter(range(10)), 10, 5) == []
    assert logs.page(iter(range(10)), 7, 3) == [7, 8, 9]
    assert logs.page(iter([]), 0, 5) == []


def test_page_stops_reading_once_complete():
    pulled = []

    def source():
        for i in range(1_000_000):
            pulled.append(i)
            yield i

    assert logs.page(source(), 5, 2) == [5, 6]
    assert len(pulled) == 7


def test_day_bounds_utc():
    assert logs.day_bounds(dt.date(2015, 12, 29), "UTC") == (
        dt.datetime(2015, 12, 29, tzinfo=UTC), dt.datetime(2015, 12, 30, tzinfo=UTC))


def test_day_bounds_in_another_zone():
    start, end = logs.day_bounds(dt.date(2015, 12, 29), "Asia/Shanghai")
    assert start == dt.datetime(2015, 12, 28, 16, tzinfo=UTC) and end - start == dt.timedelta(hours=24)


def test_day_bounds_on_a_dst_change():
    start, end = logs.day_bounds(dt.date(2026, 3, 8), "America/New_York")
    assert end - start == dt.timedelta(hours=23)


DAY = logs.day_bounds(dt.date(2026, 11, 25), "UTC")


def test_within_keeps_the_day_and_strips_stamps():
    stamped = [
        "2026-11-24T23:59:59.999999999Z before",
        "2026-11-25T00:00:00Z first",
        "2026-11-25T12:00:00.5Z middle with  spaces",
        "2026-11-25T23:59:59.9Z last",
        "2026-11-26T00:00:00Z after",
    ]
    assert list(logs.within(stamped, *DAY)) == ["first", "middle with  spaces", "last"]


def test_within_stops_at_the_first_line_of_the_next_day():
    def source():
        yield "2026-11-25T01:00:00Z in"
        yield "2026-11-26T00:00:01Z out"
        raise AssertionError("read past the end of the day")

    assert list(logs.within(source(), *DAY)) == ["in"]


def test_within_converts_offset_stamps():
    stamped = ["2026-11-25T07:59:59+08:00 before", "2026-11-25T08:00:00.1+08:00 in"]
    assert list(logs.within(stamped, *DAY)) == ["in"]


def test_within_keeps_an_unstamped_line_with_its_predecessor():
    stamped = ["garbage early", "2026-11-25T01:00:00Z a", "garbage", "2026-11-25T01:00:01Z b"]
    assert list(logs.within(stamped, *DAY)) == ["a", "garbage", "b"]


def test_empty_message_lines_survive():
    assert list(logs.within(["2026-11-25T01:00:00Z ", "2026-11-25T01:00:00Z"], *DAY)) == ["", ""]


@pytest.mark.parametrize("offset, size, expected", [(0, 2, ["l0", "l1"]), (3, 10, ["l3", "l4"]), (5, 1, [])])
def test_day_then_page(offset, size, expected):
    chunks = [f"2026-11-25T00:00:0{i}.{i}Z l{i}\n".encode() for i in range(5)]
    assert logs.page(logs.within(logs.iter_lines(chunks), *DAY), offset, size) == expected
