"""``GET /metrics``: Prometheus text format, no authentication (it carries no job or user names)."""
from __future__ import annotations

from flask import Blueprint

from .. import metrics as _metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    return _metrics.exposition()
