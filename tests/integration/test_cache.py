"""The watch cache on the real cluster, through gunicorn's workers: reads answered from memory (no apiserver call,
the same body as the apiserver's Job with selfLink), and read-your-writes across workers: a create then a get on
a new connection (so, often, another worker) is never a 404, a delete then a get never a stale 200, a create then
a list always holds the name."""
from __future__ import annotations

import json
import re
import secrets
import threading
from collections import Counter

import pytest
import requests

from tests.support.harness import ApiClient, GatewayServer, kubectl, start_gateway, wait_until
from tests.support.conditions import condition

PAIRS = 1000
THREADS = 4
NO_PODS = {"containers": [{"image": "busybox", "command": ["true"]}], "parallelism": 0}
_ACCESS = re.compile(r'"pid": (\d+), "message": "(\w+) (\S+) (\d+)"')


def kube_calls(gateway: GatewayServer) -> dict[str, float]:
    """Apiserver calls about jobs, pods and events the workers made, by verb and resource (the gateway's own
    histogram, summed by its metrics listener); not its bookkeeping: the user table's refresh, the cache's probe
    of GET /version while its watches are quiet."""
    text = requests.get(gateway.metrics_url, timeout=10).text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("tenx_gateway_kube_request_duration_seconds_count{")
            and re.search(r'resource="(jobs|pods|pods/log|events)"', line)}


@pytest.fixture(scope="module")
def roomy(local_cluster, tmp_path_factory):
    """A gateway whose tenants may hold many Jobs (the quota's count lags deletes by seconds)."""
    server = start_gateway(tmp_path_factory.mktemp("cache-gateway"), GATEWAY_TENANT_QUOTA_JOBS="100000")
    yield server
    server.close()


def fresh(user: ApiClient, method: str, path: str, **kwargs) -> requests.Response:
    """A call on a new connection: gunicorn's workers take turns accepting, so consecutive calls spread over them."""
    return requests.request(method, user.base + path, headers={**user.session.headers, "Connection": "close"},
                            timeout=30, **kwargs)


def raw(path: str) -> dict:
    return json.loads(kubectl("get", "--raw", path).stdout)


def test_gets_and_lists_are_answered_from_memory(gateway, user):
    name = f"cached-{secrets.token_hex(3)}"
    assert user.post(f"/jobs/{name}", json={"containers": [{"image": "busybox", "command": ["true"]}]}).ok
    done = user.wait_for(name, lambda job: condition(job, "Complete") and job["instance_names"],
                         timeout=300)  # a cluster busy with thousands of jobs takes minutes to start a pod
    namespace = done["metadata"]["namespace"]
    wait_until(lambda: fresh(user, "GET", f"/jobs/{name}").json() == done, 10)  # every worker's cache has it all
    before = kube_calls(gateway)
    for _ in range(50):
        assert fresh(user, "GET", f"/jobs/{name}").json() == done
        assert [j["metadata"]["name"] for j in fresh(user, "GET", "/jobs").json()["jobs"]] == [name]
    assert fresh(user, "GET", f"/jobs/{name}/instances").json()["instances"][0]["name"] == done["instance_names"][0]
    after = kube_calls(gateway)
    assert after == before, {key: (before.get(key), value) for key, value in after.items() if before.get(key) != value}

    # the same Job as the apiserver's, selfLink added; the same pods as the Job's selector picks
    direct = raw(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
    direct["metadata"]["selfLink"] = f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
    assert {k: v for k, v in done.items() if k != "instance_names"} == direct
    selector = ",".join(f"{k}={v}" for k, v in direct["spec"]["selector"]["matchLabels"].items())
    pods = raw(f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
    assert done["instance_names"] == [p["metadata"]["name"] for p in pods["items"]]


def test_read_your_writes_across_workers(roomy):
    """PAIRS names, each: create, get, list (on new connections), delete, get. 0 404s after the create, 0 stale
    200s after the delete, the name always in the list; and many pairs did cross workers."""
    gateway, user = roomy, roomy.add_user("ryw")
    failures: list[str] = []
    paths: list[str] = []

    def run(thread: int) -> None:
        for i in range(thread, PAIRS, THREADS):
            name = f"ryw-{thread}-{i:04d}-{secrets.token_hex(2)}"
            created = fresh(user, "POST", f"/jobs/{name}", json=NO_PODS)
            if created.status_code != 200:
                failures.append(f"create {name}: {created.status_code} {created.text[:200]}")
                continue
            got = fresh(user, "GET", f"/jobs/{name}")
            if got.status_code != 200:
                failures.append(f"get after create {name}: {got.status_code}")
            if i % 10 == 0:
                listed = [j["metadata"]["name"] for j in fresh(user, "GET", "/jobs").json()["jobs"]]
                if name not in listed:
                    failures.append(f"list after create lacks {name}")
            deleted = fresh(user, "DELETE", f"/jobs/{name}")
            if deleted.status_code != 200:
                failures.append(f"delete {name}: {deleted.status_code}")
            gone = fresh(user, "GET", f"/jobs/{name}")
            if gone.status_code != 404:
                failures.append(f"get after delete {name}: {gone.status_code} (stale)")
            paths.append(name)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [], failures[:20]
    assert len(paths) == PAIRS
    # the access log says which worker answered each call: count the pairs whose get was not the create's worker
    served: dict[tuple[str, str], list[str]] = {}
    for pid, method, path, status in _ACCESS.findall(gateway.log_text()):
        if "/jobs/ryw-" in path:
            served.setdefault((method, path.rsplit("/", 1)[1]), []).append(pid)
    crossed = sum(1 for name in paths if served.get(("POST", name)) and served.get(("GET", name))
                  and served[("GET", name)][0] != served[("POST", name)][0])
    print(f"read-your-writes: {PAIRS} pairs, {crossed} crossed workers, "
          f"workers: {Counter(pid for pids in served.values() for pid in pids)}")
    assert len(gateway.worker_pids()) < 2 or crossed > 0
