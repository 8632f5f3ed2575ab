"""Liveness, readiness, /v1/status and /v1/regions, with stand-in apiservers instead of a cluster."""
import threading

import pytest

from gateway import errors

from tests.support.fake_app import FakeArchive, use
from tests.support.fake_kube import FakeKube, FakeRegions, answers


def refuses():
    raise errors.Unavailable("the cluster is not reachable; try again shortly")


@pytest.fixture
def hang():
    release = threading.Event()
    yield lambda: release.wait(10)
    release.set()


def test_healthz_asks_no_cluster(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_ready_when_every_region_answers(app, client):
    use(app, FakeRegions(us=FakeKube(version=answers), eu=FakeKube(version=answers)))
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_not_ready_names_the_region_and_why(app, client):
    use(app, FakeRegions(us=FakeKube(version=answers), eu=FakeKube(version=refuses)))
    response = client.get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["code"] == 503 and body["status"] == "Service Unavailable"
    assert "eu" in body["message"] and body["errors"] == {"eu": "the cluster is not reachable; try again shortly"}


def test_a_hung_apiserver_costs_the_timeout_and_one_thread(app, client, hang):
    kube = FakeKube(version=hang)
    use(app, FakeRegions(us=kube), timeout=0.2)
    for _ in range(3):  # a probe that waited the hang out (10 s) would have had an answer: not this 503
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["errors"] == {"us": "the apiserver did not answer GET /version within 0.2 s"}
    assert kube.calls == [("version",)]  # the probe still waiting is reused, not started again


def test_an_unconfigured_region_is_not_ready(client):
    body = client.get("/readyz").get_json()  # the unit-test app's context does not exist
    assert body["errors"] == {"us": "region 'us' is not configured correctly on this gateway"}


def test_status_is_the_originals_text(app, client):
    use(app, FakeRegions(us=FakeKube(version=answers)))
    response = client.get("/v1/status")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "API is running"


def test_status_503_in_the_error_shape(app, client):
    use(app, FakeRegions(us=FakeKube(version=refuses)))
    response = client.get("/v1/status")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["message"] == "API is temporarily unavailable"


def test_regions_list_without_credentials(app, client):
    use(app, FakeRegions(us=FakeKube(version=answers), eu=FakeKube(version=refuses)))
    response = client.get("/v1/regions")
    assert response.status_code == 200
    assert response.get_json() == {"regions": [
        {"name": "us", "display_name": "North America", "status": "available"},
        {"name": "eu", "display_name": "eu", "status": "unavailable"},
    ]}


def test_readiness_timeout_is_a_setting():
    from gateway.settings import from_env
    assert from_env({}).readiness_timeout == 2.0
    assert from_env({"GATEWAY_READINESS_TIMEOUT": "0.5"}).readiness_timeout == 0.5
    names = from_env({"GATEWAY_REGION_DISPLAY_NAMES": "us=US West, eu=Europe"}).region_display_names
    assert names == {"us": "US West", "eu": "Europe"}
    with pytest.raises(ValueError, match="GATEWAY_REGION_DISPLAY_NAMES"):
        from_env({"GATEWAY_REGION_DISPLAY_NAMES": "us"})


@pytest.mark.parametrize("beats, message", [
    ({"us": (2.0, 75.0)}, "archive lagging: lines reach the archive 75 s after they are written"),
    ({"us": (90.0, 0.1)}, "archive lagging: the collector last reported 90 s ago"),
])
def test_not_ready_when_the_archive_lags(app, client, beats, message):
    use(app, FakeRegions(us=FakeKube(version=answers)), archive=FakeArchive(beats))
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["message"] == "not ready: archive lagging" and body["errors"] == {"archive:us": message}


@pytest.mark.parametrize("beats, message", [
    ({"us/node/a": (2.0, 75.0), "us/node/b": (1.0, 0.5)},
     "archive lagging: lines reach the archive 75 s after they are written"),
    ({"us/node/a": (90.0, 0.1), "us/node/b": (400.0, 0.1)}, "archive lagging: no node collector has reported for 90 s"),
])
def test_not_ready_when_the_node_collectors_lag_or_all_are_silent(app, client, beats, message):
    use(app, FakeRegions(us=FakeKube(version=answers)), archive=FakeArchive(beats))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["errors"] == {"archive:us/node": message}


def test_a_silent_node_collector_beside_reporting_ones_is_a_node_gone_not_a_lag(app, client):
    """A deleted node's heartbeat stays in the archive: every replica leaving the Service for it was an outage."""
    use(app, FakeRegions(us=FakeKube(version=answers)), archive=FakeArchive({"us/node/gone": (5486.0, 0.0),
                                                                       "us/node/real": (3.0, 1.0)}))
    assert client.get("/readyz").status_code == 200


def test_ready_while_the_archive_keeps_up_or_no_collector_ever_ran(app, client):
    for beats in ({}, {"us": (3.0, 1.5)}):
        use(app, FakeRegions(us=FakeKube(version=answers)), archive=FakeArchive(beats))
        assert client.get("/readyz").status_code == 200


def test_an_unreadable_archive_is_reported(app, client):
    use(app, FakeRegions(us=FakeKube(version=answers)), archive=FakeArchive(fails=True))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["errors"] == {"archive": "archive lagging: the log archive cannot be read"}
