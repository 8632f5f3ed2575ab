"""The apiserver side: admin access over HTTP (a ServiceAccount bound to cluster-admin and its bearer token),
seeding suspended Jobs with concurrent POSTs, waiting, and cleanup. kubectl is used only for setup."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import requests

from tests.support.harness import wait_until

DELETE_BACKGROUND = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
_RETRY_STATUSES = {429, 500, 502, 503, 504}


class Kubectl:
    def __init__(self, kubectl: str, kubeconfig: str):
        self.kubectl, self.kubeconfig = kubectl, kubeconfig

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([self.kubectl, "--kubeconfig", self.kubeconfig, *args], capture_output=True,
                              text=True, check=check, timeout=timeout, stdin=subprocess.DEVNULL)


class Apiserver:
    """Direct HTTP to the apiserver: the same ``requests`` client as the gateway side, keep-alive, no gzip
    (the gateway's own apiserver calls are uncompressed, so the limit it is compared with is too)."""

    def __init__(self, kubectl: Kubectl, workdir: str):
        self._kubectl = kubectl
        self._workdir = workdir
        config = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
        cluster = config["clusters"][0]["cluster"]
        self.server = cluster["server"].rstrip("/")
        self.ca = self._file(cluster, "certificate-authority", "ca.crt")
        user = config["users"][0]["user"]
        self._cert = (self._file(user, "client-certificate", "client.crt"),
                      self._file(user, "client-key", "client.key"))
        self.token: str | None = None
        self.auth = "client certificate (kubeconfig)"

    def _file(self, section: dict[str, Any], key: str, name: str) -> str | None:
        if section.get(f"{key}-data"):
            path = os.path.join(self._workdir, name)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(base64.b64decode(section[f"{key}-data"]))
            return path
        return section.get(key)

    def use_admin_token(self, namespace: str, account: str, binding: str) -> None:
        """A ServiceAccount bound to cluster-admin; its token, not the kubeconfig's certificate, authenticates."""
        self._kubectl("-n", namespace, "create", "serviceaccount", account)
        self._kubectl("create", "clusterrolebinding", binding, "--clusterrole=cluster-admin",
                      f"--serviceaccount={namespace}:{account}")
        self.token = self._kubectl("-n", namespace, "create", "token", account, "--duration=4h").stdout.strip()
        self.auth = f"bearer token of ServiceAccount {namespace}/{account} bound to cluster-admin"
        # RBAC for a new binding reaches the authorizer's cache shortly after
        if not wait_until(lambda: self.session().get(self.server + "/apis/batch/v1/jobs?limit=1", timeout=10)
                          .status_code == 200, 30, interval=0.5):
            raise RuntimeError("the bench ServiceAccount's token was not authorised in 30 s")

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxy or CA-bundle variables from the environment, on either side
        session.verify = self.ca or True
        session.headers.update({"Accept": "application/json", "Accept-Encoding": "identity"})
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        else:
            session.cert = self._cert
        return session

    def url(self, path: str) -> str:
        return self.server + path


def jobs_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    return f"{path}/{name}" if name else path


def _post_with_retry(session: requests.Session, url: str, body: bytes, attempts: int = 6) -> int:
    for attempt in range(attempts):
        try:
            status = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
            status.content
            if status.status_code not in _RETRY_STATUSES:
                return status.status_code
        except requests.RequestException:
            pass
        time.sleep(min(2.0, 0.1 * 2 ** attempt))
    return 0


def seed_jobs(api: Apiserver, namespace: str, names: Iterable[str], manifest_for: Callable[[str], dict],
              concurrency: int = 16) -> dict[str, Any]:
    """POST the Jobs straight to the apiserver, ``concurrency`` at a time; 409 (already there) counts as done."""
    local = threading.local()
    url = api.url(jobs_path(namespace))

    def post(name: str) -> int:
        if not hasattr(local, "session"):
            local.session = api.session()
        return _post_with_retry(local.session, url, json.dumps(manifest_for(name)).encode())

    names = list(names)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(post, names))
    failed = sum(1 for s in statuses if s not in (201, 409))
    seconds = time.perf_counter() - start
    return {"jobs": len(names), "failed": failed, "seconds": round(seconds, 1),
            "jobs_per_s": round(len(names) / seconds, 1) if seconds else None}


def count_jobs(api: Apiserver, namespace: str) -> int:
    """The number of Jobs, paging with a small limit so that counting 10,000 stays cheap."""
    session, total, token = api.session(), 0, ""
    while True:
        query = {"limit": "500", "continue": token} if token else {"limit": "500"}
        page = session.get(api.url(jobs_path(namespace)), params=query, timeout=60).json()
        total += len(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return total


def wait_controller_settled(api: Apiserver, namespace: str, timeout: float = 120) -> dict[str, Any]:
    """Wait until the Job controller has written its condition on every seeded (suspended) Job, so that its
    status writes do not run during the measurements (a running Job, such as the running-log case's, has none yet
    and is not waited for). Returns the seconds waited and the Jobs still pending."""
    session, start, history = api.session(), time.monotonic(), []
    while time.monotonic() - start < timeout:
        pending, token = 0, ""
        while True:
            query = {"limit": "500", "continue": token} if token else {"limit": "500"}
            page = session.get(api.url(jobs_path(namespace)), params=query, timeout=60).json()
            pending += sum(1 for j in page.get("items") or [] if (j.get("spec") or {}).get("suspend")
                           and not (j.get("status") or {}).get("conditions"))
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                break
        history.append(pending)
        if pending == 0:
            break
        time.sleep(2)
    return {"settle_seconds": round(time.monotonic() - start, 1), "unsettled_jobs": history[-1] if history else None}


def wait_job_done(api: Apiserver, namespace: str, name: str, timeout: float = 300) -> dict:
    session, deadline = api.session(), time.monotonic() + timeout
    while True:
        job = session.get(api.url(jobs_path(namespace, name)), timeout=30).json()
        status = job.get("status") or {}
        if status.get("succeeded"):
            return job
        if status.get("failed") or time.monotonic() > deadline:
            raise RuntimeError(f"job {namespace}/{name} did not succeed: {json.dumps(status)[:500]}")
        time.sleep(0.5)


def delete_namespaces(api: Apiserver, names: list[str], wait: float) -> dict[str, str]:
    """Delete the namespaces (and everything in them); wait up to ``wait`` seconds for them to be gone."""
    session, outcome = api.session(), {}
    for name in names:
        r = session.delete(api.url(f"/api/v1/namespaces/{name}"), json=DELETE_BACKGROUND, timeout=60)
        outcome[name] = "deleting" if r.status_code in (200, 202) else ("absent" if r.status_code == 404
                                                                          else f"HTTP {r.status_code}")
    deadline = time.monotonic() + wait
    for name in names:
        while outcome[name] == "deleting" and time.monotonic() < deadline:
            if session.get(api.url(f"/api/v1/namespaces/{name}"), timeout=30).status_code == 404:
                outcome[name] = "deleted"
            else:
                time.sleep(1)
    return outcome


def workdir() -> str:
    return tempfile.mkdtemp(prefix="tenx-bench-")
