"""``since`` and ``timestamps=true`` through the real server (gunicorn, the collector, the local cluster): on the
paged calls while the pod exists, from the archive once it is gone, on the job's log, and with ``follow=true``;
``from`` and ``size`` count the same lines as without them."""
from __future__ import annotations

import orjson

from gateway.timefmt import stamp_ns

from tests.support.conditions import condition
from tests.support.archive_jobs import job_name, namespace_of, pods_gone, shell_job, wait_until

STAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z "
# three lines a second or more apart, so that `since` can fall between them
SCRIPT = "echo first; sleep 1.2; echo second; sleep 1.2; echo third"


def stamped(page: list[str]) -> list[tuple[str, str]]:
    return [tuple(line.split(" ", 1)) for line in page]


def check_pages(user, path: str, prefix: str = "") -> None:
    plain = user.get(path).json()
    assert plain == [f"{prefix}first", f"{prefix}second", f"{prefix}third"]
    response = user.get(path, params={"timestamps": "true"})
    assert response.status_code == 200 and "X-Log-Offset" not in response.headers
    lines = [line.removeprefix(prefix) for line in response.json()]
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert [line.split(" ", 1)[1] for line in lines] == ["first", "second", "third"]
    assert all(len(s) == 30 and s.endswith("Z") and stamp_ns(s) for s in stamps), stamps
    assert stamp_ns(stamps[0]) < stamp_ns(stamps[1]) < stamp_ns(stamps[2])

    since = user.get(path, params={"since": stamps[1], "size": 1})  # exactly the second line's stamp
    assert since.json() == [f"{prefix}second"] and since.headers["X-Log-Offset"] == "1"
    nothing_yet = user.get(path, params={"since": "2999-01-01T00:00:00Z"})
    assert nothing_yet.json() == [] and nothing_yet.headers["X-Log-Offset"] == "3"
    everything = user.get(path, params={"since": "1h", "from": 2})  # from wins when it is later
    assert everything.json() == [f"{prefix}third"] and everything.headers["X-Log-Offset"] == "2"
    assert user.get(path, params={"since": "yesterday"}).status_code == 400
    assert user.get(path, params={"timestamps": "maybe"}).json()["errors"] == {"timestamps": ["must be true or false"]}


def follow_events(user, path: str, **params) -> list[tuple[str, dict]]:
    with user.get(path, params={"follow": "true", **params}, stream=True) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events, name, data = [], "message", None
        for raw in response.iter_lines():
            line = raw.decode()
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])
            elif not line and data is not None:
                events.append((name, data))
                if name == "end":
                    break
                name, data = "message", None
    return events


def test_since_and_timestamps_on_a_pods_log_then_on_the_archives(user, gateway, local_cluster):
    name = job_name("since")
    assert user.post(f"/jobs/{name}", json=shell_job(SCRIPT)).status_code == 200
    instance = user.wait_for(name, lambda j: condition(j, "Complete"), timeout=120)["instance_names"][0]
    path = f"/jobs/{name}/instances/{instance}/logs"
    check_pages(user, path)  # the pod's own log

    stamps = [line.split(" ", 1)[0] for line in user.get(path, params={"timestamps": "1"}).json()]
    events = follow_events(user, path, since=stamps[1], timestamps="true")
    assert events[:-1] == [("message", {"offset": 1, "line": "second", "time": stamps[1]}),
                           ("message", {"offset": 2, "line": "third", "time": stamps[2]})]
    assert events[-1][0] == "end"

    wait_until(lambda: len(user.get(f"/jobs/{name}/logs").json()) == 3, what="the archive to hold the lines")
    check_pages(user, f"/jobs/{name}/logs", prefix=f"[{instance}] ")  # the job's log: the archive
    job_events = follow_events(user, f"/jobs/{name}/logs", since=stamps[2], timestamps="true")
    assert job_events[0] == ("message", {"offset": 2, "instance": instance, "line": "third", "time": stamps[2]})

    assert user.delete(f"/jobs/{name}").status_code == 200
    wait_until(lambda: pods_gone(local_cluster, namespace_of(user, gateway), name), what="pods to be deleted")
    check_pages(user, path)  # the archive's, the pod gone
    assert user.get(path, params={"timestamps": "true"}).json() == [f"{s} {t}" for s, t in
                                                                    zip(stamps, ["first", "second", "third"])]
    archived = follow_events(user, path, since=stamps[2])
    assert archived[0] == ("message", {"offset": 2, "line": "third"})
