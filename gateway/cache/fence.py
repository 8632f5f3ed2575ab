"""The write fence the API processes of one gunicorn share: the newest Job write any of them made.

Each worker has its own watch cache, and a client's next call may land on another worker whose watch has not yet
brought the write in. After a create, a worker raises the fence to the created Job's resourceVersion; after a
delete, to the version at which its own cache saw the Job go (or, if it did not see that in time, it marks the
fence "in doubt" for a while). A read answers from memory only once its cache has reached the fence; until then it
waits a little, then asks the apiserver. Writes are rare, so an flock around the update costs nothing; a read is
two loads from a shared page.

The file is ``<PROMETHEUS_MULTIPROC_DIR>/watch-cache-fence-<region>-<gunicorn master's pid>`` (gunicorn.conf.py
gives every gunicorn that directory; the pid keeps a restarted gunicorn, maybe facing a cluster whose versions
started over, from inheriting an old fence); without that variable (an in-process app) the fence is this
process's alone.
"""
from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import time

_LAYOUT = struct.Struct("<Qd")  # (resourceVersion, wall-clock time until which the fence is in doubt)


class Fence:
    def __init__(self, path: str | None = None):
        self._lock = threading.Lock()
        self._fd = -1
        if path:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_size < _LAYOUT.size:
                os.ftruncate(self._fd, _LAYOUT.size)
            self._map = mmap.mmap(self._fd, _LAYOUT.size)
        else:
            self._map = mmap.mmap(-1, _LAYOUT.size)

    @classmethod
    def for_region(cls, region: str) -> Fence:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        name = f"watch-cache-fence-{region}-{os.getppid()}"
        return cls(os.path.join(directory, name) if directory else None)

    def read(self) -> tuple[int, bool]:
        """(the newest write's resourceVersion, whether a write is in doubt now)."""
        version, doubt_until = _LAYOUT.unpack_from(self._map)
        return version, doubt_until > time.time()

    def raise_to(self, version: int) -> None:
        with self._locked():
            current, doubt_until = _LAYOUT.unpack_from(self._map)
            if version > current:
                _LAYOUT.pack_into(self._map, 0, version, doubt_until)

    def doubt(self, seconds: float) -> None:
        """A write whose version is unknown: reads go to the apiserver for ``seconds``."""
        with self._locked():
            current, doubt_until = _LAYOUT.unpack_from(self._map)
            _LAYOUT.pack_into(self._map, 0, current, max(doubt_until, time.time() + seconds))

    def _locked(self):
        return _FileLock(self._fd, self._lock)


class _FileLock:
    def __init__(self, fd: int, lock: threading.Lock):
        self._fd, self._lock = fd, lock

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


def version_number(version: str) -> int | None:
    """resourceVersions are etcd revisions on every apiserver we know; one that is not a number is not compared."""
    return int(version) if version.isdigit() else None
