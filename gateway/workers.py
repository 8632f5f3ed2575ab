"""gunicorn's gevent and gthread workers with a send timeout (gunicorn.conf.py selects them).

gunicorn writes an answer with ``sendall`` and no timeout: a client that never reads holds its answer in the
worker's memory for as long as it keeps the connection open. Here every answer is sent in pieces of
``PIECE_BYTES``, each within ``GATEWAY_SEND_TIMEOUT_SECONDS``; a client that takes none in that time is dropped
(as one that hung up is: gunicorn closes the connection, the access log has the status and the bytes sent, and the
body's ``close`` gives back what the request held). Reading requests is unchanged (gunicorn's keepalive timeout).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging

from gunicorn.workers.ggevent import GeventWorker as _GeventWorker
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from . import config

log = logging.getLogger(__name__)

PIECE_BYTES = 64 * 1024


class ClientTooSlow(ConnectionError):
    """A piece of an answer not taken within the send timeout. Its errno is EPIPE so that gunicorn drops the
    connection as it does for a client that hung up, with no traceback in the log."""

    def __init__(self, seconds: float):
        super().__init__(errno.EPIPE, f"the client took no data for {seconds:g} s")


class TimedSends:
    """A client socket whose ``sendall`` gives up after ``seconds`` without a piece sent; all else as the socket."""

    def __init__(self, sock, seconds: float):
        self._sock = sock
        self._seconds = seconds

    def sendall(self, data, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        previous = self._sock.gettimeout()
        self._sock.settimeout(self._seconds)
        try:
            for start in range(0, len(view), PIECE_BYTES):
                self._sock.sendall(view[start:start + PIECE_BYTES], flags)
        except TimeoutError:
            log.info("dropped a client that took no data for %g s", self._seconds)
            raise ClientTooSlow(self._seconds) from None
        finally:
            self._sock.settimeout(previous)

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def _send_timeout() -> float:
    return config.from_env().send_timeout_seconds


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BYTES = 256 * 1024


def return_large_blocks_to_the_system() -> bool:
    """Blocks of ``LARGE_BYTES`` or more (an answer's body: a log page is up to 4 MiB) each in its own mapping,
    given back to the system when freed. glibc otherwise raises this threshold to the largest block freed so far,
    so that after the first large answer the next ones came from the heap, and a heap pinned by small objects
    allocated meanwhile kept what 32 held answers had taken (tens of MiB) after they were gone. False where the C
    library has no mallopt (musl)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, LARGE_BYTES))
    except (OSError, AttributeError):
        return False


class GeventWorker(_GeventWorker):
    def init_process(self) -> None:
        self.send_timeout = _send_timeout()
        return_large_blocks_to_the_system()
        super().init_process()

    def handle_request(self, listener_name, req, sock, addr):
        return super().handle_request(listener_name, req, TimedSends(sock, self.send_timeout), addr)


class ThreadWorker(_ThreadWorker):
    def init_process(self) -> None:
        self.send_timeout = _send_timeout()
        return_large_blocks_to_the_system()
        super().init_process()

    def handle_request(self, req, conn):
        sock = conn.sock
        conn.sock = TimedSends(sock, self.send_timeout)
        try:
            return super().handle_request(req, conn)
        finally:
            conn.sock = sock
