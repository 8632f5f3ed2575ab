"""The streams' pure parts: SSE framing, stream tokens, the per-user slots, the runner's lifecycle (heartbeat,
timeouts, shutdown, errors, the producer stopped when the response ends), and the end/status event data."""
from __future__ import annotations

import itertools
import threading
import time

import orjson
import pytest

from gateway import errors
from gateway.streams import runner, slots, sse
from gateway.streams import token as stream_token
from gateway.logs.instance import pod_end, record_end
from gateway.streams.follow import instance_ends, job_state
from gateway.streams.watch import summary

from tests.support import sse_events

KEY = stream_token.signing_key("ab" * 32)


# -- sse -------------------------------------------------------------------------------------------------------

def test_an_event_is_one_data_line_of_json_whatever_the_text():
    framed = sse.event({"offset": 3, "line": "a\nb\r\nc"}, id=3)
    assert framed == b'id: 3\ndata: {"offset":3,"line":"a\\nb\\r\\nc"}\n\n'
    assert sse_events.parse(framed.decode()) == [{"id": "3", "data": '{"offset":3,"line":"a\\nb\\r\\nc"}'}]


def test_named_events_comments_and_retry():
    text = (sse.retry(2000) + sse.KEEPALIVE + sse.event({"x": 1}, name="end")).decode()
    assert text.startswith("retry: 2000\n\n: keepalive\n\n")
    assert sse_events.parse(text) == [{"event": "end", "data": '{"x":1}'}]


# -- stream tokens ---------------------------------------------------------------------------------------------

def keys(username):
    return KEY if username == "alice" else None


def test_a_token_names_its_user_until_it_expires():
    token = stream_token.issue("alice", "us", KEY, now=1000, lifetime=60)
    assert stream_token.verify(token, "us", keys, now=1059) == "alice"
    with pytest.raises(stream_token.InvalidToken, match="expired"):
        stream_token.verify(token, "us", keys, now=1061)


def test_a_token_is_bound_to_its_region():
    token = stream_token.issue("alice", "us", KEY, now=1000, lifetime=60)
    with pytest.raises(stream_token.InvalidToken, match="region"):
        stream_token.verify(token, "eu", keys, now=1000)


def test_expired_and_other_region_tokens_are_spent_not_forged():
    token = stream_token.issue("alice", "us", KEY, now=1000, lifetime=60)
    for region, now in (("us", 1061), ("eu", 1000)):
        with pytest.raises(stream_token.SpentToken):
            stream_token.verify(token, region, keys, now=now)
    rotated = stream_token.signing_key("cd" * 32)
    with pytest.raises(stream_token.InvalidToken) as forged:  # a signature that does not hold is never "spent"
        stream_token.verify(token, "us", lambda _: rotated, now=1061)
    assert not isinstance(forged.value, stream_token.SpentToken)


def test_a_new_api_token_revokes_stream_tokens():
    token = stream_token.issue("alice", "us", KEY, now=1000, lifetime=60)
    rotated = stream_token.signing_key("cd" * 32)
    with pytest.raises(stream_token.InvalidToken, match="signature"):
        stream_token.verify(token, "us", lambda _: rotated, now=1000)


@pytest.mark.parametrize("mangle", [
    lambda t: t + "x", lambda t: t.replace(".", ""), lambda t: "x" * 2000, lambda t: "", lambda t: "a.b",
    lambda t: t.split(".")[0] + "." + "A" * 43,
])
def test_forged_or_malformed_tokens_are_refused(mangle):
    token = stream_token.issue("alice", "us", KEY, now=1000, lifetime=60)
    with pytest.raises(stream_token.InvalidToken):
        stream_token.verify(mangle(token), "us", keys, now=1000)


def test_a_token_for_another_user_name_fails_without_their_key():
    payload = stream_token.issue("alice", "us", KEY, now=1000, lifetime=60)
    forged = stream_token.issue("bob", "us", KEY, now=1000, lifetime=60)  # signed with alice's key
    assert stream_token.verify(payload, "us", keys, now=1000) == "alice"
    with pytest.raises(stream_token.InvalidToken):
        stream_token.verify(forged, "us", lambda u: stream_token.signing_key("ef" * 32) if u == "bob" else KEY,
                            now=1000)


# -- slots -----------------------------------------------------------------------------------------------------

def test_a_user_holds_at_most_limit_slots_and_gets_them_back(tmp_path):
    held = [slots.acquire("alice", 2, str(tmp_path)) for _ in range(2)]
    assert all(held) and slots.acquire("alice", 2, str(tmp_path)) is None
    assert slots.acquire("bob", 2, str(tmp_path)) is not None  # another user's cap is their own
    held[0].release()
    held[0].release()  # idempotent
    assert slots.acquire("alice", 2, str(tmp_path)) is not None


