"""The OpenAPI document of the JSON API (served at ``/openapi.json``). Written out, so that
what the API promises is read in one place; a test checks every route against it."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_INT = {"type": "integer", "minimum": 0, "maximum": 1000}
_ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


def _get(
    summary: str,
    schema: dict[str, Any],
    params: list[dict[str, Any]] | None = None,
    *,
    not_found: bool = False,
    bad_request: bool = True,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
        "401": {
            "description": "A token is required",
            "content": {"application/json": {"schema": _ERROR}},
        },
        "503": {
            "description": "The database is unreachable",
            "content": {"application/json": {"schema": _ERROR}},
        },
    }
    if bad_request:
        responses["400"] = {
            "description": "A parameter is wrong",
            "content": {"application/json": {"schema": _ERROR}},
        }
    if not_found:
        responses["404"] = {
            "description": "Not found",
            "content": {"application/json": {"schema": _ERROR}},
        }
    return {"get": {"summary": summary, "parameters": params or [], "responses": responses}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


STATUSES = [
    "ready",
    "ready_for_ingesting",
    "ingesting",
    "loaded",
    "ready_for_archiving",
    "archiving",
    "archived",
    "ready_for_erroring",
    "erroring",
    "errored",
    "superseded",
    "skipped",
]

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "sluice",
        "version": "0.1.0",
        "description": "The ledger of a sluice installation, read-only.",
    },
    "paths": {
        "/api/status": _get(
            "Loads per feed and status, units in hand, recent errors and runs, targets",
            {"$ref": "#/components/schemas/Status"},
            [
                _query("errors", _INT, "how many recent errors"),
                _query("runs", _INT, "how many recent runs"),
            ],
        ),
        "/api/loads": _get(
            "The most recent loads, newest first",
            {"type": "array", "items": {"$ref": "#/components/schemas/Load"}},
            [
                _query("status", {"type": "string", "enum": STATUSES}, "only loads in this status"),
                _query("feed", {"type": "string"}, "only loads of this feed"),
                _query("limit", _INT, "at most this many"),
            ],
            not_found=True,
        ),
        "/api/loads/{load_id}": {
            "get": {
                **_get(
                    "Everything the ledger says about one load",
                    {"$ref": "#/components/schemas/Load"},
                    not_found=True,
                    bad_request=False,
                )["get"],
                "parameters": [
                    {
                        "name": "load_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
            }
        },
        "/api/runs": _get(
            "The most recent runs, newest first",
            {"type": "array", "items": _ANY_OBJECT},
            [_query("limit", _INT, "at most this many")],
        ),
        "/api/feeds": _get(
            "Every registered feed", {"type": "array", "items": _ANY_OBJECT}, bad_request=False
        ),
        "/api/throughput": _get(
            "Rows and bytes done per minute",
            {"type": "array", "items": _ANY_OBJECT},
            [_query("minutes", _INT, "over the last this many minutes")],
        ),
    },
    "components": {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "Status": {
                "type": "object",
                "required": ["loads", "leased", "errors", "runs", "targets"],
                "properties": {
                    "loads": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                        },
                    },
                    "leased": {"type": "array", "items": _ANY_OBJECT},
                    "errors": {"type": "array", "items": _ANY_OBJECT},
                    "runs": {"type": "array", "items": _ANY_OBJECT},
                    "targets": {"type": "array", "items": _ANY_OBJECT},
                },
            },
            "Load": {
                "type": "object",
                "required": ["id", "kind", "feed", "key", "status", "attempts", "counts"],
                "properties": {
                    "id": {"type": "integer"},
                    "kind": {"type": "string"},
                    "feed": {"type": "string"},
                    "key": {"type": "string"},
                    "status": {"type": "string"},
                    "attempts": {"type": "integer"},
                    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "error": {"type": "string", "nullable": True},
                },
                "additionalProperties": True,
            },
        }
    },
}
