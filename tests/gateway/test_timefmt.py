"""gateway.timefmt: one way to write and read each kind of time stamp."""
import datetime as dt

import pytest

from gateway.timefmt import NS, UTC, from_ns, parse_rfc3339, rfc3339, rfc3339_micro, stamp_ns

MOMENT = dt.datetime(2026, 11, 28, 9, 5, 7, 123456, tzinfo=UTC)


def test_rfc3339_whole_seconds_in_utc():
    assert rfc3339(MOMENT) == "2026-11-28T09:05:07Z"
    assert rfc3339(MOMENT.astimezone(dt.timezone(dt.timedelta(hours=8)))) == "2026-11-28T09:05:07Z"


def test_rfc3339_writes_four_year_digits():
    assert rfc3339(dt.datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"  # strftime's %Y writes "1"


def test_rfc3339_micro():
    assert rfc3339_micro(MOMENT) == "2026-11-28T09:05:07.123456Z"


@pytest.mark.parametrize("stamp, expected", [
    ("2026-11-28T09:05:07Z", MOMENT.replace(microsecond=0)),
    ("2026-11-28T09:05:07.123456Z", MOMENT),
    ("2026-11-28T17:05:07.123456+08:00", MOMENT),
    ("2026-11-28T09:05:07", MOMENT.replace(microsecond=0)),
    ("", None), (None, None), ("yesterday", None),
])
def test_parse_rfc3339(stamp, expected):
    assert parse_rfc3339(stamp) == expected


def test_stamp_ns_keeps_nanoseconds():
    a = stamp_ns("2026-11-28T09:05:07.123456781Z")
    b = stamp_ns("2026-11-28T09:05:07.123456789Z")
    assert b - a == 8
    assert a // NS == int(MOMENT.timestamp())
    assert stamp_ns("2026-11-28T17:05:07.123456+08:00") == int(MOMENT.timestamp()) * NS + 123456000
    assert from_ns(a) == MOMENT


@pytest.mark.parametrize("stamp", ["", "x", "2026-11-28T09:05:07.12a4Z", "2026-11-28T09:05:07", "2026-13-01T00:00:00Z"])
def test_stamp_ns_refuses_what_is_not_a_log_stamp(stamp):
    assert stamp_ns(stamp) is None


def test_rfc3339_nano_has_nine_digits_and_reads_back():
    from gateway.timefmt import rfc3339_nano, stamp_ns
    for ns in (0, 1, 1_795_856_400_123_456_789, 1_795_856_400_000_000_000, -1):
        text = rfc3339_nano(ns)
        assert len(text.split(".")[1]) == 10 and stamp_ns(text) == ns
    assert rfc3339_nano(1_795_856_400_500_000_000) == "2026-11-28T09:00:00.500000000Z"
