"""The ``tenx`` command's parsing, exit statuses and one-line errors, through ``tenx.main.main`` (in process), and
login against the scripted server."""
from __future__ import annotations

import json
import stat

import pytest

import tenx
from tenx import errors
from tenx.commands.reads import days_between, parse_date


def test_dry_run_prints_the_job_json(run):
    code, out, err = run("run", "hello", "--image", "busybox", "-e", "A=1", "--completions", "2", "--dry-run",
                         "--", "sh", "-c", "echo hi")
    assert code == 0 and err == ""
    assert json.loads(out) == {"containers": [{"image": "busybox", "command": ["sh", "-c", "echo hi"],
                                               "env": [{"name": "A", "value": "1"}]}], "completions": 2}


@pytest.mark.parametrize("argv, message", [
    (("run", "x"), "tenx: give -f job.json, or --image and a command after --"),
    (("run", "x", "--image", "b", "--rm", "--no-follow", "--", "true"), "tenx: --rm needs --follow"),
    (("logs", "x", "--all-days", "--date", "today"), "tenx: --all-days goes with neither"),
    (("logs", "x", "--date", "28/11/2026"), "tenx: --date '28/11/2026': expected YYYY.MM.DD"),
    (("run", "x", "-f", "/nonexistent.json"), "tenx: /nonexistent.json: No such file or directory"),
])
def test_usage_errors_exit_2_with_one_line(run, argv, message):
    code, out, err = run(*argv)
    assert code == errors.USAGE and out == ""
    assert err.startswith(message) and len(err.strip().splitlines()) == 1


def test_click_usage_errors_exit_2(run):
    assert run("ls", "-o", "xml")[0] == 2
    assert run("nosuchcommand")[0] == 2
    assert run("--version")[:2] == (0, f"tenx, version {tenx.__version__}\n")


def test_not_logged_in_is_the_auth_status(run):
    code, out, err = run("ls")
    assert code == errors.AUTH
    assert err == "tenx: not logged in (profile 'default'): run `tenx login` or set TENX_URL, TENX_USER, TENX_TOKEN\n"


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F"), ("zsh", "#compdef tenx"),
                                           ("fish", "complete --no-files --command tenx")])
def test_completion_scripts(run, shell, marker):
    code, out, _ = run("completion", shell)
    assert code == 0 and marker in out and "_TENX_COMPLETE" in out


def test_login_checks_and_saves_then_commands_use_the_profile(run, serve, tmp_path, monkeypatch):
    script, client = serve({
        "/v1/regions": [(200, "application/json", '{"regions": [{"name": "us"}]}')],
        "/jobs/-": [(404, "application/json", '{"code": 404, "message": "job \'-\' not found"}')],
        "/jobs": [(200, "application/json", '{"jobs": []}')],
    })
    url = client.credentials.url
    code, out, err = run("login", "--url", url, "--user", "alice", "--profile", "lab", stdin="s3cret\n")
    assert code == 0 and "s3cret" not in out + err
    path = tmp_path / "tenx" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert 'current_profile = "lab"' in path.read_text()
    assert run("ls", "-o", "json")[:2] == (0, '{\n  "jobs": []\n}\n')
    assert script.requests[-1][2]["Authorization"] == "token s3cret"
    assert run("login", "--url", url, "--user", "alice", "--region", "eu", stdin="x\n")[2] == \
        f"tenx: region 'eu' is not served by {url}; it serves: us\n"
    code, out, _ = run("profile", "list")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["*", "lab", url]


def test_wrong_token_is_one_line_and_status_4(run, serve):
    _, client = serve({"/v1/regions": [(200, "application/json", '{"regions": [{"name": "us"}]}')],
                       "/jobs/-": [(401, "application/json",
                                    '{"code": 401, "status": "Unauthorized", "message": "invalid username or token"}')]})
    code, out, err = run("login", "--url", client.credentials.url, "--user", "a", stdin="bad\n")
    assert (code, out) == (4, "")
    assert err == "tenx: invalid username or token (check the user and token: tenx login)\n"


