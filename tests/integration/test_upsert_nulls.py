"""Upserts are NULL-safe: a NULL or empty key column never creates a duplicate row, and rows
whose values did not change are not rewritten."""

from __future__ import annotations

from pathlib import Path

import psycopg

from sluice.api import Engine
from sluice.load.spec import Column, Feed, TableSpec

SPEC = TableSpec(
    name="measures",
    columns=(
        Column("site", "text"),
        Column("day", "integer"),
        Column("probe", "text"),
        Column("value", "integer"),
    ),
    key=("site", "day", "probe"),
)


def feed(bucket: Path) -> Feed:
    return Feed(name="measures", table=SPEC, source=str(bucket), pattern=r"m-\d+\.csv")


def write(bucket: Path, text: str, name: str = "m-1.csv") -> None:
    bucket.mkdir(exist_ok=True)
    (bucket / name).write_text(text)


def table(db: psycopg.Connection) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT site, day, probe, value FROM measures ORDER BY site NULLS FIRST, day NULLS FIRST, "
        "probe NULLS FIRST"
    ).fetchall()


FIRST = 'a,1,,10\na,1,"",11\n,2,x,12\n,,,13\nb,3,y,14\n'
# unquoted empty = NULL, "" = empty string: five distinct keys


def test_null_and_empty_keys_are_distinct_rows(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    write(tmp_path / "b", FIRST)
    report = engine.run_feeds([feed(tmp_path / "b")])
    assert report.counts.inserted == 5
    assert table(db) == [
        (None, None, None, 13),
        (None, 2, "x", 12),
        ("a", 1, None, 10),
        ("a", 1, "", 11),
        ("b", 3, "y", 14),
    ]


def test_reimport_with_null_keys_updates_in_place(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "b"
    write(bucket, FIRST)
    engine.run_feeds([feed(bucket)])
    ids = db.execute("SELECT id, value FROM measures ORDER BY value").fetchall()

    # same keys; the NULL-keyed rows (a,1,NULL) and (NULL,NULL,NULL) change, others do not
    write(bucket, 'b,3,y,14\n,,,23\na,1,"",11\n,2,x,12\na,1,,20\n')
    report = engine.run_feeds([feed(bucket)])

    assert [load.path for load in report.loads] == ["staged"]
    assert report.counts.rows_in == 5
    assert report.counts.inserted == 0
    assert report.counts.updated == 2
    assert report.counts.unchanged == 3
    assert table(db) == [
        (None, None, None, 23),
        (None, 2, "x", 12),
        ("a", 1, None, 20),
        ("a", 1, "", 11),
        ("b", 3, "y", 14),
    ]
    # same primary keys: updated in place, never deleted and re-inserted
    after = dict(db.execute("SELECT id, value FROM measures").fetchall())
    assert sorted(after) == sorted(i for i, _ in ids)


def test_unchanged_null_keyed_rows_are_not_rewritten(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "b"
    write(bucket, FIRST)
    engine.run_feeds([feed(bucket)])
    before = db.execute("SELECT id, xmin::text FROM measures ORDER BY id").fetchall()

    write(bucket, "".join(reversed(FIRST.splitlines(keepends=True))))  # a re-export
    report = engine.run_feeds([feed(bucket)])

    assert report.counts.unchanged == 5
    assert report.counts.updated == report.counts.inserted == 0
    assert db.execute("SELECT id, xmin::text FROM measures ORDER BY id").fetchall() == before


def test_a_null_key_twice_in_one_file_is_a_duplicate(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    write(tmp_path / "b", "a,1,,10\nb,2,z,11\na,1,,12\n")
    report = engine.run_feeds([feed(tmp_path / "b")])

    assert [load.status for load in report.loads] == ["errored"]
    error = report.loads[0].error or ""
    assert "m-1.csv" in error
    assert "appears more than once" in error
    assert "site='a'" in error and "probe=None" in error
    assert db.execute("SELECT count(*) FROM measures").fetchone() == (0,)
