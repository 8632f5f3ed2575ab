"""The operations compared: each gateway call and its direct equivalent at the apiserver, as ``Side``s."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any, Callable

import requests

from tests.support.seed import SEED_JOB

from .cluster import DELETE_BACKGROUND, Apiserver, jobs_path
from .measure import Side, UnexpectedResponse, expect

# The seed job.json (tests/support/seed.py), with parallelism 0 so that the many Jobs the bench creates start no pods.
CREATE_SPEC: dict[str, Any] = {**SEED_JOB, "parallelism": 0}


def gateway_manifest(spec: dict[str, Any], *, name: str, namespace: str, username: str,
                     volume_root: str) -> dict[str, Any]:
    """The Job the gateway makes of ``spec``: built by the gateway's own code, so the direct POST sends the
    same object."""
    from gateway.jobs.manifest import build_job
    from gateway.api.schemas import JobSpecSchema
    return build_job(JobSpecSchema().load(spec), name=name, namespace=namespace, username=username,
                     host_volume_root=volume_root)


@dataclass
class Target:
    """Where the two sides point: the gateway (URL and a user's credentials) and the apiserver."""

    gateway_url: str
    username: str
    token: str
    api: Apiserver
    namespace: str
    volume_root: str

    @property
    def base(self) -> str:
        return f"{self.gateway_url}/v1/regions/us"

    def gateway_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # as on the direct side
        session.headers.update({"username": self.username, "Authorization": f"token {self.token}",
                                "Accept-Encoding": "identity"})
        return session

    def manifest(self, name: str, **spec_overrides: Any) -> dict[str, Any]:
        return gateway_manifest({**CREATE_SPEC, **spec_overrides}, name=name, namespace=self.namespace,
                                username=self.username, volume_root=self.volume_root)

    def sides(self, gateway_op: Callable, direct_op: Callable) -> tuple[Side, Side]:
        return Side("gateway", self.gateway_session, gateway_op), Side("direct", self.api.session, direct_op)


def get_sides(t: Target, job: dict[str, Any]) -> tuple[Side, Side]:
    """Gateway GET /jobs/<name> against what it does: GET the Job, then LIST pods by the Job's selector (the
    client knows the selector in advance, so the direct side does not even parse the Job)."""
    name = job["metadata"]["name"]
    labels = job["spec"]["selector"]["matchLabels"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    job_url, pods_url = t.api.url(jobs_path(t.namespace, name)), t.api.url(f"/api/v1/namespaces/{t.namespace}/pods")

    def gateway(session: requests.Session, i: int) -> None:
        expect(session.get(f"{t.base}/jobs/{name}", timeout=60), 200)

    def direct(session: requests.Session, i: int) -> None:
        expect(session.get(job_url, timeout=60), 200)
        expect(session.get(pods_url, params={"labelSelector": selector}, timeout=60), 200)

    return t.sides(gateway, direct)


def create_sides(t: Target, prefix: str, count: int) -> tuple[Side, Side, list[str], list[str]]:
    """POST /jobs/<name> with job.json against POST of the Job the gateway would build. Returns the sides and
    the lists their created names go to (for the delete case)."""
    made_gw: list[str] = []
    made_direct: list[str] = []
    body = json.dumps(CREATE_SPEC).encode()
    counter_gw, counter_direct = itertools.count(), itertools.count()
    url = t.api.url(jobs_path(t.namespace))
    manifests = {}

    def gateway(session: requests.Session, i: int) -> None:
        name = f"{prefix}-g{next(counter_gw):05d}"
        expect(session.post(f"{t.base}/jobs/{name}", data=body, headers={"Content-Type": "application/json"},
                            timeout=60), 200)
        made_gw.append(name)

    def direct(session: requests.Session, i: int) -> None:
        name = f"{prefix}-d{next(counter_direct):05d}"
        payload = manifests.pop(name, None) or json.dumps(t.manifest(name)).encode()
        expect(session.post(url, data=payload, headers={"Content-Type": "application/json"}, timeout=60), 201)
        made_direct.append(name)

    # Build the direct side's manifests ahead, as a client holding its manifest would: only the POST is timed.
    for k in range(count):
        name = f"{prefix}-d{k:05d}"
        manifests[name] = json.dumps(t.manifest(name)).encode()
    gw, dr = t.sides(gateway, direct)
    return gw, dr, made_gw, made_direct


def delete_sides(t: Target, names_gw: list[str], names_direct: list[str]) -> tuple[Side, Side]:
    """DELETE /jobs/<name> against DELETE of the Job with propagationPolicy Background (what the gateway sends)."""
    body = json.dumps(DELETE_BACKGROUND).encode()
    queue_gw, queue_direct = iter(list(names_gw)), iter(list(names_direct))

    def gateway(session: requests.Session, i: int) -> None:
        name = next(queue_gw, None)
        if name is None:
            raise UnexpectedResponse("no job left to delete")
        expect(session.delete(f"{t.base}/jobs/{name}", timeout=60), 200)

    def direct(session: requests.Session, i: int) -> None:
        name = next(queue_direct, None)
        if name is None:
            raise UnexpectedResponse("no job left to delete")
        expect(session.delete(t.api.url(jobs_path(t.namespace, name)), data=body,
                              headers={"Content-Type": "application/json"}, timeout=60), 200, 202)

    return t.sides(gateway, direct)


def list_sides(t: Target) -> tuple[Side, Side]:
    url = t.api.url(jobs_path(t.namespace))

    def gateway(session: requests.Session, i: int) -> None:
        expect(session.get(f"{t.base}/jobs", timeout=120), 200)

    def direct(session: requests.Session, i: int) -> None:
        expect(session.get(url, timeout=120), 200)

    return t.sides(gateway, direct)


def log_sides(t: Target, job: str, pod: str, container: str, offset: int, size: int,
              day: str | None = None) -> tuple[Side, Side]:
    """A ``size``-line slice from the gateway against reading the whole log directly and slicing it here.

    With ``day`` (YYYY.MM.DD) the direct side reads the log with timestamps since the day's start, as the
    gateway does, and keeps that day's lines, stopping once it has the slice."""
    params: dict[str, Any] = {"from": offset, "size": size}
    query: dict[str, Any] = {"container": container}
    if day:
        params["date"] = day
        iso = day.replace(".", "-")
        query.update(timestamps="true", sinceTime=f"{iso}T00:00:00Z")
    log_url = t.api.url(f"/api/v1/namespaces/{t.namespace}/pods/{pod}/log")
    gateway_url = f"{t.base}/jobs/{job}/instances/{pod}/logs"

    def gateway(session: requests.Session, i: int) -> None:
        lines = json.loads(expect(session.get(gateway_url, params=params, timeout=120), 200))
        if len(lines) != size:
            raise UnexpectedResponse(f"gateway returned {len(lines)} lines, expected {size}")

    def direct(session: requests.Session, i: int) -> None:
        body = expect(session.get(log_url, params=query, timeout=120), 200)
        if day:
            lines = _day_slice(body, iso, offset, size)
        else:
            lines = [line.decode("utf-8", "replace") for line in body.split(b"\n")[offset:offset + size]]
        if len(lines) != size:
            raise UnexpectedResponse(f"direct slice has {len(lines)} lines, expected {size}")

    return t.sides(gateway, direct)


def _day_slice(body: bytes, iso_day: str, offset: int, size: int) -> list[str]:
    prefix, out, seen = iso_day.encode(), [], 0
    for line in body.split(b"\n"):
        if not line.startswith(prefix):
            continue
        if seen >= offset:
            out.append(line.partition(b" ")[2].decode("utf-8", "replace"))
            if len(out) == size:
                break
        seen += 1
    return out


def check_log_page(t: Target, job: str, pod: str, container: str, offset: int, size: int,
                   day: str | None = None) -> str:
    """One untimed comparison: the gateway's page against the direct slice."""
    params: dict[str, Any] = {"from": offset, "size": size, **({"date": day} if day else {})}
    query: dict[str, Any] = {"container": container}
    if day:
        query.update(timestamps="true", sinceTime=f"{day.replace('.', '-')}T00:00:00Z")
    gateway = t.gateway_session().get(f"{t.base}/jobs/{job}/instances/{pod}/logs", params=params, timeout=120)
    body = t.api.session().get(t.api.url(f"/api/v1/namespaces/{t.namespace}/pods/{pod}/log"), params=query,
                               timeout=120).content
    expected = (_day_slice(body, day.replace(".", "-"), offset, size) if day else
                [line.decode("utf-8", "replace") for line in body.split(b"\n")[offset:offset + size]])
    return "same lines" if gateway.status_code == 200 and gateway.json() == expected else (
        f"DIFFERENT: gateway {gateway.status_code} {gateway.text[:200]!r}, direct {expected[:3]}...")


def check_list(t: Target) -> str:
    """One untimed comparison: the gateway's jobs against the apiserver's, by name, each with its selfLink."""
    gateway = t.gateway_session().get(f"{t.base}/jobs", timeout=120)
    items = t.api.session().get(t.api.url(jobs_path(t.namespace)), timeout=120).json().get("items") or []
    if gateway.status_code != 200:
        return f"DIFFERENT: gateway {gateway.status_code} {gateway.text[:200]!r}"
    jobs = gateway.json().get("jobs") or []
    same = sorted(j["metadata"]["name"] for j in jobs) == sorted(j["metadata"]["name"] for j in items)
    linked = all(j["metadata"].get("selfLink") == f"/apis/batch/v1/namespaces/{t.namespace}/jobs/"
                 f"{j['metadata']['name']}" for j in jobs)
    return "same jobs, selfLinks set" if same and linked else (
        f"DIFFERENT: {len(jobs)} jobs from the gateway, {len(items)} direct, selfLinks {'ok' if linked else 'wrong'}")
