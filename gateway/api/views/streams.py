"""The stream calls (docs/api.md, "Follow and watch"): ``follow=true`` on the two logs calls (their views in
views/jobs.py hand over to ``follow_instance_response`` / ``follow_job_response``), watching a job, and stream
tokens for browsers."""
from __future__ import annotations

import functools
import re
import time

import orjson
from flask import Blueprint, Response, current_app, g, request
from marshmallow import ValidationError

from ... import errors
from .. import inflight, metrics
from ...jobs import calls as jobs
from ..auth import authenticate, authenticate_stream
from ...names import is_dns1123_label, is_pod_name
from ..respond import json_response
from ...logs.text import LOG_MAX_OFFSET
from ..schemas import LogsQuerySchema
from ...streams import runner, slots, sse
from ...streams import token as stream_token
from ...logs.instance import require_instance, require_job
from ...streams.follow import Where, follow_instance, follow_job, parsed
from ...streams.watch import watch_job, watch_jobs
from ...jobs.tenancy import Tenant

bp = Blueprint("streams", __name__, url_prefix="/v1/regions/<region>")

_FOLLOW = {"true": True, "1": True, "false": False, "0": False, "": False}
RESUME_HEADER = "Last-Event-ID"
RESUME_PARAMETER = "last_event_id"
_LINE_OFFSET = re.compile(r"-?[0-9]{1,20}")  # ASCII digits only: int() would take "\u0663" or "1_000"


def follow_requested() -> bool:
    """``follow=true``/``1`` (a stream) or ``false``/``0``/empty/absent (the paged call); anything else is 400."""
    value = request.args.get("follow")
    if value is None:
        return False
    if value.lower() not in _FOLLOW:
        raise errors.BadRequest("invalid request: see errors", errors={"follow": ["must be true or false"]})
    return _FOLLOW[value.lower()]


_STREAM_SWITCH = {"jobs.instance_logs": "follow", "jobs.job_logs": "follow", "jobs.list_jobs": "watch"}


def stream_asked() -> bool:
    """Whether this call of views/jobs.py is a stream (``follow=true`` logs, ``watch=true`` list), without
    complaints: for choosing how to authenticate (credentials come first)."""
    switch = _STREAM_SWITCH.get(request.endpoint or "")
    return switch is not None and (request.args.get(switch) or "").lower() in ("true", "1")


def watch_requested() -> bool:
    """``GET /jobs?watch=true``/``1``: the list as a stream of changes; anything else is the list itself."""
    return (request.args.get("watch") or "").lower() in ("true", "1")


def _gateway():
    return current_app.extensions["tenx"]


@bp.url_value_preprocessor
def _pull_region(endpoint, values):
    g.region = values.pop("region")


@bp.before_request
def _authenticate_and_scope():
    gateway = _gateway()
    how = authenticate if request.endpoint == "streams.create_stream_token" else functools.partial(
        authenticate_stream, query=request.args, region=g.region)
    username = how(request.headers, users=gateway.users, throttle=gateway.login_throttle,
                   client=request.remote_addr or "")
    if request.endpoint == "streams.create_stream_token":
        inflight.admit(username, gateway.settings)  # an ordinary call; streams have a cap of their own
    gateway.regions.require(g.region)
    g.tenant = Tenant.of(username, g.region, gateway.settings)


def _start_of_stream() -> Where:
    """Where the stream starts: ``Last-Event-ID`` (or ``last_event_id``) N means N+1 and wins over ``from``;
    ``size`` is checked as the paged call checks it (garbage is a 400, not a stream) and otherwise ignored; ``since``
    then moves on to the first line that recent, ``timestamps`` adds each line's."""
    settings = _gateway().settings
    args = {k: v for k, v in request.args.to_dict().items() if k in ("date", "from", "size", "since", "timestamps")}
    query = LogsQuerySchema(default_size=settings.log_default_size, max_size=settings.log_max_size).load(args)
    offset = query["offset"]
    # empty is absent, as for the paged call's parameters; past the largest ``from`` the stores could overflow
    resume = request.headers.get(RESUME_HEADER) or request.args.get(RESUME_PARAMETER) or ""
    if resume:
        if not (_LINE_OFFSET.fullmatch(resume) and -1 <= int(resume) < LOG_MAX_OFFSET):
            raise ValidationError(f"must be a line offset (a whole number from -1 to {LOG_MAX_OFFSET - 1})",
                                  RESUME_PARAMETER)
        offset = int(resume) + 1
    return Where(offset, query["date"], settings.log_timezone, settings.log_max_bytes, since=query["since"],
                 timestamps=query["timestamps"])


