"""The station tables (schema ``ichnaea``, migration 0013): the one class of the stations
package that runs SQL. Every write is set-wise: the stations of a batch are read in one
statement and written by one (after a binary COPY into a temporary table), areas, datamap and
counters as arrays unnested into an ``INSERT … ON CONFLICT``."""

from __future__ import annotations

import zlib
from collections.abc import Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from sluice.db import Database
from sluice.db.errors import classify
from sluice.db.queries import load as load_queries
from sluice.errors import TransientError
from sluice.stations.algorithm import Station
from sluice.stations.areas import Area, AreaCell
from sluice.stations.keys import RADIOS, CellKey, Kind, shard_tables

Q = load_queries("sluice.stations", "queries.sql")

#: Advisory lock classes: a batch id first, then shards; taken in (class, id) order.
BATCH_LOCK = 0x51C0
SHARD_LOCK = 0x51C1
_SHARD_IDS = {
    name: i
    for i, name in enumerate(
        [*shard_tables("wifi"), *shard_tables("blue"), *shard_tables("cell")]
        + [f"datamap_{q}" for q in ("ne", "nw", "se", "sw")]
    )
}
STATION_COLUMNS = tuple(f.name for f in fields(Station) if f.name != "psc")


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def key_bytes(kind: Kind, key: str) -> bytes:
    return CellKey.parse(key).packed() if kind == "cell" else bytes.fromhex(key)


def key_text(kind: Kind, raw: bytes) -> str:
    return CellKey.unpack(raw).text() if kind == "cell" else raw.hex()


