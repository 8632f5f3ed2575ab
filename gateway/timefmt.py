"""How the gateway writes and reads time: Kubernetes' RFC 3339 stamps (``metav1.Time`` in whole seconds,
``MicroTime`` with microseconds, log line stamps with nanoseconds), the original API's log dates, and the calendar
days of the log timezone that those dates name (``day_bounds``, ``DayClock``)."""
from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
NS = 1_000_000_000  # nanoseconds per second
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
LOG_DATE_FORMAT = "%Y.%m.%d"  # the logs call's ``date=2015.12.29``, as the original's daily indices were named


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def rfc3339(moment: dt.datetime) -> str:
    """``2026-11-28T09:00:00Z``: what Kubernetes writes for a ``metav1.Time`` (and accepts as ``sinceTime``)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"  # 4-digit years


def rfc3339_micro(moment: dt.datetime) -> str:
    """``2026-11-28T09:00:00.123456Z``: a ``metav1.MicroTime``, as in a Lease's renewTime."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def rfc3339_nano(ns: int) -> str:
    """``2026-11-28T09:00:00.123456789Z``: a log line's stamp as ``timestamps=true`` shows it, always nine digits
    (kubelets trim trailing zeros; a fixed width sorts and aligns)."""
    seconds, fraction = divmod(ns, NS)
    return (EPOCH + dt.timedelta(seconds=seconds)).replace(tzinfo=None).isoformat() + f".{fraction:09d}Z"


def parse_rfc3339(stamp: str | None) -> dt.datetime | None:
    """An aware datetime for an RFC 3339 stamp (``Z`` or an offset; fractions past microseconds are cut), or None
    for an empty or unreadable one. A stamp without a zone is taken as UTC, as Kubernetes writes UTC."""
    if not stamp:
        return None
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def stamp_ns(stamp: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 stamp; None if it is not one. UTC stamps (what kubelets write)
    keep all nine fractional digits, since datetime keeps six and lines a few hundred nanoseconds apart must stay
    apart; others are parsed by datetime. A stamp without a zone is not a log stamp."""
    if stamp.endswith("Z"):
        whole, _, fraction = stamp[:-1].partition(".")
        if fraction and not fraction.isdigit():
            return None
        seconds = _utc_seconds(whole)
        if seconds is None:
            return None
        return seconds * NS + int(fraction[:9].ljust(9, "0"))
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return (moment - EPOCH) // dt.timedelta(microseconds=1) * 1000


@functools.lru_cache(maxsize=1024)
def _utc_seconds(whole: str) -> int | None:
    """Seconds since the epoch of 'YYYY-MM-DDTHH:MM:SS' in UTC; cached, since a second's lines share it (the
    collector parses every line of every container)."""
    try:
        moment = dt.datetime.fromisoformat(whole + "+00:00")
    except ValueError:
        return None
    return (moment - EPOCH) // dt.timedelta(seconds=1)


def from_ns(ns: int) -> dt.datetime:
    """The moment ``ns`` nanoseconds after the epoch, to the microsecond."""
    return EPOCH + dt.timedelta(microseconds=ns // 1000)


_FIRST = dt.datetime.min.replace(tzinfo=UTC)
_LAST = dt.datetime.max.replace(tzinfo=UTC)


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in ``timezone``, as UTC datetimes (a DST day is 23 or 25 hours long).

    At the ends of the calendar (0001.01.01 east of UTC, 9999.12.31) a bound that Python cannot represent is
    clamped to its first or last moment: such a day simply holds no line, rather than overflowing."""
    zone = ZoneInfo(timezone)
    return _utc_midnight(day, zone, _FIRST), (
        _LAST if day == dt.date.max else _utc_midnight(day + dt.timedelta(days=1), zone, _LAST))


def _utc_midnight(day: dt.date, zone: ZoneInfo, clamp: dt.datetime) -> dt.datetime:
    try:
        return dt.datetime.combine(day, dt.time(0), zone).astimezone(UTC)
    except OverflowError:
        return clamp


def ns_of(moment: dt.datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (to the microsecond)."""
    return (moment - EPOCH) // dt.timedelta(microseconds=1) * 1000


class DayClock:
    """Calendar days of nanosecond timestamps in one timezone; remembers the last day's bounds, since consecutive
    lines almost always share a day."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._low = self._high = 0
        self._day = dt.date.min

    def day(self, ts_ns: int) -> dt.date:
        if self._low <= ts_ns < self._high:
            return self._day
        day = dt.datetime.fromtimestamp(ts_ns // NS, self.zone).date()
        self._low, self._high = (self.day_start_ns(day), self.day_start_ns(day + dt.timedelta(days=1)))
        self._day = day
        return day

    def day_of_all(self, low_ns: int, high_ns: int) -> dt.date | None:
        """The day of every stamp from ``low_ns`` to ``high_ns``; None if they are not all of one day."""
        day = self.day(low_ns)
        return day if self._low <= high_ns < self._high else None

    def day_start_ns(self, day: dt.date) -> int:
        start = dt.datetime.combine(day, dt.time(0), self.zone)
        return int(start.timestamp()) * NS

    def stamp_day(self, stamp: str | None) -> dt.date | None:
        """The day of an RFC 3339 stamp such as a record's ``finished``; None if absent or unreadable."""
        moment = parse_rfc3339(stamp)
        return moment.astimezone(self.zone).date() if moment else None
