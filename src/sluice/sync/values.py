"""Turning metadata values into the Python values PostgreSQL returns for a column's type, so
that the diff compares like with like (a date string with a date, 12.300 with 12.3)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sluice.load.statements import canonical_type

_INTEGERS = ("smallint", "integer", "bigint")
_FLOATS = ("double precision", "real")


def coerce(sql_type: str, value: Any) -> Any:
    """`value` as the Python type of `sql_type`; raises ValueError when it does not fit."""
    if value is None:
        return None
    kind = canonical_type(sql_type)
    if kind in _INTEGERS:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if kind in _FLOATS:
        return float(value)
    if kind == "boolean":
        return _boolean(value)
    if kind == "date":
        return _date(value)
    if kind.startswith("timestamp"):
        return _timestamp(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"true", "t", "yes", "1"}:
        return True
    if text in {"false", "f", "no", "0"}:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.strptime(str(value).strip()[:10], "%Y-%m-%d").date()


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    parsed = datetime.fromisoformat(str(value).strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
