"""Users and their API tokens, kept in one Secret in the gateway's namespace.

Only a SHA-256 of each token is stored: tokens are 256 random bits, so a fast hash is as safe as a slow one and
keeps every request cheap. The table is cached for ``auth_cache_seconds``; a removed user is locked out within
that time on every gateway process.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from typing import Any, Callable

import orjson

from . import errors
from .config import Settings
from .kube import Kube, Regions
from .manifest import namespace_manifest
from .names import MANAGED_BY, MANAGED_BY_LABEL, is_username, namespace_for

TABLE_KEY = "users.json"
_MISS_REFRESH_SECONDS = 0.5
_NO_USER_DIGEST = hashlib.sha256(b"no such user").hexdigest()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


class UserStore:
    def __init__(self, kube_for_users: Callable[[], Kube], *, namespace: str, secret_name: str,
                 cache_seconds: float, namespace_prefix: str):
        self._kube = kube_for_users
        self._namespace = namespace
        self._secret_name = secret_name
        self._cache_seconds = cache_seconds
        self._namespace_prefix = namespace_prefix
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, regions: Regions, *, cache_seconds: float | None = None) -> UserStore:
        """The store in the first region's cluster, as the settings place it."""
        return cls(lambda: regions.get(settings.default_region), namespace=settings.namespace,
                   secret_name=settings.users_secret, namespace_prefix=settings.namespace_prefix,
                   cache_seconds=settings.auth_cache_seconds if cache_seconds is None else cache_seconds)

    # -- reading -------------------------------------------------------------------------------------------

    def _secret(self) -> dict[str, Any] | None:
        try:
            return self._kube().get_secret(self._namespace, self._secret_name)
        except errors.NotFound:
            return None

    @staticmethod
    def _table(secret: dict[str, Any] | None) -> dict[str, Any]:
        if not secret:
            return {}
        raw = (secret.get("data") or {}).get(TABLE_KEY)
        return orjson.loads(base64.b64decode(raw)) if raw else {}

    def _users(self, max_age: float | None = None) -> dict[str, Any]:
        now = time.monotonic()
        max_age = self._cache_seconds if max_age is None else max_age
        with self._lock:
            if self._cached is not None and now - self._cached_at < max_age:
                return self._cached
        table = self._table(self._secret())
        with self._lock:
            self._cached, self._cached_at = table, now
        return table

    def verify(self, username: str, token: str) -> bool:
        """Constant-time check of a token against the stored digest; unknown users cost the same.

        A user name missing from the cached table makes the table be re-read (at most every
        ``_MISS_REFRESH_SECONDS``), so a user just added can log in within that time.
        """
        entry = self._users().get(username)
        if entry is None:
            entry = self._users(max_age=_MISS_REFRESH_SECONDS).get(username)
        stored = entry["token_sha256"] if entry else _NO_USER_DIGEST
        return hmac.compare_digest(stored, token_digest(token)) and entry is not None

    def list(self) -> list[dict[str, str]]:
        table = self._table(self._secret())
        return [{"name": name, "namespace": namespace_for(name, self._namespace_prefix),
                 "created": entry.get("created", "")} for name, entry in sorted(table.items())]

    # -- writing -------------------------------------------------------------------------------------------

    def add(self, username: str) -> str:
        """Create a user and return its new token (shown once, never stored)."""
        if not is_username(username):
            raise errors.BadRequest("user names are 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                                    "or digit")
        token = new_token()

        def change(table: dict[str, Any]) -> None:
            if username in table:
                raise errors.Conflict(f"user {username!r} exists")
            namespace = namespace_for(username, self._namespace_prefix)
            clash = [n for n in table if namespace_for(n, self._namespace_prefix) == namespace]
            if clash:
                raise errors.Conflict(f"user {username!r} would share namespace {namespace} with {clash[0]!r}")
            table[username] = {"token_sha256": token_digest(token),
                               "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}

        self._update(change)
        return token

    def remove(self, username: str) -> None:
        def change(table: dict[str, Any]) -> None:
            if table.pop(username, None) is None:
                raise errors.NotFound(f"no user {username!r}")

        self._update(change)

    def _update(self, change: Callable[[dict[str, Any]], None], attempts: int = 5) -> None:
        """Read-modify-write with the Secret's resourceVersion; a concurrent writer makes us re-read."""
        kube = self._kube()
        for _ in range(attempts):
            secret = self._secret()
            table = self._table(secret)
            change(table)
            data = {TABLE_KEY: base64.b64encode(orjson.dumps(table, option=orjson.OPT_SORT_KEYS)).decode()}
            try:
                if secret is None:
                    kube.create_namespace(namespace_manifest(self._namespace))
                    kube.create_secret(self._namespace, {
                        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": self._secret_name, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
                        "data": data})
                else:
                    secret["data"] = data
                    kube.replace_secret(self._namespace, self._secret_name, secret)
            except errors.Conflict:
                continue
            with self._lock:
                self._cached = None
            return
        raise errors.Conflict("the user table kept changing underneath; try again")
