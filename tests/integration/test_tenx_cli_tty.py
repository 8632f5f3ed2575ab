"""``tenx`` on a terminal (a pseudo-terminal from Python's ``pty``): ``run`` follows by default and shows the log
live, ``ls`` draws its table in colour. The job waits for a file the test writes into its host volume, so "live"
is shown by order, not by timing: its first line must be on the screen while the job cannot have ended."""
from __future__ import annotations

from pathlib import Path

from tests.support.terminal import Terminal
from tests.support.tenx_cli import TENX, logged_in


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
