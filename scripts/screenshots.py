"""The console's pictures in docs/: the jobs list (docs/console-jobs.png) and a job's log (docs/console-log.png).

`make screenshots` runs it. It starts a gateway of its own on the local cluster, the way the tests and the bench do
(tests' GatewayServer: gunicorn with the shipped config, node collectors, names of its own), makes a fresh user,
creates a few jobs that end in different states, signs in to the console in Debian's headless Chromium (the tests'
browser, through Playwright) and saves the two pages; then it stops that gateway and deletes its namespaces (and,
when all went well, its folder under .local/screenshots/, else kept for its logs). The local cluster must be up
(`make cluster`); this script never starts, restarts or stops it.
"""
from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

try:  # the tests' support modules, wherever the test tree keeps them
    from tests.support.browser import playwright_browser
    from tests.support.harness import ADMIN_KUBECONFIG, KUBECTL, ApiClient, GatewayServer
except ImportError:
    from tests.harness import ADMIN_KUBECONFIG, KUBECTL, ApiClient, GatewayServer
    from tests.integration.browser import playwright_browser

VIEWPORT = {"width": 1280, "height": 720}
TIMEOUT_MS = 90_000
MAX_BYTES = 200_000  # pictures are docs: kept small in the repository

# A data team's day, as a jobs list shows it: what ran, what runs, what failed. Each job's command runs on the
# local cluster's process node (tenx-local), so no image has to be pulled.
REPORT = r"""
echo "nightly report for $(date -u +%Y-%m-%d)"
for region in north south east west; do
  for step in extract transform load; do
    echo "[$region] $step: $(( ${#region} * 1234 + ${#step} * 77 )) rows"
  done
done
echo "warning: 3 rows with an empty customer id were skipped"
echo "report written to /data/report.csv (4 regions, 12 steps)"
"""
JOBS = {
    "nightly-report": {"containers": [{"image": "busybox", "command": ["sh", "-c", REPORT]}]},
    "resize-images": {"parallelism": 3, "completions": 6, "containers": [
        {"image": "busybox", "command": ["sh", "-c", "echo resized 250 images; sleep 2"]}]},
    "import-orders": {"backoff_limit": 0, "containers": [
        {"image": "busybox", "command": ["sh", "-c", "echo 'orders.csv: line 812: bad date'; exit 3"]}]},
    "train-model": {"containers": [{"image": "busybox", "command": [
        "sh", "-c", "for i in $(seq 1 600); do echo \"epoch $i: loss 0.$((900 - i))\"; sleep 1; done"]}]},
}
LOGGED = "nightly-report"  # the job whose log is pictured


def conditions(job: dict) -> set[str]:
    return {c["type"] for c in job.get("status", {}).get("conditions") or [] if c.get("status") == "True"}


def create_jobs(user: ApiClient) -> str:
    """Creates JOBS and waits until each is where the picture shows it; returns the logged job's instance."""
    for name, spec in JOBS.items():
        answer = user.post(f"/jobs/{name}", json=spec)
        if answer.status_code != 200:
            raise SystemExit(f"screenshots: creating {name} failed: {answer.status_code} {answer.text}")
    user.wait_for(LOGGED, lambda j: "Complete" in conditions(j))
    user.wait_for("resize-images", lambda j: "Complete" in conditions(j), timeout=180)
    user.wait_for("import-orders", lambda j: "Failed" in conditions(j))
    user.wait_for("train-model", lambda j: j.get("status", {}).get("active"))
    return user.get(f"/jobs/{LOGGED}").json()["instance_names"][0]


def shoot(browser, gateway: GatewayServer, user: ApiClient, instance: str, out: Path) -> list[Path]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{gateway.url}/console/#/signin")
    page.wait_for_selector("html[data-ready]")
    page.fill("#signin-user", user.username)
    page.fill("#signin-token", user.session.headers["Authorization"].split(" ", 1)[1])
    page.click("button[type=submit]")
    page.wait_for_selector("#jobs-table")
    for name in JOBS:
        page.wait_for_selector(f"#jobs-table .jrow:has(a:text-is('{name}'))")
    page.wait_for_timeout(500)  # the badges' colours settle
    saved = [out / "console-jobs.png"]
    page.screenshot(path=str(saved[0]))

    page.evaluate("(h) => { location.hash = h; }", f"#/jobs/{LOGGED}/logs/{instance}")
    page.wait_for_selector("#log-lines .lt >> text=report written to /data/report.csv")
    page.wait_for_timeout(300)
    saved.append(out / "console-log.png")
    page.screenshot(path=str(saved[1]))
    context.close()
    return saved


def cluster_is_up() -> bool:
    if not ADMIN_KUBECONFIG.exists():
        return False
    ready = subprocess.run([str(KUBECTL), "--kubeconfig", str(ADMIN_KUBECONFIG), "get", "--raw", "/readyz"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    return ready.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default: docs/)")
    args = parser.parse_args()
    if not cluster_is_up():
        print("screenshots: the local cluster is not up (make cluster)", file=sys.stderr)
        return 1
    workdir = ROOT / ".local" / "screenshots" / f"gateway-{secrets.token_hex(3)}"
    gateway = GatewayServer(workdir, letter="s", collector=True)
    try:
        gateway.start(timeout=90)
        user = gateway.add_user("alice")
        instance = create_jobs(user)
        with playwright_browser() as browser:
            saved = shoot(browser, gateway, user, instance, args.out)
    finally:
        gateway.close()
    shutil.rmtree(workdir)  # its logs are kept only when something failed
    too_big = [p for p in saved if p.stat().st_size > MAX_BYTES]
    for path in saved:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size:,} bytes")
    if too_big:
        print(f"screenshots: over {MAX_BYTES:,} bytes: {', '.join(map(str, too_big))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
