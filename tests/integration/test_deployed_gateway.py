"""The gateway deployed as an operator deploys it: `make deploy-local` (deploy/local/deploy.sh) applies deploy/
through the local overlay, with the image `make image` builds, two API replicas and a node collector as pods on the
real node, reaching the apiserver with in-cluster config, the log archive in the local OpenSearch. Every call here
goes through the API's Service from the host (a NodePort the local cluster publishes on 127.0.0.1), each on a
connection of its own, so either replica may answer it.

The figures (deploy time, the 1,000 rounds' stale answers and latencies) go to build/deploy-local/measured.json."""
from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import statistics
import threading
import time

import pytest
import requests

from tenx.client import Client
from tenx.config import Credentials
from tenx.errors import TenxError, Unavailable
from tenx.follow import Follower

from tests.support.harness import ROOT, kubectl
from tests.support.seed import SEED_JOB
from tests.support.conditions import condition, until
from tests.support.local_deploy import (NAMESPACE, NODE_COLLECTOR_SELECTOR, NODES_NAMESPACE, LocalDeployment,
                                        ServiceClient, deployment, kill_container, port_forward, record)

WAIT = 240


@pytest.fixture(scope="module")
def deployed(local_cluster) -> LocalDeployment:
    with deployment() as deployed:
        yield deployed


@pytest.fixture(scope="module")
def user(deployed) -> ServiceClient:
    return deployed.add_user("dep")


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d")


def job_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def wait_for(client: ServiceClient, name: str, done, timeout: float = WAIT) -> dict:
    return until(lambda: (lambda job: job if done(job) else None)(client.get(f"/jobs/{name}").json()), timeout,
                 f"job {name}")


def pods_gone(namespace: str, name: str) -> bool:
    return not kubectl("get", "pods", "-n", namespace, "-l", f"job-name={name}", "-o", "name").stdout.strip()


def user_namespace(client: ServiceClient) -> str:
    from gateway.names import namespace_for
    return namespace_for(client.username, "tenx-")


def image_digest() -> str:
    env = dict(line.split("=", 1) for line in (ROOT / "build/image/image.env").read_text().splitlines() if "=" in line)
    return env["IMAGE_DIGEST"]


# ---------------------------------------------------------------- as deployed

def test_every_pod_is_ready_on_the_real_node_from_the_image_with_in_cluster_config(deployed):
    api, collectors = deployed.pods(), deployed.pods(NODES_NAMESPACE, NODE_COLLECTOR_SELECTOR)
    assert len(api) == 2 and len(collectors) >= 1
    for pod in api + collectors:
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", (pod["metadata"]["name"], pod["status"])
        assert pod["spec"]["nodeSelector"] == {"tenx.io/runtime": "containerd"}
        for status in pod["status"]["containerStatuses"]:
            assert status["imageID"].endswith(image_digest()), status
    for pod in api:
        (container,) = pod["spec"]["containers"]  # the node collectors fill the archive: no collector container
        assert container["name"] == "api"
        env = {e["name"] for e in container.get("env", [])}
        assert "KUBECONFIG" not in env  # GATEWAY_REGIONS=us=@in-cluster: the ServiceAccount's token
        assert pod["spec"]["serviceAccountName"] == "tenx-gateway"
        assert any("projected" in v and any("serviceAccountToken" in s for s in v["projected"]["sources"])
                   for v in pod["spec"]["volumes"])


def test_readyz_and_metrics_as_deployed(deployed):
    """/readyz through the Service, and from each replica on its own; /metrics on each replica's metrics port and
    through the metrics Service, never on the API port."""
    for _ in range(6):
        answer = requests.get(f"{deployed.url}/readyz", timeout=30, headers={"Connection": "close"})
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}, answer.text
    metrics = requests.get(deployed.metrics_url, timeout=30)
    assert metrics.status_code == 200 and "tenx_gateway_" in metrics.text
    assert requests.get(f"{deployed.url}/metrics", timeout=30).status_code == 404
    for pod in deployed.pods():
        name = pod["metadata"]["name"]
        with port_forward(NAMESPACE, name, 8080) as api:
            assert requests.get(f"{api}/readyz", timeout=30).json() == {"status": "ok"}, name
            assert requests.get(f"{api}/healthz", timeout=30).json() == {"status": "ok"}, name
        with port_forward(NAMESPACE, name, 9090) as port:
            own = requests.get(f"{port}/metrics", timeout=30)
            assert own.status_code == 200 and "tenx_gateway_http_requests_total" in own.text, name


# ---------------------------------------------------------------- the seed, through the Service

