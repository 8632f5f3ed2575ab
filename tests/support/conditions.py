"""Helpers for integration tests: the API client, Job condition checks and polling (from tests/support/harness.py)."""
from __future__ import annotations

from .harness import ApiClient, wait_until

__all__ = ["ApiClient", "condition", "until", "wait_until"]


def condition(job: dict, kind: str) -> dict | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind and cond["status"] == "True":
            return cond
    return None


def until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy, and return that; fail after ``timeout`` seconds."""
    return wait_until(predicate, timeout, interval, what=what)
