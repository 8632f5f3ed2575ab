"""kube.py against a stand-in apiserver (a local HTTP server): every refusal becomes the gateway's own error, never
a 500; an unencodable body is a 400 before any call; a list stream releases its connection however it ends."""
from __future__ import annotations

import pytest
from kubernetes import client as k8s_client

from gateway import errors
from gateway.settings import Settings
from gateway.kube.client import Kube

from tests.support.standin_apiserver import StandIn

STATUS = {"kind": "Status", "apiVersion": "v1", "status": "Failure"}
QUOTA = ('jobs.batch "j" is forbidden: exceeded quota: tenx-quota, requested: count/jobs.batch=1, '
         'used: count/jobs.batch=100, limited: count/jobs.batch=100')
POLICY = ("jobs.batch \"j\" is forbidden: ValidatingAdmissionPolicy 'tenx-jobs' with binding 'tenx-jobs' denied "
          "request: no hostPath outside the tenant's folder")
RBAC = ('jobs.batch is forbidden: User "system:serviceaccount:tenx-gateway:tenx-gateway" cannot list resource '
        '"jobs" in API group "batch" in the namespace "tenx-alice"')


@pytest.fixture
def apiserver():
    server = StandIn()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def kube(apiserver):
    configuration = k8s_client.Configuration()
    configuration.host = apiserver.url
    return Kube(configuration, Settings(kube_read_timeout=5.0))


def refusing(status, message):
    return lambda handler: handler.send_json(status, {**STATUS, "message": message, "code": status})


def test_a_quota_refusal_is_403_with_the_quota_message(kube, apiserver):
    apiserver.answer = refusing(403, QUOTA)
    with pytest.raises(errors.Forbidden) as caught:
        kube.create_job("tenx-alice", {"metadata": {"name": "j"}})
    assert caught.value.code == 403 and "exceeded quota: tenx-quota" in caught.value.description


def test_an_admission_policy_refusal_is_403_with_the_policy_message(kube, apiserver):
    apiserver.answer = refusing(403, POLICY)
    with pytest.raises(errors.Forbidden) as caught:
        kube.create_job("tenx-alice", {"metadata": {"name": "j"}})
    assert "no hostPath outside the tenant's folder" in caught.value.description


def test_the_gateway_lacking_a_permission_is_502_and_says_nothing_of_the_cluster(kube, apiserver):
    apiserver.answer = refusing(403, RBAC)
    with pytest.raises(errors.BadGateway) as caught:
        list(kube.list_jobs_stream("tenx-alice"))
    assert caught.value.code == 502 and "serviceaccount" not in caught.value.description


def test_any_403_on_the_gateways_own_bookkeeping_is_502(kube, apiserver):
    apiserver.answer = refusing(403, POLICY)
    with pytest.raises(errors.BadGateway):
        kube.get_secret("tenx-gateway", "tenx-gateway-users")
    with pytest.raises(errors.BadGateway):
        kube.get_lease("tenx-gateway", "collector")


def test_401_means_the_gateways_credentials_are_wrong(kube, apiserver):
    apiserver.answer = refusing(401, "Unauthorized")
    with pytest.raises(errors.BadGateway) as caught:
        kube.get_job("tenx-alice", "j")
    assert "credentials" in caught.value.description


def test_a_terminating_namespace_is_still_503(kube, apiserver):
    apiserver.answer = refusing(403, 'unable to create new content in namespace tenx-alice because it is being '
                                     'terminated')
    with pytest.raises(errors.Unavailable) as caught:
        kube.create_job("tenx-alice", {})
    assert caught.value.extra_headers["Retry-After"]


@pytest.mark.parametrize("status, kind", [(405, errors.BadGateway), (410, errors.BadGateway),
                                          (413, errors.BadRequest), (415, errors.BadGateway),
                                          (501, errors.Unavailable), (504, errors.Unavailable)])
def test_no_status_becomes_a_500(kube, apiserver, status, kind):
    apiserver.answer = refusing(status, "whatever")
    with pytest.raises(kind):
        kube.get_job("tenx-alice", "j")


def test_a_refusal_whose_body_is_not_a_status_is_still_translated(kube, apiserver):
    def answer(handler):
        handler.send_json(403, ["not", "a", "status"])
    apiserver.answer = answer
    with pytest.raises(errors.Forbidden):
        kube.get_job("tenx-alice", "j")


def test_a_success_that_is_not_json_is_502(kube, apiserver):
    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "5")
        handler.end_headers()
        handler.wfile.write(b"<html")
    apiserver.answer = answer
    with pytest.raises(errors.BadGateway):
        kube.get_job("tenx-alice", "j")


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", 2**64])
def test_a_body_that_cannot_be_encoded_is_400_before_any_call(kube, apiserver, value):
    with pytest.raises(errors.BadRequest):
        kube.create_job("tenx-alice", {"spec": {"command": ["echo", value]}})
    assert apiserver.requests == []


def test_an_unread_list_stream_releases_its_connection_on_close(kube, apiserver):
    big = b'{"kind":"JobList","items":[' + b" " * (1 << 20) + b"]}"
    apiserver.answer = lambda handler: handler.send_chunks([big[i:i + 65536] for i in range(0, len(big), 65536)])
    stream = kube.list_jobs_stream("tenx-alice")
    connections = kube._pool.connection_from_url(apiserver.url)
    assert connections.pool.qsize() == connections.pool.maxsize - 1  # one checked out
    stream.close()  # what a HEAD request does: nothing read
    assert connections.pool.qsize() == connections.pool.maxsize  # back (dropped, not leaked)
    # the connection was dropped (1 MiB unread is too much to drain): the next call opens another, and works
    apiserver.answer = lambda handler: handler.send_json(200, {"kind": "Job"})
    assert kube.get_job("tenx-alice", "j") == {"kind": "Job"}


def test_a_short_unread_list_is_drained_and_its_connection_reused(kube, apiserver):
    apiserver.answer = lambda handler: handler.send_chunks([b'{"kind":"JobList","items":[]}'])
    kube.list_jobs_stream("tenx-alice").close()
    apiserver.answer = lambda handler: handler.send_json(200, {"kind": "Job"})
    kube.get_job("tenx-alice", "j")
    assert apiserver.connections == 1


def test_a_list_stream_that_breaks_off_raises_unavailable(kube, apiserver):
    apiserver.answer = lambda handler: handler.send_chunks([b'{"kind":"JobList","items":[{"metadata"'],
                                                           finish=False)
    stream = kube.list_jobs_stream("tenx-alice")
    with pytest.raises(errors.Unavailable) as caught:
        list(stream)
    assert caught.value.extra_headers["Retry-After"] == "5"
    stream.close()
