"""How the gateway writes and reads time: Kubernetes' RFC 3339 stamps (``metav1.Time`` in whole seconds,
``MicroTime`` with microseconds, log line stamps with nanoseconds) and the original API's log dates."""
from __future__ import annotations

import datetime as dt
import functools

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
