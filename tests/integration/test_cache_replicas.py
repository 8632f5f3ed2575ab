"""Read-your-writes across replicas: two gunicorns of one gateway (one users Secret, one namespace prefix, one
archive, each its own watch caches) on the real cluster. A write through one and a read through the other right
after it: never a 404 for a job just created, a 200 for one just deleted, or a list without it. Before the write
mark went to the shared archive (gateway/kube/cache/write_mark.py), a GET on one right after a DELETE on the other
answered 200 in 5 of 400 rounds."""
from __future__ import annotations

import secrets

import pytest

from tests.support.harness import ApiClient, GatewayServer

ROUNDS = 200
NO_PODS = {"containers": [{"image": "busybox", "command": ["true"]}], "parallelism": 0}


@pytest.fixture(scope="module")
def replicas(local_cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("replicas")
    run_id = secrets.token_hex(3)
    shared = {"GATEWAY_ARCHIVE_URL": f"sqlite:///{workdir}/archive.db", "GATEWAY_TENANT_QUOTA_JOBS": "100000"}
    first = GatewayServer(workdir / "a", letter="p", run_id=run_id, **shared).start()
    try:
        second = GatewayServer(workdir / "b", letter="p", run_id=run_id, gateway_namespace=first.gateway_namespace,
                               **shared).start()
    except BaseException:
        first.close()
        raise
    yield first, second
    second.terminate()
    first.close()


def test_a_write_through_one_replica_is_seen_by_the_next_read_through_the_other(replicas):
    one, other = replicas
    writer = one.add_user("rw")
    reader = ApiClient(other.url, writer.username, writer.session.headers["Authorization"].split(" ", 1)[1])
    assert reader.get("/jobs").status_code == 200  # the second replica knows the user
    stale: list[str] = []
    for round_ in range(ROUNDS):
        name = f"rw-{round_}-{secrets.token_hex(2)}"
        created = (writer if round_ % 2 else reader), (reader if round_ % 2 else writer)  # both ways round
        write, read = created
        assert write.post(f"/jobs/{name}", json=NO_PODS).status_code == 200
        if read.get(f"/jobs/{name}").status_code != 200:
            stale.append(f"{name}: 404 right after its create")
        if name not in {job["metadata"]["name"] for job in read.get("/jobs").json()["jobs"]}:
            stale.append(f"{name}: a list without it right after its create")
        assert write.delete(f"/jobs/{name}").status_code == 200
        if read.get(f"/jobs/{name}").status_code != 404:
            stale.append(f"{name}: 200 right after its delete")
        if name in {job["metadata"]["name"] for job in read.get("/jobs").json()["jobs"]}:
            stale.append(f"{name}: a list with it right after its delete")
    assert stale == []
