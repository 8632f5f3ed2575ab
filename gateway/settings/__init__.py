"""Settings: defaults (``model``), then ``GATEWAY_*`` environment variables (``parse``), then a test mapping;
checked once (``check``) when a process starts, and the one ``Settings`` passed on from there, gunicorn's config
included.

``from_env`` builds and checks them; ``startup`` also checks that every region's kubeconfig context is there;
``exit_if_invalid`` is ``startup`` for a process that must stop with one line instead of a traceback.
"""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Any, Mapping

from .check import check_contexts, validate
from .model import CURRENT_CONTEXT, IN_CLUSTER, InvalidSetting, Settings
from .parse import parse_display_names, parse_regions, read

__all__ = ["CURRENT_CONTEXT", "IN_CLUSTER", "InvalidSetting", "Settings", "exit_if_invalid", "from_env",
           "parse_display_names", "parse_regions", "startup"]


def from_env(environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings, checked: a bad value raises ``InvalidSetting``."""
    values = read(os.environ if environ is None else environ)
    values.update(overrides or {})
    return validate(replace(Settings(), **values))


def startup(environ: Mapping[str, str] | None = None) -> Settings:
    """Everything a starting process checks: the settings (read, bounded) and the region contexts."""
    settings = from_env(environ)
    check_contexts(settings)
    return settings


def exit_if_invalid(environ: Mapping[str, str] | None = None) -> Settings:
    """``startup``'s settings, or the process ends with status 2 and one line on standard error, no traceback."""
    try:
        return startup(environ)
    except InvalidSetting as exc:
        print(f"tenx-gateway: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
