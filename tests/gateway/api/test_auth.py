"""Logins: one client's failures never refuse another client's valid credentials; guessing stays slow per client and
per user name; names that cannot be users never become throttle keys."""
import time

import pytest

from gateway import errors
from gateway.api.auth import authenticate, authenticate_stream, client_key
from gateway.streams import token as stream_token
from gateway.api.throttle import FailureThrottle

from tests.support.fake_users import TableUsers
from tests.support.clock import Clock

LIMIT = 3
USERS = TableUsers({"alice": "right", "bob": "bobs"})


def login(throttle, client, username="alice", token="right"):
    """The status a login gets: 200, 401 or 429."""
    headers = {"username": username, "Authorization": f"token {token}"}
    try:
        authenticate(headers, USERS, throttle, client)
    except errors.GatewayError as exc:
        return exc.code
    return 200


@pytest.fixture
def throttle():
    return FailureThrottle(LIMIT, 60, clock=Clock())


def test_a_client_past_its_limit_is_refused_even_the_right_token(throttle):
    assert [login(throttle, "10.0.0.1", f"guess{i}", "x") for i in range(LIMIT + 1)] == [401] * LIMIT + [429]
    assert login(throttle, "10.0.0.1") == 429
    assert login(throttle, "10.0.0.2") == 200


def test_guessers_of_a_name_never_lock_its_owner_out(throttle):
    """Failures for alice from many addresses: her name is past its limit, yet a client with a clean record is
    still checked, so alice gets in from her own address, and bob is not touched."""
    assert [login(throttle, f"10.0.1.{i}", token="wrong") for i in range(2 * LIMIT)] == [401] * (2 * LIMIT)
    assert throttle.retry_after(["user:alice"]) > 0
    assert login(throttle, "10.0.9.9") == 200
    assert login(throttle, "10.0.9.8", "bob", "bobs") == 200


def test_a_client_that_failed_gets_one_try_at_a_name_under_attack(throttle):
    for i in range(LIMIT):
        login(throttle, f"10.0.1.{i}", token="wrong")
    assert login(throttle, "10.0.2.1", token="wrong") == 401  # its first failure: checked, refused
    assert login(throttle, "10.0.2.1", token="wrong") == 429  # from now on, this name is blocked for it
    assert login(throttle, "10.0.2.1") == 429  # even with the right token
    assert login(throttle, "10.0.2.1", "bob", "bobs") == 200  # other names are not


@pytest.mark.parametrize("username", ["../x", ".hidden", "a b", "x" * 65, "ü", "alice/x"])
def test_names_that_cannot_be_users_are_refused_without_a_key(throttle, username):
    assert login(throttle, "10.0.3.1", username, "x") == 401
    assert throttle._failures == {}


def test_a_client_past_its_limit_gets_429_even_for_an_invalid_name(throttle):
    for i in range(LIMIT):
        login(throttle, "10.0.4.1", f"guess{i}", "x")
    assert login(throttle, "10.0.4.1", "../x", "x") == 429


@pytest.mark.parametrize("address,key", [
    ("192.0.2.7", "client:192.0.2.7"),
    ("::ffff:192.0.2.7", "client:192.0.2.7"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "client:2001:db8:1:2::/64"),
    ("2001:db8:1:2::1", "client:2001:db8:1:2::/64"),
    ("", "client:"),
    ("unix-socket", "client:unix-socket"),
])
def test_client_keys(address, key):
    assert client_key(address) == key


def stream_login(throttle, client, token):
    try:
        authenticate_stream({}, {"stream_token": token}, USERS, throttle, client, "us")
    except errors.GatewayError as exc:
        return exc.code
    return 200


def alices_stream_token(lifetime):
    key = stream_token.signing_key(USERS.stored_digest("alice"))
    return stream_token.issue("alice", "us", key, now=time.time(), lifetime=lifetime)


def test_an_expired_genuine_stream_token_is_refused_but_no_failed_login(throttle):
    """An EventSource reconnecting with its old token after a ``shutdown``: behind one NAT or Ingress, counting
    those would lock everyone at that address out."""
    expired = alices_stream_token(-5)
    assert [stream_login(throttle, "10.0.5.1", expired) for _ in range(3 * LIMIT)] == [401] * (3 * LIMIT)
    assert throttle._failures == {}
    assert login(throttle, "10.0.5.1") == 200
    assert stream_login(throttle, "10.0.5.1", alices_stream_token(60)) == 200


def test_a_forged_or_malformed_stream_token_is_a_failed_login(throttle):
    forged = alices_stream_token(60)[:-4] + "AAAA"
    assert [stream_login(throttle, "10.0.5.2", t) for t in (forged, "x", forged, forged)] == [401] * LIMIT + [429]
