"""What a docker or kubectl user types: logs --tail/--since/--timestamps, run --generate-name, version, wait
--timeout 90s, the deprecated -i, and connection errors without a stray quote (against the scripted server)."""
from __future__ import annotations

import json

import pytest
import requests

import tenx
from tenx import errors
from tenx.client import _reason

JSON = "application/json"


@pytest.fixture
def gateway(serve, monkeypatch):
    def start(routes):
        script, client = serve(routes)
        for key, value in (("TENX_URL", client.credentials.url), ("TENX_USER", "u"), ("TENX_TOKEN", "t")):
            monkeypatch.setenv(key, value)
        return script
    return start


def one_instance(**logs):
    return {"/jobs/j/instances": [(200, JSON, '{"instances": [{"name": "j-a"}]}')], **logs}


def test_tail_prints_the_last_lines_of_the_whole_log(gateway, run):
    pages = [(200, JSON, json.dumps([f"l{i}" for i in range(1000)])), (200, JSON, '["l1000", "l1001"]')]
    script = gateway(one_instance(**{"/jobs/j/instances/j-a/logs": pages}))
    assert run("logs", "j", "--tail", "3")[:2] == (0, "l999\nl1000\nl1001\n")
    asked = [query for path, query, _ in script.requests if path.endswith("/logs")]
    assert [q["from"] for q in asked] == [["0"], ["1000"]]
    assert run("logs", "j", "--tail", "0")[:2] == (0, "")


def test_since_and_timestamps_go_to_the_gateway_and_paging_goes_on_from_where_since_started(gateway, run):
    first = [f"2026-11-28T09:00:00.000000000Z l{i}" for i in range(1000)]
    script = gateway(one_instance(**{"/jobs/j/instances/j-a/logs": [
        (200, JSON, json.dumps(first), {"X-Log-Offset": "500"}),
        (200, JSON, '["2026-11-28T09:00:01.000000000Z last"]', {"X-Log-Offset": "1500"})]}))
    code, out, _ = run("logs", "j", "--since", "10m", "-t")
    assert code == 0 and out.splitlines()[-1] == "2026-11-28T09:00:01.000000000Z last"
    asked = [query for path, query, _ in script.requests if path.endswith("/logs")]
    assert asked[0] == {"from": ["0"], "size": ["1000"], "since": ["10m"], "timestamps": ["true"]}
    assert asked[1]["from"] == ["1500"]  # 500 + the 1,000 lines received


def test_since_on_a_gateway_that_ignores_it_is_a_clear_error(gateway, run):
    gateway(one_instance(**{"/jobs/j/instances/j-a/logs": [(200, JSON, '["every line"]')]}))
    code, out, err = run("logs", "j", "--since", "2026-11-28T09:00:00Z")
    assert (code, out) == (errors.USAGE, "") and "does not take --since" in err


@pytest.mark.parametrize("since", ["10", "10d", "yesterday", "2026-11-28"])
def test_since_is_checked_before_asking(run, since):
    code, _, err = run("logs", "j", "--since", since)
    assert code == errors.USAGE and err.startswith(f"tenx: --since {since!r}: expected a duration")


def test_lines_are_escaped_unless_raw(gateway, run):
    gateway(one_instance(**{"/jobs/j/instances/j-a/logs": [(200, JSON, json.dumps(["\x1b]52;c;eA==\x07 x\r"]))]}))
    assert run("logs", "j")[1] == "\\x1b]52;c;eA==\\x07 x\n"
    assert run("logs", "j", "--raw")[1] == "\x1b]52;c;eA==\x07 x\r\n"


def test_follow_with_tail_prints_the_last_lines_then_streams_from_there(gateway, run):
    events = ('id: 2\ndata: {"offset": 2, "instance": "j-a", "line": "new", "time": "2026-11-28T09:00:09.000000000Z"}'
              '\n\nevent: end\ndata: {"status": "succeeded", "instances": []}\n\n')
    script = gateway({"/jobs/j/logs": [(200, JSON, '["[j-a] old0", "[j-a] old1"]'),
                                       (200, "text/event-stream", events)]})
    code, out, _ = run("logs", "j", "-f", "--tail", "1", "-t")
    assert (code, out) == (0, "old1\n2026-11-28T09:00:09.000000000Z new\n")  # one instance: no prefix, as streamed
    stream = script.requests[-1][1]
    assert stream["follow"] == ["true"] and stream["from"] == ["2"] and stream["timestamps"] == ["true"]


def test_generate_name_makes_a_fresh_name_and_tries_another_when_taken(gateway, run):
    script = gateway({"/jobs/hello-*": [(409, JSON, '{"code": 409, "message": "job exists"}'),
                                        (200, JSON, '{"job": {"metadata": {"name": "x"}}}')]})
    code, out, err = run("run", "hello", "--generate-name", "--no-follow", "--image", "busybox", "--", "true")
    created = [path.rsplit("/", 1)[1] for path, _, _ in script.requests]
    assert code == 0 and len(created) == 2 and created[0] != created[1]
    assert out == f"{created[1]}\n" and created[1].startswith("hello-") and len(created[1]) == len("hello-") + 5


def test_dash_i_still_means_image_with_a_warning(run):
    code, out, err = run("run", "x", "-i", "busybox", "--dry-run", "--", "true")
    assert code == 0 and json.loads(out)["containers"][0]["image"] == "busybox"
    assert "-i is deprecated" in err and "--image" in err


def test_wait_timeout_takes_a_duration(run):
    assert run("wait", "j", "--timeout", "never")[0] == errors.USAGE
    assert "expected seconds or a duration" in run("wait", "j", "--timeout", "0s")[2]


def test_version_shows_the_clients_and_the_gateways(gateway, run):
    gateway({"/version": [(200, JSON, '{"version": "9.8.7", "commit": "0123456789abcdef0123"}')]})
    assert run("version")[:2] == (0, f"Client Version: {tenx.__version__}\nServer Version: 9.8.7 (commit "
                                     "0123456789ab)\n")
    code, out, _ = run("version", "-o", "json")
    assert json.loads(out) == {"client": {"version": tenx.__version__},
                               "server": {"version": "9.8.7", "commit": "0123456789abcdef0123"}}


def test_version_without_a_gateway_shows_the_client_and_says_why_not(run):
    code, out, err = run("version")
    assert (code, out) == (errors.AUTH, f"Client Version: {tenx.__version__}\n") and "not logged in" in err
    assert run("version", "--client")[:2] == (0, f"Client Version: {tenx.__version__}\n")


def test_a_refused_connection_names_the_reason_without_a_stray_quote():
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get("http://127.0.0.1:1/", timeout=5)
    assert _reason(caught.value) == "Connection refused"
