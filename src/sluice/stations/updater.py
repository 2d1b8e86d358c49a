"""One batch of reports into the station tables, exactly once.

1. Reports → observations as columns per kind (`sluice.stations.gather`); observations of
   weight 0 are dropped and counted; each report that gave an observation marks its datamap
   grid cell. Each kind's stations are numbered in key order and know their shard table.
2. One transaction: the advisory locks of the batch id and of every shard it touches, in one
   global order (so two updaters can never wait for each other), then the batch id recorded —
   when it was recorded before, nothing else happens. Per kind, the stations are read as
   columns (from the updater's cache, else from the tables), the algorithm runs once
   over all of them (`update_stations`), and the changed rows are copied in and written into
   their shards by one statement. Cell areas of every non-confirm cell change are recomputed;
   the datamap and the daily counters get one statement each.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from sluice import faults
from sluice.db import Database
from sluice.errors import TransientError
from sluice.stations.algorithm import CONFIRM, NEW, NEW_BLOCK, NONE, update_stations
from sluice.stations.areas import area_of
from sluice.stations.cache import Staged, StationCache
from sluice.stations.columns import StationColumns
from sluice.stations.gather import KindBatch, gather
from sluice.stations.keys import CellKey, Kind
from sluice.stations.repository import StationStore, transaction
from sluice.stations.rows import EFFECTS
from sluice.stations.simulate import now_for

#: StatKey of the seed: observations and new stations per kind.
STAT_KEYS: dict[Kind, tuple[int, int]] = {"cell": (1, 2), "wifi": (3, 4), "blue": (8, 9)}
STAT_NAMES = {1: "cell", 2: "unique_cell", 3: "wifi", 4: "unique_wifi", 8: "blue", 9: "unique_blue"}


@dataclass
class BatchResult:
    batch_id: str
    #: False when the batch had been applied before (nothing was written this time).
    applied: bool
    reports: int = 0
    #: Reports that gave no observation: no usable position, or no valid network.
    reports_dropped: int = 0
    #: Observations of weight > 0 that reached their station.
    observations: int = 0
    #: Networks refused by validation, and observations of weight 0, per kind.
    dropped: dict[str, int] = field(default_factory=dict)
    #: Stations per kind and effect (``wifi.new``, ``cell.confirm``, ``blue.none`` …).
    effects: dict[str, int] = field(default_factory=dict)
    areas_changed: int = 0
    datamap_cells: int = 0


def apply_batch(
    db_or_tx: Any,
    batch_id: str,
    reports: Sequence[Mapping[str, Any]],
    *,
    today: date,
    map_content: bool = True,
    now: datetime | None = None,
) -> BatchResult:
    """Apply `reports` (v2 geosubmit dicts) to the station tables once per `batch_id`.

    `db_or_tx` is a `sluice.db.Database` (a pooled connection is used) or an open connection
    (the batch runs in a savepoint of its transaction, or its own). `map_content` says whether
    the datamap is kept. Rows are stamped with `now` (default: now, or the start of `today`
    when that is not today)."""
    prepared = gather(reports, map_content=map_content)
    now = now or now_for(today)
    result = BatchResult(
        batch_id,
        applied=False,
        reports=len(reports),
        reports_dropped=prepared.reports_dropped,
        observations=prepared.observations,
        dropped=dict(prepared.dropped),
    )
    batches = [KindBatch.of(k, columns) for k, columns in sorted(prepared.kinds.items())]
    tables = [t for b in batches for t in b.tables] + list(prepared.grids)
    cache = _cache_of(db_or_tx)
    touched: list[bytes] = []
    try:
        with transaction(db_or_tx) as store:
            store.lock(batch_id, tables)
            if not store.record_batch(batch_id, len(reports), prepared.observations):
                return result
            result.applied = True
            stats: Counter[int] = Counter()
            effects: Counter[str] = Counter()
            for batch in batches:
                changed = _update_kind(store, cache, batch, today, now, stats, effects)
                for table, keys in sorted(changed.items()):
                    result.areas_changed += _recompute_areas(store, table, keys, now)
            for table, grids in sorted(prepared.grids.items()):
                fresh = cache.unmarked(today, grids) if cache is not None else grids
                if fresh:
                    store.touch_datamap(table, fresh, today)
                    touched.extend(fresh)
                result.datamap_cells += len(set(grids))
            store.add_stats(today, stats)
            result.effects = dict(sorted(effects.items()))
            faults.pause("stations")  # crash tests: everything written, nothing committed
    except TransientError:
        # A row the cache held may be what went wrong (a writer it could not see): the
        # retry reads everything from the tables.
        if cache is not None:
            cache.clear()
        raise
    if cache is not None and touched:
        cache.marked(today, touched)
    return result


#: Each `Database`'s station cache (`sluice.stations.cache`), for as long as it lives.
_CACHES: weakref.WeakKeyDictionary[Database, StationCache] = weakref.WeakKeyDictionary()


def _cache_of(db_or_tx: Any) -> StationCache | None:
    """The cache of a `Database`; none for a caller's connection, whose transaction may still
    roll back after the batch."""
    if not isinstance(db_or_tx, Database):
        return None
    cache = _CACHES.get(db_or_tx)
    if cache is None:
        cache = _CACHES[db_or_tx] = StationCache()
    return cache


def _update_kind(
    store: StationStore,
    cache: StationCache | None,
    batch: KindBatch,
    today: date,
    now: datetime,
    stats: Counter[int],
    effects: Counter[str],
) -> dict[str, list[str]]:
    """The algorithm over a kind's stations and their rows written (and kept in the cache);
    the keys of the non-confirm cell changes per table."""
    kind, keys = batch.kind, batch.key_records()
    versions, txid = store.station_versions(batch.tables)
    if cache is not None:
        before, hit = cache.lookup(kind, batch.keys, batch.tables, batch.tags, versions)
    else:
        before, hit = StationColumns.empty(len(keys)), np.zeros(len(keys), dtype=bool)
    miss = np.flatnonzero(~hit)
    if len(miss):
        before.put(miss, store.read_columns(kind, batch.tables, batch.tags[miss], keys[miss]))
    out = update_stations(kind, before, batch.observations, today=today, now=now)
    write = np.flatnonzero(out.write)
    store.write_columns(
        kind,
        batch.tables,
        batch.tags[write],
        keys[write],
        before.exists[write],
        out.after.take(write),
    )
    if cache is not None:
        # Kept before the commit, under the shard locks, so the next batch of these shards
        # finds them whichever thread runs it. Should the commit not happen, the tables keep
        # a version other than this transaction's id, which the cache then no longer trusts.
        written = frozenset(batch.tables[t] for t in np.unique(batch.tags[write]).tolist())
        cache.store(Staged(kind, batch.keys, batch.tables, batch.tags, out.after, written, txid))
    _count(kind, out.effect, len(batch.observations), stats, effects)
    changed: dict[str, list[str]] = {}
    if kind == "cell":
        moved = np.flatnonzero((out.effect != CONFIRM) & (out.effect != NONE))
        for i in moved.tolist():
            changed.setdefault(batch.tables[batch.tags[i]], []).append(batch.keys[i])
    return changed


def _count(
    kind: Kind,
    effect: npt.NDArray[np.int8],
    observations: int,
    stats: Counter[int],
    effects: Counter[str],
) -> None:
    obs_key, unique_key = STAT_KEYS[kind]
    counts = np.bincount(effect, minlength=len(EFFECTS))
    stats[obs_key] += observations
    stats[unique_key] += int(counts[NEW] + counts[NEW_BLOCK])
    for code, n in enumerate(counts.tolist()):
        if n:
            effects[f"{kind}.{EFFECTS[code]}"] += n


def _recompute_areas(store: StationStore, table: str, changed: Sequence[str], now: datetime) -> int:
    if not changed:
        return 0
    radio = table.removeprefix("cell_")
    areas = sorted({(c.mcc, c.mnc, c.lac) for c in map(CellKey.parse, changed)})
    cells = store.area_cells(table, areas)
    store.write_areas(radio, {a: area_of(cells.get(a, [])) for a in areas}, now)
    return len(areas)
