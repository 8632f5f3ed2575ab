"""tenx-gateway: the TenxCloud Jobs API on Kubernetes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config, errors, http11, inflight, jsonlog, metrics
from .cache import WatchCaches
from .store import LazyStore
from .kube import Regions
from .tenancy import TenantWalls
from .throttle import FailureThrottle
from .users import UserStore
from .version import __version__

__all__ = ["Gateway", "__version__", "create_app"]


@dataclass
class Gateway:
    """What every request needs, built once per process: settings, the regions' clients, the user table."""

    settings: config.Settings
    regions: Regions
    users: UserStore
    login_throttle: FailureThrottle
    archive: LazyStore
    walls: TenantWalls
    # each region's watch cache of Jobs and pods (gateway/cache/); reads use it through the region's Kube
    caches: WatchCaches | None = None


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    # "/jobs//x" is not a path of the API: a 404 in the JSON error shape, not werkzeug's HTML redirect to "/jobs/x"
    app.url_map.merge_slashes = False
    settings = config.from_env(overrides=test_config)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # each answer gives its user's place back (gateway/inflight.py) when the server closes it, however it ended
    app.wsgi_app = inflight.releasing(app.wsgi_app)  # type: ignore[method-assign]
    if settings.trusted_proxy_hops:
        # the client is the address the outermost trusted proxy saw (X-Forwarded-For), for the login throttle and
        # the access log; behind an Ingress every peer address is the Ingress's
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops)  # type: ignore[method-assign]
    regions = Regions(settings)
    users = UserStore.from_settings(settings, regions)
    throttle = FailureThrottle(settings.auth_failure_limit, settings.auth_failure_window_seconds)
    archive = LazyStore(settings.archive_store_url, settings.log_timezone)
    app.extensions["tenx"] = Gateway(settings, regions, users, throttle, archive, TenantWalls(settings),
                                     WatchCaches(regions, settings, archive).start())
    errors.init_app(app)
    http11.init_app(app)
    metrics.init_app(app)
    jsonlog.init_app(app)

    # no /metrics here: it has its own listener (gunicorn.conf.py)
    from .views import console, docs, health, jobs, streams
    app.register_blueprint(jobs.bp)
    app.register_blueprint(streams.bp)  # follow and watch (SSE), stream tokens
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(console.bp)  # /console/: the web console (gateway/console/)
    return app
