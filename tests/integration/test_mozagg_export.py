"""The mozaggregator export end to end on a real PostgreSQL: generated source → Parquet →
Iceberg → DuckDB, every row and value equal to the source; bad rows rejected with their line;
empty days, forced and refreshed days; one day's change touching only that day."""

from __future__ import annotations

import csv
import time
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq

from sluice.api import Engine
from sluice.export.source import SourceDatabase, SourceOptions
from sluice.recipes.mozagg import api
from sluice.recipes.mozagg.tables import spec
from tests.integration.mozagg_source import (
    SCHEMA,
    arrow_rows,
    expected,
    generate,
    lake_rows,
    warehouse_rows,
)

OLD = date(2017, 2, 28)  # `child` as JSON booleans, keys missing
NEW = date(2017, 3, 1)  # `child` as strings
KIND = "submission_date"


def day_tables(db: psycopg.Connection[Any], day: date) -> list[str]:
    ds = day.strftime("%Y%m%d")
    rows = db.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s ORDER BY 1",
        (SCHEMA, f"{KIND}_%_{ds}"),
    )
    return [r[0] for r in rows]


def test_source_to_parquet_lake_and_warehouse(engine: Engine, db: psycopg.Connection[Any]) -> None:
    generate(engine, OLD, 2)
    bad = day_tables(db, NEW)[0]
    db.execute(
        f"INSERT INTO {SCHEMA}.{bad} VALUES ('\"not an object\"', '{{1,2,3}}'), "
        "('{\"os\": \"Linux\"}', '{7}')"
    )
    report = api.backfill_days(engine, KIND, OLD, date(2017, 3, 2))
    assert report.ok, report.as_dict()

    records = {r.day: r for r in api.partitions(engine, KIND)}
    assert sorted(records) == [OLD, NEW]
    for day in (OLD, NEW):
        want = expected(db, KIND, day)
        ds = day.strftime("%Y%m%d")
        record = records[day]
        assert record.outcome == "exported"
        assert record.output_rows == len(want) == 120
        assert record.snapshot_id is not None
        assert record.location is not None and record.bytes == Path(record.location).stat().st_size
        parquet = pq.read_table(record.location)
        assert arrow_rows(parquet) == want
        assert lake_rows(engine, KIND, ds) == want
        assert warehouse_rows(engine, KIND, ds) == want

    # The source had what the test is about, and the export kept it.
    rows = expected(db, KIND, OLD) + expected(db, KIND, NEW)
    sums = [r[-2] for r in rows]
    assert max(sums) > 2**62 and any(2**31 < s < 2**62 for s in sums)
    labels = {r[6] for r in rows}
    assert {"tab\there", "reader\\mode", 'say "hi"', "line\nbreak", "ünïcödé ✓"} <= labels
    assert any(all(v is None for v in r[4:11]) for r in rows)  # NULL dimensions
    old_children = {r[5] for r in expected(db, KIND, OLD)}
    assert old_children >= {"true", "false"}
    kinds = db.execute(
        f"SELECT DISTINCT jsonb_typeof(dimensions -> 'child') FROM {SCHEMA}.{bad}"
    ).fetchall()
    assert {k[0] for k in kinds} >= {"string", "boolean"}

    # Bad rows: counted, written with table, line and reason; the day succeeded.
    new = records[NEW]
    assert new.rejected_rows == 2 and new.source_rows == 122
    assert new.rejects_location is not None
    with Path(new.rejects_location).open(encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["table"], r["line"]) for r in rejected] == [(bad, "61"), (bad, "62")]
    assert rejected[0]["reason"] == "dimensions is a JSON string, not an object"
    assert rejected[1]["reason"] == "histogram has 1 elements, fewer than 2"
    assert rejected[1]["array"] == "{7}"


def test_aggregate_as_string(engine: Engine, db: psycopg.Connection[Any]) -> None:
    generate(engine, NEW, 1, tables=1, rows=20)
    report = api.export_day(engine, KIND, NEW, as_string=True)
    assert report.ok, report.as_dict()
    (record,) = api.partitions(engine, KIND)
    assert record.location is not None
    table = pq.read_table(record.location)
    for row in table.to_pylist():
        whole = [*row["aggregate"], row["sum"], row["count"]]
        assert row["aggregate_string"] == "[" + ",".join(map(str, whole)) + "]"


def test_empty_days_resume_and_force(engine: Engine, db: psycopg.Connection[Any]) -> None:
    generate(engine, NEW, 1)
    start, end = date(2017, 2, 27), date(2017, 3, 2)
    first = api.backfill_days(engine, KIND, start, end)
    assert first.ok and len(first.plan.queued) == 3
    outcomes = {r.day: r.outcome for r in api.partitions(engine, KIND)}
    assert outcomes == {date(2017, 2, 27): "empty", OLD: "empty", NEW: "exported"}
    assert ("mozagg.submission_date", "empty", 2) in api.days_by_status(engine)

    again = api.backfill_days(engine, KIND, start, end)
    assert again.ok and again.plan.queued == [] and again.plan.done == 3

    forced = api.backfill_days(engine, KIND, start, end, force=True, workers=2)
    assert forced.ok and len(forced.plan.queued) == 3
    exports = {r.day: r.exports for r in api.partitions(engine, KIND)}
    assert set(exports.values()) == {2}
    want = expected(db, KIND, NEW)
    assert lake_rows(engine, KIND) == want
    assert warehouse_rows(engine, KIND) == want


