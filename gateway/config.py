"""Settings: defaults, then ``GATEWAY_*`` environment variables, then a test mapping.

Every setting is documented in the README's configuration table; keep the two in step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

IN_CLUSTER = "@in-cluster"
CURRENT_CONTEXT = ""


@dataclass(frozen=True)
class Settings:
    # region name -> kubeconfig context ("" = current context, "@in-cluster" = service account)
    regions: Mapping[str, str] = field(default_factory=lambda: {"us": CURRENT_CONTEXT})
    # where the gateway keeps its own objects (the users Secret); lives in the first region's cluster
    namespace: str = "tenx-gateway"
    users_secret: str = "tenx-gateway-users"
    # seconds a loaded user table is trusted before it is read again
    auth_cache_seconds: float = 5.0
    # failed logins per client address or user name before 429, and the window they are counted in
    auth_failure_limit: int = 10
    auth_failure_window_seconds: float = 60.0
    # X-Forwarded-For entries set by proxies we trust (an Ingress: 1); 0 = use the peer address as the client
    trusted_proxy_hops: int = field(default=0, metadata={"min": 0, "max": 10})
    # host:port where gunicorn's master serves /metrics (never on the API port); "off" = no metrics listener
    metrics_bind: str = "127.0.0.1:9090"
    namespace_prefix: str = "tenx-"
    host_volume_root: str = "/tenxcloud/app_data"
    max_body_bytes: int = 64 * 1024
    log_timezone: str = "UTC"
    log_default_size: int = 1000
    log_max_size: int = 10000
    # the most bytes of log text one logs call returns (a longer page is cut short, a longer line cut)
    log_max_bytes: int = 4 * 1024 * 1024
    # the most jobs one list call returns (the apiserver's `limit`); more are left out and the body says so
    list_max_jobs: int = 10000
    # (connect, read) seconds for every apiserver call
    kube_connect_timeout: float = 3.0
    kube_read_timeout: float = 20.0
    retry_after_seconds: int = 5
    # the log archive: a store URL (sqlite:///path or postgresql://...); empty = SQLite in data_dir
    archive_url: str = ""
    data_dir: str = "/var/lib/tenx-gateway"
    archive_retention_days: int = 30
    collector_poll_seconds: float = 1.0
    # the collector: streams followed at once (more wait in a queue), its health/metrics port (0 = none), the
    # Lease's duration, and the archive lag past which the API's /readyz says "archive lagging"
    collector_max_streams: int = field(default=2000, metadata={"min": 1, "max": 100000})
    collector_port: int = field(default=0, metadata={"min": 0, "max": 65535})
    collector_lease_seconds: float = field(default=15.0, metadata={"min": 3, "max": 600})
    archive_lag_ready_seconds: float = field(default=60.0, metadata={"min": 1})
    # seconds /readyz, /v1/status and /v1/regions wait for each region's apiserver to answer GET /version
    readiness_timeout: float = 2.0
    # region name -> the display_name /v1/regions shows (a region not listed shows its name)
    region_display_names: Mapping[str, str] = field(default_factory=lambda: {"us": "North America"})

    @property
    def default_region(self) -> str:
        return next(iter(self.regions))

    @property
    def archive_store_url(self) -> str:
        return self.archive_url or f"sqlite:///{os.path.join(os.path.abspath(self.data_dir), 'archive.db')}"


def _pairs(variable: str, text: str, *, value_required: bool) -> dict[str, str]:
    """``"a=x, b=y"`` -> ``{"a": "x", "b": "y"}``, naming the variable in any complaint."""
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = (side.strip() for side in item.partition("="))
        if not key or (value_required and not value):
            raise ValueError(f"{variable}: {item!r} is not name=value")
        pairs[key] = value
    return pairs


def parse_regions(text: str) -> dict[str, str]:
    """``"us=ctx-a,eu=ctx-b"`` -> ``{"us": "ctx-a", "eu": "ctx-b"}``; a bare name uses the current context."""
    regions = _pairs("GATEWAY_REGIONS", text, value_required=False)
    if not regions:
        raise ValueError("GATEWAY_REGIONS names no region")
    return regions


def parse_display_names(text: str) -> dict[str, str]:
    """``"us=North America,eu=Europe"`` -> ``{"us": "North America", "eu": "Europe"}``."""
    return _pairs("GATEWAY_REGION_DISPLAY_NAMES", text, value_required=True)


def _coerce(name: str, kind: type, raw: str) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"GATEWAY_{name.upper()}: {raw!r} is not a valid {kind.__name__}") from None


def from_env(environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    settings = Settings()
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = environ.get(f"GATEWAY_{f.name.upper()}")
        if raw is None or raw == "":
            continue
        if f.name == "regions":
            values[f.name] = parse_regions(raw)
        elif f.name == "region_display_names":
            values[f.name] = parse_display_names(raw)
        else:
            values[f.name] = _coerce(f.name, type(getattr(settings, f.name)), raw)
    values.update(overrides or {})
    return replace(settings, **values)
