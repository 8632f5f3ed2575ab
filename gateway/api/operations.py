"""What each route answers, for the OpenAPI document: summary, parameters, bodies and every status code.

Keyed by Flask endpoint and lower-case method. Schemas are named as registered in gateway/api/openapi.py. When a route
is added, its entry goes here; tests/gateway/api/test_openapi.py fails until it does.
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any, Callable

from ..settings import Settings
from ..names import DNS1123_LABEL, DNS1123_LABEL_MAX
from .schemas import LogsQuerySchema

JSON = "application/json"
CREDENTIALS = [{"username": [], "token": []}]
# the stream calls also take a stream token in the query (a browser's EventSource cannot send headers)
STREAM_CREDENTIALS = [*CREDENTIALS, {"streamToken": []}]
PUBLIC: list[dict[str, list[str]]] = []

TAGS = [
    {"name": "jobs", "description": "The five calls of the original Jobs API."},
    {"name": "operations", "description": "Health, readiness, version and regions; no credentials needed."},
    {"name": "documentation", "description": "This document and its page."},
]

PATH_PARAMETERS = {
    "region": "A region this gateway serves (`GET /v1/regions` lists them); the original offered only `us`.",
    "job_name": "The job's name: a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters).",
    "instance_name": "One of the job's pods, as listed in `instance_names` by `GET /jobs/{job_name}`.",
}

# Path parameters' schemas beyond "a string": what the gateway accepts as a job name (anything else is 400 on
# create, 404 elsewhere), so that clients and fuzzers can tell a valid name from an invalid one.
PATH_PARAMETER_SCHEMAS = {
    "job_name": {"type": "string", "pattern": f"^{DNS1123_LABEL.pattern}$", "maxLength": DNS1123_LABEL_MAX},
}

QUERY_PARAMETERS: dict[str, Callable[[Settings], tuple[str, dict[str, Any]]]] = {
    "date": lambda s: (f"Only the lines logged on this day (`YYYY.MM.DD`, days in {s.log_timezone}).",
                       {"pattern": r"^\d{4}\.(0[1-9]|1[0-2])\.(0[1-9]|[12]\d|3[01])$", "example": "2015.12.29"}),
    "from": lambda s: ("Index of the first line to return (0 = the first line).", {"default": 0}),
    "size": lambda s: (f"How many lines to return, at most {s.log_max_size}.",
                       {"default": s.log_default_size, "maximum": s.log_max_size}),
    "since": lambda s: ("Start at the first line stamped at or after this moment: a duration back from now (`10m`, "
                        "`1h30m`, `45s`) or an RFC 3339 time. `from` and `size` count lines as without it: the page "
                        "starts at the later of `from` and that line, and the `X-Log-Offset` header says where (with "
                        "`follow=true` the events' ids do).",
                        {"type": "string", "example": "10m", "pattern": SINCE_PATTERN}),
    "timestamps": lambda s: ("`true`: each line carries its RFC 3339 timestamp (UTC, nine fractional digits) and a "
                             "space before its text (after the `[instance] ` prefix of the job's log); with "
                             "`follow=true`, each event's data has it as `time` instead.",
                             {"type": "string", "enum": ["true", "false", "1", "0", "TRUE", "FALSE", "True",
                                                         "False"], "default": "false"}),
}

_DURATION = "([0-9]{1,9}h)?([0-9]{1,9}m)?([0-9]{1,9}s)?"
_TIME = ("[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
         "(\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])")
SINCE_PATTERN = f"^({_DURATION}|{_TIME})$"

SEED_JOB = {
    "containers": [{
        "image": "index.tenxcloud.com/tenxcloud/perl_job:latest", "pull_always": True,
        "command": ["echo", "test-cmd"], "env": [{"name": "KEY", "value": "value"}],
        "ports": [{"port": 22, "protocol": "TCP"}], "resources": {"limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": "volume-name1", "mountPath": "/data"}],
    }],
    "volumes": [{"name": "volume-name1", "type": "host"}],
    "sync_timezone": True,
}


def body(description: str, schema: Any, media: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def links(**targets: tuple[str, dict[str, str]]) -> dict[str, Any]:
    """OpenAPI links from a response to the calls it feeds (what a client, or a stateful fuzzer, can call next
    with values from it): name -> (operationId, {parameter: runtime expression})."""
    return {name: {"operationId": operation, "parameters": parameters}
            for name, (operation, parameters) in targets.items()}


# The calls on one job, reachable from anything that names it; the region is always the request's.
_SAME_REGION = {"region": "$request.path.region"}


def _job_links(job_name: str) -> dict[str, Any]:
    job = {**_SAME_REGION, "job_name": job_name}
    return links(GetJob=("jobs_get_job", job), DeleteJob=("jobs_delete_job", job),
                 JobInstances=("jobs_job_instances", job), JobLogs=("jobs_job_logs", job))


def error(code: int, description: str, *headers: str) -> dict[str, Any]:
    response = body(description, "Error")
    response["content"][JSON]["example"] = {"code": code, "status": HTTPStatus(code).phrase, "message": description}
    if headers:
        response["headers"] = {name: name for name in headers}
    return response


def _with_stream(ok: dict[str, Any], example: str) -> dict[str, Any]:
    """A logs call's 200: the JSON page, or with follow=true the event stream."""
    ok["content"][EVENT_STREAM] = {"schema": SSE_EVENT, "example": example}
    return {**ok, "headers": {"X-Log-Truncated": "X-Log-Truncated", "X-Log-Offset": "X-Log-Offset"}}


