"""The original API's credentials: a ``username`` header and ``Authorization: token <token>``."""
from __future__ import annotations

from typing import Mapping

import math

from . import errors
from .throttle import FailureThrottle
from .users import UserStore

_CHALLENGE = {"WWW-Authenticate": 'Token realm="tenx-gateway"'}


def credentials(headers: Mapping[str, str]) -> tuple[str, str]:
    """(username, token) from the request headers, or 401 saying what is missing or malformed."""
    username = headers.get("username", "").strip()
    authorization = headers.get("Authorization", "").strip()
    if not username:
        raise errors.Unauthorized("the username header is missing", headers=_CHALLENGE)
    if not authorization:
        raise errors.Unauthorized("the Authorization header is missing", headers=_CHALLENGE)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "token" or not token or " " in token:
        raise errors.Unauthorized("the Authorization header must be 'token <api token>'", headers=_CHALLENGE)
    return username, token


def authenticate(headers: Mapping[str, str], users: UserStore, throttle: FailureThrottle, client: str) -> str:
    """The caller's user name, once the token is proven to be theirs.

    Failures are counted per client address and per user name; past the limit the caller gets 429 before the
    token is even looked at, so guessing stays slow whichever of the two an attacker varies.
    """
    username, token = credentials(headers)
    keys = (f"client:{client}", f"user:{username}")
    wait = throttle.retry_after(keys)
    if wait:
        raise errors.TooManyRequests("too many failed logins; try again later",
                                     headers={"Retry-After": str(math.ceil(wait))})
    if not users.verify(username, token):
        throttle.record_failure(keys)
        raise errors.Unauthorized("invalid username or token", headers=_CHALLENGE)
    return username
