"""Upkeep of the station tables on a real PostgreSQL (sluice.stations.upkeep): stale stations
of every table expire in bounded steps under the shard lock, cell areas follow, old counters
fold without changing a total, old datamap cells and batch records go, the region counts are
rebuilt; and the CLI verbs over it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from sluice.db import Database, DatabaseOptions
from sluice.stations import apply_batch, show_station
from sluice.stations.datamap import grid_id
from sluice.stations.repository import transaction
from sluice.stations.upkeep import (
    KEEP_DAYS,
    cleanup_datamap,
    cleanup_stat,
    expire_stations,
    keep_from,
    prune_batches,
    rebuild_region_stat,
    upkeep,
    years_before,
)
from tests.fixtures.stations import ichnaea_cli
from tests.fixtures.stations import report as rep

OLD = date(2024, 5, 1)
RECENT = date(2026, 2, 1)
TODAY = date(2026, 3, 2)
BEFORE = keep_from(TODAY, KEEP_DAYS)  # 2025-03-02

WIFI_OLD, WIFI_NEW = "0a0000000001", "0a0000000002"
BLUE_OLD = "0b0000000001"
BLOCKED_OLD, BLOCKED_NEW = "0c0000000001", "0c0000000002"
# Area (262, 1, 4) keeps one recent cell; area (262, 1, 5) loses its only one.
CELL_OLD_SHARED = ("lte", 262, 1, 4, 100)
CELL_NEW_SHARED = ("lte", 262, 1, 4, 101)
CELL_OLD_ALONE = ("lte", 262, 1, 5, 200)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    with Database.open(DatabaseOptions(url=database_url)) as opened:
        yield opened


def fill(database: Database) -> None:
    """Old and recent stations of every kind, two blocked ones (no last_seen), two areas."""
    apply_batch(
        database,
        "old",
        [
            rep(50.0, 8.0, wifi=(WIFI_OLD,), blue=(BLUE_OLD,), cells=(CELL_OLD_SHARED,)),
            rep(50.1, 8.1, cells=(CELL_OLD_ALONE,)),
            # 30 km apart in one batch: inconsistent for wifi, a new_block station
            rep(50.0, 8.0, wifi=(BLOCKED_OLD,)),
            rep(50.3, 8.0, wifi=(BLOCKED_OLD,)),
        ],
        today=OLD,
    )
    apply_batch(
        database,
        "recent",
        [
            rep(50.0, 8.01, wifi=(WIFI_NEW,), cells=(CELL_NEW_SHARED,)),
            rep(50.0, 8.0, wifi=(BLOCKED_NEW,)),
            rep(50.3, 8.0, wifi=(BLOCKED_NEW,)),
        ],
        today=RECENT,
    )


def one(db: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = db.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def cell_key(cell: tuple[str, int, int, int, int]) -> str:
    return ":".join(map(str, cell))


def test_expire_deletes_stale_stations_of_every_kind(
    database: Database, db: psycopg.Connection[Any]
) -> None:
    fill(database)
    blocked = show_station(database, "wifi", BLOCKED_OLD)
    assert blocked is not None and blocked.last_seen is None and blocked.block_last == OLD
    assert one(db, "SELECT num_cells FROM ichnaea.cell_area WHERE lac = 4") == 2

    result = expire_stations(database, BEFORE, chunk=1)

    assert result.total == 5
    assert {t: n for t, n in result.deleted.items() if n} == {
        "wifi_shard_0": 2,  # WIFI_OLD and BLOCKED_OLD: mac[4] is 0
        "blue_shard_0": 1,
        "cell_lte": 2,
    }
    assert len(result.deleted) == 16 + 16 + 3
    for kind, key in [("wifi", WIFI_OLD), ("wifi", BLOCKED_OLD), ("blue", BLUE_OLD)]:
        assert show_station(database, kind, key) is None
    for kind, key in [("wifi", WIFI_NEW), ("wifi", BLOCKED_NEW)]:
        assert show_station(database, kind, key) is not None
    assert show_station(database, "cell", cell_key(CELL_OLD_SHARED)) is None
    assert show_station(database, "cell", cell_key(CELL_NEW_SHARED)) is not None
    # The shared area now has the recent cell only; the other area is gone.
    assert result.areas == 2
    assert one(db, "SELECT num_cells FROM ichnaea.cell_area WHERE lac = 4") == 1
    assert one(db, "SELECT lon FROM ichnaea.cell_area WHERE lac = 4") == pytest.approx(8.01)
    assert one(db, "SELECT count(*) FROM ichnaea.cell_area WHERE lac = 5") == 0
    # chunk=1: a step per key, and one more to find that the table ends (a window not full)
    assert result.steps == (4 + 1) + (1 + 1) + (3 + 1) + 32

    again = expire_stations(database, BEFORE)
    assert (again.total, again.areas, again.steps) == (0, 0, 35)


def test_expire_waits_for_a_batch_holding_the_shard(database: Database, database_url: str) -> None:
    fill(database)
    with psycopg.connect(database_url) as batch, transaction(batch) as store:
        store.lock("a batch", ["wifi_shard_0"])
        done = threading.Event()
        worker = threading.Thread(
            target=lambda: (expire_stations(database, BEFORE), done.set()), daemon=True
        )
        worker.start()
        assert not done.wait(1.0)  # blocked on the shard the batch holds
        assert show_station(database, "wifi", WIFI_OLD) is not None
    worker.join(30)
    assert done.is_set()
    assert show_station(database, "wifi", WIFI_OLD) is None


def test_cleanup_stat_folds_old_counters_keeping_the_totals(
    database: Database, db: psycopg.Connection[Any]
) -> None:
    rows = [
        (3, date(2023, 1, 5), 10),
        (3, date(2023, 6, 1), 5),
        (3, date(2024, 3, 2), 7),  # on the cutoff day: kept, and takes the old sums
        (3, date(2026, 3, 1), 1),
        (4, date(2022, 1, 1), 2),  # only old rows: one is kept, with their sum
        (4, date(2023, 1, 1), 3),
        (1, date(2025, 1, 1), 4),  # nothing old
    ]
    with db.cursor() as cur:
        cur.executemany("INSERT INTO ichnaea.stat_daily VALUES (%s, %s, %s)", rows)
    before = years_before(TODAY, 2)
    assert before == date(2024, 3, 2)

    def totals() -> dict[tuple[int, date], int]:
        found = db.execute("SELECT key, time, value FROM ichnaea.stat").fetchall()
        return {(k, t): v for k, t, v in found}

    kept = {kt: v for kt, v in totals().items() if kt[1] >= before}
    result = cleanup_stat(database, TODAY)
    assert result.before == before and result.total == 3
    after = totals()
    assert {kt: v for kt, v in after.items() if kt[1] >= before} == kept
    assert after[(3, date(2024, 3, 2))] == 22 and after[(3, date(2026, 3, 1))] == 23
    assert after == {**kept, (4, date(2023, 1, 1)): 5}
    daily = db.execute("SELECT key, time, value FROM ichnaea.stat_daily ORDER BY 1, 2").fetchall()
    assert daily == [
        (1, date(2025, 1, 1), 4),
        (3, date(2024, 3, 2), 22),
        (3, date(2026, 3, 1), 1),
        (4, date(2023, 1, 1), 5),
    ]
    assert cleanup_stat(database, TODAY).total == 0
    assert totals() == after


def test_cleanup_stat_keeps_the_first_day_after_29_february() -> None:
    assert years_before(date(2028, 2, 29), 2) == date(2026, 2, 28)


def test_cleanup_datamap_in_chunks(database: Database, db: psycopg.Connection[Any]) -> None:
    old = [grid_id(50_000 + i, 8_000) for i in range(5)]
    new = [grid_id(50_100 + i, 8_000) for i in range(2)]
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO ichnaea.datamap_ne VALUES (%s, %s, %s)",
            [(g, OLD, OLD) for g in old] + [(g, OLD, RECENT) for g in new],
        )
        cur.execute("INSERT INTO ichnaea.datamap_sw VALUES (%s, %s, %s)", (old[0], OLD, OLD))
    result = cleanup_datamap(database, TODAY, chunk=2)
    assert result.deleted == {"datamap_ne": 5, "datamap_nw": 0, "datamap_se": 0, "datamap_sw": 1}
    assert one(db, "SELECT count(*) FROM ichnaea.datamap_ne") == 2


def old_batch_record(db: psycopg.Connection[Any]) -> None:
    """A batch record applied a month before TODAY (the two of `fill` are applied now)."""
    db.execute(
        "INSERT INTO ichnaea.station_batches (batch_id, applied_at, reports, observations)"
        " VALUES ('long ago', '2026-02-01T00:00:00Z', 1, 1)"
    )


def test_upkeep_runs_all_of_it(database: Database, db: psycopg.Connection[Any]) -> None:
    fill(database)
    old_batch_record(db)
    shown = upkeep(database, TODAY).as_dict()
    assert shown["stations"]["stations"] == 5 and shown["stations"]["before"] == "2025-03-02"
    assert shown["stat"] == {"before": "2024-03-02", "deleted": 0}
    # of the old batch's three grid cells, the recent batch touched two again: one goes
    assert shown["datamap"] == {"before": "2025-03-02", "deleted": 1}
    assert shown["batches"] == {
        "before": "2026-02-23T00:00:00+00:00",
        "deleted": 1,
        "steps": 1,
    }
    assert one(db, "SELECT count(*) FROM ichnaea.station_batches") == 2
    # After the expiry: WIFI_NEW and the area of CELL_NEW_SHARED, in Germany; BLOCKED_NEW
    # has no position and so no region.
    assert shown["regions"] == {"regions": 1, "written": 1, "deleted": 0}
    assert region_rows(db) == [("DE", 0, 0, 1, 0, 1)]


def test_expire_refuses_nonsense(database: Database) -> None:
    with pytest.raises(ValueError):
        expire_stations(database, BEFORE, chunk=0)
    with pytest.raises(ValueError):
        keep_from(TODAY, 0)
    with pytest.raises(ValueError):
        prune_batches(database, datetime.now(UTC), chunk=0)
    with pytest.raises(ValueError):
        upkeep(database, TODAY, batch_keep_days=0)


# -- region counts --------------------------------------------------------------------------------

PARIS = (48.85, 2.35)
AT_SEA = (45.0, -30.0)


def region_rows(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute("SELECT * FROM ichnaea.region_stat ORDER BY region").fetchall()


def fill_regions(database: Database) -> None:
    """Stations in Germany (wifi in shards 0 and f, Bluetooth in shard 7, lte and gsm cells),
    in France (wifi in shard 1, a wcdma cell) and at sea (no region)."""
    apply_batch(
        database,
        "regions",
        [
            rep(
                50.0,
                8.0,
                wifi=("0a0000000001", "0a00f0000002"),
                blue=("0b0070000001",),
                cells=(("lte", 262, 1, 4, 100), ("lte", 262, 1, 4, 101), ("gsm", 262, 1, 7, 1)),
            ),
            rep(*PARIS, wifi=("0a0010000003",), cells=(("wcdma", 208, 1, 9, 400),)),
            rep(
                *AT_SEA,
                wifi=("0a0020000004",),
                blue=("0b0020000005",),
                cells=(("lte", 262, 1, 8, 500),),
            ),
        ],
        today=RECENT,
    )


def test_rebuild_region_stat_counts_every_shard_and_drops_gone_regions(
    database: Database, db: psycopg.Connection[Any]
) -> None:
    fill_regions(database)
    # The report at sea was dropped whole (in no region); a station whose centre lies in no
    # region (a bay's stations seen from both shores) is counted nowhere.
    assert one(db, "SELECT count(*) FROM ichnaea.wifi_shard_2") == 0
    assert one(db, "SELECT count(*) FROM ichnaea.cell_area WHERE lac = 8") == 0
    db.execute(
        "INSERT INTO ichnaea.wifi_shard_2 (mac, lat, lon) VALUES ('\\x0a0020000004', 45, -30)"
    )
    # A region with nothing left, and one whose counts are out of date.
    db.execute(
        "INSERT INTO ichnaea.region_stat VALUES ('XX', 1, 1, 1, 1, 1), ('FR', 0, 0, 0, 0, 9)"
    )

    result = rebuild_region_stat(database)

    assert (result.regions, result.written, result.deleted) == (2, 2, 1)
    # region, gsm, wcdma, lte, blue, wifi: cells are the areas' num_cells
    assert region_rows(db) == [("DE", 1, 0, 2, 1, 2), ("FR", 0, 1, 0, 0, 1)]
    again = rebuild_region_stat(database)
    assert (again.regions, again.written, again.deleted) == (2, 0, 0)

    # France loses its stations: its row goes; Germany's counts follow a deleted station.
    db.execute("DELETE FROM ichnaea.wifi_shard_1")
    db.execute("DELETE FROM ichnaea.cell_area WHERE region = 'FR'")
    db.execute("DELETE FROM ichnaea.wifi_shard_f")
    result = rebuild_region_stat(database)
    assert (result.regions, result.written, result.deleted) == (1, 1, 1)
    assert region_rows(db) == [("DE", 1, 0, 2, 1, 1)]


def test_rebuild_region_stat_of_empty_tables(
    database: Database, db: psycopg.Connection[Any]
) -> None:
    result = rebuild_region_stat(database)
    assert (result.regions, result.written, result.deleted) == (0, 0, 0)
    assert region_rows(db) == []


# -- batch records --------------------------------------------------------------------------------


def test_prune_batches_deletes_old_records_in_chunks(
    database: Database, db: psycopg.Connection[Any]
) -> None:
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    ages = [30, 9, 8, 7.01, 7.001, 6.99, 0]  # days; five before the retention of 7 days
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO ichnaea.station_batches (batch_id, applied_at, reports, observations)"
            " VALUES (%s, %s, 1, 1)",
            [(f"b{i}", now - timedelta(days=age)) for i, age in enumerate(ages)],
        )
    result = prune_batches(database, now - timedelta(days=7), chunk=2)
    assert (result.deleted, result.steps) == (5, 3)  # 2, 2, then 1 < chunk: done
    kept = db.execute("SELECT batch_id FROM ichnaea.station_batches ORDER BY seq").fetchall()
    assert kept == [("b5",), ("b6",)]
    again = prune_batches(database, now - timedelta(days=7), chunk=2)
    assert (again.deleted, again.steps) == (0, 1)


def test_prune_batches_reads_only_what_it_deletes(db: psycopg.Connection[Any]) -> None:
    """The chunk is found by the applied_at index (migration 0016), oldest first and bounded,
    never by reading the records kept."""
    from sluice.stations.repository import Q

    db.execute("SET enable_seqscan = off")
    plan = db.execute(
        "EXPLAIN " + Q["prune_batches"], {"before": datetime.now(UTC), "chunk": 10}
    ).fetchall()
    assert "station_batches_applied_at_idx" in "\n".join(row[0] for row in plan)


# -- the verbs ------------------------------------------------------------------------------------


@pytest.fixture
def filled(
    database: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    fill(database)


def test_expire_verb(filled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    # Nothing was active before the old day.
    result = runner.invoke(
        ichnaea_cli(), ["ichnaea", "stations", "expire", "--before", "2024-05-01"]
    )
    assert result.exit_code == 0, result.output
    assert "deleted 0 stations last active before 2024-05-01" in result.stdout
    # A keep of 700 days from 2026-03-02 keeps the old day's stations (2024-05-01 is 670 days
    # before it); the environment sets the default.
    monkeypatch.setenv("SLUICE_ICHNAEA_STATION_KEEP_DAYS", "700")
    result = runner.invoke(
        ichnaea_cli(), ["ichnaea", "stations", "expire", "--today", "2026-03-02"]
    )
    assert "deleted 0 stations last active before 2024-04-01" in result.stdout, result.output
    result = runner.invoke(
        ichnaea_cli(),
        ["ichnaea", "stations", "expire", "--today", "2026-03-02", "--keep-days", "365"],
    )
    assert result.exit_code == 0, result.output
    assert "deleted 5 stations last active before 2025-03-02" in result.stdout
    assert "wifi_shard_0   2" in result.stdout and "recomputed 2 cell areas" in result.stdout
    bad = runner.invoke(ichnaea_cli(), ["ichnaea", "stations", "expire", "--before", "May"])
    assert bad.exit_code != 0 and "--before is a day as YYYY-MM-DD" in str(bad.exception)


def test_upkeep_verb(filled: None, db: psycopg.Connection[Any]) -> None:
    old_batch_record(db)
    result = CliRunner().invoke(
        ichnaea_cli(), ["ichnaea", "stations", "upkeep", "--today", "2026-03-02", "--json"]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["stations"]["stations"] == 5
    assert shown["stations"]["by_table"] == {"wifi_shard_0": 2, "blue_shard_0": 1, "cell_lte": 2}
    assert shown["stations"]["areas"] == 2
    assert shown["datamap"]["deleted"] == 1
    assert shown["batches"]["deleted"] == 1
    assert shown["regions"] == {"regions": 1, "written": 1, "deleted": 0}
    text = CliRunner().invoke(
        ichnaea_cli(),
        ["ichnaea", "stations", "upkeep", "--today", "2026-03-02", "--batch-keep-days", "1"],
    )
    assert text.exit_code == 0, text.output
    assert "deleted 0 stations" in text.stdout and "deleted 0 datamap cells" in text.stdout
    # a day's retention from 2026-03-02 keeps the two batch records of `fill`: applied now
    assert "deleted 0 batch records applied before 2026-03-01T00:00:00+00:00" in text.stdout
    assert "counted 1 regions (0 rows written, 0 deleted)" in text.stdout


def test_stats_regions_verb(filled: None, database: Database) -> None:
    runner = CliRunner()
    empty = runner.invoke(ichnaea_cli(), ["ichnaea", "stats", "--regions"])
    assert empty.exit_code == 0, empty.output
    assert "no region counts yet" in empty.stdout
    fill_regions(database)
    rebuild_region_stat(database)
    result = runner.invoke(ichnaea_cli(), ["ichnaea", "stats", "--regions", "--json"])
    assert result.exit_code == 0, result.output
    # With `fill`'s stations: Germany's wifi are WIFI_OLD (in both), WIFI_NEW and 0a00f0000002
    # (the blocked ones have no region); Bluetooth BLUE_OLD and 0b0070000001; lte the cells of
    # areas (262, 1, 4) (100 and 101, in both) and (262, 1, 5).
    assert json.loads(result.stdout) == [
        {"region": "DE", "gsm": 1, "wcdma": 0, "lte": 3, "blue": 2, "wifi": 3},
        {"region": "FR", "gsm": 0, "wcdma": 1, "lte": 0, "blue": 0, "wifi": 1},
    ]
    text = runner.invoke(ichnaea_cli(), ["ichnaea", "stats", "--regions"])
    assert text.exit_code == 0, text.output
    lines = [line for line in text.stdout.splitlines() if "DE" in line or "FR" in line]
    assert len(lines) == 2 and "wcdma" in text.stdout


def test_expire_writes_only_tables_it_deletes_from(
    database: Database, db: psycopg.Connection[Any]
) -> None:
    """A step without stale stations writes nothing: the table's version (migration 0015),
    which a station updater's cache trusts, stays."""
    fill(database)

    def versions() -> dict[str, int]:
        rows = db.execute("SELECT name, version FROM ichnaea.station_versions").fetchall()
        return dict(rows)

    seen = versions()
    expire_stations(database, BEFORE, chunk=1)
    moved = {t for t, v in versions().items() if v != seen[t]}
    assert moved == {"wifi_shard_0", "blue_shard_0", "cell_lte"}