def _jobs_call(summary: str, description: str, ok: dict[str, Any], **responses: dict[str, Any]) -> dict[str, Any]:
    """A call under /v1/regions/{region}: credentials checked first, then the region, then the call itself."""
    return {
        "tags": ["jobs"], "summary": summary, "description": description, "security": CREDENTIALS,
        "responses": {
            "200": ok,
            "401": error(401, "The username or Authorization header is missing or malformed, or the token is not the "
                         "user's.", "WWW-Authenticate"),
            "404": error(404, "The region is not one this gateway serves."),
            "405": error(405, "The path does not answer this method.", "Allow"),
            "429": error(429, "Too many failed logins from this client or for this user name, or more calls of this "
                         "user in progress at once than GATEWAY_REQUESTS_MAX_PER_USER.", "Retry-After"),
            "500": error(500, "An internal error; the message says no more."),
            "502": error(502, "The cluster refused the gateway itself (its credentials or permissions); the operator "
                         "must fix the gateway's configuration."),
            "503": error(503, "The cluster is unreachable or busy, or the user's namespace is being deleted.",
                         "Retry-After"),
            **responses,
        },
    }


def _stream_call(summary: str, description: str, ok: dict[str, Any], **responses: dict[str, Any]) -> dict[str, Any]:
    """A call that may answer with a stream: the headers or a stream token."""
    return {**_jobs_call(summary, description, ok, **responses), "security": STREAM_CREDENTIALS}


def _public(tag: str, summary: str, description: str, **responses: dict[str, Any]) -> dict[str, Any]:
    return {"tags": [tag], "summary": summary, "description": description, "security": PUBLIC,
            "responses": responses}


EVENT_STREAM = "text/event-stream"
FOLLOW = ("With `follow=true` (or `1`) the answer is instead a stream of Server-Sent Events (`text/event-stream`): "
          "each line an event whose `id` is its offset as `from` counts it and whose `data` is one line of JSON "
          "({data}); a `: keepalive` comment every few seconds; at the end `event: end` ({end}). `Last-Event-ID` "
          "(or `last_event_id=N`) resumes after line N; `size` is checked as for a page, then ignored; "
          "`stream_token` may replace the headers. "
          "Over the per-user cap of concurrent streams: 429. See docs/api.md, \"Follow and watch\".")


# One event of a stream, as an SSE client parses it (the form schemathesis checks each event against): its
# fields, `data` always one line of JSON text.
SSE_EVENT = {"type": "object", "properties": {"event": {"type": "string"}, "id": {"type": "string"},
                                              "data": {"type": "string"}, "retry": {"type": "integer"}}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"in": "query", "name": name, "required": False, "description": description, "schema": schema}


FOLLOW_PARAMETER = _query(
    "follow", "`true` or `1`: a stream of Server-Sent Events instead of a page; `false`, `0` or empty: the page. "
    "Anything else is 400.", {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|1|[Ff][Aa][Ll][Ss][Ee]|0)?$",
                               "example": "true"})
# Plain strings, not patterns: the paged call ignores them, so a schema-violating value is not always a 400.
RESUME_PARAMETERS = [
    _query("last_event_id", "With `follow=true`: resume after line N (the stream starts at N+1), as the header "
           "`Last-Event-ID` (which wins) does for an EventSource that reconnects; a whole number from -1 to "
           "2^53-2 in ASCII digits, else 400. Empty means absent.", {"type": "string", "example": "41"}),
    {"in": "header", "name": "Last-Event-ID", "required": False, "schema": {"type": "string", "example": "41"},
     "description": "With `follow=true`: resume after line N, as `last_event_id` does."},
]
WATCH_PARAMETER = _query(
    "watch", "`true` or `1`: a stream of Server-Sent Events of the list's changes instead of the list (`event: "
    "job`); anything else: the list.", {"type": "string", "example": "true"})


