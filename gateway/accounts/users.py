"""Users and their API tokens, kept in one Secret in the gateway's namespace.

Only a SHA-256 of each token is stored: tokens are 256 random bits, so a fast hash is as safe as a slow one and
keeps every request cheap. Each gateway process keeps the table in memory, kept current by a reflector of the Secret
(``kube.reflector``: a LIST every ``auth_cache_seconds``, a WATCH in between, so a change arrives within
milliseconds); a login only reads memory, so a known and an unknown user name cost the same time and no request
waits on the apiserver.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import os
import secrets
import threading
from typing import Any, Callable

import orjson

from .. import errors, timefmt
from ..settings import Settings
from ..kube.client import Kube, Regions
from ..kube.reflector import Reflector
from ..jobs.manifest import namespace_manifest
from ..names import MANAGED_BY, MANAGED_BY_LABEL, is_username, namespace_for

log = logging.getLogger(__name__)

TABLE_KEY = "users.json"
_FIRST_LOAD_SECONDS = 10.0  # how long the first logins of a process wait for the table before 503
_NO_USER_DIGEST = hashlib.sha256(b"no such user").hexdigest()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _table(secret: dict[str, Any] | None) -> dict[str, Any]:
    if not secret:
        return {}
    raw = (secret.get("data") or {}).get(TABLE_KEY)
    return orjson.loads(base64.b64decode(raw)) if raw else {}


class UserStore:
    def __init__(self, kube_for_users: Callable[[], Kube], *, namespace: str, secret_name: str,
                 cache_seconds: float, namespace_prefix: str):
        self._kube = kube_for_users
        self._namespace = namespace
        self._secret_name = secret_name
        self._cache_seconds = cache_seconds
        self._namespace_prefix = namespace_prefix
        self._users: dict[str, Any] = {}
        self._reflector: Reflector | None = None
        self._reflector_pid: int | None = None  # the process whose reflector keeps the table; a fork starts its own
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

    def verify(self, username: str, token: str) -> bool:
        """Constant-time check of a token against the stored digest, from memory only; unknown users cost the same
        (a dict lookup, then the same digest and comparison against a stand-in)."""
        entry = self._current().get(username)
        stored = entry["token_sha256"] if entry else _NO_USER_DIGEST
        return hmac.compare_digest(stored, token_digest(token)) and entry is not None

    def stored_digest(self, username: str) -> str | None:
        """The user's stored token digest (None for an unknown user): the key material of their stream tokens
        (gateway/streams/token.py), so a new token revokes those too."""
        entry = self._current().get(username)
        return entry["token_sha256"] if entry else None

    def _current(self) -> dict[str, Any]:
        """The table in memory; the first call of a process starts the reflector and waits for its first LIST."""
        if self._reflector_pid != os.getpid():
            with self._lock:
                if self._reflector_pid != os.getpid():
                    self._reflector = Reflector(
                        self._kube(), f"/api/v1/namespaces/{self._namespace}/secrets",
                        field_selector=f"metadata.name={self._secret_name}", on_event=self._on_event,
                        name="users", watch_seconds=max(1, math.ceil(self._cache_seconds)),
                        relist_seconds=self._cache_seconds).start()
                    self._reflector_pid = os.getpid()
        reflector = self._reflector
        assert reflector is not None
        # An unreachable cluster answers at once (503), not after _FIRST_LOAD_SECONDS per login: the reflector
        # keeps retrying, and the first login after a successful LIST goes through.
        if not reflector.settled.wait(_FIRST_LOAD_SECONDS) or not reflector.synced.is_set():
            raise errors.Unavailable("the user table could not be read from the cluster yet; try again shortly",
                                     headers={"Retry-After": "5"})
        return self._users

    def _on_event(self, kind: str, secret: dict[str, Any]) -> None:
        self._users = {} if kind == "DELETED" else _table(secret)  # replaced whole: readers need no lock

    def close(self, wait: float | None = None) -> bool:
        """Stop the reflector; with ``wait``, wait that long for it. True once it has stopped."""
        reflector = self._reflector
        if reflector is not None:
            reflector.stop(wait)
        return reflector is None or not reflector.alive

    def list(self) -> list[dict[str, str]]:
        table = _table(self._secret())
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
                               "created": timefmt.rfc3339(timefmt.now())}

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
            table = _table(secret)
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
            return
        raise errors.Conflict("the user table kept changing underneath; try again")
