"""A process on a pseudo-terminal (Python's ``pty``) and what it has written so far, for ``tenx`` on a terminal."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios

from .harness import wait_until

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A process on a pseudo-terminal of 120x40, and what it has written so far."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {key: value for key, value in env.items() if key != "NO_COLOR"}
        self.process = subprocess.Popen(args, env={**env, "TERM": "xterm-256color", "COLUMNS": "120"},
                                        stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        self.raw = b""

    def read(self, timeout: float = 0.2) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.raw += os.read(self.master, 65536)
            except OSError:  # EIO: the other side is closed
                pass

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode(errors="replace"))

    def until(self, predicate, timeout: float, what: str):
        def check():
            self.read()
            return predicate()
        if not wait_until(check, timeout, interval=0):
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; the screen's end:\n"
                                 f"{self.text[-1500:]}")

    def finish(self, timeout: float = 90) -> int:
        self.until(lambda: self.process.poll() is not None, timeout, "tenx to exit")
        for _ in range(5):
            self.read(0.05)
        os.close(self.master)
        return self.process.returncode
