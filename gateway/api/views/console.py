"""``/console/``: a web console for the Jobs API, static files shipped in the package (gateway/console/).

The page is one HTML document and plain JavaScript modules (no build step). It talks to the same API as any client,
with the user's name and token from the tab's session storage. What the page needs to know about this gateway (the
regions, the log timezone, the log page sizes) is written into the HTML as a ``<meta>`` element, so the page needs
no extra call and no inline script.

Assets are served under ``/console/static/<digest>/``: the digest is taken over every file of the console, so a
new release has new URLs and the assets may be cached for a year (the modules import each other by relative paths,
so they stay within one digest). The page itself is revalidated on every load.
"""
from __future__ import annotations

import hashlib
import html
from pathlib import Path

import orjson
from flask import Blueprint, Response, current_app, request

ASSETS = Path(__file__).resolve().parents[2] / "console"
INDEX = "index.html"


def assets_digest(root: Path = ASSETS) -> str:
    """A short digest of every file's path and content under ``root``: it changes whenever any asset does."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


DIGEST = assets_digest()
STATIC_PREFIX = f"/console/static/{DIGEST}"

# No inline script or style at all; scripts and styles from this origin only; calls to this origin only (the API and
# its streams); Trusted Types with one policy, which admits the job-list worker's URL and nothing else, so no string
# can ever become markup or code (the page builds its DOM with textContent only).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
       "worker-src 'self'; require-trusted-types-for 'script'; trusted-types tenx-console")
ASSET_MAX_AGE = 365 * 24 * 3600

bp = Blueprint("console", __name__, static_folder=str(ASSETS), static_url_path=STATIC_PREFIX)


def page_config() -> dict:
    """What the page is told about this gateway (public: the same as /v1/regions and the OpenAPI document say)."""
    gateway = current_app.extensions["tenx"]
    settings = gateway.settings
    return {"regions": gateway.regions.names, "log_timezone": settings.log_timezone,
            "log_default_size": settings.log_default_size, "log_max_size": settings.log_max_size, "static": STATIC_PREFIX}


@bp.get("/console/")
def index():
    text = (ASSETS / INDEX).read_text(encoding="utf-8")
    text = text.replace("{{static}}", STATIC_PREFIX).replace(
        "{{config}}", html.escape(orjson.dumps(page_config()).decode(), quote=True))
    response = Response(text, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if request.endpoint == "console.static" and response.status_code in (200, 304):
        response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}, immutable"
    return response
