"""One container of a pod on this node: its attempts' files (``files.AttemptLog``), read in order, joined into
lines (``cri.Joiner``), handed to the writer as batches that carry the position to commit with them.

The position (attempt, file fingerprint, offset, the halves of lines not yet whole) is committed with the lines it
covers, in the same transaction, so a collector killed at any moment starts again exactly after the last committed
line: nothing lost, nothing twice. A stream that another source wrote (the apiserver collector, before a switch to
node mode) has lines but no position: the files are then read from the start of its last attempt and the lines
the archive holds already are dropped by their stamps, as the apiserver collector resumes.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from ..store import ContainerKey, LogLine, ResumePoint
from ..timefmt import NS
from .cri import Joiner
from .files import AttemptLog, Position
from .writer import lost_marker

POSITION_VERSION = 1
COMPLETE_SETTLE_SECONDS = 0.5  # a finished attempt's last bytes may reach its file just after the kubelet says so
GONE_MARKER_SECONDS = 10.0  # a pod gone, its files never found: its log was deleted before it was read
FIRST_LINE_SECONDS = 2.0  # an attempt's first line read this long after it started, from a rotated file: a gap
DELETED = "the node deleted the container's log files before the collector read them"


@dataclass
class Batch:
    """Lines of one attempt of one container, and the position after them."""
    tail: ContainerTail
    generation: int
    lines: list[LogLine]
    attempt: int
    position: dict[str, Any]


@dataclass
class ContainerState:
    """What the pod says of the container now."""
    restarts: int = 0
    terminated: bool = False  # the current attempt has ended
    pod_over: bool = False  # the pod is gone or in a terminal phase: no attempt will follow
    started_ns: int | None = None  # the current attempt's start


class ContainerTail:
    def __init__(self, key: ContainerKey, directory: str, *, max_line_bytes: int | None):
        self.key, self.directory = key, directory
        self._max_line_bytes = max_line_bytes
        self.state = ContainerState()
        self.generation = 0
        self.committed_next = 0  # the writer's: the number the archive gives the next line
        self.reset_requested = False
        self.finished = False
        self._loaded = False

    # -- set up from the archive -----------------------------------------------------------------------------

    def load(self, point: ResumePoint) -> None:
        """Start after what the archive holds."""
        self.generation += 1
        self.committed_next = point.next_seq
        self.joiner = Joiner(self._max_line_bytes)
        self._log: AttemptLog | None = None
        self._start: Position | None = None
        self._skip: ResumePoint | None = None
        self._last_ns = point.last_ts_ns
        self._gone_since: float | None = None
        self._complete_since: float | None = None
        self._gap_pending = False
        self._gap_rate: float | None = None  # lines a second after a gap, measured ahead in the files
        self.attempt: int | None = None
        position = point.position if (point.position or {}).get("v") == POSITION_VERSION else None
        if position is not None:
            self.attempt = position["attempt"]
            if position.get("file"):
                self._start = Position(position["file"], position["offset"])
            self.joiner.restore(position.get("pending"), point.last_ts_ns or 0)
        elif point.last_ts_ns is not None:
            self.attempt = point.attempt or 0
            self._skip = point
        self.reset_requested = False
        self._loaded = True

    @property
    def loaded(self) -> bool:
        return self._loaded and not self.reset_requested

    # -- reading -----------------------------------------------------------------------------------------------

    def read(self, max_bytes: int) -> Batch | None:
        """The next lines (at most about ``max_bytes`` of the files), or None when there is nothing new."""
        if self.finished:
            return None
        log = self._attempt_log()
        if log is None:
            return None
        if not log.found and self._past_the_last_attempt():
            self.finished = True  # the attempt before was the pod's last: nothing more to read or commit
            return None
        log.complete = self._complete()
        if (log.gap is not None or self._gap_pending or log.began_rotated) and self._gap_rate is None:
            self._gap_rate = self._rate_ahead(log)  # before the position moves past the lines it is measured on
        data = log.read(max_bytes)
        lines = self.joiner.feed(data) if data else []
        attempt = self.attempt
        if log.gap is not None and not self._gap_pending:
            self._gap_pending, log.gap = True, None
        if log.began_rotated and lines and self._last_ns is None and self._skip is None:
            log.began_rotated = False
            lines = self._lost_before_first(lines)
        if self._gap_pending and (lines or log.complete):
            lines.insert(0, lost_marker(lines[0].ts_ns if lines else (self._last_ns or 0), self._estimate(lines),
                                        DELETED))
            self._gap_pending = False
        next_position = None
        if not data and not log.files and log.complete:
            if not log.found and self._last_ns is not None and self.state.restarts >= (attempt or 0):
                lines.insert(0, lost_marker(self._last_ns, None, DELETED))  # its files went before they were seen
            lines += self.joiner.flush()
            next_position = self._next_attempt()
        if self._skip is not None:
            lines = self._unseen(lines)
        if not lines:
            if next_position is None:
                return None
            # the attempt is over and nothing is left to archive: the position alone moves on, so that a restart
            # does not look for this attempt's files (the kubelet deletes them with the pod) and mark a gap
            return Batch(self, self.generation, [], attempt, next_position)  # type: ignore[arg-type]
        self._last_ns = lines[-1].ts_ns
        if next_position is None:
            position = log.position
            next_position = {"v": POSITION_VERSION, "attempt": attempt,
                             "file": position.file if position else None,
                             "offset": position.offset if position else 0}
            pending = self.joiner.state()
            if pending:
                next_position["pending"] = pending
        return Batch(self, self.generation, lines, attempt, next_position)  # type: ignore[arg-type]

    def _past_the_last_attempt(self) -> bool:
        return (self.attempt is not None and self.state.pod_over and self.attempt > self.state.restarts
                and _first_attempt(self.directory, after=self.attempt - 1) is None)

    def _attempt_log(self) -> AttemptLog | None:
        if self._log is not None:
            return self._log
        if self._past_the_last_attempt():
            self.finished = True  # read to its end before (a restarted collector met it again)
            return None
        if self.attempt is None:
            first = _first_attempt(self.directory)
            if first is None:
                return self._never_found()
            if first > 0 and self.state.restarts >= first:
                self._gap_pending = True  # the earlier attempts' files are gone: they were never read
            self.attempt = first
        self._log = AttemptLog(self.directory, self.attempt, self._start)
        self._start = None
        self._log.refresh()
        if not self._log.found:
            later = _first_attempt(self.directory, after=self.attempt)
            if later is not None:  # this attempt's files are gone, a later attempt's are there
                self._log.close()
                self._log, self.attempt, self._gap_pending = None, later, True
                return self._attempt_log()
        return self._log

    def _never_found(self) -> None:
        """No file of this container: not written yet, or deleted with the pod before it was read."""
        if self.state.pod_over and self._last_ns is None:
            now = time.monotonic()
            self._gone_since = self._gone_since or now
            if now - self._gone_since >= GONE_MARKER_SECONDS:
                self.finished = True  # reported by the caller (``gone_unread``)
        return None

    @property
    def gone_unread(self) -> bool:
        """Finished without a single file found while its pod had started it."""
        return self.finished and self._last_ns is None and self.state.started_ns is not None

    def _complete(self) -> bool:
        """The current attempt's output is over, for at least the settle time."""
        state = self.state
        over = state.pod_over or state.restarts > (self.attempt or 0) or (
            state.restarts == self.attempt and state.terminated)
        if not over:
            self._complete_since = None
            return False
        now = time.monotonic()
        self._complete_since = self._complete_since or now
        return now - self._complete_since >= COMPLETE_SETTLE_SECONDS

    def _next_attempt(self) -> dict[str, Any]:
        """After the current attempt: the next one if it exists or will, else the container is done."""
        assert self._log is not None and self.attempt is not None
        self._log.close()
        self._log = None
        self._complete_since = None
        self.attempt += 1
        if self.state.pod_over and _first_attempt(self.directory, after=self.attempt - 1) is None:
            self.finished = True
        return {"v": POSITION_VERSION, "attempt": self.attempt, "file": None, "offset": 0}

    def _unseen(self, lines: list[LogLine]) -> list[LogLine]:
        """Drop lines the archive holds already, by their stamps (a stream another source wrote)."""
        point = self._skip
        assert point is not None and point.last_ts_ns is not None
        kept = []
        for index, line in enumerate(lines):
            if line.ts_ns < point.last_ts_ns:
                continue
            if line.ts_ns == point.last_ts_ns and point.lines_at_last_ts:
                point = ResumePoint(point.last_ts_ns, point.lines_at_last_ts - 1)
                continue
            kept = lines[index:]
            self._skip = None
            break
        else:
            self._skip = point
        return kept

    def _lost_before_first(self, lines: list[LogLine]) -> list[LogLine]:
        """The first lines ever read of an attempt, from a rotated file: the kubelet may have deleted the files
        before it while no collector ran. Marked when the attempt had started well before its first line here."""
        started = self.state.started_ns
        if started is None or lines[0].ts_ns - started < FIRST_LINE_SECONDS * NS:
            return lines
        return [lost_marker(lines[0].ts_ns, self._estimate(lines, since=started), DELETED), *lines]

    def _estimate(self, lines: list[LogLine], since: int | None = None) -> int | None:
        """Lines lost between the last archived line (or ``since``) and ``lines``: the time between them at the
        rate the lines after the gap were written, measured over up to 16 MiB of them (a flood's rate is steady
        enough to say "about"; a batch alone, a burst, is not); None if that cannot be told."""
        since = self._last_ns if since is None else since
        rate, self._gap_rate = self._gap_rate, None
        if rate is None and len(lines) >= 10 and lines[-1].ts_ns - lines[0].ts_ns > NS // 1000:
            rate = (len(lines) - 1) / ((lines[-1].ts_ns - lines[0].ts_ns) / NS)
        if since is None or not lines or rate is None:
            return None
        return max(0, round((lines[0].ts_ns - since) / NS * rate))

    @staticmethod
    def _rate_ahead(log: AttemptLog) -> float | None:
        count, first, last = log.lines_ahead()
        if count < 10 or first is None or last is None or last - first <= NS // 1000:
            return None
        return (count - 1) / ((last - first) / NS)

    def backlog(self) -> int:
        log = self._log
        if log is None:
            return 0
        return log.backlog()

    def close(self) -> None:
        if self._loaded and self._log is not None:
            self._log.close()
            self._log = None


def _first_attempt(directory: str, after: int = -1) -> int | None:
    """The lowest attempt above ``after`` that has a file in ``directory``."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return None
    attempts = {int(name.split(".", 1)[0]) for name in names if name.split(".", 1)[0].isdigit()}
    later = [n for n in attempts if n > after]
    return min(later) if later else None