def _stream_ok(description: str, example: str) -> dict[str, Any]:
    return {"description": description, "content": {EVENT_STREAM: {"schema": SSE_EVENT, "example": example}}}


def stream_operations(settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    """The watch call and stream tokens (the follow variants are described on the two logs calls)."""
    over_cap = error(429, f"More than {settings.stream_max_per_user} streams of this user at once "
                     "(GATEWAY_STREAM_MAX_PER_USER), or too many failed logins.", "Retry-After")
    return {
        "streams.watch": {"get": _stream_call(
            "Watch a job (extension)", "A stream of Server-Sent Events: `event: status` at the start and after each "
            "change of the job's status, conditions or instances (`data`: name, status, counts, conditions, "
            "instances as `GET .../instances` lists them); `event: end` when it succeeds, fails or is deleted. "
            "`stream_token` may replace the headers.",
            _stream_ok("The job's status events.", 'event: status\nid: 1\ndata: {"name": "myjob", "status": '
                       '"running", "active": 1, "succeeded": 0, "failed": 0, "completions": 1, "parallelism": 1, '
                       '"conditions": [], "instances": []}\n\n'),
            **{"404": error(404, "The region is unknown, or the user has no job of that name."),
               "429": over_cap})},
        "streams.create_stream_token": {"post": _jobs_call(
            "Get a stream token (extension)", "A short-lived token, bound to the user and the region, that a stream "
            "call (`follow=true` logs, watch) accepts as the query parameter `stream_token` instead of the headers "
            "(a browser's EventSource cannot send headers). It must open a stream within `expires_in` seconds.",
            body("The token.", "StreamToken"))},
    }


def operations(settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    not_ready = error(503, "A region's apiserver did not answer `GET /version` within "
                      f"{settings.readiness_timeout:g} s; `errors` names each such region and why.", "Retry-After")
    logs_query = LogsQuerySchema(default_size=settings.log_default_size, max_size=settings.log_max_size)
    return {
        "jobs.list_jobs": {"get": {
            **_stream_call(
                "List the user's jobs", "Every Job in the user's namespace in this region. With `watch=true` (or "
                                        "`1`), a stream of Server-Sent Events instead: `event: job` with "
                                        "`{\"type\": \"ADDED\"|\"MODIFIED\"|\"DELETED\", \"job\": {name, "
                                        "status, counts, conditions}}`, an ADDED per job first; `stream_token` may "
                                        "replace the headers then.",
                {**body("The user's jobs.", "JobList"), "links": _job_links("$response.body#/jobs/0/metadata/name"),
                 "content": {JSON: {"schema": "JobList"}, EVENT_STREAM: {
                     "schema": SSE_EVENT, "example": 'event: job\nid: 1\ndata: {"type": "ADDED", "job": {"name": '
                                                     '"myjob", "status": "running"}}\n\n'}}}),
            "parameters": [WATCH_PARAMETER],
        }},
        "jobs.get_job": {"get": _jobs_call(
            "Get a job", "The Job, plus the names of its pods (`instance_names`) and, for a job that waits or "
                         "waited in a queue (`GATEWAY_QUEUE=kueue`), where it stands there (`queue`: its place "
                         "among the user's waiting jobs and why it waits, or when it was admitted).",
            {**body("The job and its instances.", "JobWithInstances"), "links": links(InstanceLogs=(
                "jobs_instance_logs", {**_SAME_REGION, "job_name": "$request.path.job_name",
                                       "instance_name": "$response.body#/instance_names/0"}))},
            **{"404": error(404, "The region is unknown, or the user has no job of that name.")})},
        "jobs.create_job": {"post": {
            **_jobs_call(
                "Create a job", "Runs job.json as a batch/v1 Job named `job_name`.",
                {**body("The Job as created.", "CreatedJob"), "links": _job_links("$request.path.job_name")},
                **{"400": error(400, "The job name is not a DNS-1123 label, or the body is not a valid job.json; "
                                "`errors` names each problem."),
                   "403": error(403, "The cluster refused the job: a quota exceeded or an admission policy's "
                                "denial; the message is the cluster's."),
                   "409": error(409, "The user already has a job of that name."),
                   "413": error(413, f"The body is larger than {settings.max_body_bytes} bytes.")}),
            "requestBody": {"required": True, "content": {JSON: {"schema": "JobSpec", "example": SEED_JOB}}},
        }},
        "jobs.delete_job": {"delete": _jobs_call(
            "Delete a job", "Deletes the Job; its pods go with it, in the background.",
            body("The job is being deleted.", "DeletedJob"),
            **{"404": error(404, "The region is unknown, or the user has no job of that name.")})},
        "jobs.instance_logs": {"get": {
            **_stream_call(
                "Read an instance's log", "Lines `[from, from+size)` of one pod's log, of one day if `date` is "
                                          "given. An instance that has not started yet has no lines. " + FOLLOW.format(
                                              data='`{"offset": 12, "line": "..."}`',
                                              end='`{"instance", "exit_code", "reason", "phase"}`'),
                _with_stream(body("The log lines, without their line ends.", {"type": "array",
                                                                              "items": {"type": "string"}}),
                             'id: 0\ndata: {"offset": 0, "line": "test-cmd"}\n\n'),
                **{"400": error(400, "`date`, `from`, `size`, `since` or `timestamps` is invalid; `errors` says "
                                "which."),
                   "404": error(404, "The region is unknown, or the job or the instance does not exist.")}),
            "parameters": [{"in": "query", "schema": logs_query}, FOLLOW_PARAMETER, *RESUME_PARAMETERS],
        }},
        "jobs.job_logs": {"get": {
            **_stream_call(
                "Read a job's log (extension)", "Every instance's lines in time order, each prefixed by "
                                                "`[instance name]`, from the log archive: lines outlive the pods. "
                + FOLLOW.format(data='`{"offset": 12, "instance": "myjob-x1y2z", "line": "..."}`',
                                end='`{"status", "instances": [{"name", "exit_code", "reason"}]}`'),
                _with_stream(body("The log lines.", {"type": "array", "items": {"type": "string"},
                                                     "example": ["[myjob-x1y2z] test-cmd"]}),
                             'id: 0\ndata: {"offset": 0, "instance": "myjob-x1y2z", "line": "test-cmd"}\n\n'),
                **{"400": error(400, "`date`, `from`, `size`, `since` or `timestamps` is invalid; `errors` says "
                                "which."),
                   "404": error(404, "The region is unknown, or the user has no job of that name.")}),
            "parameters": [{"in": "query", "schema": logs_query}, FOLLOW_PARAMETER, *RESUME_PARAMETERS],
        }},
        **stream_operations(settings),
        "jobs.job_instances": {"get": _jobs_call(
            "List a job's instances (extension)", "Each pod of the job, live or archived: phase, node, times, "
                                                  "restarts, and per container its state, exit code and reason.",
            body("The job's instances, oldest first.", "InstanceList"),
            **{"404": error(404, "The region is unknown, or the user has no job of that name.")})},
        "health.healthz": {"get": _public(
            "operations", "Liveness", "The process is alive; asks no cluster.",
            **{"200": body("Alive.", "StatusOk")})},
        "health.readyz": {"get": _public(
            "operations", "Readiness", "Every region's apiserver answers `GET /version` in time.",
            **{"200": body("Ready.", "StatusOk"), "503": not_ready})},
        "health.version": {"get": _public(
            "operations", "The gateway's version", "Its version and, when known, the git commit it was built from "
                                                   "(what `tenx version` shows beside its own).",
            **{"200": body("The version.", "Version")})},
        "health.status": {"get": _public(
            "operations", "The original's status call", "`API is running` when every region is ready.",
            **{"200": body("Running.", {"type": "string", "example": "API is running"}, "text/plain"),
               "503": not_ready})},
        "health.regions": {"get": _public(
            "operations", "List the regions", "The regions this gateway serves and whether each answers now.",
            **{"200": {**body("The regions.", "RegionList"), "links": links(ListJobs=(
                "jobs_list_jobs", {"region": "$response.body#/regions/0/name"}))}})},
        "docs.openapi": {"get": _public(
            "documentation", "This OpenAPI document", "Built from the gateway's routes and schemas.",
            **{"200": body("OpenAPI 3.", {"type": "object"})})},
        "docs.docs": {"get": _public(
            "documentation", "The API's documentation page", "Swagger UI, served by the gateway itself.",
            **{"200": body("An HTML page.", {"type": "string"}, "text/html")})},
        "console.index": {"get": _public(
            "documentation", "The web console", "Jobs, logs and a create form in the browser, served by the gateway "
                                                "itself; it calls this API with the user's credentials.",
            **{"200": body("An HTML page.", {"type": "string"}, "text/html")})},
    }
