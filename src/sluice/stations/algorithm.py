"""The station algorithm of the seed (ichnaea/data/station.py, models/station.py), as one pure
function over a batch: the rows before of a kind's stations and the batch's observations of
them, the day → each station's transition and row after (`update_stations`). Stations and
observations are columns (`sluice.stations.columns`): a batch costs a few dozen array
operations, not a Python call per station. `update_station` is the same function for one
station, as `sluice ichnaea stations simulate` and the tests use it.

Centres are spherical weighted means and boxes are measured around their centre
(`sluice.stations.geo`), so stations on the antimeridian keep their place; everything else —
weights, radii, states, the transition table, effects, caps, the blocklist — is the seed's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

from sluice.stations import geo, regions
from sluice.stations.columns import (
    NULL,
    Floats,
    Ints,
    KindColumns,
    ObservationColumns,
    StationColumns,
    days,
    micros,
)
from sluice.stations.keys import GNSS, QUERY, Kind
from sluice.stations.observations import Observation
from sluice.stations.rows import (
    EFFECTS,
    MAX_OLD_WEIGHT,
    MAX_RADIUS,
    MAX_SAMPLES,
    MAX_WEIGHT,
    OBSERVED,
    OLD_STATION,
    STATES,
    TABLE,
    TEMPORARY_BLOCKLIST,
    Effect,
    State,
    Station,
    Transition,
)

__all__ = [
    "MAX_RADIUS",
    "TABLE",
    "BatchTransitions",
    "Effect",
    "State",
    "Station",
    "Transition",
    "station_blocked",
    "update_station",
    "update_stations",
]

Codes = npt.NDArray[np.int8]
Mask = npt.NDArray[np.bool_]

#: The transition table as codes: [state, observed] → effect (indexes of STATES, OBSERVED,
#: EFFECTS).
TABLE_CODES = np.array(
    [[EFFECTS.index(TABLE[(s, o)]) for o in OBSERVED] for s in STATES], dtype=np.int8
)
NEW, NEW_BLOCK, CONFIRM, CHANGE, REPLACE, BLOCK, NONE = range(len(EFFECTS))
S_NONE, S_NO_POSITION, S_AGREE_GNSS, S_AGREE_QUERY, S_DISAGREE, S_DISAGREE_OLD = range(len(STATES))
_DAY_US = 86_400_000_000
_OLD_US = OLD_STATION.days * _DAY_US


@dataclass
class BatchTransitions:
    """Per station of the batch: its effect and state (codes into `EFFECTS` and `STATES`), its
    row after, and whether that row must be written (it differs from the row before)."""

    effect: Codes
    state: Codes
    after: StationColumns
    write: Mask


@dataclass
class _Aggregate:
    """What each station's consistent group of observations says (the seed's centre, box,
    radius and ratings); `consistent` is False where the box's corners lie too far apart."""

    lat: Floats
    lon: Floats
    min_lat: Floats
    max_lat: Floats
    min_lon: Floats
    max_lon: Floats
    radius: Ints
    samples: Ints
    weight: Floats
    source: Ints
    consistent: Mask


@dataclass
class _Observed:
    """Observations sorted by station (arrival order kept within each) and where each
    station's run of them starts; every station has at least one."""

    station: npt.NDArray[np.intp]
    lat: Floats
    lon: Floats
    weight: Floats
    starts: npt.NDArray[np.intp]

    @classmethod
    def of(
        cls, station: npt.NDArray[np.intp], lat: Floats, lon: Floats, weight: Floats, n: int
    ) -> _Observed:
        return cls(station, lat, lon, weight, np.searchsorted(station, np.arange(n)))

    def count(self) -> Ints:
        return np.diff(np.append(self.starts, len(self.station))).astype(np.int64)


