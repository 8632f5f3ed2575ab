"""The apiserver follower's guess at skipped lines: a jump in the stamps while it was reading late, at a rate that
adds up to thousands of lines; never for a program read on time, a slow program, or a short pause."""
from __future__ import annotations

from gateway.collector.skips import SkipDetector
from gateway.collector.writer import LostLines
from gateway.store import LogLine

NS = 1_000_000_000


def feed(stamps_s: list[float], lateness: float) -> list[tuple[int, LostLines]]:
    detector = SkipDetector()
    found = []
    for index, at in enumerate(stamps_s):
        marker = detector.check(LogLine(int(at * NS), f"line {index}"), at + lateness)
        if marker is not None:
            found.append((index, marker))
    return found


def flood(start: float, seconds: float, rate: int) -> list[float]:
    return [start + i / rate for i in range(int(seconds * rate))]


def test_a_jump_in_a_flood_read_late_is_marked_with_about_how_many_lines():
    stamps = flood(0, 2, 10_000) + flood(5, 1, 10_000)  # three seconds of lines skipped
    (index, marker), = feed(stamps, lateness=10)
    assert index == 20_000
    assert 29_000 <= marker.count <= 31_000
    assert marker.text.startswith("[tenx-gateway: about 3")


def test_the_same_jump_read_on_time_is_a_pause_not_a_loss():
    assert feed(flood(0, 2, 10_000) + flood(5, 1, 10_000), lateness=0.1) == []


def test_a_slow_program_read_late_is_not_marked():
    assert feed([i * 2.0 for i in range(100)], lateness=30) == []


def test_a_short_pause_is_not_marked():
    assert feed(flood(0, 1, 10_000) + flood(1.5, 1, 10_000), lateness=10) == []