def _stream(produce) -> Response:
    """The SSE response of ``produce(out)``, within the user's cap (429 over it). A HEAD answers as the GET would
    and holds nothing: no slot, no producer (its body is never read, so nothing would end them)."""
    gateway = _gateway()
    settings, username = gateway.settings, g.tenant.username
    slot = slots.acquire(username, settings.stream_max_per_user)
    if slot is None:
        metrics.STREAMS_REFUSED.inc()
        raise errors.TooManyRequests(
            f"at most {settings.stream_max_per_user} streams at once per user (GATEWAY_STREAM_MAX_PER_USER)",
            headers={"Retry-After": str(settings.retry_after_seconds)})
    if request.method == "HEAD":
        slot.release()
        return Response(iter(()), mimetype=sse.CONTENT_TYPE, headers=sse.HEADERS)  # no Content-Length: as the GET
    limits = runner.Limits(settings.stream_heartbeat_seconds, settings.stream_idle_seconds,
                           settings.stream_max_seconds)
    digest = gateway.users.stored_digest(username)
    return Response(runner.body(produce, limits, on_close=slot.release,
                                still_allowed=lambda: gateway.users.stored_digest(username) == digest),
                    mimetype=sse.CONTENT_TYPE, headers=sse.HEADERS)


def follow_instance_response(job_name: str, instance: str) -> Response:
    gateway = _gateway()
    where = _start_of_stream()
    not_found = errors.NotFound(f"instance {instance!r} of job {job_name!r} not found")
    if not is_dns1123_label(job_name) or not is_pod_name(instance):
        raise not_found
    kube, archive, tenant = gateway.regions.get(g.region), gateway.archive.get(), g.tenant
    live = require_instance(kube, archive, tenant, job_name, instance)
    return _stream(lambda out: follow_instance(kube, archive, tenant, job_name, instance, where, out, live))


def follow_job_response(job_name: str) -> Response:
    gateway = _gateway()
    where = _start_of_stream()
    kube, archive, tenant = gateway.regions.get(g.region), gateway.archive.get(), g.tenant
    if not is_dns1123_label(job_name):
        raise errors.NotFound(f"job {job_name!r} not found")
    require_job(kube, archive, tenant, job_name)
    return _stream(lambda out: follow_job(kube, archive, tenant, job_name, where, out, jobs.get_job, jobs.instances))


@bp.get("/jobs/<job_name>/watch", strict_slashes=False)
def watch(job_name: str):
    """A job's status, conditions and instances at the start and at each change; ``end`` when it is over."""
    gateway = _gateway()
    kube, archive, tenant = gateway.regions.get(g.region), gateway.archive.get(), g.tenant
    if not is_dns1123_label(job_name):
        raise errors.NotFound(f"job {job_name!r} not found")

    def look():
        try:
            job = parsed(jobs.get_job(kube, tenant, job_name))
        except errors.NotFound:
            raise errors.NotFound(f"job {job_name!r} not found") from None
        return job, jobs.instances(kube, archive, tenant, job_name)["instances"]

    look()  # a job that does not exist is a 404 before the stream starts
    return _stream(lambda out: watch_job(look, out))


def watch_jobs_response() -> Response:
    """``GET /jobs?watch=true``: the user's jobs as ADDED, then each MODIFIED or DELETED."""
    gateway = _gateway()
    kube, tenant, limit = gateway.regions.get(g.region), g.tenant, gateway.settings.list_max_jobs

    def list_jobs():
        body = jobs.list_jobs_body(kube, tenant, limit)
        try:
            return orjson.loads(b"".join(body))["jobs"]
        finally:
            getattr(body, "close", lambda: None)()

    list_jobs()  # a cluster that cannot list is a 503 before the stream starts
    return _stream(lambda out: watch_jobs(list_jobs, out))


@bp.post("/stream-tokens", strict_slashes=False)
def create_stream_token():
    """A token that opens a stream calls instead of the headers, for ``expires_in`` seconds (EventSource)."""
    gateway = _gateway()
    settings = gateway.settings
    digest = gateway.users.stored_digest(g.tenant.username)
    if digest is None:  # removed between the login and now
        raise errors.Unauthorized("invalid username or token")
    issued = stream_token.issue(g.tenant.username, g.region, stream_token.signing_key(digest), now=time.time(),
                                lifetime=settings.stream_token_seconds)
    return json_response({"stream_token": issued, "expires_in": settings.stream_token_seconds})
