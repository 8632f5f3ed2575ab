"""The real ``.venv/bin/tenx`` executable, as a job user runs it, against the session gateway on the local cluster.

Each test logs a fresh user in through ``tenx login`` into a config directory of its own (``XDG_CONFIG_HOME``), so
nothing here reads or writes the developer's own ``~/.config/tenx``. Local jobs run as host processes (images are
ignored), so ``busybox`` with ``sh -c ...`` is a real job.
"""
from __future__ import annotations

import copy
import json
import signal
import stat
import subprocess
import threading

import pytest
import requests

from tests.support.harness import wait_until
from tests.support.seed import SEED_JOB
from tests.support.tenx_cli import TENX, Tenx, base_env, logged_in, token_of

@pytest.fixture(scope="module")
def tenx(gateway, make_user, tmp_path_factory) -> Tenx:
    """One user for the module's tests (adding one takes seconds); each test uses job names of its own."""
    return logged_in(gateway, make_user, tmp_path_factory.mktemp("tenx") / "config")


def streams_served(tenx: Tenx, job: str) -> bool:
    """Whether this gateway answers a follow with an event stream (issue 14); the CLI must use it then."""
    with tenx.api.get(f"/jobs/{job}/logs", params={"follow": "true"}, stream=True) as response:
        return response.headers.get("Content-Type", "").startswith("text/event-stream")


