"""job.json from ``tenx run``'s flags: pure, never mutates its inputs (golden tests in tests/tenx/)."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

_VOLUME_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class RunFlags:
    """What the flags say; ``None`` (or empty) means "not given"."""

    image: str | None = None
    command: tuple[str, ...] = ()
    env: tuple[str, ...] = ()          # KEY=VALUE
    memory: str | None = None
    cpu: str | None = None
    volumes: tuple[str, ...] = ()      # NAME:/path[:ro]
    ports: tuple[str, ...] = ()        # 8080 or 8080/udp
    pull_always: bool | None = None
    sync_timezone: bool | None = None
    job: dict[str, int | None] = field(default_factory=dict)  # parallelism, completions, backoff_limit, ...


JOB_FIELDS = ("parallelism", "completions", "backoff_limit", "active_deadline_seconds", "ttl_seconds_after_finished")


def parse_env(item: str) -> dict[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise UsageError(f"--env {item!r}: expected KEY=VALUE")
    return {"name": name, "value": value}


def parse_volume(item: str) -> tuple[dict[str, str], dict[str, Any]]:
    """``data:/data`` or ``data:/data:ro`` -> the volume and its mount."""
    parts = item.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1] or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise UsageError(f"--volume {item!r}: expected NAME:/path or NAME:/path:ro")
    if not _VOLUME_NAME.fullmatch(parts[0]):
        raise UsageError(f"--volume {item!r}: the name must be lower-case letters, digits and '-'")
    mount: dict[str, Any] = {"name": parts[0], "mountPath": parts[1]}
    if len(parts) == 3 and parts[2] == "ro":
        mount["readOnly"] = True
    return {"name": parts[0], "type": "host"}, mount


def parse_port(item: str) -> dict[str, Any]:
    number, _, protocol = item.partition("/")
    if not number.isdigit():
        raise UsageError(f"--port {item!r}: expected PORT or PORT/tcp|udp|sctp")
    port: dict[str, Any] = {"port": int(number)}
    if protocol:
        port["protocol"] = protocol.upper()
    return port


def _merge_env(existing: list[dict[str, Any]], added: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Flags win over the file's variables of the same name; new names are appended in order."""
    names = {item["name"] for item in added}
    return [item for item in existing if item.get("name") not in names] + added


def build(flags: RunFlags, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job.json to send: ``base`` (from ``-f``) with the flags applied over it (container flags to its first
    container), or one container made from ``--image`` and the command."""
    spec = copy.deepcopy(base) if base else {}
    if not isinstance(spec, dict):
        raise UsageError("job.json must be a JSON object")
    containers = spec.get("containers")
    if containers is None:
        if not flags.image:
            raise UsageError("give -f job.json, or --image and a command after --")
        containers = spec["containers"] = [{}]
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        raise UsageError("job.json: containers must be a list of objects")
    first = containers[0]
    if flags.image:
        first["image"] = flags.image
    if flags.command:
        first["command"] = list(flags.command)
    if flags.pull_always is not None:
        first["pull_always"] = flags.pull_always
    if flags.env:
        first["env"] = _merge_env(first.get("env") or [], [parse_env(item) for item in flags.env])
    limits = {key: value for key, value in (("memory", flags.memory), ("cpu", flags.cpu)) if value}
    if limits:
        resources = first.setdefault("resources", {})
        resources["limits"] = {**(resources.get("limits") or {}), **limits}
    if flags.ports:
        first["ports"] = (first.get("ports") or []) + [parse_port(item) for item in flags.ports]
    for item in flags.volumes:
        volume, mount = parse_volume(item)
        volumes = spec.setdefault("volumes", [])
        if not any(existing.get("name") == volume["name"] for existing in volumes):
            volumes.append(volume)
        first["volumeMounts"] = (first.get("volumeMounts") or []) + [mount]
    if flags.sync_timezone is not None:
        spec["sync_timezone"] = flags.sync_timezone
    for key in JOB_FIELDS:
        if flags.job.get(key) is not None:
            spec[key] = flags.job[key]
    return spec


def read_spec(text: str, source: str) -> dict[str, Any]:
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(spec, dict):
        raise UsageError(f"{source}: job.json must be a JSON object")
    return spec
