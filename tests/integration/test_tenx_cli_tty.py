"""``tenx`` on a terminal (a pseudo-terminal from Python's ``pty``): ``run`` follows by default and shows the log
live, ``ls`` draws its table in colour. The job waits for a file the test writes into its host volume, so "live"
is shown by order, not by timing: its first line must be on the screen while the job cannot have ended."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
from pathlib import Path

from ..harness import wait_until
from .test_tenx_cli import TENX, logged_in

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


def test_run_on_a_terminal_follows_live_and_ls_draws_a_coloured_table(gateway, make_user, tmp_path):
    tenx = logged_in(gateway, make_user, tmp_path / "config")
    gate = Path(gateway.volume_root) / tenx.api.username / "job" / "tty-live" / "gate"
    screen = Terminal([TENX, "run", "tty-live", "--image", "busybox", "--volume", "gate:/gate", "--", "sh", "-c",
                       "echo line-one; while [ ! -e /gate/go ]; do sleep 0.2; done; echo line-two"], tenx.env)
    try:
        screen.until(lambda: "line-one" in screen.text, 300, "the first line on the terminal")
        assert screen.process.poll() is None and "line-two" not in screen.text  # live: the job is still waiting
        gate.mkdir(parents=True, exist_ok=True)
        (gate / "go").write_text("")
        code = screen.finish()
    finally:
        if screen.process.poll() is None:
            screen.process.kill()
    assert code == 0, screen.text
    text = screen.text
    assert text.index("line-one") < text.index("line-two") < text.index("job tty-live succeeded")
    assert "\x1b[" in screen.raw.decode(errors="replace")  # coloured on a terminal

    table = Terminal([TENX, "ls"], tenx.env)
    assert table.finish() == 0
    rows = [line.split() for line in table.text.splitlines() if line.strip()]
    assert rows[0] == ["NAME", "STATUS", "COMPLETIONS", "AGE", "DURATION"]
    assert rows[1][:3] == ["tty-live", "succeeded", "1/1"]
    assert "\x1b[32m" in table.raw.decode() or "\x1b[32;" in table.raw.decode() or "32m" in table.raw.decode()
