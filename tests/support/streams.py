"""Followed logs over the session gateway, for the integration tests of streams: a job that prints numbered lines
on a clock (``ticking``, which may wait for the test's word to end: ``gate_file``), its creation, a follow request, and its events as they arrive (``EventReader``)."""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from . import sse_events

TICKS = 15  # lines of the ticking job, one every 200 ms, each "<n> <unix time written>"


def ticking(lines: int = TICKS, period: float = 0.2, exit_code: int = 0, start_delay: float = 0,
            gate: bool = False) -> dict:
    """``gate``: after its lines the container waits for a file ``go`` in its host volume ``gate`` (``gate_file``)
    before it exits; without one after 5 minutes it exits 97 instead."""
    wait = ("n=0; while [ ! -e /gate/go ] && [ $n -lt 3000 ]; do sleep 0.1; n=$((n+1)); done; "
            "[ -e /gate/go ] || exit 97; ") if gate else ""
    script = (f"sleep {start_delay}; i=0; while [ $i -lt {lines} ]; do echo \"$i $(date +%s.%N)\"; i=$((i+1)); "
              f"sleep {period}; done; {wait}exit {exit_code}")
    spec = {"containers": [{"image": "busybox", "command": ["sh", "-c", script]}], "backoff_limit": 0}
    if gate:
        spec["containers"][0]["volumeMounts"] = [{"name": "gate", "mountPath": "/gate"}]
        spec["volumes"] = [{"name": "gate", "type": "host"}]
    return spec


def gate_file(gateway, user, name: str) -> Path:
    """Where a ``ticking(gate=True)`` job of ``name`` looks for ``go``, as the host sees it."""
    return Path(gateway.volume_root) / user.username / "job" / name / "gate" / "go"


class EventReader:
    """The events of one SSE response as they arrive, each with its receipt time (``received``). One generator
    for the response's whole life: a new ``iter_content`` after leaving one would have lost the connection."""

    def __init__(self, response):
        self._events = self._parse(response)

    @staticmethod
    def _parse(response):
        pending = ""
        for chunk in response.iter_content(chunk_size=None, decode_unicode=True):
            received = time.time()
            pending += chunk
            *blocks, pending = pending.split("\n\n")
            for block in blocks:
                for event in sse_events.parse(block + "\n\n"):
                    yield {**event, "received": received}

    def read(self, stop_after=None, timeout: float = 90) -> list[dict]:
        """Events until one matches ``stop_after`` (included) or the stream ends."""
        got, deadline = [], time.monotonic() + timeout
        for event in self._events:
            got.append(event)
            if stop_after and stop_after(event):
                break
            assert time.monotonic() < deadline, f"stream still open after {timeout}s: {got[-3:]}"
        return got


def read_events(response, stop_after=None, timeout: float = 90) -> list[dict]:
    """The events of a response read once (see EventReader)."""
    return EventReader(response).read(stop_after, timeout)


def create(user, spec: dict, prefix: str = "fol") -> tuple[str, str]:
    name = f"{prefix}-{secrets.token_hex(3)}"
    assert user.post(f"/jobs/{name}", json=spec).status_code == 200
    instance = user.wait_for(name, lambda job: job.get("instance_names"), 180)["instance_names"][0]
    return name, instance


def follow(user, path: str, headers: dict | None = None, **params):
    response = user.session.get(f"{user.base}{path}", params={"follow": "true", **params}, headers=headers,
                                stream=True, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["X-Accel-Buffering"] == "no"
    return response


def lines_of(events) -> list[tuple[int, str]]:
    return [(int(e["id"]), json.loads(e["data"])["line"]) for e in events if "event" not in e]
