"""Typed lake columns: values cast to their ``.dfm`` type, a value that does not cast NULL
and reported, never an exception."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pytest

from sluice.formats.dfm import Column
from sluice.route.cast import cast_column, lake_type


@pytest.mark.parametrize(
    ("column", "values", "expected", "failed"),
    [
        (Column("a", "INT4"), [" 1", "-2", "x", None, "1.5"], [1, -2, None, None, None], [2, 4]),
        (
            Column("a", "INT8"),
            ["9223372036854775807", "9223372036854775808"],
            [9223372036854775807, None],
            [1],
        ),
        (Column("a", "INT2"), ["7", "99999"], [7, 99999], []),
        (
            Column("a", "NUMERIC", precision=5, scale=2),
            ["12.5", "-3", "123456", "abc"],
            [Decimal("12.50"), Decimal("-3.00"), None, None],
            [2, 3],
        ),
        (Column("a", "NUMERIC", precision=10), ["42", "4.2"], [42, None], [1]),
        (Column("a", "REAL8"), ["1e3", "-.5", "x"], [1000.0, -0.5, None], [2]),
        (
            Column("a", "DATE"),
            ["2022-01-02", "2022-13-01", "02/01/2022"],
            [date(2022, 1, 2), None, None],
            [1, 2],
        ),
        (
            Column("a", "DATETIME"),
            ["2021-12-01 11:20:30.4444444", "2021-12-01T11:20:30", "soon"],
            [datetime(2021, 12, 1, 11, 20, 30, 444444), datetime(2021, 12, 1, 11, 20, 30), None],
            [2],
        ),
        (
            Column("a", "TIME"),
            ["11:20:30.1234567", "25:00:00"],
            [time(11, 20, 30, 123456), None],
            [1],
        ),
        (Column("a", "STRING"), ["x", None], ["x", None], []),
    ],
)
def test_casts(
    column: Column, values: list[str | None], expected: list[object], failed: list[int]
) -> None:
    cast = cast_column(pa.array(values, pa.string()), column)
    assert cast.values.type == lake_type(column)
    assert cast.values.to_pylist() == expected
    assert cast.failed == failed
    if failed:
        assert cast.reason.startswith(f"not a {column.type}")


def test_narrow_integers_are_widened_for_iceberg() -> None:
    assert lake_type(Column("a", "INT1")) == pa.int32()
    assert lake_type(Column("a", "INT4")) == pa.int64()