def test_login_stores_a_0600_profile_and_checks_the_token(gateway, make_user, tmp_path):
    client = make_user("cli")
    env = base_env(tmp_path)
    done = subprocess.run([TENX, "login", "--url", gateway.url, "--user", client.username, "--profile", "work"],
                          env=env, input=token_of(client) + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "tenx" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert 'current_profile = "work"' in text and f'user = "{client.username}"' in text
    assert token_of(client) not in done.stdout + done.stderr  # never echoed
    listed = subprocess.run([TENX, "ls"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.split() == ["NAME", "STATUS", "COMPLETIONS", "AGE", "DURATION"]

    wrong = subprocess.run([TENX, "login", "--url", gateway.url, "--user", client.username, "--profile", "bad"],
                           env=env, input="not-the-token\n", capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 4
    assert len(wrong.stderr.strip().splitlines()) == 1 and "token" in wrong.stderr
    assert "bad" not in path.read_text()  # nothing saved for a refused login

    by_env = subprocess.run([TENX, "ls"], env={**env, "TENX_TOKEN": "wrong"}, capture_output=True, text=True,
                            timeout=60)
    assert by_env.returncode == 4 and by_env.stderr.startswith("tenx: ") and by_env.stdout == ""
    assert len(by_env.stderr.strip().splitlines()) == 1


def test_run_follows_the_seed_job_to_its_end(tenx):
    spec = tmp = tenx.config_dir / "job.json"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps(copy.deepcopy(SEED_JOB)))
    done = tenx("run", "seed", "-f", str(spec), "--follow", env={"TENX_DEBUG": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "test-cmd\n"
    assert "job seed succeeded" in done.stderr
    if streams_served(tenx, "seed"):
        assert "following the event stream" in done.stderr
    else:
        assert "polling" in done.stderr
    polled = tenx("run", "seed-polled", "-f", str(spec), "--follow", "--rm", env={"TENX_NO_STREAMS": "1"})
    assert (polled.returncode, polled.stdout) == (0, "test-cmd\n"), polled.stderr
    assert "job seed-polled deleted" in polled.stderr and tenx("get", "seed-polled").returncode == 3


def test_a_failed_job_exits_1_or_its_own_code(tenx):
    failing = ["--image", "busybox", "--backoff-limit", "0", "--follow", "--", "sh", "-c", "echo before; exit 3"]
    done = tenx("run", "fails", *failing)
    assert done.returncode == 1, done.stderr
    assert "before" in done.stdout
    assert "job fails failed" in done.stderr and "exit code 3" in done.stderr
    own = tenx("run", "fails-code", *failing[:-4], "--exit-code", *failing[-4:])
    assert own.returncode == 3, own.stderr
    waited = tenx("wait", "fails")
    assert waited.returncode == 1 and "exit code 3" in waited.stderr


def test_reads_ls_get_logs_instances_rm(tenx):
    done = tenx("run", "reads", "--image", "busybox", "--env", "WHO=tenx", "--no-follow", "--",
                "sh", "-c", "echo hello $WHO; echo second")
    assert (done.returncode, done.stdout) == (0, "reads\n"), done.stderr
    assert tenx("wait", "reads", "--timeout", "90").returncode == 0

    listed = json.loads(tenx("ls", "-o", "json").stdout)
    assert "reads" in [job["metadata"]["name"] for job in listed["jobs"]]
    table = tenx("ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "COMPLETIONS", "AGE", "DURATION"]
    assert ["reads", "succeeded", "1/1"] in [row.split()[:3] for row in table[1:]]
    assert "reads" in tenx("ls", "-o", "name").stdout.splitlines()

    job = json.loads(tenx("get", "reads", "-o", "json").stdout)
    assert job["metadata"]["name"] == "reads" and len(job["instance_names"]) == 1
    summary = tenx("get", "reads").stdout
    assert "Status:" in summary and "succeeded" in summary and job["instance_names"][0] in summary

    records = json.loads(tenx("instances", "reads", "-o", "json").stdout)["instances"]
    assert [r["name"] for r in records] == job["instance_names"]
    assert records[0]["containers"][0]["exit_code"] == 0
    assert tenx("instances", "reads", "-o", "name").stdout.split() == job["instance_names"]

    assert tenx("logs", "reads").stdout == "hello tenx\nsecond\n"
    instance = job["instance_names"][0]
    assert tenx("logs", "reads", instance, "--from", "1").stdout == "second\n"
    assert tenx("logs", "reads", instance, "--size", "1").stdout == "hello tenx\n"
    assert tenx("logs", "reads", instance, "--date", "today").stdout == "hello tenx\nsecond\n"
    assert tenx("logs", "reads", instance, "--all-days").stdout == "hello tenx\nsecond\n"
    assert tenx("logs", "reads", "-f").stdout == "hello tenx\nsecond\n"  # an ended job: its lines, then exit

    removed = tenx("rm", "reads", "nothing-here")
    assert removed.returncode == 3 and removed.stdout == "job reads deleted\n"
    assert "job 'nothing-here' not found" in removed.stderr
    gone = tenx("get", "reads")
    assert gone.returncode == 3 and gone.stderr.strip() == "tenx: job 'reads' not found"


def test_ctrl_c_stops_following_and_leaves_the_job_running(tenx):
    process = tenx.popen("run", "sigint", "--image", "busybox", "--follow", "--", "sh", "-c",
                         "echo started; sleep 120")
    try:
        first = process.stdout.readline()
        assert first == "started\n"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "keeps running" in err and "tenx logs -f sigint" in err
    job = tenx.api.get("/jobs/sigint").json()
    assert job["status"].get("active") == 1 and not job["status"].get("succeeded")
    assert tenx("rm", "sigint").returncode == 0


def test_wait_timeout_and_an_unreachable_gateway(tenx, gateway):
    assert tenx("run", "slow", "--image", "busybox", "--no-follow", "--", "sleep", "60").returncode == 0
    waited = tenx("wait", "slow", "--timeout", "1")
    assert waited.returncode == 7 and "did not end within 1 s" in waited.stderr
    assert tenx("rm", "slow").returncode == 0
    assert tenx("wait", "nothing-here").returncode == 3

    closed = requests.get(gateway.url + "/healthz", timeout=5)  # the gateway is up; a closed port is not
    assert closed.status_code == 200
    down = tenx("ls", env={"TENX_URL": "http://127.0.0.1:9"})
    assert down.returncode == 5 and down.stderr.startswith("tenx: cannot reach the gateway at http://127.0.0.1:9")
    assert down.stderr.endswith(": Connection refused\n")  # the reason alone, no stray quote of urllib3's repr


def test_usage_errors_exit_2_and_the_gateway_refusals_6(tenx):
    assert tenx("run", "x").returncode == 2
    assert tenx("ls", "-o", "xml").returncode == 2
    refused = tenx("run", "bad", "--image", "busybox", "--memory", "lots", "--no-follow", "--", "true")
    assert refused.returncode == 6
    assert refused.stderr.strip() == ("tenx: invalid request: containers.0.resources.limits.memory: must be a "
                                      "Kubernetes quantity such as 512Mi")
    assert tenx("completion", "bash").stdout.count("_TENX_COMPLETE") >= 1


def test_ls_watch_prints_a_line_per_change(tenx):
    watcher = tenx.popen("ls", "--watch", "-o", "name")
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(watcher.stdout), daemon=True).start()
    try:
        assert tenx("run", "watched", "--image", "busybox", "--no-follow", "--", "true").returncode == 0
        wait_until(lambda: "watched\n" in lines, 60, what="the new job's line")
        watcher.send_signal(signal.SIGINT)
        watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 130
    assert tenx("rm", "watched").returncode == 0


def test_version_shows_the_client_and_the_gateway(tenx):
    import gateway
    import tenx as client
    done = tenx("version")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Client Version: {client.__version__}"
    assert lines[1].startswith(f"Server Version: {gateway.__version__} (commit ")  # the session gateway's checkout


def test_generate_name_and_the_tail_since_and_timestamps_of_a_log(tenx):
    made = [tenx("run", "gen", "--generate-name", "--no-follow", "--image", "busybox", "--", "sh", "-c",
                 "echo one; sleep 1.2; echo two; sleep 1.2; echo three") for _ in range(2)]
    names = [done.stdout.strip() for done in made]
    assert all(done.returncode == 0 for done in made), [done.stderr for done in made]
    assert names[0] != names[1] and all(n.startswith("gen-") and len(n) == 9 for n in names)
    assert tenx("wait", names[0], "--timeout", "2m").returncode == 0
    name = names[0]
    assert tenx("logs", name, "--tail", "2").stdout == "two\nthree\n"
    stamped = tenx("logs", name, "--timestamps").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two", "three"]
    second = stamped[1].split(" ", 1)[0]
    assert tenx("logs", name, "--since", second).stdout == "two\nthree\n"
    assert tenx("logs", name, "--since", "1h", "--tail", "1", "-t").stdout == stamped[2] + "\n"
    assert tenx("logs", name, "-f", "--tail", "1").stdout == "three\n"
    assert tenx("logs", name, "-f", "--since", second, "-t").stdout.splitlines() == stamped[1:]
    for job in names:
        assert tenx("rm", job).returncode == 0


# Every C0 control (LF ends the line it is on), DEL, every C1 control (as UTF-8), and the sequences a terminal obeys:
# OSC 52 (clipboard), OSC 8 (a link), a window title, clear screen, hidden text, DCS, a CR overwrite, a CRLF end.
HOSTILE_LINES = [
    "c0:" + "".join(chr(c) for c in range(1, 0x20) if c != 0x0A) + "\x7f:end",
    "c1:" + "".join(chr(c) for c in range(0x80, 0xA0)) + ":end",
    "osc:\x1b]52;c;aGFja2Vk\x07\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\\x1b]0;title\x07:end",
    "csi:\x1b[2J\x1b[H\x1b[8mhidden\x1b[0m\x9b31m:end",
    "dcs:\x1bP+q544e\x1b\\:end",
    "secret\roverwritten",
    "crlf\r",
]
NUL_LINE = "nul:\x00:end"  # the archive keeps a NUL as U+FFFD (PostgreSQL text cannot hold it): either may come


def printf_script(lines: list[str]) -> str:
    """A sh command printing ``lines`` byte for byte (every byte as an octal escape: no quoting can go wrong)."""
    data = "".join(line + "\n" for line in lines).encode()
    return "printf '" + "".join(f"\\{byte:03o}" for byte in data) + "'"


def is_inert(output: bytes) -> bool:
    """Nothing a terminal obeys: no C0 control but tab and LF, no DEL, no C1 control (as UTF-8 or a lone byte)."""
    text = output.decode("utf-8", errors="replace")
    return not any((ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) < 0xA0 for c in text)


def test_logs_show_a_jobs_control_sequences_escaped_on_a_terminal_and_in_a_pipe_and_raw_byte_for_byte(tenx):
    from tenx.escape import escape

    from tests.support.terminal import Terminal
    lines = HOSTILE_LINES + [NUL_LINE]
    done = tenx("run", "hostile", "--no-follow", "--image", "busybox", "--", "sh", "-c", printf_script(lines))
    assert done.returncode == 0, done.stderr
    assert tenx("wait", "hostile", "--timeout", "2m").returncode == 0

    def run(*args: str) -> bytes:
        finished = subprocess.run([TENX, *args], env=tenx.env, capture_output=True, timeout=120,
                                  stdin=subprocess.DEVNULL)
        assert finished.returncode == 0, finished.stderr
        return finished.stdout

    piped = run("logs", "hostile")
    assert is_inert(piped), piped
    expected = [escape(line) for line in HOSTILE_LINES]
    shown = piped.decode().splitlines()
    assert shown[:-1] == expected and shown[-1] in ("nul:\\x00:end", "nul:\ufffd:end")
    assert "\\x1b]52;c;aGFja2Vk\\x07" in shown[2] and shown[5] == "secret\\roverwritten" and shown[6] == "crlf"

    raw = run("logs", "hostile", "--raw")
    wanted = "".join(line + "\n" for line in HOSTILE_LINES).encode()
    assert raw[:len(wanted)] == wanted
    assert raw[len(wanted):] in (NUL_LINE.encode() + b"\n", "nul:\ufffd:end\n".encode())

    # followed (an ended job: replayed, then the end); the NUL line may come from the other source (see NUL_LINE)
    followed_lines = run("logs", "hostile", "-f").decode().splitlines()
    assert followed_lines[:-1] == expected and followed_lines[-1] in ("nul:\\x00:end", "nul:\ufffd:end")
    assert run("logs", "hostile", "-f", "--raw")[:len(wanted)] == wanted

    screen = Terminal([TENX, "logs", "hostile"], tenx.env)
    assert screen.finish() == 0
    on_screen = screen.raw.replace(b"\r\n", b"\n")  # the terminal's own line ends (ONLCR)
    assert is_inert(on_screen) and on_screen.decode().splitlines()[:-1] == expected, on_screen

    raw_screen = Terminal([TENX, "logs", "hostile", "--raw"], tenx.env)
    assert raw_screen.finish() == 0
    assert b"\x1b]52;c;aGFja2Vk\x07" in raw_screen.raw and b"\x1b[2J" in raw_screen.raw

    followed = tenx("run", "hostile-run", "--follow", "--rm", "--image", "busybox", "--", "sh", "-c",
                    printf_script(HOSTILE_LINES))
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines() == expected and is_inert(followed.stdout.encode())
    assert tenx("rm", "hostile").returncode == 0
