"""gateway/logs/text.py and stamps.py, and timefmt's days: lines from byte chunks, one day's lines, and paging, on
edge cases."""
import datetime as dt

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.logs import stamps, text as logs
from gateway.timefmt import day_bounds

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
    assert day_bounds(dt.date(2015, 12, 29), "UTC") == (
        dt.datetime(2015, 12, 29, tzinfo=UTC), dt.datetime(2015, 12, 30, tzinfo=UTC))


def test_day_bounds_in_another_zone():
    start, end = day_bounds(dt.date(2015, 12, 29), "Asia/Shanghai")
    assert start == dt.datetime(2015, 12, 28, 16, tzinfo=UTC) and end - start == dt.timedelta(hours=24)


@pytest.mark.parametrize("day, zone", [(dt.date(9999, 12, 31), "UTC"), (dt.date(9999, 12, 31), "America/New_York"),
                                       (dt.date(1, 1, 1), "Asia/Shanghai"), (dt.date(1, 1, 1), "UTC")])
def test_day_bounds_at_the_ends_of_the_calendar_clamp_instead_of_overflowing(day, zone):
    start, end = day_bounds(day, zone)
    assert start < end
    assert list(stamps.within(["2026-11-25T00:00:00Z today"], start, end)) == []


def test_within_compares_four_digit_years():
    start, end = day_bounds(dt.date(1, 1, 1), "UTC")
    assert list(stamps.within(["0001-01-01T10:00:00Z ancient", "2026-01-01T00:00:00Z later"], start, end)) == [
        "ancient"]


def test_day_bounds_on_a_dst_change():
    start, end = day_bounds(dt.date(2026, 3, 8), "America/New_York")
    assert end - start == dt.timedelta(hours=23)


DAY = day_bounds(dt.date(2026, 11, 25), "UTC")


def test_within_keeps_the_day_and_strips_stamps():
    stamped = [
        "2026-11-24T23:59:59.999999999Z before",
        "2026-11-25T00:00:00Z first",
        "2026-11-25T12:00:00.5Z middle with  spaces",
        "2026-11-25T23:59:59.9Z last",
        "2026-11-26T00:00:00Z after",
    ]
    assert list(stamps.within(stamped, *DAY)) == ["first", "middle with  spaces", "last"]


def test_within_stops_at_the_first_line_of_the_next_day():
    def source():
        yield "2026-11-25T01:00:00Z in"
        yield "2026-11-26T00:00:01Z out"
        raise AssertionError("read past the end of the day")

    assert list(stamps.within(source(), *DAY)) == ["in"]


def test_within_converts_offset_stamps():
    stamped = ["2026-11-25T07:59:59+08:00 before", "2026-11-25T08:00:00.1+08:00 in"]
    assert list(stamps.within(stamped, *DAY)) == ["in"]


def test_within_keeps_an_unstamped_line_with_its_predecessor():
    stamped = ["garbage early", "2026-11-25T01:00:00Z a", "garbage", "2026-11-25T01:00:01Z b"]
    assert list(stamps.within(stamped, *DAY)) == ["a", "garbage", "b"]


def test_empty_message_lines_survive():
    assert list(stamps.within(["2026-11-25T01:00:00Z ", "2026-11-25T01:00:00Z"], *DAY)) == ["", ""]


@pytest.mark.parametrize("offset, size, expected", [(0, 2, ["l0", "l1"]), (3, 10, ["l3", "l4"]), (5, 1, [])])
def test_day_then_page(offset, size, expected):
    chunks = [f"2026-11-25T00:00:0{i}.{i}Z l{i}\n".encode() for i in range(5)]
    assert logs.page(stamps.within(logs.iter_lines(chunks), *DAY), offset, size) == expected


def test_lines_longer_than_the_cap_are_cut_and_the_rest_skipped():
    assert list(logs.iter_lines([b"abcdef\nxy\n"], 3)) == ["abc", "xy"]
    assert list(logs.iter_lines([b"ab", b"cdef", b"gh\nij", b"klmnop"], 3)) == ["abc", "ijk"]
    assert list(logs.iter_lines([b"\n\n"], 3)) == ["", ""]


def test_a_line_without_end_never_holds_more_than_the_cap():
    def endless():
        while True:
            yield b"x" * 65536

    assert next(logs.iter_lines(_take(endless(), 100), 10)) == "x" * 10


def _take(chunks, count):
    for _, chunk in zip(range(count), chunks):
        yield chunk


def test_capped_keeps_whole_lines_within_the_json_byte_budget():
    # '["aa","bb"]' is 11 bytes, '["aa","bb","cc"]' 16: the cap is on what is sent
    assert logs.capped(["aa", "bb", "cc"], 11) == logs.Page(["aa", "bb"], truncated=True)
    assert logs.capped(["aa", "bb", "cc"], 15) == logs.Page(["aa", "bb"], truncated=True)
    assert logs.capped(["aa", "bb"], 11) == logs.Page(["aa", "bb"], truncated=False)
    assert logs.capped([], 4) == logs.Page([], truncated=False)


