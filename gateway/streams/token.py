"""Stream tokens: short-lived, signed, bound to one user and one region, for clients that cannot send headers
(a browser's EventSource). Pure: the caller supplies the user's key and the clock.

The key is derived from the user's stored token digest (the users Secret holds only that SHA-256). So every worker
and replica checks tokens with no secret of its own, and rotating or removing a user's API token revokes their
stream tokens at once. Anyone who can read the users Secret could mint stream tokens, as they could mint nothing
else: the Secret is the gateway's (and its operators') alone.

A token is ``<payload>.<signature>``, both base64url without padding; the payload is JSON
``{"u": user, "r": region, "x": expiry (unix seconds), "n": nonce}``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Callable

import orjson

_LABEL = b"tenx-gateway stream token v1\x00"
MAX_TOKEN_LENGTH = 1024


class InvalidToken(ValueError):
    """Malformed, forged, expired, or for another region; the message says which (never shown to the caller)."""


class SpentToken(InvalidToken):
    """A token this gateway did sign, no longer good here: expired, or for another region. Not a guess: a client
    that reconnects with it (an EventSource after a ``shutdown``) is no failed login."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(stored_digest: str) -> bytes:
    """The HMAC key of a user: their stored token digest, under a label of its own."""
    return hashlib.sha256(_LABEL + stored_digest.encode()).digest()


def issue(username: str, region: str, key: bytes, *, now: float, lifetime: int) -> str:
    payload = _b64(orjson.dumps({"u": username, "r": region, "x": int(now) + lifetime,
                                 "n": secrets.token_urlsafe(9)}))
    return f"{payload}.{_b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())}"


def claimed_user(token: str) -> str:
    """The user a token names, before its signature is checked (to find the key)."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise InvalidToken("malformed")
    try:
        claims = orjson.loads(_unb64(token.split(".", 1)[0]))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidToken("malformed") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("u"), str):
        raise InvalidToken("malformed")
    return claims["u"]


def verify(token: str, region: str, key_of: Callable[[str], bytes | None], *, now: float) -> str:
    """The user the token was issued to, once its signature, expiry and region are right."""
    username = claimed_user(token)
    key = key_of(username)
    payload, _, signature = token.partition(".")
    expected = hmac.new(key or b"\x00" * 32, payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
    except ValueError:
        raise InvalidToken("malformed") from None
    if not hmac.compare_digest(expected, given) or key is None:
        raise InvalidToken("bad signature")
    claims = orjson.loads(_unb64(payload))
    if not isinstance(claims.get("x"), int) or claims["x"] < now:
        raise SpentToken("expired")
    if claims.get("r") != region:
        raise SpentToken("another region")
    return username
