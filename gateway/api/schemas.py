"""The only validators: job.json and the logs query.

Code after ``load()`` trusts its output. Unknown fields in job.json are rejected by name (marshmallow's RAISE);
unknown query parameters are ignored, as most HTTP APIs do. ``null`` for an optional field of job.json means the
field is absent: clients of the original written in Go or JavaScript send ``null`` for an empty list.
"""
from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, pre_load, validates_schema
from marshmallow.validate import Length, OneOf, Range, Validator

from ..logs.text import LOG_MAX_OFFSET
from ..names import DNS1123_LABEL, DNS1123_LABEL_MAX, QUANTITY, TIMEZONE_VOLUME
from ..timefmt import EPOCH, NS

SUPPORTED_VOLUME_TYPES = ("host",)
INT32_MAX = 2**31 - 1

# Patterns below are matched whole.
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
NO_WHITE_SPACE = re.compile(r"\S+")
LOG_DATE = re.compile(r"^\d{4}\.\d{2}\.\d{2}$")
# The logs calls' ``since``: a duration back from now, Go style as kubectl's --since takes it (``10m``, ``1h30m``),
# or an RFC 3339 time; ASCII digits only (``\d`` would take any script's).
SINCE_DURATION = re.compile(r"(?:([0-9]{1,9})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,9})s)?")
SINCE_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?"
                        r"([Zz]|[+-][0-9]{2}:[0-9]{2})")


@dataclass(frozen=True)
class JobLimits:
    """What one create may ask for (the GATEWAY_JOB_MAX_* settings); ``None`` leaves a dimension unlimited."""

    parallelism: int | None = None
    completions: int | None = None
    containers: int | None = None
    command_items: int | None = None  # entries of command, and of args, per container
    env_vars: int | None = None       # per container
    container_bytes: int | None = None  # UTF-8 bytes of command + args + env names and values, per container

    @classmethod
    def from_settings(cls, settings: Any) -> JobLimits:
        return cls(parallelism=settings.job_max_parallelism, completions=settings.job_max_completions,
                   containers=settings.job_max_containers, command_items=settings.job_max_command_items,
                   env_vars=settings.job_max_env_vars, container_bytes=settings.job_max_container_bytes)


class FullMatch(Validator):
    """Like marshmallow's Regexp, but the whole value must match: Regexp uses ``re.match``, where ``$`` also
    matches before a final newline, so ``"1Mi\\n"`` would pass."""

    def __init__(self, pattern: re.Pattern, error: str):
        self.pattern = pattern
        self.error = error

    def __call__(self, value: str) -> str:
        if not self.pattern.fullmatch(value):
            raise ValidationError(self.error)
        return value


