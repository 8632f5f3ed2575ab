"""The only validators: job.json and the logs query.

Code after ``load()`` trusts its output. Unknown fields in job.json are rejected by name (marshmallow's RAISE);
unknown query parameters are ignored, as most HTTP APIs do.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, validates_schema
from marshmallow.validate import Length, OneOf, Range, Regexp

from .names import DNS1123_LABEL, DNS1123_LABEL_MAX

TIMEZONE_VOLUME = "tenxcloud-time-zone"
SUPPORTED_VOLUME_TYPES = ("host",)
INT32_MAX = 2**31 - 1

# Kubernetes resource.Quantity, unsigned: "512Mi", "0.5", "125m", "1e3".
QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
LOG_DATE = re.compile(r"^\d{4}\.\d{2}\.\d{2}$")
# The largest `from`: beyond it no log reaches, and the stores' 64-bit integers (and islice) would overflow.
LOG_MAX_OFFSET = 2**53 - 1


class StrictBoolean(fields.Boolean):
    """JSON true or false only: not 1, "yes" or "true" (Python's 1 == True would slip through ``truthy``)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _strict_bool(**kwargs: Any) -> fields.Boolean:
    return StrictBoolean(**kwargs)


def _int(minimum: int, maximum: int = INT32_MAX, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=Range(min=minimum, max=maximum), **kwargs)


def _dns_label(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=[Length(min=1, max=DNS1123_LABEL_MAX),
                  Regexp(DNS1123_LABEL, error="must be a DNS-1123 label: lower-case letters, digits and '-', "
                                              "starting and ending with a letter or digit")],
        **kwargs)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class EnvVarSchema(StrictSchema):
    name = fields.String(required=True, validate=[Length(min=1, max=256),
                                                  Regexp(ENV_NAME, error="must be a valid environment variable name")])
    value = fields.String(load_default="")


class PortSchema(StrictSchema):
    port = _int(1, 65535, required=True)
    protocol = fields.String(load_default="TCP", validate=OneOf(["TCP", "UDP", "SCTP"]))


class LimitsSchema(StrictSchema):
    cpu = fields.String(validate=Regexp(QUANTITY, error="must be a Kubernetes quantity such as 125m or 0.5"))
    memory = fields.String(validate=Regexp(QUANTITY, error="must be a Kubernetes quantity such as 512Mi"))


class ResourcesSchema(StrictSchema):
    limits = fields.Nested(LimitsSchema, load_default=dict)


class VolumeMountSchema(StrictSchema):
    name = fields.String(required=True)
    mount_path = fields.String(required=True, data_key="mountPath", validate=Length(min=1, max=4096))
    read_only = _strict_bool(data_key="readOnly", load_default=False)

    @validates_schema
    def _absolute_and_plain(self, data: dict, **_: Any) -> None:
        path = data.get("mount_path")
        if path is None:
            return
        if not path.startswith("/"):
            raise ValidationError("must be an absolute path", "mountPath")
        if ".." in path.split("/") or ":" in path:
            raise ValidationError("must not contain '..' segments or ':'", "mountPath")


class ContainerSchema(StrictSchema):
    image = fields.String(required=True, validate=[Length(min=1, max=1024),
                                                   Regexp(r"^\S+$", error="must not contain white space")])
    pull_always = _strict_bool(load_default=None)
    command = fields.List(fields.String(), load_default=None)
    args = fields.List(fields.String(), load_default=None)
    env = fields.List(fields.Nested(EnvVarSchema), load_default=list)
    ports = fields.List(fields.Nested(PortSchema), load_default=list)
    resources = fields.Nested(ResourcesSchema, load_default=dict)
    volume_mounts = fields.List(fields.Nested(VolumeMountSchema), data_key="volumeMounts", load_default=list)

    @validates_schema
    def _unique_mount_paths(self, data: dict, **_: Any) -> None:
        paths = [m["mount_path"] for m in data.get("volume_mounts", [])]
        duplicates = sorted({p for p in paths if paths.count(p) > 1})
        if duplicates:
            raise ValidationError(f"mount paths must be unique, repeated: {', '.join(duplicates)}", "volumeMounts")


class VolumeSchema(StrictSchema):
    name = _dns_label(required=True)
    type = fields.String(required=True, validate=OneOf(
        SUPPORTED_VOLUME_TYPES, error="volume type {input!r} is not supported; supported: " +
                                      ", ".join(SUPPORTED_VOLUME_TYPES)))


class JobSpecSchema(StrictSchema):
    """job.json of the original API, plus the snake_case extensions documented in the README."""

    containers = fields.List(fields.Nested(ContainerSchema), required=True,
                             validate=Length(min=1, error="at least one container is required"))
    volumes = fields.List(fields.Nested(VolumeSchema), load_default=list)
    sync_timezone = _strict_bool(load_default=False)
    parallelism = _int(0, load_default=None)
    completions = _int(1, load_default=None)
    backoff_limit = _int(0, load_default=None)
    active_deadline_seconds = _int(1, load_default=None)
    ttl_seconds_after_finished = _int(0, load_default=None)

    @validates_schema
    def _volumes_consistent(self, data: dict, **_: Any) -> None:
        names = [v["name"] for v in data.get("volumes", [])]
        errors: dict[str, list[str]] = {}
        if TIMEZONE_VOLUME in names:
            errors.setdefault("volumes", []).append(f"volume name {TIMEZONE_VOLUME!r} is reserved for sync_timezone")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            errors.setdefault("volumes", []).append(f"volume names must be unique, repeated: {', '.join(repeated)}")
        for index, container in enumerate(data.get("containers", [])):
            mounts = container.get("volume_mounts", [])
            unknown = sorted({m["name"] for m in mounts if m["name"] not in names})
            if unknown:
                errors.setdefault(f"containers.{index}.volumeMounts", []).append(
                    f"mounts undeclared volume(s): {', '.join(unknown)}")
            if data.get("sync_timezone") and any(m["mount_path"] == "/etc/localtime" for m in mounts):
                errors.setdefault(f"containers.{index}.volumeMounts", []).append(
                    "/etc/localtime is mounted by sync_timezone")
        if errors:
            raise ValidationError(errors)


class LogsQuerySchema(Schema):
    """``date=YYYY.MM.DD&from=N&size=M``; ``size`` defaults and caps come from the settings."""

    class Meta:
        unknown = EXCLUDE

    date = fields.String(load_default=None)
    offset = fields.Integer(data_key="from", load_default=0,
                            validate=Range(min=0, max=LOG_MAX_OFFSET, error="must be from 0 to {max}"))
    size = fields.Integer(load_default=None, validate=Range(min=0, error="must be 0 or more"))

    def __init__(self, *, default_size: int, max_size: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.default_size = default_size
        self.max_size = max_size

    @post_load
    def _resolve(self, data: dict, **_: Any) -> dict:
        if data["size"] is None:
            data["size"] = self.default_size
        elif data["size"] > self.max_size:
            raise ValidationError(f"must be at most {self.max_size}", "size")
        if data["date"] is not None:
            data["date"] = parse_log_date(data["date"])
        return data


def parse_log_date(text: str) -> dt.date:
    if not LOG_DATE.match(text):
        raise ValidationError("must be a date as YYYY.MM.DD", "date")
    try:
        return dt.datetime.strptime(text, "%Y.%m.%d").date()
    except ValueError:
        raise ValidationError("is not a calendar date", "date") from None


def job_name_errors(name: str) -> list[str]:
    """The URL's job name must be a DNS-1123 label, since it names the Job, its pods' label and a host folder."""
    if len(name) > DNS1123_LABEL_MAX:
        return [f"must be at most {DNS1123_LABEL_MAX} characters"]
    if not DNS1123_LABEL.match(name):
        return ["must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter "
                "or digit"]
    return []

