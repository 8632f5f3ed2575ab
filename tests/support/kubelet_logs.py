"""A container attempt's log files as the kubelet and its runtime leave them, for the node collector's tests:
CRI entries in ``<n>.log``; on ``rotate()`` the file is renamed ``<n>.log.<YYYYmmdd-HHMMSS>`` and a new ``<n>.log``
opened, every rotated file but the newest is gzipped, and the oldest are deleted past ``max_files`` (the live file
counts), as the kubelet's container log manager does."""
from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
from pathlib import Path

EPOCH = dt.datetime(2026, 12, 7, 10, 0, 0, tzinfo=dt.timezone.utc)


def entry(ts_ns: int, text: str | bytes, stream: str = "stdout", partial: bool = False) -> bytes:
    """One CRI entry, stamped as containerd stamps (RFC 3339, trailing zeros of the fraction trimmed)."""
    moment = dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, dt.timezone.utc)
    fraction = f"{ts_ns % 1_000_000_000:09d}".rstrip("0")
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"
    content = text.encode() if isinstance(text, str) else text
    return f"{stamp} {stream} {'P' if partial else 'F'} ".encode() + content + b"\n"


class FakeContainerLog:
    def __init__(self, directory: Path, attempt: int = 0, max_files: int = 3, start_ns: int | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.attempt, self.max_files = attempt, max_files
        self.live = self.directory / f"{attempt}.log"
        self.live.touch()
        self.ts = start_ns if start_ns is not None else int(EPOCH.timestamp()) * 1_000_000_000
        self._rotation = 0
        self.written = 0  # lines

    def write(self, text: str | bytes, stream: str = "stdout", partial: bool = False, step_ns: int = 1_000) -> int:
        """Append one entry; returns its stamp."""
        self.ts += step_ns
        with open(self.live, "ab") as out:
            out.write(entry(self.ts, text, stream, partial))
        if not partial:
            self.written += 1
        return self.ts

    def lines(self, count: int, prefix: str = "line", step_ns: int = 1_000_000) -> None:
        """``count`` full lines ``<prefix> <n>``, numbered from the lines written so far."""
        with open(self.live, "ab") as out:
            for _ in range(count):
                self.ts += step_ns
                out.write(entry(self.ts, f"{prefix} {self.written}"))
                self.written += 1

    def rotate(self) -> Path:
        """Rename the live file, open a new one, gzip the older rotated files, delete the oldest."""
        self._rotation += 1
        stamp = (EPOCH + dt.timedelta(seconds=self._rotation)).strftime("%Y%m%d-%H%M%S")
        rotated = self.directory / f"{self.attempt}.log.{stamp}"
        os.rename(self.live, rotated)
        self.live.touch()
        rotated_files = sorted(p for p in self.directory.iterdir()
                               if p.name.startswith(f"{self.attempt}.log.") and not p.name.endswith(".tmp"))
        for older in rotated_files[:-1]:
            if older.suffix != ".gz":
                with open(older, "rb") as source, gzip.open(f"{older}.gz.tmp", "wb") as target:
                    shutil.copyfileobj(source, target)
                os.rename(f"{older}.gz.tmp", f"{older}.gz")
                older.unlink()
        rotated_files = sorted(p for p in self.directory.iterdir() if p.name.startswith(f"{self.attempt}.log."))
        for doomed in rotated_files[:max(0, len(rotated_files) - (self.max_files - 1))]:
            doomed.unlink()
        return rotated
