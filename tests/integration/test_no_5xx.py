"""No input makes a 500, on the real local cluster through gunicorn (issue 11's findings, each as it was found):
hostile bodies, dot and malformed instance names, the ends of the calendar, trailing slashes and empty log
parameters, and the apiserver's own refusals (a quota's and an admission policy's 403 reach the caller as 403;
a 401 or an RBAC 403 against the gateway's own identity is a 502)."""
from __future__ import annotations

import base64
import http.client
import secrets
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.support.harness import VENV_BIN, ApiClient, GatewayServer
from tests.support.conditions import condition

FOREVER = {"containers": [{"image": "busybox", "command": ["sh", "-c",
                                                            "printf 'ctl\\001\\002\\033[1m\\n'; echo hello; sleep 3600"]}]}


def job_name(prefix: str = "n5") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def assert_error(response, code: int) -> dict:
    assert response.status_code == code, (response.status_code, response.text[:300])
    body = response.json()
    assert body["code"] == code and body["status"] and body["message"]
    return body


@pytest.fixture(scope="module")
def admin(local_cluster):
    """The official client on the admin kubeconfig, for setting up refusals behind the gateway's back."""
    api_client = k8s_config.new_client_from_config(config_file=local_cluster.kubeconfig)
    yield api_client
    api_client.close()


def raw_get(client: ApiClient, path: str) -> tuple[int, bytes]:
    """GET with the path sent exactly as given (requests/urllib3 would resolve '..' and '.' first)."""
    base = urlsplit(client.base)
    connection = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
    connection.request("GET", base.path + path, headers=dict(client.session.headers))
    response = connection.getresponse()
    return response.status, response.read()


@pytest.fixture(scope="module")
def running(make_user):
    """A user with a job whose one pod keeps running, having logged a line of control characters."""
    owner = make_user("live")
    name = job_name("alive")
    assert owner.post(f"/jobs/{name}", json=FOREVER).status_code == 200

    def logged(job):
        names = job.get("instance_names") or []
        return names and owner.get(f"/jobs/{name}/instances/{names[0]}/logs").json() == ["ctl\x01\x02\x1b[1m",
                                                                                          "hello"]
    instance = owner.wait_for(name, logged, timeout=120)["instance_names"][0]
    yield owner, name, instance
    owner.delete(f"/jobs/{name}")


def test_sixty_thousand_brackets_are_400(user):
    name = job_name()
    response = user.post(f"/jobs/{name}", data=b"[" * 60_000, headers={"Content-Type": "application/json"})
    assert_error(response, 400)
    assert_error(user.get(f"/jobs/{name}"), 404)


@pytest.mark.parametrize("data", [b'{"containers": [{"image": "busybox", "command": ["echo", "\\ud800"]}]}',
                                  b'{"containers": [{"image": "busybox", "command": ["echo", "\xed\xa0\x80"]}]}'])
def test_a_lone_surrogate_is_400_and_creates_nothing(user, data):
    name = job_name()
    assert_error(user.post(f"/jobs/{name}", data=data, headers={"Content-Type": "application/json"}), 400)
    assert_error(user.get(f"/jobs/{name}"), 404)


@pytest.mark.parametrize("date", ["9999.12.31", "0001.01.01"])
def test_the_ends_of_the_calendar_are_empty_days_of_a_live_pod(running, date):
    owner, name, instance = running
    response = owner.get(f"/jobs/{name}/instances/{instance}/logs", params={"date": date})
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize("instance", ["..", ".", "%2E%2E", "%2e", "abc%0A", "UPPER", "a%2Fb", "x" * 254])
def test_names_no_pod_can_have_are_404(running, instance):
    owner, name, _ = running
    status, body = raw_get(owner, f"/jobs/{name}/instances/{instance}/logs")
    assert status == 404, body[:300]
    assert body.startswith(b'{"code":404')


@pytest.mark.parametrize("path", ["/jobs", "/jobs/{name}", "/jobs/{name}/instances", "/jobs/{name}/logs",
                                  "/jobs/{name}/instances/{instance}/logs"])
def test_a_trailing_slash_answers_as_without_it(running, path):
    owner, name, instance = running
    path = path.format(name=name, instance=instance)
    plain, slashed = owner.get(path), owner.get(path + "/", allow_redirects=False)
    assert plain.status_code == slashed.status_code == 200
    if path.endswith("/jobs"):  # other users' tests may add jobs in between: compare this user's view
        assert [j["metadata"]["name"] for j in plain.json()["jobs"]] == [
            j["metadata"]["name"] for j in slashed.json()["jobs"]]
    elif "instances" in path and path.endswith("/instances"):
        assert [i["name"] for i in plain.json()["instances"]] == [i["name"] for i in slashed.json()["instances"]]
    else:
        assert plain.json() == slashed.json()


