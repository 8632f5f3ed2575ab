"""The config file ``$XDG_CONFIG_HOME/tenx/config.toml`` (mode 0600: it holds tokens) and who the caller is.

    current_profile = "default"

    [profiles.default]
    url = "http://127.0.0.1:8080"
    user = "alice"
    token = "..."
    region = "us"

Read with the standard library's ``tomllib``; written by ``dumps`` below (string values in flat tables are all it
holds, so a writer of 30 lines does instead of a dependency). ``TENX_URL``, ``TENX_USER``, ``TENX_TOKEN`` and
``TENX_REGION`` override the profile's fields, ``TENX_PROFILE`` (or ``--profile``) picks the profile.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import AuthError, UsageError

DEFAULT_PROFILE = "default"
DEFAULT_REGION = "us"
FIELDS = ("url", "user", "token", "region")
ENV = {"url": "TENX_URL", "user": "TENX_USER", "token": "TENX_TOKEN", "region": "TENX_REGION"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(base) / "tenx" / "config.toml"


def _string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def dumps(data: dict[str, Any]) -> str:
    """TOML for ``{"current_profile": str, "profiles": {name: {field: str}}}`` (strings only)."""
    lines = [f"{_key(k)} = {_string(str(v))}" for k, v in data.items() if k != "profiles" and v is not None]
    for name, profile in (data.get("profiles") or {}).items():
        lines += ["", f"[profiles.{_key(name)}]"]
        lines += [f"{_key(k)} = {_string(str(v))}" for k, v in profile.items() if v is not None]
    return "\n".join(lines).lstrip("\n") + "\n"


def load(path: Path) -> dict[str, Any]:
    """The file's contents; an absent file is an empty config, a broken one a usage error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def save(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, readable by the owner only: a new file made 0600 before a byte is in it, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as sink:
            sink.write(dumps(data))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def profile_name(data: Mapping[str, Any], chosen: str | None, environ: Mapping[str, str] = os.environ) -> str:
    return chosen or environ.get("TENX_PROFILE") or data.get("current_profile") or DEFAULT_PROFILE


@dataclass(frozen=True)
class Credentials:
    url: str
    user: str
    token: str
    region: str
    profile: str

    def __repr__(self) -> str:  # never the token
        return f"Credentials(url={self.url!r}, user={self.user!r}, region={self.region!r}, profile={self.profile!r})"


def resolve(data: Mapping[str, Any], profile: str, environ: Mapping[str, str] = os.environ,
            overrides: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """The profile's fields, then the environment, then command-line ``overrides`` (each wins over the one before)."""
    stored = (data.get("profiles") or {}).get(profile) or {}
    fields: dict[str, str | None] = {key: stored.get(key) for key in FIELDS}
    for key, variable in ENV.items():
        if environ.get(variable):
            fields[key] = environ[variable]
    for key, value in (overrides or {}).items():
        if value:
            fields[key] = value
    return fields


def credentials(data: Mapping[str, Any], profile: str, environ: Mapping[str, str] = os.environ,
                overrides: Mapping[str, str | None] | None = None) -> Credentials:
    fields = resolve(data, profile, environ, overrides)
    missing = [ENV[key] for key in ("url", "user", "token") if not fields[key]]
    if missing:
        raise AuthError(f"not logged in (profile {profile!r}): run `tenx login` or set {', '.join(missing)}")
    return Credentials(url=str(fields["url"]).rstrip("/"), user=str(fields["user"]), token=str(fields["token"]),
                       region=fields["region"] or DEFAULT_REGION, profile=profile)


def with_profile(data: dict[str, Any], name: str, fields: Mapping[str, str], *, current: bool = True) -> dict:
    """A copy of ``data`` with profile ``name`` set to ``fields`` (and made the current one)."""
    profiles = {key: dict(value) for key, value in (data.get("profiles") or {}).items()}
    profiles[name] = {key: fields[key] for key in FIELDS if fields.get(key)}
    result = {key: value for key, value in data.items() if key != "profiles"}
    if current:
        result["current_profile"] = name
    result["profiles"] = profiles
    return result


def loose_mode(path: Path) -> bool:
    """Whether others than the owner may read the file (it holds tokens)."""
    try:
        return bool(path.stat().st_mode & 0o077)
    except FileNotFoundError:
        return False
