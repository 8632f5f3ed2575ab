"""The app the unit-level fuzzer talks to: ``create_app`` with a fake apiserver behind the real ``Kube``, one user
(alice), and in alice's namespace a finished Job whose pod logged two days of odd lines."""
from __future__ import annotations

import datetime as dt
from typing import Any

from gateway import create_app
from gateway.names import namespace_for

from .fake_apiserver_http import FakeApiserver, FakeRegions
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
    """Two days of a pod's log, with what log text can hold: empty, control characters (300 of them: 300 bytes of
    text, 1,800 of JSON), non-ASCII, a long line."""
    day1 = dt.datetime(2026, 11, 27, 23, 59, 0, tzinfo=dt.timezone.utc)
    day2 = dt.datetime(2026, 11, 28, 0, 0, 1, tzinfo=dt.timezone.utc)
    texts = ["start", "\x01" * 300, "", "tab\there", "nul\x00byte", "esc\x1b[31mred", "é 名前 😀", "x" * 10000,
             "end"]
    return [(day + dt.timedelta(seconds=i), text) for day in (day1, day2) for i, text in enumerate(texts)]


# The log byte cap the fuzzer runs with: its least allowed value, so the seeded log (a 10,000-character line, control
# characters that take 6 bytes each in JSON) overflows it.
LOG_MAX_BYTES = 1024


class FuzzedApp:
    def __init__(self, data_dir: str):
        self.apiserver = FakeApiserver()
        self.apiserver.add_namespace(NAMESPACE, "alice")
        self._seed()
        app = create_app({"regions": {"us": ""}, "data_dir": data_dir, "log_max_bytes": LOG_MAX_BYTES})
        gateway = app.extensions["tenx"]
        gateway.users = OneUser()
        gateway.regions = FakeRegions(gateway.settings, self.apiserver)
        self.client = app.test_client()

    def _seed(self) -> None:
        """The finished Job and its pod (again, if an example deleted the Job)."""
        if (NAMESPACE, JOB) not in self.apiserver.jobs:
            self.apiserver.add_job_with_pod(NAMESPACE, JOB, POD, log_lines())

    def call(self, method: str, path: str, **kwargs: Any):
        """One request as alice; returns the response, what is wrong with it (the fuzzer's properties) and the
        request and answer in a line."""
        apiserver = self.apiserver
        self._seed()
        created_before = len(apiserver.created)
        headers = {**ALICE, **kwargs.pop("headers", {})}
        response = self.client.open(BASE + path, method=method, headers=headers, **kwargs)
        status, body = response.status_code, response.get_data()
        response.close()  # as the server does once the answer is sent (a HEAD's body is never iterated)
        problems = answer_problems(method, status, response.headers, body)
        if status == 200 and path.endswith("/logs") and len(body) > LOG_MAX_BYTES:
            problems.append(f"a logs answer of {len(body)} bytes, over the cap of {LOG_MAX_BYTES}")
        if apiserver.open_streams():
            problems.append(f"left apiserver answers unreleased: {apiserver.open_streams()}")
        apiserver.streams.clear()
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
