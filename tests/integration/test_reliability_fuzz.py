"""Fuzzing from the gateway's own /openapi.json with schemathesis: every check, every phase (examples, coverage,
fuzzing, and stateful along the document's links), as a fresh user with valid credentials.

Jobs the fuzzer creates must never run: its user's namespace is made beforehand with a ResourceQuota of zero pods
(the local cluster runs a container's command on the host). The gateway is one of the test's own, with failed-login
throttling out of the way (the auth checks send wrong tokens on purpose; throttling has its own test).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.reliability import (ADMIN_KUBECONFIG, RESULTS, ROOT, VENV_BIN, GatewayServer, free_port,
                                       make_namespace, record)

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "100"))  # per operation and phase; ~40 s on 2 cores
UNREACHABLE_MAX_EXAMPLES = int(os.environ.get("FUZZ_UNREACHABLE_MAX_EXAMPLES", "25"))
SEED = os.environ.get("FUZZ_SEED", "20261126")  # fixed, so a CI run is repeatable; set another to explore


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory):
    # streams end after a second (event "shutdown"): a watch of a job whose pods the quota holds back never ends
    # by itself, schemathesis waits for a response's end to check its events, and it may send a hundred of them
    server = GatewayServer(tmp_path_factory.mktemp("fuzz-gateway"), GATEWAY_AUTH_FAILURE_LIMIT="1000000",
                           GATEWAY_STREAM_MAX_SECONDS="1", GATEWAY_STREAM_IDLE_SECONDS="1").start()
    yield server
    server.close()


def run_schemathesis(gateway: GatewayServer, user, workdir: Path, max_examples: int) -> dict:
    """``st run`` against the gateway's own document, every check, every phase; returns the figures."""
    report_dir = workdir / "report"
    statuses_file = workdir / "statuses.json"
    command = [
        str(VENV_BIN / "st"), "--no-color", "--config-file", str(ROOT / "tests/integration/schemathesis.toml"),
        "run", f"{gateway.url}/openapi.json", "--url", gateway.url,
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--header", f"username: {user.username}", "--header", f"Authorization: {user.session.headers['Authorization']}",
        "--max-examples", str(max_examples), "--seed", SEED, "--workers", "2", "--request-timeout", "30",
        "--report", "json", "--report-dir", str(report_dir), "--output-truncate", "false",
    ]
    env = dict(os.environ, SCHEMATHESIS_HOOKS=str(ROOT / "tests/support/fuzz_hooks.py"),
               TENX_FUZZ_STATUSES=str(statuses_file))
    started = time.monotonic()
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    took = time.monotonic() - started
    output = run.stdout + run.stderr
    report = json.loads(next(report_dir.glob("json-*.json")).read_text())
    statuses = json.loads(statuses_file.read_text()) if statuses_file.exists() else {}
    links = re.search(r"API Links:\s+(.*)", output)
    scenarios = re.search(r"Scenarios:\s+(\d+)", output)
    return {
        "schemathesis": report["schemathesis_version"], "seed": SEED, "max_examples": max_examples,
        "operations_tested": f'{report["operations"]["tested"]}/{report["operations"]["total"]}',
        "cases_generated": report["test_cases"]["generated"],
        "cases_with_failures": report["test_cases"]["with_failures"], "errored": report["test_cases"]["errored"],
        "stateful_scenarios": int(scenarios.group(1)) if scenarios else None,
        "api_links": links.group(1).strip() if links else None,
        "phases": {name: phase["status"] for name, phase in report["phases"].items()},
        "statuses": statuses, "server_errors": sum(n for code, n in statuses.items() if code.startswith("5")),
        "seconds": round(took, 1), "exit_code": run.returncode, "output": output,
    }


def assert_clean(figures: dict, gateway: GatewayServer) -> None:
    output = figures.pop("output")
    assert figures["exit_code"] == 0 and figures["cases_with_failures"] == 0, output[-8000:][:4000]
    tested, total = figures["operations_tested"].split("/")
    assert tested == total
    assert all(status == "success" for status in figures["phases"].values()), figures["phases"]
    assert not [code for code in figures["statuses"] if code.startswith("5") and code != "503"], figures["statuses"]
    gunicorn_log = gateway.log_text()
    assert "WORKER TIMEOUT" not in gunicorn_log
    assert '"unhandled error"' not in gunicorn_log, gunicorn_log[-4000:]


def test_fuzzing_finds_no_server_error_and_no_answer_off_the_document(fuzz_gateway, tmp_path):
    user = fuzz_gateway.add_user("fuzz")
    make_namespace(fuzz_gateway, user, max_pods=0)
    figures = run_schemathesis(fuzz_gateway, user, tmp_path, MAX_EXAMPLES)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fuzz-output.txt").write_text(figures["output"])  # the whole report, with any failure's curl
    record("fuzz", {"what": "schemathesis, all checks, phases examples/coverage/fuzzing/stateful, valid "
                            "credentials of a new user; cluster reachable",
                    **{k: v for k, v in figures.items() if k != "output"}})
    assert_clean(figures, fuzz_gateway)
    assert figures["server_errors"] == 0  # the cluster was there all along: not even a 503


def test_fuzzing_with_the_cluster_unreachable_finds_only_503_with_retry_after(fuzz_gateway, tmp_path):
    """The same fuzzing against a gateway whose apiserver is a closed port: every call that needs the cluster is
    503 with Retry-After (fuzz_hooks.py checks each), and every answer is still one the document describes."""
    user = fuzz_gateway.add_user("fuzz")  # created through the real cluster; the gateway below never sees it
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(re.sub(r"server: https://127\.0\.0\.1:\d+", f"server: https://127.0.0.1:{free_port()}",
                                 ADMIN_KUBECONFIG.read_text()))
    gateway = GatewayServer(tmp_path / "gateway", kubeconfig=kubeconfig, GATEWAY_AUTH_FAILURE_LIMIT="1000000").start()
    try:
        figures = run_schemathesis(gateway, user, tmp_path, UNREACHABLE_MAX_EXAMPLES)
    finally:
        gateway.close()
    record("fuzz_unreachable", {"what": "the same, the gateway's apiserver a closed port",
                                **{k: v for k, v in figures.items() if k != "output"}})
    assert_clean(figures, gateway)
    assert figures["statuses"].get("503", 0) > 0
