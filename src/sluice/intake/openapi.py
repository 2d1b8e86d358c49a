"""The OpenAPI 3.0 paths of submit endpoints, built from their declarations: the request
schema is the one the lenient validation applies. Every schema is inline (no ``$ref``), so
that the paths can be merged into any service's document as they are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sluice.intake.http import Endpoint

_JSON = "application/json"
_STRING = {"type": "string"}

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["errors", "code", "message"],
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["domain", "reason", "message"],
                        "properties": {"domain": _STRING, "reason": _STRING, "message": _STRING},
                    },
                },
                "code": {"type": "integer"},
                "message": _STRING,
                "details": {"type": "object"},
            },
        }
    },
}
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": {"schema": _STRING},
    "Access-Control-Max-Age": {"schema": _STRING},
}
#: No token: the submit API is open even where the rest of a service is guarded (an empty
#: list overrides a document's global ``security``).
_OPEN: list[dict[str, list[str]]] = []
_KEY = {
    "name": "key",
    "in": "query",
    "required": False,
    "description": "An API key; a missing, malformed or unknown key counts as none.",
    "schema": _STRING,
}


def _error(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {**_CORS_HEADERS, **headers},
        "content": {_JSON: {"schema": ERROR}},
    }


def _success(endpoint: Endpoint) -> dict[str, Any]:
    if endpoint.success == 204:
        return {"description": "Accepted (or sampled out)", "headers": _CORS_HEADERS}
    return {
        "description": "Accepted (or sampled out)",
        "headers": _CORS_HEADERS,
        "content": {_JSON: {"schema": {"type": "object", "maxProperties": 0}}},
    }


def _post(endpoint: Endpoint) -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": endpoint.report.openapi()}},
        "additionalProperties": True,
    }
    return {
        "summary": endpoint.summary or f"Submit reports ({endpoint.name})",
        "deprecated": endpoint.deprecated,
        "parameters": [_KEY],
        "security": _OPEN,
        "requestBody": {"required": True, "content": {_JSON: {"schema": body}}},
        "responses": {
            str(endpoint.success): _success(endpoint),
            "400": _error("The body is empty, broken gzip, not JSON, or has wrong types"),
            "403": _error("The key's daily limit on this path is used up"),
            "413": _error("The body, or what it inflates to, is too large"),
            "503": _error(
                "The queue cannot take the data now; send it again later",
                **{"Retry-After": {"schema": {"type": "integer"}}},
            ),
        },
    }


def paths(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The ``paths`` of the endpoints' operations: POST, plus GET (always 400: nothing to
    submit) and OPTIONS (CORS)."""
    found: dict[str, Any] = {}
    for endpoint in endpoints:
        found[endpoint.path] = {
            "post": _post(endpoint),
            "get": {
                "summary": "Answered 400: a submission is a POST",
                "deprecated": endpoint.deprecated,
                "security": _OPEN,
                "responses": {"400": _error("Nothing to submit")},
            },
            "options": {
                "summary": "CORS preflight",
                "security": _OPEN,
                "responses": {"200": {"description": "CORS headers", "headers": _CORS_HEADERS}},
            },
        }
    return found
