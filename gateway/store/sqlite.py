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

from .base import DayClock
from .sql import BACKFILL, SqlStore

TABLES = (
    """CREATE TABLE IF NOT EXISTS log_jobs (
        id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, job TEXT NOT NULL, UNIQUE (namespace, job))""",
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
    """CREATE TABLE IF NOT EXISTS collector_heartbeats (
        region TEXT PRIMARY KEY, holder TEXT NOT NULL, beat REAL NOT NULL, lag REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS write_marks (
        region TEXT PRIMARY KEY, version INTEGER NOT NULL, raised REAL NOT NULL, doubt_until REAL NOT NULL)""",
)
# Columns added since the first archives were written: (table, column, definition).
COLUMNS = (
    ("log_streams", "job_id", "INTEGER"),
    ("log_streams", "attempt", "INTEGER"),
    ("log_streams", "fence", "INTEGER NOT NULL DEFAULT 0"),
    ("log_lines", "job_id", "INTEGER"),
    ("log_lines", "attempt", "INTEGER NOT NULL DEFAULT 0"),
    ("log_streams", "position", "TEXT"),
)
INDEXES = ("CREATE INDEX IF NOT EXISTS log_lines_job ON log_lines (job_id, day, ts_ns, stream, seq)",)
IDLE_CONNECTIONS = 8


class SqliteStore(SqlStore):
    def __init__(self, path: str, timezone: str = "UTC") -> None:
        super().__init__()
        self.path, self.timezone = path, timezone
        DayClock(timezone)  # an unknown timezone fails here, not at the first append
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        with self._write() as conn:
            for statement in TABLES:
                conn.execute(statement)
            for table, column, definition in COLUMNS:
                if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            for statement in BACKFILL + INDEXES:
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
                if self._closed or len(self._idle) >= IDLE_CONNECTIONS or conn.in_transaction:
                    conn.close()
                else:
                    self._idle.append(conn)

    def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._connection()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its start."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _iterate(self, sql: str, params: Sequence[Any]) -> Iterator[tuple]:
        with self._connection() as conn:
            # One read transaction, so the rows come from one snapshot however slowly they are taken.
            conn.execute("BEGIN")
            try:
                yield from conn.execute(sql, tuple(params))
            finally:
                conn.execute("COMMIT")

    def _day_in(self, day: dt.date | None) -> Any:
        return day.isoformat() if day else None

    def _day_out(self, value: Any) -> dt.date | None:
        return dt.date.fromisoformat(value) if value else None

    def _json_in(self, record: dict[str, Any]) -> Any:
        return json.dumps(record)

    def _json_out(self, value: Any) -> dict[str, Any]:
        return json.loads(value)

    def _explain(self, query: str, params: Sequence[Any]) -> str:
        with self._connection() as conn:
            return "\n".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query, tuple(params)))

    def analyze(self) -> None:
        with self._connection() as conn:
            conn.execute("ANALYZE")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(sqlite3.OperationalError):  # a writer still busy: skip the statistics
                conn.execute("PRAGMA optimize")
            conn.close()
