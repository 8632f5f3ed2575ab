"""Where a log followed through the apiserver may have skipped lines, as far as that can be told from outside.

The kubelet serves a followed log from the container's current file; when it rotates the file, a follower that is
behind is moved on to the newest file, and the rotated files in between are never sent. What the follower sees is a
jump in the lines' stamps while it was reading late. A program that pauses while its output is read late looks the
same, so the marker says lines *may* be lost; it is written only when the follower was behind, the jump is long for
the rate the lines came at, and that rate over the jump adds up to more lines than a quiet program writes.
"""
from __future__ import annotations

import collections

from ..store import LogLine
from ..timefmt import NS
from .writer import LostLines, lost_marker

WHY = "the log followed through the apiserver fell behind the kubelet's log rotation (a pause of the program looks " \
      "the same)"
BEHIND_SECONDS = 2.0  # the line before the jump was read at least this long after it was written
MIN_JUMP_SECONDS = 1.0
MIN_LOST = 1000  # the kubelet rotates at containerLogMaxSize (10 MiB by default): thousands of lines at least
WINDOW = 512  # lines whose stamps give the rate


class SkipDetector:
    def __init__(self) -> None:
        self._stamps: collections.deque[int] = collections.deque(maxlen=WINDOW)
        self._behind = 0.0

    def check(self, line: LogLine, read_at: float) -> LostLines | None:
        """A marker to store before ``line`` (read at ``read_at``, epoch seconds), or None."""
        stamps = self._stamps
        marker = None
        if stamps and self._behind >= BEHIND_SECONDS:
            jump = (line.ts_ns - stamps[-1]) / NS
            span = (stamps[-1] - stamps[0]) / NS
            if jump >= MIN_JUMP_SECONDS and span > 0 and len(stamps) > 1:
                rate = (len(stamps) - 1) / span
                lost = round(jump * rate)
                if lost >= MIN_LOST and jump > 20 * span / (len(stamps) - 1):
                    marker = lost_marker(line.ts_ns, lost, WHY)
                    stamps.clear()
        stamps.append(line.ts_ns)
        self._behind = read_at - line.ts_ns / NS
        return marker