def test_the_seed_flow_through_the_service(deployed, user):
    """Create, list, get, logs by date/from/size, delete, and the logs after the delete (from the archive, which only
    the node collector fills)."""
    name = job_name("seed")
    created = user.post(f"/jobs/{name}", json=SEED_JOB)
    assert created.status_code == 200, created.text
    assert created.json()["job"]["metadata"]["name"] == name
    assert [j["metadata"]["name"] for j in user.get("/jobs").json()["jobs"]] == [name]
    assert user.get(f"/jobs/{name}").status_code == 200
    done = wait_for(user, name, lambda job: condition(job, "Complete"))
    (instance,) = done["instance_names"]
    path = f"/jobs/{name}/instances/{instance}/logs"
    queries = [{}, {"date": today()}, {"date": today(), "from": 0, "size": 1}, {"from": 1, "size": 10},
               {"date": "2015.12.29"}]
    expected = [["test-cmd"], ["test-cmd"], ["test-cmd"], [], []]
    assert [user.get(path, params=q).json() for q in queries] == expected
    # the job-level call reads the archive alone: the node collector has the line once it answers
    until(lambda: user.get(f"/jobs/{name}/logs").json() == [f"[{instance}] test-cmd"], WAIT,
          "the node collector to archive the seed's line")

    deleted = user.delete(f"/jobs/{name}")
    assert deleted.status_code == 200 and deleted.json() == {"jobName": name}
    gone = user.get(f"/jobs/{name}")
    assert gone.status_code == 404, gone.text
    until(lambda: pods_gone(user_namespace(user), name), WAIT, "the seed's pod to be deleted")
    assert [user.get(path, params=q).json() for q in queries] == expected
    assert user.get(f"/jobs/{name}/logs", params={"date": today(), "from": 0, "size": 5}).json() == \
        [f"[{instance}] test-cmd"]


def test_a_jobs_logs_reach_the_api_through_the_node_collector(deployed, user):
    """A job's 2,000 lines, read back page by page after its pod is gone: the archive holds them all, and the node
    collector's own metrics count them (the API pods run no collector)."""
    name = job_name("nodelog")
    body = {"containers": [{"image": "busybox", "command": ["sh", "-c", "seq 1 2000"]}]}
    assert user.post(f"/jobs/{name}", json=body).status_code == 200
    (instance,) = wait_for(user, name, lambda job: condition(job, "Complete"))["instance_names"]
    until(lambda: len(user.get(f"/jobs/{name}/logs", params={"size": 5000}).json()) == 2000, WAIT,
          "the archive to hold the 2,000 lines")
    assert user.delete(f"/jobs/{name}").status_code == 200
    until(lambda: pods_gone(user_namespace(user), name), WAIT, "the job's pod to be deleted")
    path = f"/jobs/{name}/instances/{instance}/logs"
    lines = [line for offset in range(0, 2000, 500)
             for line in user.get(path, params={"from": offset, "size": 500}).json()]
    assert lines == [str(i) for i in range(1, 2001)]
    (collector,) = deployed.pods(NODES_NAMESPACE, NODE_COLLECTOR_SELECTOR)
    with port_forward(NODES_NAMESPACE, collector["metadata"]["name"], 8081) as port:
        text = requests.get(f"{port}/metrics", timeout=30).text
    archived = sum(float(v) for v in re.findall(r'^tenx_collector_lines_archived_total\{[^}]*\} (\S+)$', text, re.M))
    assert archived >= 2000, text[-2000:]


# ---------------------------------------------------------------- replicas come and go

def credentials(deployed: LocalDeployment, client: ServiceClient) -> Credentials:
    return Credentials(url=deployed.url, user=client.username, token=client.token, region="us", profile="default")


