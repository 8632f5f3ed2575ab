"""Log pages of a running job read from the archive up to the collector's watermark, the rest from the pod: the
same lines as the pod's own log for every page, before, across and after the watermark, and no pod log read at
all for a page the archive holds."""
from __future__ import annotations

import datetime as dt
import secrets

import pytest
import requests

from tests.support.harness import kubectl, start_gateway, wait_until

FIRST, MORE = 3000, 700  # lines printed before the collector is stopped, and after


def pod_log_reads(gateway) -> float:
    text = requests.get(gateway.metrics_url, timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tenx_gateway_kube_request_duration_seconds_count{")
               and 'resource="pods/log"' in line)


@pytest.fixture(scope="module")
def running(local_cluster, tmp_path_factory):
    """A job that prints FIRST numbered lines, waits, prints MORE, then sleeps; the collector archives the first
    FIRST lines and is stopped, so the watermark stays there while the pod runs on."""
    gateway = start_gateway(tmp_path_factory.mktemp("cache-logs"), collector=True)
    try:
        user = gateway.add_user("pages")
        name = f"pages-{secrets.token_hex(3)}"
        script = f"seq 1 {FIRST}; sleep 15; seq {FIRST + 1} {FIRST + MORE}; sleep 600"
        spec = {"containers": [{"image": "busybox", "command": ["sh", "-c", script]}]}
        assert user.post(f"/jobs/{name}", json=spec).status_code == 200
        instance = user.wait_for(name, lambda job: job["instance_names"], timeout=300)["instance_names"][0]
        wait_until(lambda: user.get(f"/jobs/{name}/logs", params={"from": FIRST - 1, "size": 1}).json(), 300,
                   interval=0.5, what="the collector to archive the first lines")
        gateway.stop_collectors()
        namespace = gateway.namespace_of(user)
        path = f"/api/v1/namespaces/{namespace}/pods/{instance}/log"
        wait_until(lambda: len(kubectl("get", "--raw", path).stdout.splitlines()) == FIRST + MORE, 120,
                   interval=1, what="the pod to print the rest")
        whole = kubectl("get", "--raw", path).stdout.splitlines()
        yield gateway, user, f"/jobs/{name}/instances/{instance}/logs", whole
    finally:
        gateway.close()


def test_pages_before_across_and_after_the_watermark_are_the_pods_lines(running):
    gateway, user, path, whole = running
    total = len(whole)
    pages = [(offset, size) for offset in (0, 1, 999, FIRST - 100, FIRST - 1, FIRST, FIRST + 1, total - 100,
                                           total - 1, total, total + 50)
             for size in (1, 100, 1000)]
    pages += [(offset, 250) for offset in range(0, total, 250)]
    for offset, size in pages:
        got = user.get(path, params={"from": offset, "size": size})
        assert got.status_code == 200
        assert got.json() == whole[offset:offset + size], (offset, size)
    assert user.get(path).json() == whole[:1000]  # the default size


def test_a_page_the_archive_holds_reads_no_pod_log(running):
    gateway, user, path, whole = running
    before = pod_log_reads(gateway)
    for offset in range(0, FIRST - 100, 100):
        assert user.get(path, params={"from": offset, "size": 100}).json() == whole[offset:offset + 100]
    assert pod_log_reads(gateway) == before
    assert user.get(path, params={"from": FIRST - 50, "size": 100}).json() == whole[FIRST - 50:FIRST + 50]
    assert pod_log_reads(gateway) == before + 1  # only the part after the watermark


def test_pages_of_today_are_the_same_lines(running):
    gateway, user, path, whole = running
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d")
    got = user.get(path, params={"date": today, "from": FIRST - 10, "size": 20})
    assert got.json() == whole[FIRST - 10:FIRST + 10]
