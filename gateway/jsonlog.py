"""JSON-lines logs: gunicorn's access and error logs and the gateway's own, one object per line.

An access line carries the method, path, URL rule, status, duration, size, client address and, once the
credentials were proven, the user name. Request headers are never logged: ``Authorization`` carries the token.
gunicorn.conf.py selects ``GunicornLogger``; the app passes the route and user to it through the WSGI environ.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

from flask import Flask, Response, g, request
from gunicorn.glogging import Logger

ROUTE_KEY = "tenx.route"
USER_KEY = "tenx.user"


def _spelled_any_way(name: str) -> str:
    """A pattern for ``name`` with any of its characters percent-encoded (``stream%5Ftoken``, ``%73tream_token``):
    werkzeug decodes a query's names, so each of those spellings carries a token, and gunicorn logs an invalid
    request line as it came."""
    return "".join(f"(?:{re.escape(ch)}|%{ord(ch):02x})" for ch in name)


_QUOTE = r"(?:\\?[\"'])?"  # a quote, JSON-escaped or not (these patterns run over the JSON line)
_EQUALS = rf"{_QUOTE}\s*(?:[:=]|%3a|%3d)\s*{_QUOTE}\s*"  # = (a query), : (a header, a JSON key), encoded or not
_SCHEME = r"(?:token|bearer|basic)(?:\s+|%20|\+)"
_VALUE = r"[^&\s\"'\\,;]+"
# What looks like a credential, whatever logs it (gunicorn's own warnings quote a bad header line or request line
# verbatim): the value of a stream token parameter, however spelled; an Authorization header's value, with or
# without its colon; a value after the word "token" or "Bearer"; and any run of 40 or more URL-safe base64
# characters mixing upper and lower case (an API token is 43, each half of a stream token as long or longer).
_CREDENTIALS = re.compile(
    rf"({_spelled_any_way('stream_token')}{_EQUALS}){_VALUE}"
    rf"|(authorization(?:{_EQUALS}(?:{_SCHEME})?|\s+{_SCHEME})){_VALUE}"
    rf"|(\b(?:token|bearer)(?:\s+|%20|\+))[A-Za-z0-9_\-.~+/=]{{20,}}",
    re.IGNORECASE)
_TOKEN_SHAPED = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{40,}(?![A-Za-z0-9_-])")
REDACTED = "[redacted]"


def _keep_the_name(match: re.Match) -> str:
    return next(group for group in match.groups() if group is not None) + REDACTED


def _if_mixed_case(match: re.Match) -> str:
    run = match.group()
    return REDACTED if any(c.isupper() for c in run) and any(c.islower() for c in run) else run


def redact(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``[redacted]`` (the name before it kept)."""
    return _TOKEN_SHAPED.sub(_if_mixed_case, _CREDENTIALS.sub(_keep_the_name, text))


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "pid", "message", ...}``; a record's ``fields`` extra adds keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def configure(level: int = logging.INFO) -> None:
    """JSON lines on standard error for a process gunicorn does not run (``tenx-gateway collect`` and the like)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def access_fields(status: int, environ: dict[str, Any], duration: dt.timedelta, sent: int | None) -> dict[str, Any]:
    """What an access line says about one request: nothing from its headers but the User-Agent."""
    fields = {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "route": environ.get(ROUTE_KEY),
        "status": status,
        "duration_ms": round(duration.total_seconds() * 1000, 3),
        "bytes": sent,
        "remote_addr": environ.get("REMOTE_ADDR"),
        "user": environ.get(USER_KEY),
        "user_agent": environ.get("HTTP_USER_AGENT"),
    }
    return {key: value for key, value in fields.items() if value is not None}


class GunicornLogger(Logger):
    """gunicorn's logger with JSON lines; the app's loggers write to the error log's destination."""

    _app_handlers: list[logging.Handler] = []

    def setup(self, cfg) -> None:
        super().setup(cfg)
        formatter = JsonFormatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(formatter)
        if not (cfg.logconfig_dict or cfg.logconfig_json or cfg.logconfig):  # the operator's config wins
            self._route_app_logs()

    def _route_app_logs(self) -> None:
        root = logging.getLogger()
        for handler in GunicornLogger._app_handlers:  # from before a configuration reload
            root.removeHandler(handler)
        GunicornLogger._app_handlers = [h for h in self.error_log.handlers if getattr(h, "_gunicorn", False)]
        for handler in GunicornLogger._app_handlers:
            root.addHandler(handler)
        root.setLevel(self.loglevel)

    def access(self, resp, req, environ, request_time) -> None:
        if not getattr(self, "access_log_enabled", True):  # the property is gunicorn 23+'s
            return
        status = resp.status
        status = int(status.split(None, 1)[0]) if isinstance(status, str) else int(status)
        fields = access_fields(status, environ, request_time, getattr(resp, "sent", None))
        try:
            self.access_log.info("%s %s %s", fields.get("method"), fields.get("path"), status,
                                 extra={"fields": fields})
        except Exception:
            self.exception("cannot write the access log")


def _annotate(response: Response) -> Response:
    """Hand the URL rule and the authenticated user (never the raw headers) to the access log."""
    if request.url_rule is not None:
        request.environ[ROUTE_KEY] = request.url_rule.rule
    tenant = g.get("tenant")
    if tenant is not None:
        request.environ[USER_KEY] = tenant.username
    return response


def init_app(app: Flask) -> None:
    app.after_request(_annotate)