def test_a_rollout_restart_while_a_client_follows_a_log_loses_and_repeats_nothing(deployed, user):
    """The tenx CLI's follower (Last-Event-ID on reconnect) on one instance's log through the Service while
    `kubectl rollout restart` replaces both replicas: the stream is ended by the replica that stops (`shutdown`),
    the client resumes on another, and the lines come exactly once, in order; lines arrive after the last old
    replica is gone, so from a new one."""
    count = 240
    name = job_name("follow")
    script = f'i=0; while [ $i -lt {count} ]; do i=$((i+1)); echo "line $i"; sleep 0.5; done'
    assert user.post(f"/jobs/{name}", json={"containers": [{"image": "busybox", "command": ["sh", "-c", script]}]}
                     ).status_code == 200
    instance = until(lambda: (user.get(f"/jobs/{name}").json().get("instance_names") or [None])[0], WAIT,
                     "the job's pod")
    old_pods = {p["metadata"]["name"] for p in deployed.pods()}
    client = Client(credentials(deployed, user))
    streams: list[str | None] = []  # the Last-Event-ID each stream was opened with
    opened = client.open_stream

    def open_stream(path, params=None, last_event_id=None):
        streams.append(last_event_id)
        return opened(path, params, last_event_id)
    client.open_stream = open_stream
    received: list[tuple[float, str]] = []
    follower = Follower(client, name)
    ended: list = []
    thread = threading.Thread(target=lambda: ended.append(
        follower.stream_instance(instance, lambda _instance, line: received.append((time.monotonic(), line)))))
    thread.start()
    until(lambda: len(received) >= 10, WAIT, "the first lines of the followed log")
    kubectl("rollout", "restart", "deployment/tenx-gateway", "-n", NAMESPACE)
    kubectl("rollout", "status", "deployment/tenx-gateway", "-n", NAMESPACE, "--timeout=600s", timeout=660)
    until(lambda: not old_pods & {p["metadata"]["name"] for p in deployed.pods()}, WAIT, "the old replicas to go")
    replaced = time.monotonic()
    thread.join(timeout=count * 0.5 + WAIT)
    assert not thread.is_alive(), "the follower did not reach the end of the log"
    lines = [line for _, line in received]
    assert lines == [f"line {i}" for i in range(1, count + 1)]  # none lost, none repeated
    assert ended and ended[0] is not None and ended[0].status == "succeeded", ended
    assert len(streams) >= 2 and streams[0] is None and all(s is not None for s in streams[1:]), streams
    assert any(at > replaced for at, _ in received), "no line came after the old replicas were gone"
    record(rollout_follow={"lines": len(lines), "streams_opened": len(streams), "resumed_from": streams[1:]})


def test_a_replica_killed_mid_request_gives_retryable_errors_and_no_wrong_answer(deployed, user):
    """Four clients (the tenx CLI's) read a 10,000-line log and a job, over and over, through the Service, while one
    replica's API container is SIGKILLed: each answer is the right one or an error the CLI calls retryable
    (Unavailable: try again), never another answer; the requests that were on the killed replica got such errors."""
    name = job_name("kill")
    body = {"containers": [{"image": "busybox", "command": ["sh", "-c", "seq 1 10000"]}]}
    assert user.post(f"/jobs/{name}", json=body).status_code == 200
    (instance,) = wait_for(user, name, lambda job: condition(job, "Complete"))["instance_names"]
    expected_page = [str(i) for i in range(1, 10001)]
    # the whole log archived first: the pages then read the archive alone, whichever replica answers (a page read
    # while the node collector is still archiving joins the pod's log to the archive's; other tests cover that)
    archived = until(lambda: (lambda got: got if len(got) >= 10000 else None)(
        user.get(f"/jobs/{name}/logs", params={"size": 10000}).json()), WAIT, "the node collector to archive the log")
    assert archived == [f"[{instance}] {line}" for line in expected_page]
    assert user.get(f"/jobs/{name}/logs", params={"from": 10000, "size": 10}).json() == []

    outcomes: dict[str, int] = {"right": 0, "retryable": 0}
    wrong: list[str] = []
    reasons: dict[str, int] = {}  # the retryable errors' messages, without the address
    stop = threading.Event()
    lock = threading.Lock()

    def note(kind: str, detail: str = "") -> None:
        with lock:
            if kind == "wrong":
                wrong.append(detail)
            else:
                outcomes[kind] += 1

    def reader(index: int) -> None:
        client = Client(credentials(deployed, user), session=_closing_session())
        while not stop.is_set():
            try:
                if index % 2:
                    page = client.instance_logs(name, instance, offset=0, size=10000).lines
                    note("right" if page == expected_page else "wrong", _difference(page, expected_page))
                else:
                    job = client.get_job(name)
                    note("right" if job["metadata"]["name"] == name else "wrong", json.dumps(job)[:200])
            except Unavailable as exc:
                note("retryable")
                reason = re.sub(r"http://\S+", "URL", str(exc))[:100]
                with lock:
                    reasons[reason] = reasons.get(reason, 0) + 1
            except TenxError as exc:
                note("wrong", f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - anything the CLI would not turn into a retryable error
                note("wrong", f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    until(lambda: outcomes["right"] >= 8, WAIT, "the readers to be answered")
    victim = deployed.pods()[0]
    restarts = _restarts(victim)
    killed = kill_container(victim, "api")
    until(lambda: _restarts(_pod(victim["metadata"]["name"])) > restarts and _ready(_pod(victim["metadata"]["name"])),
          WAIT, "the killed replica to be back")
    answered = outcomes["right"]  # calls after it is back, on connections of their own, meet both replicas
    until(lambda: outcomes["right"] >= answered + 16, WAIT, "the readers to be answered again")
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    record(replica_kill={"processes_killed": killed, **outcomes, "wrong": len(wrong), "reasons": reasons})
    assert not wrong, (wrong[:10], _warnings(deployed))
    assert outcomes["retryable"] >= 1, outcomes  # the kill met requests in flight
    assert outcomes["right"] > outcomes["retryable"]


def _warnings(deployed: LocalDeployment) -> list[str]:
    """The API containers' warnings and errors, and the pages cut at the archive's end (JSON log lines), to say why
    an answer was wrong."""
    found = []
    for pod in deployed.pods():
        text = kubectl("logs", "-n", NAMESPACE, pod["metadata"]["name"], "-c", "api", "--tail=2000").stdout
        notable = re.compile(r'"level": "(warning|error)"|cannot be read')
        found += [line[:300] for line in text.splitlines() if notable.search(line)]
    return found[-20:]


def _difference(page: list[str], expected: list[str]) -> str:
    """Where a page first differs from the expected one, with a few lines around it."""
    at = next((i for i, (got, want) in enumerate(zip(page, expected)) if got != want), min(len(page), len(expected)))
    return f"page of {len(page)} lines, first difference at {at}: {page[max(at - 2, 0):at + 3]}"


def _closing_session() -> requests.Session:
    session = requests.Session()
    session.headers["Connection"] = "close"  # each call on its own connection: either replica may answer
    return session


def _pod(name: str) -> dict:
    return json.loads(kubectl("get", "pod", name, "-n", NAMESPACE, "-o", "json").stdout)


def _restarts(pod: dict) -> int:
    return sum(s["restartCount"] for s in pod["status"]["containerStatuses"])


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])


