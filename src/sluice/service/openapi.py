"""The OpenAPI document of the service (served at ``/openapi.json``). Written out, so that what
the API promises is read in one place; the integration tests check every route against it with
generated requests."""

from __future__ import annotations

from typing import Any

from sluice.ledger.states import Status

#: The most loads or runs one request returns.
MAX_LIMIT = 1000
#: The widest throughput window, in minutes (a week).
MAX_MINUTES = 7 * 24 * 60
#: The largest id the ledger can hold (bigint).
MAX_ID = 2**63 - 1

STATUSES = [status.value for status in Status]

_JSON = "application/json"
_ERROR = {"$ref": "#/components/schemas/Error"}
_STRING = {"type": "string"}
_INTEGER = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_OPTIONAL_TIME = {**_TIME, "nullable": True}
_OPTIONAL_STRING = {"type": "string", "nullable": True}
_OPTIONAL_INTEGER = {"type": "integer", "nullable": True}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _object(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    """An object with these properties, all of them required unless `required` says which."""
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
        "additionalProperties": True,  # new fields may come; clients ignore what they don't know
    }


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


_UNAVAILABLE = _answer("The database is unreachable", _ERROR)
_REFUSED = _answer("A token is required", _ERROR)
_BAD = _answer("A parameter is wrong", _ERROR)
_MISSING = _answer("Not found", _ERROR)


def _get(
    summary: str,
    schema: dict[str, Any],
    params: list[dict[str, Any]] | None = None,
    *,
    not_found: bool = False,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": _answer("OK", schema),
        "401": _REFUSED,
        "503": _UNAVAILABLE,
    }
    if params:
        responses["400"] = _BAD
    if not_found:
        responses["404"] = _MISSING
    operation = {"summary": summary, "parameters": params or [], "responses": responses}
    return {"get": operation}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    # Given once, with a value: an empty or repeated parameter is a 400, not a guess.
    return {
        "name": name,
        "in": "query",
        "required": False,
        "allowEmptyValue": False,
        "schema": schema,
        "description": description,
    }


def _bounded(maximum: int, default: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "maximum": maximum, "default": default}


_LOAD_ID = {
    "name": "load_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID},
}

