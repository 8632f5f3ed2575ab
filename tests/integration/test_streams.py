"""Followed logs and watched jobs against the real local cluster, on the session gateway (with its collector):
lines arrive as they are written, the end carries the exit code, a reconnect with Last-Event-ID loses and repeats
nothing, a deleted job's instance is replayed from the archive, the job level and the watch end with the job, and
stream tokens open streams only."""
from __future__ import annotations

import json
import secrets
import statistics
import time
from pathlib import Path

import pytest

from tests.support import sse_events as sse  # the tenx client's parser

from tests.support.conditions import until

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
                for event in sse.parse(block + "\n\n"):
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


def test_lines_arrive_as_written_and_the_end_carries_exit_code_0(user, gateway, record_property):
    """The container writes its lines, then waits for a file that the test makes only once it has received all of
    them: they cannot have come at the container's end. How late each came is reported, not asserted."""
    name, instance = create(user, ticking(gate=True))
    with follow(user, f"/jobs/{name}/instances/{instance}/logs") as response:
        reader = EventReader(response)
        events = reader.read(stop_after=lambda e: e.get("id") == str(TICKS - 1))
        gate_file(gateway, user, name).touch()  # only now may the container end
        events += reader.read()
    lines = [e for e in events if "event" not in e]
    assert [int(e["id"]) for e in lines] == list(range(TICKS))
    assert [json.loads(e["data"])["offset"] for e in lines] == list(range(TICKS))
    assert [int(json.loads(e["data"])["line"].split()[0]) for e in lines] == list(range(TICKS))
    lags = [e["received"] - float(json.loads(e["data"])["line"].split()[1]) for e in lines]
    record_property("follow_lag_ms", {"p50": round(statistics.median(lags) * 1000, 1),
                                      "max": round(max(lags) * 1000, 1)})
    print(f"follow lag: p50 {statistics.median(lags) * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms")
    end = events[-1]
    assert end["event"] == "end"
    assert json.loads(end["data"]) == {"instance": instance, "exit_code": 0, "reason": "Completed",
                                       "phase": "Succeeded"}
    # the job level, from the archive: the same lines, then the job's end
    with follow(user, f"/jobs/{name}/logs") as response:
        job_events = read_events(response)
    assert [(json.loads(e["data"])["instance"], json.loads(e["data"])["line"]) for e in job_events[:-1]] == [
        (instance, json.loads(e["data"])["line"]) for e in lines]
    assert job_events[-1]["event"] == "end"
    assert json.loads(job_events[-1]["data"]) == {
        "status": "succeeded", "instances": [{"name": instance, "exit_code": 0, "reason": "Completed"}]}


def test_a_failing_container_ends_with_its_non_zero_exit_code(user):
    name, instance = create(user, ticking(lines=3, exit_code=3))
    with follow(user, f"/jobs/{name}/instances/{instance}/logs") as response:
        events = read_events(response)
    assert [(offset, int(line.split()[0])) for offset, line in lines_of(events)[:3]] == [(n, n) for n in range(3)]
    end = json.loads(events[-1]["data"])
    assert events[-1]["event"] == "end" and end["instance"] == instance
    # exit 3; if the Job controller stopped the restarted container first, its SIGTERM's 143
    assert end["exit_code"] in (3, 143) and end["reason"] == "Error", end


def test_a_reconnect_with_last_event_id_loses_and_repeats_nothing(user):
    name, instance = create(user, ticking(lines=30, period=0.1))
    path = f"/jobs/{name}/instances/{instance}/logs"
    with follow(user, path) as response:
        first = read_events(response, stop_after=lambda e: e.get("id") == "9")
    with follow(user, path, headers={"Last-Event-ID": "9"}) as response:
        rest = read_events(response)
    got = lines_of(first) + lines_of(rest)
    assert [offset for offset, _ in got] == list(range(30))
    assert [int(line.split()[0]) for _, line in got] == list(range(30))
    assert rest[-1]["event"] == "end"
    # the query parameter does the same (a new EventSource cannot set headers); it wins over from
    with follow(user, path, last_event_id="24", **{"from": "3"}) as response:
        assert [offset for offset, _ in lines_of(read_events(response))] == list(range(25, 30))