def update_stations(
    kind: Kind,
    before: StationColumns,
    observations: ObservationColumns,
    *,
    today: date,
    now: datetime,
) -> BatchTransitions:
    """Apply one batch's observations (weight > 0, at least one per station) to its stations."""
    n = len(before)
    order = np.argsort(observations.station, kind="stable")
    station = observations.station[order]
    source = observations.source[order]
    everything = _Observed.of(
        station, observations.lat[order], observations.lon[order], observations.weight[order], n
    )
    today_d, now_us = days(today), micros(now)
    # The group a station learns from: its gnss-like observations (gnss, fixed, fused or no
    # source) when there are any, else its query ones.
    gnss_like = source != QUERY
    has_gnss = np.logical_or.reduceat(gnss_like, everything.starts)
    chosen = gnss_like | ~has_gnss[station]
    group = _Observed.of(
        station[chosen],
        everything.lat[chosen],
        everything.lon[chosen],
        everything.weight[chosen],
        n,
    )
    agg = _aggregate(kind, group, np.where(has_gnss, GNSS, QUERY))
    state = _states(kind, before, group, now_us)
    observed = np.where(~agg.consistent, 2, np.where(agg.source == QUERY, 1, 0))
    effect = TABLE_CODES[state, observed]
    blocked = _blocked(before, today_d)
    if blocked.any():
        effect[blocked] = NONE
        state[blocked] = _states(kind, before, everything, now_us)[blocked]
    after = _after(before, agg, effect, today_d, now_us)
    _place(before, after, effect)
    if kind == "cell":
        touched = (effect != CONFIRM) & (effect != NONE)
        after.psc[touched] = _last_psc(before, observations.psc[order], everything)[touched]
    write = (effect != NONE) & ~((effect == CONFIRM) & (before.last_seen == today_d))
    return BatchTransitions(effect, state, after, write)


def update_station(
    kind: Kind,
    station: Station | None,
    observations: Sequence[Observation],
    *,
    today: date,
    now: datetime,
) -> Transition:
    """`update_stations` for one station (observations of weight > 0; the caller drops the
    rest)."""
    if not observations:
        return Transition("none", "none" if station is None else "no_position", station)
    columns = KindColumns()
    for obs in observations:
        columns.add(obs)
    out = update_stations(
        kind,
        StationColumns.of([station]),
        columns.observations(np.zeros(len(columns), dtype=np.intp)),
        today=today,
        now=now,
    )
    after = out.after.station(0) if out.write[0] else station
    return Transition(EFFECTS[out.effect[0]], STATES[out.state[0]], after)


def station_blocked(station: Station, today: date) -> bool:
    """Blocked for 2 days after a block, and for good while it holds at least as many blocks as
    its age in 30-day months (Python's round: halves to even, as the seed)."""
    return bool(_blocked(StationColumns.of([station]), days(today))[0])


def _blocked(before: StationColumns, today_d: int) -> Mask:
    recent = (before.block_last != NULL) & (today_d - before.block_last < TEMPORARY_BLOCKLIST.days)
    blocks = np.where(before.block_count == NULL, 0, before.block_count)
    created = before.created != NULL
    age_days = today_d - np.floor_divide(np.where(created, before.created, 0), _DAY_US)
    # np.round, like Python's round, takes halves to even.
    lasting = created & (blocks != 0) & (blocks >= np.round(age_days / 30))
    out: Mask = before.exists & (recent | lasting)
    return out


def _aggregate(kind: Kind, group: _Observed, source: Ints) -> _Aggregate:
    starts, at = group.starts, group.station
    count = group.count()
    x, y, z = geo.vectors(group.lat, group.lon, group.weight)
    first_lat, first_lon = group.lat[starts], group.lon[starts]
    lat, lon = geo.centres(
        np.add.reduceat(x, starts),
        np.add.reduceat(y, starts),
        np.add.reduceat(z, starts),
        first_lat,
        first_lon,
    )
    # The box's longitudes are offsets from the centre: an arc never goes the long way round.
    west = geo.wraps(group.lon - lon[at])
    min_lat, max_lat = (
        np.minimum.reduceat(group.lat, starts),
        np.maximum.reduceat(group.lat, starts),
    )
    min_lon = geo.cleans(geo.wraps(lon + np.minimum.reduceat(west, starts)))
    max_lon = geo.cleans(geo.wraps(lon + np.maximum.reduceat(west, starts)))
    consistent = ~(geo.distances(min_lat, min_lon, max_lat, max_lon) > MAX_RADIUS[kind])
    radius = geo.circle_radii(lat, lon, min_lat, max_lat, min_lon, max_lon)
    weight = np.add.reduceat(group.weight, starts)
    # The usual case, one sighting per station and batch, is the sighting itself.
    one = count == 1
    lat, lon = np.where(one, first_lat, lat), np.where(one, first_lon, lon)
    min_lat, max_lat = np.where(one, first_lat, min_lat), np.where(one, first_lat, max_lat)
    min_lon, max_lon = np.where(one, first_lon, min_lon), np.where(one, first_lon, max_lon)
    return _Aggregate(
        lat=lat,
        lon=lon,
        min_lat=min_lat,
        max_lat=max_lat,
        min_lon=min_lon,
        max_lon=max_lon,
        radius=np.where(one, 0, radius),
        samples=count,
        weight=np.where(one, group.weight[starts], weight),
        source=source,
        consistent=one | consistent,
    )