def test_gateway_errors_map_to_statuses():
    assert errors.from_response(404, {"message": "job 'x' not found"}).exit_code == errors.NOT_FOUND
    assert errors.from_response(503, {"message": "cluster unreachable"}, retry_after="5").message == \
        "cluster unreachable (retry after 5 s)"
    assert errors.from_response(429, {"message": "too many"}).exit_code == errors.UNAVAILABLE
    refused = errors.from_response(400, {"message": "invalid request: see errors",
                                         "errors": {"containers": {"0": {"image": ["Missing data."]}},
                                                    "parallelism": ["must be at most 10"]}})
    assert refused.exit_code == errors.REFUSED
    assert refused.message == "invalid request: containers.0.image: Missing data.; parallelism: must be at most 10"
    assert errors.from_response(502, None, "<html>Bad Gateway</html>").message == \
        "the gateway answered 502: <html>Bad Gateway</html>"


def test_dates():
    import datetime as dt
    assert parse_date("2026-11-28") == parse_date("2026.11.28") == "2026.11.28"
    assert parse_date(None) is None
    assert days_between("2026-11-27T23:00:00Z", "2026-11-28T01:00:00Z", dt.date(2026, 11, 30)) == \
        ["2026.11.26", "2026.11.27", "2026.11.28", "2026.11.29"]
    assert days_between(None, None, dt.date(2026, 11, 30)) == ["2026.11.29", "2026.11.30", "2026.12.01"]


def test_ls_watch_listings_follow_the_job_watch_stream_or_poll(serve, monkeypatch):
    from tenx.commands import reads
    events = 'event: job\ndata: {"type": "ADDED", "job": {"name": "a"}}\n\n'
    _, client = serve({"/jobs": [(200, "text/event-stream", events), (200, "application/json", '{"jobs": [1]}')]})
    listings = reads._listings(client, {"jobs": []})
    assert next(listings) == {"jobs": [1]}  # one list per event of the stream
    monkeypatch.setattr(reads, "WATCH_POLL_SECONDS", 0)
    _, plain = serve({"/jobs": [(200, "application/json", '{"jobs": [2]}')]})
    assert next(reads._listings(plain, {"jobs": []})) == {"jobs": [2]}  # no stream: a list every few seconds


def test_job_names_complete_from_the_gateway(serve, run, monkeypatch):
    _, client = serve({"/jobs": [(200, "application/json",
                                  '{"jobs": [{"metadata": {"name": "beta"}}, {"metadata": {"name": "alpha"}}]}')]})
    for key, value in (("TENX_URL", client.credentials.url), ("TENX_USER", "u"), ("TENX_TOKEN", "t"),
                       ("COMP_WORDS", "tenx get "), ("COMP_CWORD", "2"), ("_TENX_COMPLETE", "bash_complete")):
        monkeypatch.setenv(key, value)
    code, out, _ = run()
    assert (code, out) == (0, "plain,alpha\nplain,beta\n")


def test_logs_of_several_instances_without_the_job_level_call_go_instance_by_instance(serve, run, monkeypatch):
    _, client = serve({
        "/jobs/j/instances": [(404, "application/json", '{"code": 404, "message": "unknown path"}')],
        "/jobs/j": [(200, "application/json", '{"instance_names": ["j-a", "j-b"], "metadata": {"name": "j"}}')],
        "/jobs/j/logs": [(404, "application/json", '{"code": 404, "message": "unknown path"}')],
        "/jobs/j/instances/j-a/logs": [(200, "application/json", '["a1", "a2"]')],
        "/jobs/j/instances/j-b/logs": [(200, "application/json", '["b1"]')],
    })
    for key, value in (("TENX_URL", client.credentials.url), ("TENX_USER", "u"), ("TENX_TOKEN", "t")):
        monkeypatch.setenv(key, value)
    assert run("logs", "j")[:2] == (0, "[j-a] a1\n[j-a] a2\n[j-b] b1\n")


def test_how_a_followed_job_ended_and_the_exit_status(capsys):
    from tenx import status as st
    from tenx.commands.jobs import report_end
    from tenx.follow import JobEnd
    failed = JobEnd("failed", [st.Outcome("j-a", None, "Evicted"), st.Outcome("j-b", 3, "Error")],
                    reason="BackoffLimitExceeded: limit")
    assert report_end("j", failed, exit_code=False) == 1
    assert capsys.readouterr().err == ("job j failed: BackoffLimitExceeded: limit\n"
                                       "  instance j-a: exit code unknown (Evicted)\n"
                                       "  instance j-b: exit code 3 (Error)\n")
    assert report_end("j", failed, exit_code=True) == 3
    assert report_end("j", JobEnd("failed", [st.Outcome("j-a", None, "DeadlineExceeded")]), exit_code=True) == 1
    assert report_end("j", JobEnd("deleted"), exit_code=True) == 1
    assert report_end("j", JobEnd("succeeded"), exit_code=True) == 0
