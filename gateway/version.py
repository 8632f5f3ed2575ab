"""The one place the gateway's version is written (setup.cfg reads it from here, without importing the package),
and the commit it was built from, when that is known. ``GET /version``, the OpenAPI document's ``info.version`` and
the ``tenx_gateway_build_info`` metric all say what this module says."""
from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

# PEP 440. Between releases the next one's .dev0; CHANGELOG.md's "Unreleased" section says what it holds so far.
__version__ = "0.2.0.dev0"

COMMIT_VARIABLE = "GATEWAY_BUILD_COMMIT"  # the image build sets it (docker build --build-arg)
_CHECKOUT = Path(__file__).resolve().parents[1]


@functools.cache
def commit() -> str | None:
    """The git commit of this code: ``GATEWAY_BUILD_COMMIT`` if set, else the checkout's HEAD when the package runs
    from one (``make run``, the tests); None for an installed wheel without the variable."""
    given = os.environ.get(COMMIT_VARIABLE, "").strip()
    if given:
        return given
    if not (_CHECKOUT / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(_CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    head = done.stdout.strip()
    return head if done.returncode == 0 and head else None


def info() -> dict[str, str]:
    """``GET /version``'s body: the version, and the commit when known."""
    known = commit()
    return {"version": __version__, **({"commit": known} if known else {})}
