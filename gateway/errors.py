"""One JSON error shape for every failure: ``{"code", "status", "message"[, "errors"]}``.

Views and modules raise werkzeug ``HTTPException`` subclasses (or the gateway's own below); the handlers registered
here turn each of them, marshmallow ``ValidationError`` and anything unexpected into that shape. Nothing else in the
gateway writes an error body, and no stack trace ever leaves the process.
"""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class GatewayError(HTTPException):
    """An HTTP error with a message for the client and optional field errors or headers."""

    code = 500

    def __init__(self, message: str, *, errors: Any = None, headers: dict[str, str] | None = None):
        super().__init__(description=message)
        self.errors = errors
        self.extra_headers = headers or {}


class BadRequest(GatewayError):
    code = 400


class Unauthorized(GatewayError):
    code = 401


class Forbidden(GatewayError):
    """Refused for what the caller asked: a quota, an admission policy, a namespace that is not theirs."""

    code = 403


class NotFound(GatewayError):
    code = 404


class Conflict(GatewayError):
    code = 409


class TooManyRequests(GatewayError):
    code = 429


class BadGateway(GatewayError):
    """The cluster refused the gateway itself (its credentials or permissions) or answered nonsense: the
    operator's problem, not the caller's, and retrying will not help until it is fixed."""

    code = 502


class Unavailable(GatewayError):
    code = 503


def error_body(code: int, message: str, errors: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "status": HTTPStatus(code).phrase, "message": message}
    if errors:
        body["errors"] = errors
    return body


def _respond(code: int, message: str, errors: Any = None, headers: dict[str, str] | None = None):
    response = jsonify(error_body(code, message, errors))
    response.status_code = code
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def handle_http_exception(exc: HTTPException):
    headers = dict(getattr(exc, "extra_headers", {}))
    if exc.code == 405 and exc.valid_methods:  # werkzeug's MethodNotAllowed knows the allowed ones
        headers["Allow"] = ", ".join(exc.valid_methods)
    return _respond(exc.code or 500, exc.description or HTTPStatus(exc.code or 500).phrase,
                    getattr(exc, "errors", None), headers)


def handle_validation_error(exc: ValidationError):
    return _respond(400, "invalid request: see errors", exc.normalized_messages())


def handle_unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled error")
    return _respond(500, "internal error")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(Exception, handle_unexpected)
