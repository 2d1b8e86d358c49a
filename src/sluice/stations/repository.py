"""The station tables (schema ``ichnaea``, migration 0013): the one class of the stations
package that runs SQL. Every write is set-wise: the stations of a batch are read in one
statement (after a binary COPY of their keys into a temporary table) and written by one (their
rows as binary array parameters), areas, datamap and counters as arrays unnested into an
``INSERT … ON CONFLICT``."""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg.abc import DumperKey
from psycopg.adapt import Dumper, PyFormat
from psycopg.pq import Format

from sluice.db import Database
from sluice.db.errors import classify
from sluice.db.queries import load as load_queries
from sluice.errors import TransientError
from sluice.stations import binary
from sluice.stations.areas import Area, AreaCell
from sluice.stations.columns import StationColumns
from sluice.stations.keys import RADIOS, CellKey, Kind, shard_tables
from sluice.stations.rows import Station

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
#: Each station's index into a batch's list of tables.
Tags = npt.NDArray[np.int16]
STATION_COLUMNS = tuple(f.name for f in fields(Station) if f.name != "psc")


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def key_bytes(kind: Kind, key: str) -> bytes:
    return CellKey.parse(key).packed() if kind == "cell" else bytes.fromhex(key)


class _PgArrayDumper(Dumper):
    """A `binary.PgArray` as the parameter it already is: its bytes, typed by its array oid."""

    format = Format.BINARY

    def get_key(self, obj: Any, format: PyFormat) -> DumperKey:
        return (binary.PgArray, obj.oid)

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        typed = _PgArrayDumper(binary.PgArray)
        typed.oid = obj.oid
        return typed

    def dump(self, obj: Any) -> bytes:
        data: bytes = obj.data
        return data


