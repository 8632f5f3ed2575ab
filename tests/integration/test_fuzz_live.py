"""The fuzzer, live: the strategies of tests/gateway/api/test_fuzz_api.py against the real gunicorn gateway on the local
cluster, for a bounded number of examples. Properties: never a 5xx (but a 503 with Retry-After), every error in the one
shape, and nothing created on a 4xx (the user's namespace, listed with the admin kubeconfig before and after).

Requests go out through http.client with the path exactly as generated: requests and urllib3 would remove "." and
".." segments and re-quote the rest before sending. Jobs made by the fuzzer never run (the local cluster runs a
container's command on the host): job.json is posted as a user whose namespace has a ResourceQuota of zero pods,
and paths are fuzzed with the seed job.json at parallelism 0. A job that was created is deleted at once, so the
tenant's quota of Jobs is never reached. The logs query is fuzzed on a finished job's real pod (its live log).
FUZZ_LIVE_SCALE (default 1) multiplies the example counts.
"""
from __future__ import annotations

import datetime as dt
import http.client
import itertools
import json
import os
from collections import Counter
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.seed import SEED_JOB
from tests.support import strategies as fuzz
from tests.support.properties import answer_problems
from tests.support.conditions import condition
from tests.support.reliability import make_namespace, record

SCALE = float(os.environ.get("FUZZ_LIVE_SCALE", "1"))
LOG_SCRIPT = r"printf 'start\n\ttab\nnon-ascii \303\251 \345\220\215\nnul \000 byte\n\033[31mred\n'; echo end"
_names = itertools.count()
STATUSES: Counter = Counter()  # "<test> <status>" -> answers, for .local/reliability/fuzz_live.json


def live_settings(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


class Target:
    """One user of the live gateway, sending raw requests and checking every answer's properties."""

    def __init__(self, gateway, user, batch_api):
        self.gateway, self.user, self.batch = gateway, user, batch_api
        self.namespace = gateway.namespace_of(user)
        self.base = urlsplit(user.base)
        self.headers = dict(user.session.headers)
        self.sent = 0

    def job_names(self) -> set[str]:
        return {j.metadata.name for j in self.batch.list_namespaced_job(self.namespace).items}

    def send(self, method: str, path: str, body: bytes | None = None, query: list | None = None,
             content_type: str | None = "application/json") -> tuple[int, dict, bytes]:
        target = self.base.path + path + (f"?{urlencode(query)}" if query else "")
        headers = {**self.headers, **({"Content-Type": content_type} if content_type and body is not None else {})}
        connection = http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=60)
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()
            self.sent += 1

    def check(self, method: str, path: str, **kwargs) -> tuple[int, bytes]:
        """One request; assert the properties; delete what a 2xx created."""
        before = self.job_names()
        status, headers, body = self.send(method, path, **kwargs)
        STATUSES[f"{os.environ.get('PYTEST_CURRENT_TEST', '?').split('::')[-1].split(' ')[0]} {status}"] += 1
        problems = answer_problems(method, status, headers, body)
        made = self.job_names() - before
        if 400 <= status < 500 and made:
            problems.append(f"created {sorted(made)} on a {status}")
        for name in made:
            self.batch.delete_namespaced_job(name, self.namespace, propagation_policy="Background")
        sent = kwargs.get("body") or kwargs.get("query") or ""
        assert not problems, f"{method} {path} {str(sent)[:300]!r} -> {status} {body[:400]!r}: {problems}"
        return status, body


@pytest.fixture(scope="module", autouse=True)
def figures():
    """The answers by test and status, kept for RELIABILITY.md (written whatever the outcome)."""
    yield
    record("fuzz_live", {"requests": sum(STATUSES.values()), "scale": SCALE,
                         "answers": dict(sorted(STATUSES.items()))})


@pytest.fixture(scope="module")
def batch_api(local_cluster):
    from kubernetes import client, config
    api_client = config.new_client_from_config(config_file=local_cluster.kubeconfig)
    yield client.BatchV1Api(api_client)
    api_client.close()


@pytest.fixture(scope="module")
def no_pods(gateway, make_user, batch_api):
    """A user whose namespace lets no pod run: job.json is fuzzed as them."""
    user = make_user("fz")
    make_namespace(gateway, user, max_pods=0)
    return Target(gateway, user, batch_api)


@pytest.fixture(scope="module")
def with_log(gateway, make_user, batch_api):
    """A user with one finished job whose pod logged a few odd lines: the logs query and paths are fuzzed as them."""
    user = make_user("fl")
    job = {"containers": [{"image": "busybox", "command": ["sh", "-c", LOG_SCRIPT]}]}
    created = user.post("/jobs/fuzz-job", json=job)
    assert created.status_code == 200, created.text
    done = user.wait_for("fuzz-job", lambda j: condition(j, "Complete") and j.get("instance_names"))
    target = Target(gateway, user, batch_api)
    target.instance = done["instance_names"][0]
    return target


def fresh_name() -> str:
    return f"fz-{next(_names)}-{dt.datetime.now().strftime('%H%M%S')}"


@live_settings(30)
@given(job=fuzz.valid_jobs())
def test_live_valid_job_json(no_pods, job):
    status, body = no_pods.check("POST", f"/jobs/{fresh_name()}", body=json.dumps(job).encode())
    assert status == 200, body[:400]


@live_settings(150)
@given(job=fuzz.broken_jobs())
def test_live_broken_job_json(no_pods, job):
    no_pods.check("POST", f"/jobs/{fresh_name()}", body=json.dumps(job).encode())


@live_settings(100)
@given(body=fuzz.raw_bodies(), content_type=st.sampled_from(["application/json", "text/plain", None]))
def test_live_raw_job_json_text(no_pods, body, content_type):
    no_pods.check("POST", f"/jobs/{fresh_name()}", body=body, content_type=content_type)


@live_settings(150)
@given(data=st.data())
def test_live_logs_query(with_log, data):
    target = data.draw(fuzz.log_targets(job="fuzz-job", instance=with_log.instance))
    with_log.check("GET", target, query=data.draw(fuzz.log_queries()))


@live_settings(150)
@given(data=st.data())
def test_live_path_segments(with_log, data):
    method, path = data.draw(fuzz.paths(job="fuzz-job", instance=with_log.instance))
    if method == "DELETE" and path.rstrip("/") == "/jobs/fuzz-job":
        method = "GET"  # keep the logged job for the examples after this one
    body = json.dumps({**SEED_JOB, "parallelism": 0}).encode() if method in ("POST", "PUT") else None
    with_log.check(method, path, body=body)
