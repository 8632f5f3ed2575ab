"""The one way a collector writes lines into the archive, whichever source read them (node files or the
apiserver's log follow): the append with its expected next line number, the metrics, the lag, and the marker line
that stands where lines were lost.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from ..store import ContainerKey, LogLine, LogStore
from ..timefmt import NS
from . import metrics

LOST_TEXT = "[tenx-gateway: about {count} lines lost here: {why}]"
LOST_UNKNOWN_TEXT = "[tenx-gateway: lines may be lost here: {why}]"
_LAG_SAMPLES = 64  # lines of a batch whose lag the histogram sees (every line would cost more than the append)


@dataclass(frozen=True)
class LostLines(LogLine):
    """A marker line: ``count`` lines (None: an unknown number) were lost here before they were read."""
    count: int | None = None


def lost_marker(ts_ns: int, count: int | None, why: str) -> LostLines:
    """The line the archive keeps where lines were lost before they were read; it takes a number of its own, so
    the lines after it keep their order and ``from``/``size`` count it."""
    text = LOST_TEXT.format(count=f"{count:,}", why=why) if count else LOST_UNKNOWN_TEXT.format(why=why)
    return LostLines(ts_ns, text, count)


class Writer:
    """Appends for one region, counted; keeps the largest lag seen since ``take_lag``."""

    def __init__(self, store: LogStore, region: str):
        self.store, self.region = store, region
        self._lines = metrics.LINES.labels(region)
        self._lag = metrics.LAG.labels(region)
        self._max_lag = 0.0

    def append(self, key: ContainerKey, lines: Sequence[LogLine], *, attempt: int, expect_next: int,
               fence: int | None = None, position: dict[str, Any] | None = None) -> int:
        """Append ``lines`` as the stream's lines ``expect_next`` on; returns the next number after them. Lost-lines
        markers among them are counted once committed. ``StreamMoved`` if someone else appended meanwhile,
        ``Deposed`` if a newer leader holds the stream."""
        if not lines and position is None:
            return expect_next
        self.store.append(key, lines, attempt=attempt, fence=fence, expect_next=expect_next, position=position)
        committed = time.time()
        for line in lines:
            if type(line) is LostLines:
                metrics.GAPS.labels(self.region).inc()
                metrics.LOST.labels(self.region).inc(line.count or 0)
        self._lines.inc(len(lines))
        step = max(1, len(lines) // _LAG_SAMPLES)
        for line in lines[::step]:
            self._lag.observe(max(0.0, committed - line.ts_ns / NS))
        if lines:
            self._max_lag = max(self._max_lag, committed - lines[0].ts_ns / NS)
        return expect_next + len(lines)

    def take_lag(self) -> float:
        """The largest lag (seconds from a line's stamp to its commit) since the last call."""
        lag, self._max_lag = self._max_lag, 0.0
        return max(0.0, lag)