class Text(fields.String):
    """A string that can be sent on: a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON) has no UTF-8 form."""

    default_error_messages = {"surrogate": "must be valid Unicode text (it contains a lone surrogate)"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("surrogate") from None
        return text


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


DNS1123_LABEL_ERROR = ("must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a "
                       "letter or digit")


def _dns_label(**kwargs: Any) -> fields.String:
    return Text(validate=[Length(min=1, max=DNS1123_LABEL_MAX), FullMatch(DNS1123_LABEL, DNS1123_LABEL_ERROR)],
                **kwargs)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE

    @pre_load
    def _null_is_absent(self, data: Any, **_: Any) -> Any:
        """``"env": null`` reads as no ``env``; a required field given ``null`` still says it may not be null."""
        if not isinstance(data, dict):
            return data
        optional = {f.data_key or name for name, f in self.fields.items() if not f.required}
        return {key: value for key, value in data.items() if value is not None or key not in optional}


class EnvVarSchema(StrictSchema):
    name = Text(required=True, validate=[Length(min=1, max=256),
                                         FullMatch(ENV_NAME, "must be a valid environment variable name")])
    value = Text(load_default="")


class PortSchema(StrictSchema):
    port = _int(1, 65535, required=True)
    protocol = Text(load_default="TCP", validate=OneOf(["TCP", "UDP", "SCTP"]))


class LimitsSchema(StrictSchema):
    cpu = Text(validate=FullMatch(QUANTITY, "must be a Kubernetes quantity such as 125m or 0.5"))
    memory = Text(validate=FullMatch(QUANTITY, "must be a Kubernetes quantity such as 512Mi"))


class ResourcesSchema(StrictSchema):
    limits = fields.Nested(LimitsSchema, load_default=dict)


class VolumeMountSchema(StrictSchema):
    name = Text(required=True)
    mount_path = Text(required=True, data_key="mountPath", validate=Length(min=1, max=4096))
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
    image = Text(required=True, validate=[Length(min=1, max=1024),
                                          FullMatch(NO_WHITE_SPACE, "must not contain white space")])
    pull_always = _strict_bool(load_default=None)
    command = fields.List(Text(), load_default=None)
    args = fields.List(Text(), load_default=None)
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
    type = Text(required=True, validate=OneOf(
        SUPPORTED_VOLUME_TYPES, error="volume type {input!r} is not supported; supported: " +
                                      ", ".join(SUPPORTED_VOLUME_TYPES)))


class JobSpecSchema(StrictSchema):
    """job.json of the original API, plus the snake_case extensions documented in docs/api.md, "job.json". With
    ``limits``, a request over a cap is refused with the field, the cap and the setting that sets it."""

    containers = fields.List(fields.Nested(ContainerSchema), required=True,
                             validate=Length(min=1, error="at least one container is required"))
    volumes = fields.List(fields.Nested(VolumeSchema), load_default=list)
    sync_timezone = _strict_bool(load_default=False)
    parallelism = _int(0, load_default=None)
    completions = _int(1, load_default=None)
    backoff_limit = _int(0, load_default=None)
    active_deadline_seconds = _int(1, load_default=None)
    ttl_seconds_after_finished = _int(0, load_default=None)

    def __init__(self, *, limits: JobLimits | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.limits = limits or JobLimits()

    @validates_schema
    def _within_limits(self, data: dict, **_: Any) -> None:
        limits, errors = self.limits, {}

        def over(key: str, value: int, cap: int | None, setting: str, what: str = "") -> None:
            if cap is not None and value > cap:
                errors.setdefault(key, []).append(f"{what or 'must be'} at most {cap} (GATEWAY_{setting})")

        for key in ("parallelism", "completions"):
            if data.get(key) is not None:
                over(key, data[key], getattr(limits, key), f"JOB_MAX_{key.upper()}")
        containers = data.get("containers") or []
        over("containers", len(containers), limits.containers, "JOB_MAX_CONTAINERS", "there may be")
        for index, container in enumerate(containers):
            at = f"containers.{index}"
            for key in ("command", "args"):
                over(f"{at}.{key}", len(container.get(key) or []), limits.command_items, "JOB_MAX_COMMAND_ITEMS",
                     "may have")
            env = container.get("env") or []
            over(f"{at}.env", len(env), limits.env_vars, "JOB_MAX_ENV_VARS", "may have")
            size = sum(len(text.encode()) for text in [*(container.get("command") or []),
                                                       *(container.get("args") or []),
                                                       *(e["name"] for e in env), *(e["value"] for e in env)])
            over(at, size, limits.container_bytes, "JOB_MAX_CONTAINER_BYTES",
                 f"command, args and env take {size} bytes; there may be")
        if errors:
            raise ValidationError(errors)

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


WHOLE_NUMBER = re.compile(r"-?[0-9]+")


class WholeNumber(fields.Integer):
    """A query's whole number in ASCII digits, optionally negative: ``int()`` alone would also take ``1_000``,
    ``\u0663`` (an Arabic-Indic three), ``\uff11\uff12`` (full-width) and surrounding white space, which
    ``last_event_id`` refuses."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, str) and not (value.isascii() and WHOLE_NUMBER.fullmatch(value)):
            raise self.make_error("invalid")
        return super()._validated(value)


class QueryFlag(fields.Field):
    """A query parameter's ``true``/``1`` or ``false``/``0`` (any case), as ``follow`` takes them."""

    default_error_messages = {"invalid": "must be true or false"}
    _VALUES = {"true": True, "1": True, "false": False, "0": False}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, str) or value.lower() not in self._VALUES:
            raise self.make_error("invalid")
        return self._VALUES[value.lower()]


class Since(fields.Field):
    """``10m``, ``1h30m``, ``45s`` (back from now) or an RFC 3339 time (``2026-11-28T09:00:00.5Z``, an offset
    instead of ``Z`` too), loaded as nanoseconds since the epoch, as the archive stamps lines."""

    default_error_messages = {"invalid": "must be a duration such as 10m, 1h30m or 45s, or an RFC 3339 time such as "
                                         "2026-11-28T09:00:00Z"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        text = value if isinstance(value, str) else ""
        duration = SINCE_DURATION.fullmatch(text)
        if text and duration:
            hours, minutes, seconds = (int(part or 0) for part in duration.groups())
            back = (hours * 3600 + minutes * 60 + seconds) * NS
            return max(time.time_ns() - back, 0)  # further back than 1970: every line
        stamp = SINCE_TIME.fullmatch(text)
        if stamp is None:
            raise self.make_error("invalid")
        whole, fraction, zone = stamp.groups()
        try:
            moment = dt.datetime.fromisoformat(f"{whole[:10]}T{whole[11:]}{'+00:00' if zone in 'Zz' else zone}")
        except ValueError:
            raise self.make_error("invalid") from None
        seconds = (moment - EPOCH) // dt.timedelta(seconds=1)
        return seconds * NS + int((fraction or "0").ljust(9, "0"))


class LogsQuerySchema(Schema):
    """``date=YYYY.MM.DD&from=N&size=M``, ``since`` and ``timestamps``; ``size`` defaults and caps come from the
    settings. An empty parameter (``date=``, as an old client's form or template leaves it) means the parameter is
    absent.

    ``since`` moves the start of the page (or stream) forward to the first line stamped at or after it: ``from`` and
    ``size`` count lines exactly as without it, and the answer says where it started (``X-Log-Offset``).
    ``timestamps=true`` puts each line's RFC 3339 stamp before its text."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _empty_is_absent(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value != ""}
        return data

    date = fields.String(load_default=None)
    offset = WholeNumber(data_key="from", load_default=0,
                         validate=Range(min=0, max=LOG_MAX_OFFSET, error="must be from 0 to {max}"))
    size = WholeNumber(load_default=None, validate=Range(min=0, error="must be 0 or more"))
    since = Since(load_default=None)
    timestamps = QueryFlag(load_default=False)

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
    """``YYYY.MM.DD`` in ASCII digits (``\\d`` alone would take any script's digits, ``$`` a final newline)."""
    if not (text.isascii() and LOG_DATE.fullmatch(text)):
        raise ValidationError("must be a date as YYYY.MM.DD", "date")
    try:
        return dt.datetime.strptime(text, "%Y.%m.%d").date()
    except ValueError:
        raise ValidationError("is not a calendar date", "date") from None


def job_name_errors(name: str) -> list[str]:
    """The URL's job name must be a DNS-1123 label, since it names the Job, its pods' label and a host folder."""
    if len(name) > DNS1123_LABEL_MAX:
        return [f"must be at most {DNS1123_LABEL_MAX} characters"]
    if not DNS1123_LABEL.fullmatch(name):
        return [DNS1123_LABEL_ERROR]
    return []