def test_a_slot_dropped_without_release_is_given_back_when_collected(tmp_path):
    slot = slots.acquire("alice", 1, str(tmp_path))
    assert slots.acquire("alice", 1, str(tmp_path)) is None
    del slot
    assert slots.acquire("alice", 1, str(tmp_path)) is not None


def test_kinds_of_places_are_counted_apart(tmp_path):
    stream = slots.acquire("alice", 1, str(tmp_path))
    request = slots.acquire("alice", 1, str(tmp_path), kind="request")
    assert stream is not None and request is not None
    assert slots.acquire("alice", 1, str(tmp_path), kind="request") is None


# -- runner ----------------------------------------------------------------------------------------------------

LIMITS = runner.Limits(heartbeat=0.2, idle=60, total=60)


def events(body) -> list[dict[str, str]]:
    return sse_events.parse(b"".join(body).decode())


def test_events_then_the_end_then_the_slot_is_given_back():
    closed = threading.Event()

    def produce(out):
        for n in range(3):
            out.send(sse.event({"n": n}, id=n), id=n)
        out.send(sse.event({"exit_code": 0}, name="end"))

    got = events(runner.body(produce, LIMITS, on_close=closed.set))
    assert [e.get("id") for e in got] == ["0", "1", "2", None] and got[-1]["event"] == "end"
    assert closed.is_set()


def test_heartbeats_while_the_producer_is_quiet():
    heard = threading.Event()

    def produce(out):
        heard.wait(30)  # quiet until the client has had two heartbeats (or for 30 s if they never come)
        out.send(sse.event({}, name="end"))

    keepalives = 0
    for chunk in runner.body(produce, LIMITS):
        keepalives += chunk.count(b": keepalive")
        if keepalives >= 2:
            heard.set()
    assert heard.is_set()


def test_a_gateway_error_becomes_an_error_event_and_a_bug_a_500():
    def fails(out):
        raise errors.Unavailable("the cluster is not reachable")

    def bug(out):
        raise KeyError("x")

    assert orjson.loads(events(runner.body(fails, LIMITS))[-1]["data"])["code"] == 503
    last = events(runner.body(bug, LIMITS))[-1]
    assert last["event"] == "error" and orjson.loads(last["data"]) == {"code": 500, "status": "Internal Server Error",
                                                                        "message": "internal error"}


def test_idle_and_total_timeouts_end_with_shutdown_naming_the_last_id():
    clock = itertools.count(0, 0.5)
    stopped = threading.Event()

    def produce(out):
        out.send(sse.event({"n": 7}, id=7), id=7)
        try:
            while True:
                out.sleep(0.05)
        except runner.Stopped:
            stopped.set()
            raise

    got = events(runner.body(produce, runner.Limits(heartbeat=100, idle=3, total=100),
                             clock=lambda: next(clock)))
    assert got[-1] == {"event": "shutdown", "data": '{"reason":"timeout","resume":7}'}
    assert stopped.wait(30)  # the producer learns that nobody listens any more


def test_shutdown_ends_every_stream_with_its_resume_point(monkeypatch):
    stopped = threading.Event()

    def produce(out):
        out.send(sse.event({"n": 1}, id=1), id=1)
        try:
            out.sleep(60)  # a quiet stream: the shutdown may not wait for its next event
        except runner.Stopped:
            stopped.set()
            raise

    monkeypatch.setattr(runner, "_shutting_down", False)
    chunks = []
    for chunk in runner.body(produce, LIMITS):
        chunks.append(chunk)
        if any(e.get("id") == "1" for e in sse_events.parse(chunk.decode())):
            runner.begin_shutdown()  # the client has event 1 (one still queued then would not be sent)
    got = events(chunks)
    assert got[-1] == {"event": "shutdown", "data": '{"reason":"shutdown","resume":1}'}
    assert stopped.wait(30)  # the producer was told, not left to sleep on


def test_a_body_never_read_starts_no_producer_and_gives_its_slot_back_on_close():
    """A HEAD: werkzeug drops the body unread and closes it."""
    started, closed = threading.Event(), threading.Event()

    def produce(out):
        started.set()
        out.sleep(60)

    body = runner.body(produce, LIMITS, on_close=closed.set)
    body.close()
    body.close()  # idempotent
    assert closed.is_set() and not started.wait(0.3)
    assert list(body) == []


def test_a_stream_ends_with_a_401_once_its_user_is_gone():
    allowed = threading.Event()
    allowed.set()

    def produce(out):
        out.send(sse.event({"n": 1}, id=1), id=1)
        allowed.clear()  # the user is removed
        for _ in range(3000):  # 30 s or more: a stream not cut off by then ends with "end", and the test fails
            out.send(sse.event({"n": 2}, id=2), id=2)  # a busy stream (no heartbeat) is rechecked too
            out.sleep(0.01)
        out.send(sse.event({}, name="end"))

    got = events(runner.body(produce, LIMITS, still_allowed=allowed.is_set))
    assert got[-1]["event"] == "error" and orjson.loads(got[-1]["data"]) == {
        "code": 401, "status": "Unauthorized", "message": runner.REVOKED}


