"""The log archive's interface, and the pure line numbering both stores share.

Pod logs vanish with the pod, so a collector appends every container's lines here and the Jobs API pages through
them later. Each line gets ``seq`` (its 0-based number in the container's whole log) and ``day``/``day_seq`` (its
calendar day in the store's timezone and its 0-based number within that day), so that a page of a day is one
indexed range read however large the log grows.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence

from ..timefmt import NS, DayClock


@dataclass(frozen=True)
class ContainerKey:
    """One container of one instance (pod) of one job; (namespace, instance, container) alone is unique."""
    namespace: str
    job: str
    instance: str
    container: str


@dataclass(frozen=True)
class LogLine:
    ts_ns: int  # nanoseconds since the epoch, UTC (kubelet's RFC 3339 stamp)
    text: str


@dataclass(frozen=True)
class ResumePoint:
    """Where a broken log stream picks up: ask the apiserver for lines since ``last_ts_ns`` (whole seconds), drop
    lines older than ``last_ts_ns``, and drop the first ``lines_at_last_ts`` lines stamped exactly ``last_ts_ns``.

    ``attempt`` is the container attempt (its restartCount) the last stored line came from, and ``next_seq`` the
    number the next line gets: an append that expects it fails if another writer appended in between.
    ``position`` is where in its source the writer stopped, as it gave it with those lines (the node collector's
    file and offset), committed in the same transaction; None if the writer gave none."""
    last_ts_ns: int | None
    lines_at_last_ts: int
    attempt: int | None = None
    next_seq: int = 0
    position: dict[str, Any] | None = None


class Deposed(Exception):
    """The write came from a collector whose fencing token is older than one already used on this stream: a
    newer leader took over, and this one must stop writing."""


class StreamMoved(Exception):
    """Another writer appended to the stream since the caller read its resume point: re-read and resume."""


@dataclass(frozen=True)
class StreamState:
    """A container's numbering so far, kept beside its lines so an append never scans them."""
    next_seq: int = 0
    day: dt.date | None = None
    next_day_seq: int = 0
    last_ts_ns: int | None = None
    lines_at_last_ts: int = 0


# A numbered line: (seq, day, day_seq, ts_ns, text). A plain tuple: an append makes one per line.
Row = tuple[int, dt.date, int, int, str]


@dataclass(frozen=True)
class Numbered:
    """Lines as ``number_lines`` numbered them, by column, so that an append makes no object per line: line ``i`` is
    number ``first_seq + i`` of the container's whole log, stamped ``stamps[i]``, reading ``texts[i]``; ``days``
    are the runs of consecutive lines of one calendar day, in order, each (index of its first line, the day, that
    line's day_seq)."""
    first_seq: int
    stamps: list[int]
    texts: list[str]
    days: list[tuple[int, dt.date, int]]

    def runs(self) -> Iterator[tuple[dt.date, range, range, list[int], list[str]]]:
        """(day, seqs, day_seqs, stamps, texts) of each run of one day."""
        ends = [start for start, _, _ in self.days[1:]] + [len(self.stamps)]
        for (start, day, day_seq), end in zip(self.days, ends):
            yield (day, range(self.first_seq + start, self.first_seq + end), range(day_seq, day_seq + end - start),
                   self.stamps[start:end], self.texts[start:end])

    def rows(self) -> Iterator[Row]:
        for day, seqs, day_seqs, stamps, texts in self.runs():
            yield from zip(seqs, itertools.repeat(day), day_seqs, stamps, texts)


