"""Hostile values for the hierarchical sync: bounded JSON parsing, coercion that refuses what a
column cannot hold (with the value and the reason), and the import structure of `sluice.sync`."""

from __future__ import annotations

import ast
import json
import math
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import sluice.sync
from sluice.recipes.cryoet.values import array_literal
from sluice.sync.values import ValueRejected, coerce, json_text
from sluice.sync.view import MAX_DEPTH, DocumentError, parse_json

# -- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"a":[' * 300 + "]}" * 300,
    ],
    ids=["open arrays", "closed arrays", "objects", "objects and arrays"],
)
def test_deep_documents_are_refused_before_parsing(text: str) -> None:
    with pytest.raises(DocumentError, match=r"^is nested deeper than 512 levels"):
        parse_json(text.encode())


def test_the_depth_limit_is_exact() -> None:
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(DocumentError, match="nested deeper"):
        parse_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


@pytest.mark.parametrize(
    "text",
    [
        '["' + "[" * 2000 + '"]',  # brackets in a string do not nest
        '["\\"' + "{" * 2000 + '"]',  # nor after an escaped quote
        '["\\\\", "' + "[" * 2000 + '"]',  # an escaped backslash ends before the quote
    ],
)
def test_brackets_inside_strings_do_not_count(text: str) -> None:
    assert len(parse_json(text)) in (1, 2)


def test_the_depth_scan_stays_linear_on_an_unterminated_string() -> None:
    text = '["' + '\\"[' * 300_000  # every quote is escaped: no string ever ends
    started = time.perf_counter()
    with pytest.raises(DocumentError, match="is not valid JSON"):
        parse_json(text)
    assert time.perf_counter() - started < 5


def test_long_integers_are_refused_with_their_length() -> None:
    assert parse_json("[" + "9" * 4300 + "]") == [int("9" * 4300)]
    with pytest.raises(DocumentError, match=r"^has an integer of 5000 digits \(at most 4300"):
        parse_json('{"n": -' + "9" * 5000 + "}")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"a": "\xff"}', r"^is not UTF-8 text \('utf-8' codec can't decode byte 0xff"),
        ("\ufeff\ufeff{}".encode(), r"^is not valid JSON"),
        (b'{"a": }', r"^is not valid JSON \(Expecting value: line 1 column 7"),
        (b"", r"^is not valid JSON"),
    ],
)
def test_unreadable_documents_say_why(raw: bytes, says: str) -> None:
    with pytest.raises(DocumentError, match=says):
        parse_json(raw)


def test_a_byte_order_mark_is_allowed() -> None:
    assert parse_json("\ufeff[1]".encode()) == [1]


# -- integers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [
        ("smallint", -(2**15), 2**15 - 1),
        ("integer", -(2**31), 2**31 - 1),
        ("bigint", -(2**63), 2**63 - 1),
    ],
)
def test_integers_are_checked_against_their_type(kind: str, low: int, high: int) -> None:
    assert coerce(kind, low) == low
    assert coerce(kind, high) == high
    assert coerce(kind, str(high)) == high
    for outside in (low - 1, high + 1, str(high + 1), float(high) * 4):
        with pytest.raises(ValueRejected, match=f"is out of range for {kind}$"):
            coerce(kind, outside)


@pytest.mark.parametrize(
    ("kind", "value", "says"),
    [
        ("integer", 1e30, "1e+30 is out of range for integer"),
        ("bigint", 12345678901234567890, "12345678901234567890 is out of range for bigint"),
        ("int4", math.inf, "inf is out of range for integer"),
        ("int8", -math.inf, "-inf is out of range for bigint"),
        ("integer", "9" * 5000, "is out of range for integer"),
        ("integer", math.nan, "nan is not an integer"),
        ("integer", 1.5, "1.5 is not an integer"),
        ("integer", "12.0", "'12.0' is not an integer"),
        ("integer", {"a": 1}, "{'a': 1} is not an integer"),
        pytest.param(
            "integer",
            10**5000,
            "an integer of about 5001 digits is out of range for integer",
            id="an integer too long to print",
        ),
    ],
)
def test_integer_refusals_name_the_value(kind: str, value: Any, says: str) -> None:
    with pytest.raises(ValueRejected) as raised:
        coerce(kind, value)
    assert says in str(raised.value)
    assert len(str(raised.value)) < 200


