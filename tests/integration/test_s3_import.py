"""GLAM imports from ``s3://bucket/prefix`` served by an S3-compatible server process: exact rows,
upserts of exactly the changed rows, and the same table content as an import of the same files
from a local folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from sluice.api import Engine, open_engine
from sluice.config import S3Options, Settings
from sluice.recipes.glam.api import generate, import_aggregates
from sluice.recipes.glam.tables import shard_name
from tests.fixtures.fix_db import fresh_database
from tests.fixtures.fix_s3 import s3_client

DESKTOP = "glam_desktop_nightly_aggregation"
#: Natural key → surrogate id of every row.
IDS = (
    "SELECT metric || os || build_id || process || version || metric_key || client_agg_type, id "
    f"FROM {DESKTOP}"
)


@pytest.fixture
def s3_engine(settings: Settings, s3_options: S3Options) -> Iterator[Engine]:
    with open_engine(settings=replace(settings, s3=s3_options)) as opened:
        yield opened


@pytest.fixture
def second_database_url(server_url: str, template_db: str) -> Iterator[str]:
    """Another fresh database on the same server, for the import from a local folder."""
    with fresh_database(server_url, "sluice_t", template_db) as url:
        yield url


def download(endpoint: str, bucket: str, prefix: str, folder: Path) -> list[str]:
    """Copy every object below `prefix` into `folder` (same relative names); return the names."""
    client = s3_client(endpoint)
    names = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix) :]
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            names.append(name)
    return sorted(names)


def ids_by_key(conn: psycopg.Connection) -> dict[object, object]:
    return {key: row_id for key, row_id in conn.execute(IDS)}


def table_content(conn: psycopg.Connection, table: str) -> list[tuple[object, ...]]:
    """Every row of `table` without the surrogate id, in a total order."""
    columns = [
        name
        for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s AND column_name <> 'id' "
            "ORDER BY ordinal_position",
            [table],
        )
    ]
    assert len(columns) == 14
    listed = ", ".join(columns)
    return conn.execute(f"SELECT {listed} FROM {table} ORDER BY {listed}").fetchall()


def test_import_from_s3_loads_every_shard_once(
    s3_engine: Engine,
    s3_bucket: str,
    s3_options: S3Options,
    s3_endpoint: str,
    db: psycopg.Connection,
) -> None:
    source = f"s3://{s3_bucket}/glam"
    made = generate("desktop", "nightly", rows=3000, shards=3, out=source, s3=s3_options)
    shards = [f"glam/{shard_name('desktop', 'nightly', i)}" for i in range(3)]
    assert made.files == [f"s3://{s3_bucket}/{key}" for key in shards]

    report = import_aggregates(s3_engine, "desktop", "nightly", source)

    assert report.discovered == 3
    assert sorted(load.key for load in report.loads) == shards
    assert [load.status for load in report.loads] == ["loaded"] * 3
    assert report.counts.rows_in == 3000
    assert report.counts.inserted == 3000
    assert report.counts.updated == report.counts.rejected == 0
    assert db.execute(f"SELECT count(*) FROM {DESKTOP}").fetchone() == (3000,)
    assert db.execute(f"SELECT count(*) FROM view_{DESKTOP}").fetchone() == (3000,)
    # the ledger names the bucket and the exact object versions (S3 etags) that were loaded
    client = s3_client(s3_endpoint)
    etags = {key: client.head_object(Bucket=s3_bucket, Key=key)["ETag"] for key in shards}
    ledger = db.execute("SELECT store, key, version, status, rows_in FROM sluice.loads").fetchall()
    assert sorted(ledger) == sorted(
        (f"s3://{s3_bucket}", key, etags[key], "loaded", 1000) for key in shards
    )

    again = import_aggregates(s3_engine, "desktop", "nightly", source)

    assert again.discovered == 0
    assert again.loads == []
    assert db.execute(f"SELECT count(*) FROM {DESKTOP}").fetchone() == (3000,)


def test_reexport_to_s3_updates_exactly_the_changed_rows(
    s3_engine: Engine, s3_bucket: str, s3_options: S3Options, db: psycopg.Connection
) -> None:
    source = f"s3://{s3_bucket}/glam"
    generate("desktop", "nightly", rows=4000, shards=4, out=source, s3=s3_options)
    import_aggregates(s3_engine, "desktop", "nightly", source)
    ids_before = ids_by_key(db)

    day2 = generate(
        "desktop",
        "nightly",
        rows=0,
        shards=0,
        out=source,
        base=source,
        change=0.1,
        s3=s3_options,
    )
    report = import_aggregates(s3_engine, "desktop", "nightly", source)

    assert day2.generation == 1
    assert 300 < day2.changed_rows < 500
    assert report.discovered == 4
    assert [load.status for load in report.loads] == ["loaded"] * 4
    assert report.counts.rows_in == 4000
    assert report.counts.inserted == 0
    assert report.counts.updated == day2.changed_rows
    assert report.counts.unchanged == 4000 - day2.changed_rows
    assert db.execute(f"SELECT count(*) FROM {DESKTOP}").fetchone() == (4000,)
    assert ids_by_key(db) == ids_before  # updated in place, same surrogate ids
    # each key now has two loaded versions on the ledger
    assert db.execute(
        "SELECT count(DISTINCT key), count(*) FROM sluice.loads WHERE status = 'loaded'"
    ).fetchone() == (4, 8)


def test_s3_import_matches_an_import_of_the_same_files_from_a_folder(
    s3_engine: Engine,
    s3_bucket: str,
    s3_options: S3Options,
    s3_endpoint: str,
    settings: Settings,
    second_database_url: str,
    db: psycopg.Connection,
    tmp_path: Path,
) -> None:
    source = f"s3://{s3_bucket}/exports/glam"
    generate("desktop", "nightly", rows=2500, shards=3, out=source, s3=s3_options)
    folder = tmp_path / "copy"
    names = download(s3_endpoint, s3_bucket, "exports/glam/", folder)
    assert names == [
        "_sluice_glam_desktop_nightly.json",
        *(shard_name("desktop", "nightly", i) for i in range(3)),
    ]

    with (
        open_engine(settings=replace(settings, database_url=second_database_url)) as local,
        psycopg.connect(second_database_url, autocommit=True) as local_db,
    ):
        from_s3 = import_aggregates(s3_engine, "desktop", "nightly", source)
        from_folder = import_aggregates(local, "desktop", "nightly", str(folder))

        assert from_s3.counts == from_folder.counts
        assert from_s3.counts.inserted == 2500
        first = table_content(db, DESKTOP)
        assert len(first) == 2500
        assert table_content(local_db, DESKTOP) == first

        # the next day's export, copied again: both imports still agree row for row
        generate(
            "desktop",
            "nightly",
            rows=0,
            shards=0,
            out=source,
            base=source,
            change=0.2,
            s3=s3_options,
        )
        download(s3_endpoint, s3_bucket, "exports/glam/", folder)
        from_s3 = import_aggregates(s3_engine, "desktop", "nightly", source)
        from_folder = import_aggregates(local, "desktop", "nightly", str(folder))

        assert from_s3.counts == from_folder.counts
        assert from_s3.counts.updated > 0
        second = table_content(db, DESKTOP)
        assert second != first
        assert table_content(local_db, DESKTOP) == second


def test_gzip_glean_shards_from_s3(
    s3_engine: Engine, s3_bucket: str, s3_options: S3Options, db: psycopg.Connection
) -> None:
    source = f"s3://{s3_bucket}/fenix"
    generate("fenix", "beta", rows=1200, shards=2, out=source, s3=s3_options, gzip_files=True)

    report = import_aggregates(s3_engine, "fenix", "beta", source)

    assert [load.status for load in report.loads] == ["loaded", "loaded"]
    assert all(load.key.endswith(".csv.gz") for load in report.loads)
    assert report.counts.inserted == 1200
    keys = [key for (key,) in db.execute("SELECT key FROM sluice.loads ORDER BY key")]
    assert not any(key.endswith("-counts.csv") for key in keys)
    assert db.execute(
        "SELECT app_id, count(*) FROM glam_fenix_aggregation GROUP BY 1"
    ).fetchall() == [("beta", 1200)]
