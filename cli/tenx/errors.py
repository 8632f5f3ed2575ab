"""What can go wrong, and the exit status each failure gives (docs/users.md, "The tenx command line": its table)."""
from __future__ import annotations

from typing import Any

OK = 0
JOB_FAILED = 1
USAGE = 2         # click's own status for a usage error
NOT_FOUND = 3
AUTH = 4
UNAVAILABLE = 5
REFUSED = 6       # the gateway refused the request: invalid job.json, quota, a name that exists...
TIMED_OUT = 7     # wait --timeout passed
INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class TenxError(Exception):
    """A failure to report as one line on stderr and an exit status."""

    exit_code = REFUSED

    def __init__(self, message: str, *, exit_code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(TenxError):
    exit_code = USAGE


class NotFound(TenxError):
    exit_code = NOT_FOUND


class AuthError(TenxError):
    exit_code = AUTH


class Unavailable(TenxError):
    exit_code = UNAVAILABLE


class TimedOut(TenxError):
    exit_code = TIMED_OUT


def _flatten(errors: Any, prefix: str = "") -> list[str]:
    """``{"containers": {"0": {"image": ["Missing..."]}}}`` -> ``["containers.0.image: Missing..."]``."""
    if isinstance(errors, dict):
        out: list[str] = []
        for key, value in errors.items():
            out += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(errors, list) and all(isinstance(item, str) for item in errors):
        return [f"{prefix}: {' '.join(errors)}" if prefix else " ".join(errors)]
    if isinstance(errors, list):
        return [line for index, item in enumerate(errors) for line in _flatten(item, f"{prefix}.{index}")]
    return [f"{prefix}: {errors}" if prefix else str(errors)]


def describe(status: int, body: Any, fallback: str = "") -> str:
    """One line from the gateway's error shape ``{"code", "status", "message"[, "errors"]}``: the message, and the
    field errors when the message only says to see them."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        text = fallback.strip().splitlines()[0][:200] if fallback.strip() else ""
        return f"the gateway answered {status}" + (f": {text}" if text else "")
    message = body["message"]
    details = _flatten(body["errors"]) if body.get("errors") else []
    if details:
        message = message.removesuffix(": see errors").removesuffix("see errors").rstrip(": ")
        message += ": " + "; ".join(details)
    return message


def from_response(status: int, body: Any, text: str = "", retry_after: str | None = None) -> TenxError:
    """The gateway's error answer as the exception (and so the exit status) it stands for."""
    message = describe(status, body, text)
    if status == 401:
        return AuthError(f"{message} (check the user and token: tenx login)", status=status)
    if status == 404:
        return NotFound(message, status=status)
    if status == 429 or status >= 500:
        if retry_after:
            message += f" (retry after {retry_after} s)"
        return Unavailable(message, status=status)
    return TenxError(message, status=status)
