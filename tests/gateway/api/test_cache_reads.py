"""The API's reads with a watch cache attached to the region's client: answered from memory, with no apiserver
call, exactly as the pass-through answers (selfLink, instance_names, order); a miss or a cache that may not answer
goes to the apiserver."""
from __future__ import annotations

import orjson
import pytest

from gateway import create_app
from gateway.kube.cache.region import RegionCache

from tests.support.harness import wait_until
from tests.support.fake_app import app_client, use
from tests.support.fake_kube import FakeKube, FakeRegions, TwoKinds, answers, job, job_pod, stamp

JOBS = "/v1/regions/us/jobs"


@pytest.fixture
def fake():
    fake = TwoKinds()
    fake.jobs.put(job("j", uid="u1"))
    fake.jobs.put(job("done", uid="u2", parallelism=0))
    fake.pods.put(job_pod("j-b", "j", "u1"))
    fake.pods.put(job_pod("j-a", "j", "u1"))
    fake.pods.put(job_pod("j-x", "j", "an-earlier-j"))
    return fake


@pytest.fixture
def kube(fake):
    kube = FakeKube()
    cache = RegionCache("us", fake, namespace_prefix="tenx-", stale_seconds=5, wait_seconds=0.2).start()
    assert wait_until(lambda: cache.synced and cache.pod("tenx-alice", "j-x"), 5)
    kube.watch_cache = cache
    yield kube
    cache.stop()


@pytest.fixture
def client(kube, tmp_path):
    return app_client(kube, tmp_path)


def test_a_get_is_answered_from_memory(client, alice, kube):
    response = client.get(f"{JOBS}/j", headers=alice)
    assert response.status_code == 200
    body = response.get_json()
    assert body["instance_names"] == ["j-a", "j-b"]  # its own pods only (sorted by creation, then name)
    assert body["metadata"]["selfLink"] == "/apis/batch/v1/namespaces/tenx-alice/jobs/j"
    assert kube.calls == []


def test_a_list_is_spliced_from_memory(client, alice, kube):
    response = client.get(f"{JOBS}/", headers=alice)
    assert response.status_code == 200
    names = [j["metadata"]["name"] for j in orjson.loads(response.data)["jobs"]]
    assert names == ["done", "j"] and kube.calls == []


def test_a_name_the_cache_does_not_hold_goes_to_the_apiserver(client, alice, kube):
    assert client.get(f"{JOBS}/missing", headers=alice).status_code == 404
    assert ("get_job", "missing") in kube.calls


def test_the_logs_call_finds_the_pod_in_memory(client, alice, kube):
    kube.put(job_pod("j-a", "j", "u1"))
    kube.write("tenx-alice", "j-a", "j", [(stamp(0), "one"), (stamp(1), "two")])
    response = client.get(f"{JOBS}/j/instances/j-a/logs", headers=alice)
    assert response.get_json() == ["one", "two"]
    assert kube.called("get_pod") == []
    assert client.get(f"{JOBS}/other/instances/j-a/logs", headers=alice).status_code in (404,)


def test_a_stale_cache_sends_reads_to_the_apiserver(client, alice, kube):
    kube.watch_cache.jobs.broken_since = 0.0  # cut off since the clock began
    assert client.get(f"{JOBS}/j", headers=alice).status_code == 404  # the fake apiserver has no Job
    assert ("get_job", "j") in kube.calls


def test_readyz_waits_for_every_regions_first_sync(tmp_path):
    from gateway.kube.cache import WatchCaches
    app = create_app({"regions": {"us": "no-such-context"}, "data_dir": str(tmp_path), "watch_cache": False})
    use(app, FakeRegions(us=FakeKube(version=answers)))
    gateway = app.extensions["tenx"]
    caches = WatchCaches(gateway.regions, gateway.settings)
    cache = caches.caches["us"] = RegionCache("us", TwoKinds(), namespace_prefix="tenx-", stale_seconds=5,
                                              wait_seconds=0.1)  # not started: it never lists
    gateway.caches = caches
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert list(response.get_json()["errors"]) == ["cache:us"]
    cache.jobs.synced.set()
    cache.pods.synced.set()
    assert client.get("/readyz").status_code == 200


class QuotaRace:
    """create_job refused as the ResourceQuota admission words a lost race on its usage, ``times`` times."""

    def __init__(self, times):
        self.times, self.calls = times, 0

    def create_job(self, namespace, manifest):
        self.calls += 1
        if self.calls <= self.times:
            from gateway import errors
            raise errors.Conflict('Operation cannot be fulfilled on resourcequotas "tenx-gateway-quota": the object '
                                  'has been modified; please apply your changes to the latest version and try again')
        return {"metadata": {"name": "j", "namespace": namespace, "resourceVersion": "9"}}


def test_a_quota_race_is_retried_not_called_an_existing_job():
    from gateway import errors
    from gateway.jobs.calls import _create
    from gateway.jobs.tenancy import Tenant
    tenant = Tenant("alice", "tenx-alice")
    assert _create(QuotaRace(2), tenant, {})["metadata"]["name"] == "j"
    with pytest.raises(errors.Unavailable):
        _create(QuotaRace(5), tenant, {})
