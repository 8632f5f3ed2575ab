"""A browser tab on the web console with everything that would be a failure collected (console errors, uncaught
exceptions, CSP violations, failed requests), and its screenshots under .local/screenshots/console/."""
from __future__ import annotations

from .harness import ROOT

SHOTS = ROOT / ".local/screenshots/console"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
# every securitypolicyviolation the page sees, kept where the test can read it (an init script runs before the
# page's own and is not subject to its CSP)
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""
TIMEOUT_MS = 90_000


class Tab:
    """A page with everything that would be a failure collected: console errors and warnings, uncaught exceptions,
    CSP violations, failed requests to the gateway."""

    def __init__(self, browser, gateway):
        self.context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.problems: list[str] = []
        self.url = f"{gateway.url}/console/"
        self.page.add_init_script(WATCH_CSP)
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(
            f"console {m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.requests: list[str] = []  # the calls the page made, for the report of a failed test
        self.page.on("requestfinished", lambda r: self.requests.append(
            f"{r.method} {r.url.split('?')[0]} {r.response().status if r.response() else '-'}"))
        self.page.on("requestfailed", lambda r: self.requests.append(f"{r.method} {r.url.split('?')[0]} {r.failure}"))
        self.streams: list[str] = []  # paths answered with Server-Sent Events
        self.page.on("response", lambda r: r.headers.get("content-type", "").startswith("text/event-stream") and
                     self.streams.append(r.url.split("?")[0]))

    def open(self, fragment: str = "") -> None:
        self.page.goto(self.url + fragment)
        self.page.wait_for_selector("html[data-ready]")

    def go(self, fragment: str) -> None:
        self.page.evaluate("(h) => { location.hash = h; }", fragment)

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__csp || []")

    def shoot(self, name: str) -> None:
        """The page as it is, at desktop and phone width; then back to desktop."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=False)
        self.page.set_viewport_size(PHONE)
        self.page.wait_for_timeout(150)
        self.page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=False)
        self.page.set_viewport_size(DESKTOP)
        self.page.wait_for_timeout(100)

    def sign_in(self, user: str, token: str) -> None:
        self.open("#/signin")
        self.page.fill("#signin-user", user)
        self.page.fill("#signin-token", token)
        self.page.click("button[type=submit]")

    def expect_failed_load(self, status: int) -> None:
        """The browser reports every error answer as a failed load in the console: one the test provoked (a 400
        for a wrong field, a 401 for a wrong token) is expected, once, and nothing else is."""
        loads = [p for p in self.problems if "Failed to load resource" in p]
        assert len(loads) == 1 and f"status of {status}" in loads[0], self.problems
        self.problems.remove(loads[0])

    def assert_clean(self) -> None:
        assert self.csp_violations() == [], self.csp_violations()
        assert self.problems == [], self.problems

    def close(self) -> None:
        self.context.close()


def token_of(client) -> str:
    return client.session.headers["Authorization"].split(" ", 1)[1]
