"""Checks a real response against the OpenAPI document: its status is documented for that call, and its body
matches the documented schema. Used by the unit tests (Flask test client) and the integration tests (gunicorn)."""
from __future__ import annotations

import json
import re
from typing import Any

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

_URI = "urn:tenx-gateway:openapi"


class OpenApiDocument:
    def __init__(self, document: dict[str, Any]):
        self.document = document
        self._registry = Registry().with_resource(_URI, Resource.from_contents(document,
                                                                                default_specification=DRAFT4))
        self._templates = [(re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"), path)
                           for path in document["paths"]]

    def template(self, path: str) -> str:
        matches = [template for pattern, template in self._templates if pattern.match(path)]
        assert len(matches) == 1, f"{path} matches {matches or 'no path'} of the document"
        return matches[0]

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes | str) -> None:
        """Raise AssertionError unless this answer is one the document describes for this call."""
        template = self.template(path.split("?", 1)[0])
        path_item = self.document["paths"][template]
        operation = path_item.get(method.lower())
        if operation is None and status == 405:  # a method the path does not have: documented on those it has
            operation = next((op for key, op in path_item.items() if key != "parameters" and "405" in
                              op["responses"]), None)
        assert operation is not None, f"{method} {template} is not in the document"
        response = operation["responses"].get(str(status)) or operation["responses"].get("default")
        assert response is not None, f"{method} {template}: status {status} is not documented"
        content = response.get("content")
        if not content:
            return
        media = content_type.split(";", 1)[0].strip()
        assert media in content, f"{method} {template} {status}: {media} is not documented ({list(content)})"
        if media != "application/json":
            return
        instance = json.loads(body)
        validator = OAS30Validator(self._resolvable(content[media]["schema"]), registry=self._registry)
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                    for e in validator.iter_errors(instance)]
        assert not problems, f"{method} {path} {status} does not match the document:\n" + "\n".join(problems)

    def check_response(self, method: str, path: str, response: Any) -> None:
        """A Flask test-client or requests response."""
        body = response.get_data() if hasattr(response, "get_data") else response.content
        content_type = response.headers.get("Content-Type", "")
        self.check(method, path, response.status_code, content_type, body)

    @staticmethod
    def _resolvable(schema: dict[str, Any]) -> dict[str, Any]:
        """Local ``#/components/...`` references, pointed at the registered document."""
        text = json.dumps(schema).replace('"$ref": "#/', f'"$ref": "{_URI}#/')
        return json.loads(text)