def test_a_user_table_that_cannot_be_read_cuts_no_stream():
    asked = threading.Event()

    def unreadable():
        asked.set()
        raise errors.Unavailable("the user table could not be read")

    def produce(out):
        asked.wait(30)  # the stream goes on until its user has been rechecked
        out.send(sse.event({}, name="end"))

    assert events(runner.body(produce, LIMITS, still_allowed=unreadable))[-1]["event"] == "end"
    assert asked.is_set()


def test_a_client_that_does_not_read_holds_a_bounded_number_of_bytes(monkeypatch):
    monkeypatch.setattr(runner, "_QUEUE_BYTES", 10_000)
    out = runner.Out()
    line = b"x" * 3000
    assert [out.offer(line) for _ in range(4)] == [True, True, True, False]
    big = b"y" * 50_000
    drain(out)
    assert out.offer(big) and not out.offer(b"z")  # one event larger than the bound passes, alone


def test_a_client_that_leaves_stops_the_producer():
    stopped = threading.Event()

    def produce(out):
        try:
            for n in itertools.count():
                out.send(sse.event({"n": n}, id=n), id=n)
        except runner.Stopped:
            stopped.set()
            raise

    body = runner.body(produce, LIMITS)
    next(body), next(body)
    body.close()
    assert stopped.wait(5)


# -- event data ------------------------------------------------------------------------------------------------

