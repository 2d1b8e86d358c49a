"""Station rows in PostgreSQL's binary array forms, through a real server: the arrays a batch
writes come back from the write statement's row source as the values they stand for (NULLs
from their sentinels), whole and in slices, and the empty slice is an empty array."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from sluice.stations import binary
from sluice.stations.columns import StationColumns, days, micros
from sluice.stations.repository import Q, StationStore

CREATED = datetime(2026, 3, 2, 12, 30, 15, 123456, tzinfo=UTC)


def rows() -> tuple[Any, StationColumns]:
    """Three stations: every field set, every field NULL, and a mix."""
    keys = np.frombuffer(bytes.fromhex("0011223344550a0b0c0d0e0fffeeddccbbaa"), dtype="V6")
    columns = StationColumns.empty(3)
    columns.lat[[0, 2]] = [51.5, -33.25]
    columns.lon[[0, 2]] = [-0.125, 151.0]
    for name, value in (("max_lat", 51.6), ("min_lat", 51.4), ("max_lon", 0.0)):
        getattr(columns, name)[0] = value
    columns.min_lon[0], columns.weight[0] = -0.25, 2.5
    columns.radius[0], columns.samples[0], columns.source[0] = 120, 2**40, 3
    columns.block_count[[0, 2]] = [0, 7]
    columns.psc[0] = 511
    columns.created[0] = columns.modified[0] = micros(CREATED)
    columns.last_seen[[0, 2]] = [days(date(2026, 3, 2)), days(date(1999, 12, 31))]
    columns.block_first[2] = columns.block_last[2] = days(date(2000, 1, 1))
    columns.region[:] = ["GB", None, "AU"]
    return keys, columns


def decoded(conn: psycopg.Connection[Any], arrays: dict[str, binary.PgArray]) -> list[Any]:
    StationStore(conn)  # its dumper sends the arrays as they are
    query = sql.SQL(Q["station_rows"]).format(
        **{name: sql.Placeholder(name) for name in binary.COLUMNS}
    )
    return conn.execute(query, arrays, binary=True).fetchall()


def test_rows_come_back_as_the_values_they_stand_for(db: psycopg.Connection[Any]) -> None:
    keys, columns = rows()
    got = decoded(db, binary.Elements(keys, columns).arrays(0, 3))
    assert got[0] == (
        bytes.fromhex("001122334455"), 51.5, -0.125, 51.6, 51.4, 0.0, -0.25, 2.5, 120, 2**40,
        3, 0, 511, CREATED, CREATED, date(2026, 3, 2), None, None, "GB",
    )  # fmt: skip
    assert got[1] == (bytes.fromhex("0a0b0c0d0e0f"),) + (None,) * 18
    assert got[2] == (
        bytes.fromhex("ffeeddccbbaa"), -33.25, 151.0, None, None, None, None, None, None, None,
        None, 7, None, None, None, date(1999, 12, 31), date(2000, 1, 1), date(2000, 1, 1), "AU",
    )  # fmt: skip


def test_slices_and_the_empty_slice(db: psycopg.Connection[Any]) -> None:
    keys, columns = rows()
    elements = binary.Elements(keys, columns)
    assert [r[0] for r in decoded(db, elements.arrays(1, 3))] == [
        bytes.fromhex("0a0b0c0d0e0f"),
        bytes.fromhex("ffeeddccbbaa"),
    ]
    assert decoded(db, elements.arrays(2, 2)) == []