class StationStore:
    """The station tables over one connection, inside the caller's transaction."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def _run(self, name: str, params: Mapping[str, Any], table: str | None = None) -> list[Any]:
        query: sql.SQL | sql.Composed = sql.SQL(Q[name])
        if table is not None:
            query = sql.SQL(Q[name]).format(table=sql.Identifier(table))
        try:
            # Binary parameters: arrays of numbers and bytes travel without text round trips.
            cur = self.conn.execute(query, params, binary=True)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise classify(
                exc, f"station query {name}" + (f" on {table}" if table else "")
            ) from exc

    def lock(self, batch_id: str, tables: Sequence[str]) -> None:
        """Hold the batch id's lock and the shards' locks to the end of the transaction."""
        locks = sorted(
            [(BATCH_LOCK, _signed32(zlib.crc32(batch_id.encode())))]
            + [(SHARD_LOCK, _SHARD_IDS[t]) for t in set(tables)]
        )
        self._run("lock", {"classes": [c for c, _ in locks], "ids": [i for _, i in locks]})

    def record_batch(self, batch_id: str, reports: int, observations: int) -> bool:
        """True when the batch is new (and now recorded), False when it was applied before."""
        params = {"batch_id": batch_id, "reports": reports, "observations": observations}
        return bool(self._run("record_batch", params))

    def stations_many(
        self, groups: Sequence[tuple[Kind, str, Sequence[str]]]
    ) -> list[dict[str, Station]]:
        """The stations of every (kind, table, keys) group, in one statement: per group, the
        rows found by key."""
        found: list[dict[str, Station]] = [{} for _ in groups]
        if not groups:
            return found
        parts = []
        params: dict[str, Any] = {}
        for tag, (kind, table, keys) in enumerate(groups):
            part = Q["select_cells_part" if kind == "cell" else "select_macs_part"]
            parts.append(
                sql.SQL(part).format(
                    tag=sql.Placeholder(f"t{tag}"),
                    table=sql.Identifier(table),
                    keys=sql.Placeholder(f"k{tag}", "b"),
                )
            )
            params[f"t{tag}"] = tag
            params[f"k{tag}"] = [key_bytes(kind, k) for k in keys]
        query = sql.SQL("\nUNION ALL\n").join(parts)
        for row in self._execute(query, params, "select stations"):
            tag = row[0]
            kind = groups[tag][0]
            found[tag][key_text(kind, bytes(row[1]))] = _station_of(row)
        return found

    def write_many(
        self, writes: Sequence[tuple[Kind, str, Mapping[str, Station], Container[str]]]
    ) -> None:
        """Every (kind, table, rows, keys that exist) group's rows copied (binary COPY) into a
        session's temporary table, then written into their tables by one statement: three
        round trips for the whole batch. The existing rows must have been read in this
        transaction, under their shard's lock."""
        groups = [g for g in writes if g[2]]
        if not groups:
            return
        expected = self._copy_writes(groups)
        parts: list[sql.Composable] = []
        updated: list[sql.Composable] = []
        params: dict[str, Any] = {}
        for tag, (kind, table, _, _) in enumerate(groups):
            suffix = "cells_part" if kind == "cell" else "macs_part"
            for verb in ("update", "insert"):
                name = sql.Identifier(f"{verb[0]}{tag}")
                parts.append(
                    sql.SQL(Q[f"{verb}_{suffix}"]).format(
                        name=name, table=sql.Identifier(table), tag=sql.Placeholder(f"t{tag}")
                    )
                )
            updated.append(sql.SQL(Q["updated_part"]).format(name=sql.Identifier(f"u{tag}")))
            params[f"t{tag}"] = tag
        query = sql.SQL(Q["write_many"]).format(
            parts=sql.SQL(",\n").join(parts), updated=sql.SQL("\nUNION ALL\n").join(updated)
        )
        rows = self._execute(query, params, "write stations")
        if rows[0][0] != expected:
            # Only a writer outside the shard locks can get here: retry the batch from a
            # fresh read rather than lose a row.
            raise TransientError(
                f"station batch: {expected} stations read in this transaction, "
                f"{rows[0][0]} found again to update (written concurrently?)"
            )

    def _copy_writes(
        self, groups: Sequence[tuple[Kind, str, Mapping[str, Station], Container[str]]]
    ) -> int:
        """Copy the rows in; the number of existing ones."""
        self._run("create_station_writes", {})
        existing_rows = 0
        try:
            with (
                self.conn.cursor() as cur,
                cur.copy(sql.SQL(Q["copy_station_writes"])) as copy,
            ):
                copy.set_types(_WRITE_TYPES)
                for tag, (kind, _, rows, existing) in enumerate(groups):
                    for key, s in rows.items():
                        exists = key in existing
                        existing_rows += exists
                        copy.write_row(_write_row(tag, exists, kind, key, s))
        except psycopg.Error as exc:
            raise classify(exc, "station query copy_station_writes") from exc
        return existing_rows

    def _execute(self, query: sql.Composed, params: Mapping[str, Any], what: str) -> list[Any]:
        try:
            cur = self.conn.execute(query, params, binary=True)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise classify(exc, f"station query {what}") from exc

    def area_cells(
        self, table: str, areas: Sequence[tuple[int, int, int]]
    ) -> dict[tuple[int, int, int], list[AreaCell]]:
        params = {
            "mcc": [a[0] for a in areas],
            "mnc": [a[1] for a in areas],
            "lac": [a[2] for a in areas],
        }
        found: dict[tuple[int, int, int], list[AreaCell]] = {}
        for row in self._run("area_cells", params, table):
            found.setdefault((row[0], row[1], row[2]), []).append(AreaCell(*row[3:]))
        return found

    def write_areas(
        self, radio: str, areas: Mapping[tuple[int, int, int], Area | None], now: datetime
    ) -> None:
        from sluice.stations.keys import area_id

        kept = sorted((k, a) for k, a in areas.items() if a is not None)
        gone = sorted(area_id(radio, *k) for k, a in areas.items() if a is None)
        if kept:
            params: dict[str, Any] = {
                "now": now,
                "areaid": [area_id(radio, *k) for k, _ in kept],
                "radio": [RADIOS[radio]] * len(kept),
                "mcc": [k[0] for k, _ in kept],
                "mnc": [k[1] for k, _ in kept],
                "lac": [k[2] for k, _ in kept],
                "lat": [a.lat for _, a in kept],
                "lon": [a.lon for _, a in kept],
                "max_lat": [a.box.max_lat for _, a in kept],
                "min_lat": [a.box.min_lat for _, a in kept],
                "max_lon": [a.box.max_lon for _, a in kept],
                "min_lon": [a.box.min_lon for _, a in kept],
                "radius": [a.radius for _, a in kept],
                "region": [a.region for _, a in kept],
                "avg_cell_radius": [a.avg_cell_radius for _, a in kept],
                "num_cells": [a.num_cells for _, a in kept],
                "last_seen": [a.last_seen for _, a in kept],
            }
            self._run("upsert_areas", params)
        if gone:
            self._run("delete_areas", {"areaid": gone})

    def touch_datamap(self, table: str, grids: Sequence[bytes], today: date) -> None:
        if grids:
            self._run("touch_datamap", {"grid": sorted(set(grids)), "today": today}, table)

    def cleanup_datamap(self, table: str, before: date) -> None:
        self._run("cleanup_datamap", {"before": before}, table)

    def add_stats(self, today: date, counts: Mapping[int, int]) -> None:
        ordered = sorted((k, v) for k, v in counts.items() if v)
        if ordered:
            params = {
                "today": today,
                "key": [k for k, _ in ordered],
                "value": [v for _, v in ordered],
            }
            self._run("add_stats", params)

    def stats(self) -> list[tuple[int, date, int]]:
        return [(int(k), t, int(v)) for k, t, v in self._run("stats", {})]

    def show(self, kind: Kind, table: str, key: str) -> Station | None:
        rows = self._run(
            "show_cell" if kind == "cell" else "show_mac", {"key": key_bytes(kind, key)}, table
        )
        return _station(rows[0]) if rows else None


