"""Per-user caps shared by every gunicorn worker of the host: concurrent streams, and requests in progress
(gateway/inflight.py).

Each user has ``limit`` slot files per kind in one directory (gunicorn.conf.py makes it and hands it to the workers
in ``TENX_GATEWAY_STREAM_SLOTS_DIR``); a stream or a request holds an exclusive ``flock`` on one of them while it
runs. A lock belongs to its open file, so the kernel releases it when the holder closes the file or its worker
dies: a crashed worker never leaks slots, and a ``Slot`` dropped without ``release`` closes its file when it is
collected. Non-blocking, so it is safe under gevent. Across replicas the cap is per replica.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import random
import tempfile
import threading
import weakref

DIR_VARIABLE = "TENX_GATEWAY_STREAM_SLOTS_DIR"
_fallback: str | None = None
_fallback_lock = threading.Lock()


def slots_dir() -> str:
    """The shared directory; a private one per process outside gunicorn (tests, the Flask dev server)."""
    global _fallback
    shared = os.environ.get(DIR_VARIABLE)
    if shared:
        return shared
    with _fallback_lock:
        if _fallback is None:
            _fallback = tempfile.mkdtemp(prefix="tenx-gateway-streams-")
        return _fallback


class Slot:
    """One held slot; ``release`` (idempotent) gives it back. Closing the file drops its lock."""

    def __init__(self, fd: int):
        self._close = weakref.finalize(self, os.close, fd)  # runs once: at release, or when collected

    def release(self) -> None:
        self._close()

    @property
    def held(self) -> bool:
        return self._close.alive


def acquire(username: str, limit: int, directory: str | None = None, kind: str = "stream") -> Slot | None:
    """A free slot of ``username``'s ``limit`` of ``kind``, or None when all are held."""
    directory = directory or slots_dir()
    owner = username if kind == "stream" else f"{kind}:{username}"  # streams keep the file names they always had
    stem = hashlib.sha256(owner.encode()).hexdigest()[:32]  # any user name, a safe file name
    first = random.randrange(limit)  # a free slot is usually found at the first try, even with a large cap
    for index in ((first + step) % limit for step in range(limit)):
        fd = os.open(os.path.join(directory, f"{stem}.{index}"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return Slot(fd)
    return None
