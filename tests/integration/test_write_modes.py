"""The three write modes: append adds every row, upsert merges on the key (see the GLAM and
NULL-key tests), replace swaps a feed's rows for the file's in one transaction."""

from __future__ import annotations

from pathlib import Path

import psycopg

from sluice.api import Engine
from sluice.load.spec import Column, CsvFormat, Feed, Index, ServingView, TableSpec

COLUMNS = (Column("site", "text", nullable=False), Column("value", "integer"))


def spec(mode: str, **extra: object) -> TableSpec:
    return TableSpec(
        name="readings",
        columns=COLUMNS,
        key=("site",) if mode == "upsert" else (),
        mode=mode,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def write(bucket: Path, name: str, text: str) -> None:
    bucket.mkdir(exist_ok=True)
    (bucket / name).write_text(text)


def rows(db: psycopg.Connection, columns: str = "site, value") -> list[tuple[object, ...]]:
    return db.execute(f"SELECT {columns} FROM readings ORDER BY 1, 2").fetchall()


def test_append_keeps_every_row_of_every_file(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "b"
    feed = Feed("readings", spec("append"), str(bucket), r"r-\d+\.csv")
    write(bucket, "r-1.csv", "a,1\nb,2\n")
    write(bucket, "r-2.csv", "a,1\nc,3\n")

    report = engine.run_feeds([feed])

    assert [(load.key, load.counts.inserted) for load in report.loads] == [
        ("r-1.csv", 2),
        ("r-2.csv", 2),
    ]
    assert rows(db) == [("a", 1), ("a", 1), ("b", 2), ("c", 3)]
    # a rewritten file is a new version and is appended again
    write(bucket, "r-1.csv", "d,4\n")
    engine.run_feeds([feed])
    assert rows(db) == [("a", 1), ("a", 1), ("b", 2), ("c", 3), ("d", 4)]


def test_replace_swaps_the_rows_of_the_feed(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "b"
    table = spec("replace", serving=ServingView("view_readings", (Index(("id",), unique=True),)))
    feed = Feed("readings", table, str(bucket), r"snapshot\.csv")
    write(bucket, "snapshot.csv", "a,1\nb,2\nc,3\n")
    engine.run_feeds([feed])

    write(bucket, "snapshot.csv", "b,20\nd,4\n")
    report = engine.run_feeds([feed])

    load = report.loads[0]
    assert (load.status, load.counts.inserted, load.counts.deleted) == ("loaded", 2, 3)
    assert rows(db) == [("b", 20), ("d", 4)]
    # deleting counts as a change: the serving view follows
    assert [h["status"] for h in report.hooks] == ["ok"]
    assert db.execute("SELECT site, value FROM view_readings ORDER BY 1").fetchall() == [
        ("b", 20),
        ("d", 4),
    ]
    stored = db.execute("SELECT rows_deleted, rows_inserted FROM sluice.loads ORDER BY id")
    assert stored.fetchall() == [(0, 3), (3, 2)]


def test_replace_only_touches_the_rows_of_its_own_constants(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    table = spec("replace", constants=(Column("region", "text", nullable=False),))
    east, west = tmp_path / "east", tmp_path / "west"
    feeds = [
        Feed("east", table, str(east), r"snapshot\.csv", constants={"region": "east"}),
        Feed("west", table, str(west), r"snapshot\.csv", constants={"region": "west"}),
    ]
    write(east, "snapshot.csv", "a,1\nb,2\n")
    write(west, "snapshot.csv", "a,10\n")
    engine.run_feeds(feeds)

    write(east, "snapshot.csv", "c,3\n")
    report = engine.run_feeds(feeds)

    assert [(load.feed, load.counts.deleted) for load in report.loads] == [("east", 2)]
    assert rows(db, "region, site, value") == [("east", "c", 3), ("west", "a", 10)]


def test_a_replacing_load_with_bad_rows_changes_nothing(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "b"
    feed = Feed("readings", spec("replace"), str(bucket), r"snapshot\.csv")
    write(bucket, "snapshot.csv", "a,1\nb,2\n")
    engine.run_feeds([feed])

    write(bucket, "snapshot.csv", "c,3\nd,four\n")
    report = engine.run_feeds([feed])

    assert report.loads[0].status == "errored"
    assert "line 2, column value" in (report.loads[0].error or "")
    assert rows(db) == [("a", 1), ("b", 2)]  # the old snapshot is still whole


def test_a_header_line_is_skipped_on_the_bulk_and_the_staged_path(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "b"
    table = spec("upsert", format=CsvFormat(header=True))
    feed = Feed("readings", table, str(bucket), r"r-\d+\.csv")
    # the header's quoted name holds a newline: the header is one record, not one line
    write(bucket, "r-1.csv", 'site,"the\nvalue"\na,1\nb,2\n')

    first = engine.run_feeds([feed]).loads[0]

    assert (first.path, first.counts.rows_in, first.counts.inserted) == ("bulk", 2, 2)
    write(bucket, "r-1.csv", 'site,"the\nvalue"\na,1\nb,20\nc,3\n')
    second = engine.run_feeds([feed]).loads[0]

    assert second.path == "staged"
    assert (second.counts.inserted, second.counts.updated, second.counts.unchanged) == (1, 1, 1)
    assert rows(db) == [("a", 1), ("b", 20), ("c", 3)]
