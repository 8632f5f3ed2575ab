"""The fuzzer, unit level: Hypothesis against the Flask app with a fake apiserver behind the real ``Kube``
(tests/support/fake_apiserver_http.py). Properties, for every request: never a 5xx (but a 503 with Retry-After), every
error in the one shape, nothing created on a 4xx, no request to the apiserver outside the gateway's own routes, and
nothing sent on that the apiserver's validation would refuse (the gateway's must have stopped it first).

Bounded and repeatable: fixed example counts, ``derandomize=True`` (the same examples on every run), no example
database. FUZZ_EXAMPLES_SCALE (default 1) multiplies the counts, to explore further by hand.
"""
from __future__ import annotations

import itertools
import json
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError

from tests.support.seed import SEED_JOB
from tests.support import strategies as fuzz
from tests.support.fuzz_app import ALICE, BASE, JOB, NAMESPACE, POD, FuzzedApp
from tests.support.properties import answer_problems

SCALE = float(os.environ.get("FUZZ_EXAMPLES_SCALE", "1"))
_names = itertools.count()


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> FuzzedApp:
    return FuzzedApp(str(tmp_path_factory.mktemp("archive")))


def call(fuzzed: FuzzedApp, method: str, path: str, **kwargs):
    """Make one request, assert every property of its answer, and return it."""
    response, problems, exchange = fuzzed.call(method, path, **kwargs)
    assert not problems, f"{exchange}: {problems}"
    return response


def fresh_name() -> str:
    return f"fz-{next(_names)}"


@fuzz_settings(200)
@given(name=fuzz.job_names, job=fuzz.valid_jobs())
@example(name="a" * 61 + "-1", job={"containers": [{"image": "busybox"}, {"image": "busybox"}]})
@example(name="nulls", job={"containers": [{"image": "busybox", "env": None, "ports": None, "volumeMounts": None}],
                            "volumes": None})
def test_valid_job_json_is_created(fuzzed, name, job):
    """A valid job.json is a 200 (null reads as absent), and the Job is made."""
    fuzzed.apiserver.jobs.pop((NAMESPACE, name), None)  # a name drawn again: not a conflict this test is about
    response = call(fuzzed, "POST", f"/jobs/{name}", json=job)
    assert response.status_code == 200, response.get_data()[:400]
    assert (NAMESPACE, name) in fuzzed.apiserver.jobs


@fuzz_settings(500)
@given(job=fuzz.broken_jobs())
@example(job={"containers": [{"image": "busybox", "volumeMounts": [{"name": "v\n", "mountPath": "/v"}]}],
              "volumes": [{"name": "v\n", "type": "host"}]})
@example(job={"containers": [{"image": "busybox", "env": [{"name": "A\n", "value": "x"}]}]})
@example(job={"containers": [{"image": "busybox", "resources": {"limits": {"memory": "1Mi\n"}}}]})
def test_broken_job_json(fuzzed, job):
    call(fuzzed, "POST", f"/jobs/{fresh_name()}", json=job)


