"""The real ``.venv/bin/tenx`` as a job user runs it: logged in through ``tenx login`` into a config directory of its
own (``XDG_CONFIG_HOME``), so nothing reads or writes the developer's own ``~/.config/tenx``."""
from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .harness import VENV_BIN, ApiClient

TENX = str(VENV_BIN / "tenx")


@dataclass
class Tenx:
    """A logged-in job user's command line."""

    env: dict[str, str]
    api: ApiClient
    config_dir: Path

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([TENX, *args], env={**self.env, **(env or {})}, input=input, capture_output=True,
                              text=True, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        # Ctrl-C as on a terminal: a test run started in the background (`make test &`) passes SIGINT on ignored,
        # and Python then never turns it into KeyboardInterrupt
        return subprocess.Popen([TENX, *args], env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def base_env(config_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TENX_")}
    return {**env, "XDG_CONFIG_HOME": str(config_dir), "HOME": str(config_dir), "NO_COLOR": "1"}


def token_of(client: ApiClient) -> str:
    return client.session.headers["Authorization"].split(" ", 1)[1]


def logged_in(gateway, make_user, config_dir: Path) -> Tenx:
    client = make_user("cli")
    env = base_env(config_dir)
    done = subprocess.run([TENX, "login", "--url", gateway.url, "--user", client.username], env=env,
                          input=token_of(client) + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return Tenx(env=env, api=client, config_dir=config_dir)