def number_lines(lines: Sequence[LogLine], state: StreamState, clock: DayClock,
                 next_day_seq: Callable[[dt.date], int]) -> tuple[Numbered, StreamState]:
    """``lines`` numbered on from ``state``, and the state after them.

    ``next_day_seq(day)`` asks the store where a day other than the current one resumes (0 for a new day); it is
    called only when the day changes to one these lines have not had yet, and keeps numbering right even if a
    timezone's calendar ever steps back. NUL characters become U+FFFD: PostgreSQL text cannot hold them, and every
    store must answer alike. A batch within one day (nearly all) is numbered without a step per line.
    """
    stamps = [line.ts_ns for line in lines]
    texts = [line.text for line in lines]
    if not lines:
        return Numbered(state.next_seq, stamps, texts, []), state
    if "\x00" in "".join(texts):
        texts = [text.replace("\x00", "\ufffd") for text in texts]
    day, day_seq = state.day, state.next_day_seq
    one_day = clock.day_of_all(min(stamps), max(stamps))
    if one_day is not None:
        if one_day != day:
            day, day_seq = one_day, next_day_seq(one_day)
        days = [(0, day, day_seq)]
        day_seq += len(stamps)
    else:
        days = []
        resume: dict[dt.date | None, int] = {}  # where each day these lines left stands
        for i, ts in enumerate(stamps):
            line_day = clock.day(ts)
            if line_day != day:
                resume[day] = day_seq
                day = line_day
                day_seq = resume[day] if day in resume else next_day_seq(day)
                days.append((i, day, day_seq))
            elif not days:
                days.append((0, day, day_seq))
            day_seq += 1
    last_ts, at_last = stamps[-1], 1
    while at_last < len(stamps) and stamps[-1 - at_last] == last_ts:
        at_last += 1
    if at_last == len(stamps) and last_ts == state.last_ts_ns:
        at_last += state.lines_at_last_ts
    numbered = Numbered(state.next_seq, stamps, texts, days)
    return numbered, replace(state, next_seq=state.next_seq + len(stamps), day=day, next_day_seq=day_seq,
                             last_ts_ns=last_ts, lines_at_last_ts=at_last)


def check_page(offset: int, size: int) -> None:
    if offset < 0 or size < 0:
        raise ValueError(f"offset and size must not be negative (got {offset}, {size})")


