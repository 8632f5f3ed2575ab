"""Instance records: what a pod did and why, from its status."""
from gateway.store.records import instance_record


def pod(phase="Running", statuses=None, conditions=None, **status):
    return {
        "metadata": {"name": "job-abc", "uid": "u1", "creationTimestamp": "2026-11-26T10:00:00Z",
                     "labels": {"batch.kubernetes.io/job-name": "job", "job-name": "job"}},
        "spec": {"nodeName": "tenx-local", "containers": [{"name": "job"}]},
        "status": {"phase": phase, "startTime": "2026-11-26T10:00:01Z", "containerStatuses": statuses or [],
                   "conditions": conditions or [], **status},
    }


def test_a_failed_container_with_its_exit_code_and_previous_attempt():
    record = instance_record(pod("Failed", [{
        "name": "job", "restartCount": 2,
        "state": {"terminated": {"exitCode": 3, "reason": "Error", "startedAt": "2026-11-26T10:00:05Z",
                                 "finishedAt": "2026-11-26T10:00:06Z"}},
        "lastState": {"terminated": {"exitCode": 3, "reason": "Error", "finishedAt": "2026-11-26T10:00:04Z"}},
    }]))
    assert record == {
        "name": "job-abc", "uid": "u1", "job": "job", "created": "2026-11-26T10:00:00Z", "phase": "Failed",
        "node": "tenx-local", "started": "2026-11-26T10:00:01Z", "finished": "2026-11-26T10:00:06Z",
        "restart_count": 2,
        "containers": [{"name": "job", "state": "terminated", "exit_code": 3, "reason": "Error",
                        "started": "2026-11-26T10:00:05Z", "finished": "2026-11-26T10:00:06Z", "restart_count": 2,
                        "last_state": {"state": "terminated", "exit_code": 3, "reason": "Error",
                                       "finished": "2026-11-26T10:00:04Z"}}],
    }


def test_an_unschedulable_pod_carries_the_schedulers_reason():
    record = instance_record(pod("Pending", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/1 nodes are available: 1 Insufficient memory."}]))
    assert record["scheduling"] == {"reason": "Unschedulable",
                                    "message": "0/1 nodes are available: 1 Insufficient memory."}
    assert record["containers"] == [{"name": "job", "state": "waiting", "reason": "NotStarted", "restart_count": 0}]
    assert record["finished"] is None


def test_an_image_pull_problem_shows_as_waiting_with_reason():
    record = instance_record(pod("Pending", [{"name": "job", "restartCount": 0, "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope\""}}}]))
    assert record["containers"][0] == {"name": "job", "state": "waiting", "reason": "ImagePullBackOff",
                                       "message": "Back-off pulling image \"nope\"", "restart_count": 0}
