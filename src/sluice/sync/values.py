"""Turning metadata values into the Python values PostgreSQL returns for a column's type, so
that the diff compares like with like (a date string with a date, 12.300 with 12.3).

Coercion is also where a value that PostgreSQL would refuse is caught: a number out of the
range of its column, a string PostgreSQL text cannot hold. The server would say only
"integer out of range", naming neither the object nor the column; here the error says which
value and why, and the engine adds where it came from.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import struct
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from sluice.load.statements import canonical_type

#: The range of each integer type.
INTEGER_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_FLOATS = ("double precision", "real")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_VARCHAR = re.compile(r"character varying\(([0-9]+)\)")
_NUMERIC = re.compile(r"numeric\(([0-9]+)(?:,([0-9]+))?\)")
# PostgreSQL's limits for an unconstrained numeric: digits before and after the point.
_NUMERIC_WEIGHT, _NUMERIC_SCALE = 131072, 16383
_SURROGATE = re.compile("[\ud800-\udfff]")


class ValueRejected(ValueError):
    """A value its column cannot hold, and why (the caller says where it came from)."""


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 40


def coerce(sql_type: str, value: Any) -> Any:
    """`value` as the Python type of `sql_type`; raises ValueRejected saying why when it does
    not fit (not of the type, out of its range, or a string PostgreSQL cannot store)."""
    if value is None:
        return None
    known = _CONVERTERS.get(sql_type)
    if known is None:
        kind = canonical_type(sql_type)
        known = _CONVERTERS[sql_type] = (kind, _converter(kind))
    kind, convert = known
    try:
        return convert(kind, value)
    except ValueRejected:
        raise
    except (TypeError, ValueError, ArithmeticError, OSError, RecursionError) as exc:
        # What the standard conversions raise for odd input (a dict for a date, a year past
        # 9999, a value nested too deep to encode), worded as the other refusals are.
        raise ValueRejected(f"{shown(value)} is not a valid {kind} ({exc})") from exc


#: Each declared type's canonical spelling and converter, found once (a sync coerces every
#: value of every row).
_CONVERTERS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {}


def _converter(kind: str) -> Callable[[str, Any], Any]:
    if kind in INTEGER_RANGES:
        return _integer
    if kind in _FLOATS:
        return _float
    if kind == "numeric" or kind.startswith("numeric("):
        return _numeric
    if kind == "boolean":
        return lambda _kind, value: _boolean(value)
    if kind == "date":
        return lambda _kind, value: _date(value)
    if kind.startswith("timestamp"):
        return lambda _kind, value: _timestamp(value)
    if kind == "jsonb":
        return lambda _kind, value: _jsonb(value)
    return _text


def shown(value: Any) -> str:
    """A value as an error message shows it: its repr, shortened."""
    try:
        return _REPR.repr(value)
    except ValueError:  # an integer too long for repr()
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"


def _out_of_range(value: Any, kind: str) -> ValueRejected:
    return ValueRejected(f"{shown(value)} is out of range for {kind}")


# -- numbers ----------------------------------------------------------------------------------


def _integer(kind: str, value: Any) -> int:
    low, high = INTEGER_RANGES[kind]
    if isinstance(value, int):  # bool included: True is 1, as PostgreSQL casts it
        number = int(value)
    elif isinstance(value, float):
        if math.isinf(value):
            raise _out_of_range(value, kind)
        if not value.is_integer():
            raise ValueRejected(f"{value!r} is not an integer")
        number = int(value)
    elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        text = value.strip()
        digits = text.lstrip("+-").lstrip("0") or "0"
        if len(digits) > len(str(high)):  # surely out of range: spares int() a long string
            raise _out_of_range(value, kind)
        number = -int(digits) if text.startswith("-") else int(digits)
    else:
        raise ValueRejected(f"{shown(value)} is not an integer")
    if not low <= number <= high:
        raise _out_of_range(value, kind)
    return number


def _float(kind: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueRejected(f"{shown(value)} is not a number") from None
        if math.isinf(number) and "inf" not in value.lower():
            raise _out_of_range(value, kind)  # "1e999" does not mean infinity
    elif isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise _out_of_range(value, kind) from None
    else:
        raise ValueRejected(f"{shown(value)} is not a number")
    # NaN and ±Infinity are values of both types; a finite value must fit a real when rounded.
    if kind == "real" and math.isfinite(number):
        single = struct.unpack("f", struct.pack("f", number))[0]
        if math.isinf(single) or (single == 0.0 and number != 0.0):
            raise _out_of_range(value, kind)
    return number


def _numeric(kind: str, value: Any) -> Decimal:
    number = _decimal(value)
    constrained = _NUMERIC.fullmatch(kind)
    if constrained is None:
        exponent = number.as_tuple().exponent  # a letter for NaN and infinity, both storable
        if isinstance(exponent, int) and (
            number.adjusted() >= _NUMERIC_WEIGHT or -exponent > _NUMERIC_SCALE
        ):
            raise _out_of_range(value, kind)
        return number
    if number.is_nan():
        return number
    if number.is_infinite():  # numeric(p, s) holds NaN but no infinity
        raise _out_of_range(value, kind)
    precision, scale = int(constrained[1]), int(constrained[2] or 0)
    with localcontext(prec=max(precision, number.adjusted() + scale + 2, 28)):
        # PostgreSQL rounds to the scale, half away from zero; so must the diff's value.
        rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if rounded and rounded.adjusted() >= precision - scale:
        raise _out_of_range(value, kind)
    return rounded


def _decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest exact spelling, not the binary expansion
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueRejected(f"{shown(value)} is not a number") from None
    raise ValueRejected(f"{shown(value)} is not a number")


# -- other scalars ----------------------------------------------------------------------------


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
    raise ValueRejected(f"{shown(value)} is not a boolean")


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.strptime(str(value).strip()[:10], "%Y-%m-%d").date()
    except ValueError:
        raise ValueRejected(f"{shown(value)} is not a date (YYYY-MM-DD)") from None


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise _out_of_range(value, "timestamp") from None
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueRejected(f"{shown(value)} is not an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- text and JSON ----------------------------------------------------------------------------


def _text(kind: str, value: Any) -> str:
    if isinstance(value, dict | list):
        text = json_text(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = check_text(str(value))
    limit = _VARCHAR.fullmatch(kind)
    if limit is not None and len(text) > int(limit[1]):
        raise ValueRejected(f"{shown(text)} is {len(text)} characters, too long for {kind}")
    return text


def check_text(text: str) -> str:
    """`text`, if PostgreSQL text can store it: it cannot hold a NUL character, nor a lone
    surrogate (half of a UTF-16 pair, which has no UTF-8 encoding) — JSON can spell both."""
    nul = text.find("\0")
    if nul >= 0:
        raise ValueRejected(
            f"the string contains a NUL character (\\u0000) at offset {nul}, which PostgreSQL "
            "text cannot store"
        )
    surrogate = None if text.isascii() else _SURROGATE.search(text)
    if surrogate is not None:
        raise ValueRejected(
            f"the string contains a lone surrogate ({ascii(surrogate.group())[1:-1]}) at offset "
            f"{surrogate.start()}, which is not a character: PostgreSQL text cannot store it"
        )
    return text


def json_text(value: Any) -> str:
    """`value` as compact JSON text, refusing strings nested anywhere in it (keys too) that
    PostgreSQL could not store as text or jsonb."""
    check_strings(value)
    return json.dumps(value, separators=(",", ":"))


def check_strings(value: Any) -> None:
    """Apply `check_text` to every string in a JSON value (without recursion: the value may
    nest as deep as a document may)."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, str):
            check_text(current)
        elif isinstance(current, dict):
            pending.extend(current.keys())
            pending.extend(current.values())
        elif isinstance(current, list | tuple):
            pending.extend(current)


def _jsonb(value: Any) -> Any:
    """A JSON value (a string is a JSON string) as PostgreSQL returns it from jsonb: what JSON
    text makes of it, so that tuples are lists and keys strings."""
    check_strings(value)  # jsonb refuses \u0000 and lone surrogates, even escaped
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise ValueRejected(
            f"{shown(value)} holds NaN or Infinity, which jsonb cannot store"
        ) from None
    return json.loads(text)