class LogStore(ABC):
    """Container logs and instance records that outlive their pods. Safe to share between threads."""

    timezone: str

    @abstractmethod
    def append(self, key: ContainerKey, lines: Sequence[LogLine], *, attempt: int = 0, fence: int | None = None,
               expect_next: int | None = None, position: dict[str, Any] | None = None) -> None:
        """Append lines (in time order) of one container attempt to its log, in one transaction.

        ``fence`` (the writer's leadership token): raises ``Deposed`` if the stream already saw a larger one, else
        records it, in the same transaction. ``expect_next``: raises ``StreamMoved`` unless the stream's next line
        number is that (so two writers can never both append the same lines). ``position`` (JSON-able): where the
        writer's source stands after these lines, committed with them (``resume_point`` gives it back); with no
        lines, only the position moves (the stream is made if it was not there)."""

    @abstractmethod
    def resume_point(self, key: ContainerKey) -> ResumePoint:
        """Where the collector resumes this container's stream; (None, 0) if nothing is stored."""

    @abstractmethod
    def log_end(self, key: ContainerKey, day: dt.date | None = None) -> tuple[ResumePoint, int]:
        """Where the stored log ends now, at one moment: its resume point, and how many lines it holds that a
        read can reach (of ``day``'s with ``day``): a page of a running container reads those, then the pod's
        lines after the resume point."""

    def catch_up(self) -> None:
        """Make every committed line visible to reads now: a store whose searches see a commit only after a
        refresh (OpenSearch) does one; where reads see every commit at once, nothing."""

    def read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
             offset: int = 0, size: int = 1000) -> list[str]:
        """Lines ``[offset, offset+size)`` of one day of a container's log (of the whole log without ``day``);
        one indexed range read. Past the end, or for an unknown container: []."""
        with contextlib.closing(self.iter_read(namespace, instance, container, day=day, offset=offset,
                                               size=size)) as rows:
            return list(rows)

    @abstractmethod
    def iter_read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                  offset: int = 0, size: int = 1000) -> Iterator[str]:
        """``read`` as a stream from the database's cursor: a caller that stops early (a byte cap) never loads
        the rest. Close it (``contextlib.closing``) to give its connection back at once."""

    @abstractmethod
    def iter_read_stamped(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                          offset: int = 0, size: int = 1000) -> Iterator[tuple[int, str]]:
        """``iter_read`` with each line's timestamp: (ts_ns, text), for ``timestamps=true`` and ``since``."""

    @abstractmethod
    def explain_read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                     offset: int = 0, size: int = 1000) -> str:
        """The database's plan for that ``read``, as text (for tests and the benchmark)."""

    def read_job(self, namespace: str, job: str, *, day: dt.date | None = None, offset: int = 0,
                 size: int = 1000) -> list[tuple[str, str]]:
        """(instance, text) of every container of every instance of a job, ordered by (ts, container stream,
        seq), then paged."""
        with contextlib.closing(self.iter_read_job(namespace, job, day=day, offset=offset, size=size)) as rows:
            return list(rows)

    def iter_read_job(self, namespace: str, job: str, *, day: dt.date | None = None, offset: int = 0,
                      size: int = 1000) -> Iterator[tuple[str, str]]:
        """``read_job`` as a stream, walked along an index from a remembered keyset cursor (no sort)."""
        return ((instance, text) for instance, _, text in self.iter_read_job_stamped(namespace, job, day=day,
                                                                                   offset=offset, size=size))

    @abstractmethod
    def iter_read_job_stamped(self, namespace: str, job: str, *, day: dt.date | None = None, offset: int = 0,
                              size: int = 1000) -> Iterator[tuple[str, int, str]]:
        """``iter_read_job`` with each line's timestamp: (instance, ts_ns, text)."""

    @abstractmethod
    def containers(self, namespace: str, instance: str) -> list[str]:
        """Containers of an instance that have a log here, first-seen first."""

    @abstractmethod
    def known_instance(self, namespace: str, job: str, instance: str) -> bool:
        """Whether the archive has a log or a record of this instance of this job."""

    @abstractmethod
    def put_instance(self, namespace: str, job: str, instance: str, record: dict[str, Any]) -> None:
        """Insert or replace an instance's record (JSON). ``record["created"]`` orders ``instances``;
        ``record["finished"]`` (RFC 3339, None while running) lets ``prune`` drop it."""

    @abstractmethod
    def instances(self, namespace: str, job: str) -> list[dict[str, Any]]:
        """A job's instance records, by ``created`` (records without it last), then instance name."""

    @abstractmethod
    def delete_job(self, namespace: str, job: str) -> int:
        """Forget a job's logs and records (e.g. before a job of the same name is created); rows deleted."""

    @abstractmethod
    def delete_namespace(self, namespace: str) -> int:
        """Forget every log and record of a namespace (a user removed with ``--purge``); rows deleted."""

    @abstractmethod
    def max_fence(self) -> int:
        """The largest fencing token any stream has seen (0 if none): a recreated Lease starts above it."""

    @abstractmethod
    def heartbeat(self, region: str, holder: str, lag_seconds: float) -> None:
        """The leading collector of ``region`` says it is alive and how far behind the cluster it is."""

    @abstractmethod
    def heartbeats(self) -> dict[str, tuple[float, float]]:
        """Region -> (seconds since its collector's last heartbeat, the lag it reported then)."""

    # -- the API replicas' read-your-writes mark (gateway/kube/cache/write_mark.py): kept here, the one store they share

    @abstractmethod
    def raise_write_mark(self, region: str, version: int) -> None:
        """An API process wrote a Job at ``version`` (a resourceVersion) in ``region``: raise the mark to it (never
        lower it) and stamp it with the time."""

    @abstractmethod
    def doubt_writes(self, region: str, until: float) -> None:
        """A write whose version is not known: no cache of ``region`` answers until ``until`` (epoch seconds)."""

    @abstractmethod
    def write_mark(self, region: str) -> tuple[int, float, float]:
        """(version, epoch seconds it was raised at, epoch seconds writes are in doubt until); zeros if none."""

    @abstractmethod
    def prune(self, older_than: dt.date) -> int:
        """Retention: delete lines of days before ``older_than``, then records of instances that finished
        before it and have no lines left; returns lines plus records deleted."""

    @abstractmethod
    def analyze(self) -> None:
        """Refresh the planner's statistics (after a bulk load or a prune)."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection."""