def test_capped_counts_utf8_bytes_and_cuts_a_lone_long_line_on_a_character():
    assert logs.capped(["日志", "x"], 10) == logs.Page(["日志"], truncated=True)  # '["日志"]' is 10 bytes
    assert logs.capped(["日志x"], 7) == logs.Page(["日"], truncated=True)


def test_capped_counts_escapes_as_sent():
    """Control characters escape to 6 bytes each: a 1,000-byte cap once sent 5,998."""
    page = logs.capped(["\x01" * 1000], 1000)
    sent = len(orjson.dumps(page.lines))
    assert page.truncated and 990 <= sent <= 1000
    page = logs.capped(['"\\' * 300, "x"], 1000)
    assert len(orjson.dumps(page.lines)) <= 1000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=300)), st.integers(min_value=4, max_value=2000))
def test_capped_never_sends_more_than_the_cap(lines, cap):
    page = logs.capped(lines, cap)
    assert len(orjson.dumps(page.lines)) <= cap
    assert page.truncated == (page.lines != lines)


def test_page_capped_stops_pulling_once_over_budget():
    pulled = []

    def source():
        for i in range(1_000_000):
            pulled.append(i)
            yield f"{i:04d}"

    # '["0010","0011","0012"]' is 22 bytes
    assert logs.page_capped(source(), 10, 1000, 22) == logs.Page(["0010", "0011", "0012"], truncated=True)
    assert len(pulled) == 14


@pytest.mark.parametrize("count, expected", [(0, ["a", "b", "c"]), (1, ["b", "c"]), (2, ["c"]), (3, []), (9, [])])
def test_skip_lines_across_chunk_boundaries(count, expected):
    chunks = [b"a\nb", b"", b"\nc", b"\n"]
    assert list(logs.iter_lines(logs.skip_lines(chunks, count))) == expected


def test_skip_lines_keeps_a_last_line_without_newline():
    assert list(logs.iter_lines(logs.skip_lines([b"1\n2\n3"], 2))) == ["3"]


# -- since and timestamps: stamped rows (ts_ns, prefix, text) ------------------------------------------------------

S = 1_000_000_000


def rows(*stamps_and_texts):
    return [(ts, "", text) for ts, text in stamps_and_texts]


def test_since_seek_skips_only_the_leading_older_rows():
    skipped, rest = logs.since_seek(rows((1 * S, "a"), (2 * S, "b"), (3 * S, "c"), (2 * S, "late")), 2 * S)
    assert skipped == 1 and [text for _, _, text in rest] == ["b", "c", "late"]  # a seek, not a filter
    skipped, rest = logs.since_seek(rows((1 * S, "a")), 5 * S)
    assert skipped == 1 and list(rest) == []
    skipped, rest = logs.since_seek(rows((1 * S, "a")), None)
    assert skipped == 0 and len(list(rest)) == 1


def test_since_seek_stops_pulling_at_the_first_recent_row():
    pulled = []

    def source():
        for i in range(10**6):
            pulled.append(i)
            yield (i * S, "", str(i))
    skipped, rest = logs.since_seek(source(), 3 * S)
    assert skipped == 3 and next(rest)[2] == "3" and len(pulled) == 4


def test_stamped_page_counts_from_where_since_moved_it_and_stamps_lines():
    stamped = rows((1 * S, "a"), (2 * S + 5, "b"), (3 * S, "c"), (4 * S, "d"))
    page = logs.stamped_page(stamped, 10, 2, 2 * S, True, 10_000)
    assert page.lines == ["1970-01-01T00:00:02.000000005Z b", "1970-01-01T00:00:03.000000000Z c"]
    assert page.first == 11 and not page.truncated
    plain = logs.stamped_page(stamped, 10, 10, None, False, 10_000)
    assert plain.lines == ["a", "b", "c", "d"] and plain.first is None
    nothing_recent = logs.stamped_page(stamped, 10, 2, 9 * S, True, 10_000)
    assert nothing_recent.lines == [] and nothing_recent.first == 14  # where the next line will be


def test_stamped_page_puts_the_stamp_after_a_prefix_and_keeps_the_byte_cap():
    stamped = [(S, "[job-abcde] ", "x" * 40), (S, "[job-abcde] ", "y")]
    page = logs.stamped_page(stamped, 0, 5, None, True, 90)
    assert page.lines == ["[job-abcde] 1970-01-01T00:00:01.000000000Z " + "x" * 40] and page.truncated


def test_stamped_within_keeps_the_days_rows_and_stops_after_it():
    start, end = day_bounds(dt.date(2026, 11, 28), "UTC")
    day = int(start.timestamp()) * S
    stamped = [(day - 1, "", "before"), (day, "", "first"), (day + 86_399 * S, "", "last"),
               (day + 86_400 * S, "", "next day"), (day, "", "never read")]
    assert [text for _, _, text in stamps.stamped_within(stamped, start, end)] == ["first", "last"]
