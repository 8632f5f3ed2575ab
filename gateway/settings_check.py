"""Settings are checked when a process starts, so a bad value stops it at once with one line that names the
setting and what it accepts, instead of passing /readyz and failing every call that uses it.

Numeric fields of ``config.Settings`` carry their bounds as dataclass metadata (``{"min": 1, "max": ...}``; a float
must also be finite); ``{"quantity": True}`` marks a Kubernetes quantity. Settings whose values have a shape of
their own (a timezone, URLs, addresses, names) are checked by name below. ``check_contexts`` reads the kubeconfig
and ``check_gunicorn`` the variables gunicorn.conf.py reads; ``startup`` does all of it.
"""
from __future__ import annotations

import ipaddress
import math
import os
import re
import sys
from dataclasses import fields
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import config, scheduling
from .config import CURRENT_CONTEXT, IN_CLUSTER, InvalidSetting, Settings
from .names import is_dns1123_label, is_pod_name
from .schemas import QUANTITY
from .walls import egress_denied

REGION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
NAMESPACE_PREFIX = re.compile(r"[a-z0-9][-a-z0-9]{0,39}")
QUEUES = ("", "kueue")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _bounds_text(meta: Mapping[str, Any], kind: type) -> str:
    noun = "a whole number" if kind is int else "a number"
    low, high = meta.get("min"), meta.get("max")
    if low is not None and high is not None:
        return f"{noun} from {low} to {high}"
    if low is not None:
        return f"{noun} of at least {low}"
    if high is not None:
        return f"{noun} of at most {high}"
    return noun


