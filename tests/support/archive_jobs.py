"""Shell jobs whose logs the archive keeps, and waiting for their pods to go, for the integration tests of logs that
outlive their pods."""
from __future__ import annotations

import datetime as dt
import secrets

from .conditions import until


def job_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def shell_job(script: str, **extra) -> dict:
    return {"containers": [{"image": "busybox", "command": ["sh", "-c", script]}], **extra}


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d")


def wait_until(check, timeout: float = 60, what: str = "condition"):
    return until(check, timeout, what, interval=0.5)


def pods_gone(local_cluster, namespace: str, job: str) -> bool:
    out = local_cluster.kubectl_run("get", "pods", "-n", namespace, "-l", f"job-name={job}", "-o", "name").stdout
    return out.strip() == ""


def namespace_of(user, gateway) -> str:
    from gateway.names import namespace_for
    return namespace_for(user.username, gateway.namespace_prefix)
