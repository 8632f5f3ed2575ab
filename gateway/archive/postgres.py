"""The log archive in PostgreSQL: for several gateway replicas sharing one archive.

psycopg 3 with a connection pool; the schema is created on first use under an advisory lock, so replicas
starting together do not race. An append locks its container's stream row, so appends to one container are
serialized while appends to different containers run in parallel.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from .store import (ContainerKey, DayClock, LogLine, LogStore, ResumePoint, StreamState, check_page,
                    number_lines)

SCHEMA_LOCK = 0x7465_6E78  # "tenx": any constant shared by every replica
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS log_streams (
        id bigserial PRIMARY KEY, namespace text NOT NULL, job text NOT NULL, instance text NOT NULL,
        container text NOT NULL, first_seq bigint NOT NULL DEFAULT 0, next_seq bigint NOT NULL DEFAULT 0,
        day date, next_day_seq bigint NOT NULL DEFAULT 0, last_ts_ns bigint, lines_at_last_ts bigint NOT NULL DEFAULT 0,
        UNIQUE (namespace, instance, container))""",
    "CREATE INDEX IF NOT EXISTS log_streams_job ON log_streams (namespace, job)",
    """CREATE TABLE IF NOT EXISTS log_lines (
        stream bigint NOT NULL, seq bigint NOT NULL, day date NOT NULL, day_seq bigint NOT NULL,
        ts_ns bigint NOT NULL, text text NOT NULL, PRIMARY KEY (stream, seq))""",
    "CREATE UNIQUE INDEX IF NOT EXISTS log_lines_day ON log_lines (stream, day, day_seq)",
    """CREATE TABLE IF NOT EXISTS log_instances (
        namespace text NOT NULL, job text NOT NULL, instance text NOT NULL, created text, finished_day date,
        record jsonb NOT NULL, PRIMARY KEY (namespace, job, instance))""",
)

KEYED = "FROM log_streams WHERE namespace = %s AND instance = %s AND container = %s"
STREAM = f"(SELECT id {KEYED})"
# The whole log is numbered from its first line still kept (prune may have dropped earlier days).
FIRST = f"(SELECT first_seq {KEYED})"
READ_SEQ = (f"SELECT text FROM log_lines WHERE stream = {STREAM} AND seq >= {FIRST} + %s"
            f" AND seq < {FIRST} + %s ORDER BY seq")
READ_DAY = (f"SELECT text FROM log_lines WHERE stream = {STREAM} AND day = %s AND day_seq >= %s"
            " AND day_seq < %s ORDER BY day_seq")
READ_JOB = ("SELECT s.instance, l.text FROM log_streams s JOIN log_lines l ON l.stream = s.id"
            " WHERE s.namespace = %s AND s.job = %s {day}"
            " ORDER BY l.ts_ns, s.instance COLLATE \"C\", s.container COLLATE \"C\", l.seq"
            " LIMIT %s OFFSET %s")
PRUNE_RECORDS = ("DELETE FROM log_instances i WHERE finished_day < %s AND NOT EXISTS (SELECT 1 FROM log_streams s"
                 " WHERE s.namespace = i.namespace AND s.instance = i.instance AND s.next_seq > s.first_seq)")
PRUNE_STREAMS = ("DELETE FROM log_streams s WHERE first_seq = next_seq AND NOT EXISTS (SELECT 1 FROM log_instances i"
                 " WHERE i.namespace = s.namespace AND i.job = s.job AND i.instance = s.instance)")
# Creates the container's stream or locks the one there, in one statement, so a concurrent prune deleting it
# cannot slip in between; the no-op update is what takes the row lock.
LOCK_STREAM = ("INSERT INTO log_streams (namespace, job, instance, container) VALUES (%s, %s, %s, %s)"
               " ON CONFLICT (namespace, instance, container) DO UPDATE SET next_seq = log_streams.next_seq"
               " RETURNING id, next_seq, day, next_day_seq, last_ts_ns, lines_at_last_ts")


