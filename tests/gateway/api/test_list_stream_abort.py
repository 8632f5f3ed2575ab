"""A job list whose apiserver stream breaks off in the middle, served by the real gunicorn (gunicorn.conf.py): the
client gets the 200 that was already sent, then a connection closed before the chunked body's end, so no HTTP
client takes the truncated document for a whole one. The apiserver is a stand-in that sends part of a JobList and
drops the connection; nothing else about the gateway is faked."""
from __future__ import annotations

import http.client

import pytest
import requests

from tests.support.harness import GatewayServer
from tests.support.standin_apiserver import StandIn

HEAD = b'{"kind":"JobList","apiVersion":"batch/v1","metadata":{"resourceVersion":"9"},"items":['
ITEM = (b'{"metadata":{"name":"job-%d","namespace":"tenx-alice","uid":"u%d"},"spec":{"template":{"spec":'
        b'{"containers":[{"name":"c","image":"busybox"}]}}},"status":{"succeeded":1}}')


def job_list(count: int) -> bytes:
    return HEAD + b",".join(ITEM % (i, i) for i in range(count)) + b"]}\n"


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{{name: standin, cluster: {{server: "{server}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: standin, context: {{cluster: standin, user: u}}}}]
current-context: standin
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("standin")
    apiserver = StandIn()
    (tmp_path / "kubeconfig").write_text(KUBECONFIG.format(server=apiserver.url))
    server = GatewayServer(tmp_path, kubeconfig=tmp_path / "kubeconfig", app="tests.support.table_users_wsgi:app",
                           GATEWAY_REGIONS="us=standin", GATEWAY_WORKERS="1", GATEWAY_METRICS_BIND="off",
                           GATEWAY_WATCH_CACHE="false")  # the list passed through from the apiserver is what is tested
    server.start(timeout=30)
    yield apiserver, server.port
    server.terminate(timeout=30)  # not close(): there are no namespaces of its own to delete
    apiserver.shutdown()
    apiserver.server_close()


def _get_jobs(port: int) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.request("GET", "/v1/regions/us/jobs", headers={"username": "alice", "Authorization": "token alice-token"})
    return connection.getresponse()


def test_a_whole_list_arrives_whole(served):
    apiserver, port = served
    raw = job_list(300)
    apiserver.answer = lambda handler: handler.send_chunks([raw[i:i + 8192] for i in range(0, len(raw), 8192)])
    response = _get_jobs(port)
    assert response.status == 200
    body = response.read()
    assert body.rstrip().endswith(b"]}") and body.count(b'"selfLink"') == 300


def test_a_list_broken_in_the_middle_is_an_incomplete_chunked_body(served):
    apiserver, port = served
    raw = job_list(300)
    cut = len(raw) * 2 // 3
    apiserver.answer = lambda handler: handler.send_chunks([raw[i:min(i + 8192, cut)] for i in range(0, cut, 8192)],
                                                           finish=False)
    response = _get_jobs(port)
    assert response.status == 200  # sent before the break
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert not caught.value.partial.endswith(b"]}")
    # requests (what most Python clients use) raises too, rather than handing over the truncated text
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"http://127.0.0.1:{port}/v1/regions/us/jobs", timeout=20,
                     headers={"username": "alice", "Authorization": "token alice-token"}).content


def test_a_list_broken_before_its_items_is_a_503(served):
    apiserver, port = served
    apiserver.answer = lambda handler: handler.send_chunks([HEAD[:30]], finish=False)
    response = _get_jobs(port)
    assert response.status == 503 and response.getheader("Retry-After")
    assert response.read().startswith(b'{"code":503')
