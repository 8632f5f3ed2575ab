"""What every answer of the gateway must be, whatever it was sent (the fuzzer's properties)."""
from __future__ import annotations

import json
from http import HTTPStatus
from typing import Mapping

ERROR_KEYS = {"code", "status", "message"}


def answer_problems(method: str, status: int, headers: Mapping[str, str], body: bytes) -> list[str]:
    """Never a 5xx but a 503 with Retry-After; every error in the one shape ``{"code", "status", "message"
    [, "errors"]}`` with ``code`` the HTTP status. An empty list when the answer is fine."""
    problems = []
    if status >= 500 and not (status == 503 and headers.get("Retry-After")):
        problems.append(f"server error {status}" + (" (503 without Retry-After)" if status == 503 else ""))
    if status < 400 or method == "HEAD":  # a HEAD answer has no body to check
        return problems
    try:
        doc = json.loads(body)
    except ValueError:
        return [*problems, "error body is not JSON"]
    if not isinstance(doc, dict) or not ERROR_KEYS <= doc.keys() or doc.keys() - ERROR_KEYS - {"errors"}:
        return [*problems, f"error body not in the error shape: keys {sorted(doc) if isinstance(doc, dict) else doc}"]
    if doc["code"] != status:
        problems.append(f"error code {doc['code']!r} is not the HTTP status {status}")
    if doc["status"] != HTTPStatus(status).phrase:
        problems.append(f"error status {doc['status']!r} is not {HTTPStatus(status).phrase!r}")
    if not isinstance(doc["message"], str) or not doc["message"]:
        problems.append("error message is not a non-empty string")
    if "errors" in doc and not isinstance(doc["errors"], dict):
        problems.append("errors is not an object")
    return problems
