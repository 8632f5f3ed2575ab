"""The five calls of the seed, end to end through gunicorn, on the real local cluster."""
from __future__ import annotations

import datetime as dt
import secrets

import pytest

from tests.support.seed import SEED_JOB
from tests.support.conditions import condition

def job_name(prefix: str = "job") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def shell_job(script: str, **extra) -> dict:
    return {"containers": [{"image": "busybox", "command": ["sh", "-c", script]}], **extra}


def complete(job: dict) -> bool:
    return condition(job, "Complete") is not None


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d")


def test_the_seed_example_end_to_end(user, gateway):
    name = job_name("job-api")
    created = user.post(f"/jobs/{name}", json=SEED_JOB)
    assert created.status_code == 200, created.text
    job = created.json()["job"]
    assert job["metadata"]["name"] == name
    assert job["metadata"]["labels"] == {"name": name, "app.kubernetes.io/managed-by": "tenx-gateway"}
    assert job["metadata"]["selfLink"] == f"/apis/batch/v1/namespaces/{job['metadata']['namespace']}/jobs/{name}"
    assert job["metadata"]["uid"] and job["metadata"]["resourceVersion"]
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["name"] == name
    (container,) = template["spec"]["containers"]
    assert container["name"] == name and container["imagePullPolicy"] == "Always"
    assert template["spec"]["restartPolicy"] == "OnFailure"
    assert {"name": "tenxcloud-time-zone", "hostPath": {"path": "/etc/localtime", "type": ""}} in \
        template["spec"]["volumes"]

    listed = user.get("/jobs")
    assert listed.status_code == 200
    assert [j["metadata"]["name"] for j in listed.json()["jobs"]] == [name]
    assert listed.json()["jobs"][0]["metadata"]["selfLink"].endswith(f"/jobs/{name}")

    done = user.wait_for(name, complete)
    assert done["status"]["succeeded"] == 1
    assert list(done)[0] == "instance_names"
    (instance,) = done["instance_names"]
    assert instance.startswith(name + "-")

    logs = user.get(f"/jobs/{name}/instances/{instance}/logs")
    assert logs.status_code == 200 and logs.json() == ["test-cmd"]
    dated = user.get(f"/jobs/{name}/instances/{instance}/logs", params={"date": today(), "from": 0, "size": 100})
    assert dated.json() == ["test-cmd"]

    deleted = user.delete(f"/jobs/{name}")
    assert deleted.status_code == 200 and deleted.json() == {"jobName": name}
    gone = user.get(f"/jobs/{name}")
    assert gone.status_code == 404
    assert gone.json() == {"code": 404, "status": "Not Found", "message": f"job {name!r} not found"}


def test_host_volume_and_env_reach_the_job(user, gateway):
    name = job_name("vol")
    body = {"containers": [{"image": "busybox", "command": ["sh", "-c", 'echo "$KEY" > /data/out.txt'],
                            "env": [{"name": "KEY", "value": "from-env"}],
                            "volumeMounts": [{"name": "work", "mountPath": "/data"}]}],
            "volumes": [{"name": "work", "type": "host"}]}
    assert user.post(f"/jobs/{name}", json=body).status_code == 200
    user.wait_for(name, complete)
    on_host = gateway.host_volume_root / user.username / "job" / name / "work" / "out.txt"
    assert on_host.read_text() == "from-env\n"


def test_a_failing_job_ends_failed_with_a_reason(user):
    name = job_name("fail")
    assert user.post(f"/jobs/{name}", json=shell_job("echo boom; exit 3", backoff_limit=1)).status_code == 200
    failed = user.wait_for(name, lambda j: condition(j, "Failed") is not None, timeout=120)
    assert condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"
    assert failed["spec"]["backoffLimit"] == 1


@pytest.fixture(scope="module")
def long_log(make_user):
    """A job that printed 1..1000, one number a line, and its one instance."""
    owner = make_user("pager")
    name = job_name("seq")
    assert owner.post(f"/jobs/{name}", json=shell_job("seq 1 1000")).status_code == 200
    instance = owner.wait_for(name, complete)["instance_names"][0]
    return owner, f"/jobs/{name}/instances/{instance}/logs"


@pytest.mark.parametrize("params, expected", [
    ({"from": 0, "size": 5}, ["1", "2", "3", "4", "5"]),
    ({"from": 995, "size": 10}, ["996", "997", "998", "999", "1000"]),
    ({"from": 1000, "size": 10}, []),
    ({"from": 499, "size": 2}, ["500", "501"]),
    ({"size": 0}, []),
])
def test_paging_a_long_log(long_log, params, expected):
    owner, path = long_log
    assert owner.get(path, params=params).json() == expected


