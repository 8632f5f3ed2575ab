"""The app the unit-level fuzzer talks to: ``create_app`` with a fake apiserver behind the real ``Kube``, one user
(alice), and in alice's namespace a finished Job whose pod logged two days of odd lines."""
from __future__ import annotations

import datetime as dt
from typing import Any

from gateway import create_app
from gateway.names import namespace_for

from .fake_apiserver import FakeApiserver, FakeRegions
from .properties import answer_problems

BASE = "/v1/regions/us"
ALICE = {"username": "alice", "Authorization": "token alice-token"}
JOB, POD = "fuzz-job", "fuzz-job-x7k2p"
NAMESPACE = namespace_for("alice", "tenx-")


class OneUser:
    """The user table: alice and her token (no Secret, no cluster)."""

    def verify(self, username: str, token: str) -> bool:
        return (username, token) == ("alice", "alice-token")


def log_lines() -> list[tuple[dt.datetime, str]]:
    """Two days of a pod's log, with what log text can hold: empty, control characters, non-ASCII, a long line."""
    day1 = dt.datetime(2026, 11, 27, 23, 59, 0, tzinfo=dt.timezone.utc)
    day2 = dt.datetime(2026, 11, 28, 0, 0, 1, tzinfo=dt.timezone.utc)
    texts = ["start", "", "tab\there", "nul\x00byte", "esc\x1b[31mred", "é 名前 😀", "x" * 10000, "end"]
    return [(day + dt.timedelta(seconds=i), text) for day in (day1, day2) for i, text in enumerate(texts)]


class FuzzedApp:
    def __init__(self, data_dir: str):
        self.apiserver = FakeApiserver()
        self.apiserver.add_namespace(NAMESPACE, "alice")
        self.apiserver.add_job_with_pod(NAMESPACE, JOB, POD, log_lines())
        app = create_app({"regions": {"us": ""}, "data_dir": data_dir})
        gateway = app.extensions["tenx"]
        gateway.users = OneUser()
        gateway.regions = FakeRegions(gateway.settings, self.apiserver)
        self.client = app.test_client()

    def call(self, method: str, path: str, **kwargs: Any):
        """One request as alice; returns the response, what is wrong with it (the fuzzer's properties) and the
        request and answer in a line."""
        apiserver = self.apiserver
        created_before = len(apiserver.created)
        headers = {**ALICE, **kwargs.pop("headers", {})}
        response = self.client.open(BASE + path, method=method, headers=headers, **kwargs)
        status, body = response.status_code, response.get_data()
        problems = answer_problems(method, status, response.headers, body)
        made = apiserver.created[created_before:]
        if 400 <= status < 500 and made:
            problems.append(f"created {made} on a {status}")
        if apiserver.unexpected:
            problems.append(f"sent the apiserver requests outside the gateway's routes: {apiserver.unexpected}")
        if apiserver.rejected:
            problems.append(f"passed on what the apiserver refuses: {apiserver.rejected}")
        apiserver.unexpected.clear()
        apiserver.rejected.clear()
        sent = kwargs.get("data", kwargs.get("json", kwargs.get("query_string", "")))
        return response, problems, f"{method} {path} {str(sent)[:300]!r} -> {status} {body[:400]!r}"
