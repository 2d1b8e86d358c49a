"""Serving views (``serving = "matview"``): refreshed concurrently once per run, only when rows
changed (an empty view is filled by a plain refresh); readers keep reading during the refresh; a
refresh missed by a dead run is caught up by the next one. Incremental serving copies, the
default, are tested in test_serving_incremental.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from sluice.api import Engine
from sluice.load.spec import Feed
from sluice.recipes.glam import tables
from sluice.recipes.glam.api import generate

TABLE = "glam_desktop_nightly_aggregation"
VIEW = f"view_{TABLE}"


def feed(product: tables.Product, channel: str, bucket: str) -> Feed:
    """The GLAM feed served by a materialized view."""
    return tables.feed(product, channel, bucket, serving="matview")


def test_refresh_is_recorded_on_the_run(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    generate("desktop", "nightly", rows=2000, shards=2, out=bucket)

    report = engine.run_feeds([feed("desktop", "nightly", bucket)])

    assert len(report.hooks) == 1
    hook = report.hooks[0]
    assert hook["kind"] == "refresh" and hook["status"] == "ok"
    assert (hook["serving"], hook["method"]) == ("matview", "fill")
    assert hook["view"] == f"public.{VIEW}"
    assert hook["seconds"] > 0
    assert hook["concurrently"] is False  # the view was empty: filled by a plain refresh
    stored = db.execute("SELECT hooks FROM sluice.runs WHERE id = %s", [report.run_id]).fetchone()
    assert stored is not None and stored[0] == report.hooks
    assert db.execute(f"SELECT count(*) FROM {VIEW}").fetchone() == (2000,)

    generate("desktop", "nightly", rows=0, shards=0, out=bucket, base=bucket, change=0.1)
    again = engine.run_feeds([feed("desktop", "nightly", bucket)])

    [hook] = again.hooks
    assert (hook["status"], hook["concurrently"]) == ("ok", True)  # readers keep the old rows
    assert db.execute(f"SELECT count(*) FROM {VIEW}").fetchone() == (2000,)
    view_sum = db.execute(f"SELECT sum(total_users) FROM {VIEW}").fetchone()
    assert view_sum == db.execute(f"SELECT sum(total_users) FROM {TABLE}").fetchone()


def test_a_reader_holding_the_empty_view_gets_a_concurrent_refresh_not_a_wait(
    engine: Engine, tmp_path: Path, database_url: str, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    generate("desktop", "nightly", rows=1000, shards=1, out=bucket)
    engine.run_feeds([feed("desktop", "nightly", bucket)], refresh=False)

    with psycopg.connect(database_url) as reader:  # a transaction left open after a read
        assert reader.execute(f"SELECT count(*) FROM {VIEW}").fetchone() == (0,)
        # Were the refresh to wait for this transaction, it would wait forever (same thread).
        report = engine.refresh_views([feed("desktop", "nightly", bucket)])
        assert reader.execute(f"SELECT count(*) FROM {VIEW}").fetchone() == (1000,)

    [hook] = report.hooks
    assert (hook["status"], hook["concurrently"]) == ("ok", True)
    assert db.execute(f"SELECT count(*) FROM {VIEW}").fetchone() == (1000,)


def test_no_refresh_when_nothing_changed(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    generate("desktop", "nightly", rows=1000, shards=1, out=bucket)
    engine.run_feeds([feed("desktop", "nightly", bucket)])
    refreshed_at = db.execute("SELECT refreshed_at FROM sluice.targets").fetchone()

    generate("desktop", "nightly", rows=0, shards=0, out=bucket, base=bucket, change=0.0)
    report = engine.run_feeds([feed("desktop", "nightly", bucket)])

    assert [load.status for load in report.loads] == ["loaded"]
    assert report.counts.unchanged == 1000
    assert report.hooks == []
    assert db.execute("SELECT refreshed_at FROM sluice.targets").fetchone() == refreshed_at


def test_a_missed_refresh_is_caught_up_by_the_next_run(
    engine: Engine, tmp_path: Path, db: psycopg.Connection
) -> None:
    bucket = str(tmp_path / "bucket")
    generate("desktop", "nightly", rows=1500, shards=1, out=bucket)
    # a run that loads but dies before its refresh
    engine.run_feeds([feed("desktop", "nightly", bucket)], refresh=False)
    assert db.execute(f"SELECT count(*) FROM {VIEW}").fetchone() == (0,)

    report = engine.run_feeds([feed("desktop", "nightly", bucket)])

    assert report.loads == []  # nothing new to load...
    assert [h["status"] for h in report.hooks] == ["ok"]  # ...but the view was stale
    assert db.execute(f"SELECT count(*) FROM {VIEW}").fetchone() == (1500,)


@pytest.mark.slow
def test_readers_keep_reading_during_the_refresh(
    engine: Engine, tmp_path: Path, database_url: str
) -> None:
    bucket = str(tmp_path / "bucket")
    generate("desktop", "nightly", rows=150_000, shards=3, out=bucket)
    engine.run_feeds([feed("desktop", "nightly", bucket)])
    generate("desktop", "nightly", rows=0, shards=0, out=bucket, base=bucket, change=0.5)
    engine.run_feeds([feed("desktop", "nightly", bucket)], refresh=False)

    with psycopg.connect(database_url, autocommit=True) as reader:
        reader.execute("SET lock_timeout = '200ms'")
        before = reader.execute(f"SELECT sum(total_users) FROM {VIEW}").fetchone()
        expected_after = reader.execute(f"SELECT sum(total_users) FROM {TABLE}").fetchone()
        assert before != expected_after

        refresher = threading.Thread(
            target=engine.refresh_views, args=([feed("desktop", "nightly", bucket)],)
        )
        refresher.start()
        reads_during_refresh = 0
        deadline = time.monotonic() + 60
        while refresher.is_alive() and time.monotonic() < deadline:
            active_before = _refresh_running(reader)
            total = reader.execute(f"SELECT sum(total_users) FROM {VIEW}").fetchone()
            if active_before and _refresh_running(reader):
                reads_during_refresh += 1
                assert total == before  # readers see the old contents, whole, until the end
        refresher.join()

        assert reads_during_refresh > 0
        assert reader.execute(f"SELECT sum(total_users) FROM {VIEW}").fetchone() == expected_after


def _refresh_running(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND datname = current_database() "
        "AND query ILIKE 'REFRESH MATERIALIZED VIEW CONCURRENTLY%'"
    ).fetchone()
    return bool(row and row[0])
