"""What operators read: one station's row, the daily counters, the region counts, and the
datamap's cleanup."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sluice.stations.algorithm import Station
from sluice.stations.datamap import QUARTERS, table
from sluice.stations.keys import KINDS, CellKey, Kind, normal_mac, shard_of
from sluice.stations.repository import transaction
from sluice.stations.updater import STAT_NAMES

#: Grid cells not modified for this long are removed by `cleanup_datamap`.
DATAMAP_KEEP = timedelta(days=365)
#: The columns of ``region_stat`` (migration 0016), in its order.
REGION_STAT_COLUMNS = ("region", "gsm", "wcdma", "lte", "blue", "wifi")


def station_key(kind: str, key: str) -> tuple[Kind, str]:
    """The kind and normal key of a station named on a command line, or ValueError."""
    if kind not in KINDS:
        raise ValueError(f"kind is one of wifi, blue, cell, not {kind!r}")
    if kind == "cell":
        return "cell", CellKey.parse(key).text()
    mac = normal_mac(key)
    if mac is None:
        raise ValueError(f"{key!r} is not a usable MAC address (12 hex digits)")
    return kind, mac


def show_station(db_or_tx: Any, kind: str, key: str) -> Station | None:
    """The row of one station, or None when there is none."""
    k, normal = station_key(kind, key)
    with transaction(db_or_tx) as store:
        return store.show(k, shard_of(k, normal), normal)


def stats(db_or_tx: Any) -> list[dict[str, Any]]:
    """The daily counters: per day and key, the cumulative total up to that day."""
    with transaction(db_or_tx) as store:
        return [
            {"key": key, "name": STAT_NAMES[key], "time": day.isoformat(), "value": value}
            for key, day, value in store.stats()
        ]


def region_stats(db_or_tx: Any) -> list[dict[str, Any]]:
    """The rows of ``region_stat`` (rebuilt by the daily upkeep), by region."""
    with transaction(db_or_tx) as store:
        return [dict(zip(REGION_STAT_COLUMNS, row, strict=True)) for row in store.region_stat()]


def cleanup_datamap(db_or_tx: Any, today: date) -> None:
    """Remove grid cells not modified in the last 365 days."""
    with transaction(db_or_tx) as store:
        for quarter in QUARTERS:
            store.cleanup_datamap(table(quarter), today - DATAMAP_KEEP)