#: Column types of ``station_writes``, in its order.
_WRITE_TYPES = [
    "int2", "bool", "bytea", "int2", "int4", "int4", "int4", "int8", "int2",
    "float8", "float8", "float8", "float8", "float8", "float8",
    "int4", "text", "int8", "int2", "float8",
    "timestamptz", "timestamptz", "date", "date", "date", "int4",
]  # fmt: skip


def _write_row(tag: int, exists: bool, kind: Kind, key: str, s: Station) -> tuple[Any, ...]:
    if kind == "cell":
        c = CellKey.parse(key)
        head: tuple[Any, ...] = (
            tag, exists, c.packed(), RADIOS[c.radio], c.mcc, c.mnc, c.lac, c.cid
        )  # fmt: skip
        psc = s.psc
    else:
        head, psc = (tag, exists, bytes.fromhex(key), None, None, None, None, None), None
    return (
        *head, psc, s.lat, s.lon, s.max_lat, s.min_lat, s.max_lon, s.min_lon, s.radius,
        s.region, s.samples, s.source, s.weight, s.created, s.modified, s.last_seen,
        s.block_first, s.block_last, s.block_count,
    )  # fmt: skip


def _station_of(row: Sequence[Any]) -> Station:
    """A station from a ``select_*_part`` row (tag, key, the columns, psc)."""
    region = row[9]
    return Station(
        row[2], row[3], row[4], row[5], row[6], row[7], row[8],
        region.strip() if region is not None else None,
        *row[10:],
    )  # fmt: skip


def _station(row: Sequence[Any]) -> Station:
    values = dict(zip(STATION_COLUMNS, row[1:], strict=False))
    if len(row) > len(STATION_COLUMNS) + 1:
        values["psc"] = row[-1]
    if values.get("region") is not None:
        values["region"] = values["region"].strip()
    return Station(**values)


@contextmanager
def transaction(db_or_tx: Database | psycopg.Connection[Any]) -> Iterator[StationStore]:
    """A store in a transaction: a new pooled connection's for a `Database`, else the given
    connection's (a savepoint when it is in a transaction already)."""
    try:
        if isinstance(db_or_tx, Database):
            with db_or_tx.connection() as conn, conn.transaction():
                yield StationStore(conn)
        else:
            with db_or_tx.transaction():
                yield StationStore(db_or_tx)
    except psycopg.Error as exc:  # at commit: the statements classify their own
        raise classify(exc, "station batch commit") from exc
