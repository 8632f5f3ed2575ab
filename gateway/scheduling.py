"""Where the gateway's pods may run: the operator's GATEWAY_POD_NODE_SELECTOR and GATEWAY_POD_TOLERATIONS, parsed
into the pod template's ``nodeSelector`` and ``tolerations``. Pure; a bad value raises ``InvalidSetting`` (the process
then stops at startup, see settings_check).

- node selector: ``key=value,key=value`` (every label must match);
- tolerations: ``key[=value][:Effect],...``: with a value the toleration is ``Equal``, without one ``Exists``;
  without an effect it tolerates every effect. Effects: NoSchedule, PreferNoSchedule, NoExecute.

Example (the local cluster's real node, deploy/local/): ``GATEWAY_POD_NODE_SELECTOR=tenx.io/runtime=containerd``
and ``GATEWAY_POD_TOLERATIONS=tenx.io/runtime=containerd:NoSchedule``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .config import InvalidSetting, Settings

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# a label key: an optional DNS subdomain prefix and '/', then a name of up to 63 characters
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
LABEL_KEY = re.compile(rf"(?:[a-z0-9](?:[a-z0-9.-]{{0,251}}[a-z0-9])?/)?{_NAME}")
LABEL_VALUE = re.compile(rf"(?:{_NAME})?")

SELECTOR_ACCEPTS = "label=value,... (such as tenx.io/runtime=containerd), or empty"
TOLERATIONS_ACCEPTS = ("key[=value][:Effect],... with Effect one of NoSchedule, PreferNoSchedule, NoExecute "
                       "(such as tenx.io/runtime=containerd:NoSchedule), or empty")


@dataclass(frozen=True)
class PodScheduling:
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)


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


def pod_scheduling(settings: Settings) -> PodScheduling:
    return PodScheduling(parse_node_selector(settings.pod_node_selector), parse_tolerations(settings.pod_tolerations))


def apply(pod_spec: dict[str, Any], scheduling: PodScheduling | None) -> None:
    """Adds the fields to a pod spec being built (only those that are set, so the default template is unchanged)."""
    if scheduling is None:
        return
    if scheduling.node_selector:
        pod_spec["nodeSelector"] = dict(scheduling.node_selector)
    if scheduling.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in scheduling.tolerations]
