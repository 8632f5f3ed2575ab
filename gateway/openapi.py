"""The OpenAPI 3 document, built from the app itself so that it cannot drift.

Paths and methods come from Flask's ``url_map``; request and response bodies from marshmallow schemas (the request
ones are the validators the views use); ``api_operations.operations()`` adds what a route cannot say: summaries,
which status codes it answers with and why. A route with no entry there still appears, marked undocumented, and
``undocumented()`` names it so that a unit test fails.
"""
from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from werkzeug.routing import Rule

from . import response_schemas as rs
from .api_operations import PATH_PARAMETER_SCHEMAS, PATH_PARAMETERS, QUERY_PARAMETERS, TAGS, operations
from .config import Settings
from .schemas import JobSpecSchema
from .version import __version__

OPENAPI_VERSION = "3.0.3"
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
METHOD_ORDER = ["GET", "POST", "PUT", "PATCH", "DELETE"]  # the order the docs page lists a path's calls in
_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")

DESCRIPTION = """\
The TenxCloud Jobs API, served on Kubernetes: each job is a batch/v1 Job in the user's own namespace.

Every call under `/v1/regions/{region}` needs two headers, as in the original API: `username: <user>` and
`Authorization: token <api token>`. Errors have one JSON shape (`Error`) whatever their status.
"""

SCHEMAS = {
    "Error": rs.ErrorSchema, "Job": rs.JobSchema, "JobWithInstances": rs.JobWithInstancesSchema,
    "JobList": rs.JobListSchema, "CreatedJob": rs.CreatedJobSchema, "DeletedJob": rs.DeletedJobSchema,
    "Instance": rs.InstanceSchema, "InstanceList": rs.InstanceListSchema,
    "StatusOk": rs.StatusOkSchema, "Version": rs.VersionSchema, "Region": rs.RegionSchema, "RegionList": rs.RegionListSchema,
    "JobSpec": JobSpecSchema, "StreamToken": rs.StreamTokenSchema,
}

HEADERS = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}},
    "WWW-Authenticate": {"description": 'the scheme to use: `Token realm="tenx-gateway"`',
                         "schema": {"type": "string"}},
    "Allow": {"description": "the methods this path does answer", "schema": {"type": "string"}},
    "X-Log-Truncated": {"description": "`true` when the page was cut short at `GATEWAY_LOG_MAX_BYTES` of text: it "
                                       "holds fewer lines than asked for; continue from `from` + their number",
                        "schema": {"type": "string", "enum": ["true"]}},
    "X-Log-Offset": {"description": "with `since`: the offset (as `from` counts) of the page's first line, or where "
                                    "the next line will be when no line is that recent; continue from it plus the "
                                    "page's number of lines", "schema": {"type": "integer", "minimum": 0}},
}

SECURITY_SCHEMES = {
    "username": {"type": "apiKey", "in": "header", "name": "username",
                 "description": "The user name the token belongs to."},
    "token": {"type": "apiKey", "in": "header", "name": "Authorization",
              "description": "`token <api token>`: the word `token`, a space, then the user's API token."},
    "streamToken": {"type": "apiKey", "in": "query", "name": "stream_token",
                    "description": "On the stream calls only (`follow=true` logs, `watch=true` list, watch): a token "
                                   "from `POST .../stream-tokens` instead of the two headers; anywhere else 401."},
}


def openapi_path(rule: str) -> str:
    """``/jobs/<job_name>`` or ``/x/<int:n>`` -> ``/jobs/{job_name}``, ``/x/{n}``."""
    return _ARGUMENT.sub(r"{\1}", rule)


def is_asset(rule: Rule) -> bool:
    """Static files (the docs page's JavaScript and CSS) are not part of the API."""
    return rule.endpoint == "static" or rule.endpoint.endswith(".static")


def documented_routes(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) the document must describe."""
    return [(rule, method) for rule in app.url_map.iter_rules() if not is_asset(rule)
            for method in sorted(rule.methods - IMPLICIT_METHODS)]


def undocumented(app: Flask, settings: Settings) -> list[str]:
    """Routes without an entry in ``api_operations.operations()``, and entries that no longer have a route."""
    table = operations(settings)
    routes = {(rule.endpoint, method.lower()) for rule, method in documented_routes(app)}
    entries = {(endpoint, method) for endpoint, methods in table.items() for method in methods}
    return ([f"{method.upper()} {endpoint}: no documentation" for endpoint, method in sorted(routes - entries)] +
            [f"{method.upper()} {endpoint}: documented but not routed" for endpoint, method in
             sorted(entries - routes)])


def build_spec(app: Flask, settings: Settings) -> dict[str, Any]:
    spec = APISpec(title="tenx-gateway", version=__version__, openapi_version=OPENAPI_VERSION,
                   plugins=[MarshmallowPlugin()], info={"description": DESCRIPTION})
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    for name, header in HEADERS.items():
        spec.components.header(name, header)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for tag in TAGS:
        spec.tag(tag)

    table = operations(settings)
    paths: dict[str, dict[str, Any]] = {}
    arguments: dict[str, list[str]] = {}
    for rule, method in sorted(documented_routes(app), key=_method_rank):
        path = openapi_path(rule.rule)
        entry = table.get(rule.endpoint, {}).get(method.lower()) or _undocumented_operation()
        operation = {"operationId": _operation_id(rule, method), **entry}
        paths.setdefault(path, {})[method.lower()] = operation
        arguments[path] = _ARGUMENT.findall(rule.rule)
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path], parameters=[_path_parameter(name) for name in arguments[path]])
    document = spec.to_dict()
    _describe_query_parameters(document, settings)
    return document


def _method_rank(route: tuple[Rule, str]) -> int:
    return METHOD_ORDER.index(route[1]) if route[1] in METHOD_ORDER else len(METHOD_ORDER)


def _operation_id(rule: Rule, method: str) -> str:
    name = rule.endpoint.replace(".", "_")
    return name if len(rule.methods - IMPLICIT_METHODS) == 1 else f"{name}_{method.lower()}"


def _path_parameter(name: str) -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True,
            "schema": dict(PATH_PARAMETER_SCHEMAS.get(name, {"type": "string"})),
            "description": PATH_PARAMETERS.get(name, "")}


def _undocumented_operation() -> dict[str, Any]:
    return {"summary": "(undocumented)", "responses": {"default": {"description": "undocumented"}}}


def _describe_query_parameters(document: dict[str, Any], settings: Settings) -> None:
    """The marshmallow plugin expands LogsQuerySchema into parameters; add what the schema cannot carry."""
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter["name"] in QUERY_PARAMETERS:
                    description, extra = QUERY_PARAMETERS[parameter["name"]](settings)
                    schema = parameter.setdefault("schema", {})
                    schema.pop("nullable", None)  # an absent parameter, not a null one
                    if schema.get("default", 0) is None:
                        del schema["default"]
                    schema.update(extra)
                    # `date=`, `from=`, `size=` with nothing after: as if absent, as the original's clients send them
                    parameter["schema"] = {"anyOf": [schema, {"type": "string", "maxLength": 0}]}
                    parameter["description"] = description + " Empty means absent."