_PATHS: dict[str, Any] = {
    "/api/status": _get(
        "Loads per feed and status, units in hand, recent errors and runs, targets",
        _ref("Status"),
        [
            _query("errors", _bounded(MAX_LIMIT, 10), "how many recent errors"),
            _query("runs", _bounded(MAX_LIMIT, 5), "how many recent runs"),
        ],
    ),
    "/api/loads": _get(
        "The most recent loads, newest first",
        _array("Load"),
        [
            _query("status", {"type": "string", "enum": STATUSES}, "only loads in this status"),
            _query("feed", {"type": "string", "minLength": 1}, "only loads of this feed"),
            _query("limit", _bounded(MAX_LIMIT, 100), "at most this many"),
        ],
        not_found=True,
    ),
    "/api/loads/{load_id}": _get(
        "Everything the ledger says about one load", _ref("Load"), [_LOAD_ID], not_found=True
    ),
    "/api/runs": _get(
        "The most recent runs, newest first",
        _array("Run"),
        [_query("limit", _bounded(MAX_LIMIT, 20), "at most this many")],
    ),
    "/api/feeds": _get("Every registered feed", _array("Feed")),
    "/api/throughput": _get(
        "Rows and bytes done per minute and kind of unit, oldest first",
        _array("ThroughputPoint"),
        [_query("minutes", _bounded(MAX_MINUTES, 180), "over the last this many minutes")],
    ),
    "/metrics": {
        "get": {
            "summary": "The ledger's figures in Prometheus's text format",
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": _REFUSED,
                "503": _UNAVAILABLE,
            },
        }
    },
    "/readyz": {
        "get": {
            "summary": "Whether the service can answer: its database is reachable",
            "responses": {
                "200": _answer("Ready", _ref("Ready")),
                "401": _REFUSED,
                "503": _answer("The database is unreachable", _ref("Ready")),
            },
        }
    },
    "/healthz": {
        "get": {
            "summary": "Whether the process is alive (never needs a token)",
            "security": [],
            "responses": {"200": _answer("Alive", _ref("Alive"))},
        }
    },
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": _STRING},
    },
    "Alive": _object({"ok": {"type": "boolean", "enum": [True]}}),
    "Ready": _object(
        {
            "ok": {"type": "boolean"},
            "database": {"type": "string", "enum": ["reachable", "unreachable"]},
            "error": _STRING,
        },
        required=["ok", "database"],
    ),
    "Status": _object(
        {
            "loads": {
                "type": "object",
                "description": "feed → status → loads",
                "additionalProperties": _COUNTS,
            },
            "leased": _array("LeasedUnit"),
            "errors": _array("ErrorEntry"),
            "runs": _array("Run"),
            "targets": _array("Target"),
            "days": {
                "type": "object",
                "description": "export feed → status → days",
                "additionalProperties": _COUNTS,
            },
        }
    ),
    "LeasedUnit": _object(
        {
            "id": _INTEGER,
            "feed": _STRING,
            "key": _STRING,
            "status": _STRING,
            "owner": _STRING,
            "pid": _OPTIONAL_INTEGER,
            "age_seconds": {"type": "number"},
            "lease_left_seconds": {"type": "number"},
            "owner_alive": {"type": "boolean"},
            "stuck": {"type": "boolean"},
        }
    ),
    "ErrorEntry": _object(
        {
            "load_id": _INTEGER,
            "feed": _STRING,
            "object": _STRING,
            "status": _STRING,
            "attempts": _INTEGER,
            "error": _STRING,
            "at": _OPTIONAL_TIME,
        }
    ),
    "Run": _object(
        {
            "run_id": _INTEGER,
            "command": _STRING,
            "status": {
                "type": "string",
                "enum": ["running", "succeeded", "failed", "abandoned"],
            },
            "kind": _STRING,
            "units": _STRING,
            "owner": _STRING,
            "started_at": _TIME,
            "finished_at": _OPTIONAL_TIME,
            "seconds": {"type": "number", "nullable": True},
            "claimed": _INTEGER,
            "loaded": _INTEGER,
            "errored": _INTEGER,
            "rows": _COUNTS,
            "hooks": {"type": "array", "items": {"type": "object"}},
            "counts": {"type": "object"},
            "error": _OPTIONAL_STRING,
        }
    ),
    "Target": _object(
        {
            "name": _STRING,
            "serving_view": _OPTIONAL_STRING,
            "stale": {"type": "boolean"},
            "last_change_at": _OPTIONAL_TIME,
            "refreshed_at": _OPTIONAL_TIME,
            "serving_kind": _OPTIONAL_STRING,
            "pending_keys": _INTEGER,
        }
    ),
    "Feed": _object(
        {
            "name": _STRING,
            "kind": _STRING,
            "active": {"type": "boolean"},
            "schedule": _STRING,
            "max_active": _OPTIONAL_INTEGER,
            "ordered": {"type": "boolean"},
            "source": _STRING,
            "pattern": _STRING,
            "last_scan_at": _OPTIONAL_TIME,
            "next_scan_at": _OPTIONAL_TIME,
            "scan_error": _OPTIONAL_STRING,
            "waiting": _INTEGER,
            "leased": _INTEGER,
            "done": _INTEGER,
            "errored": _INTEGER,
        }
    ),
    "ThroughputPoint": _object(
        {
            "minute": _TIME,
            "kind": _STRING,
            "rows": _INTEGER,
            "bytes": _INTEGER,
            "units": _INTEGER,
        }
    ),
    "Load": _object(
        {
            "id": _INTEGER,
            "kind": _STRING,
            "feed": _STRING,
            "store": _STRING,
            "key": _STRING,
            "object": _STRING,
            "version": _STRING,
            "status": {"type": "string", "enum": STATUSES},
            "attempts": _INTEGER,
            "counts": _COUNTS,
            "bytes_read": _OPTIONAL_INTEGER,
            "etag": _OPTIONAL_STRING,
            "size": _OPTIONAL_INTEGER,
            "modified": _OPTIONAL_TIME,
            "rejects_key": _OPTIONAL_STRING,
            "error": _OPTIONAL_STRING,
            "error_detail": {"type": "object", "nullable": True},
            "lease_owner": _OPTIONAL_STRING,
            "lease_pid": _OPTIONAL_INTEGER,
            "lease_until": _OPTIONAL_TIME,
            "run_id": _OPTIONAL_INTEGER,
            "next_attempt_at": _OPTIONAL_TIME,
            "discovered_at": _OPTIONAL_TIME,
            "started_at": _OPTIONAL_TIME,
            "finished_at": _OPTIONAL_TIME,
        },
        required=["id", "kind", "feed", "key", "object", "status", "attempts", "counts", "error"],
    ),
}

#: How a request may carry the token, when the service has one.
_SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "query": {"type": "apiKey", "in": "query", "name": "token"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "sluice_token"},
}


def document(*, token: bool = False) -> dict[str, Any]:
    """The document of a service with or without a token (with one, every operation but the
    liveness probe requires it, in any of three ways)."""
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "sluice",
            "version": "0.1.0",
            "description": "The ledger of a sluice installation, read-only.",
        },
        "paths": _PATHS,
        "components": {"schemas": _SCHEMAS},
    }
    if token:
        doc["components"] = {**doc["components"], "securitySchemes": _SECURITY_SCHEMES}
        doc["security"] = [{name: []} for name in _SECURITY_SCHEMES]
    return doc


DOCUMENT = document()
