"""The jobs views with the Kubernetes layer faked: hostile bodies and paths, trailing slashes, empty log
parameters, the ends of the calendar, and the list stream's connection (HEAD, a list that breaks off)."""
from __future__ import annotations

import pytest

from gateway import errors

from tests.support.fake_app import app_client
from tests.support.fake_kube import FakeKube, stamp

JOBS = "/v1/regions/us/jobs"
POD = {"metadata": {"name": "j-abcde", "namespace": "tenx-alice", "labels": {"job-name": "j"}},
       "spec": {"containers": [{"name": "j"}]}}
JOB_LIST = (b'{"kind":"JobList","apiVersion":"batch/v1","metadata":{"resourceVersion":"7"},"items":['
            b'{"metadata":{"name":"j","namespace":"tenx-alice","uid":"u"},"spec":{},"status":{}}]}\n')


class Stream:
    """A list stream as kube.ChunkStream gives it: chunks, then maybe a break; remembers being closed."""

    def __init__(self, chunks, breaks=False):
        self.chunks, self.breaks, self.closed, self.read = list(chunks), breaks, False, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.chunks:
            self.read += 1
            return self.chunks.pop(0)
        if self.breaks:
            raise errors.Unavailable("the stream from the cluster broke off", headers={"Retry-After": "5"})
        raise StopIteration

    def close(self):
        self.closed = True


@pytest.fixture
def kube():
    """The apiserver: no Job, the pod j-abcde of job j (its container's log empty), the list stream JOB_LIST."""
    kube = FakeKube()
    kube.stream = Stream([JOB_LIST])
    kube.put(POD)
    kube.write("tenx-alice", "j-abcde", "j", [])
    return kube


@pytest.fixture
def client(kube, tmp_path):
    return app_client(kube, tmp_path)


def assert_error(response, code):
    assert response.status_code == code, response.data[:300]
    body = response.get_json()
    assert body["code"] == code and body["message"]
    return body


@pytest.mark.parametrize("data", [b"[" * 60_000, b"{" * 60_000, b'{"containers":' + b"[" * 5_000,
                                  b'{"containers":[{"image":"x","command":' + b"[" * 2_000 + b"]" * 2_000 + b"}]}",
                                  b'{"containers":[{"image":"x","command":["\\ud800"]}]}',
                                  b'{"containers":[{"image":"\xed\xa0\x80"}]}', b"\xff\xfe{}", b"NaN", b""])
def test_hostile_bodies_are_400(client, alice, kube, data):
    response = client.post(f"{JOBS}/ok", data=data, headers=alice, content_type="application/json")
    assert_error(response, 400)
    assert kube.calls == []


@pytest.mark.parametrize("instance", ["..", ".", "%2E%2E", "%2e", "abc%0A", "a%2Fb", "A", "a" * 254, "-a", "a..b",
                                      "%F0%9F%98%80", "a%00"])
def test_instance_names_no_pod_can_have_are_404_without_a_cluster_call(client, alice, kube, instance):
    response = client.get(f"{JOBS}/j/instances/{instance}/logs", headers=alice)
    assert_error(response, 404)
    assert kube.calls == []


def test_a_dotted_pod_name_is_looked_up(client, alice, kube):
    assert client.get(f"{JOBS}/j/instances/j-abcde/logs", headers=alice).status_code == 200
    assert kube.calls[0] == ("get_pod", "j-abcde")


@pytest.mark.parametrize("path", ["", "/j", "/j/logs", "/j/instances", "/j/instances/j-abcde/logs"])
def test_a_trailing_slash_answers_as_without_it(client, alice, kube, path):
    kube.stream = Stream([JOB_LIST])
    plain = client.get(JOBS + path, headers=alice)
    kube.stream = Stream([JOB_LIST])
    slashed = client.get(JOBS + path + "/", headers=alice)
    assert slashed.status_code == plain.status_code and slashed.status_code != 308
    assert slashed.data == plain.data


