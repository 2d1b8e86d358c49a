"""GLAM imports against a real PostgreSQL: exact rows, exactly once, upserts that touch only
what changed, the serving view, Glean's injected app_id."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import psycopg

from sluice.api import Engine
from sluice.recipes.glam.api import generate, import_aggregates
from sluice.recipes.glam.tables import DESKTOP_VALUES

DESKTOP = "glam_desktop_nightly_aggregation"
IDS = (
    "SELECT metric || os || build_id || process || version || metric_key || client_agg_type, id "
    f"FROM {DESKTOP}"
)


def rows_of(bucket: Path, pattern: str) -> list[list[str]]:
    out: list[list[str]] = []
    for path in sorted(bucket.glob(pattern)):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
            out.extend(csv.reader(fh))
    return out


def test_first_import_loads_every_shard_once(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=3000, shards=3, out=str(bucket))

    report = import_aggregates(engine, "desktop", "nightly", str(bucket))

    assert [load.status for load in report.loads] == ["loaded"] * 3
    assert report.counts.rows_in == 3000
    assert report.counts.inserted == 3000
    assert db.execute(f"SELECT count(*) FROM {DESKTOP}").fetchone() == (3000,)
    assert db.execute(f"SELECT count(*) FROM view_{DESKTOP}").fetchone() == (3000,)
    assert [h["status"] for h in report.hooks] == ["ok"]
    statuses = db.execute("SELECT status, count(*) FROM sluice.loads GROUP BY 1").fetchall()
    assert statuses == [("loaded", 3)]


def test_values_are_stored_as_in_the_file(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=500, shards=1, out=str(bucket))
    import_aggregates(engine, "desktop", "nightly", str(bucket))

    expected = {
        tuple(r[:7]): (r[7], int(r[8]), r[9], r[10], int(r[11]), r[12], r[13])
        for r in rows_of(bucket, "aggs-desktop-nightly-*.csv")
    }
    found = db.execute(
        f"SELECT version::text, os, build_id, process, metric, metric_key, client_agg_type, "
        f"metric_type, total_users, histogram, percentiles, total_sample, non_norm_histogram, "
        f"non_norm_percentiles FROM {DESKTOP}"
    ).fetchall()
    assert {tuple(r[:7]): tuple(r[7:]) for r in found} == expected
    assert sum(1 for key in expected if key[5] == "") > 0  # empty metric_key is kept as ''


def test_unchanged_bucket_is_not_loaded_again(engine: Engine, tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=1000, shards=2, out=str(bucket))
    import_aggregates(engine, "desktop", "nightly", str(bucket))

    again = import_aggregates(engine, "desktop", "nightly", str(bucket))

    assert again.discovered == 0
    assert again.loads == []
    assert again.hooks == []  # nothing changed: no refresh


def test_reexport_updates_exactly_the_changed_rows(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=4000, shards=4, out=str(bucket))
    import_aggregates(engine, "desktop", "nightly", str(bucket))
    ids_before = dict(db.execute(IDS).fetchall())

    day2 = generate(
        "desktop", "nightly", rows=0, shards=0, out=str(bucket), base=str(bucket), change=0.1
    )
    report = import_aggregates(engine, "desktop", "nightly", str(bucket))

    assert 300 < day2.changed_rows < 500
    assert report.counts.rows_in == 4000
    assert report.counts.inserted == 0
    assert report.counts.updated == day2.changed_rows
    assert report.counts.unchanged == 4000 - day2.changed_rows
    # every row now holds the day-two values, under the same primary key
    expected = {tuple(r[:7]): int(r[8]) for r in rows_of(bucket, "aggs-desktop-nightly-*.csv")}
    found = db.execute(
        f"SELECT version::text, os, build_id, process, metric, metric_key, client_agg_type, "
        f"total_users FROM {DESKTOP}"
    ).fetchall()
    assert {tuple(r[:7]): r[7] for r in found} == expected
    ids_after = dict(db.execute(IDS).fetchall())
    assert ids_after == ids_before
    # only the changed rows were rewritten (new row versions in this transaction)
    view_users = dict(db.execute(f"SELECT id, total_users FROM view_{DESKTOP}").fetchall())
    table_users = dict(db.execute(f"SELECT id, total_users FROM {DESKTOP}").fetchall())
    assert view_users == table_users


def test_unchanged_reexport_writes_nothing(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    generate("desktop", "nightly", rows=2000, shards=2, out=str(bucket))
    import_aggregates(engine, "desktop", "nightly", str(bucket))
    xmins = db.execute(f"SELECT xmin::text FROM {DESKTOP}").fetchall()

    generate("desktop", "nightly", rows=0, shards=0, out=str(bucket), base=str(bucket), change=0.0)
    report = import_aggregates(engine, "desktop", "nightly", str(bucket))

    assert [load.status for load in report.loads] == ["loaded", "loaded"]
    assert report.counts.unchanged == 2000
    assert report.counts.updated == report.counts.inserted == 0
    assert db.execute(f"SELECT xmin::text FROM {DESKTOP}").fetchall() == xmins
    assert report.hooks == []


def test_metric_type_keeps_its_first_value(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    line = '130,*,*,*,gc_ms,"",summed_histogram,{kind},{users},"{{""0"":1}}","{{""50"":2}}",7,,\n'
    shard = bucket / "aggs-desktop-nightly-000000000000.csv"
    shard.write_text(line.format(kind="histogram-exponential", users=400))
    import_aggregates(engine, "desktop", "nightly", str(bucket))
    shard.write_text(line.format(kind="histogram-linear", users=500))
    report = import_aggregates(engine, "desktop", "nightly", str(bucket))

    assert report.counts.updated == 1
    row = db.execute(
        f"SELECT metric_type, total_users, non_norm_histogram FROM {DESKTOP}"
    ).fetchone()
    assert row == ("histogram-exponential", 500, None)
    assert "metric_type" not in DESKTOP_VALUES


def test_glean_rows_carry_the_channel_as_app_id(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    generate("fenix", "nightly", rows=600, shards=2, out=str(bucket))
    generate("fenix", "beta", rows=400, shards=1, out=str(bucket))

    nightly = import_aggregates(engine, "fenix", "nightly", str(bucket))
    beta = import_aggregates(engine, "fenix", "beta", str(bucket))

    assert nightly.counts.inserted == 600 and beta.counts.inserted == 400
    by_app = db.execute(
        "SELECT app_id, count(*) FROM glam_fenix_aggregation GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert by_app == [("beta", 400), ("nightly", 600)]
    # the -counts.csv file is not an aggregate shard
    keys = [k for (k,) in db.execute("SELECT key FROM sluice.loads ORDER BY key")]
    assert not any(k.endswith("-counts.csv") for k in keys)
    # NULL build_date for '*' builds
    assert db.execute(
        "SELECT count(*) FROM glam_fenix_aggregation "
        "WHERE build_id = '*' AND build_date IS NOT NULL"
    ).fetchone() == (0,)


def test_gzip_shards_load_like_plain_ones(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = tmp_path / "bucket"
    generate("fog", "release", rows=1500, shards=2, out=str(bucket), gzip_files=True)

    report = import_aggregates(engine, "fog", "release", str(bucket))

    assert report.counts.inserted == 1500
    assert all(load.key.endswith(".csv.gz") for load in report.loads)
    assert db.execute(
        "SELECT count(*) FROM glam_fog_aggregation WHERE app_id = 'release'"
    ).fetchone() == (1500,)
