"""Schemathesis hooks for test_reliability_fuzz.py, loaded by the CLI through SCHEMATHESIS_HOOKS.

- a check: the only server error allowed is 503 with ``Retry-After`` (the cluster unavailable), whatever the input;
- a tally of the statuses answered, written to the file named by TENX_FUZZ_STATUSES when the run ends.
"""
from __future__ import annotations

import atexit
import collections
import json
import os
import threading

import schemathesis

_statuses: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


@schemathesis.check
def server_error_only_503_with_retry_after(ctx, response, case):
    """A 5xx other than 503, or a 503 without Retry-After, is a failure."""
    if response.status_code < 500:
        return None
    if response.status_code != 503:
        raise AssertionError(f"server error {response.status_code}")
    if not response.headers.get("retry-after"):
        raise AssertionError("503 without Retry-After")
    return None


@schemathesis.hook
def after_call(context, case, response):
    with _lock:
        _statuses[str(response.status_code)] += 1


def _write() -> None:
    path = os.environ.get("TENX_FUZZ_STATUSES")
    if path:
        with open(path, "w") as sink:
            json.dump(dict(sorted(_statuses.items())), sink)


atexit.register(_write)