def test_a_trailing_slash_on_create_and_delete_reaches_the_same_view(client, alice):
    assert assert_error(client.post(f"{JOBS}/Bad_Name/", json={}, headers=alice), 400)["errors"]["job_name"]
    assert client.delete(f"{JOBS}/Bad_Name/", headers=alice).status_code == 404


@pytest.mark.parametrize("query", ["date=&from=&size=", "date=", "from=", "size=", "from=&size=2"])
def test_an_empty_log_parameter_means_absent(client, alice, kube, query):
    kube.write("tenx-alice", "j-abcde", "j", [(stamp(i), f"line {i}") for i in range(5)])
    expected = client.get(f"{JOBS}/j/instances/j-abcde/logs" + ("?size=2" if "size=2" in query else ""),
                          headers=alice).get_json()
    response = client.get(f"{JOBS}/j/instances/j-abcde/logs?{query}", headers=alice)
    assert response.status_code == 200 and response.get_json() == expected


@pytest.mark.parametrize("path", ["/j/logs", "/j/instances/j-abcde/logs"])
@pytest.mark.parametrize("size", ["abc", "%C2%9EJ0", "-1", "5%20", "10001"])
def test_a_follow_with_a_size_the_page_refuses_is_400_not_a_stream(client, alice, path, size):
    """``size`` means nothing to a stream, but what the paged call refuses is refused here too (the fuzzer's find:
    a garbage ``size`` with ``follow=true`` opened a stream)."""
    assert set(assert_error(client.get(f"{JOBS}{path}?size={size}", headers=alice), 400)["errors"]) == {"size"}
    followed = client.get(f"{JOBS}{path}?follow=true&size={size}", headers=alice)
    assert set(assert_error(followed, 400)["errors"]) == {"size"}


@pytest.mark.parametrize("date", ["9999.12.31", "0001.01.01"])
@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/New_York"])
def test_a_date_at_the_end_of_the_calendar_is_an_empty_day(kube, tmp_path, alice, date, zone):
    client = app_client(kube, tmp_path, log_timezone=zone)
    kube.write("tenx-alice", "j-abcde", "j", [("2026-11-25T10:00:00Z", "today")])
    response = client.get(f"{JOBS}/j/instances/j-abcde/logs?date={date}", headers=alice)
    assert response.status_code == 200 and response.get_json() == []


def test_head_of_the_list_releases_the_apiserver_stream(client, alice, kube):
    kube.stream = Stream([JOB_LIST[:40], JOB_LIST[40:]])
    response = client.head(JOBS, headers=alice)
    assert response.status_code == 200 and response.data == b""
    response.close()
    assert kube.stream.closed


def test_a_read_list_releases_the_stream_too(client, alice, kube):
    response = client.get(JOBS, headers=alice)
    assert response.get_json()["jobs"][0]["metadata"]["selfLink"] == "/apis/batch/v1/namespaces/tenx-alice/jobs/j"
    response.close()
    assert kube.stream.closed


def test_a_list_that_breaks_before_its_first_byte_is_503(client, alice, kube):
    kube.stream = Stream([JOB_LIST[:20]], breaks=True)
    response = client.get(JOBS, headers=alice)
    assert_error(response, 503)
    assert response.headers["Retry-After"] and kube.stream.closed


def test_a_list_that_ends_early_without_error_is_503_not_a_document(client, alice, kube):
    kube.stream = Stream([JOB_LIST[:20]])
    assert_error(client.get(JOBS, headers=alice), 503)


def test_a_list_that_breaks_in_the_middle_never_completes_the_document(client, alice, kube):
    """Past the first byte the status is sent: the body must then not end as a well-formed document. The server
    (gunicorn) drops the connection when the iteration raises; see test_list_stream_abort.py for that part."""
    middle = JOB_LIST[:-10]
    kube.stream = Stream([middle[:60], middle[60:]], breaks=True)
    response = client.get(JOBS, headers=alice, buffered=False)
    assert response.status_code == 200
    received = b""
    with pytest.raises(errors.Unavailable):
        for chunk in response.response:
            received += chunk
    assert not received.endswith(b"]}")
    response.close()
    assert kube.stream.closed
