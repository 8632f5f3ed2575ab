"""The per-user cap on concurrent streams, shared by every gunicorn worker of the host.

Each user has ``limit`` slot files in one directory (gunicorn.conf.py makes it and hands it to the workers in
``TENX_GATEWAY_STREAM_SLOTS_DIR``); a stream holds an exclusive ``flock`` on one of them while it runs. A lock
belongs to its open file, so the kernel releases it when the stream closes the file or its worker dies: a crashed
worker never leaks slots. Non-blocking, so it is safe under gevent. Across replicas the cap is per replica.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import random
import tempfile
import threading

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
    """One held slot; ``release`` (idempotent) gives it back."""

    def __init__(self, fd: int):
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the file drops its lock


def acquire(username: str, limit: int, directory: str | None = None) -> Slot | None:
    """A free slot of ``username``'s ``limit``, or None when all are held."""
    directory = directory or slots_dir()
    stem = hashlib.sha256(username.encode()).hexdigest()[:32]  # any user name, a safe file name
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
