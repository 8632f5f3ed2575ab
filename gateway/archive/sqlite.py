"""The log archive in one SQLite file: for a single gateway host, or development and tests.

WAL mode lets the API's threads read while the collector writes; writers take the lock up front (BEGIN
IMMEDIATE) so two appends never deadlock upgrading a read lock. Connections are pooled, one per thread at a time.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from typing import Any, Iterator, Sequence

from .store import (ContainerKey, DayClock, LogLine, LogStore, ResumePoint, StreamState, check_page,
                    number_lines)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS log_streams (
        id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, job TEXT NOT NULL, instance TEXT NOT NULL,
        container TEXT NOT NULL, first_seq INTEGER NOT NULL DEFAULT 0, next_seq INTEGER NOT NULL DEFAULT 0,
        day TEXT, next_day_seq INTEGER NOT NULL DEFAULT 0, last_ts_ns INTEGER,
        lines_at_last_ts INTEGER NOT NULL DEFAULT 0,
        UNIQUE (namespace, instance, container))""",
    "CREATE INDEX IF NOT EXISTS log_streams_job ON log_streams (namespace, job)",
    """CREATE TABLE IF NOT EXISTS log_lines (
        stream INTEGER NOT NULL, seq INTEGER NOT NULL, day TEXT NOT NULL, day_seq INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (stream, seq)) WITHOUT ROWID""",
    "CREATE UNIQUE INDEX IF NOT EXISTS log_lines_day ON log_lines (stream, day, day_seq)",
    """CREATE TABLE IF NOT EXISTS log_instances (
        namespace TEXT NOT NULL, job TEXT NOT NULL, instance TEXT NOT NULL, created TEXT, finished_day TEXT,
        record TEXT NOT NULL, PRIMARY KEY (namespace, job, instance))""",
)

# One stream id by its unique key, inlined so a read is a single statement.
KEYED = "FROM log_streams WHERE namespace = ? AND instance = ? AND container = ?"
STREAM = f"(SELECT id {KEYED})"
# The whole log is numbered from its first line still kept (prune may have dropped earlier days).
FIRST = f"(SELECT first_seq {KEYED})"
READ_SEQ = (f"SELECT text FROM log_lines WHERE stream = {STREAM} AND seq >= {FIRST} + ?"
            f" AND seq < {FIRST} + ? ORDER BY seq")
READ_DAY = (f"SELECT text FROM log_lines WHERE stream = {STREAM} AND day = ? AND day_seq >= ?"
            " AND day_seq < ? ORDER BY day_seq")
READ_JOB = ("SELECT s.instance, l.text FROM log_streams s JOIN log_lines l ON l.stream = s.id"
            " WHERE s.namespace = ? AND s.job = ? {day} ORDER BY l.ts_ns, s.instance, s.container, l.seq"
            " LIMIT ? OFFSET ?")
# Records of instances that finished before the cutoff and have no line left; then containers with no line left
# whose instance has no record (first_seq = next_seq: prune keeps first_seq at the first line still kept).
PRUNE_RECORDS = ("DELETE FROM log_instances WHERE finished_day < ? AND NOT EXISTS (SELECT 1 FROM log_streams s"
                 " WHERE s.namespace = log_instances.namespace AND s.instance = log_instances.instance"
                 " AND s.next_seq > s.first_seq)")
PRUNE_STREAMS = ("DELETE FROM log_streams WHERE first_seq = next_seq AND NOT EXISTS (SELECT 1 FROM log_instances i"
                 " WHERE i.namespace = log_streams.namespace AND i.job = log_streams.job"
                 " AND i.instance = log_streams.instance)")
IDLE_CONNECTIONS = 8


