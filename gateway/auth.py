"""The original API's credentials: a ``username`` header and ``Authorization: token <token>``."""
from __future__ import annotations

from typing import Mapping

from . import errors
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


def authenticate(headers: Mapping[str, str], users: UserStore) -> str:
    """The caller's user name, once the token is proven to be theirs."""
    username, token = credentials(headers)
    if not users.verify(username, token):
        raise errors.Unauthorized("invalid username or token", headers=_CHALLENGE)
    return username
