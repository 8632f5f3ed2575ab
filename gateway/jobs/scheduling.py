"""Where the gateway's pods may run: the operator's GATEWAY_POD_NODE_SELECTOR and GATEWAY_POD_TOLERATIONS, parsed
into the pod template's ``nodeSelector`` and ``tolerations`` (the text is read in gateway/settings/parse.py, and a bad
value stops the process at start).

- node selector: ``key=value,key=value`` (every label must match);
- tolerations: ``key[=value][:Effect],...``: with a value the toleration is ``Equal``, without one ``Exists``;
  without an effect it tolerates every effect. Effects: NoSchedule, PreferNoSchedule, NoExecute.

Example (the local cluster's real node, deploy/local/): ``GATEWAY_POD_NODE_SELECTOR=tenx.io/runtime=containerd``
and ``GATEWAY_POD_TOLERATIONS=tenx.io/runtime=containerd:NoSchedule``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..settings import Settings
from ..settings.parse import parse_node_selector, parse_tolerations

@dataclass(frozen=True)
class PodScheduling:
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)


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