def test_integers_that_fit_keep_their_value() -> None:
    assert coerce("integer", 3.0) == 3
    assert coerce("integer", " -12 ") == -12
    assert coerce("smallint", True) == 1


# -- floating point and numeric ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "says"),
    [
        ("real", 1e39, "1e+39 is out of range for real"),
        ("real", -1e39, "-1e+39 is out of range for real"),
        ("real", 1e-46, "1e-46 is out of range for real"),  # rounds to zero: an underflow
        ("double precision", 10**400, "is out of range for double precision"),
        ("float8", "1e999", "'1e999' is out of range for double precision"),
        ("double precision", "abc", "'abc' is not a number"),
        ("double precision", [1.0], "[1.0] is not a number"),
        ("numeric(5,2)", 999.995, "999.995 is out of range for numeric(5,2)"),
        ("numeric(5,2)", math.inf, "inf is out of range for numeric(5,2)"),
        ("numeric(3)", "1000", "'1000' is out of range for numeric(3)"),
        ("numeric", "1e200000", "'1e200000' is out of range for numeric"),
        ("numeric", "1e-20000", "'1e-20000' is out of range for numeric"),
        ("numeric", "twelve", "'twelve' is not a number"),
    ],
)
def test_numbers_out_of_their_types_range_are_refused(kind: str, value: Any, says: str) -> None:
    with pytest.raises(ValueRejected) as raised:
        coerce(kind, value)
    assert says in str(raised.value)


def test_numbers_every_type_can_hold_are_kept() -> None:
    # PostgreSQL stores NaN and ±Infinity in real, double precision and unconstrained numeric
    assert math.isnan(coerce("real", math.nan))
    assert coerce("double precision", -math.inf) == -math.inf
    assert coerce("double precision", "Infinity") == math.inf
    assert coerce("real", 3.4e38) == 3.4e38
    assert coerce("numeric", math.inf) == Decimal("Infinity")
    assert coerce("numeric(5,2)", math.nan).is_nan()
    # rounded to the scale as PostgreSQL does, so that a re-run finds the value unchanged
    assert coerce("numeric(5,2)", 0.125) == Decimal("0.13")
    assert coerce("numeric(5,2)", -999.994) == Decimal("-999.99")
    assert coerce("numeric", 0.1) == Decimal("0.1")


# -- other scalars ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "says"),
    [
        ("timestamptz", 1e20, "1e+20 is out of range for timestamp"),
        ("timestamptz", "yesterday", "'yesterday' is not an ISO 8601 timestamp"),
        ("date", "2024-13-01", "'2024-13-01' is not a date"),
        ("date", ["2024-01-01"], "is not a date"),
        ("boolean", "maybe", "'maybe' is not a boolean"),
    ],
)
def test_dates_times_and_booleans_say_why(kind: str, value: Any, says: str) -> None:
    with pytest.raises(ValueRejected) as raised:
        coerce(kind, value)
    assert says in str(raised.value)


def test_dates_and_times_that_fit() -> None:
    assert coerce("date", "2024-01-02T03:04:05") == date(2024, 1, 2)
    assert coerce("timestamptz", 0) == datetime(1970, 1, 1, tzinfo=UTC)


# -- text and JSON --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "says"),
    [
        ("text", "ab\u0000c", "the string contains a NUL character (\\u0000) at offset 2"),
        ("varchar(10)", "\u0000", "the string contains a NUL character"),
        ("text", {"name": ["ok", "a\u0000"]}, "the string contains a NUL character"),
        ("text", {"a\u0000": 1}, "the string contains a NUL character"),
        ("jsonb", {"a": "\u0000"}, "the string contains a NUL character"),
        ("jsonb", ["ok", "\u0000"], "the string contains a NUL character"),
        ("text", "x\ud800", "the string contains a lone surrogate (\\ud800) at offset 1"),
        ("jsonb", ["\udfff"], "the string contains a lone surrogate (\\udfff)"),
        ("varchar(3)", "abcd", "'abcd' is 4 characters, too long for character varying(3)"),
        ("jsonb", {"a": math.nan}, "holds NaN or Infinity, which jsonb cannot store"),
        ("jsonb", [1.5, -math.inf], "holds NaN or Infinity, which jsonb cannot store"),
        ("jsonb", {"a": object()}, "is not a valid jsonb (Object of type object is not JSON"),
    ],
)
def test_strings_postgresql_cannot_store_are_refused(kind: str, value: Any, says: str) -> None:
    with pytest.raises(ValueRejected) as raised:
        coerce(kind, value)
    assert says in str(raised.value)
    if "NUL" in says:
        assert str(raised.value).endswith("which PostgreSQL text cannot store")


