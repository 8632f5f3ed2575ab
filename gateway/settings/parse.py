"""``GATEWAY_*`` text -> values: what each setting's text may look like, one place for each.

Pure. A value that cannot be read raises ``InvalidSetting``, which names the variable and what it accepts.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import fields
from typing import Any, Mapping

from .model import InvalidSetting, Settings

def _pairs(variable: str, text: str, *, value_required: bool) -> dict[str, str]:
    """``"a=x, b=y"`` -> ``{"a": "x", "b": "y"}``, naming the variable in any complaint."""
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = (side.strip() for side in item.partition("="))
        if not key or (value_required and not value):
            raise InvalidSetting(variable[len("GATEWAY_"):], text, "name=value,name=value,...")
        pairs[key] = value
    return pairs


def parse_regions(text: str) -> dict[str, str]:
    """``"us=ctx-a,eu=ctx-b"`` -> ``{"us": "ctx-a", "eu": "ctx-b"}``; a bare name uses the current context."""
    regions = _pairs("GATEWAY_REGIONS", text, value_required=False)
    if not regions:
        raise InvalidSetting("regions", text, "name=context,... naming at least one region")
    return regions


def parse_display_names(text: str) -> dict[str, str]:
    """``"us=North America,eu=Europe"`` -> ``{"us": "North America", "eu": "Europe"}``."""
    return _pairs("GATEWAY_REGION_DISPLAY_NAMES", text, value_required=True)


_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def _coerce(name: str, kind: type, raw: str) -> Any:
    if kind is bool:  # bool("false") would be True
        if raw.strip().lower() not in _BOOLEANS:
            raise InvalidSetting(name, raw, "true or false")
        return _BOOLEANS[raw.strip().lower()]
    text = raw.strip()
    try:
        if kind is int and not _whole_number(text.lstrip("-")):
            raise ValueError(text)
        return kind(text)
    except ValueError:
        noun = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
        raise InvalidSetting(name, raw, noun) from None


def _whole_number(text: str) -> bool:
    """ASCII digits only: Python's int() also takes "1_000", other scripts' digits and a leading sign."""
    return text.isascii() and text.isdigit()


def read(environ: Mapping[str, str]) -> dict[str, Any]:
    """The values the environment sets, read (not yet bounded: ``check.validate`` does that)."""
    defaults = Settings()
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
            values[f.name] = _coerce(f.name, type(getattr(defaults, f.name)), raw)
    return values


# -- where the gateway's pods may run (jobs/scheduling.py turns these into the pod template) ---------------------

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# a label key: an optional DNS subdomain prefix and '/', then a name of up to 63 characters
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
LABEL_KEY = re.compile(rf"(?:[a-z0-9](?:[a-z0-9.-]{{0,251}}[a-z0-9])?/)?{_NAME}")
LABEL_VALUE = re.compile(rf"(?:{_NAME})?")

SELECTOR_ACCEPTS = "label=value,... (such as tenx.io/runtime=containerd), or empty"
TOLERATIONS_ACCEPTS = ("key[=value][:Effect],... with Effect one of NoSchedule, PreferNoSchedule, NoExecute "
                       "(such as tenx.io/runtime=containerd:NoSchedule), or empty")


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_node_selector(text: str) -> dict[str, str]:
    selector: dict[str, str] = {}
    for item in _items(text):
        key, sep, value = item.partition("=")
        if not sep or not LABEL_KEY.fullmatch(key) or not LABEL_VALUE.fullmatch(value) or key in selector:
            raise InvalidSetting("pod_node_selector", text, SELECTOR_ACCEPTS)
        selector[key] = value
    return selector


def parse_tolerations(text: str) -> list[dict[str, str]]:
    tolerations: list[dict[str, str]] = []
    for item in _items(text):
        rest, colon, effect = item.rpartition(":") if ":" in item else (item, "", "")
        key, equals, value = rest.partition("=")
        if (not LABEL_KEY.fullmatch(key) or (equals and not LABEL_VALUE.fullmatch(value))
                or (colon and effect not in EFFECTS)):
            raise InvalidSetting("pod_tolerations", text, TOLERATIONS_ACCEPTS)
        toleration = {"key": key, "operator": "Equal" if equals else "Exists"}
        if equals:
            toleration["value"] = value
        if colon:
            toleration["effect"] = effect
        tolerations.append(toleration)
    return tolerations


# -- the tenants' blocked egress ---------------------------------------------------------------------------------

APISERVER = "@apiserver"  # in GATEWAY_TENANT_EGRESS_DENY: the Kubernetes API's addresses, found at run time


def parse_egress(text: str) -> tuple[list[str], bool]:
    """GATEWAY_TENANT_EGRESS_DENY -> (its CIDRs, whether it names ``@apiserver``); ValueError if a part is neither."""
    cidrs, apiserver = [], False
    for item in (part.strip() for part in text.split(",")):
        if item == APISERVER:
            apiserver = True
        elif item:
            cidrs.append(str(ipaddress.ip_network(item, strict=False)))
    return cidrs, apiserver
