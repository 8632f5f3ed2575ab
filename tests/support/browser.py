"""Debian's headless Chromium, the one browser the tests use: installed by the script `make test` runs, started
with the flags this machine's closed network needs (without the background-networking ones it fails, many
connections at a time), either as a command (/docs) or through Playwright (the console, EventSource)."""
from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .harness import ROOT

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """The browser's path, installed from Debian's packages if missing (scripts/install-test-deps.sh)."""
    result = subprocess.run([str(ROOT / "scripts/install-test-deps.sh")], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def run_chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    """One headless run of the browser on ``url`` with a fresh profile (``--dump-dom``, ``--screenshot=...``)."""
    with tempfile.TemporaryDirectory(prefix="tenx-chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900",
             "--virtual-time-budget=5000", *args, url],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@contextmanager
def playwright_browser() -> Iterator:
    """The system browser under Playwright, which never downloads one of its own."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()
