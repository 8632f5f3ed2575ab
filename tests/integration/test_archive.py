"""Logs that outlive their pods, job-level logs, and instances that say why they failed."""
from __future__ import annotations

import signal

from tests.support.archive_jobs import job_name, namespace_of, pods_gone, shell_job, today, wait_until
from tests.support.conditions import condition


def test_logs_read_the_same_before_and_after_the_job_is_deleted(user, gateway, local_cluster):
    name = job_name("keep")
    assert user.post(f"/jobs/{name}", json=shell_job("seq 1 50")).status_code == 200
    instance = user.wait_for(name, lambda j: condition(j, "Complete"))["instance_names"][0]
    path = f"/jobs/{name}/instances/{instance}/logs"
    queries = [{}, {"from": 10, "size": 5}, {"date": today(), "from": 45, "size": 10}, {"date": "2015.12.29"}]
    before = [user.get(path, params=q).json() for q in queries]
    assert before[0] == [str(i) for i in range(1, 51)]
    # the archive must have caught up before the pods go: the job-level call reads only the archive
    wait_until(lambda: len(user.get(f"/jobs/{name}/logs").json()) == 50, what="the archive to hold 50 lines")

    assert user.delete(f"/jobs/{name}").status_code == 200
    wait_until(lambda: pods_gone(local_cluster, namespace_of(user, gateway), name), what="pods to be deleted")
    assert user.get(f"/jobs/{name}").status_code == 404
    assert [user.get(path, params=q).json() for q in queries] == before
    assert user.get(f"/jobs/{name}/instances/{instance}x/logs").status_code == 404


def test_a_job_that_failed_past_its_backoff_limit_still_shows_its_output(user, gateway, local_cluster):
    name = job_name("boom")
    assert user.post(f"/jobs/{name}", json=shell_job("echo boom; exit 3", backoff_limit=1)).status_code == 200
    user.wait_for(name, lambda j: condition(j, "Failed"), timeout=120)
    # the Job controller deletes a failed job's pods; the archive keeps what they said and why they stopped
    wait_until(lambda: pods_gone(local_cluster, namespace_of(user, gateway), name), what="failed pods deleted")
    instances = wait_until(lambda: user.get(f"/jobs/{name}/instances").json()["instances"], what="records")
    (record,) = instances
    assert record["name"].startswith(name)
    attempts = [record["containers"][0]] + [record["containers"][0].get("last_state", {})]
    assert any(a.get("exit_code") == 3 and a.get("reason") == "Error" for a in attempts), record
    logs = user.get(f"/jobs/{name}/instances/{record['name']}/logs").json()
    assert logs and set(logs) == {"boom"}


def test_instances_show_exit_codes_and_the_schedulers_reason(user):
    failed, unplaceable = job_name("exit"), job_name("huge")
    assert user.post(f"/jobs/{failed}", json=shell_job("exit 7", backoff_limit=0)).status_code == 200
    huge = shell_job("true")
    # within the tenant's quota (8 CPUs), beyond the node's 2: admitted, then unplaceable
    huge["containers"][0]["resources"] = {"limits": {"cpu": "4"}}
    assert user.post(f"/jobs/{unplaceable}", json=huge).status_code == 200

    def failed_record():
        records = user.get(f"/jobs/{failed}/instances").json()["instances"]
        for record in records:
            states = [record["containers"][0], record["containers"][0].get("last_state") or {}]
            if any(s.get("exit_code") == 7 for s in states):
                return record
        return None

    record = wait_until(failed_record, what="the exit code 7 to show")
    assert record["node"] == "tenx-local"
    pending = wait_until(lambda: [r for r in user.get(f"/jobs/{unplaceable}/instances").json()["instances"]
                                  if r.get("scheduling")], what="the scheduler's verdict")
    assert pending[0]["phase"] == "Pending"
    assert pending[0]["scheduling"]["reason"] == "Unschedulable"
    assert "Insufficient cpu" in pending[0]["scheduling"]["message"]
    assert user.get(f"/jobs/{job_name('none')}/instances").status_code == 404


def test_job_level_logs_interleave_instances_in_time_order(user):
    name = job_name("pair")
    body = shell_job('for i in 1 2 3; do echo "line $i"; sleep 0.2; done', parallelism=2, completions=2)
    assert user.post(f"/jobs/{name}", json=body).status_code == 200
    instances = user.wait_for(name, lambda j: condition(j, "Complete"))["instance_names"]
    assert len(instances) == 2
    lines = wait_until(lambda: (lambda got: got if len(got) == 6 else None)(user.get(f"/jobs/{name}/logs").json()),
                       what="six archived lines")
    for instance in instances:
        assert [l for l in lines if l.startswith(f"[{instance}] ")] == [f"[{instance}] line {i}" for i in (1, 2, 3)]
    assert user.get(f"/jobs/{name}/logs", params={"from": 2, "size": 2}).json() == lines[2:4]
    assert user.get(f"/jobs/{name}/logs", params={"date": "2015.12.29"}).json() == []
    assert user.get(f"/jobs/{job_name('none')}/logs").status_code == 404


def test_a_collector_killed_mid_stream_loses_and_duplicates_no_line(user, gateway, local_cluster):
    name = job_name("steady")
    count = 400
    script = f"i=1; while [ $i -le {count} ]; do echo $i; i=$((i+1)); sleep 0.01; done"
    assert user.post(f"/jobs/{name}", json=shell_job(script)).status_code == 200
    wait_until(lambda: len(user.get(f"/jobs/{name}/logs").json()) > 20, what="the archive to start filling")
    gateway.stop_collectors(signal.SIGKILL)  # no goodbye: what was read and not committed is read again
    gateway.start_collector()
    user.wait_for(name, lambda j: condition(j, "Complete"), timeout=120)
    lines = wait_until(lambda: (lambda got: got if len(got) >= count else None)(
        user.get(f"/jobs/{name}/logs", params={"size": 1000}).json()), timeout=90, what="every line archived")
    numbers = [int(line.split("] ", 1)[1]) for line in lines]
    assert numbers == list(range(1, count + 1))


def test_a_two_container_instance_reads_the_same_lines_after_the_job_is_deleted(user, gateway, local_cluster):
    """The live path reads the first container of the pod spec (named after the job); the archive must pick the
    same container by name, not "the first that logged" (here the side container logs first)."""
    name = job_name("pair2")
    body = {"containers": [{"image": "busybox", "command": ["sh", "-c", "sleep 1; echo from-main"]},
                           {"image": "busybox", "command": ["sh", "-c", "echo from-side"]}]}
    assert user.post(f"/jobs/{name}", json=body).status_code == 200
    instance = user.wait_for(name, lambda j: condition(j, "Complete"))["instance_names"][0]
    path = f"/jobs/{name}/instances/{instance}/logs"
    before = user.get(path).json()
    assert before == ["from-main"]
    wait_until(lambda: len(user.get(f"/jobs/{name}/logs").json()) == 2, what="both containers archived")
    assert user.delete(f"/jobs/{name}").status_code == 200
    wait_until(lambda: pods_gone(local_cluster, namespace_of(user, gateway), name), what="pods to be deleted")
    assert user.get(path).json() == before