class SqliteStore(LogStore):
    def __init__(self, path: str, timezone: str = "UTC") -> None:
        self.path, self.timezone = path, timezone
        DayClock(timezone)  # an unknown timezone fails here, not at the first append
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            with _write(conn):
                for statement in SCHEMA:
                    conn.execute(statement)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the log store is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            yield conn
        finally:
            with self._lock:
                if self._closed or len(self._idle) >= IDLE_CONNECTIONS:
                    conn.close()
                else:
                    self._idle.append(conn)

    def append(self, key: ContainerKey, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        clock = DayClock(self.timezone)
        with self._connection() as conn, _write(conn):
            conn.execute("INSERT OR IGNORE INTO log_streams (namespace, job, instance, container) VALUES (?,?,?,?)",
                         (key.namespace, key.job, key.instance, key.container))
            stream, *state = conn.execute(
                "SELECT id, next_seq, day, next_day_seq, last_ts_ns, lines_at_last_ts FROM log_streams"
                " WHERE namespace = ? AND instance = ? AND container = ?",
                (key.namespace, key.instance, key.container)).fetchone()
            state[1] = dt.date.fromisoformat(state[1]) if state[1] else None

            def next_day_seq(day: dt.date) -> int:
                top = conn.execute("SELECT max(day_seq) FROM log_lines WHERE stream = ? AND day = ?",
                                   (stream, day.isoformat())).fetchone()[0]
                return 0 if top is None else top + 1

            rows, after = number_lines(lines, StreamState(*state), clock, next_day_seq)
            conn.executemany("INSERT INTO log_lines (stream, seq, day, day_seq, ts_ns, text) VALUES (?,?,?,?,?,?)",
                             [(stream, r.seq, r.day.isoformat(), r.day_seq, r.ts_ns, r.text) for r in rows])
            conn.execute("UPDATE log_streams SET next_seq = ?, day = ?, next_day_seq = ?, last_ts_ns = ?,"
                         " lines_at_last_ts = ? WHERE id = ?",
                         (after.next_seq, after.day.isoformat() if after.day else None, after.next_day_seq,
                          after.last_ts_ns, after.lines_at_last_ts, stream))

    def resume_point(self, key: ContainerKey) -> ResumePoint:
        with self._connection() as conn:
            row = conn.execute("SELECT last_ts_ns, lines_at_last_ts FROM log_streams"
                               " WHERE namespace = ? AND instance = ? AND container = ?",
                               (key.namespace, key.instance, key.container)).fetchone()
        return ResumePoint(*row) if row else ResumePoint(None, 0)

    def _read_query(self, namespace: str, instance: str, container: str, day: dt.date | None, offset: int,
                    size: int) -> tuple[str, tuple[Any, ...]]:
        check_page(offset, size)
        if day is None:
            key = (namespace, instance, container)
            return READ_SEQ, key + key + (offset,) + key + (offset + size,)
        return READ_DAY, (namespace, instance, container, day.isoformat(), offset, offset + size)

    def read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
             offset: int = 0, size: int = 1000) -> list[str]:
        query, params = self._read_query(namespace, instance, container, day, offset, size)
        with self._connection() as conn:
            return [text for (text,) in conn.execute(query, params)]

    def explain_read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                     offset: int = 0, size: int = 1000) -> str:
        query, params = self._read_query(namespace, instance, container, day, offset, size)
        with self._connection() as conn:
            return "\n".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query, params))

    def read_job(self, namespace: str, job: str, *, day: dt.date | None = None, offset: int = 0,
                 size: int = 1000) -> list[tuple[str, str]]:
        check_page(offset, size)
        params: tuple[Any, ...] = (namespace, job) + ((day.isoformat(),) if day else ()) + (size, offset)
        query = READ_JOB.format(day="AND l.day = ?" if day else "")
        with self._connection() as conn:
            return [(instance, text) for instance, text in conn.execute(query, params)]

    def containers(self, namespace: str, instance: str) -> list[str]:
        with self._connection() as conn:
            return [c for (c,) in conn.execute(
                "SELECT container FROM log_streams WHERE namespace = ? AND instance = ? ORDER BY id",
                (namespace, instance))]

    def known_instance(self, namespace: str, job: str, instance: str) -> bool:
        with self._connection() as conn:
            return conn.execute(
                "SELECT EXISTS (SELECT 1 FROM log_instances WHERE namespace = ? AND job = ? AND instance = ?)"
                " OR EXISTS (SELECT 1 FROM log_streams WHERE namespace = ? AND instance = ? AND job = ?)",
                (namespace, job, instance, namespace, instance, job)).fetchone()[0] == 1

    def put_instance(self, namespace: str, job: str, instance: str, record: dict[str, Any]) -> None:
        finished = DayClock(self.timezone).stamp_day(record.get("finished"))
        with self._connection() as conn, _write(conn):
            conn.execute("INSERT OR REPLACE INTO log_instances VALUES (?,?,?,?,?,?)",
                         (namespace, job, instance, record.get("created"),
                          finished.isoformat() if finished else None, json.dumps(record)))

    def instances(self, namespace: str, job: str) -> list[dict[str, Any]]:
        with self._connection() as conn:
            return [json.loads(r) for (r,) in conn.execute(
                "SELECT record FROM log_instances WHERE namespace = ? AND job = ?"
                " ORDER BY created IS NULL, created, instance", (namespace, job))]

    def delete_job(self, namespace: str, job: str) -> int:
        with self._connection() as conn, _write(conn):
            lines = conn.execute("DELETE FROM log_lines WHERE stream IN"
                                 " (SELECT id FROM log_streams WHERE namespace = ? AND job = ?)",
                                 (namespace, job)).rowcount
            conn.execute("DELETE FROM log_streams WHERE namespace = ? AND job = ?", (namespace, job))
            records = conn.execute("DELETE FROM log_instances WHERE namespace = ? AND job = ?",
                                   (namespace, job)).rowcount
        return lines + records

    def prune(self, older_than: dt.date) -> int:
        cutoff = older_than.isoformat()
        lines = 0
        with self._connection() as conn:
            # One short transaction per container, so the collector is never locked out for long.
            for (stream,) in conn.execute("SELECT id FROM log_streams").fetchall():
                with _write(conn):
                    lines += conn.execute("DELETE FROM log_lines WHERE stream = ? AND day < ?",
                                          (stream, cutoff)).rowcount
                    conn.execute("UPDATE log_streams SET first_seq = coalesce((SELECT min(seq) FROM log_lines"
                                 " WHERE stream = ?), next_seq) WHERE id = ?", (stream, stream))
            with _write(conn):
                records = conn.execute(PRUNE_RECORDS, (cutoff,)).rowcount
                conn.execute(PRUNE_STREAMS)
        return lines + records

    def analyze(self) -> None:
        with self._connection() as conn:
            conn.execute("ANALYZE")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.execute("PRAGMA optimize")
            conn.close()


@contextlib.contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that holds the write lock from its start."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
