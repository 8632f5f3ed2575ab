"""gateway/store/cursors.py: the remembered ends of job pages, shared by every store."""
from __future__ import annotations

from gateway.store import cursors
from gateway.store.cursors import PageCursors


def test_the_nearest_fresh_end_at_or_below_the_offset_is_the_start():
    memory = PageCursors()
    key = ("ns", "job", None)
    memory.remember(key, 100, ("k", 100))
    memory.remember(key, 200, ("k", 200))
    assert memory.before(key, 150) == (100, ("k", 100))
    assert memory.before(key, 200) == (200, ("k", 200))
    assert memory.before(key, 99) == (0, None)
    assert memory.before(("ns", "other", None), 500) == (0, None)


def test_an_end_older_than_its_trust_is_forgotten(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(cursors.time, "monotonic", lambda: clock[0])
    memory = PageCursors()
    memory.remember(("ns", "job", None), 10, "after-10")
    clock[0] += cursors.CURSOR_SECONDS + 1
    assert memory.before(("ns", "job", None), 10) == (0, None)


def test_memory_is_bounded_per_job_and_in_all():
    memory = PageCursors()
    for n in range(1, cursors.PER_PAGE_KEY + 5):
        memory.remember(("ns", "job", None), n * 10, n)
    assert memory.before(("ns", "job", None), 10) == (0, None)  # the oldest ends went first
    for n in range(cursors.CURSORS + 10):
        memory.remember(("ns", f"job{n}", None), 5, n)
    assert memory.before(("ns", "job0", None), 5) == (0, None)
    assert memory.before(("ns", f"job{cursors.CURSORS + 9}", None), 5) == (5, cursors.CURSORS + 9)


def test_clear_forgets_everything():
    memory = PageCursors()
    memory.remember(("ns", "job", None), 10, "x")
    memory.clear()
    assert memory.before(("ns", "job", None), 10) == (0, None)
