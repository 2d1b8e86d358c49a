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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from sluice import faults
from sluice.db import Database
from sluice.errors import TransientError
from sluice.stations.algorithm import (
    CONFIRM,
    NEW,
    NEW_BLOCK,
    NONE,
    BatchTransitions,
    update_stations,
)
from sluice.stations.areas import area_of
from sluice.stations.cache import Staged, StationCache
from sluice.stations.columns import StationColumns
from sluice.stations.gather import Gathered, KindBatch, gather
from sluice.stations.keys import CellKey, Kind
from sluice.stations.repository import StationStore, StationWrites, transaction
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


@dataclass(frozen=True)
class PreparedBatch:
    """A batch's reports as the updater applies them: what `prepare_batch` makes of them
    without the database, so that it can run while another batch is being written."""

    reports: int
    gathered: Gathered
    #: Per kind, its stations numbered and its observations.
    kinds: list[KindBatch]
    #: The shard tables and datamap tables the batch writes.
    tables: list[str]


def prepare_batch(
    reports: Sequence[Mapping[str, Any]], *, map_content: bool = True
) -> PreparedBatch:
    """Step 1 of `apply_batch`: observations as columns, stations numbered."""
    gathered = gather(reports, map_content=map_content)
    kinds = [KindBatch.of(k, columns) for k, columns in sorted(gathered.kinds.items())]
    tables = [t for b in kinds for t in b.tables] + list(gathered.grids)
    return PreparedBatch(len(reports), gathered, kinds, tables)


def apply_batch(
    db_or_tx: Any,
    batch_id: str,
    reports: Sequence[Mapping[str, Any]] | PreparedBatch,
    *,
    today: date,
    map_content: bool = True,
    now: datetime | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> BatchResult:
    """Apply `reports` (v2 geosubmit dicts, or what `prepare_batch` made of them) to the
    station tables once per `batch_id`.

    `db_or_tx` is a `sluice.db.Database` (a pooled connection is used) or an open connection
    (the batch runs in a savepoint of its transaction, or its own). `map_content` says whether
    the datamap is kept (for reports not yet prepared). Rows are stamped with `now` (default:
    now, or the start of `today` when that is not today). `meanwhile` is run once, while the
    server writes the stations (or at the end, when there is nothing to write): the next
    batch's preparation (`sluice.stations.ahead`)."""
    batch = (
        reports
        if isinstance(reports, PreparedBatch)
        else prepare_batch(reports, map_content=map_content)
    )
    gathered = batch.gathered
    now = now or now_for(today)
    result = BatchResult(
        batch_id,
        applied=False,
        reports=batch.reports,
        reports_dropped=gathered.reports_dropped,
        observations=gathered.observations,
        dropped=dict(gathered.dropped),
    )
    cache = _cache_of(db_or_tx)
    touched: list[bytes] = []
    try:
        with transaction(db_or_tx) as store:
            store.lock(batch_id, batch.tables)
            if store.record_batch(batch_id, batch.reports, gathered.observations):
                result.applied = True
                touched = _write_batch(store, cache, batch, today, now, result, meanwhile)
                meanwhile = None
                faults.pause("stations")  # crash tests: everything written, nothing committed
    except TransientError:
        # A row the cache held may be what went wrong (a writer it could not see): the
        # retry reads everything from the tables.
        if cache is not None:
            cache.clear()
        raise
    if cache is not None and touched:
        cache.marked(today, touched)
    if meanwhile is not None:  # the batch was applied before
        meanwhile()
    return result


def _write_batch(
    store: StationStore,
    cache: StationCache | None,
    batch: PreparedBatch,
    today: date,
    now: datetime,
    result: BatchResult,
    meanwhile: Callable[[], None] | None,
) -> list[bytes]:
    """Every kind's stations, the datamap, the counters and the cell areas written (each
    kind's rows kept in the cache, and `meanwhile` run, while the server writes); the datamap
    cells marked."""
    stats: Counter[int] = Counter()
    effects: Counter[str] = Counter()
    updates = [_update_kind(store, cache, kind, today, now) for kind in batch.kinds]
    for u in updates:
        _count(u.batch.kind, u.out.effect, len(u.batch.observations), stats, effects)
    datamap: dict[str, list[bytes]] = {}
    for table, grids in sorted(batch.gathered.grids.items()):
        fresh = cache.unmarked(today, grids) if cache is not None else grids
        if fresh:
            datamap[table] = fresh
        result.datamap_cells += len(set(grids))

    def while_written() -> None:
        if cache is not None:
            # Kept before the commit, under the shard locks, so the next batch of these
            # shards finds them whichever thread runs it. Should the commit not happen, the
            # tables keep a version other than this transaction's id, which the cache then
            # no longer trusts.
            for u in updates:
                cache.store(u.staged())
        if meanwhile is not None:
            meanwhile()

    store.write_batch([u.writes() for u in updates], datamap, today, stats, while_written)
    for u in updates:
        for table, keys in sorted(u.moved_cells().items()):
            result.areas_changed += _recompute_areas(store, table, keys, now)
    result.effects = dict(sorted(effects.items()))
    return [grid for grids in datamap.values() for grid in grids]


@dataclass
class _KindUpdate:
    """What the algorithm made of one kind's stations."""

    batch: KindBatch
    keys: npt.NDArray[Any]
    before: StationColumns
    out: BatchTransitions
    txid: int

    def writes(self) -> StationWrites:
        write = np.flatnonzero(self.out.write)
        return StationWrites(
            self.batch.kind,
            self.batch.tables,
            self.batch.tags[write],
            self.keys[write],
            self.before.exists[write],
            self.out.after.take(write),
        )

    def staged(self) -> Staged:
        b = self.batch
        written = np.unique(b.tags[self.out.write]).tolist()
        tables = frozenset(b.tables[t] for t in written)
        return Staged(b.kind, b.keys, b.tables, b.tags, self.out.after, tables, self.txid)

    def moved_cells(self) -> dict[str, list[str]]:
        """The keys of the cells whose change was not a confirm, per table: their areas."""
        changed: dict[str, list[str]] = {}
        if self.batch.kind == "cell":
            effect = self.out.effect
            for i in np.flatnonzero((effect != CONFIRM) & (effect != NONE)).tolist():
                changed.setdefault(self.batch.tables[self.batch.tags[i]], []).append(
                    self.batch.keys[i]
                )
        return changed


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
    store: StationStore, cache: StationCache | None, batch: KindBatch, today: date, now: datetime
) -> _KindUpdate:
    """The algorithm over a kind's stations, their rows read from the cache or the tables."""
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
    return _KindUpdate(batch, keys, before, out, txid)


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