def _check_number(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    kind = int if isinstance(value, int) and not isinstance(value, bool) else float
    accepts = _bounds_text(meta, kind)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSetting(name, value, accepts)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidSetting(name, value, accepts)
    if ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
        raise InvalidSetting(name, value, accepts)


def _timezone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return "an IANA timezone name such as UTC or Asia/Shanghai"
    return None


def _archive_url(value: str) -> str | None:
    if value == "" or (value.startswith("sqlite:///") and len(value) > len("sqlite:///")):
        return None
    if re.fullmatch(r"postgres(ql)?://\S+", value):
        return None
    from .store.opensearch import SCHEMES, parse_url  # pure: the client itself is imported only by the store
    if value.startswith(SCHEMES):
        try:
            parse_url(value)
            return None
        except ValueError as exc:
            return f"an OpenSearch URL ({exc})"
    return ("empty (SQLite in GATEWAY_DATA_DIR), sqlite:///absolute/path.db, postgresql://user:pass@host/db or "
            "opensearch[s]://[user:pass@]host:port[/prefix]")


def bind_problem(value: str, *, metrics: bool = False) -> str | None:
    """None if ``value`` is host:port (a name, an IPv4 or a bracketed IPv6 address) or, for gunicorn, unix:/path;
    the metrics listener (prometheus_client's HTTP server) takes host:port or ``off``."""
    accepts = ("host:port (such as 127.0.0.1:9090) or off" if metrics
               else "host:port (such as 127.0.0.1:8080 or [::]:8080) or unix:/path")
    if metrics and value == "off":
        return None
    if value.startswith("unix:") and not metrics:
        return None if len(value) > len("unix:") else accepts
    host, sep, port = value.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or int(port) > 65535:
        return accepts
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return accepts
        return None
    return None if host and re.fullmatch(r"[A-Za-z0-9.-]+", host) else accepts


def _egress(value: str) -> str | None:
    try:
        egress_denied(value, [])
    except ValueError:
        return "a comma-separated list of CIDRs (such as 169.254.169.254/32) and @apiserver"
    return None


def _parses(parse: Callable[[str], Any], value: str, accepts: str) -> str | None:
    try:
        parse(value)
    except InvalidSetting:
        return accepts
    return None


def _regions(value: Mapping[str, str]) -> str | None:
    if not value or not all(REGION_NAME.fullmatch(name) for name in value):
        return "name=context,... with region names of letters, digits, '.', '_' and '-'"
    return None


# setting -> a check returning None, or what the setting accepts
_SHAPES: dict[str, Callable[[Any], str | None]] = {
    "log_timezone": _timezone,
    "archive_url": _archive_url,
    "regions": _regions,
    "namespace": lambda v: None if is_dns1123_label(v) else "a DNS-1123 label (lower-case letters, digits, '-')",
    "users_secret": lambda v: None if is_pod_name(v) else "a Secret name (a DNS-1123 subdomain)",
    "namespace_prefix": lambda v: None if NAMESPACE_PREFIX.fullmatch(v) else (
        "1 to 40 lower-case letters, digits or '-', starting with a letter or digit"),
    "host_volume_root": lambda v: None if v.startswith("/") else "an absolute path",
    "data_dir": lambda v: None if v.strip() else "a directory path",
    "metrics_bind": lambda v: bind_problem(v, metrics=True),
    "collector_host": lambda v: None if re.fullmatch(r"[A-Za-z0-9.-]+", v) else "an IPv4 address or a host name",
    "tenant_egress_deny": _egress,
    "queue": lambda v: None if v in QUEUES else "empty (no queue) or kueue",
    "queue_cluster_queue": lambda v: None if is_dns1123_label(v) else "a ClusterQueue's name (a DNS-1123 label)",
    "pod_node_selector": lambda v: _parses(scheduling.parse_node_selector, v, scheduling.SELECTOR_ACCEPTS),
    "pod_tolerations": lambda v: _parses(scheduling.parse_tolerations, v, scheduling.TOLERATIONS_ACCEPTS),
}


def validate(settings: Settings) -> Settings:
    """``settings`` if every value is acceptable; else ``InvalidSetting`` for the first that is not."""
    for f in fields(Settings):
        value = getattr(settings, f.name)
        meta = f.metadata
        if "min" in meta or "max" in meta or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            _check_number(f.name, value, meta)
        if meta.get("quantity") and not (isinstance(value, str) and QUANTITY.fullmatch(value)):
            raise InvalidSetting(f.name, value, "a Kubernetes quantity such as 500m, 2 or 512Mi")
        shape = _SHAPES.get(f.name)
        problem = shape(value) if shape else None
        if problem:
            raise InvalidSetting(f.name, value, problem)
    if settings.log_default_size > settings.log_max_size:
        raise InvalidSetting("log_default_size", settings.log_default_size,
                             f"a number no larger than GATEWAY_LOG_MAX_SIZE ({settings.log_max_size})")
    return settings


def check_contexts(settings: Settings) -> None:
    """Every region's kubeconfig context exists (``@in-cluster`` needs the service account's token)."""
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    wanted = {region: context for region, context in settings.regions.items() if context != IN_CLUSTER}
    in_cluster = [region for region, context in settings.regions.items() if context == IN_CLUSTER]
    for region in in_cluster:
        if not os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"):
            raise InvalidSetting("regions", f"{region}={IN_CLUSTER}",
                                 "@in-cluster only inside a pod with a service account token")
    if not wanted:
        return
    try:
        contexts, current = k8s_config.list_kube_config_contexts()
    except (ConfigException, OSError) as exc:
        if all(context == CURRENT_CONTEXT for context in wanted.values()) and _in_a_pod():
            return  # kube.py then uses the pod's service account
        raise InvalidSetting("regions", _pairs(wanted), f"contexts of a readable kubeconfig ({exc})") from None
    names = {context["name"] for context in contexts}
    for region, context in wanted.items():
        if context == CURRENT_CONTEXT and current is None:
            raise InvalidSetting("regions", f"{region}=", "a context name: the kubeconfig has no current context")
        if context != CURRENT_CONTEXT and context not in names:
            raise InvalidSetting("regions", f"{region}={context}",
                                 f"contexts of the kubeconfig: {', '.join(sorted(names)) or 'none'}")


def _in_a_pod() -> bool:
    return "KUBERNETES_SERVICE_HOST" in os.environ


def _pairs(mapping: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in mapping.items())


# gunicorn.conf.py's own variables: name -> (what it accepts, check)
_GUNICORN: dict[str, tuple[str, Callable[[str], bool]]] = {
    "GATEWAY_WORKERS": ("a whole number from 1 to 64", lambda v: _int_within(v, 1, 64)),
    "GATEWAY_THREADS": ("a whole number from 1 to 1000", lambda v: _int_within(v, 1, 1000)),
    "GATEWAY_WORKER_CLASS": ("gevent or gthread", lambda v: v in ("gevent", "gthread")),
    "GATEWAY_WORKER_CONNECTIONS": ("a whole number from 1 to 100000", lambda v: _int_within(v, 1, 100000)),
    "GATEWAY_WORKER_TIMEOUT": ("a whole number of seconds from 1 to 3600", lambda v: _int_within(v, 1, 3600)),
    "GATEWAY_GRACEFUL_TIMEOUT": ("a whole number of seconds from 0 to 3600", lambda v: _int_within(v, 0, 3600)),
    "GATEWAY_LOG_LEVEL": (", ".join(LOG_LEVELS), lambda v: v.lower() in LOG_LEVELS),
}


def _int_within(text: str, low: int, high: int) -> bool:
    return text.strip().isascii() and text.strip().isdigit() and low <= int(text) <= high


def check_gunicorn(environ: Mapping[str, str]) -> None:
    bind = environ.get("GATEWAY_BIND")
    if bind:
        problem = bind_problem(bind)
        if problem:
            raise InvalidSetting("bind", bind, problem)
    for variable, (accepts, ok) in _GUNICORN.items():
        raw = environ.get(variable)
        if raw and not ok(raw):
            raise InvalidSetting(variable[len("GATEWAY_"):].lower(), raw, accepts)


def startup(environ: Mapping[str, str] | None = None, *, gunicorn: bool = False) -> Settings:
    """Everything a starting process checks: the settings (parsed and bounded), the region contexts and, for
    gunicorn, its own variables."""
    environ = os.environ if environ is None else environ
    settings = validate(config.from_env(environ))
    if gunicorn:
        check_gunicorn(environ)
    check_contexts(settings)
    return settings


def exit_if_invalid(environ: Mapping[str, str] | None = None, *, gunicorn: bool = False) -> None:
    """``startup``, or the process ends with status 2 and one line on standard error, no traceback."""
    try:
        startup(environ, gunicorn=gunicorn)
    except InvalidSetting as exc:
        print(f"tenx-gateway: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