def test_a_trailing_slash_on_create_and_delete(user):
    name = job_name("slash")
    created = user.post(f"/jobs/{name}/", json={"containers": [{"image": "busybox", "command": ["true"]}]})
    assert created.status_code == 200 and created.json()["job"]["metadata"]["name"] == name
    assert user.delete(f"/jobs/{name}/").json() == {"jobName": name}


@pytest.mark.parametrize("query", ["date=&from=&size=", "date=", "from=", "size="])
def test_empty_log_parameters_mean_absent(running, query):
    owner, name, instance = running
    path = f"/jobs/{name}/instances/{instance}/logs"
    assert owner.get(f"{path}?{query}").json() == owner.get(path).json() == ["ctl\x01\x02\x1b[1m", "hello"]


def test_head_of_the_list_answers_and_the_next_call_works(running):
    owner, name, _ = running
    for _ in range(20):  # each HEAD once left an apiserver connection checked out
        assert owner.session.head(owner.base + "/jobs", timeout=30).status_code == 200
    assert name in [j["metadata"]["name"] for j in owner.get("/jobs").json()["jobs"]]


# -- the apiserver's refusals -------------------------------------------------------------------------------------

def test_a_quota_refusal_is_403_with_the_quota_message(make_user, gateway, admin):
    owner = make_user("quota")
    first = job_name("first")
    assert owner.post(f"/jobs/{first}", json={"containers": [{"image": "busybox", "command": ["true"]}]}
                      ).status_code == 200
    namespace = gateway.namespace_of(owner)
    core = k8s.CoreV1Api(admin)
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "h5-one-job"},
             "spec": {"hard": {"count/jobs.batch": "1"}}}
    core.create_namespaced_resource_quota(namespace, quota)
    try:
        deadline = time.monotonic() + 60
        while not (core.read_namespaced_resource_quota("h5-one-job", namespace).status.used or {}):
            assert time.monotonic() < deadline, "the quota controller never counted the namespace"
            time.sleep(0.5)
        second = job_name("second")
        body = assert_error(owner.post(f"/jobs/{second}", json={"containers": [{"image": "busybox"}]}), 403)
        assert "exceeded quota: h5-one-job" in body["message"]
        assert_error(owner.get(f"/jobs/{second}"), 404)
    finally:
        core.delete_namespaced_resource_quota("h5-one-job", namespace)


@pytest.mark.parametrize("reason, status", [("Forbidden", 403), (None, 400)])
def test_an_admission_policy_refusal_keeps_its_status_and_message(make_user, gateway, admin, reason, status):
    """A policy's ``reason`` decides the apiserver's status: Forbidden is a 403, the default (Invalid) a 422,
    which the gateway answers as 400; either way the policy's message reaches the caller."""
    owner = make_user("vap")
    assert owner.post(f"/jobs/{job_name('ok')}", json={"containers": [{"image": "busybox", "command": ["true"]}]}
                      ).status_code == 200
    namespace = gateway.namespace_of(owner)
    admission = k8s.AdmissionregistrationV1Api(admin)
    policy_name = f"h5-no-nope-{secrets.token_hex(3)}"
    admission.create_validating_admission_policy({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": policy_name},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{"apiGroups": ["batch"], "apiVersions": ["v1"],
                                                         "operations": ["CREATE"], "resources": ["jobs"]}]},
                 "validations": [{"expression": "!object.metadata.name.startsWith('nope-')",
                                  "message": "h5 test policy: no job may be called nope-*",
                                  **({"reason": reason} if reason else {})}]}})
    admission.create_validating_admission_policy_binding({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy_name},
        "spec": {"policyName": policy_name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {
                     "kubernetes.io/metadata.name": namespace}}}}})
    try:
        batch = k8s.BatchV1Api(admin)
        probe = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "nope-probe"},
                 "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                "containers": [{"name": "c", "image": "busybox"}]}}}}
        deadline = time.monotonic() + 60
        while True:  # the policy takes effect once the apiserver's admission plugin has seen it
            try:
                batch.create_namespaced_job(namespace, probe, dry_run="All")
            except k8s.ApiException as exc:
                if exc.status in (403, 422):
                    break
                raise
            assert time.monotonic() < deadline, "the policy never took effect"
            time.sleep(0.5)
        name = job_name("nope")
        body = assert_error(owner.post(f"/jobs/{name}", json={"containers": [{"image": "busybox"}]}), status)
        assert "h5 test policy: no job may be called nope-*" in body["message"]
        assert_error(owner.get(f"/jobs/{name}"), 404)
    finally:
        admission.delete_validating_admission_policy_binding(policy_name)
        admission.delete_validating_admission_policy(policy_name)


