"""tenx.status: a Job's status, durations and instance outcomes (pure)."""
import datetime as dt

from tenx import status as st

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.timezone.utc)


def job(conditions=(), active=0, succeeded=0, start="2026-11-28T11:58:00Z", completion=None, completions=None):
    spec = {} if completions is None else {"completions": completions}
    status = {"startTime": start, "active": active, "succeeded": succeeded,
              "conditions": [{"type": t, "status": "True", "reason": r, "message": m,
                              "lastTransitionTime": "2026-11-28T11:59:30Z"} for t, r, m in conditions]}
    if completion:
        status["completionTime"] = completion
    return {"metadata": {"name": "j", "creationTimestamp": "2026-11-28T11:57:00Z"}, "spec": spec, "status": status}


def test_status_words():
    assert st.job_status(job()) == "pending"
    assert st.job_status(job(active=1)) == "running"
    assert st.job_status(job([("Complete", "", "")], succeeded=1)) == "succeeded"
    assert st.job_status(job([("Failed", "BackoffLimitExceeded", "too many")])) == "failed"
    assert st.failure_reason(job([("Failed", "BackoffLimitExceeded", "too many")])) == "BackoffLimitExceeded: too many"
    assert st.held_back(job([("PodsHeldBack", "ExceededQuota", "exceeded quota: pods")])) == "exceeded quota: pods"


def test_a_job_waiting_in_a_queue():
    queued = {**job(start=None), "spec": {"suspend": True}}
    queued["metadata"] = {**queued["metadata"], "labels": {"kueue.x-k8s.io/queue-name": "tenx-gateway"}}
    assert st.job_status(queued) == "queued"
    assert st.job_status({**queued, "metadata": {"name": "j"}}) == "pending"  # suspended, but in no queue
    queued["queue"] = {"name": "tenx-gateway", "state": "queued", "position": 2, "waiting": 5, "reason": "Pending",
                       "message": "insufficient unused quota for pods"}
    assert st.queue_place(queued) == "tenx-gateway, 2 of 5 waiting (Pending: insufficient unused quota for pods)"
    admitted = {**job(), "queue": {"name": "tenx-gateway", "state": "admitted", "admitted_at": "2026-11-28T11:58:00Z"}}
    assert st.queue_place(admitted) == "tenx-gateway, admitted 2026-11-28T11:58:00Z"
    assert st.queue_place(job()) is None


def test_times():
    assert st.age(job(), NOW) == "3m"
    assert st.duration(job(active=1), NOW) == "2m"
    assert st.duration(job([("Complete", "", "")], completion="2026-11-28T11:58:04Z"), NOW) == "4s"
    assert st.duration(job([("Failed", "", "")]), NOW) == "1m30s"
    assert st.duration(job(start=None), NOW) == "-"
    assert st.finished(job([("Failed", "", "")])) == "2026-11-28T11:59:30Z"
    assert st.finished(job([("Complete", "", "")], completion="2026-11-28T11:58:04Z")) == "2026-11-28T11:58:04Z"
    assert st.finished(job(active=1)) is None
    assert [st.human_duration(s) for s in (0, 59, 60, 61, 3600, 3661, 86400, 90000)] == \
        ["0s", "59s", "1m", "1m1s", "1h", "1h1m", "1d", "1d1h"]
    assert st.completions(job(succeeded=2, completions=3)) == "2/3" and st.completions(job()) == "0/1"


def test_outcomes_from_current_and_previous_attempts():
    ok = {"name": "a", "phase": "Succeeded", "containers": [{"state": "terminated", "exit_code": 0,
                                                             "reason": "Completed"}]}
    restarted = {"name": "b", "phase": "Running", "containers": [{
        "state": "waiting", "reason": "CrashLoopBackOff",
        "last_state": {"state": "terminated", "exit_code": 3, "reason": "Error"}}]}
    evicted = {"name": "c", "phase": "Failed", "reason": "Evicted", "containers": [{"state": "unknown"}]}
    assert st.instance_outcome(ok) == st.Outcome("a", 0, "Completed")
    assert st.failed_outcomes([ok, restarted, evicted]) == [st.Outcome("b", 3, "Error"),
                                                            st.Outcome("c", None, "Evicted")]
    assert st.exit_summary(st.Outcome("b", 3, "Error")) == "instance b: exit code 3 (Error)"
    assert st.exit_summary(st.Outcome("c", None, None)) == "instance c: exit code unknown"


def test_the_programs_own_code_over_the_sigterm_of_a_stopped_restart():
    stopped = {"name": "d", "phase": "Failed", "containers": [{
        "state": "terminated", "exit_code": 143, "reason": "Error",
        "last_state": {"state": "terminated", "exit_code": 3, "reason": "Error"}}]}
    assert st.instance_outcome(stopped) == st.Outcome("d", 3, "Error")
    killed_only = {"name": "e", "containers": [{"state": "terminated", "exit_code": 137, "reason": "OOMKilled"}]}
    assert st.instance_outcome(killed_only) == st.Outcome("e", 137, "OOMKilled")