def _states(kind: Kind, before: StationColumns, group: _Observed, now_us: int) -> Codes:
    positioned = before.exists & ~np.isnan(before.lat) & ~np.isnan(before.lon)
    at = group.station
    far = geo.distances(before.lat[at], before.lon[at], group.lat, group.lon) > MAX_RADIUS[kind]
    disagrees = np.logical_or.reduceat(far, group.starts)
    old = (before.modified != NULL) & (before.modified < now_us - _OLD_US)
    agree = np.where(before.source == QUERY, S_AGREE_QUERY, S_AGREE_GNSS)
    state = np.where(disagrees, np.where(old, S_DISAGREE_OLD, S_DISAGREE), agree)
    state = np.where(positioned, state, S_NO_POSITION)
    out: Codes = np.where(before.exists, state, S_NONE).astype(np.int8)
    return out


def _last_psc(before: StationColumns, psc: Ints, everything: _Observed) -> Ints:
    """The psc of each station's last observation that has one, else the station's own."""
    position = np.where(psc != NULL, np.arange(len(psc)), -1)
    last = np.maximum.reduceat(position, everything.starts)
    out: Ints = np.where(last >= 0, psc[np.maximum(last, 0)], before.psc)
    return out


def _after(
    before: StationColumns, agg: _Aggregate, effect: Codes, today_d: int, now_us: int
) -> StationColumns:
    after = before.copy()
    for code, apply in _EFFECTS.items():
        rows = np.flatnonzero(effect == code)
        if len(rows):
            part = after.take(rows)
            apply(part, agg, rows, today_d, now_us)
            after.put(rows, part)
    return after


def _place(before: StationColumns, after: StationColumns, effect: Codes) -> None:
    """Regions (`sluice.stations.regions`): a new or replaced station takes its centre's; a
    changed one keeps its own while its new centre is still in it (buffered), else takes its
    centre's; every other effect keeps it."""
    fresh = np.flatnonzero((effect == NEW) | (effect == REPLACE) | (effect == CHANGE))
    if not len(fresh):
        return
    lat, lon = after.lat[fresh], after.lon[fresh]
    found = np.array(regions.regions_of(lat, lon), dtype=object)
    old = before.region[fresh]
    kept = (effect[fresh] == CHANGE) & (found != old) & (old != None)  # noqa: E711
    if kept.any():
        at = np.flatnonzero(kept)
        kept[at] = regions.in_regions(lat[at], lon[at], list(old[at]))
        found[kept] = old[kept]
    after.region[fresh] = found


def _position(row: StationColumns, agg: _Aggregate, rows: npt.NDArray[np.intp]) -> None:
    """The group's position, box, radius and ratings (capped) on `row`."""
    row.lat, row.lon = agg.lat[rows], agg.lon[rows]
    row.min_lat, row.max_lat = agg.min_lat[rows], agg.max_lat[rows]
    row.min_lon, row.max_lon = agg.min_lon[rows], agg.max_lon[rows]
    row.radius = agg.radius[rows]
    row.samples = np.minimum(agg.samples[rows], MAX_SAMPLES)
    row.weight = np.minimum(agg.weight[rows], MAX_WEIGHT)
    row.source = agg.source[rows]


def _unpositioned(row: StationColumns) -> None:
    for name in ("lat", "lon", "min_lat", "max_lat", "min_lon", "max_lon", "weight"):
        setattr(row, name, np.full(len(row), np.nan))
    for name in ("radius", "samples", "source", "last_seen"):
        setattr(row, name, np.full(len(row), NULL, dtype=np.int64))


def _new(
    row: StationColumns, agg: _Aggregate, rows: npt.NDArray[np.intp], today_d: int, now_us: int
) -> None:
    fresh = StationColumns.empty(len(row))
    fresh.exists[:] = True
    _position(fresh, agg, rows)
    fresh.created[:] = fresh.modified[:] = now_us
    fresh.last_seen[:] = today_d
    row.__dict__.update(fresh.__dict__)