class PostgresStore(LogStore):
    def __init__(self, dsn: str, timezone: str = "UTC", *, max_connections: int = 8) -> None:
        self.timezone = timezone
        DayClock(timezone)  # an unknown timezone fails here, not at the first append
        self._pool = ConnectionPool(dsn, min_size=1, max_size=max_connections, open=True,
                                    name="tenx-log-archive")
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                for statement in SCHEMA:
                    conn.execute(statement)
        except BaseException:
            self._pool.close()
            raise

    def append(self, key: ContainerKey, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        clock = DayClock(self.timezone)
        with self._pool.connection() as conn:
            stream, *state = conn.execute(LOCK_STREAM, (key.namespace, key.job, key.instance, key.container)).fetchone()

            def next_day_seq(day: dt.date) -> int:
                top = conn.execute("SELECT max(day_seq) FROM log_lines WHERE stream = %s AND day = %s",
                                   (stream, day)).fetchone()[0]
                return 0 if top is None else top + 1

            rows, after = number_lines(lines, StreamState(*state), clock, next_day_seq)
            with conn.cursor() as cur, cur.copy(
                    "COPY log_lines (stream, seq, day, day_seq, ts_ns, text) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row((stream, r.seq, r.day, r.day_seq, r.ts_ns, r.text))
            conn.execute("UPDATE log_streams SET next_seq = %s, day = %s, next_day_seq = %s, last_ts_ns = %s,"
                         " lines_at_last_ts = %s WHERE id = %s",
                         (after.next_seq, after.day, after.next_day_seq, after.last_ts_ns,
                          after.lines_at_last_ts, stream))

    def resume_point(self, key: ContainerKey) -> ResumePoint:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT last_ts_ns, lines_at_last_ts FROM log_streams"
                               " WHERE namespace = %s AND instance = %s AND container = %s",
                               (key.namespace, key.instance, key.container)).fetchone()
        return ResumePoint(*row) if row else ResumePoint(None, 0)

    @staticmethod
    def _read_query(namespace: str, instance: str, container: str, day: dt.date | None, offset: int,
                    size: int) -> tuple[str, tuple[Any, ...]]:
        check_page(offset, size)
        if day is None:
            key = (namespace, instance, container)
            return READ_SEQ, key + key + (offset,) + key + (offset + size,)
        return READ_DAY, (namespace, instance, container, day, offset, offset + size)

    def read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
             offset: int = 0, size: int = 1000) -> list[str]:
        query, params = self._read_query(namespace, instance, container, day, offset, size)
        with self._pool.connection() as conn:
            return [text for (text,) in conn.execute(query, params)]

    def explain_read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                     offset: int = 0, size: int = 1000) -> str:
        query, params = self._read_query(namespace, instance, container, day, offset, size)
        with self._pool.connection() as conn:
            # Values bound client-side: the plan shown is the one a first execution of `read` gets.
            cur = psycopg.ClientCursor(conn)
            return "\n".join(row[0] for row in cur.execute("EXPLAIN " + query, params))

    def read_job(self, namespace: str, job: str, *, day: dt.date | None = None, offset: int = 0,
                 size: int = 1000) -> list[tuple[str, str]]:
        check_page(offset, size)
        params: tuple[Any, ...] = (namespace, job) + ((day,) if day else ()) + (size, offset)
        query = READ_JOB.format(day="AND l.day = %s" if day else "")
        with self._pool.connection() as conn:
            return [(instance, text) for instance, text in conn.execute(query, params)]

    def containers(self, namespace: str, instance: str) -> list[str]:
        with self._pool.connection() as conn:
            return [c for (c,) in conn.execute(
                "SELECT container FROM log_streams WHERE namespace = %s AND instance = %s ORDER BY id",
                (namespace, instance))]

    def known_instance(self, namespace: str, job: str, instance: str) -> bool:
        with self._pool.connection() as conn:
            return bool(conn.execute(
                "SELECT EXISTS (SELECT 1 FROM log_instances WHERE namespace = %s AND job = %s AND instance = %s)"
                " OR EXISTS (SELECT 1 FROM log_streams WHERE namespace = %s AND instance = %s AND job = %s)",
                (namespace, job, instance, namespace, instance, job)).fetchone()[0])

    def put_instance(self, namespace: str, job: str, instance: str, record: dict[str, Any]) -> None:
        finished = DayClock(self.timezone).stamp_day(record.get("finished"))
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO log_instances VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (namespace, job, instance)"
                " DO UPDATE SET created = excluded.created, finished_day = excluded.finished_day,"
                " record = excluded.record",
                (namespace, job, instance, record.get("created"), finished, Jsonb(record)))

    def instances(self, namespace: str, job: str) -> list[dict[str, Any]]:
        with self._pool.connection() as conn:
            return [r for (r,) in conn.execute(
                "SELECT record FROM log_instances WHERE namespace = %s AND job = %s"
                " ORDER BY created IS NULL, created COLLATE \"C\", instance COLLATE \"C\"", (namespace, job))]

    def delete_job(self, namespace: str, job: str) -> int:
        with self._pool.connection() as conn:
            lines = conn.execute("DELETE FROM log_lines WHERE stream IN"
                                 " (SELECT id FROM log_streams WHERE namespace = %s AND job = %s)",
                                 (namespace, job)).rowcount
            conn.execute("DELETE FROM log_streams WHERE namespace = %s AND job = %s", (namespace, job))
            records = conn.execute("DELETE FROM log_instances WHERE namespace = %s AND job = %s",
                                   (namespace, job)).rowcount
        return lines + records

    def prune(self, older_than: dt.date) -> int:
        lines = 0
        with self._pool.connection() as conn:
            # One short transaction per container, each delete a range of log_lines_day, not a scan of every line.
            for (stream,) in conn.execute("SELECT id FROM log_streams").fetchall():
                # Lock first: the statements below then see any append that was under way.
                conn.execute("SELECT 1 FROM log_streams WHERE id = %s FOR UPDATE", (stream,))
                lines += conn.execute("DELETE FROM log_lines WHERE stream = %s AND day < %s",
                                      (stream, older_than)).rowcount
                conn.execute("UPDATE log_streams SET first_seq = coalesce((SELECT min(seq) FROM log_lines"
                             " WHERE stream = %s), next_seq) WHERE id = %s", (stream, stream))
                conn.commit()
            records = conn.execute(PRUNE_RECORDS, (older_than,)).rowcount
            # first_seq = next_seq is re-checked on the row an append may have just changed; a subquery over
            # log_lines would not see that append's lines.
            conn.execute(PRUNE_STREAMS)
        return lines + records

    def analyze(self) -> None:
        with self._pool.connection() as conn:
            conn.execute("ANALYZE log_streams, log_lines, log_instances")

    def close(self) -> None:
        self._pool.close()