@pytest.fixture(scope="module")
def refused_regions(local_cluster, admin, tmp_path_factory):
    """A gateway with two more regions on the same cluster: ``bad`` presents a token the apiserver does not know
    (401), ``bare`` a service account with no permission at all (RBAC 403). Its log pages are capped at 1 KiB."""
    core = k8s.CoreV1Api(admin)
    holder = f"h5-bare-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": holder}})
    core.create_namespaced_service_account(holder, {"metadata": {"name": "bare"}})
    token = core.create_namespaced_service_account_token("bare", holder, {"spec": {"expirationSeconds": 3600}}
                                                         ).status.token
    with open(local_cluster.kubeconfig) as source:
        merged = yaml.safe_load(source)
    cluster = merged["contexts"][0]["context"]["cluster"]
    merged["users"] += [{"name": "bad", "user": {"token": base64.b64encode(b"not a token").decode()}},
                        {"name": "bare", "user": {"token": token}}]
    merged["contexts"] += [{"name": "bad", "context": {"cluster": cluster, "user": "bad"}},
                           {"name": "bare", "context": {"cluster": cluster, "user": "bare"}}]
    workdir = tmp_path_factory.mktemp("refused")
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(merged))
    server = GatewayServer(workdir, kubeconfig=kubeconfig, admin_kubeconfig=kubeconfig,
                           **{"GATEWAY_REGIONS": f"us={merged['current-context']},bad=bad,bare=bare",
                              "GATEWAY_LOG_MAX_BYTES": "1024"})
    server.start(timeout=60)
    try:
        # `users add` checks the new user's namespace in every region, which these refuse: add it with only the
        # good one (the same users Secret the server reads)
        name = f"refused{secrets.token_hex(3)}"
        token = subprocess.run([str(VENV_BIN / "tenx-gateway"), "users", "add", name], capture_output=True,
                               env={**server.env, "GATEWAY_REGIONS": f"us={merged['current-context']}"},
                               text=True, check=True, timeout=60).stdout.strip()
        client = ApiClient(server.url, name, token)
        server.wait_until_known(client)
        yield server, client
    finally:
        server.close()
        core.delete_namespace(holder)


@pytest.mark.parametrize("region, words", [("bad", "credentials"), ("bare", "not allowed")])
def test_the_gateways_own_refusals_are_502(refused_regions, region, words):
    server, client = refused_regions
    regional = ApiClient(server.url, client.username, client.session.headers["Authorization"].split()[1], region)
    for response in (regional.get("/jobs"), regional.get("/jobs/some-job"),
                     regional.post(f"/jobs/{job_name()}", json={"containers": [{"image": "busybox"}]})):
        body = assert_error(response, 502)
        assert words in body["message"] and "system:serviceaccount" not in body["message"]


def test_a_refused_region_leaves_the_others_working(refused_regions):
    _, client = refused_regions
    assert client.get("/jobs").status_code == 200


def test_the_log_byte_cap_counts_the_json_sent(refused_regions):
    """Control characters escape to six bytes each: a 1,000-byte cap once sent 5,998."""
    _, client = refused_regions
    name = job_name("ctl")
    script = "for i in 1 2 3 4 5; do head -c 600 /dev/zero | tr '\\0' '\\1'; echo; done"
    assert client.post(f"/jobs/{name}", json={"containers": [{"image": "busybox", "command": ["sh", "-c", script]}]}
                       ).status_code == 200
    try:
        instance = client.wait_for(name, lambda job: condition(job, "Complete"), timeout=120)["instance_names"][0]
        response = client.get(f"/jobs/{name}/instances/{instance}/logs")
        assert response.status_code == 200 and len(response.content) <= 1024
        assert response.headers["X-Log-Truncated"] == "true"
        lines = response.json()
        assert lines and set(lines[0]) == {"\x01"}
        page = client.get(f"/jobs/{name}/instances/{instance}/logs", params={"from": len(lines)})
        assert len(page.content) <= 1024 and page.json()
    finally:
        client.delete(f"/jobs/{name}")


def answered_500(server: GatewayServer) -> tuple[float, str]:
    """The 500s ``server`` counted (its metrics, counted before the answer leaves), and its log so far."""
    exposition = requests.get(server.metrics_url, timeout=10).text
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines()
                  if line.startswith("tenx_gateway_http_requests_total{") and 'status="500"' in line)
    return counted, server.log_text()


@pytest.fixture(autouse=True)
def nothing_was_a_500(request, gateway):
    """Each test here also checks that none of its calls, on either gateway, was answered 500: by the gateways'
    request counters, and by the access lines they logged meanwhile (the harness writes gunicorn's JSON access
    lines there). Per test, so that each holds alone."""
    servers = [gateway]
    if "refused_regions" in request.fixturenames:
        servers.append(request.getfixturevalue("refused_regions")[0])
    before = [answered_500(server) for server in servers]
    yield
    for server, (counted, log) in zip(servers, before):
        counted_after, log_after = answered_500(server)
        since = log_after[len(log):]
        assert counted_after == counted, f"{counted_after - counted:g} calls answered 500"
        assert '"status": 500' not in since and '"status":500' not in since, since[-3000:]
