"""The web console (/console/) in Debian's headless Chromium, driven by Playwright, against the session gateway on the
local cluster: sign in, create the seed job through the form, watch it complete, read its instance's log, follow a
running job's log, delete a job, a wrong token; no console errors and no CSP violations on any page. Screenshots of
each page at desktop and phone width go to .local/screenshots/console/ (git-ignored)."""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
import requests

from tests.support.console_tab import SHOTS, TIMEOUT_MS, Tab, token_of
from tests.support.harness import wait_until
from tests.support.seed import SEED_JOB


@pytest.fixture
def tab(browser, gateway, request):
    opened = Tab(browser, gateway)
    yield opened
    # what the page showed last, and what it complained of: the first things to look at when a test fails
    SHOTS.mkdir(parents=True, exist_ok=True)
    opened.page.screenshot(path=str(SHOTS / f"last-{request.node.name}.png"))
    print("page problems:", opened.problems, "csp:", opened.csp_violations())
    print("requests:", *opened.requests[-40:], sep="\n  ")
    opened.close()


def test_the_page_is_served_with_a_strict_policy(gateway):
    page = requests.get(f"{gateway.url}/console/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline
    assert page.headers["Cache-Control"] == "no-cache"
    script = page.text.split('<script type="module" src="', 1)[1].split('"', 1)[0]
    asset = requests.get(gateway.url + script, timeout=10)
    assert asset.status_code == 200 and "immutable" in asset.headers["Cache-Control"]
    assert asset.headers["Content-Type"].startswith("text/javascript")


def test_a_wrong_token_shows_an_error_and_stores_nothing(tab, make_user):
    user = make_user("cw")
    tab.open("#/signin")  # by keyboard alone: the user field has the focus, Tab goes on, Enter submits
    tab.page.keyboard.type(user.username)
    tab.page.keyboard.press("Tab")
    tab.page.keyboard.type("not-the-token")
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_selector("#signin-error:not([hidden])")
    assert "Wrong user name or token" in tab.page.inner_text("#signin-error")
    assert tab.page.evaluate("sessionStorage.length") == 0
    tab.shoot("signin-error")
    tab.expect_failed_load(401)
    tab.assert_clean()


def test_create_watch_read_the_log_and_delete(tab, make_user, gateway):
    user = make_user("cs")
    page = tab.page
    tab.open("#/signin")
    tab.shoot("signin")
    tab.sign_in(user.username, token_of(user))
    page.wait_for_selector("#jobs-table")
    assert page.evaluate("sessionStorage.getItem('tenx.user')") == user.username
    assert user.username in page.inner_text("#nav")

    # the seed job through the form: a wrong memory limit first, shown at its field
    name = f"seed-{secrets.token_hex(3)}"
    container = SEED_JOB["containers"][0]
    page.click("#nav a[href='#/create']")
    page.wait_for_selector("#create-form")
    page.fill("#f-name", name)
    page.fill("#f-image", container["image"])
    page.fill("#f-command", "\n".join(container["command"]))
    page.fill("#f-env", "\n".join(f"{e['name']}={e['value']}" for e in container["env"]))
    page.fill("#f-memory", "lots")
    page.fill("#f-volumes", "\n".join(f"{m['name']}:{m['mountPath']}" for m in container["volumeMounts"]))
    page.fill("#f-ports", ", ".join(f"{p['port']}/{p['protocol']}" for p in container["ports"]))
    page.select_option("#f-pull_always", "true")
    page.check("#f-sync_timezone")
    page.click("#create-submit")
    page.wait_for_selector("#e-memory:not([hidden])")
    assert "quantity" in page.inner_text("#e-memory")
    assert page.get_attribute("#f-memory", "aria-invalid") == "true"
    tab.shoot("create-errors")
    tab.expect_failed_load(400)
    page.fill("#f-memory", container["resources"]["limits"]["memory"])
    page.click("#tab-raw")  # the raw editor holds what the form would send: the seed job itself
    assert json.loads(page.input_value("#f-raw")) == SEED_JOB
    page.click("#tab-form")
    page.click("#create-submit")

    # the job page, live until the job completes
    page.wait_for_selector("#job-status .status-succeeded", timeout=TIMEOUT_MS)
    page.wait_for_selector("#job-instances .instance-link")
    cells = page.inner_text("#job-instances tr.instance")
    assert "Succeeded" in cells and "\t0\t" in f"\t{cells}\t".replace("  ", "\t")
    assert json.loads(page.inner_text("#job-spec-json")) == SEED_JOB
    page.click("#tab-yaml")
    assert f"name: {name}" in page.inner_text("#job-spec-yaml")
    tab.shoot("job")

    # its instance's log
    instance = page.inner_text("#job-instances .instance-link")
    page.click("#job-instances .instance-link")
    page.wait_for_selector("#log-lines .lt >> text=test-cmd")
    assert page.input_value("#logs-date") == time.strftime("%Y-%m-%d", time.gmtime())  # the gateway's UTC day
    assert instance in page.inner_text("h1")
    tab.shoot("logs")
    with page.expect_download() as download:
        page.click("#logs-download")
    saved = Path(download.value.path())
    assert saved.read_text() == "test-cmd\n" and download.value.suggested_filename.endswith(".log")

    # the list shows it, with its status
    tab.go("#/jobs")
    row = page.wait_for_selector(f"#jobs-table .jrow:has(a:text-is('{name}'))")
    assert "succeeded" in row.inner_text()
    tab.shoot("jobs")

    # delete, after a confirmation
    tab.go(f"#/jobs/{name}")
    page.click("#job-delete")
    page.wait_for_selector("dialog[open]")
    tab.shoot("delete-confirm")
    page.click("dialog[open] .button.danger")
    page.wait_for_selector("#jobs-table")
    assert wait_until(lambda: user.get(f"/jobs/{name}").status_code == 404, 30)
    tab.assert_clean()

    # sign out forgets the token
    page.click("#sign-out")
    page.wait_for_selector("#signin-user")
    assert page.evaluate("sessionStorage.length") == 0


def test_follow_a_running_jobs_log(tab, make_user):
    user = make_user("cf")
    name = f"follow-{secrets.token_hex(3)}"
    script = "for i in $(seq 1 12); do echo line-$i; sleep 1; done"
    job = {"containers": [{"image": "busybox", "command": ["sh", "-c", script]}]}
    assert user.post(f"/jobs/{name}", json=job).status_code == 200
    instance = wait_until(lambda: user.get(f"/jobs/{name}").json().get("instance_names"), 60, 0.3,
                          what="the job's pod")[0]
    tab.sign_in(user.username, token_of(user))
    tab.page.wait_for_selector("#jobs-table")
    tab.go(f"#/jobs/{name}/logs/{instance}")
    page = tab.page
    page.wait_for_selector("#logs-follow")
    page.click("#logs-follow")
    assert page.get_attribute("#logs-follow", "aria-pressed") == "true"
    page.wait_for_selector("#log-lines .lt >> text=line-3")
    running = user.get(f"/jobs/{name}").json()
    assert not any(c.get("type") == "Complete" for c in running["status"].get("conditions") or []), \
        "the job finished before its log was followed"
    page.wait_for_selector("#log-lines .lt >> text=line-12", timeout=TIMEOUT_MS)
    texts = page.eval_on_selector_all("#log-lines .lt", "els => els.map(e => e.textContent)")
    assert texts == [f"line-{i}" for i in range(1, 13)]  # each line once, in order
    assert any(s.endswith(f"/instances/{instance}/logs") for s in tab.streams), tab.streams  # not polled
    tab.shoot("logs-follow")
    # the filter keeps matching lines only
    page.fill("#logs-filter", "line-1")
    shown = lambda: page.eval_on_selector_all("#log-lines .lt", "els => els.map(e => e.textContent)")  # noqa: E731
    assert wait_until(lambda: shown() == ["line-1", "line-10", "line-11", "line-12"], 10), shown()
    assert user.delete(f"/jobs/{name}").status_code == 200
    tab.assert_clean()


def test_a_hundred_thousand_lines_scroll_with_few_in_the_page(tab, make_user):
    user = make_user("ch")
    name = f"many-{secrets.token_hex(3)}"
    assert user.post(f"/jobs/{name}", json={"containers": [{"image": "busybox", "command": ["seq", "1", "100000"]}]}
                     ).status_code == 200
    done = user.wait_for(name, lambda j: any(c.get("type") == "Complete" for c in j["status"].get("conditions") or []))
    tab.sign_in(user.username, token_of(user))
    tab.page.wait_for_selector("#jobs-table")
    tab.go(f"#/jobs/{name}/logs/{done['instance_names'][0]}")
    page = tab.page
    page.wait_for_selector("#logs-info:text-is('1,000 lines+')")  # the first page
    started = time.monotonic()
    page.click("#logs-end")  # reads the rest in pages of GATEWAY_LOG_MAX_SIZE and scrolls to the last line
    page.wait_for_selector("#log-lines .lt:text-is('100000')", timeout=TIMEOUT_MS)
    print(f"100,000 lines read and shown in {time.monotonic() - started:.1f} s")
    assert page.inner_text("#logs-info") == "100,000 lines"
    assert page.eval_on_selector_all("#log-lines .line", "els => els.length") < 200  # the lines in view only
    page.fill("#logs-filter", "99999")
    page.wait_for_selector("#logs-info:text-is('1 of 100,000 lines match')")
    tab.shoot("logs-100000")
    tab.assert_clean()


def test_why_an_instance_does_not_run_is_shown(tab, make_user):
    user = make_user("cu")
    name = f"big-{secrets.token_hex(3)}"
    job = {"containers": [{"image": "busybox", "command": ["true"], "resources": {"limits": {"cpu": "4"}}}]}
    assert user.post(f"/jobs/{name}", json=job).status_code == 200  # within the quota, more than the node has
    tab.sign_in(user.username, token_of(user))
    tab.page.wait_for_selector("#jobs-table")
    tab.go(f"#/jobs/{name}")
    why = tab.page.wait_for_selector("#job-instances tr.instance-why", timeout=TIMEOUT_MS)
    assert "Unschedulable" in why.inner_text() and "cpu" in why.inner_text()
    assert "Pending" in tab.page.inner_text("#job-instances tr.instance")
    tab.shoot("job-unschedulable")
    assert user.delete(f"/jobs/{name}").status_code == 200
    tab.assert_clean()
