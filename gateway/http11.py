"""What HTTP/1.1 requires of a request that gunicorn lets through: exactly one ``Host`` header (RFC 9112, 3.2: a
request without one, or with more than one, is answered 400)."""
from __future__ import annotations

from flask import Flask, request

from . import errors


def _require_one_host() -> None:
    if request.environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
        return  # HTTP/1.0 has no Host requirement
    host = request.environ.get("HTTP_HOST")
    if not host:
        raise errors.BadRequest("an HTTP/1.1 request needs a Host header")
    if "," in host:  # gunicorn joins repeated header lines with commas; a host has none
        raise errors.BadRequest("an HTTP/1.1 request takes one Host header")


def init_app(app: Flask) -> None:
    app.before_request(_require_one_host)