@fuzz_settings(400)
@given(body=fuzz.raw_bodies(), content_type=st.sampled_from(["application/json", "text/plain", None]))
@example(body=b"[" * 60000, content_type="application/json")
@example(body=b'{"containers": [{"image": "busybox", "command": ["echo", "\\ud800"]}]}', content_type=None)
def test_raw_job_json_text(fuzzed, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    call(fuzzed, "POST", f"/jobs/{fresh_name()}", data=body, headers=headers)


@fuzz_settings(500)
@given(request=fuzz.paths())
@example(request=("GET", f"/jobs/{JOB}/instances/../logs"))
@example(request=("GET", f"/jobs/{JOB}/instances/./logs"))
@example(request=("GET", f"/jobs/{JOB}/instances/%2e%2e/logs"))
@example(request=("POST", "/jobs/abc%0A"))
def test_path_segments(fuzzed, request):
    method, path = request
    call(fuzzed, method, path, json=SEED_JOB if method in ("POST", "PUT") else None)


@fuzz_settings(500)
@given(target=fuzz.log_targets(), query=fuzz.log_queries())
@example(target=f"/jobs/{JOB}/instances/{POD}/logs", query=[("date", "9999.12.31")])
@example(target=f"/jobs/{JOB}/instances/{POD}/logs", query=[("date", "0001.01.01")])
def test_logs_query(fuzzed, target, query):
    call(fuzzed, "GET", target, query_string=query)


@fuzz_settings(150)
@given(request=fuzz.paths(), query=fuzz.log_queries(), job=fuzz.valid_jobs())
def test_apiserver_down_is_503_with_retry_after(fuzzed, request, query, job):
    """With the apiserver unreachable, whatever is asked: an answer the gateway could give without it, or a 503
    that says when to try again."""
    method, path = request
    fuzzed.apiserver.down = True
    try:
        call(fuzzed, method, path, json=job if method in ("POST", "PUT") else None,
             query_string=query if path.endswith("/logs") else None)
    finally:
        fuzzed.apiserver.down = False


QUOTA = ('jobs.batch "x" is forbidden: exceeded quota: tenx-quota, requested: count/jobs.batch=1, used: '
         'count/jobs.batch=100, limited: count/jobs.batch=100')
WEBHOOK = 'admission webhook "deny.example.com" denied the request: images from this registry are not allowed'
RBAC = 'jobs.batch is forbidden: User "system:serviceaccount:tenx-gateway:tenx-gateway" cannot list resource "jobs"'


@fuzz_settings(150)
@given(refusal=st.sampled_from([(403, QUOTA, ("POST",)), (403, WEBHOOK, ("POST",)), (403, RBAC, ("GET", "POST")),
                                (401, "Unauthorized", ("GET", "POST", "DELETE"))]),
       request=fuzz.paths(), job=fuzz.valid_jobs())
def test_apiserver_refusals_are_never_a_500(fuzzed, refusal, request, job):
    """The apiserver refusing (a quota, an admission webhook, RBAC, a bad credential), whatever is asked: a 403
    with the quota's or policy's message where the user's create caused it, a 502 or 503 where the gateway's own
    credentials or permissions are wrong (README, errors), never a 500."""
    method, path = request
    fuzzed.apiserver.refusal = refusal
    try:
        response, problems, exchange = fuzzed.call(method, path, json=job if method in ("POST", "PUT") else None)
    finally:
        fuzzed.apiserver.refusal = None
    status = response.status_code
    problems = [p for p in problems if not p.startswith("server error 502")]  # 502: allowed here, see above
    assert not problems and status != 500, f"{exchange}: {problems}"
    if status == 403 and refusal[1] in (QUOTA, WEBHOOK):
        assert refusal[1] in response.get_json()["message"], exchange
    if refusal[1] in (RBAC, "Unauthorized"):
        assert status < 500 or status in (502, 503), exchange


@fuzz_settings(150)
@given(cut=st.integers(0, 2**15), target=st.sampled_from(["/jobs", f"/jobs/{JOB}/instances/{POD}/logs"]),
       query=fuzz.log_queries())
def test_a_stream_broken_by_the_apiserver_is_never_a_complete_looking_answer(fuzzed, cut, target, query):
    """The apiserver's answer breaks off after ``cut`` bytes: the client gets a 503 with Retry-After, or an answer
    that is whole (the break came after all that was needed), or a broken connection (the server stops sending
    mid-body); never a 200 whose body is well-formed but short."""
    apiserver = fuzzed.apiserver
    apiserver.break_streams_after = cut
    try:
        response = fuzzed.client.get(BASE + target, headers=ALICE, query_string=query if "logs" in target else None,
                                     buffered=False)
        pieces = []
        try:
            for piece in response.response:
                pieces.append(piece)
        except GatewayError:  # raised while the body is being sent: the server drops the connection
            return
        finally:
            response.close()
    finally:
        apiserver.break_streams_after = None
    body = b"".join(pieces)
    problems = answer_problems("GET", response.status_code, response.headers, body)
    assert not problems, (target, cut, response.status_code, body[:300], problems)
    if response.status_code == 200 and target == "/jobs":
        listed = json.loads(body)["jobs"]
        assert len(listed) == len([k for k in apiserver.jobs if k[0] == NAMESPACE]), (cut, body[-200:])


GET_ROUTES = ["/jobs", f"/jobs/{JOB}", f"/jobs/{JOB}/instances/{POD}/logs", "/jobs/no-such-job",
              f"/jobs/{JOB}/instances/nope/logs"]


@fuzz_settings(100)
@given(request=st.sampled_from([("GET", r) for r in GET_ROUTES] + [("POST", "/jobs/slashed"),
                                                                    ("DELETE", "/jobs/no-such-job")]),
       query=fuzz.log_queries())
def test_a_trailing_slash_answers_as_without(fuzzed, request, query):
    """The original's paths with a trailing slash answer as without it (old clients and proxies add one)."""
    method, route = request
    kwargs = {"json": SEED_JOB} if method == "POST" else {"query_string": query}
    answers = []
    for path in (route, route + "/"):
        fuzzed.apiserver.jobs.pop((NAMESPACE, "slashed"), None)
        answers.append(call(fuzzed, method, path, **kwargs))
    plain, slashed = answers
    assert slashed.status_code == plain.status_code, (route, plain.get_data()[:200], slashed.get_data()[:200])
