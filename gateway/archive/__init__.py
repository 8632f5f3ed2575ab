"""The log archive: container logs and instance records kept after their pods are gone.

``open_store(url, timezone)`` picks the backend from the URL: ``sqlite:///abs/path.db`` for one host,
``postgresql://...`` when several gateway replicas share the archive.
"""
from __future__ import annotations

from .store import ContainerKey, LogLine, LogStore, ResumePoint

__all__ = ["ContainerKey", "LogLine", "LogStore", "ResumePoint", "open_store"]


def open_store(url: str, timezone: str = "UTC") -> LogStore:
    """A store for ``url``; each backend is imported only when used, so SQLite needs no PostgreSQL driver."""
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteStore
        return SqliteStore(url[len("sqlite://"):], timezone)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore
        return PostgresStore(url, timezone)
    raise ValueError(f"unsupported log archive URL {url.split('://')[0]!r}: use sqlite:///abs/path.db "
                     "or postgresql://...")
