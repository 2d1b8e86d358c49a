"""Upkeep of the station tables: what the seed never removes, removed (weakness 9 of
../shared/reference/notes/seeds-ichnaea.md: stale stations never expire), and the seed's two
daily cleanups (§11, §12).

- `expire_stations`: stations of every wifi, Bluetooth and cell table last active before a day
  (``last_seen``; for a blocked station, which has none, ``block_last``), deleted. Each table is
  walked once along its primary key, `chunk` keys per transaction; each transaction holds the
  table's shard lock, the one a station batch takes, so a step never races a batch and a batch
  waits at most one step. A step reads its window first and writes only when it holds stale
  stations, so it leaves the table's version (migration 0015) alone otherwise. Cell areas that
  lost a positioned cell are recomputed in the same transaction (deleted when none is left),
  as the updater does after a change.
- `cleanup_stat`: daily counter increments older than two years folded into later rows; every
  cumulative total of the ``stat`` view stays what it was.
- `cleanup_datamap`: grid cells not modified for 365 days, deleted `chunk` at a time under
  their quarter's lock.
- `prune_batches`: the records of applied batches (``station_batches``, kept so that a batch
  delivered again is not applied twice) older than a week, deleted `chunk` at a time.
- `rebuild_region_stat`: the seed's ``region_stat`` (§12, ``update_statregion``) counted again
  from the cell areas and every wifi and Bluetooth shard, in one statement.

Pass a `sluice.db.Database`: each step then commits on its own. On an open connection every step
is a savepoint of the caller's transaction, and the locks are held until it commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sluice.stations.areas import area_of
from sluice.stations.datamap import QUARTERS
from sluice.stations.datamap import table as datamap_table
from sluice.stations.keys import KINDS, shard_tables
from sluice.stations.repository import StationStore, transaction
from sluice.stations.simulate import now_for

#: Stations not active for this many days expire (operators change it with ``--keep-days`` or
#: SLUICE_ICHNAEA_STATION_KEEP_DAYS). A year, as the seed's rule that a station's position is
#: "old" after a year (§10): by then a station the world still sees has been confirmed.
KEEP_DAYS = 365
#: Datamap cells not modified for this many days go (the seed's cleanup_datamap).
DATAMAP_KEEP_DAYS = 365
#: Daily counters older than this many years go (the seed's cleanup_stat).
STAT_KEEP_YEARS = 2
#: Batch records older than this many days go. A batch id comes again only while the fan-out
#: has not acknowledged the batch, and an unacknowledged batch is taken over and retried within
#: minutes; once acknowledged it never comes again (a dead letter sent again is a new batch).
BATCH_KEEP_DAYS = 7
#: Keys one expiry step looks at, and grid cells or batch records one step deletes.
CHUNK = 5000


def keep_from(today: date, keep_days: int) -> date:
    """The first day whose activity keeps a station."""
    if keep_days < 1:
        raise ValueError(f"keep days must be at least 1, not {keep_days}")
    return today - timedelta(days=keep_days)


def years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


@dataclass
class ExpireResult:
    #: Stations last active before this day were deleted.
    before: date
    #: Stations deleted per table (every table, 0 included).
    deleted: dict[str, int] = field(default_factory=dict)
    #: Cell areas recomputed (or deleted) because they lost a positioned cell.
    areas: int = 0
    #: Transactions (steps) it took.
    steps: int = 0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.isoformat(),
            "stations": self.total,
            "by_table": {t: n for t, n in self.deleted.items() if n},
            "areas": self.areas,
            "steps": self.steps,
        }


@dataclass
class CleanupResult:
    before: date
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before.isoformat(), "deleted": self.total}


def expire_stations(
    db_or_tx: Any, before: date, *, chunk: int = CHUNK, now: datetime | None = None
) -> ExpireResult:
    """Delete the stations of every table last active before `before` (see the module)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, not {chunk}")
    now = now or datetime.now(UTC)
    result = ExpireResult(before)
    for kind in KINDS:
        for table in shard_tables(kind):
            result.deleted[table] = 0
            after: bytes | None = b""
            while after is not None:
                with transaction(db_or_tx) as store:
                    store.lock_shards([table])
                    after, stale = store.expire_window(kind, table, before, after, chunk)
                    if stale:  # a step that deletes nothing writes nothing
                        deleted, areas = store.expire(kind, table, before, stale)
                        result.deleted[table] += deleted
                        result.areas += _recompute_areas(store, table, areas, now)
                result.steps += 1
    return result


