"""The station updater's cache of rows (sluice.stations.cache) against writers it cannot see:
an operator's SQL, the expiry, a batch that rolled back. Each time the next batch must start
from what the tables hold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from sluice import faults
from sluice.db import Database, DatabaseOptions
from sluice.stations import apply_batch, show_station
from sluice.stations.upkeep import expire_stations

TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, tzinfo=UTC)
MAC = "a0b1c2d3e4f5"


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    with Database.open(DatabaseOptions(url=database_url)) as opened:
        yield opened


def seen(n: int) -> list[dict[str, Any]]:
    return [
        {
            "position": {"latitude": 51.5, "longitude": -0.1, "accuracy": 10.0},
            "wifiAccessPoints": [{"macAddress": MAC, "signalStrength": -80}],
        }
        for _ in range(n)
    ]


def test_a_batch_after_an_operators_update_starts_from_the_table(
    database: Database, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    apply_batch(database, "one", seen(1), today=TODAY, now=NOW)
    # The shard of MAC is wifi_shard_c (the fifth hex digit); the cache now holds its row.
    db.execute(
        "UPDATE ichnaea.wifi_shard_c SET samples = 1000 WHERE mac = %s", [bytes.fromhex(MAC)]
    )
    apply_batch(database, "two", seen(2), today=TODAY, now=NOW)
    station = show_station(database, "wifi", MAC)
    assert station is not None and station.samples == 1002


def test_a_batch_after_the_expiry_makes_the_station_anew(database: Database) -> None:
    apply_batch(
        database, "old", seen(1), today=date(2024, 1, 1), now=datetime(2024, 1, 1, tzinfo=UTC)
    )
    result = expire_stations(database, date(2025, 1, 1), now=NOW)
    assert result.total == 1
    out = apply_batch(database, "new", seen(1), today=TODAY, now=NOW)
    assert out.effects == {"wifi.new": 1}
    station = show_station(database, "wifi", MAC)
    assert station is not None and station.samples == 1 and station.created == NOW


def test_a_batch_that_rolled_back_leaves_nothing_in_the_cache(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_batch(database, "one", seen(1), today=TODAY, now=NOW)

    def fail(point: str) -> None:
        raise RuntimeError(f"the batch fails at {point}, everything written, nothing committed")

    with monkeypatch.context() as patched:
        patched.setattr(faults, "pause", fail)
        with pytest.raises(RuntimeError, match="nothing committed"):
            apply_batch(database, "two", seen(5), today=TODAY, now=NOW)
    apply_batch(database, "three", seen(1), today=TODAY, now=NOW)
    station = show_station(database, "wifi", MAC)
    assert station is not None and station.samples == 2
