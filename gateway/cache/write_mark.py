"""The read-your-writes mark: the newest Job write (create or delete) that any API process of this gateway made in a
region, so that no process's watch cache answers a read as if that write had not happened.

Each API process (each gunicorn worker, of each replica) keeps its own watch cache, and a client's next call may
land on another one whose watch has not yet brought the write in. After a create, the writer raises the mark to
the created Job's resourceVersion; after a delete, to the version at which its own cache saw the Job go (or, if it
did not see that in time, it marks writes "in doubt" for a while). A read answers from memory only once its cache
has reached the mark; until then it waits a little, then asks the apiserver.

The mark lives in the log archive, the one store every replica of a gateway shares (PostgreSQL or OpenSearch for
several replicas; a SQLite archive is one host's, shared by its workers): a read costs one lookup there (measured in
bench/cache.py), and writes are rare. A mark older than ``HORIZON_SECONDS`` is no longer waited for: every watch
has had that long to bring the write in (and an archive that outlived its cluster's etcd, whose versions started
over, must not hold every read back). When the archive cannot be reached, memory does not answer at all: reads
go to the apiserver, as without a cache.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from ..store import LogStore

log = logging.getLogger(__name__)

HORIZON_SECONDS = 60.0


class WriteMark:
    """In this process only (an app without an archive, and the unit tests): the base for ``ArchiveMark``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version, self._raised, self._doubt_until = 0, 0.0, 0.0

    def read(self) -> tuple[int, bool] | None:
        """(the version a cache must have reached, whether writes are in doubt now); None if it cannot be told."""
        version, raised, doubt_until = self._load()
        now = time.time()
        return (version if now - raised < HORIZON_SECONDS else 0), doubt_until > now

    def raise_to(self, version: int) -> None:
        with self._lock:
            if version > self._version:
                self._version, self._raised = version, time.time()

    def doubt(self, seconds: float) -> None:
        with self._lock:
            self._doubt_until = max(self._doubt_until, time.time() + seconds)

    def _load(self) -> tuple[int, float, float]:
        with self._lock:
            return self._version, self._raised, self._doubt_until


class ArchiveMark(WriteMark):
    """The mark of ``region`` in the log archive (``LogStore.raise_write_mark`` and friends)."""

    def __init__(self, store: Callable[[], LogStore], region: str):
        super().__init__()
        self._store, self._region = store, region

    def read(self) -> tuple[int, bool] | None:
        try:
            return super().read()
        except Exception as exc:  # noqa: BLE001 - the archive is down: memory must not answer
            log.warning("watch cache %s: the write mark cannot be read (%s); reading from the apiserver",
                        self._region, type(exc).__name__)
            return None

    def raise_to(self, version: int) -> None:
        try:
            self._store().raise_write_mark(self._region, version)
        except Exception:  # noqa: BLE001 - the write itself is done; other replicas may answer late meanwhile
            log.exception("watch cache %s: the write mark could not be raised", self._region)

    def doubt(self, seconds: float) -> None:
        try:
            self._store().doubt_writes(self._region, time.time() + seconds)
        except Exception:  # noqa: BLE001 - as above
            log.exception("watch cache %s: writes could not be marked in doubt", self._region)

    def _load(self) -> tuple[int, float, float]:
        return self._store().write_mark(self._region)


def version_number(version: str) -> int | None:
    """resourceVersions are etcd revisions on every apiserver we know; one that is not a number is not compared."""
    return int(version) if version.isdigit() else None
