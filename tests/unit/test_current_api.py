"""Current views without a database: the public names, view names, the header reader and the
statements composed from a `.dfm` (names always quoted as identifiers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import sluice.current
from sluice.current import ViewTarget, view_target
from sluice.current import statements as cs
from sluice.current.apply import _load_seq, read_header
from sluice.errors import BadInputError
from sluice.formats.dfm import Column, parse_dfm


def test_all_is_pinned() -> None:
    assert sluice.current.__all__ == [
        "ApplyResult",
        "ViewLag",
        "ViewTarget",
        "apply_file",
        "view_lags",
        "view_target",
    ]


@pytest.mark.parametrize(
    ("schema", "table", "view"),
    [("EDW", "SAMPLE", "edw_sample"), ("edw", "Use_Transaction", "edw_use_transaction")],
)
def test_the_view_is_named_as_downstream_names_it(schema: str, table: str, view: str) -> None:
    assert view_target(schema, table) == ViewTarget("ods", view)
    assert str(view_target(schema, table)) == f"ods.{view}"


def test_a_name_that_is_no_identifier_is_refused() -> None:
    with pytest.raises(BadInputError) as caught:
        view_target("EDW", 'SAMPLE"; DROP')
    assert str(caught.value) == (
        'the source table EDW.SAMPLE"; DROP does not name a current view (letters, digits, _ '
        "and $ only)"
    )
    with pytest.raises(BadInputError, match="longer than 63 bytes"):
        view_target("EDW", "T" * 60)


def test_the_header_reader_keeps_the_rest_of_the_stream() -> None:
    pieces = [b'\xef\xbb\xbfA,"B\n', b'2",C\n1,2', b",3\n"]
    header, lines, rest = read_header(iter(pieces), obj="o")
    assert (header, lines) == (["A", "B\n2", "C"], 2)
    assert b"".join(rest) == b"1,2,3\n"


def test_a_header_without_a_line_break_is_the_whole_file() -> None:
    header, lines, rest = read_header(iter([b"A,B"]), obj="o")
    assert (header, lines, list(rest)) == (["A", "B"], 0, [])


def test_an_empty_file_has_no_header() -> None:
    with pytest.raises(BadInputError) as caught:
        read_header(iter([]), obj="x.csv.gz")
    assert str(caught.value) == "x.csv.gz, line 1: the file is empty (no header row)"


def test_snapshot_rows_carry_the_downstream_change_sequence() -> None:
    stamp = datetime(2022, 1, 1, 20, 49, 50, 120000, tzinfo=UTC)
    assert _load_seq(stamp) == "2022010120495012" + "0" * 19
    assert len(_load_seq(stamp)) == 35


def _columns(*names: str) -> tuple[Column, ...]:
    doc = {
        "dataInfo": {
            "columns": [
                {"name": n, "type": "INT4" if i == 0 else "STRING", "primaryKeyPos": int(i == 0)}
                for i, n in enumerate(names)
            ]
        }
    }
    return parse_dfm(json.dumps(doc).encode(), obj="d").columns


def test_names_from_the_dfm_are_quoted_identifiers() -> None:
    columns = _columns('ID"x', "NAME; DROP TABLE t")
    shape = cs.Shape(
        target=ViewTarget("ods", "edw_sample"),
        file_columns=columns,
        columns=(*columns, *cs.HEADER),
        key=('id"x',),
    )
    stage = shape.create_stage().as_string(None)
    assert '"id""x" bigint, "name; drop table t" text' in stage
    upsert = shape.upsert(nulls=False).as_string(None)
    assert 'UPDATE "ods"."edw_sample" v SET ("name; drop table t", "header__change_seq"' in upsert
    assert '"v"."id""x" = "f"."id""x"' in upsert
    nulls = shape.upsert(nulls=True).as_string(None)
    assert 'ROW("v"."id""x")::record = ROW("f"."id""x")::record' in nulls
    final = shape.create_final().as_string(None)
    assert '"id""x" bigint, "name; drop table t" text, "header__change_seq" text' in final
    assert '"header__timestamp" timestamp' in final


def test_empty_values_are_null_for_every_type_but_text() -> None:
    columns = _columns("N", "T")
    shape = cs.Shape(ViewTarget("ods", "v"), columns, (*columns, *cs.HEADER), ("n",))
    copy = shape.copy_stage(",", "").as_string(None)
    assert copy.endswith("ENCODING 'UTF8', FORCE_NULL (\"n\"))")
    assert "DELIMITER ',', NULL ''" in copy
