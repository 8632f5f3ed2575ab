"""The log archive in PostgreSQL: for several gateway replicas sharing one archive.

psycopg 3 with a connection pool; the schema is created on first use under an advisory lock, so replicas
starting together do not race. An append locks its container's stream row, so appends to one container are
serialized while appends to different containers run in parallel; the fencing token is checked under that lock.
"""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import replace
from typing import Any, Iterator, Sequence

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from .base import DayClock, Numbered
from .sql import BACKFILL, SqlStore

SCHEMA_LOCK = 0x7465_6E78  # "tenx": any constant shared by every replica
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS log_jobs (
        id bigserial PRIMARY KEY, namespace text NOT NULL, job text NOT NULL, UNIQUE (namespace, job))""",
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
    """CREATE TABLE IF NOT EXISTS collector_heartbeats (
        region text PRIMARY KEY, holder text NOT NULL, beat double precision NOT NULL,
        lag double precision NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS write_marks (
        region text PRIMARY KEY, version bigint NOT NULL, raised double precision NOT NULL,
        doubt_until double precision NOT NULL)""",
    # added since the first archives were written
    "ALTER TABLE log_streams ADD COLUMN IF NOT EXISTS job_id bigint",
    "ALTER TABLE log_streams ADD COLUMN IF NOT EXISTS attempt integer",
    "ALTER TABLE log_streams ADD COLUMN IF NOT EXISTS fence bigint NOT NULL DEFAULT 0",
    "ALTER TABLE log_lines ADD COLUMN IF NOT EXISTS job_id bigint",
    "ALTER TABLE log_lines ADD COLUMN IF NOT EXISTS attempt integer NOT NULL DEFAULT 0",
    "ALTER TABLE log_streams ADD COLUMN IF NOT EXISTS position text",
) + BACKFILL + (
    "CREATE INDEX IF NOT EXISTS log_lines_job ON log_lines (job_id, day, ts_ns, stream, seq)",
)
_cursor_names = itertools.count()


class PostgresStore(SqlStore):
    collate = ' COLLATE "C"'

    def __init__(self, dsn: str, timezone: str = "UTC", *, max_connections: int = 8) -> None:
        super().__init__()
        self.timezone = timezone
        DayClock(timezone)  # an unknown timezone fails here, not at the first append
        self._statements: dict[str, str] = {}
        self._pool = ConnectionPool(dsn, min_size=1, max_size=max_connections, open=True,
                                    name="tenx-log-archive")
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                for statement in SCHEMA:
                    conn.execute(self._sql(statement))
        except BaseException:
            self._pool.close()
            raise

    def _sql(self, statement: str) -> str:
        converted = self._statements.get(statement)
        if converted is None:
            converted = self._statements[statement] = statement.replace("?", "%s")
        return converted

    def _read(self) -> contextlib.AbstractContextManager[psycopg.Connection]:
        return self._pool.connection()

    def _write(self) -> contextlib.AbstractContextManager[psycopg.Connection]:
        return self._pool.connection()  # one transaction: committed on leaving, rolled back on an exception

    def _iterate(self, sql: str, params: Sequence[Any]) -> Iterator[tuple]:
        with self._pool.connection() as conn:
            # A server-side cursor: rows come over 64 at a time, so a byte cap stops the reading, not just the use
            with conn.cursor(name=f"tenx_read_{next(_cursor_names)}") as cur:
                cur.itersize = 64
                cur.execute(sql, tuple(params))
                yield from cur

    def _insert_rows(self, conn: psycopg.Connection, stream: int, job_id: int, attempt: int,
                     lines: Numbered) -> None:
        """COPY in text format, written here in one piece rather than row by row (``write_row`` adapts every value
        on its own, which was the largest part of an append's CPU)."""
        with conn.cursor() as cur, cur.copy(
                "COPY log_lines (stream, seq, day, day_seq, ts_ns, text, job_id, attempt) FROM STDIN") as copy:
            copy.write(copy_text(stream, job_id, attempt, lines).encode(conn.info.encoding))

    def _lock_for_prune(self, conn: psycopg.Connection, stream: int) -> None:
        conn.execute("SELECT 1 FROM log_streams WHERE id = %s FOR UPDATE", (stream,))

    def _json_in(self, record: dict[str, Any]) -> Any:
        return Jsonb(record)

    def _json_out(self, value: Any) -> dict[str, Any]:
        return value

    def _explain(self, query: str, params: Sequence[Any]) -> str:
        with self._pool.connection() as conn:
            # Values bound client-side: the plan shown is the one a first execution of `read` gets.
            cur = psycopg.ClientCursor(conn)
            return "\n".join(row[0] for row in cur.execute("EXPLAIN " + query, tuple(params)))

    def analyze(self) -> None:
        with self._pool.connection() as conn:
            conn.execute("ANALYZE log_streams, log_lines, log_instances, log_jobs")

    def close(self) -> None:
        self._pool.close()


def copy_text(stream: int, job_id: int | None, attempt: int, lines: Numbered) -> str:
    """``lines`` as rows of COPY's text format. The texts escape what the format reserves (backslash, tab, newline,
    carriage return), all in one go: joined by NUL, which no text holds any more (``number_lines`` replaced it)."""
    texts = "\x00".join(lines.texts)
    if "\\" in texts or "\t" in texts or "\n" in texts or "\r" in texts:
        texts = texts.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    tail = "\t" + ("\\N" if job_id is None else str(job_id)) + f"\t{attempt}\n"
    out: list[str] = []
    for day, seqs, day_seqs, stamps, escaped in replace(lines, texts=texts.split("\x00")).runs():
        middle = f"\t{day.isoformat()}\t"
        out.extend(f"{stream}\t{seq}{middle}{day_seq}\t{ts}\t{text}{tail}"
                   for seq, day_seq, ts, text in zip(seqs, day_seqs, stamps, escaped))
    return "".join(out)
