"""tenx.follow against a tiny local HTTP server: the SSE path (resume with Last-Event-ID after a shutdown, the
end event's exit codes, the watch stream) and the polling fallback when a gateway answers without
text/event-stream or the stream fails."""
from __future__ import annotations

import json

import pytest

from tenx.follow import Follower


SSE = "text/event-stream"
JSON = "application/json"


def job(status_conditions=(), active=0, names=("j-a",)):
    return json.dumps({"instance_names": list(names), "metadata": {"name": "j"}, "spec": {},
                       "status": {"active": active,
                                  "conditions": [{"type": t, "status": "True"} for t in status_conditions]}})


def test_job_stream_resumes_after_shutdown_and_ends_with_exit_codes(serve):
    first = ('retry: 10\n\n: keepalive\n\nid: 0\ndata: {"offset": 0, "instance": "j-a", "line": "one"}\n\n'
             'id: 1\ndata: {"offset": 1, "instance": "j-a", "line": "two"}\n\n'
             'event: shutdown\ndata: {"reason": "timeout", "resume": 1}\n\n')
    second = ('id: 2\ndata: {"offset": 2, "instance": "j-a", "line": "three"}\n\n'
              'event: end\ndata: {"status": "failed", "instances": [{"name": "j-a", "exit_code": 3, '
              '"reason": "Error"}]}\n\n')
    failed = json.dumps({"metadata": {"name": "j"}, "status": {"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "reached the limit"}]}})
    script, client = serve({"/jobs/j/logs": [(200, SSE, first), (200, SSE, second)],
                            "/jobs/j": [(200, JSON, failed)]})
    seen = []
    end = Follower(client, "j", sleep=lambda s: None).follow_job(lambda i, line: seen.append((i, line)))
    assert seen == [("j-a", "one"), ("j-a", "two"), ("j-a", "three")]
    assert (end.status, end.first_exit_code(), end.streamed) == ("failed", 3, True)
    assert end.reason == "BackoffLimitExceeded: reached the limit"  # asked once the stream said "failed"
    (_, query1, headers1), (_, _, headers2), (after, _, _) = script.requests[:3]
    assert after == "/v1/regions/us/jobs/j"
    assert query1 == {"follow": ["true"]} and "Last-Event-ID" not in headers1
    assert headers2["Last-Event-ID"] == "1" and headers2["username"] == "u" and headers2["Authorization"] == "token t"


def test_a_gateway_without_streams_is_polled_from_the_offsets_reached(serve):
    script, client = serve({
        "/jobs/j/logs": [(200, JSON, "[]")],  # follow=true ignored: a page
        "/jobs/j": [(200, JSON, job(active=1)), (200, JSON, job(["Complete"]))],
        "/jobs/j/instances/j-a/logs": [(200, JSON, '["one"]'), (200, JSON, '["two"]'), (200, JSON, "[]")],
        "/jobs/j/instances": [(200, JSON, json.dumps({"instances": [
            {"name": "j-a", "phase": "Succeeded", "containers": [{"state": "terminated", "exit_code": 0}]}]}))],
    })
    seen = []
    end = Follower(client, "j", sleep=lambda s: None).follow_job(lambda i, line: seen.append(line))
    assert seen == ["one", "two"] and end.status == "succeeded" and not end.streamed
    offsets = [q.get("from") for path, q, _ in script.requests if path.endswith("/instances/j-a/logs")]
    assert offsets == [["0"], ["1"], ["2"]]


def test_a_stream_that_fails_on_the_gateway_falls_back_to_polling(serve):
    broken = 'retry: 2000\n\nevent: error\ndata: {"code": 500, "message": "internal error"}\n\n'
    script, client = serve({
        "/jobs/j/logs": [(200, SSE, broken)],
        "/jobs/j": [(200, JSON, job(["Failed"]))],
        "/jobs/j/instances/j-a/logs": [(200, JSON, '["x"]'), (200, JSON, "[]")],
        "/jobs/j/instances": [(200, JSON, json.dumps({"instances": [
            {"name": "j-a", "phase": "Failed", "containers": [{"state": "terminated", "exit_code": 7}]}]}))],
    })
    end = Follower(client, "j", sleep=lambda s: None).follow_job(lambda i, line: None)
    assert (end.status, end.first_exit_code()) == ("failed", 7)


def test_a_stream_error_about_the_request_is_raised(serve):
    from tenx.errors import NotFound
    gone = 'event: error\ndata: {"code": 404, "message": "job \'j\' not found"}\n\n'
    _, client = serve({"/jobs/j/logs": [(200, SSE, gone)]})
    with pytest.raises(NotFound, match="job 'j' not found"):
        Follower(client, "j", sleep=lambda s: None).follow_job(lambda i, line: None)


def test_watch_stream_reports_each_status_then_the_end(serve):
    body = ('event: status\nid: 1\ndata: {"name": "j", "status": "pending", "active": 0}\n\n'
            'event: status\nid: 2\ndata: {"name": "j", "status": "running", "active": 1}\n\n'
            'event: end\ndata: {"status": "succeeded", "instances": []}\n\n')
    _, client = serve({"/jobs/j/watch": [(200, SSE, body)]})
    statuses = []
    end = Follower(client, "j").wait(lambda s: statuses.append(s["status"]))
    assert statuses == ["pending", "running"] and end.status == "succeeded"


def test_no_watch_call_polls_the_job(serve):
    # the first GET /jobs/j answers "is it the job that is missing, or the watch call?" after the 404
    _, client = serve({"/jobs/j": [(200, JSON, job(active=1)), (200, JSON, job(active=1)),
                                   (200, JSON, job(["Complete"]))],
                       "/jobs/j/instances": [(200, JSON, '{"instances": []}')]})
    statuses = []
    end = Follower(client, "j", sleep=lambda s: None).wait(lambda s: statuses.append(s["status"]))
    assert statuses == ["running", "succeeded"] and end.status == "succeeded"


def test_instance_stream_passes_from_and_date(serve):
    body = ('id: 5\ndata: {"offset": 5, "line": "six"}\n\n'
            'event: end\ndata: {"instance": "j-a", "exit_code": 0, "reason": "Completed", "phase": "Succeeded"}\n\n')
    script, client = serve({"/jobs/j/instances/j-a/logs": [(200, SSE, body)]})
    seen = []
    end = Follower(client, "j").follow_instance("j-a", lambda i, line: seen.append(line), offset=5,
                                                date="2026.11.28")
    assert seen == ["six"] and end.status == "succeeded"
    assert script.requests[0][1] == {"follow": ["true"], "from": ["5"], "date": ["2026.11.28"]}
