"""The log archive on OpenSearch, end to end: a job's lines go through the collector into the local OpenSearch
(deploy/local/opensearch), and the logs calls answer the same after the job and its pods are deleted."""
from __future__ import annotations

import datetime as dt
import secrets

import pytest

from tests.support.archive_opensearch import drop_prefix, opensearch_url
from tests.support.harness import start_gateway, wait_until
from tests.support.conditions import condition

pytest_plugins = ["tests.support.archive_opensearch"]


@pytest.fixture(scope="module")
def opensearch_gateway(local_cluster, opensearch_server, tmp_path_factory):
    """A gateway and collector of their own on an OpenSearch archive with the shipped refresh (wait_for)."""
    prefix = f"tti{secrets.token_hex(3)}-"
    try:
        server = start_gateway(tmp_path_factory.mktemp("gateway-os"), collector=True, letter="o",
                               GATEWAY_ARCHIVE_URL=opensearch_url(opensearch_server, prefix))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server, prefix
    server.close()
    drop_prefix(opensearch_server, prefix)


def test_logs_read_the_same_from_opensearch_after_the_job_is_deleted(opensearch_gateway, local_cluster):
    server, prefix = opensearch_gateway
    user = server.add_user("os")
    name = f"os-{secrets.token_hex(3)}"
    script = {"containers": [{"image": "busybox", "command": ["sh", "-c", "seq 1 300"]}]}
    assert user.post(f"/jobs/{name}", json=script).status_code == 200
    instance = user.wait_for(name, lambda j: condition(j, "Complete"), timeout=240)["instance_names"][0]
    path = f"/jobs/{name}/instances/{instance}/logs"
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d")
    queries = [{}, {"from": 10, "size": 5}, {"date": today, "from": 250, "size": 100}, {"date": "2015.12.29"}]
    before = [user.get(path, params=q).json() for q in queries]
    assert before[0] == [str(i) for i in range(1, 301)]
    # the job-level call reads only the archive: once it holds every line, the pods may go
    wait_until(lambda: len(user.get(f"/jobs/{name}/logs", params={"size": 1000}).json()) == 300, 90, 0.5,
               what="the OpenSearch archive to hold 300 lines")

    assert user.delete(f"/jobs/{name}").status_code == 200
    namespace = server.namespace_of(user)
    wait_until(lambda: not local_cluster.kubectl_run("get", "pods", "-n", namespace, "-l", f"job-name={name}",
                                                     "-o", "name").stdout.strip(), 90, 0.5, what="pods deleted")
    assert user.get(f"/jobs/{name}").status_code == 404
    assert [user.get(path, params=q).json() for q in queries] == before
    job_lines = user.get(f"/jobs/{name}/logs", params={"from": 298, "size": 10}).json()
    assert job_lines == [f"[{instance}] 299", f"[{instance}] 300"]
    # the collector archives each change of the pod as it sees it, the lines' way: its last one shortly after
    records = wait_until(lambda: (lambda got: got if got and got[0]["phase"] in ("Succeeded", "Failed") else None)(
        user.get(f"/jobs/{name}/instances").json()["instances"]), 30, 0.2, what="the pod's last record archived")
    assert [r["name"] for r in records] == [instance] and records[0]["phase"] == "Succeeded"

    # and it is really OpenSearch that holds them: in the day's index, one document per line
    from opensearchpy import OpenSearch
    client = OpenSearch(hosts=[{"host": "127.0.0.1", "port": int(server.env["GATEWAY_ARCHIVE_URL"]
                                                                 .split(":")[2].split("/")[0])}])
    try:
        client.indices.refresh(index=f"{prefix}*")
        found = client.search(index=f"{prefix}{today}", body={  # instance is not indexed: only in _source
            "size": 1000, "_source": ["instance"], "query": {"term": {"job": name}}})["hits"]["hits"]
    finally:
        client.close()
    assert len(found) == 300 and {hit["_source"]["instance"] for hit in found} == {instance}


def test_the_opensearch_component_points_both_containers_at_the_secret(local_cluster, tmp_path):
    """deploy/components/opensearch in an operator's overlay: the URL from the Secret in the API and the collector,
    the CA bundle mounted where the URL says, no claim, two replicas; the server accepts what it builds."""
    import os

    import yaml

    from tests.support.harness import ROOT
    deploy = ROOT / "deploy"
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(deploy, tmp_path)],
        "components": [os.path.relpath(deploy / "components" / "opensearch", tmp_path)]}))
    built = local_cluster.kubectl_run("kustomize", str(tmp_path)).stdout
    docs = [doc for doc in yaml.safe_load_all(built) if doc]
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    for container in spec["containers"]:
        env = {e["name"]: e for e in container.get("env", [])}
        assert env["GATEWAY_ARCHIVE_URL"]["valueFrom"] == {"secretKeyRef": {"name": "tenx-gateway-opensearch",
                                                                            "key": "url"}}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["opensearch-ca"] == "/etc/tenx-gateway/opensearch"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert volumes["opensearch-ca"]["secret"]["optional"] is True
    dry_run = local_cluster.kubectl_run("apply", "--dry-run=server", "-k", str(tmp_path), check=False)
    assert dry_run.returncode == 0, dry_run.stderr
