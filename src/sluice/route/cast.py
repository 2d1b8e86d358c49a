"""Typed lake tables: each string column cast to its ``.dfm`` type, a value that does not
cast becoming NULL in the row and a reject (line, column, value, reason) beside it.

Casts are vectorised: values that do not look like the type are set aside by a pattern first,
the rest cast in one Arrow call; only if that still fails (an integer past 64 bits, a decimal
past its precision) is the column cast value by value. No value ever kills the load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sluice.formats.dfm import Column, arrow_type

#: What a value must look like to be cast to a type (surrounding blanks allowed).
_INT = r"^\s*[+-]?\d+\s*$"
_DECIMAL = r"^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$"
_FLOAT = r"^\s*[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|nan|Infinity|NaN)\s*$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_DATETIME = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?$"
_TIME = r"^\d{2}:\d{2}:\d{2}(\.\d+)?$"
_BOOL = r"^(?i:true|false|t|f|1|0)$"


def lake_type(column: Column) -> pa.DataType:
    """The Arrow type of a column in a typed lake table: the ``.dfm`` type, with the narrow
    integers widened to the 32 bits Iceberg's smallest integer has."""
    kind = arrow_type(column)
    return pa.int32() if kind == pa.int16() else kind


def _pattern(kind: pa.DataType) -> str | None:
    if pa.types.is_integer(kind):
        return _INT
    if pa.types.is_decimal(kind):
        return _DECIMAL
    if pa.types.is_floating(kind):
        return _FLOAT
    if pa.types.is_date(kind):
        return _DATE
    if pa.types.is_timestamp(kind):
        return _DATETIME
    if pa.types.is_time(kind):
        return _TIME
    if pa.types.is_boolean(kind):
        return _BOOL
    return None


@dataclass(frozen=True)
class Cast:
    """One column cast: the typed values, and the row indices that did not cast."""

    values: pa.Array
    failed: list[int]
    reason: str


def cast_column(values: pa.Array, column: Column) -> Cast:
    """Cast a string column to the lake type of `column`."""
    kind = lake_type(column)
    if pa.types.is_string(kind):
        return Cast(values, [], "")
    pattern = _pattern(kind)
    reason = f"not a {column.type}" + (
        f"({column.precision},{column.scale})" if column.type == "NUMERIC" else ""
    )
    text = values
    if pa.types.is_timestamp(kind):
        # Qlik writes seven fractional digits; microseconds keep six
        text = pc.utf8_slice_codeunits(values, 0, 26)
    if not pa.types.is_time(kind):
        try:  # a clean column casts in one call: the usual case, and the fast one
            return Cast(pc.cast(text, kind), [], reason)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    looks = pc.match_substring_regex(text, pattern) if pattern else pc.is_valid(text)
    keep = pc.fill_null(looks, True)
    clean = pc.if_else(keep, text, pa.scalar(None, pa.string()))
    try:
        if pa.types.is_time(kind):
            raise pa.ArrowNotImplementedError("no vectorised string → time cast")
        trimmed = clean if pa.types.is_timestamp(kind) else pc.utf8_trim_whitespace(clean)
        typed = pc.cast(trimmed, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        typed = _one_by_one(clean, kind)
    failed = pc.and_(pc.is_valid(values), pc.is_null(typed))
    return Cast(typed, pc.indices_nonzero(failed).to_pylist(), reason)


def _one_by_one(values: pa.Array, kind: pa.DataType) -> pa.Array:
    convert = _converter(kind)
    out: list[Any] = []
    for value in values.to_pylist():
        if value is None:
            out.append(None)
            continue
        try:
            out.append(convert(value.strip()))
        except (ValueError, ArithmeticError, InvalidOperation):
            out.append(None)
    try:
        return pa.array(out, type=kind)
    except (pa.ArrowInvalid, OverflowError):
        return pa.array([_fits(v, kind) for v in out], type=kind)


def _fits(value: Any, kind: pa.DataType) -> Any:
    try:
        pa.array([value], type=kind)
    except (pa.ArrowInvalid, OverflowError):
        return None
    return value


def _converter(kind: pa.DataType) -> Callable[[str], Any]:
    if pa.types.is_integer(kind):
        return int
    if pa.types.is_decimal(kind):
        return _decimal(kind)
    if pa.types.is_floating(kind):
        return float
    if pa.types.is_date(kind):
        return date.fromisoformat
    if pa.types.is_timestamp(kind):
        return lambda v: datetime.fromisoformat(v[:26])
    if pa.types.is_time(kind):
        return lambda v: time.fromisoformat(_six_digits(v))
    if pa.types.is_boolean(kind):
        return lambda v: {"true": True, "t": True, "1": True}.get(v.lower(), False)
    return str


def _decimal(kind: pa.DataType) -> Callable[[str], Decimal]:
    scale = kind.scale
    digits = kind.precision - scale

    def convert(text: str) -> Decimal:
        value = Decimal(text)
        if not value.is_finite() or abs(value) >= Decimal(10) ** digits:
            raise ValueError(text)
        return value.quantize(Decimal(1).scaleb(-scale))

    return convert


def _six_digits(text: str) -> str:
    head, dot, frac = text.partition(".")
    return f"{head}.{frac[:6]}" if dot else head