class StationStore:
    """The station tables over one connection, inside the caller's transaction."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._temporaries = False
        conn.adapters.register_dumper(binary.PgArray, _PgArrayDumper)

    def _run(self, name: str, params: Mapping[str, Any], table: str | None = None) -> list[Any]:
        query = _query(name, table)
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

    def station_versions(self, tables: Sequence[str]) -> tuple[dict[str, int], int]:
        """The versions of `tables` (migration 0015), and this transaction's id: the version
        of every table it writes."""
        rows = self._run("station_versions", {"names": list(tables)})
        return {name: int(version) for name, version, _ in rows}, int(rows[0][2])

    def read_columns(
        self, kind: Kind, tables: Sequence[str], tags: Tags, keys: npt.NDArray[Any]
    ) -> StationColumns:
        """The rows of a batch's stations of one kind, in the batch's order: station ``i`` has
        key ``keys[i]`` (a ``V6`` or ``V11`` record) and lives in ``tables[tags[i]]``. Two
        round trips: the keys in (binary COPY), the rows out (a binary array per column)."""
        found = StationColumns.empty(len(keys))
        if not len(keys):
            return found
        self._ensure_temporaries()
        index = np.arange(len(keys), dtype=np.int32)
        self._copy_in("copy_station_keys", binary.encode_keys(index, tags, keys))
        part = Q["read_cells_part" if kind == "cell" else "read_macs_part"]
        query = sql.SQL(Q["read_stations"]).format(
            parts=sql.SQL("\nUNION ALL\n").join(
                sql.SQL(part).format(table=sql.Identifier(tables[tag]), tag=sql.Literal(tag))
                for tag in sorted(set(tags.tolist()))
            )
        )
        row = self._execute(query, {}, "read stations")[0]
        if row[0]:
            binary.decode([bytes(column) for column in row[1:]], found)
        return found

    def write_batch(
        self,
        writes: Sequence[StationWrites],
        datamap: Mapping[str, Sequence[bytes]],
        today: date,
        stats: Mapping[int, int],
        meanwhile: Callable[[], None],
    ) -> None:
        """A batch's writes in one round trip, one pipeline: the statement that writes every
        kind's rows into their tables (sent as one binary array per column and shard), the
        datamap cells touched `today` and the counters added. The server works on the
        pipeline while `meanwhile` runs. The existing rows must have been read in this
        transaction, under their shard's lock."""
        statement = _write_statement(writes)
        try:
            with self.conn.pipeline():
                written = None
                if statement is not None:
                    written = self.conn.execute(statement[0], statement[1], binary=True)
                for table, grids in sorted(datamap.items()):
                    params = {"grid": sorted(set(grids)), "today": today}
                    self.conn.execute(_query("touch_datamap", table), params, binary=True)
                ordered = sorted((k, v) for k, v in stats.items() if v)
                if ordered:
                    params = {"today": today, "key": [k for k, _ in ordered]}
                    params["value"] = [v for _, v in ordered]
                    self.conn.execute(_query("add_stats"), params, binary=True)
                meanwhile()
                row = written.fetchone() if written is not None else None
        except psycopg.Error as exc:
            raise classify(exc, "station writes") from exc
        found = int(row[0]) if row is not None else 0
        expected = sum(int(w.existing.sum()) for w in writes)
        if found != expected:
            # Only a writer outside the shard locks can get here: retry the batch from a
            # fresh read rather than lose a row.
            raise TransientError(
                f"station batch: {expected} stations read in this transaction, "
                f"{found} found again to update (written concurrently?)"
            )

    def _ensure_temporaries(self) -> None:
        """The session's temporary tables (made once per session by the statement itself),
        asked for once per store: a store lives for one transaction of one connection."""
        if not self._temporaries:
            self._run("create_temporaries", {})
            self._temporaries = True

    def _copy_in(self, name: str, rows: bytes) -> None:
        try:
            with self.conn.cursor() as cur, cur.copy(sql.SQL(Q[name])) as copy:
                copy.write(binary.HEADER + rows + binary.TRAILER)
        except psycopg.Error as exc:
            raise classify(exc, f"station query {name}") from exc

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

    def cleanup_datamap(self, table: str, before: date) -> None:
        self._run("cleanup_datamap", {"before": before}, table)

    def stats(self) -> list[tuple[int, date, int]]:
        return [(int(k), t, int(v)) for k, t, v in self._run("stats", {})]

    def show(self, kind: Kind, table: str, key: str) -> Station | None:
        rows = self._run(
            "show_cell" if kind == "cell" else "show_mac", {"key": key_bytes(kind, key)}, table
        )
        return _station(rows[0]) if rows else None

    # -- upkeep (sluice.stations.upkeep) ------------------------------------------------------

    def lock_shards(self, tables: Sequence[str]) -> None:
        """Hold the shards' locks (the ones batches take) to the end of the transaction."""
        ids = sorted({_SHARD_IDS[t] for t in tables})
        self._run("lock", {"classes": [SHARD_LOCK] * len(ids), "ids": ids})

    def expire_window(
        self, kind: Kind, table: str, before: date, after: bytes, chunk: int
    ) -> tuple[bytes | None, list[bytes]]:
        """The `chunk` keys after `after`: the last one (None when the table is done) and
        those of the stations among them last active before `before`."""
        name = "expire_cells_window" if kind == "cell" else "expire_macs_window"
        params = {"before": before, "after": after, "chunk": chunk}
        last, stale = self._run(name, params, table)[0]
        return (None if last is None else bytes(last)), [bytes(k) for k in stale]

    def expire(
        self, kind: Kind, table: str, before: date, keys: Sequence[bytes]
    ) -> tuple[int, list[tuple[int, int, int]]]:
        """Delete the stale stations of `keys`: how many, and for cells the (mcc, mnc, lac)
        areas that lost a positioned cell."""
        name = "expire_cells" if kind == "cell" else "expire_macs"
        params = {"before": before, "keys": list(keys)}
        deleted, mcc, mnc, lac = self._run(name, params, table)[0]
        return int(deleted), list(zip(mcc or [], mnc or [], lac or [], strict=True))

    def cleanup_datamap_chunk(self, table: str, before: date, chunk: int) -> int:
        """Delete at most `chunk` grid cells not modified since before `before`."""
        rows = self._run("cleanup_datamap_chunk", {"before": before, "chunk": chunk}, table)
        return int(rows[0][0])

    def cleanup_stat(self, before: date) -> tuple[int, int]:
        """Fold the daily increments before `before` into later rows (totals unchanged): the
        rows deleted and the rows that took their sums."""
        deleted, folded = self._run("cleanup_stat", {"before": before})[0]
        return int(deleted), int(folded)

    def rebuild_region_stat(self) -> tuple[int, int, int]:
        """Count every region's cells, wifi and Bluetooth stations again into ``region_stat``
        (one statement over the areas and all 32 shards): the regions counted, the rows
        written (new or changed) and the rows deleted (regions with nothing left)."""
        shards = {
            kind: sql.SQL("\nUNION ALL\n").join(
                sql.SQL(Q["region_count_part"]).format(
                    kind=sql.Literal(kind), table=sql.Identifier(table)
                )
                for table in shard_tables(kind)
            )
            for kind in ("wifi", "blue")
        }
        query = sql.SQL(Q["rebuild_region_stat"]).format(**shards)
        regions, written, deleted = self._execute(query, {}, "rebuild_region_stat")[0]
        return int(regions), int(written), int(deleted)

    def region_stat(self) -> list[tuple[str, int, int, int, int, int]]:
        """The rows of ``region_stat``, by region: (region, gsm, wcdma, lte, blue, wifi)."""
        return [
            (str(r), int(g or 0), int(w or 0), int(lte or 0), int(b or 0), int(wifi or 0))
            for r, g, w, lte, b, wifi in self._run("region_stat", {})
        ]

    def prune_batches(self, before: datetime, chunk: int) -> int:
        """Delete at most `chunk` of the batch records applied before `before`, oldest first."""
        rows = self._run("prune_batches", {"before": before, "chunk": chunk})
        return int(rows[0][0])


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