POD = {"metadata": {"name": "j-abcde"}, "spec": {"containers": [{"name": "j"}, {"name": "j-1"}]},
       "status": {"phase": "Failed", "containerStatuses": [
           {"name": "j-1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
           {"name": "j", "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}}


def test_the_end_of_a_pod_is_its_first_containers_last_termination():
    assert pod_end(POD) == {"instance": "j-abcde", "exit_code": 3, "reason": "Error", "phase": "Failed"}


def test_the_end_from_an_archived_record():
    record = {"name": "j-abcde", "phase": "Succeeded",
              "containers": [{"name": "j", "state": "terminated", "exit_code": 0, "reason": "Completed"}]}
    assert record_end("j-abcde", record) == {"instance": "j-abcde", "exit_code": 0, "reason": "Completed",
                                             "phase": "Succeeded"}
    assert record_end("j-x", None) == {"instance": "j-x", "exit_code": None, "reason": None, "phase": None}
    assert instance_ends([record]) == [{"name": "j-abcde", "exit_code": 0, "reason": "Completed"}]


@pytest.mark.parametrize("status,state", [
    ({}, "pending"), ({"active": 1}, "running"),
    ({"conditions": [{"type": "Complete", "status": "True"}]}, "succeeded"),
    ({"conditions": [{"type": "FailureTarget", "status": "True"}], "active": 1}, "failed"),
    ({"conditions": [{"type": "Failed", "status": "False"}], "active": 1}, "running"),
])
def test_job_state(status, state):
    assert job_state({"status": status}) == state


def test_the_watch_summary():
    job = {"metadata": {"name": "j"}, "spec": {"completions": 2, "parallelism": 1},
           "status": {"active": 1, "conditions": [{"type": "PodsHeldBack", "status": "True"}]}}
    assert summary(job, []) == {"name": "j", "status": "running", "active": 1, "succeeded": 0, "failed": 0,
                                "completions": 2, "parallelism": 1,
                                "conditions": [{"type": "PodsHeldBack", "status": "True"}], "instances": []}


# -- hub -------------------------------------------------------------------------------------------------------

def drain(out: runner.Out) -> list[tuple[bytes, int]]:
    items = []
    while taken := out.take(0):
        items += [(chunk, id_) for chunk, id_, _ in taken]
    return items


def offsets(items) -> list[int]:
    return [item[1] for item in items]


def test_a_hub_reads_once_for_every_subscriber_and_counts_offsets_from_the_start():
    from gateway.streams import hub as hubs
    opened = []
    release = threading.Event()

    def open_lines(skip):
        opened.append(skip)
        for n in range(skip, 5):
            yield f"line {n}"
        release.wait(5)  # the container still runs
        yield "line 5"

    registry = hubs.Hubs()
    hub = registry.get("k", open_lines)
    assert registry.get("k", open_lines) is hub
    assert wait_for(lambda: hub.next == 5)
    outs = [runner.Out(), runner.Out()]
    results = {}
    threads = [threading.Thread(target=lambda i=i, start=start: results.__setitem__(i, hub.follow(outs[i], start)))
               for i, start in enumerate((0, 3))]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: len(hub._subscribers) == 2)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == {0: 6, 1: 6} and opened == [0] and len(registry) == 0  # one upstream; an ended hub goes
    first, second = drain(outs[0]), drain(outs[1])
    assert offsets(first) == [0, 1, 2, 3, 4, 5] and offsets(second) == [3, 4, 5]
    assert first[5][0] == second[2][0] == sse.event({"offset": 5, "line": "line 5"}, id=5)  # framed once


def test_a_subscriber_behind_the_buffer_is_told_where_it_stands(monkeypatch):
    from gateway.streams import hub as hubs
    monkeypatch.setattr(hubs, "BUFFER_LINES", 3)
    hub = hubs.Hub(lambda skip: iter([f"l{n}" for n in range(10)]), lambda: None).start()
    assert wait_for(lambda: hub.ended)
    out = runner.Out()
    assert hub.follow(out, 7) == 10 and offsets(drain(out)) == [7, 8, 9]
    with pytest.raises(hubs.Behind) as behind:
        hub.follow(out, 2)
    assert behind.value.offset == 2


def _subscribed_before_the_first_line(lines: int, start: int):
    """A hub whose upstream holds its ``lines`` lines back until a subscriber from ``start`` (in a thread of its
    own) is in: (out, got, reader) once they flow; ``got`` receives what ``follow`` returned."""
    from gateway.streams import hub as hubs
    go = threading.Event()

    def open_lines(skip):
        go.wait(5)
        for n in range(lines):
            yield f"l{n}"

    hub = hubs.Hub(open_lines, lambda: None).start()
    out, got = runner.Out(), []
    reader = threading.Thread(target=lambda: got.append(hub.follow(out, start)))
    reader.start()
    assert wait_for(lambda: hub._subscribers)
    go.set()
    return out, got, reader


def test_a_slow_subscriber_is_let_go_and_catches_up_from_the_buffer(monkeypatch):
    monkeypatch.setattr(runner, "_QUEUE", 4)
    out, got, reader = _subscribed_before_the_first_line(20, 0)
    items = []
    while reader.is_alive() or out._items:
        time.sleep(0.01)
        items += drain(out)
    assert got == [20] and offsets(items) == list(range(20))


def test_a_broken_upstream_is_reopened_where_it_stopped(monkeypatch):
    from gateway.streams import hub as hubs
    monkeypatch.setattr(hubs, "_RETRY_SECONDS", 0)
    opened = []

    def open_lines(skip):
        opened.append(skip)
        yield f"l{skip}"
        if skip < 2:
            raise errors.Unavailable("broke")

    hub = hubs.Hub(open_lines, lambda: None).start()
    assert wait_for(lambda: hub.ended)
    out = runner.Out()
    assert hub.follow(out, 0) == 3 and opened == [0, 1, 2] and hub.failure is None


def wait_for(predicate, timeout=5):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_watching_the_list_sends_added_then_each_change_and_deletion(monkeypatch):
    from gateway.streams import watch
    monkeypatch.setattr(watch, "LIST_POLL_SECONDS", 0.01)

    def job(name, active=0, succeeded=0):
        done = [{"type": "Complete", "status": "True"}] if succeeded else []
        return {"metadata": {"name": name}, "spec": {},
                "status": {"active": active, "succeeded": succeeded, "conditions": done}}

    lists = iter([[job("a", active=1)], [job("a", active=1)], [job("a", succeeded=1), job("b")], [job("b")]])

    def list_jobs():
        try:
            return next(lists)
        except StopIteration:
            raise errors.Unavailable("enough") from None

    got = events(runner.body(lambda out: watch.watch_jobs(list_jobs, out), LIMITS))
    changes = [(e["id"], orjson.loads(e["data"])["type"], orjson.loads(e["data"])["job"]["name"],
                orjson.loads(e["data"])["job"]["status"]) for e in got if e.get("event") == "job"]
    assert changes == [("1", "ADDED", "a", "running"), ("2", "MODIFIED", "a", "succeeded"),
                       ("3", "ADDED", "b", "pending"), ("4", "DELETED", "a", "succeeded")]
    assert got[-1]["event"] == "error"


def test_a_subscriber_ahead_of_the_log_gets_lines_from_its_offset_only():
    out, got, reader = _subscribed_before_the_first_line(8, 5)
    reader.join(5)
    assert got == [8] and offsets(drain(out)) == [5, 6, 7]


def test_a_nul_in_a_line_is_sent_as_the_archive_stores_it():
    """Pages of the archive give U+FFFD for NUL (PostgreSQL text cannot hold it); a stream at that offset too."""
    from gateway.streams.hub import frame
    assert frame(3, "a\x00b") == sse.event({"offset": 3, "line": "a\ufffdb"}, id=3)
