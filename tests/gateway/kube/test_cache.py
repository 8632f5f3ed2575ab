"""The watch cache without a cluster: what it keeps of a Job and a pod (golden), the bodies spliced from that,
its indexes and the rules that say when memory may answer (synced, not stale, caught up with the workers' writes),
over the reflector fed by tests/support/fake_kube.py."""
from __future__ import annotations

import threading
import time

import orjson
import pytest

from gateway.kube.cache.entries import get_body, job_entry, list_chunks, pod_entry
from gateway.kube.cache import write_mark
from gateway.kube.cache.write_mark import ArchiveMark, WriteMark
from gateway.store import open_store
from gateway.kube.cache.region import RegionCache

from tests.support.fake_kube import FakeKube, TwoKinds, job, job_pod, pod
from tests.support.harness import wait_until

# -- entries (pure) -------------------------------------------------------------------------------------------

def test_a_job_is_kept_as_its_bytes_with_the_self_link_where_go_writes_it():
    original = job("j", completions=3, parallelism=2)
    entry = job_entry(original)
    assert entry.body == (
        b'{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j","namespace":"tenx-alice",'
        b'"selfLink":"/apis/batch/v1/namespaces/tenx-alice/jobs/j","uid":"u1","resourceVersion":"5",'
        b'"labels":{"app.kubernetes.io/managed-by":"tenx-gateway","name":"j"}},'
        b'"spec":{"selector":{"matchLabels":{"batch.kubernetes.io/controller-uid":"u1"}},"completions":3,'
        b'"parallelism":2},"status":{}}')
    assert "selfLink" not in original["metadata"]  # the input is left as it was
    assert (entry.namespace, entry.name, entry.resource_version) == ("tenx-alice", "j", "5")
    assert entry.selector == (("batch.kubernetes.io/controller-uid", "u1"),)
    assert entry.wanted == 2


@pytest.mark.parametrize("spec, status, wanted", [
    ({}, {}, 1),
    ({"suspend": True}, {}, 0),
    ({"parallelism": 0}, {}, 0),
    ({"completions": 3, "parallelism": 5}, {"succeeded": 2}, 1),
    ({}, {"conditions": [{"type": "Complete", "status": "True"}]}, 0),
])
def test_how_many_pods_a_job_wants_running(spec, status, wanted):
    assert job_entry({**job("j", **spec), "status": status}).wanted == wanted


def test_the_get_body_is_spliced_and_parses_as_the_pass_through_one():
    entry = job_entry(job("j"))
    pods = [pod_entry(job_pod("j-a", "j", "u1")), pod_entry(job_pod("j-b", "j", "u1"))]
    body = orjson.loads(get_body(entry, pods))
    assert list(body)[:2] == ["instance_names", "kind"]
    assert body["instance_names"] == ["j-a", "j-b"]
    assert body["metadata"]["selfLink"] == "/apis/batch/v1/namespaces/tenx-alice/jobs/j"


def test_the_list_is_sorted_by_name_and_says_when_it_is_cut():
    entries = [job_entry(job(name)) for name in ("c", "a", "b")]
    whole = orjson.loads(b"".join(list_chunks(entries, 10)))
    assert [j["metadata"]["name"] for j in whole["jobs"]] == ["a", "b", "c"] and "truncated" not in whole
    cut = orjson.loads(b"".join(list_chunks(entries, 2)))
    assert cut["truncated"] is True and [j["metadata"]["name"] for j in cut["jobs"]] == ["a", "b"]
    assert orjson.loads(b"".join(list_chunks([], 5))) == {"jobs": []}


def test_a_long_list_comes_in_chunks():
    entries = [job_entry(job(f"j{i:04d}")) for i in range(1000)]
    chunks = list(list_chunks(entries, 2000))
    assert len(chunks) > 3 and len(orjson.loads(b"".join(chunks))["jobs"]) == 1000


def test_a_pod_keeps_what_the_reads_need():
    entry = pod_entry(job_pod("j-a", "j", "u1", phase="Succeeded"))
    assert (entry.name, entry.phase, entry.container, entry.live) == ("j-a", "Succeeded", "j", False)
    assert orjson.loads(entry.record)["name"] == "j-a"
    assert entry.as_pod()["spec"]["containers"] == [{"name": "j"}]


# -- the read-your-writes mark ------------------------------------------------------------------------------------

def test_the_mark_of_one_process_only_rises():
    mark = WriteMark()
    mark.raise_to(41)
    mark.raise_to(7)
    assert mark.read() == (41, False)
    mark.doubt(60)
    assert mark.read() == (41, True)


def test_the_mark_is_shared_through_the_archive_by_region(tmp_path):
    """Two replicas' processes (two stores on one archive) see each other's writes; regions are apart."""
    stores = [open_store(f"sqlite:///{tmp_path}/archive.db") for _ in range(2)]
    try:
        one, two = (ArchiveMark(lambda s=store: s, "us") for store in stores)
        elsewhere = ArchiveMark(lambda: stores[0], "eu")
        assert one.read() == (0, False)
        one.raise_to(41)
        two.raise_to(7)
        assert two.read() == (41, False) and elsewhere.read() == (0, False)
        two.doubt(60)
        assert one.read() == (41, True) and elsewhere.read() == (0, False)
    finally:
        for store in stores:
            store.close()


def test_a_mark_past_the_horizon_is_not_waited_for(tmp_path, monkeypatch):
    store = open_store(f"sqlite:///{tmp_path}/archive.db")
    try:
        mark = ArchiveMark(lambda: store, "us")
        mark.raise_to(41)
        monkeypatch.setattr(write_mark, "HORIZON_SECONDS", 0.0)
        assert mark.read() == (0, False)
    finally:
        store.close()


