"""The console's jobs page with 1,000 jobs, measured in the browser: time to first render (first contentful paint
of the page) and to the full list (all 1,000 jobs read and the table drawn), while only the rows in view are in
the DOM. The jobs are made fast, straight through the apiserver (admin kubeconfig), as the gateway makes them
(gateway/jobs/manifest.py: its labels) and suspended, so no pod runs; the user's quota is raised for it on a gateway of
this module's own. Figures: printed and written to .local/screenshots/console/jobs-load.json."""
from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.jobs.manifest import build_job
from gateway.api.schemas import JobSpecSchema

from tests.support.harness import start_gateway, wait_until
from tests.support.console_tab import SHOTS, Tab, token_of

JOBS = 1000
RUNS = 3


@pytest.fixture(scope="module")
def crowded(local_cluster, tmp_path_factory):
    """A gateway whose user holds JOBS jobs: (gateway, user)."""
    from kubernetes import client, config
    server = start_gateway(tmp_path_factory.mktemp("console-load"), letter="r",
                           GATEWAY_TENANT_QUOTA_JOBS=str(JOBS + 50))
    api = config.new_client_from_config(config_file=local_cluster.kubeconfig)
    try:
        user = server.add_user("cl")
        # the first job through the gateway: it makes the user's namespace and walls it, with the raised quota
        spec = {"containers": [{"image": "busybox", "command": ["true"]}]}
        assert user.post("/jobs/load-0000", json=spec).status_code == 200
        # creation stamps have whole seconds, and the table orders a second's jobs by name: load-0000 is the
        # oldest, last in the table, only if no other job shares its second
        made = user.get("/jobs/load-0000").json()["metadata"]["creationTimestamp"]
        wait_until(lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) > made, 30, interval=0.05,
                   what="the second load-0000 was made in to pass")
        namespace = server.namespace_of(user)
        batch = client.BatchV1Api(api)
        loaded = JobSpecSchema().load(spec)

        def make(index: int) -> None:
            name = f"load-{index:04d}"
            manifest = build_job(loaded, name=name, namespace=namespace, username=user.username,
                                 host_volume_root=server.volume_root)
            manifest["spec"]["suspend"] = True
            batch.create_namespaced_job(namespace, manifest)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(make, range(1, JOBS)))
        assert wait_until(lambda: len(user.get("/jobs").json()["jobs"]) == JOBS, 60)
        yield server, user
    finally:
        api.close()
        server.close()


MARKS = """() => {
  const rendered = performance.getEntriesByName("jobs-rendered")[0];
  if (!rendered) return null;
  const fetched = performance.getEntriesByName("jobs-fetched")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {first_render_ms: paint ? paint.startTime : null, list_read_ms: fetched.startTime,
          full_list_ms: rendered.startTime, jobs: rendered.detail.jobs,
          rows_in_dom: document.querySelectorAll("#jobs-table .jrow").length};
}"""


def page_loads(page, jobs: int) -> list[dict]:
    """RUNS fresh loads of the jobs page (the session stays in the tab), each with its marks (tenx console's
    jobs.js: the list read, and the first frame after the whole list went into the table)."""
    runs = []
    for _ in range(RUNS):
        page.reload()
        page.wait_for_selector("#jobs-table .jrow")
        marks = wait_until(lambda: page.evaluate(MARKS), 60)
        assert marks and marks["jobs"] == jobs, marks
        runs.append(marks)
    return runs


def medians(runs: list[dict]) -> dict:
    return {key: round(statistics.median(r[key] for r in runs), 1)
            for key in ("first_render_ms", "list_read_ms", "full_list_ms")}


def test_a_thousand_jobs_load_fast_and_draw_only_what_is_seen(browser, crowded):
    server, user = crowded
    tab = Tab(browser, server)
    page = tab.page
    try:
        tab.sign_in(user.username, token_of(user))
        page.wait_for_selector("#jobs-table .jrow")
        runs = page_loads(page, JOBS)
        assert page.inner_text("#jobs-count") == f"{JOBS} jobs"
        assert all(r["rows_in_dom"] < 100 for r in runs), runs  # virtual scrolling: the rows in view only
        # the oldest job is at the end of the list, reachable by scrolling
        page.eval_on_selector("#jobs-table", "box => { box.scrollTop = box.scrollHeight; }")
        page.wait_for_selector("#jobs-table a:text-is('load-0000')")
        page.fill("#jobs-filter", "load-0999")
        page.wait_for_selector("#jobs-count:text-is('1 of 1000 jobs')")
        page.select_option("#jobs-status", "suspended")
        page.fill("#jobs-filter", "")
        page.wait_for_selector(f"#jobs-count:text-is('{JOBS - 1} of {JOBS} jobs')")
        # live through the job list watch (the README's "Follow and watch": it exists), not by polling
        assert wait_until(lambda: any(u.endswith("/v1/regions/us/jobs") for u in tab.streams), 30), tab.streams
        page.wait_for_selector("#jobs-live:text-is('live')")
        tab.shoot("jobs-1000")
        tab.assert_clean()
    finally:
        tab.close()
    record("jobs-load", {**medians(runs), "jobs": JOBS, "runs": runs})


def record(name: str, figures: dict) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"console {name}:", json.dumps({k: v for k, v in figures.items() if k != "runs"}))
