"""The stream calls as a neighbour and a careless client would use them: another tenant's job is not found by any
stream (with headers or with a stream token), and resume points, follow switches and stream tokens that are not
what the contract says are 4xx, never a 5xx and never a stream."""
from __future__ import annotations

import pytest
import requests

from tests.support.harness import start_gateway
from tests.support.streams import create, lines_of, read_events, ticking


@pytest.fixture(scope="module")
def owner_job(make_user):
    owner = make_user("own")
    name, instance = create(owner, ticking(lines=3, period=0.05), prefix="wal")
    return owner, name, instance


def _stream_paths(name: str, instance: str) -> list[str]:
    return [f"/jobs/{name}/instances/{instance}/logs?follow=true", f"/jobs/{name}/logs?follow=true",
            f"/jobs/{name}/watch"]


def test_a_neighbour_finds_no_stream_of_anothers_job(owner_job, make_user):
    owner, name, instance = owner_job
    neighbour = make_user("nbr")
    for path in _stream_paths(name, instance):
        answer = neighbour.get(path)
        assert answer.status_code == 404, (path, answer.status_code, answer.text[:200])
        assert answer.headers["Content-Type"].startswith("application/json")


def test_a_neighbours_stream_token_opens_only_the_neighbours_jobs(owner_job, make_user):
    owner, name, instance = owner_job
    neighbour = make_user("nbr")
    token = neighbour.post("/stream-tokens").json()["stream_token"]
    bare = type(neighbour.session)()
    for path in _stream_paths(name, instance):
        # the owner's headers beside the neighbour's token: the token says who is asking
        answer = bare.get(f"{owner.base}{path}", params={"stream_token": token},
                          headers=dict(owner.session.headers), timeout=30)
        assert answer.status_code == 404, (path, answer.status_code, answer.text[:200])


@pytest.mark.parametrize("resume", ["abc", "-2", "1e3", "1.5", "\u0663", "0x10", "--5", "1_000", "9" * 400])
def test_a_resume_point_that_is_not_a_line_offset_is_a_400(owner_job, resume):
    owner, name, instance = owner_job
    path = f"/jobs/{name}/instances/{instance}/logs"
    answers = [owner.get(path, params={"follow": "true", "last_event_id": resume})]
    if resume.isascii():  # HTTP header values are ASCII; gunicorn itself refuses others
        answers.append(owner.session.get(f"{owner.base}{path}", params={"follow": "true"},
                                         headers={"Last-Event-ID": resume}, timeout=30))
    for answer in answers:
        assert answer.status_code == 400, (resume, answer.status_code, answer.text[:200])
        assert "last_event_id" in answer.json()["errors"]


@pytest.mark.parametrize("params", [{"follow": "yes"}, {"follow": "true", "from": "-1"},
                                    {"follow": "true", "date": "2026.13.01"}, {"follow": "TRUE", "from": "x"}])
def test_follow_with_bad_parameters_is_a_400(owner_job, params):
    owner, name, instance = owner_job
    for path in (f"/jobs/{name}/instances/{instance}/logs", f"/jobs/{name}/logs"):
        answer = owner.get(path, params=params)
        assert answer.status_code == 400, (path, params, answer.status_code, answer.text[:200])


def test_a_resume_past_the_end_sends_no_line_again(owner_job):
    owner, name, instance = owner_job
    owner.wait_for(name, lambda job: (job.get("status") or {}).get("succeeded"), 180)
    with owner.session.get(f"{owner.base}/jobs/{name}/instances/{instance}/logs", params={"follow": "true"},
                           headers={"Last-Event-ID": "2"}, stream=True, timeout=60) as response:
        events = read_events(response)
    assert lines_of(events) == [] and events[-1]["event"] == "end"


@pytest.fixture(scope="module")
def throttled_gateway(local_cluster, tmp_path_factory):
    """Its own gateway: bad tokens count as failed logins of 127.0.0.1, which the session's other tests share."""
    server = start_gateway(tmp_path_factory.mktemp("token-gateway"))
    yield server
    server.close()


@pytest.mark.parametrize("token", ["", "x", "a.b.c", "\u00e9t\u00e9", "A" * 3000, "%00", "../../jobs"])
def test_a_malformed_stream_token_is_a_401_and_never_echoed(throttled_gateway, token):
    answer = requests.get(f"{throttled_gateway.url}/v1/regions/us/jobs/any/watch", params={"stream_token": token},
                          timeout=30)
    assert answer.status_code in (401, 429), answer.status_code  # 429 once the client's failures pass the limit
    assert answer.json()["code"] == answer.status_code
    assert len(token) < 4 or token not in answer.text