def test_an_archive_that_cannot_be_read_keeps_memory_from_answering():
    def down():
        raise OSError("connection refused")

    mark = ArchiveMark(down, "us")
    assert mark.read() is None
    mark.raise_to(5)  # logged, not raised: the write it follows is done


# -- the cache over a fake apiserver ----------------------------------------------------------------------------

@pytest.fixture
def fake():
    return TwoKinds()


@pytest.fixture
def cache(fake):
    made = RegionCache("us", fake, namespace_prefix="tenx-", stale_seconds=5, wait_seconds=0.5).start()
    assert wait_until(lambda: made.synced, 5)
    yield made
    made.stop()


def test_jobs_and_their_own_pods_are_served(fake, cache):
    fake.jobs.put(job("j", uid="new"))
    fake.pods.put(job_pod("j-old", "j", "old"))  # an earlier job of the same name
    fake.pods.put(job_pod("j-new", "j", "new"))
    fake.jobs.put(job("other", namespace="elsewhere"))  # not a namespace of this gateway's
    assert wait_until(lambda: cache.job("tenx-alice", "j") and len(cache.pods_of(cache.job("tenx-alice", "j"))), 5)
    assert [p.name for p in cache.pods_of(cache.job("tenx-alice", "j"))] == ["j-new"]
    assert cache.pod("tenx-alice", "j-old").labels["job-name"] == "j"
    assert cache.job("elsewhere", "other") is None
    fake.pods.delete("tenx-alice", "j-new")
    assert wait_until(lambda: not cache.pods_of(cache.job("tenx-alice", "j")), 5)
    assert [j.name for j in cache.jobs_in("tenx-alice")] == ["j"]


def test_a_read_waits_for_a_write_another_worker_made(fake, cache, monkeypatch):
    assert cache.usable()
    fake.jobs.put(job("j"))
    assert wait_until(lambda: cache.job("tenx-alice", "j"), 5)
    cache.created({"metadata": {"resourceVersion": str(fake.jobs.resource_version + 1)}})  # not seen yet
    assert not cache.usable()  # waited (wait_seconds), then gives up: the read goes to the apiserver
    # a read made while that version is on its way waits for it (a minute here, so it cannot give up first), and
    # memory answers it once it has come
    monkeypatch.setattr(cache, "_wait", 60)
    waiting, wait_for = threading.Event(), cache._cond.wait_for
    monkeypatch.setattr(cache._cond, "wait_for", lambda *args, **kwargs: waiting.set() or wait_for(*args, **kwargs))
    answers: list[bool] = []
    reader = threading.Thread(target=lambda: answers.append(cache.usable()))
    reader.start()
    assert waiting.wait(10), "the read did not wait"
    fake.jobs.put(job("k"))  # that version arrives
    reader.join(60)
    assert answers == [True]


def test_a_delete_waits_until_the_cache_has_seen_the_job_go(fake, cache):
    fake.jobs.put(job("j"))
    assert wait_until(lambda: cache.job("tenx-alice", "j"), 5)
    fake.jobs.delete("tenx-alice", "j")
    cache.deleted("tenx-alice", "j")
    assert cache.job("tenx-alice", "j") is None and cache.usable()


def test_a_delete_not_seen_in_time_sends_reads_to_the_apiserver(fake, cache):
    fake.jobs.put(job("j"))
    assert wait_until(lambda: cache.job("tenx-alice", "j"), 5)
    cache.deleted("tenx-alice", "j")  # the apiserver never says so
    assert not cache.usable()


def test_a_cache_cut_off_longer_than_the_setting_stops_answering(cache):
    assert not cache.stale()
    cache.jobs.broken_since = time.monotonic() - 4
    assert not cache.stale() and cache.usable()
    cache.jobs.broken_since = time.monotonic() - 6
    assert cache.stale() and not cache.usable()


def test_a_silent_apiserver_counts_as_cut_off_unless_the_probe_hears_it(fake):
    made = RegionCache("us", fake, namespace_prefix="tenx-", stale_seconds=1.5, wait_seconds=0.1)
    made.jobs.last_alive = made.pods.last_alive = time.monotonic() - 10
    assert made.stale()
    made._probe_ok = time.monotonic()
    assert not made.stale()


def test_subscribers_wake_on_a_change_in_their_namespace(fake, cache):
    seen = cache.wait_for_change("tenx-alice", 0, 0)
    fake.jobs.put(job("j"))
    assert cache.wait_for_change("tenx-alice", seen, 5) > seen
    assert cache.wait_for_change("tenx-bob", 0, 0.05) == 0



def test_an_object_the_reflector_no_longer_accepts_leaves_its_copy():
    from gateway.kube.reflector import Reflector
    fake = FakeKube()
    events = []
    reflector = Reflector(fake, "/api/v1/pods", accept=lambda obj: obj["metadata"]["labels"].get("keep") == "yes",
                          on_event=lambda kind, obj: events.append(kind)).start()
    try:
        fake.put(pod("p", "j", labels={"keep": "yes"}))
        assert wait_until(lambda: reflector.get("tenx-alice", "p"), 5)
        fake.put(pod("p", "j", labels={"keep": "no"}))
        assert wait_until(lambda: reflector.get("tenx-alice", "p") is None, 5)
        assert events == ["ADDED", "DELETED"]
    finally:
        reflector.stop()
