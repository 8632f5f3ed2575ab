"""The five calls of the original Jobs API, under ``/v1/regions/<region>``."""
from __future__ import annotations

import orjson
from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import errors, inflight, joblist, jobs, logs
from ..auth import authenticate, authenticate_stream
from ..names import is_dns1123_label, is_pod_name
from ..respond import json_response
from ..schemas import JobLimits, JobSpecSchema, LogsQuerySchema, job_name_errors
from ..tenancy import Tenant
from . import streams

bp = Blueprint("jobs", __name__, url_prefix="/v1/regions/<region>")

# The original's clients may add a trailing slash ("/jobs/", "/jobs/<name>/"): every route answers it exactly as
# without one (strict_slashes=False: the same view, no redirect, the same route label in the metrics).
_SAME_WITH_SLASH = {"strict_slashes": False}

LOG_TRUNCATED_HEADER = "X-Log-Truncated"
LOG_OFFSET_HEADER = "X-Log-Offset"


@bp.url_value_preprocessor
def _pull_region(endpoint, values):
    g.region = values.pop("region")


@bp.before_request
def _authenticate_and_scope():
    """Credentials first, so an unauthenticated caller learns nothing, not even which regions exist."""
    gateway = current_app.extensions["tenx"]
    if streams.stream_asked():  # follow=true logs, watch=true list: the headers or a stream token
        username = authenticate_stream(request.headers, request.args, gateway.users, gateway.login_throttle,
                                       request.remote_addr or "", g.region)
    else:
        username = authenticate(request.headers, gateway.users, gateway.login_throttle, request.remote_addr or "")
        inflight.admit(username, gateway.settings)  # streams have a cap of their own
    gateway.regions.require(g.region)
    g.tenant = Tenant.of(username, g.region, gateway.settings)


def _kube():
    """The region's client, built on first use; validation errors never wait for it."""
    return current_app.extensions["tenx"].regions.get(g.region)


def _logs_query(settings):
    return LogsQuerySchema(default_size=settings.log_default_size,
                           max_size=settings.log_max_size).load(request.args.to_dict())


def _archive():
    return current_app.extensions["tenx"].archive.get()


def _existing_job_name(name: str) -> str:
    """A name that cannot be a Job's is simply not found, however it is spelled."""
    if not is_dns1123_label(name):
        raise errors.NotFound(f"job {name!r} not found")
    return name


def _log_response(page: logs.Page, query: dict):
    """The lines, as the original's bare array; a page cut short by GATEWAY_LOG_MAX_BYTES says so in a header, and
    with ``since`` another says at which line it starts."""
    response = json_response(page.lines)
    if page.truncated:
        response.headers[LOG_TRUNCATED_HEADER] = "true"
    if query["since"] is not None:
        response.headers[LOG_OFFSET_HEADER] = str(query["offset"] if page.first is None else page.first)
    return response


def _json_body():
    """The parsed body. A body over MAX_CONTENT_LENGTH is 413: werkzeug says so for a Content-Length, but cuts a
    chunked body at the limit without a word, so whether more follows is checked here.

    orjson parses the raw bytes: it refuses nesting deeper than 1024 (the stdlib parser recursed until Python's
    limit: 60,000 ``[`` were a 500), invalid UTF-8, lone surrogates, NaN and Infinity, all as plain 400s."""
    data = request.get_data()
    limit = request.max_content_length
    if (request.content_length is None and limit is not None and len(data) >= limit
            and request.environ["wsgi.input"].read(1)):
        raise RequestEntityTooLarge()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(f"the body is not valid JSON: {exc}") from None


@bp.get("/jobs", **_SAME_WITH_SLASH)
def list_jobs():
    """The list streams through as the apiserver sends it. The body iterator's ``close`` releases the apiserver's
    connection, also when nothing of it is read (HEAD) or the client goes away. If the apiserver's stream breaks
    off, the exception ends the response without its last chunk: gunicorn drops the connection, so the client
    sees an incomplete chunked body (and JSON without its end), never a complete-looking 200."""
    if streams.watch_requested():
        return streams.watch_jobs_response()
    settings = current_app.extensions["tenx"].settings
    body = jobs.list_jobs_body(_kube(), g.tenant, settings.list_max_jobs)
    try:
        body.prime()  # a list that fails before its first byte is an error response, not a 200
    except joblist.Incomplete:
        body.close()
        raise errors.Unavailable("the cluster's list broke off; try again",
                                 headers={"Retry-After": str(settings.retry_after_seconds)}) from None
    except BaseException:
        body.close()
        raise
    return Response(body, mimetype="application/json")


@bp.get("/jobs/<job_name>", **_SAME_WITH_SLASH)
def get_job(job_name: str):
    name = _existing_job_name(job_name)
    try:
        return json_response(jobs.get_job(_kube(), g.tenant, name))
    except errors.NotFound:
        raise errors.NotFound(f"job {name!r} not found") from None


@bp.post("/jobs/<job_name>", **_SAME_WITH_SLASH)
def create_job(job_name: str):
    problems = job_name_errors(job_name)
    if problems:
        raise errors.BadRequest("invalid job name", errors={"job_name": problems})
    body = _json_body()
    if not isinstance(body, dict):
        raise errors.BadRequest("the body must be a JSON object (job.json)")
    gateway = current_app.extensions["tenx"]
    spec = JobSpecSchema(limits=JobLimits.from_settings(gateway.settings)).load(body)
    return json_response(jobs.create_job(_kube(), gateway.walls, g.tenant, job_name, spec, gateway.settings))


@bp.delete("/jobs/<job_name>", **_SAME_WITH_SLASH)
def delete_job(job_name: str):
    return json_response(jobs.delete_job(_kube(), g.tenant, _existing_job_name(job_name)))


@bp.get("/jobs/<job_name>/instances/<instance_name>/logs", **_SAME_WITH_SLASH)
def instance_logs(job_name: str, instance_name: str):
    if streams.follow_requested():
        return streams.follow_instance_response(job_name, instance_name)
    settings = current_app.extensions["tenx"].settings
    query = _logs_query(settings)
    if not is_dns1123_label(job_name) or not is_pod_name(instance_name):
        # before any apiserver call: urllib3 resolves dot segments, so ".." would have asked for the namespace
        raise errors.NotFound(f"instance {instance_name!r} of job {job_name!r} not found")
    return _log_response(jobs.instance_log(_kube(), _archive(), g.tenant, job_name, instance_name, query,
                                           settings), query)


@bp.get("/jobs/<job_name>/logs", **_SAME_WITH_SLASH)
def job_logs(job_name: str):
    """Extension: all instances' lines in time order, each prefixed by its instance name."""
    if streams.follow_requested():
        return streams.follow_job_response(job_name)
    settings = current_app.extensions["tenx"].settings
    query = _logs_query(settings)
    return _log_response(jobs.job_log(_kube(), _archive(), g.tenant, _existing_job_name(job_name), query,
                                      settings.log_max_bytes), query)


@bp.get("/jobs/<job_name>/instances", **_SAME_WITH_SLASH)
def job_instances(job_name: str):
    """Extension: each instance with phase, node, times, restarts and per-container state, exit code and reason."""
    return json_response(jobs.instances(_kube(), _archive(), g.tenant, _existing_job_name(job_name)))
