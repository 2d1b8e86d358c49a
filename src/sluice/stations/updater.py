"""One batch of reports into the station tables, exactly once.

1. Reports → observations (`sluice.stations.observations`); observations of weight 0 are
   dropped and counted; each report that gave an observation marks its datamap grid cell.
2. The observations are grouped per shard table and station, in the order they came.
3. One transaction: the advisory locks of the batch id and of every shard it touches, in one
   global order (so two updaters can never wait for each other), then the batch id recorded —
   when it was recorded before, nothing else happens. The stations of every shard it touches
   are read in one statement, the algorithm runs per station, and the changed rows are copied
   into a temporary table and written into their shards by one statement. Cell areas of
   every non-confirm cell change are recomputed; the datamap and the daily counters get one
   statement each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sluice import faults
from sluice.stations import datamap
from sluice.stations.algorithm import Effect, Station, update_station
from sluice.stations.areas import area_of
from sluice.stations.keys import CellKey, Kind, shard_of
from sluice.stations.observations import Observation, transform
from sluice.stations.repository import StationStore, transaction
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


@dataclass
class _Prepared:
    groups: dict[tuple[Kind, str], dict[str, list[Observation]]]
    grids: dict[str, list[bytes]]
    dropped: Counter[str]
    observations: int
    reports_dropped: int


def prepare(reports: Sequence[Mapping[str, Any]], *, map_content: bool = True) -> _Prepared:
    groups: dict[tuple[Kind, str], dict[str, list[Observation]]] = {}
    grids: dict[str, list[bytes]] = {}
    dropped: Counter[str] = Counter()
    count = reports_dropped = 0
    for report in reports:
        out = transform(report)
        dropped.update(out.dropped)
        if not out.observations:
            reports_dropped += 1
            continue
        if map_content:
            first = out.observations[0]
            lat_s, lon_s = datamap.scaled(first.lat, first.lon)
            grids.setdefault(datamap.table(datamap.quarter(lat_s, lon_s)), []).append(
                datamap.grid_id(lat_s, lon_s)
            )
        for obs in out.observations:
            if obs.weight <= 0:
                dropped[f"{obs.kind}_weight"] += 1
                continue
            count += 1
            table = groups.setdefault((obs.kind, shard_of(obs.kind, obs.key)), {})
            table.setdefault(obs.key, []).append(obs)
    return _Prepared(groups, grids, dropped, count, reports_dropped)


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
    prepared = prepare(reports, map_content=map_content)
    now = now or now_for(today)
    result = BatchResult(
        batch_id,
        applied=False,
        reports=len(reports),
        reports_dropped=prepared.reports_dropped,
        observations=prepared.observations,
        dropped=dict(prepared.dropped),
    )
    tables = [t for _, t in prepared.groups] + list(prepared.grids)
    with transaction(db_or_tx) as store:
        store.lock(batch_id, tables)
        if not store.record_batch(batch_id, len(reports), prepared.observations):
            return result
        result.applied = True
        stats: Counter[int] = Counter()
        effects: Counter[str] = Counter()
        shards = sorted(prepared.groups.items())
        befores = store.stations_many([(k, t, sorted(st)) for (k, t), st in shards])
        writes: list[tuple[Kind, str, dict[str, Station], Mapping[str, Station]]] = []
        changes: list[tuple[str, list[str]]] = []
        for ((kind, table), stations), before in zip(shards, befores, strict=True):
            written, changed = _update_shard(kind, stations, before, today, now, stats, effects)
            writes.append((kind, table, written, before))
            if kind == "cell":
                changes.append((table, changed))
        store.write_many(writes)
        for table, changed in changes:
            result.areas_changed += _recompute_areas(store, table, changed, now)
        for table, grids in sorted(prepared.grids.items()):
            store.touch_datamap(table, grids, today)
            result.datamap_cells += len(set(grids))
        store.add_stats(today, stats)
        result.effects = dict(sorted(effects.items()))
        faults.pause("stations")  # crash tests: everything written, nothing committed
    return result


def _update_shard(
    kind: Kind,
    stations: Mapping[str, list[Observation]],
    before: Mapping[str, Station],
    today: date,
    now: datetime,
    stats: Counter[int],
    effects: Counter[str],
) -> tuple[dict[str, Station], list[str]]:
    """The algorithm over a shard's stations: the rows to write (key order), and the keys of
    the non-confirm changes."""
    writes: dict[str, Station] = {}
    changed: list[str] = []
    obs_key, unique_key = STAT_KEYS[kind]
    for key in sorted(stations):
        observations = stations[key]
        stats[obs_key] += len(observations)
        old = before.get(key)
        result = update_station(kind, old, observations, today=today, now=now)
        effects[f"{kind}.{result.effect}"] += 1
        effect: Effect = result.effect
        if effect in ("new", "new_block"):
            stats[unique_key] += 1
        if result.station is not None and result.station != old:
            writes[key] = result.station
        if effect not in ("confirm", "none"):
            changed.append(key)
    return writes, changed


def _recompute_areas(store: StationStore, table: str, changed: Sequence[str], now: datetime) -> int:
    if not changed:
        return 0
    radio = table.removeprefix("cell_")
    areas = sorted({(c.mcc, c.mnc, c.lac) for c in map(CellKey.parse, changed)})
    cells = store.area_cells(table, areas)
    store.write_areas(radio, {a: area_of(cells.get(a, [])) for a in areas}, now)
    return len(areas)
