"""``/openapi.json`` and ``/docs``: the API's document and a Swagger UI page for it, both served offline.

The page's JavaScript and CSS come from the ``swagger-ui-bundle`` package installed with the gateway; its
Content-Security-Policy lets it load nothing from anywhere else.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template_string
from swagger_ui_bundle import swagger_ui_path

from ..openapi import build_spec
from ..respond import json_response

bp = Blueprint("docs", __name__, static_folder=str(swagger_ui_path), static_url_path="/docs/static")

_SPEC = "tenx.openapi"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>tenx-gateway API</title>
  <link rel="stylesheet" href="{{ url_for('docs.static', filename='swagger-ui.css') }}">
  <link rel="icon" type="image/png" href="{{ url_for('docs.static', filename='favicon-32x32.png') }}">
  <style>body { margin: 0; }</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{{ url_for('docs.static', filename='swagger-ui-bundle.js') }}"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: {{ url_for('docs.openapi') | tojson }},
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      deepLinking: true,
      validatorUrl: null,
      tryItOutEnabled: false
    });
  </script>
</body>
</html>
"""

_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")


@bp.get("/openapi.json")
def openapi():
    spec = current_app.extensions.get(_SPEC)
    if spec is None:  # built once per process: routes and settings do not change while it runs
        spec = current_app.extensions[_SPEC] = build_spec(current_app, current_app.extensions["tenx"].settings)
    return json_response(spec)  # keeps the document's order, which the page shows


@bp.get("/docs")
def docs():
    response = Response(render_template_string(_PAGE), mimetype="text/html")
    response.headers["Content-Security-Policy"] = _CSP
    return response