def test_paging_within_a_day(long_log):
    owner, path = long_log
    assert owner.get(path, params={"date": today(), "from": 10, "size": 3}).json() == ["11", "12", "13"]


def test_whole_log_without_paging_parameters(long_log):
    owner, path = long_log
    assert owner.get(path).json() == [str(i) for i in range(1, 1001)]


@pytest.mark.parametrize("date", ["2015.12.29", "2099.01.01"])
def test_a_day_without_lines_is_empty(long_log, date):
    owner, path = long_log
    response = owner.get(path, params={"date": date})
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize("params, field", [
    ({"date": "2015-12-29"}, "date"), ({"date": "2015.02.30"}, "date"), ({"from": "-1"}, "from"),
    ({"from": "x"}, "from"), ({"size": "-1"}, "size"), ({"size": "1.5"}, "size"), ({"size": "100001"}, "size"),
])
def test_bad_log_parameters_are_400(long_log, params, field):
    owner, path = long_log
    response = owner.get(path, params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and body["status"] == "Bad Request" and field in body["errors"]


def test_logs_of_an_instance_that_is_not_the_jobs(long_log, user):
    owner, path = long_log
    other = job_name("other")
    assert owner.post(f"/jobs/{other}", json=shell_job("true")).status_code == 200
    instance = path.split("/")[4]
    assert owner.get(f"/jobs/{other}/instances/{instance}/logs").status_code == 404
    assert owner.get(path.replace(instance, instance + "x")).status_code == 404
    owner.delete(f"/jobs/{other}")


def test_duplicate_create_is_409(user):
    name = job_name("dup")
    assert user.post(f"/jobs/{name}", json=shell_job("true")).status_code == 200
    again = user.post(f"/jobs/{name}", json=shell_job("true"))
    assert again.status_code == 409
    assert again.json() == {"code": 409, "status": "Conflict", "message": f"job {name!r} already exists"}


INVALID_BODIES = [
    ({}, "containers"),
    ({"containers": []}, "containers"),
    ({"containers": [{"command": ["true"]}]}, "containers"),
    ({"containers": [{"image": "x", "ports": [{"port": 70000}]}]}, "containers"),
    ({"containers": [{"image": "x", "resources": {"limits": {"memory": "lots"}}}]}, "containers"),
    ({"containers": [{"image": "x", "volumeMounts": [{"name": "v", "mountPath": "/d"}]}]}, "containers.0.volumeMounts"),
    ({"containers": [{"image": "x"}], "volumes": [{"name": "../../etc", "type": "host"}]}, "volumes"),
    ({"containers": [{"image": "x"}], "volumes": [{"name": "v", "type": "nfs"}]}, "volumes"),
    ({"containers": [{"image": "x"}], "colour": "blue"}, "colour"),
    ({"containers": [{"image": "x"}], "sync_timezone": "yes"}, "sync_timezone"),
]


@pytest.mark.parametrize("body, field", INVALID_BODIES)
def test_invalid_job_json_is_400_and_creates_nothing(user, body, field):
    name = job_name("bad")
    response = user.post(f"/jobs/{name}", json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["errors"]
    assert user.get(f"/jobs/{name}").status_code == 404


@pytest.mark.parametrize("name", ["Upper", "under_score", "x" * 64, "-lead"])
def test_invalid_job_names_are_400(user, name):
    response = user.post(f"/jobs/{name}", json=shell_job("true"))
    assert response.status_code == 400 and "job_name" in response.json()["errors"]


@pytest.mark.parametrize("data", ["not json", "[1, 2]", '"text"'])
def test_a_body_that_is_not_a_json_object_is_400(user, data):
    response = user.post(f"/jobs/{job_name()}", data=data, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == 400


def test_a_body_over_the_cap_is_413(user):
    huge = shell_job("true")
    huge["containers"][0]["env"] = [{"name": f"K{i}", "value": "v" * 1000} for i in range(100)]
    response = user.post(f"/jobs/{job_name()}", json=huge)
    assert response.status_code == 413 and response.json()["status"] == "Request Entity Too Large"


def test_unknown_region_is_404_naming_the_supported(user, gateway):
    response = user.session.get(f"{gateway.url}/v1/regions/eu/jobs", timeout=10)
    assert response.status_code == 404
    assert response.json()["message"] == "unknown region 'eu'; supported regions: us"


def test_missing_job_is_404_on_get_and_delete(user):
    assert user.get("/jobs/nope-nope").status_code == 404
    assert user.delete("/jobs/nope-nope").status_code == 404


def test_wrong_method_is_405(user):
    response = user.session.put(f"{user.base}/jobs/x", timeout=10)
    assert response.status_code == 405 and response.json()["code"] == 405
