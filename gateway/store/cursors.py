"""Where recent job-level pages ended, so the next page starts there instead of counting from the day's start.

A job's page is ordered across its instances (day, time, stream, line), so ``from=N`` has no index of its own; a
client paging forward asks for N = the last page's end, and the store walks on from the remembered key of the
line before it. Every store keeps the same small memory, whatever its key is made of."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

CURSOR_SECONDS = 30.0  # how long a page's end is trusted as the next page's start (late lines may shift it)
CURSORS = 1024  # pages' ends kept at most (the least recently used go first)
PER_PAGE_KEY = 8  # ends kept per (namespace, job, day): a few clients paging the same job at once


class PageCursors:
    def __init__(self) -> None:
        self._known: OrderedDict[tuple, list[tuple[int, Any, float]]] = OrderedDict()
        self._lock = threading.Lock()

    def before(self, key: tuple, offset: int) -> tuple[int, Any | None]:
        """The fresh end nearest at or below ``offset``: (its position, the sort key of the line before it), or
        (0, None) to start from the beginning."""
        now = time.monotonic()
        with self._lock:
            fresh = [(n, after) for n, after, seen in self._known.get(key, [])
                     if n <= offset and now - seen < CURSOR_SECONDS]
        return max(fresh, default=(0, None), key=lambda item: item[0])

    def remember(self, key: tuple, position: int, after: Any) -> None:
        now = time.monotonic()
        with self._lock:
            known = [c for c in self._known.pop(key, []) if now - c[2] < CURSOR_SECONDS and c[0] != position]
            self._known[key] = (known + [(position, after, now)])[-PER_PAGE_KEY:]
            while len(self._known) > CURSORS:
                self._known.popitem(last=False)

    def clear(self) -> None:
        """Forget every end: lines were deleted, so positions moved."""
        with self._lock:
            self._known.clear()