def _recompute_areas(
    store: StationStore, table: str, areas: list[tuple[int, int, int]], now: datetime
) -> int:
    if not areas:
        return 0
    cells = store.area_cells(table, areas)
    store.write_areas(
        table.removeprefix("cell_"), {a: area_of(cells.get(a, [])) for a in areas}, now
    )
    return len(areas)


def cleanup_stat(db_or_tx: Any, today: date) -> CleanupResult:
    """Fold the daily counters older than two years into later rows (one statement)."""
    before = years_before(today, STAT_KEEP_YEARS)
    with transaction(db_or_tx) as store:
        deleted, _ = store.cleanup_stat(before)
    return CleanupResult(before, {"stat_daily": deleted})


def cleanup_datamap(db_or_tx: Any, today: date, *, chunk: int = CHUNK) -> CleanupResult:
    """Delete the grid cells not modified for 365 days, `chunk` per transaction."""
    before = today - timedelta(days=DATAMAP_KEEP_DAYS)
    result = CleanupResult(before)
    for quarter in QUARTERS:
        table = datamap_table(quarter)
        result.deleted[table] = 0
        while True:
            with transaction(db_or_tx) as store:
                store.lock_shards([table])
                deleted = store.cleanup_datamap_chunk(table, before, chunk)
            result.deleted[table] += deleted
            if deleted < chunk:
                break
    return result


@dataclass
class PruneResult:
    #: Batch records applied before this instant were deleted.
    before: datetime
    deleted: int = 0
    steps: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before.isoformat(), "deleted": self.deleted, "steps": self.steps}


def prune_batches(db_or_tx: Any, before: datetime, *, chunk: int = CHUNK) -> PruneResult:
    """Delete the batch records applied before `before`, oldest first, `chunk` per
    transaction (found by their applied_at index: no step reads the records it keeps)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, not {chunk}")
    result = PruneResult(before)
    while True:
        with transaction(db_or_tx) as store:
            deleted = store.prune_batches(before, chunk)
        result.deleted += deleted
        result.steps += 1
        if deleted < chunk:
            return result


@dataclass
class RegionStatResult:
    #: Regions with at least one counted station (the rows of region_stat now).
    regions: int
    #: Rows inserted or changed.
    written: int
    #: Rows deleted: regions with nothing left.
    deleted: int

    def as_dict(self) -> dict[str, Any]:
        return {"regions": self.regions, "written": self.written, "deleted": self.deleted}


def rebuild_region_stat(db_or_tx: Any) -> RegionStatResult:
    """Count every region's cells, wifi and Bluetooth stations into ``region_stat`` again, in
    one statement (one snapshot of all the tables). It reads every shard whole: there is no
    region index (migration 0015), and a daily scan costs less than an index every region
    change would have to update. It takes no shard lock: it only reads the station tables."""
    with transaction(db_or_tx) as store:
        return RegionStatResult(*store.rebuild_region_stat())


@dataclass
class UpkeepResult:
    stations: ExpireResult
    stat: CleanupResult
    datamap: CleanupResult
    batches: PruneResult
    regions: RegionStatResult

    def as_dict(self) -> dict[str, Any]:
        return {
            "stations": self.stations.as_dict(),
            "stat": self.stat.as_dict(),
            "datamap": self.datamap.as_dict(),
            "batches": self.batches.as_dict(),
            "regions": self.regions.as_dict(),
        }


def upkeep(
    db_or_tx: Any,
    today: date,
    *,
    keep_days: int = KEEP_DAYS,
    batch_keep_days: int = BATCH_KEEP_DAYS,
    chunk: int = CHUNK,
) -> UpkeepResult:
    """All of it, as a daily job runs it: stations, counters, datamap, batch records, then the
    region counts (after the expiry, so they count what is left)."""
    if batch_keep_days < 1:
        raise ValueError(f"batch keep days must be at least 1, not {batch_keep_days}")
    now = now_for(today)
    return UpkeepResult(
        stations=expire_stations(db_or_tx, keep_from(today, keep_days), chunk=chunk, now=now),
        stat=cleanup_stat(db_or_tx, today),
        datamap=cleanup_datamap(db_or_tx, today, chunk=chunk),
        batches=prune_batches(db_or_tx, now - timedelta(days=batch_keep_days), chunk=chunk),
        regions=rebuild_region_stat(db_or_tx),
    )
