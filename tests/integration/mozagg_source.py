"""Helpers of the mozaggregator export tests: a generated source, and its rows as the export
must give them (read from the source with plain SQL, independently of the export's code)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa

from sluice.api import Engine
from sluice.lake import Lake, LakeOptions
from sluice.recipes.mozagg import api
from sluice.recipes.mozagg.tables import DIMENSIONS
from sluice.warehouse import Warehouse, WarehouseOptions

SCHEMA = "mozaggregator"
#: The columns compared: everything but the ingest date.
COMPARED = (
    "aggregate_type",
    "ds_nodash",
    "channel",
    "version",
    *DIMENSIONS,
    "aggregate",
    "sum",
    "count",
)
KEYS_SQL = ", ".join(f"dimensions ->> '{key}'" for key in DIMENSIONS)


def expected(db: psycopg.Connection[Any], kind: str, day: date) -> list[tuple[Any, ...]]:
    """The day's rows as the export must give them, sorted; bad rows left out."""
    ds = day.strftime("%Y%m%d")
    tables = [
        r[0]
        for r in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename ~ %s",
            (SCHEMA, f"^{kind}_[a-z]+_[0-9]+_{ds}$"),
        )
    ]
    rows = []
    for table in tables:
        _, channel, version, _ = table.rsplit("_", 3)
        query = (
            f"SELECT {KEYS_SQL}, histogram FROM {SCHEMA}.{table} "
            "WHERE (dimensions IS NULL OR jsonb_typeof(dimensions) = 'object') "
            "AND cardinality(histogram) >= 2"
        )
        for *keys, hist in db.execute(query):  # type: ignore[call-overload]
            rows.append((kind, ds, channel, version, *keys, hist[:-2], hist[-2], hist[-1]))
    return sorted(rows, key=repr)


def arrow_rows(table: pa.Table, ds: str | None = None) -> list[tuple[Any, ...]]:
    data = table.select(list(COMPARED)).to_pylist()
    got = [tuple(row[c] for c in COMPARED) for row in data]
    if ds is not None:
        got = [row for row in got if row[1] == ds]
    return sorted(got, key=repr)


def lake(engine: Engine) -> Lake:
    return Lake(LakeOptions(engine.settings.state_dir / "lake"))


def lake_rows(engine: Engine, kind: str, ds: str | None = None) -> list[tuple[Any, ...]]:
    opened = lake(engine)
    try:
        return arrow_rows(opened.read(f"{kind}_aggregates"), ds)
    finally:
        opened.close()


def warehouse_rows(engine: Engine, kind: str, ds: str | None = None) -> list[tuple[Any, ...]]:
    warehouse = Warehouse(WarehouseOptions(engine.settings.state_dir / "warehouse.duckdb"))
    names = ", ".join(f'"{c}"' for c in COMPARED)
    _, rows = warehouse.query(f"SELECT {names} FROM {kind}_aggregates")
    got = [tuple(r) for r in rows]
    if ds is not None:
        got = [row for row in got if row[1] == ds]
    return sorted(got, key=repr)


def generate(
    engine: Engine,
    start: date,
    days: int,
    *,
    tables: int = 2,
    rows: int = 60,
    dump: Path | None = None,
    kinds: tuple[str, ...] = ("submission_date",),
) -> None:
    api.generate_source(
        engine,
        start=start,
        days=days,
        tables_per_day=tables,
        rows_per_table=rows,
        kinds=kinds,
        dump=dump,
    )
    flush_stats(engine)


def flush_stats(engine: Engine) -> None:
    """Wait until the server's statistics show the writes just made (they are flushed a
    moment after a session ends or goes idle): the source fingerprints read them."""
    time.sleep(1.2)