def test_a_deleted_jobs_instance_is_replayed_from_the_archive(user, gateway):
    name, instance = create(user, ticking(lines=20, period=0.01))
    user.wait_for(name, lambda job: (job.get("status") or {}).get("succeeded"), 60)
    until(lambda: len(user.get(f"/jobs/{name}/logs").json()) == 20, 30, "the archive to hold every line")
    assert user.delete(f"/jobs/{name}").status_code == 200
    until(lambda: user.get(f"/jobs/{name}").status_code == 404 and not any(
        p for p in [gateway.namespace_of(user)] if _pod_exists(gateway, p, instance)), 60, "the pod to go")
    with follow(user, f"/jobs/{name}/instances/{instance}/logs", **{"from": "5"}) as response:
        events = read_events(response)
    assert [offset for offset, _ in lines_of(events)] == list(range(5, 20))
    assert [int(line.split()[0]) for _, line in lines_of(events)] == list(range(5, 20))
    assert events[-1]["event"] == "end"
    assert json.loads(events[-1]["data"]) == {"instance": instance, "exit_code": 0, "reason": "Completed",
                                              "phase": "Succeeded"}


def _pod_exists(gateway, namespace: str, pod: str) -> bool:
    from tests.support.harness import kubectl
    return kubectl("get", "pod", "-n", namespace, pod, "--ignore-not-found", "-o", "name").stdout.strip() != ""


def test_watch_reports_each_change_and_ends_with_the_job(user):
    name, instance = create(user, ticking(lines=5, start_delay=1))
    response = user.session.get(f"{user.base}/jobs/{name}/watch", stream=True, timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    with response:
        events = read_events(response)
    statuses = [json.loads(e["data"]) for e in events if e.get("event") == "status"]
    assert [int(e["id"]) for e in events if e.get("event") == "status"] == list(range(1, len(statuses) + 1))
    assert statuses[0]["name"] == name and statuses[0]["status"] in ("pending", "running")
    assert statuses[-1]["instances"][0]["name"] == instance
    end = json.loads(events[-1]["data"])
    assert events[-1]["event"] == "end" and end["status"] == "succeeded" and end["succeeded"] == 1
    assert end["instances"][0]["containers"][0]["exit_code"] == 0
    assert user.get(f"/jobs/no-such-{secrets.token_hex(2)}/watch").status_code == 404


def test_stream_tokens_open_streams_and_nothing_else(user, gateway):
    name, instance = create(user, ticking(lines=3, period=0.05))
    issued = user.post("/stream-tokens")
    assert issued.status_code == 200 and issued.json()["expires_in"] == 60
    token = issued.json()["stream_token"]
    bare = type(user.session)()  # no headers: the token alone
    url = f"{user.base}/jobs/{name}/instances/{instance}/logs"
    with bare.get(url, params={"follow": "1", "stream_token": token}, stream=True, timeout=60) as response:
        assert response.status_code == 200
        assert [offset for offset, _ in lines_of(read_events(response))] == [0, 1, 2]
    assert bare.get(url, params={"stream_token": token}, timeout=30).status_code == 401  # the paged call
    assert bare.get(f"{user.base}/jobs/{name}", params={"stream_token": token}, timeout=30).status_code == 401
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert bare.get(url, params={"follow": "true", "stream_token": forged}, timeout=30).status_code == 401
    assert bare.get(url.replace("/us/", "/eu/"), params={"follow": "true", "stream_token": token},
                    timeout=30).status_code in (401, 404)
    assert token not in gateway.log_text()
    assert user.get(f"/jobs/{name}/instances/{instance}/logs", params={"follow": "maybe"}).status_code == 400
    assert user.get(f"/jobs/{name}/instances/{instance}/logs", params={"follow": "false"}).json()[:1]


def test_watching_the_list_reports_a_new_job_and_its_end(user):
    response = user.session.get(f"{user.base}/jobs", params={"watch": "true"}, stream=True, timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    with response:
        reader = EventReader(response)
        name, _ = create(user, ticking(lines=12, period=0.5), prefix="lst")  # runs past a few looks (2 s)
        seen = reader.read(stop_after=lambda e: e.get("event") == "job" and json.loads(e["data"])["job"]["name"]
                           == name and json.loads(e["data"])["job"]["status"] == "succeeded", timeout=180)
    kinds = [json.loads(e["data"])["type"] for e in seen if e.get("event") == "job"
             and json.loads(e["data"])["job"]["name"] == name]
    assert kinds[0] == "ADDED" and kinds.count("ADDED") == 1 and "DELETED" not in kinds, kinds
    assert len(kinds) >= 2, [e.get("data") for e in seen]  # seen running (or pending), then succeeded
    assert user.get("/jobs", params={"watch": "false"}).json()["jobs"]