def _new_block(
    row: StationColumns, agg: _Aggregate, rows: npt.NDArray[np.intp], today_d: int, now_us: int
) -> None:
    fresh = StationColumns.empty(len(row))
    fresh.exists[:] = True
    fresh.created[:] = fresh.modified[:] = now_us
    fresh.block_first[:] = fresh.block_last[:] = today_d
    fresh.block_count[:] = 1
    row.__dict__.update(fresh.__dict__)


def _confirm(
    row: StationColumns, agg: _Aggregate, rows: npt.NDArray[np.intp], today_d: int, now_us: int
) -> None:
    row.last_seen[:] = today_d


def _change(
    row: StationColumns, agg: _Aggregate, rows: npt.NDArray[np.intp], today_d: int, now_us: int
) -> None:
    positioned = ~np.isnan(row.lat) & ~np.isnan(row.lon)
    old_w = np.where(positioned, np.minimum(np.nan_to_num(row.weight), MAX_OLD_WEIGHT), 0.0)
    a_lat, a_lon, a_w = agg.lat[rows], agg.lon[rows], agg.weight[rows]
    x1, y1, z1 = geo.vectors(a_lat, a_lon, a_w)
    x2, y2, z2 = geo.vectors(row.lat, row.lon, old_w)
    c_lat, c_lon = geo.centres(x1 + x2, y1 + y2, z1 + z2, a_lat, a_lon)
    both = positioned & (old_w > 0)
    lat, lon = np.where(both, c_lat, a_lat), np.where(both, c_lon, a_lon)
    # The box holding the group's box and the station's, measured around the new centre.
    boxed = ~(np.isnan(row.min_lat) | np.isnan(row.max_lat))
    boxed &= ~(np.isnan(row.min_lon) | np.isnan(row.max_lon))
    west = geo.wraps(agg.min_lon[rows] - lon)
    east = west + np.mod(agg.max_lon[rows] - agg.min_lon[rows], 360.0)
    s_west = geo.wraps(row.min_lon - lon)
    s_east = s_west + np.mod(row.max_lon - row.min_lon, 360.0)
    lo = np.where(boxed, np.minimum(west, s_west), west)
    hi = np.where(boxed, np.maximum(east, s_east), east)
    min_lat = np.where(boxed, np.minimum(agg.min_lat[rows], row.min_lat), agg.min_lat[rows])
    max_lat = np.where(boxed, np.maximum(agg.max_lat[rows], row.max_lat), agg.max_lat[rows])
    min_lon, max_lon = geo.cleans(geo.wraps(lon + lo)), geo.cleans(geo.wraps(lon + hi))
    row.radius = geo.circle_radii(lat, lon, min_lat, max_lat, min_lon, max_lon)
    row.lat, row.lon, row.min_lat, row.max_lat = lat, lon, min_lat, max_lat
    row.min_lon, row.max_lon = min_lon, max_lon
    samples = np.where(row.samples == NULL, 0, row.samples)
    row.samples = np.minimum(samples + agg.samples[rows], MAX_SAMPLES)
    row.source = agg.source[rows]
    row.weight = np.minimum(np.nan_to_num(row.weight) + a_w, MAX_WEIGHT)
    row.modified[:] = now_us
    row.last_seen[:] = today_d


def _replace(
    row: StationColumns, agg: _Aggregate, rows: npt.NDArray[np.intp], today_d: int, now_us: int
) -> None:
    _position(row, agg, rows)
    row.modified[:] = now_us
    row.last_seen[:] = today_d


def _block(
    row: StationColumns, agg: _Aggregate, rows: npt.NDArray[np.intp], today_d: int, now_us: int
) -> None:
    _unpositioned(row)
    row.modified[:] = now_us
    row.block_first = np.where(row.block_first == NULL, today_d, row.block_first)
    row.block_last[:] = today_d
    row.block_count = np.where(row.block_count == NULL, 0, row.block_count) + 1


_EFFECTS = {
    NEW: _new,
    NEW_BLOCK: _new_block,
    CONFIRM: _confirm,
    CHANGE: _change,
    REPLACE: _replace,
    BLOCK: _block,
}
