"""job.json (as loaded by ``JobSpecSchema``) -> a batch/v1 Job manifest. Pure: no I/O, inputs never mutated.

Every pod is locked down the same way, whatever job.json says (it has no field for any of this): no service account
token, no privilege escalation, the runtime's default seccomp profile, never privileged, no host namespaces. Root
inside the container stays allowed: the original ran arbitrary images as their own user, and most public images
run as root; without escalation, privileges or a token, that root cannot reach past its container's limits.
"""
from __future__ import annotations

import posixpath
from typing import Any

from . import scheduling as _scheduling
from .names import (JOB_NAME_LABEL, MANAGED_BY, MANAGED_BY_LABEL, QUEUE_LABEL, USERNAME_ANNOTATION,
                    container_names)
from .schemas import TIMEZONE_VOLUME

LOCALTIME = "/etc/localtime"
POD_SECURITY_CONTEXT = {"seccompProfile": {"type": "RuntimeDefault"}}
# seccomp on the pod covers every container; said again per container for tools that look only there
CONTAINER_SECURITY_CONTEXT = {"allowPrivilegeEscalation": False, "privileged": False,
                              "seccompProfile": {"type": "RuntimeDefault"}}

# job.json extension -> Job spec field, copied when given
_JOB_SPEC_EXTENSIONS = {
    "parallelism": "parallelism",
    "completions": "completions",
    "backoff_limit": "backoffLimit",
    "active_deadline_seconds": "activeDeadlineSeconds",
    "ttl_seconds_after_finished": "ttlSecondsAfterFinished",
}


def host_volume_path(root: str, username: str, job_name: str, volume_name: str) -> str:
    """The original's layout: ``<root>/<username>/job/<job>/<volume>``; every part is a checked name."""
    return posixpath.join(root, username, "job", job_name, volume_name)


def build_job(spec: dict[str, Any], *, name: str, namespace: str, username: str,
              host_volume_root: str, scheduling: _scheduling.PodScheduling | None = None,
              queue: str | None = None) -> dict[str, Any]:
    """``scheduling``: the operator's nodeSelector and tolerations (GATEWAY_POD_*), the same for every pod.
    ``queue``: the LocalQueue the Job waits in (GATEWAY_QUEUE=kueue); it is created suspended, and Kueue
    unsuspends it when it admits it."""
    # managed-by on the pods too: the collector's watch selects them by it, server side
    labels = {JOB_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}
    job_spec: dict[str, Any] = {"parallelism": 1, "completions": 1}
    if queue is not None:
        job_spec["suspend"] = True
    for key, field in _JOB_SPEC_EXTENSIONS.items():
        if spec.get(key) is not None:
            job_spec[field] = spec[key]
    job_spec["template"] = {
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": _pod_spec(spec, name=name, username=username, host_volume_root=host_volume_root),
    }
    _scheduling.apply(job_spec["template"]["spec"], scheduling)
    job_labels = dict(labels) if queue is None else {**labels, QUEUE_LABEL: queue}  # the Job's, not its pods'
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": job_labels},
        "spec": job_spec,
    }


def _pod_spec(spec: dict[str, Any], *, name: str, username: str, host_volume_root: str) -> dict[str, Any]:
    volumes = [
        {"name": v["name"], "hostPath": {"path": host_volume_path(host_volume_root, username, name, v["name"]),
                                         "type": "DirectoryOrCreate"}}
        for v in spec.get("volumes", [])
    ]
    if spec.get("sync_timezone"):
        volumes.append({"name": TIMEZONE_VOLUME, "hostPath": {"path": LOCALTIME}})
    names = container_names(name, len(spec["containers"]))
    pod_spec: dict[str, Any] = {
        "containers": [_container(c, name=names[i], sync_timezone=spec.get("sync_timezone", False))
                       for i, c in enumerate(spec["containers"])],
        "restartPolicy": "OnFailure",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "automountServiceAccountToken": False,
        "securityContext": _copy(POD_SECURITY_CONTEXT),
    }
    if volumes:
        pod_spec["volumes"] = volumes
    return pod_spec


def _container(container: dict[str, Any], *, name: str, sync_timezone: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "image": container["image"]}
    if container.get("command") is not None:
        result["command"] = list(container["command"])
    if container.get("args") is not None:
        result["args"] = list(container["args"])
    if container.get("env"):
        result["env"] = [{"name": e["name"], "value": e["value"]} for e in container["env"]]
    if container.get("ports"):
        result["ports"] = [{"containerPort": p["port"], "protocol": p["protocol"]} for p in container["ports"]]
    limits = {k: v for k, v in container.get("resources", {}).get("limits", {}).items() if v is not None}
    if limits:
        result["resources"] = {"limits": limits}
    mounts = [_mount(m) for m in container.get("volume_mounts", [])]
    if sync_timezone:
        mounts.append({"name": TIMEZONE_VOLUME, "readOnly": True, "mountPath": LOCALTIME})
    if mounts:
        result["volumeMounts"] = mounts
    if container.get("pull_always") is not None:
        result["imagePullPolicy"] = "Always" if container["pull_always"] else "IfNotPresent"
    result["securityContext"] = _copy(CONTAINER_SECURITY_CONTEXT)
    return result


def _copy(context: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy per use, so no two manifests (or a caller's edit of one) share a nested dict."""
    return {key: dict(value) if isinstance(value, dict) else value for key, value in context.items()}


def _mount(mount: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"name": mount["name"], "mountPath": mount["mount_path"]}
    if mount.get("read_only"):
        result["readOnly"] = True
    return result


def namespace_manifest(name: str, username: str | None = None) -> dict[str, Any]:
    """A namespace the gateway manages: its own, or a user's (annotated with the user name)."""
    metadata: dict[str, Any] = {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY}}
    if username is not None:
        metadata["annotations"] = {USERNAME_ANNOTATION: username}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
