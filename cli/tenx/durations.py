"""Durations as kubectl and docker take them on the command line: ``90s``, ``5m``, ``1h30m``, or bare seconds."""
from __future__ import annotations

import re

import click

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?")
_DURATION = re.compile(r"(?:([0-9]+(?:\.[0-9]*)?)h)?(?:([0-9]+(?:\.[0-9]*)?)m)?(?:([0-9]+(?:\.[0-9]*)?)s)?")


def seconds(text: str) -> float | None:
    """``1h30m`` -> 5400.0, ``90`` -> 90.0; None if it is neither a duration nor a number of seconds."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    match = _DURATION.fullmatch(text) if text else None
    if match is None:
        return None
    return sum(float(value) * _UNITS[unit] for value, unit in zip(match.groups(), "hms") if value)


class Duration(click.ParamType):
    """A positive duration, as seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        result = seconds(value)
        if result is None or result <= 0:
            self.fail(f"{value!r}: expected seconds or a duration such as 90s, 5m, 1h30m", param, ctx)
        return result


DURATION = Duration()
