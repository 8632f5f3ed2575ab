"""The log archive's store: container logs and instance records kept after their pods are gone.

The collector (``gateway.collector``) fills it; the Jobs API reads it. ``base`` is the interface and the pure
line numbering, ``sql`` the one implementation over SQL, ``sqlite``/``postgres`` the two dialects beside it.

``open_store(url, timezone)`` picks the backend from the URL: ``sqlite:///abs/path.db`` for one host,
``postgresql://...`` when several gateway replicas share the archive, ``opensearch://`` (or ``https://``) for an
existing OpenSearch cluster.
"""
from __future__ import annotations

import os
import threading

from .base import ContainerKey, Deposed, LogLine, LogStore, ResumePoint, StreamMoved

__all__ = ["ContainerKey", "Deposed", "LazyStore", "LogLine", "LogStore", "ResumePoint", "StreamMoved", "open_store"]


def open_store(url: str, timezone: str = "UTC") -> LogStore:
    """A store for ``url``; each backend is imported only when used, so SQLite needs no PostgreSQL driver."""
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteStore
        path = url[len("sqlite://"):]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return SqliteStore(path, timezone)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore
        return PostgresStore(url, timezone)
    if url.startswith(("opensearch://", "opensearchs://", "http://", "https://")):
        from .opensearch import OpenSearchStore
        return OpenSearchStore(url, timezone)
    raise ValueError(f"unsupported log archive URL {url.split('://')[0]!r}: use sqlite:///abs/path.db, "
                     "postgresql://... or opensearch://...")


class LazyStore:
    """The store, opened on first use (never at import or app creation), then shared by every thread."""

    def __init__(self, url: str, timezone: str):
        self._url, self._timezone = url, timezone
        self._store: LogStore | None = None
        self._lock = threading.Lock()

    def get(self) -> LogStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self._url, self._timezone)
        return self._store