# ---------------------------------------------------------------- read-your-writes across replicas

ROUNDS = 1000


def test_1000_rounds_through_the_service_see_no_stale_answer(deployed):
    """create, get, list, delete, get: each call on its own connection, so either replica may answer it. A stale
    answer: a 404 for the job just created, a list without it, a 200 for the job just deleted. The job asks for no
    pod (parallelism 0): the rounds measure the API, not the node."""
    client = deployed.add_user("rounds")
    body = {"containers": [{"image": "busybox", "command": ["true"]}], "parallelism": 0}
    stale = {"get_after_create": 0, "list_after_create": 0, "get_after_delete": 0}
    latency: dict[str, list[float]] = {call: [] for call in ("create", "get", "list", "delete", "get_deleted")}
    errors: list[str] = []

    def timed(call: str, method: str, path: str, **kwargs) -> requests.Response:
        started = time.monotonic()
        response = client.call(method, path, **kwargs)
        latency[call].append(time.monotonic() - started)
        return response

    started = time.monotonic()
    for round_ in range(ROUNDS):
        name = f"r{round_:04d}-{secrets.token_hex(2)}"
        created = timed("create", "POST", f"/jobs/{name}", json=body)
        if created.status_code != 200:
            errors.append(f"{round_} create {created.status_code} {created.text[:200]}")
            continue
        got = timed("get", "GET", f"/jobs/{name}")
        stale["get_after_create"] += got.status_code == 404
        listed = timed("list", "GET", "/jobs")
        stale["list_after_create"] += name not in {j["metadata"]["name"] for j in listed.json()["jobs"]}
        deleted = timed("delete", "DELETE", f"/jobs/{name}")
        if deleted.status_code != 200:
            errors.append(f"{round_} delete {deleted.status_code} {deleted.text[:200]}")
            continue
        after = timed("get_deleted", "GET", f"/jobs/{name}")
        stale["get_after_delete"] += after.status_code == 200
        for response in (got, after):
            if response.status_code not in (200, 404):
                errors.append(f"{round_} get {response.status_code} {response.text[:200]}")
    record(rounds={
        "rounds": ROUNDS, "seconds": round(time.monotonic() - started, 1), "stale": stale,
        "stale_total": sum(stale.values()), "errors": len(errors),
        "latency_ms": {call: {"p50": round(statistics.median(values) * 1000, 1),
                              "p99": round(sorted(values)[int(len(values) * 0.99) - 1] * 1000, 1)}
                       for call, values in latency.items() if values}})
    assert not errors, errors[:10]
    assert sum(stale.values()) == 0, f"stale answers in {ROUNDS} rounds: {stale}"
