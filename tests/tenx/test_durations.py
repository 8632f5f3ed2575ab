"""Durations as kubectl and docker users type them (wait --timeout)."""
import pytest

from tenx.durations import seconds


@pytest.mark.parametrize("text, value", [("90", 90.0), ("2.5", 2.5), ("90s", 90.0), ("5m", 300.0),
                                         ("1h30m", 5400.0), ("1.5h", 5400.0), ("1h0m1s", 3601.0)])
def test_durations(text, value):
    assert seconds(text) == value


@pytest.mark.parametrize("text", ["", "x", "-3", "1h-3", "5 m", "1d", "m"])
def test_not_durations(text):
    assert seconds(text) is None
