"""One container attempt's log files on the node, read as one stream of whole entries, across rotations.

The kubelet keeps ``<n>.log`` for attempt ``n`` (its restart count) in ``<pod logs dir>/<namespace>_<pod>_<uid>/
<container>/``. Past ``containerLogMaxSize`` it renames the file to ``<n>.log.<YYYYmmdd-HHMMSS>`` and has the runtime
reopen ``<n>.log``; later it gzips the older rotated files (``.gz``) and deletes the oldest past
``containerLogMaxFiles``. So the attempt's bytes are the rotated files in stamp order, then ``<n>.log``.

A file is known by its fingerprint (a hash of its first entry: a nanosecond stamp and the line, unique within a
container), which survives the rename and the compression; a position is (fingerprint, byte offset), committed with
the lines it covers. Every file is opened as soon as it is seen and held open until read to its end, so a file the
kubelet deletes meanwhile (rotation, or the pod's removal) is still read whole: only a file created and deleted while
no collector looked is lost, and then ``gap`` says so.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import time
from dataclasses import dataclass
from typing import Any

ROTATED = re.compile(r"^(\d+)\.log\.(\d{8}-\d{6})(\.gz)?$")
FINGERPRINT_BYTES = 256
SETTLE_SECONDS = 1.0
MAX_ENTRY_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 4 * 1024 * 1024
LIVE_STAMP = "~"  # <n>.log sorts after every rotated file's stamp
LOOK_SECONDS = 0.5  # how often a reader behind the live file looks for newer files (the kubelet rotates every 10 s)  # a rotated file may still take the runtime's last write until its new file has data


@dataclass(frozen=True)
class Position:
    file: str  # fingerprint
    offset: int


def fingerprint(first_entry: bytes) -> str:
    return hashlib.blake2b(first_entry[:FINGERPRINT_BYTES], digest_size=10).hexdigest()


def _first_entry(read: Any) -> bytes | None:
    head = read(FINGERPRINT_BYTES + 1)
    newline = head.find(b"\n")
    if newline == -1 and len(head) <= FINGERPRINT_BYTES:
        return None  # the first entry is not whole yet
    return head[:newline if newline != -1 else FINGERPRINT_BYTES]


class LogFile:
    """One file, held open: plain (an fd, read with pread, growing while it is the live file) or gzipped."""

    def __init__(self, path: str, stamp: str) -> None:
        self.path, self.stamp = path, stamp
        self.gz = path.endswith(".gz")
        self.fp: str | None = None
        self.inode: int | None = None
        self._gzip: gzip.GzipFile | None = None
        self._fd: int | None = None
        if self.gz:
            self._gzip = gzip.open(path, "rb")
        else:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            self.inode = os.fstat(self._fd).st_ino

    def identify(self) -> str | None:
        """The fingerprint, once the first entry is whole."""
        if self.fp is None:
            first = _first_entry(lambda n: self.read(0, n))
            if first is not None:
                self.fp = fingerprint(first)
        return self.fp

    def read(self, offset: int, size: int) -> bytes:
        if self._fd is not None:
            return os.pread(self._fd, size, offset)
        assert self._gzip is not None
        if self._gzip.tell() != offset:
            self._gzip.seek(offset)
        try:
            return self._gzip.read(size)
        except (EOFError, OSError, gzip.BadGzipFile):  # cut short (deleted while written): what was read is all
            return b""

    def size(self) -> int | None:
        return os.fstat(self._fd).st_size if self._fd is not None else None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._gzip is not None:
            self._gzip.close()
            self._gzip = None


@dataclass(frozen=True)
class Gap:
    """Bytes of this attempt that were deleted before they were read: after ``position`` (None: from the start)
    up to the start of the first file still there."""
    after: Position | None


class AttemptLog:
    """Attempt ``attempt``'s files in ``directory``, read from ``start`` on."""

    def __init__(self, directory: str, attempt: int, start: Position | None, *, settle: float = SETTLE_SECONDS):
        self.directory, self.attempt = directory, attempt
        self.live_path = os.path.join(directory, f"{attempt}.log")
        self._start = start
        self._settle = settle
        self.files: list[LogFile] = []  # in log order; files[0] is being read
        self._done: set[str] = set()  # fingerprints read whole (their later copies, e.g. gzipped, are skipped)
        self._names: dict[str, str | None] = {}  # names seen -> fingerprint (None while unknown)
        self.offset = 0
        self.gap: Gap | None = None  # set once, when ``start``'s file is gone; the reader reports it
        self.found = False  # a file of this attempt was seen
        self.began_rotated = False  # the first file seen was a rotated one: earlier files may have been deleted
        self._rotated_at: float | None = None
        self._looked = 0.0
        self._reading = False
        self.complete = False  # the caller's word: the attempt's output ended (no file will grow or appear)

    # -- discovery -------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Open the files that appeared since the last look, in log order."""
        self._looked = time.monotonic()
        for _ in range(5):  # a file renamed or gzipped between the listing and its open: look again
            if not self._look():
                break
        if not self.found and self.files:
            self.began_rotated = self.files[0].stamp != LIVE_STAMP
        self.found = self.found or bool(self.files)
        if self._start is not None and self.files and not self._seek_start():
            # The start's file may have been renamed between the listing and the opens (the live file rotated: the
            # name <n>.log opened the new one): a second listing sees it under its rotated name. Gone only if not.
            self._look()
            if not self._seek_start():
                self.gap = Gap(self._start)  # every file still there comes after it (the oldest go first)
                self._start = None

    def _look(self) -> bool:
        """One listing; True if a listed file was gone before it could be opened."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            names = []
        live = f"{self.attempt}.log"
        found: list[tuple[str, str]] = []
        for name in names:
            if name == live:
                found.append((LIVE_STAMP, name))
            else:
                match = ROTATED.match(name)
                if match and int(match.group(1)) == self.attempt:
                    found.append((match.group(2), name))
        found.sort()
        vanished = False
        for stamp, name in found:
            if name in self._names and not (name == live and self._live_replaced()):
                continue
            vanished |= not self._add(os.path.join(self.directory, name), stamp)
        return vanished

    def _live_replaced(self) -> bool:
        """``<n>.log`` is another file than the one held under that name (the kubelet rotated it)."""
        try:
            inode = os.stat(self.live_path).st_ino
        except FileNotFoundError:
            return False
        return not any(f.inode == inode for f in self.files)

    def _add(self, path: str, stamp: str) -> bool:
        """Hold the file unless it is one held or read already; False if it was gone before it was opened."""
        name = os.path.basename(path)
        try:
            candidate = LogFile(path, stamp)
        except FileNotFoundError:
            return False
        held = next((f for f in self.files if candidate.inode is not None and f.inode == candidate.inode), None)
        if held is not None:
            candidate.close()  # a held file under its rotated name: it takes that name's place in the order
            self._restamp(held, stamp)
            self._names[name] = held.fp
            return True
        fp = candidate.identify()
        self._names[name] = fp
        # a held file not identified when it was added (empty then) is now: its gzipped copy must match it
        copied = next((f for f in self.files if fp is not None and f.identify() == fp), None)
        if copied is not None or (fp is not None and fp in self._done):
            candidate.close()  # a copy (gzipped) of a file held or read already
            if copied is not None:
                self._restamp(copied, stamp)  # its rotated name may never have been seen: the copy's says where
            return True
        # in stamp order behind the file being read (a file older than that one can only be a copy); before the
        # start is found none is being read yet: all in stamp order
        floor = 0 if self._start is not None else 1
        index = len(self.files)
        while index > floor and self.files[index - 1].stamp > stamp:
            index -= 1
        self.files.insert(index, candidate)
        return True

    def _restamp(self, file: LogFile, stamp: str) -> None:
        """A held file's place in the order, learnt from a later name of it; the file being read stays first."""
        file.stamp = stamp
        floor = 0 if self._start is not None else 1  # as in _add
        self.files[floor:] = sorted(self.files[floor:], key=lambda f: f.stamp)

    def _seek_start(self) -> bool:
        """Drop the files before the start position; False if its file is not among those held."""
        start = self._start
        if start is None:
            return True
        for index, file in enumerate(self.files):
            if file.identify() == start.file:
                for earlier in self.files[:index]:
                    self._done.add(earlier.fp or "")
                    earlier.close()
                del self.files[:index]
                self.offset = start.offset
                self._start = None
                return True
        return False

    # -- reading ---------------------------------------------------------------------------------------------

    @property
    def position(self) -> Position | None:
        if not self.files or self.files[0].identify() is None:
            return None
        return Position(self.files[0].fp, self.offset)  # type: ignore[arg-type]

    def read(self, max_bytes: int) -> bytes:
        """Whole entries from the position on, at most about ``max_bytes``; b"" when there is nothing new."""
        if self._reading and time.monotonic() - self._looked >= LOOK_SECONDS:
            self.refresh()  # while busy, maybe behind rotations: hold every newer file before the kubelet deletes it
        self._reading = False
        while self.files:
            file = self.files[0]
            size = max_bytes
            data = file.read(self.offset, size)
            while b"\n" not in data and len(data) == size and size < MAX_ENTRY_BYTES:
                size *= 4  # an entry longer than asked for (the runtime's entries are 16 KiB at most)
                data = file.read(self.offset, size)
            end = data.rfind(b"\n") + 1
            if not end and len(data) >= MAX_ENTRY_BYTES:
                self.offset += len(data)  # no entry is that long: taken as one, rather than stall on it
                return data + b"\n"
            if end:
                self.offset += end
                self._reading = True
                return data[:end]
            if data and self.complete:
                self.offset += len(data)  # a last entry cut short (the file was closed mid-write): kept
                return data + b"\n"
            if not self._finished(file):
                return b""
            self._done.add(file.identify() or f"inode:{file.inode}")
            file.close()
            self.files.pop(0)
            self.offset = 0
            self._rotated_at = None
        return b""

    def _finished(self, file: LogFile) -> bool:
        """Nothing more will be written to ``file``, whose end has been read."""
        if self.complete:
            return True
        if len(self.files) == 1:
            if not self._live_replaced():
                return False
            self.refresh()  # the new <n>.log
            if len(self.files) == 1:
                return False
        # rotated: the runtime writes to the new file once it has reopened; until then, wait a little
        nxt = self.files[1]
        if nxt.size() is None or (nxt.size() or 0) > 0:
            return True
        now = time.monotonic()
        if self._rotated_at is None:
            self._rotated_at = now
        return now - self._rotated_at >= self._settle

    def lines_ahead(self, max_bytes: int = 256 * 1024 * 1024) -> tuple[int, int | None, int | None]:
        """(entries, first stamp, last stamp) of everything held from the position on, without moving on: the rate
        the container wrote at since then, over all the files still there (a flood comes in bursts; a batch alone
        would say more than it wrote). Read at most ``max_bytes``."""
        from .cri import entry_ns
        count, first, last_entry, budget = 0, None, b"", max_bytes
        for index, file in enumerate(self.files):
            offset = self.offset if index == 0 else 0
            while budget > 0:
                data = file.read(offset, min(CHUNK_BYTES, budget))
                end = data.rfind(b"\n") + 1
                if not end:
                    break
                chunk = data[:end]
                if first is None:
                    first = entry_ns(chunk.split(b" ", 1)[0])
                count += chunk.count(b"\n")
                last_entry = chunk[chunk.rfind(b"\n", 0, end - 1) + 1:]
                offset += end
                budget -= end
        last = entry_ns(last_entry.split(b" ", 1)[0]) if last_entry else None
        return count, first, last

    def backlog(self) -> int:
        """Bytes not read yet, of the plain files held (a gzipped file's size is not known without reading it)."""
        total = 0
        for index, file in enumerate(self.files):
            size = file.size()
            if size is not None:
                total += size - (self.offset if index == 0 else 0)
        return max(0, total)

    def close(self) -> None:
        for file in self.files:
            with contextlib.suppress(OSError):
                file.close()
        self.files = []
