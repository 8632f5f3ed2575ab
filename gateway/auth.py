"""The original API's credentials: a ``username`` header and ``Authorization: token <token>``."""
from __future__ import annotations

import ipaddress
import math
import time
from typing import Mapping

from . import errors
from .names import is_username
from .streams import token as stream_token
from .throttle import FailureThrottle
from .users import UserStore

_CHALLENGE = {"WWW-Authenticate": 'Token realm="tenx-gateway"'}
_IPV6_CLIENT_PREFIX = 64  # one subscriber's share of IPv6: any address in a /64 is the same client


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


def client_key(address: str) -> str:
    """The throttle key of a client address: IPv4 as is, IPv6 by its /64 (a host gets a whole /64 for free)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"client:{address[:64]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
            return f"client:{ip.ipv4_mapped}"
        return f"client:{ipaddress.ip_network(f'{ip}/{_IPV6_CLIENT_PREFIX}', strict=False)}"
    return f"client:{ip}"


def _refuse(wait: float) -> None:
    if wait:
        raise errors.TooManyRequests("too many failed logins; try again later",
                                     headers={"Retry-After": str(math.ceil(wait))})


def authenticate(headers: Mapping[str, str], users: UserStore, throttle: FailureThrottle, client: str) -> str:
    """The caller's user name, once the token is proven to be theirs.

    Failures are counted per client address and per user name. A client past its limit gets 429 before anything
    else. A user name past its limit gets 429 only from clients that have failed themselves within the window: a
    client with a clean record always has its credentials checked, so nobody can lock a user out by failing in
    their name, while a guesser gets one wrong try per address per window at a name under attack. A name that
    cannot be a user's is refused before it becomes a throttle key, so made-up names cannot fill the table.
    """
    username, token = credentials(headers)
    by_client = client_key(client)
    _refuse(throttle.retry_after([by_client]))
    if not is_username(username):
        raise errors.Unauthorized("invalid username or token", headers=_CHALLENGE)
    by_name = f"user:{username}"
    if throttle.failed(by_client):
        _refuse(throttle.retry_after([by_name]))
    if not users.verify(username, token):
        throttle.record_failure((by_client, by_name))
        raise errors.Unauthorized("invalid username or token", headers=_CHALLENGE)
    return username


STREAM_TOKEN_PARAMETER = "stream_token"


def authenticate_stream(headers: Mapping[str, str], query: Mapping[str, str], users: UserStore,
                        throttle: FailureThrottle, client: str, region: str) -> str:
    """For the stream calls only (follow=true logs, watch): the headers as for every call, or a stream token in the
    query (EventSource cannot send headers). A malformed or forged token counts as a failed login of its client; a
    genuine one that expired (or is another region's) is refused without counting: clients reconnect with theirs
    after a ``shutdown``, and behind one address (a NAT, an Ingress) those would lock everyone out."""
    token = query.get(STREAM_TOKEN_PARAMETER)
    if token is None:
        return authenticate(headers, users, throttle, client)
    by_client = client_key(client)
    _refuse(throttle.retry_after([by_client]))

    def key_of(username: str) -> bytes | None:
        digest = users.stored_digest(username) if is_username(username) else None
        return stream_token.signing_key(digest) if digest else None

    try:
        return stream_token.verify(token, region, key_of, now=time.time())
    except stream_token.SpentToken:
        raise errors.Unauthorized("invalid or expired stream token", headers=_CHALLENGE) from None
    except stream_token.InvalidToken:
        throttle.record_failure((by_client,))
        raise errors.Unauthorized("invalid or expired stream token", headers=_CHALLENGE) from None
