"""apply_batch on a real PostgreSQL: observations in their shard tables, cell areas, the datamap
and the daily counters, and a batch id applied once only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from sluice.db import Database, DatabaseOptions
from sluice.stations import apply_batch, show_station, stats
from sluice.stations.keys import GNSS
from sluice.stations.reads import cleanup_datamap
from tests.fixtures.stations import report

TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    with Database.open(DatabaseOptions(url=database_url)) as opened:
        yield opened


def rep(lat: float, lon: float, **networks: Any) -> dict[str, Any]:
    return report(lat, lon, timestamp=1_770_000_000_000, **networks)


def count(db: psycopg.Connection[Any], table: str) -> int:
    row = db.execute(f"SELECT count(*) FROM ichnaea.{table}").fetchone()  # test-only names
    assert row is not None
    return int(row[0])


def test_a_batch_lands_in_its_shards_with_areas_datamap_and_stats(
    database: Database, db: psycopg.Connection[Any]
) -> None:
    reports = [
        rep(
            51.5,
            -0.1,
            wifi=["00:11:22:33:44:55", "00:11:f2:33:44:55"],
            blue=["aa:bb:cc:dd:ee:01"],
            cells=[("lte", 262, 1, 4, 100), ("gsm", 262, 1, 4, 7)],
        ),
        rep(51.5001, -0.1, wifi=["00:11:22:33:44:55"], cells=[("lte", 262, 1, 4, 101)]),
        rep(51.5, -0.1, wifi=["00:00:00:00:00:00"]),  # no valid network: dropped
        {"wifiAccessPoints": [{"macAddress": "00:11:22:33:44:66"}]},  # no position: dropped
    ]
    result = apply_batch(database, "b1", reports, today=TODAY, now=NOW)
    assert result.applied and result.reports == 4 and result.reports_dropped == 2
    assert result.observations == 7 and result.dropped == {"wifi": 1}
    assert result.effects == {"blue.new": 1, "cell.new": 3, "wifi.new": 2}
    assert count(db, "wifi_shard_2") == 1 and count(db, "wifi_shard_f") == 1
    assert (
        count(db, "blue_shard_c") == 1 and count(db, "cell_lte") == 2 and count(db, "cell_gsm") == 1
    )
    total = sum(count(db, f"wifi_shard_{d:x}") + count(db, f"blue_shard_{d:x}") for d in range(16))
    assert total == 3

    s = show_station(database, "wifi", "001122334455")
    assert s is not None
    assert s.samples == 2 and s.source == GNSS and s.created == NOW and s.last_seen == TODAY
    assert (
        s.lat == pytest.approx(51.50005)
        and s.min_lat == 51.5
        and s.max_lat == pytest.approx(51.5001)
    )
    assert s.radius == 6 and s.weight == pytest.approx(2.0) and s.region == "GB"

    areas = db.execute(
        "SELECT radio, mcc, mnc, lac, num_cells, lat, radius, avg_cell_radius"
        " FROM ichnaea.cell_area ORDER BY radio"
    ).fetchall()
    assert [a[:5] for a in areas] == [(0, 262, 1, 4, 1), (3, 262, 1, 4, 2)]
    assert areas[1][5] == pytest.approx(51.50005) and areas[1][6] == 6 and areas[1][7] == 0

    grid = db.execute("SELECT grid, created, modified FROM ichnaea.datamap_nw").fetchall()
    assert len(grid) == 1 and grid[0][1] == grid[0][2] == TODAY  # both reports in one 0.001° cell
    assert count(db, "datamap_ne") == 0

    assert stats(database) == [
        {"key": k, "name": n, "time": "2026-03-02", "value": v}
        for k, n, v in [
            (1, "cell", 3),
            (2, "unique_cell", 3),
            (3, "wifi", 3),
            (4, "unique_wifi", 2),
            (8, "blue", 1),
            (9, "unique_blue", 1),
        ]
    ]


def test_a_batch_id_is_applied_once(database: Database, db: psycopg.Connection[Any]) -> None:
    reports = [rep(10.0, 10.0, wifi=["00:11:22:33:44:55"])]
    first = apply_batch(database, "again", reports, today=TODAY, now=NOW)
    before = db.execute("SELECT * FROM ichnaea.wifi_shard_2").fetchall()
    second = apply_batch(database, "again", reports, today=TODAY + timedelta(days=1))
    assert first.applied and not second.applied and second.effects == {}
    assert db.execute("SELECT * FROM ichnaea.wifi_shard_2").fetchall() == before
    assert [r["value"] for r in stats(database) if r["name"] == "wifi"] == [1]
    assert db.execute(
        "SELECT batch_id, reports, observations FROM ichnaea.station_batches"
    ).fetchall() == [("again", 1, 1)]


def test_meanwhile_runs_once_while_the_batch_is_open(database: Database, database_url: str) -> None:
    """The work given as `meanwhile` (the next batch's preparation) runs once per batch, before
    the batch commits; for a batch applied before, once at the end."""
    seen: list[tuple[Any, ...] | None] = []

    def meanwhile() -> None:
        with psycopg.connect(database_url) as other:
            seen.append(other.execute("SELECT count(*) FROM ichnaea.station_batches").fetchone())

    reports = [rep(51.5, -0.1, wifi=["00:11:22:33:44:55"])]
    assert apply_batch(database, "m1", reports, today=TODAY, meanwhile=meanwhile).applied
    assert seen == [(0,)]  # the batch not committed yet
    assert not apply_batch(database, "m1", reports, today=TODAY, meanwhile=meanwhile).applied
    assert seen == [(0,), (1,)]


def test_a_report_at_sea_is_dropped_whole(database: Database, db: psycopg.Connection[Any]) -> None:
    """A position in no region, buffered (§8), drops its report: no observation, no station,
    no datamap cell; a report just off a coast (within the buffer) is kept."""
    reports = [
        rep(45.0, -30.0, wifi=["00:11:22:33:44:55"], cells=[("lte", 262, 1, 4, 100)]),
        rep(50.8, 1.52, wifi=["00:11:22:33:44:66"]),  # 6 km off Wimereux: in the buffer
    ]
    result = apply_batch(database, "sea", reports, today=TODAY, now=NOW)
    assert (result.reports, result.reports_dropped, result.observations) == (2, 1, 1)
    assert result.effects == {"wifi.new": 1} and result.datamap_cells == 1
    assert count(db, "cell_lte") == 0 and count(db, "wifi_shard_2") == 1
    station = show_station(database, "wifi", "001122334466")
    assert station is not None and station.region == "FR"


def test_counters_are_cumulative_per_day(database: Database) -> None:
    apply_batch(database, "d1", [rep(10.0, 10.0, blue=["00:11:22:33:44:55"])], today=TODAY)
    apply_batch(
        database,
        "d2",
        [rep(10.0, 10.0, blue=["00:11:22:33:44:55"])],
        today=TODAY + timedelta(days=1),
    )
    apply_batch(
        database,
        "d3",
        [rep(10.0, 10.0, blue=["00:11:22:33:44:55"])],
        today=TODAY + timedelta(days=1),
    )
    got = [(r["name"], r["time"], r["value"]) for r in stats(database)]
    # A day without a new station has no unique_blue row: the total stays that of its last row.
    assert got == [
        ("blue", "2026-03-02", 1),
        ("unique_blue", "2026-03-02", 1),
        ("blue", "2026-03-03", 3),
    ]


def test_a_blocked_cell_leaves_its_area(database: Database, db: psycopg.Connection[Any]) -> None:
    apply_batch(database, "c1", [rep(10.0, 10.0, cells=[("wcdma", 262, 1, 4, 9)])], today=TODAY)
    assert count(db, "cell_area") == 1
    far = [
        rep(10.0, 10.0, cells=[("wcdma", 262, 1, 4, 9)]),
        rep(12.0, 10.0, cells=[("wcdma", 262, 1, 4, 9)]),
    ]
    result = apply_batch(database, "c2", far, today=TODAY + timedelta(days=1))
    assert result.effects == {"cell.block": 1} and result.areas_changed == 1
    assert count(db, "cell_area") == 0
    blocked = show_station(database, "cell", "wcdma:262:1:4:9")
    assert blocked is not None and blocked.lat is None and blocked.block_count == 1
    # Blocked for two days: the next observations are counted, and change nothing.
    again = apply_batch(
        database,
        "c3",
        [rep(10.0, 10.0, cells=[("wcdma", 262, 1, 4, 9)])],
        today=TODAY + timedelta(days=2),
    )
    assert again.effects == {"cell.none": 1}
    assert show_station(database, "cell", "wcdma:262:1:4:9") == blocked


def test_confirm_does_not_recompute_areas_nor_touch_modified(database: Database) -> None:
    apply_batch(
        database, "q1", [rep(10.0, 10.0, cells=[("lte", 262, 1, 4, 9)])], today=TODAY, now=NOW
    )
    result = apply_batch(
        database,
        "q2",
        [rep(10.0, 10.0, cells=[("lte", 262, 1, 4, 9)], source="query")],
        today=TODAY + timedelta(days=1),
    )
    assert result.effects == {"cell.confirm": 1} and result.areas_changed == 0
    s = show_station(database, "cell", "lte:262:1:4:9")
    assert s is not None and s.modified == NOW and s.last_seen == TODAY + timedelta(days=1)


def test_the_datamap_flag_and_daily_touches(
    database: Database, db: psycopg.Connection[Any]
) -> None:
    apply_batch(
        database,
        "m0",
        [rep(47.0, 10.0, wifi=["00:11:22:33:44:55"])],
        today=TODAY,
        map_content=False,
    )
    assert count(db, "datamap_ne") == 0
    apply_batch(database, "m1", [rep(47.0, 10.0, wifi=["00:11:22:33:44:55"])], today=TODAY)
    apply_batch(
        database,
        "m2",
        [rep(47.0, 10.0, wifi=["00:11:22:33:44:55"]), rep(-30.0, 25.0, wifi=["00:11:22:33:44:66"])],
        today=TODAY + timedelta(days=400),
    )
    rows = db.execute("SELECT created, modified FROM ichnaea.datamap_ne").fetchall()
    assert rows == [(TODAY, TODAY + timedelta(days=400))]
    assert db.execute("SELECT created FROM ichnaea.datamap_se").fetchall() == [
        (TODAY + timedelta(days=400),)
    ]
    cleanup_datamap(database, TODAY + timedelta(days=800))
    assert count(db, "datamap_ne") == 0 and count(db, "datamap_se") == 0


def test_weightless_observations_are_dropped_and_counted(database: Database) -> None:
    r = rep(10.0, 10.0, wifi=["00:11:22:33:44:55"])
    r["position"]["accuracy"] = 500.0  # > 200 m: a wifi observation weighs nothing
    result = apply_batch(database, "w", [r], today=TODAY)
    assert result.observations == 0 and result.dropped == {"wifi_weight": 1}
    assert show_station(database, "wifi", "001122334455") is None


def test_a_batch_in_the_callers_transaction_rolls_back_with_it(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        with conn.transaction():
            apply_batch(conn, "tx", [rep(10.0, 10.0, wifi=["00:11:22:33:44:55"])], today=TODAY)
        assert apply_batch(conn, "tx", [], today=TODAY).applied is False
    with psycopg.connect(database_url) as conn:
        with pytest.raises(ZeroDivisionError), conn.transaction():
            apply_batch(conn, "tx2", [rep(10.0, 10.0, wifi=["00:11:22:33:44:77"])], today=TODAY)
            raise ZeroDivisionError
        assert apply_batch(conn, "tx2", [], today=TODAY).applied is True
