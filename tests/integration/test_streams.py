"""Followed logs and watched jobs against the real local cluster, on the session gateway (with its collector):
lines arrive as they are written, the end carries the exit code, a reconnect with Last-Event-ID loses and repeats
nothing, a deleted job's instance is replayed from the archive, the job level and the watch end with the job, and
stream tokens open streams only."""
from __future__ import annotations

import json
import secrets
import statistics

from tests.support.conditions import until
from tests.support.streams import (TICKS, EventReader, create, follow, gate_file, lines_of, read_events,
                                   ticking)


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
