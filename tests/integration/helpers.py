"""Helpers for integration tests: a TenxCloud-style API client and Job condition checks."""
from __future__ import annotations

import time

import pytest
import requests


class ApiClient:
    """A TenxCloud-style client: the original's headers on every call."""

    def __init__(self, base: str, username: str, token: str, region: str = "us"):
        self.base = f"{base}/v1/regions/{region}"
        self.username = username
        self.session = requests.Session()
        self.session.headers.update({"username": username, "Authorization": f"token {token}"})

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.base + path, timeout=30, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.session.delete(self.base + path, timeout=30, **kwargs)

    def wait_for(self, name: str, done, timeout: float = 90) -> dict:
        """Poll GET /jobs/<name> until ``done(job)``; fail with the last body otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(f"/jobs/{name}").json()
            if done(body):
                return body
            if time.monotonic() > deadline:
                pytest.fail(f"job {name} did not get there in {timeout}s: {body.get('status')}")
            time.sleep(0.5)


def condition(job: dict, kind: str) -> dict | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind and cond["status"] == "True":
            return cond
    return None


def until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy, and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