def _query(name: str, table: str | None = None) -> sql.SQL | sql.Composed:
    """The named query, its ``{table}`` composed as an identifier when it has one."""
    if table is None:
        return sql.SQL(Q[name])
    return sql.SQL(Q[name]).format(table=sql.Identifier(table))


@dataclass(frozen=True)
class StationWrites:
    """One kind's rows to write: row ``i`` has key ``keys[i]`` (a ``V6`` or ``V11`` record),
    lives in ``tables[tags[i]]``, and was read in this transaction when ``existing[i]``."""

    kind: Kind
    tables: Sequence[str]
    tags: Tags
    keys: npt.NDArray[Any]
    existing: npt.NDArray[np.bool_]
    rows: StationColumns


#: A write part: (verb, kind, tag of the batch, table).
_Part = tuple[str, Kind, int, str]


def _write_statement(
    writes: Sequence[StationWrites],
) -> tuple[bytes, dict[str, binary.PgArray]] | None:
    """`write_many` over every shard `writes` touch (an update of the existing rows and an
    insert of the new ones each, whichever it has), and its parameters; None when there is
    nothing to write."""
    parts: list[_Part] = []
    params: dict[str, binary.PgArray] = {}
    for w in writes:
        # Rows grouped by shard, the existing ones first: each part is one slice of them.
        order = np.lexsort((~w.existing, w.tags))
        tags, existing = w.tags[order], w.existing[order]
        elements = binary.Elements(w.keys[order], w.rows.take(order))
        cuts = np.flatnonzero((np.diff(tags) != 0) | (np.diff(existing) != 0)) + 1
        bounds = [0, *cuts.tolist(), len(order)]
        for start, stop in itertools.pairwise(bounds):
            if start == stop:
                continue
            tag = int(tags[start])
            part: _Part = ("update" if existing[start] else "insert", w.kind, tag, w.tables[tag])
            name = _part_name(part)
            arrays = elements.arrays(start, stop)
            params.update({f"{name}_{column}": value for column, value in arrays.items()})
            parts.append(part)
    if not parts:
        return None
    return _write_query(tuple(parts)), params


def _part_name(part: _Part) -> str:
    verb, kind, tag, _ = part
    return f"{verb[0]}{kind[0]}{tag}"


@functools.lru_cache(maxsize=64)
def _write_query(parts: tuple[_Part, ...]) -> bytes:
    """The statement of `parts`, composed: batches of one worker mostly have the same few
    shapes, and composing a statement of 32 parts again each batch costs milliseconds."""
    ctes: list[sql.Composable] = []
    updated: list[sql.Composable] = []
    for part in parts:
        verb, kind, _, table = part
        name = _part_name(part)
        rows = sql.SQL(Q["station_rows"]).format(
            **{column: sql.Placeholder(f"{name}_{column}") for column in binary.COLUMNS}
        )
        suffix = "cells_part" if kind == "cell" else "macs_part"
        ctes.append(
            sql.SQL(Q[f"{verb}_{suffix}"]).format(
                name=sql.Identifier(name),
                table=sql.Identifier(table),
                rows=rows,
                keys=sql.Placeholder(f"{name}_key"),
            )
        )
        if verb == "update":
            updated.append(sql.SQL(Q["updated_part"]).format(name=sql.Identifier(name)))
    return (
        sql.SQL(Q["write_many"])
        .format(
            parts=sql.SQL(",\n").join(ctes),
            updated=sql.SQL("\nUNION ALL\n").join(updated)
            if updated
            else sql.SQL("SELECT 1 WHERE false"),
        )
        .as_bytes()
    )