def _fingerprint(engine: Engine, day: date) -> str:
    with SourceDatabase(SourceOptions(schema=SCHEMA), engine.db).connect() as reader:
        return reader.fingerprints(spec(KIND), [day])[day].digest


def test_refresh_changed_reexports_only_the_changed_day(
    engine: Engine, db: psycopg.Connection[Any]
) -> None:
    generate(engine, OLD, 2)
    assert api.backfill_days(engine, KIND, OLD, date(2017, 3, 2)).ok
    before = {r.day: r for r in api.partitions(engine, KIND)}
    old_ds = OLD.strftime("%Y%m%d")
    old_lake = lake_rows(engine, KIND, old_ds)

    printed = _fingerprint(engine, NEW)
    table = day_tables(db, NEW)[1]
    with psycopg.connect(engine.db.url, autocommit=True) as writer:
        writer.execute(
            f"UPDATE {SCHEMA}.{table} SET histogram = "
            "histogram[1:cardinality(histogram)-2] || ARRAY[123456789012, 99]::bigint[]"
        )
    deadline = time.monotonic() + 20
    while _fingerprint(engine, NEW) == printed:  # statistics are flushed a moment later
        assert time.monotonic() < deadline, "the change never showed in the fingerprint"
        time.sleep(0.5)
    assert _fingerprint(engine, OLD) == before[OLD].fingerprint

    plain = api.backfill_days(engine, KIND, OLD, date(2017, 3, 2))
    assert plain.plan.queued == []  # without --refresh-changed, done days stay done
    refreshed = api.backfill_days(engine, KIND, OLD, date(2017, 3, 2), refresh_changed=True)
    assert refreshed.ok and refreshed.plan.queued == [NEW.isoformat()]

    after = {r.day: r for r in api.partitions(engine, KIND)}
    assert after[OLD] == before[OLD]
    assert after[NEW].exports == 2 and after[NEW].snapshot_id != before[NEW].snapshot_id
    new_ds = NEW.strftime("%Y%m%d")
    want = expected(db, KIND, NEW)
    assert any(r[-2] == 123456789012 for r in want)
    assert lake_rows(engine, KIND, new_ds) == want
    assert warehouse_rows(engine, KIND, new_ds) == want
    assert lake_rows(engine, KIND, old_ds) == old_lake == expected(db, KIND, OLD)
    assert warehouse_rows(engine, KIND, old_ds) == old_lake


def test_build_id_days(engine: Engine, db: psycopg.Connection[Any]) -> None:
    generate(engine, NEW, 1, kinds=("build_id",), tables=3, rows=30)
    report = api.backfill_days(engine, "build_id", NEW, date(2017, 3, 2))
    assert report.ok, report.as_dict()
    want = expected(db, "build_id", NEW)
    assert len(want) == 90
    assert lake_rows(engine, "build_id") == want
    assert warehouse_rows(engine, "build_id") == want
    columns, rows = api.query(engine, "SELECT DISTINCT version FROM build_id_aggregates ORDER BY 1")
    assert columns == ["version"] and [r[0] for r in rows] == ["0"]


def test_a_table_the_source_cannot_send_fails_its_day_only(
    engine: Engine, db: psycopg.Connection[Any]
) -> None:
    """A table that breaks in the middle of a day (here histograms stored as text arrays, the
    second row's not integers) errors that day with the table named, stops the day's readers,
    publishes nothing of it; the other day of the range is exported."""
    generate(engine, OLD, 2, tables=3, rows=40)
    broken = f"{KIND}_release_99_{NEW.strftime('%Y%m%d')}"
    db.execute(f"CREATE TABLE {SCHEMA}.{broken} (dimensions jsonb, histogram text[])")
    db.execute(f"INSERT INTO {SCHEMA}.{broken} VALUES ('{{}}', '{{1,2,3}}'), ('{{}}', '{{1,x}}')")
    report = api.backfill_days(engine, KIND, OLD, date(2017, 3, 2))
    assert not report.ok

    units = db.execute(
        "SELECT key, status, error FROM sluice.units WHERE kind = 'partition' ORDER BY key"
    ).fetchall()
    assert [(u[0], u[1]) for u in units] == [
        (OLD.isoformat(), "loaded"),
        (NEW.isoformat(), "errored"),
    ]
    assert broken in units[1][2] and "bigint" in units[1][2]
    assert [r.day for r in api.partitions(engine, KIND)] == [OLD]
    assert {row[1] for row in lake_rows(engine, KIND)} == {OLD.strftime("%Y%m%d")}
