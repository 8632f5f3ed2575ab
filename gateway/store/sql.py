"""The log archive over SQL, once for both databases: the statements, the numbering, fencing and paging.

A dialect (``sqlite.py``, ``postgres.py``) supplies the schema, connections and transactions, the placeholder
style, how rows are bulk-inserted and how a result is streamed; everything else lives here. Statements are
written with ``?`` placeholders; the PostgreSQL dialect turns them into ``%s``.

Job-level pages walk the index ``log_lines_job (job_id, day, ts_ns, stream, seq)`` in order, so a page never
sorts the job's lines; the cursor (the key of a page's last line) is remembered for a short while so that the
next page starts from it instead of skipping every line before it again.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import time
from abc import abstractmethod
from typing import Any, Iterator, Sequence

import orjson

from ..timefmt import DayClock
from .base import ContainerKey, Deposed, LogLine, LogStore, Numbered, ResumePoint, StreamMoved, StreamState, check_page, number_lines
from .cursors import PageCursors

KEYED = "FROM log_streams WHERE namespace = ? AND instance = ? AND container = ?"
STREAM = f"(SELECT id {KEYED})"
# The whole log is numbered from its first line still kept (prune may have dropped earlier days).
FIRST = f"(SELECT first_seq {KEYED})"
# {columns}: ``text``, or ``ts_ns, text`` for a stamped read
READ_SEQ = (f"SELECT {{columns}} FROM log_lines WHERE stream = {STREAM} AND seq >= {FIRST} + ?"
            f" AND seq < {FIRST} + ? ORDER BY seq")
READ_DAY = (f"SELECT {{columns}} FROM log_lines WHERE stream = {STREAM} AND day = ? AND day_seq >= ?"
            " AND day_seq < ? ORDER BY day_seq")
JOB_ID = "(SELECT id FROM log_jobs WHERE namespace = ? AND job = ?)"
READ_JOB = ("SELECT l.day, l.ts_ns, l.stream, l.seq, s.instance, l.text FROM log_lines l"
            " JOIN log_streams s ON s.id = l.stream"
            f" WHERE l.job_id = {JOB_ID} {{day}} {{after}}"
            " ORDER BY l.day, l.ts_ns, l.stream, l.seq LIMIT ? OFFSET ?")
AFTER = "AND (l.day, l.ts_ns, l.stream, l.seq) > (?, ?, ?, ?)"
_STATE = "id, job_id, fence, next_seq, day, next_day_seq, last_ts_ns, lines_at_last_ts"
ENSURE_JOB = "INSERT INTO log_jobs (namespace, job) VALUES (?, ?) ON CONFLICT (namespace, job) DO NOTHING"
# Creates the container's stream or locks the one there, in one statement, so a concurrent prune deleting it
# cannot slip in between; the no-op update is what takes the row lock (PostgreSQL).
LOCK_STREAM = ("INSERT INTO log_streams (namespace, job, instance, container, job_id)"
               f" VALUES (?, ?, ?, ?, {JOB_ID})"
               " ON CONFLICT (namespace, instance, container) DO UPDATE SET next_seq = log_streams.next_seq"
               f" RETURNING {_STATE}")
LOCK_EXISTING = ("UPDATE log_streams SET next_seq = next_seq WHERE namespace = ? AND instance = ? AND container = ?"
                 f" RETURNING {_STATE}")
UPDATE_STREAM = ("UPDATE log_streams SET next_seq = ?, day = ?, next_day_seq = ?, last_ts_ns = ?,"
                 " lines_at_last_ts = ?, attempt = ?, fence = ?, position = ? WHERE id = ?")
INSERT_LINES = ("INSERT INTO log_lines (stream, seq, day, day_seq, ts_ns, text, job_id, attempt)"
                " VALUES (?,?,?,?,?,?,?,?)")
# Records of instances that finished before the cutoff and have no line left; then containers with no line left
# whose instance has no record (first_seq = next_seq: prune keeps first_seq at the first line still kept).
PRUNE_RECORDS = ("DELETE FROM log_instances WHERE finished_day < ? AND NOT EXISTS (SELECT 1 FROM log_streams s"
                 " WHERE s.namespace = log_instances.namespace AND s.instance = log_instances.instance"
                 " AND s.next_seq > s.first_seq)")
PRUNE_STREAMS = ("DELETE FROM log_streams WHERE first_seq = next_seq AND NOT EXISTS (SELECT 1 FROM log_instances i"
                 " WHERE i.namespace = log_streams.namespace AND i.job = log_streams.job"
                 " AND i.instance = log_streams.instance)")
# Archives written before job_id, attempt and fence existed get them here (a no-op on an up-to-date archive).
BACKFILL = (
    "INSERT INTO log_jobs (namespace, job) SELECT DISTINCT namespace, job FROM log_streams WHERE job_id IS NULL"
    " ON CONFLICT (namespace, job) DO NOTHING",
    "UPDATE log_streams SET job_id = (SELECT id FROM log_jobs j WHERE j.namespace = log_streams.namespace"
    " AND j.job = log_streams.job) WHERE job_id IS NULL",
    "UPDATE log_lines SET job_id = (SELECT job_id FROM log_streams s WHERE s.id = log_lines.stream)"
    " WHERE job_id IS NULL",
)


class SqlStore(LogStore):
    """Everything but the dialect. Subclasses provide ``_read``/``_write`` (a connection, in a transaction for
    writes), ``_iterate`` (a streamed result), ``_insert_rows`` and the value conversions."""

    timezone: str
    collate = ""  # PostgreSQL compares text in the database's locale; names must sort byte-wise everywhere

    def __init__(self) -> None:
        self._cursors = PageCursors()

    # -- the dialect -------------------------------------------------------------------------------------

    @abstractmethod
    def _read(self) -> contextlib.AbstractContextManager[Any]:
        """A connection for reads (``execute(sql, params)`` returns a cursor)."""

    @abstractmethod
    def _write(self) -> contextlib.AbstractContextManager[Any]:
        """A connection inside a write transaction: committed on leaving, rolled back on an exception."""

    @abstractmethod
    def _iterate(self, sql: str, params: Sequence[Any]) -> Iterator[tuple]:
        """Rows of a query, fetched from the database a few at a time, on a connection held until closed."""

    def _insert_rows(self, conn: Any, stream: int, job_id: int, attempt: int, lines: Numbered) -> None:
        statement, repeat = self._sql(INSERT_LINES), itertools.repeat
        for day, seqs, day_seqs, stamps, texts in lines.runs():  # the rows' tuples are made by zip, in C
            conn.executemany(statement, zip(repeat(stream), seqs, repeat(self._day_in(day)), day_seqs, stamps, texts,
                                            repeat(job_id), repeat(attempt)))

    def _sql(self, statement: str) -> str:
        return statement

    def _day_in(self, day: dt.date | None) -> Any:
        return day

    def _day_out(self, value: Any) -> dt.date | None:
        return value

    @abstractmethod
    def _explain(self, query: str, params: Sequence[Any]) -> str:
        """The database's plan for ``query`` with ``params``, as text."""

    @abstractmethod
    def _json_in(self, record: dict[str, Any]) -> Any: ...

    @abstractmethod
    def _json_out(self, value: Any) -> dict[str, Any]: ...

    def _execute(self, conn: Any, statement: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self._sql(statement), tuple(params))

    # -- writes ------------------------------------------------------------------------------------------

    def append(self, key: ContainerKey, lines: Sequence[LogLine], *, attempt: int = 0, fence: int | None = None,
               expect_next: int | None = None, position: dict[str, Any] | None = None) -> None:
        if not lines and position is None:
            return
        clock = DayClock(self.timezone)
        with self._write() as conn:
            found = self._execute(conn, LOCK_EXISTING, (key.namespace, key.instance, key.container)).fetchone()
            if found is None:  # the container's first lines
                self._execute(conn, ENSURE_JOB, (key.namespace, key.job))
                found = self._execute(conn, LOCK_STREAM, (key.namespace, key.job, key.instance, key.container,
                                                          key.namespace, key.job)).fetchone()
            stream, job_id, stored_fence, *state = found
            if fence is not None and fence < stored_fence:
                raise Deposed(f"stream {key.instance}/{key.container} is fenced at {stored_fence}, "
                              f"this writer holds {fence}")
            if expect_next is not None and state[0] != expect_next:
                raise StreamMoved(f"stream {key.instance}/{key.container} is at line {state[0]}, "
                                  f"not {expect_next}")
            state[1] = self._day_out(state[1])
            encoded = None if position is None else orjson.dumps(position).decode()
            if not lines:  # the writer's position alone moves; the stream's attempt stays its last line's
                self._execute(conn, "UPDATE log_streams SET position = ?, fence = ? WHERE id = ?",
                              (encoded, max(stored_fence, fence or 0), stream))
                return

            def next_day_seq(day: dt.date) -> int:
                top = self._execute(conn, "SELECT max(day_seq) FROM log_lines WHERE stream = ? AND day = ?",
                                    (stream, self._day_in(day))).fetchone()[0]
                return 0 if top is None else top + 1

            numbered, after = number_lines(lines, StreamState(*state), clock, next_day_seq)
            self._insert_rows(conn, stream, job_id, attempt, numbered)
            self._execute(conn, UPDATE_STREAM, (after.next_seq, self._day_in(after.day), after.next_day_seq,
                                                after.last_ts_ns, after.lines_at_last_ts, attempt,
                                                max(stored_fence, fence or 0), encoded, stream))

    def put_instance(self, namespace: str, job: str, instance: str, record: dict[str, Any]) -> None:
        finished = DayClock(self.timezone).stamp_day(record.get("finished"))
        with self._write() as conn:
            self._execute(conn, "INSERT INTO log_instances VALUES (?,?,?,?,?,?) ON CONFLICT (namespace, job, instance)"
                          " DO UPDATE SET created = excluded.created, finished_day = excluded.finished_day,"
                          " record = excluded.record",
                          (namespace, job, instance, record.get("created"), self._day_in(finished),
                           self._json_in(record)))

    def delete_job(self, namespace: str, job: str) -> int:
        return self._delete("namespace = ? AND job = ?", (namespace, job))

    def delete_namespace(self, namespace: str) -> int:
        return self._delete("namespace = ?", (namespace,))

    def _delete(self, where: str, params: tuple) -> int:
        with self._write() as conn:
            lines = self._execute(conn, f"DELETE FROM log_lines WHERE stream IN (SELECT id FROM log_streams"
                                  f" WHERE {where})", params).rowcount
            self._execute(conn, f"DELETE FROM log_streams WHERE {where}", params)
            self._execute(conn, f"DELETE FROM log_jobs WHERE {where}", params)
            records = self._execute(conn, f"DELETE FROM log_instances WHERE {where}", params).rowcount
        self._cursors.clear()
        return lines + records

    def prune(self, older_than: dt.date) -> int:
        cutoff = self._day_in(older_than)
        lines = 0
        with self._read() as conn:
            streams = [stream for (stream,) in self._execute(conn, "SELECT id FROM log_streams").fetchall()]
        # One short transaction per container, so the collector is never locked out for long.
        for stream in streams:
            with self._write() as conn:
                self._lock_for_prune(conn, stream)
                lines += self._execute(conn, "DELETE FROM log_lines WHERE stream = ? AND day < ?",
                                       (stream, cutoff)).rowcount
                self._execute(conn, "UPDATE log_streams SET first_seq = coalesce((SELECT min(seq) FROM log_lines"
                              " WHERE stream = ?), next_seq) WHERE id = ?", (stream, stream))
        with self._write() as conn:
            records = self._execute(conn, PRUNE_RECORDS, (cutoff,)).rowcount
            self._execute(conn, PRUNE_STREAMS)
        return lines + records

    def _lock_for_prune(self, conn: Any, stream: int) -> None:
        """Lock the stream first, so the delete sees any append that was under way (PostgreSQL)."""

    def heartbeat(self, region: str, holder: str, lag_seconds: float) -> None:
        with self._write() as conn:
            self._execute(conn, "INSERT INTO collector_heartbeats VALUES (?, ?, ?, ?) ON CONFLICT (region)"
                          " DO UPDATE SET holder = excluded.holder, beat = excluded.beat, lag = excluded.lag",
                          (region, holder, time.time(), float(lag_seconds)))

    def heartbeats(self) -> dict[str, tuple[float, float]]:
        now = time.time()
        with self._read() as conn:
            rows = self._execute(conn, "SELECT region, beat, lag FROM collector_heartbeats").fetchall()
        return {region: (max(0.0, now - beat), lag) for region, beat, lag in rows}

    def raise_write_mark(self, region: str, version: int) -> None:
        with self._write() as conn:
            self._execute(conn, "INSERT INTO write_marks (region, version, raised, doubt_until) VALUES (?, ?, ?, 0)"
                          " ON CONFLICT (region) DO UPDATE SET version = excluded.version, raised = excluded.raised"
                          " WHERE write_marks.version < excluded.version", (region, version, time.time()))

    def doubt_writes(self, region: str, until: float) -> None:
        with self._write() as conn:
            self._execute(conn, "INSERT INTO write_marks (region, version, raised, doubt_until) VALUES (?, 0, 0, ?)"
                          " ON CONFLICT (region) DO UPDATE SET doubt_until = excluded.doubt_until"
                          " WHERE write_marks.doubt_until < excluded.doubt_until", (region, until))

    def write_mark(self, region: str) -> tuple[int, float, float]:
        with self._read() as conn:
            row = self._execute(conn, "SELECT version, raised, doubt_until FROM write_marks WHERE region = ?",
                                (region,)).fetchone()
        return tuple(row) if row else (0, 0.0, 0.0)  # type: ignore[return-value]

    def max_fence(self) -> int:
        with self._read() as conn:
            return self._execute(conn, "SELECT coalesce(max(fence), 0) FROM log_streams").fetchone()[0]

    # -- reads -------------------------------------------------------------------------------------------

    def resume_point(self, key: ContainerKey) -> ResumePoint:
        with self._read() as conn:
            row = self._execute(conn, f"SELECT last_ts_ns, lines_at_last_ts, attempt, next_seq, position {KEYED}",
                                (key.namespace, key.instance, key.container)).fetchone()
        if not row:
            return ResumePoint(None, 0)
        *numbering, position = row
        return ResumePoint(*numbering, position=orjson.loads(position) if position else None)

    def log_end(self, key: ContainerKey, day: dt.date | None = None) -> tuple[ResumePoint, int]:
        with self._read() as conn:
            row = self._execute(conn, "SELECT last_ts_ns, lines_at_last_ts, attempt, next_seq, position, first_seq,"
                                f" day, next_day_seq, id {KEYED}", (key.namespace, key.instance, key.container)
                                ).fetchone()
            if not row:
                return ResumePoint(None, 0), 0
            last_ts, at_last, attempt, next_seq, position, first_seq, current_day, next_day_seq, stream = row
            point = ResumePoint(last_ts, at_last, attempt, next_seq,
                                position=orjson.loads(position) if position else None)
            if day is None:
                return point, next_seq - first_seq
            if self._day_out(current_day) == day:
                return point, next_day_seq
            top = self._execute(conn, "SELECT max(day_seq) FROM log_lines WHERE stream = ? AND day = ?",
                                (stream, self._day_in(day))).fetchone()[0]
            return point, 0 if top is None else top + 1

    def explain_read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                     offset: int = 0, size: int = 1000) -> str:
        return self._explain(*self._read_query(namespace, instance, container, day, offset, size))

    def explain_read_job(self, namespace: str, job: str, *, day: dt.date | None = None) -> str:
        """The plan of a job page's keyset query (from a cursor at 2026-01-01, 100 rows)."""
        query = READ_JOB.format(day="AND l.day = ?" if day else "", after=AFTER)
        return self._explain(self._sql(query), (namespace, job) + ((self._day_in(day),) if day else ())
                             + (self._day_in(dt.date(2026, 1, 1)), 0, 0, 0, 100, 0))

    def _read_query(self, namespace: str, instance: str, container: str, day: dt.date | None, offset: int,
                    size: int, columns: str = "text") -> tuple[str, tuple[Any, ...]]:
        check_page(offset, size)
        if day is None:
            key = (namespace, instance, container)
            return self._sql(READ_SEQ.format(columns=columns)), key + key + (offset,) + key + (offset + size,)
        return (self._sql(READ_DAY.format(columns=columns)),
                (namespace, instance, container, self._day_in(day), offset, offset + size))

    def iter_read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                  offset: int = 0, size: int = 1000) -> Iterator[str]:
        query, params = self._read_query(namespace, instance, container, day, offset, size)
        return (text for (text,) in self._iterate(query, params))

    def iter_read_stamped(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                          offset: int = 0, size: int = 1000) -> Iterator[tuple[int, str]]:
        query, params = self._read_query(namespace, instance, container, day, offset, size, "ts_ns, text")
        return ((ts_ns, text) for (ts_ns, text) in self._iterate(query, params))

    def iter_read_job_stamped(self, namespace: str, job: str, *, day: dt.date | None = None, offset: int = 0,
                              size: int = 1000) -> Iterator[tuple[str, int, str]]:
        check_page(offset, size)
        base, after = self._cursors.before((namespace, job, day), offset)
        params: list[Any] = [namespace, job]
        if day is not None:
            params.append(self._day_in(day))
        if after is not None:
            params += after
        query = READ_JOB.format(day="AND l.day = ?" if day is not None else "",
                                after=AFTER if after is not None else "")
        params += [size, offset - base]
        return self._walk_job((namespace, job, day), offset, self._iterate(self._sql(query), params))

    def _walk_job(self, cursor_key: tuple, offset: int, rows: Iterator[tuple]) -> Iterator[tuple[str, int, str]]:
        position, last = offset, None
        try:
            for day, ts_ns, stream, seq, instance, text in rows:
                last = (day, ts_ns, stream, seq)
                position += 1
                yield instance, ts_ns, text
        finally:
            if hasattr(rows, "close"):
                rows.close()
            if last is not None:
                self._cursors.remember(cursor_key, position, last)

    def containers(self, namespace: str, instance: str) -> list[str]:
        with self._read() as conn:
            return [c for (c,) in self._execute(
                conn, "SELECT container FROM log_streams WHERE namespace = ? AND instance = ? ORDER BY id",
                (namespace, instance))]

    def known_instance(self, namespace: str, job: str, instance: str) -> bool:
        with self._read() as conn:
            return bool(self._execute(
                conn, "SELECT EXISTS (SELECT 1 FROM log_instances WHERE namespace = ? AND job = ? AND instance = ?)"
                " OR EXISTS (SELECT 1 FROM log_streams WHERE namespace = ? AND instance = ? AND job = ?)",
                (namespace, job, instance, namespace, instance, job)).fetchone()[0])

    def instances(self, namespace: str, job: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            return [self._json_out(r) for (r,) in self._execute(
                conn, "SELECT record FROM log_instances WHERE namespace = ? AND job = ?"
                f" ORDER BY created IS NULL, created{self.collate}, instance{self.collate}", (namespace, job))]