def test_json_values_are_compact_and_checked_without_recursion() -> None:
    deep: Any = "leaf\u0000"
    for _ in range(5000):  # deeper than a document may be; the check must not recurse
        deep = [deep]
    with pytest.raises(ValueRejected, match="NUL character"):
        json_text(deep)
    assert coerce("text", {"a": [1, "é"]}) == '{"a":[1,"\\u00e9"]}'


def test_jsonb_values_are_json_values_as_postgresql_returns_them() -> None:
    assert coerce("jsonb", {"a": (1, 2.5), 3: None}) == {"a": [1, 2.5], "3": None}
    assert coerce("jsonb", "plain") == "plain"  # a JSON string, not JSON text
    assert coerce("jsonb", 5) == 5
    deep: Any = 1
    for _ in range(5000):  # deeper than the encoder goes: refused, not a RecursionError
        deep = [deep]
    with pytest.raises(ValueRejected, match="is not a valid jsonb"):
        coerce("jsonb", deep)


def test_array_literals_are_built_without_recursion() -> None:
    assert array_literal([[1, 0], [0, 1]]) == "{{1,0},{0,1}}"
    assert array_literal([]) == "{}"
    assert array_literal(["a", None]) == '{"a",null}'
    deep = parse_json("[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH)
    assert array_literal(deep) == "{" * MAX_DEPTH + "1" + "}" * MAX_DEPTH
    with pytest.raises(ValueRejected, match="NUL character"):
        array_literal([["x\u0000"]])


# every type, every kind of hostile value: a value or ValueRejected, never anything else
HOSTILE_VALUES: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    10**400,
    -(10**30),
    "",
    "\u0000",
    "\ud800",
    "9" * 5000,
    "1e999999",
    {"a": [1, {"b": None}]},
    [math.nan],
    True,
    object(),
    b"bytes",
    json.loads("[" * 500 + "]" * 500),
]
TYPES = [
    "smallint",
    "integer",
    "bigint",
    "real",
    "double precision",
    "numeric",
    "numeric(10,3)",
    "boolean",
    "text",
    "varchar(8)",
    "date",
    "timestamptz",
    "timestamp",
    "jsonb",
]


@pytest.mark.parametrize("kind", TYPES)
def test_coercion_raises_nothing_but_value_rejected(kind: str) -> None:
    for value in HOSTILE_VALUES:
        try:
            coerce(kind, value)
        except ValueRejected as exc:
            assert str(exc) and len(str(exc)) < 400


# -- structure --------------------------------------------------------------------------------

#: Modules of sluice.sync that may import the engine: the package's face, and the sync flow of
#: the runtime (which drives the engine). The engine's own inputs (spec, view, values) never
#: do: that was the cycle.
#: The package's face, its flow, and the engine's own walk (for the types of its caller).
MAY_IMPORT_THE_ENGINE = {"__init__.py", "flow.py", "walk.py"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_of_the_sync_package_imports_the_engine_but_its_face() -> None:
    package = Path(sluice.sync.__file__).parent
    offenders = sorted(
        path.name
        for path in package.glob("*.py")
        if path.name not in MAY_IMPORT_THE_ENGINE and "sluice.sync.engine" in imported_modules(path)
    )
    assert offenders == []


def test_the_package_exports_the_same_names() -> None:
    assert sorted(sluice.sync.__all__) == [
        "BucketView",
        "Entity",
        "EntityCounts",
        "Field",
        "ForeignKey",
        "Item",
        "Pass",
        "Row",
        "ScopeReport",
        "SyncContext",
        "SyncError",
        "SyncReport",
        "Syncer",
        "Tree",
    ]
    assert all(hasattr(sluice.sync, name) for name in sluice.sync.__all__)
