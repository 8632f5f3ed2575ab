"""The gateway's HTTP API, as the original's clients call it: the ``username`` and ``Authorization: token ...``
headers on every call under ``/v1/regions/{region}``. Failures become ``errors.TenxError``s."""
from __future__ import annotations

from typing import Any, Iterator, NamedTuple
from urllib.parse import quote

import requests

from . import __version__
from .config import Credentials
from .errors import TenxError, Unavailable, from_response

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
# A stream sends a heartbeat every few seconds (docs/api.md, "Follow and watch": 5 s by default): this long without
# a byte means it is dead, and the caller reconnects from the last event it got.
STREAM_READ_TIMEOUT = 30.0
EVENT_STREAM = "text/event-stream"


def _segment(value: str) -> str:
    return quote(value, safe="")


class Client:
    def __init__(self, credentials: Credentials, *, session: requests.Session | None = None):
        self.credentials = credentials
        self.base = f"{credentials.url}/v1/regions/{_segment(credentials.region)}"
        self.session = session or requests.Session()
        self.session.headers.update({"username": credentials.user, "Authorization": f"token {credentials.token}",
                                     "User-Agent": f"tenx/{__version__}"})

    # --- plumbing ---

    def request(self, method: str, path: str, *, stream: bool = False, timeout: float = READ_TIMEOUT,
                headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """One call; an error answer raises the exception its status stands for (with the gateway's message)."""
        url = self.base + path
        try:
            response = self.session.request(method, url, stream=stream, timeout=(CONNECT_TIMEOUT, timeout),
                                            headers=headers, **kwargs)
        except requests.Timeout:
            raise Unavailable(f"the gateway at {self.credentials.url} did not answer in time") from None
        except requests.ConnectionError as exc:
            raise Unavailable(f"cannot reach the gateway at {self.credentials.url}: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise Unavailable(f"the gateway's answer to {method} {path} is not JSON") from None

    # --- the calls ---

    def list_jobs(self) -> dict[str, Any]:
        return self.json("GET", "/jobs")

    def get_job(self, name: str) -> dict[str, Any]:
        return self.json("GET", f"/jobs/{_segment(name)}")

    def create_job(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.json("POST", f"/jobs/{_segment(name)}", json=spec)

    def delete_job(self, name: str) -> dict[str, Any]:
        return self.json("DELETE", f"/jobs/{_segment(name)}")

    def instances(self, name: str) -> list[dict[str, Any]] | None:
        """The extension's instance records; None from a gateway without it (the original API), when the job
        itself exists."""
        try:
            return self.json("GET", f"/jobs/{_segment(name)}/instances").get("instances") or []
        except TenxError as exc:
            if exc.status not in (404, 405):
                raise
        self.get_job(name)  # not found: raises
        return None

    def instance_logs(self, name: str, instance: str, **query: Any) -> LogPage:
        """A page of one instance's lines."""
        return _log_page(self.request("GET", f"/jobs/{_segment(name)}/instances/{_segment(instance)}/logs",
                                      params=_log_params(query)))

    def job_logs(self, name: str, **query: Any) -> LogPage:
        return _log_page(self.request("GET", f"/jobs/{_segment(name)}/logs", params=_log_params(query)))

    def open_stream(self, path: str, params: dict[str, Any] | None = None,
                    last_event_id: str | None = None) -> requests.Response | None:
        """A Server-Sent Events stream, or None when the gateway answers with anything else (one without streams
        ignores ``follow=true`` and sends a page): the caller then polls."""
        headers = {"Accept": EVENT_STREAM, "Cache-Control": "no-cache"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        response = self.request("GET", path, params=params, headers=headers, stream=True,
                                timeout=STREAM_READ_TIMEOUT)
        if response.headers.get("Content-Type", "").split(";")[0].strip() != EVENT_STREAM:
            response.close()
            return None
        return response


def _get_open(url: str, path: str) -> requests.Response:
    """A GET of a call that needs no credentials; no answer is Unavailable."""
    try:
        return requests.get(f"{url.rstrip('/')}{path}", timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                            headers={"User-Agent": f"tenx/{__version__}"})
    except requests.Timeout:
        raise Unavailable(f"the gateway at {url} did not answer in time") from None
    except requests.ConnectionError as exc:
        raise Unavailable(f"cannot reach the gateway at {url}: {_reason(exc)}") from None


def regions(url: str) -> list[str] | None:
    """The gateway's regions (``GET /v1/regions`` needs no credentials); None if it has no such call."""
    response = _get_open(url, "/v1/regions")
    if response.status_code != 200:
        return None
    try:
        return [region["name"] for region in response.json().get("regions") or []]
    except (ValueError, AttributeError, KeyError, TypeError):
        return None


def server_version(url: str) -> dict[str, Any]:
    """The gateway's ``GET /version`` (no credentials needed): ``{"version", "commit"?}``. A gateway older than
    that call (or the original API) answers 404: its version is then unknown."""
    response = _get_open(url, "/version")
    if response.status_code == 404:
        return {"version": "unknown (the gateway has no GET /version)"}
    if response.status_code >= 400:
        raise error_of(response)
    try:
        body = response.json()
        return {key: str(body[key]) for key in ("version", "commit") if body.get(key) is not None}
    except (ValueError, AttributeError, TypeError):
        raise Unavailable("the gateway's answer to GET /version is not its version") from None


def error_of(response: requests.Response) -> TenxError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return from_response(response.status_code, body, response.text if body is None else "",
                         response.headers.get("Retry-After"))


class LogPage(NamedTuple):
    lines: list[str]
    truncated: bool       # the gateway cut the page short (X-Log-Truncated): ask again from where it ends
    offset: int | None    # with ``since``: the line the page starts at (X-Log-Offset), which ``from`` may not be


def _log_page(response: requests.Response) -> LogPage:
    start = response.headers.get("X-Log-Offset", "")
    return LogPage(response.json(), response.headers.get("X-Log-Truncated") == "true",
                   int(start) if start.isascii() and start.isdigit() else None)


def _log_params(query: dict[str, Any]) -> dict[str, Any]:
    """``offset`` is ``from``; ``timestamps`` is sent only when asked for (an old gateway ignores what it does not
    know, and the original API knows neither it nor ``since``)."""
    params = {("from" if key == "offset" else key): value for key, value in query.items()
              if value is not None and value is not False}
    if params.get("timestamps") is True:
        params["timestamps"] = "true"
    return params


def _reason(exc: BaseException) -> str:
    """The innermost reason of a connection error ("Connection refused", "Name or service not known"): the OS
    error at the end of requests' and urllib3's chain of wrappers, not their whole repr (whose quotes used to end
    the message)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    reason = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        current = inner or current.__cause__ or current.__context__
    return reason or type(exc).__name__


def iter_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives (``chunk_size=None``: whatever the socket has, not fixed-size blocks)."""
    yield from response.iter_content(chunk_size=None)
