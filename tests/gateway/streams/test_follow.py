"""gateway/streams/follow with ``since`` and ``timestamps``: the events keep the paged call's offsets as ids, lines
older than ``since`` are counted but not sent, and ``timestamps`` adds each line's ``time``; from a pod that has
ended, from the archive once it is gone, and on the job's log."""
from __future__ import annotations

import contextlib

import orjson
import pytest

from gateway import errors

from gateway.streams import follow
from gateway.logs.instance import Instance
from gateway.streams.follow import Where
from gateway.timefmt import NS

from tests.support.fake_logs import NS_OF, T0, TENANT, TEXTS, Archive, Kube


class Out:
    """A stream's events as the client would parse them: (name, id, data)."""

    def __init__(self):
        self.events: list[tuple[str, str | None, dict]] = []

    def send(self, chunk: bytes, id=None):
        fields = dict(line.split(": ", 1) for line in chunk.decode().strip().splitlines() if ": " in line)
        self.events.append((fields.get("event", "message"), fields.get("id"), orjson.loads(fields["data"])))

    def sleep(self, seconds):
        pass

    def lines(self):
        return [(event_id, data) for name, event_id, data in self.events if name == "message"]


@pytest.fixture(autouse=True)
def _no_settling(monkeypatch):
    monkeypatch.setattr(follow, "SETTLE_SECONDS", 0)
    monkeypatch.setattr(follow, "GONE_SETTLE_SECONDS", 0)


class RecordedArchive(Archive):
    def instances(self, namespace, job):
        return [{"name": "job-abcde", "phase": "Succeeded", "containers": [{"name": "job", "state": "terminated",
                                                                            "exit_code": 0}]}]


def where(offset=0, **given):
    return Where(offset, None, "UTC", 65536, **given)


def test_an_ended_pods_lines_from_since_with_their_time():
    out = Out()
    pod = Instance("job-abcde", "uid", "job", "Succeeded", {"instance": "job-abcde", "exit_code": 0})
    follow.follow_instance(Kube(), RecordedArchive(), TENANT, "job", "job-abcde",
                           where(since=T0 + NS, timestamps=True), out, pod)
    assert out.lines() == [(str(i), {"offset": i, "line": TEXTS[i], "time": stamp})
                           for i, stamp in [(1, "2026-11-28T09:00:01.500000000Z"),
                                            (2, "2026-11-28T09:00:02.123456789Z"),
                                            (3, "2026-11-28T09:00:03.000000000Z"),
                                            (4, "2026-11-29T00:00:01.000000000Z")]]
    assert out.events[-1][0] == "end"


def test_a_gone_pods_lines_from_the_archive_resume_after_the_last_event_id():
    out = Out()
    follow.follow_instance(Kube(pod_exists=False), RecordedArchive(), TENANT, "job", "job-abcde",
                           where(offset=3, since=T0 + NS), out, None)
    assert out.lines() == [("3", {"offset": 3, "line": "three"}), ("4", {"offset": 4, "line": "next day"})]


class NodeThatDoesNotKnowTheLogYet(Kube):
    """The pod's node answers its log with a 404 once (as a kubelet that does not know the pod's log yet), and the
    pod is over when it is looked at again."""

    def __init__(self):
        super().__init__()
        self.refusals = 1

    def get_pod(self, namespace, name):
        return {**super().get_pod(namespace, name), "status": {"phase": "Succeeded"}}

    @contextlib.contextmanager
    def pod_log(self, *args, **kwargs):
        if self.refusals:
            self.refusals -= 1
            raise errors.NotFound("the server could not find the requested resource ( pods/log job-abcde)")
        with super().pod_log(*args, **kwargs) as chunks:
            yield chunks


def test_a_404_for_a_running_pods_log_looks_at_the_pod_again_instead_of_ending_the_stream():
    out = Out()
    pod = Instance("job-abcde", "uid", "job", "Running", {"instance": "job-abcde", "exit_code": None})
    follow.follow_instance(NodeThatDoesNotKnowTheLogYet(), RecordedArchive(), TENANT, "job", "job-abcde",
                           where(timestamps=True), out, pod)
    assert [data["line"] for _, data in out.lines()] == TEXTS
    assert [name for name, _, _ in out.events if name != "message"] == ["end"]


def test_without_since_or_timestamps_the_events_are_as_before():
    out = Out()
    follow.replay_archive(RecordedArchive(), TENANT, "job", "job-abcde", where(offset=3), out)
    assert out.lines() == [("3", {"offset": 3, "line": "three"}), ("4", {"offset": 4, "line": "next day"})]


def test_the_jobs_log_from_since_with_time():
    out = Out()
    state = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    follow.follow_job(Kube(), RecordedArchive(), TENANT, "job", where(since=NS_OF[4], timestamps=True), out,
                      lambda *_: state, lambda *_: {"instances": []})
    assert out.lines() == [("4", {"offset": 4, "instance": "job-abcde", "line": "next day",
                                  "time": "2026-11-29T00:00:01.000000000Z"})]
    assert out.events[-1][0] == "end" and out.events[-1][2]["status"] == "succeeded"
