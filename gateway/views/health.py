"""Liveness, readiness, the version, and the original's ``/v1/status`` and ``/v1/regions``; none of them asks for
credentials.

``/v1/regions`` is public as it was in the original: region names are published configuration (the API's own
paths carry them), and a client needs the list before it has anything to authenticate for.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from .. import errors
from ..health import Readiness, archive_problems
from ..version import info

bp = Blueprint("health", __name__)

_READINESS = "tenx.readiness"


@bp.record_once
def _make_readiness(state) -> None:
    gateway = state.app.extensions["tenx"]
    state.app.extensions[_READINESS] = Readiness(gateway.regions, gateway.settings.readiness_timeout)


def _readiness() -> Readiness:
    return current_app.extensions[_READINESS]


def _unavailable(message: str, problems: dict[str, str]) -> errors.Unavailable:
    retry_after = str(current_app.extensions["tenx"].settings.retry_after_seconds)
    return errors.Unavailable(message, errors=problems, headers={"Retry-After": retry_after})


@bp.get("/healthz")
def healthz():
    """The process is alive and answering; no cluster call."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    problems = _readiness().problems()
    if problems:
        raise _unavailable(f"not ready: region(s) {', '.join(problems)} did not answer", problems)
    caches = current_app.extensions["tenx"].caches
    unsynced = caches.problems() if caches is not None else {}
    if unsynced:
        raise _unavailable("not ready: the watch cache has not synced yet", unsynced)
    lagging = _archive_problems()
    if lagging:
        raise _unavailable("not ready: archive lagging", lagging)
    return jsonify(status="ok")


def _archive_problems() -> dict[str, str]:
    """The collector's heartbeat in the archive says how far behind it is (see gateway/collector/region.py)."""
    gateway = current_app.extensions["tenx"]
    try:
        heartbeats = gateway.archive.get().heartbeats()
    except Exception:  # noqa: BLE001 - an archive that cannot be read is reported, not raised
        current_app.logger.exception("readyz: the log archive cannot be read")
        return {"archive": "archive lagging: the log archive cannot be read"}
    return archive_problems(heartbeats, gateway.settings.archive_lag_ready_seconds)


@bp.get("/version")
def version():
    """Which gateway answers: its version and commit (``tenx version`` shows it beside the client's)."""
    return jsonify(info())


@bp.get("/v1/status")
def status():
    problems = _readiness().problems()
    if problems:
        raise _unavailable("API is temporarily unavailable", problems)
    return Response("API is running", mimetype="text/plain")


@bp.get("/v1/regions")
def regions():
    settings = current_app.extensions["tenx"].settings
    return jsonify(regions=[
        {"name": name, "display_name": settings.region_display_names.get(name, name), "status": state}
        for name, state in _readiness().statuses().items()])
