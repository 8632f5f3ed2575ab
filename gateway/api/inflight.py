"""Each user's ordinary calls in progress, bounded per host (``GATEWAY_REQUESTS_MAX_PER_USER``).

A place is taken once the credentials are proven, before any work, and given back when the WSGI server closes the
answer's body: after its last byte, or when the connection broke or the send timeout dropped the client
(gateway/api/workers.py), HEAD and errors included. So one user's clients that never read hold at most that many
answers in the workers' memory, and one more call of theirs is a 429 that costs next to nothing: it waits
``ADMIT_GRACE_SECONDS`` for a place first, because a client that calls one call after another can send its next
before the worker that sent the last answer's final byte has given that place back (a cap of 1 answered such a
client 429 in CI). Streams are bounded by
their own cap (``GATEWAY_STREAM_MAX_PER_USER``, gateway/streams/slots.py) and take no place here. The places are
slot files shared by the host's workers, as the streams' are.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from flask import request
from werkzeug.wsgi import ClosingIterator

from .. import errors
from ..settings import Settings
from ..streams import slots

ENVIRON_KEY = "tenx.request_place"
KIND = "request"
ADMIT_GRACE_SECONDS = 0.5
ADMIT_RETRY_SECONDS = 0.01


def admit(username: str, settings: Settings) -> None:
    """Take one of ``username``'s places for the current request, or 429."""
    deadline = time.monotonic() + ADMIT_GRACE_SECONDS
    place = slots.acquire(username, settings.requests_max_per_user, kind=KIND)
    while place is None and time.monotonic() < deadline:
        time.sleep(ADMIT_RETRY_SECONDS)  # a greenlet's sleep under the gevent worker: the others run meanwhile
        place = slots.acquire(username, settings.requests_max_per_user, kind=KIND)
    if place is None:
        raise errors.TooManyRequests(
            f"at most {settings.requests_max_per_user} calls at once per user (GATEWAY_REQUESTS_MAX_PER_USER)",
            headers={"Retry-After": str(settings.retry_after_seconds)})
    request.environ[ENVIRON_KEY] = place


def _give_back(environ: dict[str, Any]) -> None:
    place = environ.pop(ENVIRON_KEY, None)
    if place is not None:
        place.release()


def releasing(wsgi_app: Callable) -> Callable:
    """``wsgi_app`` whose answers give their request's place back when the server closes them."""

    def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        try:
            body = wsgi_app(environ, start_response)
        except BaseException:
            _give_back(environ)
            raise
        if ENVIRON_KEY not in environ:
            return body  # nothing held (no credentials, a stream): the body as it is (a file is sent as a file)
        return ClosingIterator(body, lambda: _give_back(environ))

    return app
