"""The console's page and assets as the gateway serves them (no cluster, no browser: tests/integration/test_console*
drive the page in Chromium)."""
from __future__ import annotations

import html
import json
import re

import pytest

from gateway import create_app
from gateway.api.views import console


@pytest.fixture
def client():
    return create_app({"log_timezone": "Asia/Shanghai", "watch_cache": False}).test_client()


def test_the_page_tells_the_script_about_the_gateway_without_inline_script(client):
    page = client.get("/console/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    meta = re.search(r'<meta name="tenx-console" content="([^"]*)">', text).group(1)
    config = json.loads(html.unescape(meta))
    assert config["log_timezone"] == "Asia/Shanghai" and config["regions"] == ["us"]
    assert config["log_default_size"] == 1000 and config["log_max_size"] == 10000
    assert "<script>" not in text and " style=" not in text and " on" not in text.replace(" one", "")
    assert page.headers["Cache-Control"] == "no-cache"


def test_a_strict_policy_on_the_page_and_its_assets(client):
    for path in ("/console/", f"{console.STATIC_PREFIX}/js/main.js"):
        headers = client.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self';" in policy and "'unsafe-" not in policy
        assert "trusted-types tenx-console" in policy and "frame-ancestors 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


def test_every_referenced_asset_is_served_and_cached_for_a_year(client):
    text = client.get("/console/").get_data(as_text=True)
    referenced = re.findall(r'(?:src|href)="(/console/static/[^"]+)"', text)
    modules = [p.relative_to(console.ASSETS).as_posix() for p in (console.ASSETS / "js").glob("*.js")]
    assert len(referenced) == 3 and "js/main.js" in modules
    for path in referenced + [f"{console.STATIC_PREFIX}/{m}" for m in modules]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == f"public, max-age={console.ASSET_MAX_AGE}, immutable"
    for module in modules:  # relative imports stay under the same digest
        source = (console.ASSETS / module).read_text()
        for imported in re.findall(r'from "\./([\w.]+)"', source):
            assert (console.ASSETS / "js" / imported).is_file(), (module, imported)
    assert client.get("/console/static/000000000000/js/main.js").status_code == 404


def test_the_digest_changes_with_any_asset(tmp_path):
    (tmp_path / "a.js").write_text("one")
    before = console.assets_digest(tmp_path)
    (tmp_path / "a.js").write_text("two")
    assert console.assets_digest(tmp_path) != before
    assert console.assets_digest(console.ASSETS) == console.DIGEST


def test_no_asset_turns_strings_into_markup():
    """Trusted Types (one policy, for the worker's URL only) would throw on these sinks; none is used, so nothing
    throws and nothing can inject markup."""
    for path in console.ASSETS.rglob("*.js"):
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, (path.name, sink)


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colours_have_readable_contrast():
    """WCAG AA (4.5:1) for every text colour of the palette on the backgrounds it is used on."""
    css = (console.ASSETS / "console.css").read_text()
    var = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", css))
    pairs = [("text", "bg"), ("muted", "bg"), ("muted", "card"), ("accent", "card"), ("accent", "bg"),
             ("accent-text", "accent"), ("ok", "ok-bg"), ("run", "run-bg"), ("fail", "fail-bg"), ("wait", "wait-bg"),
             ("off", "off-bg"), ("danger", "card")]
    for fg, bg in pairs:
        assert contrast(var[fg], var[bg]) >= 4.5, (fg, bg, round(contrast(var[fg], var[bg]), 2))
    assert contrast("#777777", "#ffffff") < 4.5  # the check can fail
