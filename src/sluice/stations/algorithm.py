"""The station algorithm of the seed (ichnaea/data/station.py, models/station.py), as one pure
function: a station's row before, the observations of one batch, the day → the transition and
the row after.

Centres are spherical weighted means and boxes are measured around their centre
(`sluice.stations.geo`), so stations on the antimeridian keep their place; everything else —
weights, radii, states, the transition table, effects, caps, the blocklist — is the seed's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

from sluice.stations import geo
from sluice.stations.keys import GNSS, QUERY, Kind
from sluice.stations.observations import Observation

#: Metres the observations of one batch, and a station and its observations, may lie apart.
MAX_RADIUS: dict[Kind, float] = {"blue": 100.0, "wifi": 5000.0, "cell": 100000.0}
MAX_OLD_WEIGHT = 10000.0
MAX_SAMPLES = 4294967295
MAX_WEIGHT = 1e9
TEMPORARY_BLOCKLIST = timedelta(days=2)
#: A station whose position is older than this is replaced rather than blocked.
OLD_STATION = timedelta(days=365)

Effect = Literal["new", "new_block", "confirm", "change", "replace", "block", "none"]
State = Literal["none", "no_position", "agree_gnss", "agree_query", "disagree", "disagree_old"]


@dataclass(frozen=True)
class Station:
    """A station row with the seed's column names (cells add psc)."""

    lat: float | None = None
    lon: float | None = None
    max_lat: float | None = None
    min_lat: float | None = None
    max_lon: float | None = None
    min_lon: float | None = None
    radius: int | None = None
    region: str | None = None
    samples: int | None = None
    source: int | None = None
    weight: float | None = None
    created: datetime | None = None
    modified: datetime | None = None
    last_seen: date | None = None
    block_first: date | None = None
    block_last: date | None = None
    block_count: int | None = None
    psc: int | None = None


@dataclass(frozen=True)
class Aggregate:
    """What a consistent group of observations says about a station."""

    lat: float
    lon: float
    box: geo.Box
    radius: int
    samples: int
    weight: float
    source: int


@dataclass(frozen=True)
class Transition:
    effect: Effect
    state: State
    #: The row after; None when there is none (no station, nothing to insert).
    station: Station | None


def station_blocked(station: Station, today: date) -> bool:
    """Blocked for 2 days after a block, and for good while it holds at least as many blocks as
    its age in 30-day months (Python's round: halves to even, as the seed)."""
    if station.block_last is not None and today - station.block_last < TEMPORARY_BLOCKLIST:
        return True
    if station.created is not None and station.block_count:
        age_days = (today - station.created.date()).days
        return station.block_count >= round(age_days / 30)
    return False


def split_sources(observations: Sequence[Observation]) -> tuple[list[Observation], int]:
    """The group the station learns from: the gnss-like observations (gnss, fixed, fused or no
    source) if there are any, else the query ones; and that group's source."""
    gnss = [o for o in observations if o.source != QUERY]
    if gnss:
        return gnss, GNSS
    return list(observations), QUERY


def aggregate(kind: Kind, observations: Sequence[Observation], source: int) -> Aggregate | None:
    """The group's centre, box, radius and ratings, or None when the box's min and max corners
    lie more than the kind's radius apart."""
    if len(observations) == 1:  # the usual case: one sighting per station and batch
        o = observations[0]
        return Aggregate(o.lat, o.lon, geo.Box(o.lat, o.lat, o.lon, o.lon), 0, 1, o.weight, source)
    points = [(o.lat, o.lon) for o in observations]
    weights = [o.weight for o in observations]
    lat, lon = geo.centre(points, weights)
    box = geo.box_of_points(points, lon)
    if box.diagonal() > MAX_RADIUS[kind]:
        return None
    return Aggregate(
        lat=lat,
        lon=lon,
        box=box,
        radius=geo.circle_radius(lat, lon, box),
        samples=len(observations),
        weight=float(sum(weights)),
        source=source,
    )


def state_of(
    kind: Kind, station: Station | None, group: Sequence[Observation], now: datetime
) -> State:
    if station is None:
        return "none"
    if station.lat is None or station.lon is None:
        return "no_position"
    limit = MAX_RADIUS[kind]
    lat, lon, distance = station.lat, station.lon, geo.distance
    for o in group:
        if distance(lat, lon, o.lat, o.lon) > limit:
            break
    else:
        return "agree_query" if station.source == QUERY else "agree_gnss"
    if station.modified is not None and station.modified < now - OLD_STATION:
        return "disagree_old"
    return "disagree"


#: The seed's table: (state, observations) → effect; observations "gnss", "query" (consistent)
#: or "inconsistent".
TABLE: dict[tuple[State, str], Effect] = {
    ("none", "gnss"): "new",
    ("none", "query"): "new",
    ("none", "inconsistent"): "new_block",
    ("no_position", "gnss"): "change",
    ("no_position", "query"): "change",
    ("no_position", "inconsistent"): "none",
    ("agree_gnss", "gnss"): "change",
    ("agree_gnss", "query"): "confirm",
    ("agree_gnss", "inconsistent"): "block",
    ("agree_query", "gnss"): "replace",
    ("agree_query", "query"): "change",
    ("agree_query", "inconsistent"): "block",
    ("disagree", "gnss"): "block",
    ("disagree", "query"): "block",
    ("disagree", "inconsistent"): "block",
    ("disagree_old", "gnss"): "replace",
    ("disagree_old", "query"): "replace",
    ("disagree_old", "inconsistent"): "block",
}


def update_station(
    kind: Kind,
    station: Station | None,
    observations: Sequence[Observation],
    *,
    today: date,
    now: datetime,
) -> Transition:
    """Apply one batch's observations of one station (weight > 0; the caller drops the rest)."""
    if not observations:
        return Transition("none", "none" if station is None else "no_position", station)
    if station is not None and station_blocked(station, today):
        return Transition("none", state_of(kind, station, observations, now), station)
    group, source = split_sources(observations)
    agg = aggregate(kind, group, source)
    state = state_of(kind, station, group, now)
    effect = TABLE[(state, source_name(source) if agg is not None else "inconsistent")]
    psc = last_psc(observations, station)
    after = EFFECTS[effect](station, agg, today, now)
    if after is not None and kind == "cell" and effect not in ("confirm", "none"):
        after = replace(after, psc=psc)
    return Transition(effect, state, after)


def source_name(source: int) -> str:
    return "query" if source == QUERY else "gnss"


def last_psc(observations: Sequence[Observation], station: Station | None) -> int | None:
    for obs in reversed(observations):
        if obs.psc is not None:
            return obs.psc
    return station.psc if station is not None else None


def _positioned(agg: Aggregate, **rest: object) -> Station:
    return Station(
        lat=agg.lat,
        lon=agg.lon,
        max_lat=agg.box.max_lat,
        min_lat=agg.box.min_lat,
        max_lon=agg.box.max_lon,
        min_lon=agg.box.min_lon,
        radius=agg.radius,
        samples=min(agg.samples, MAX_SAMPLES),
        weight=min(agg.weight, MAX_WEIGHT),
        source=agg.source,
        **rest,  # type: ignore[arg-type]
    )


def _new(station: Station | None, agg: Aggregate | None, today: date, now: datetime) -> Station:
    assert agg is not None
    return _positioned(agg, created=now, modified=now, last_seen=today)


def _new_block(
    station: Station | None, agg: Aggregate | None, today: date, now: datetime
) -> Station:
    return Station(created=now, modified=now, block_first=today, block_last=today, block_count=1)


def _confirm(station: Station | None, agg: Aggregate | None, today: date, now: datetime) -> Station:
    assert station is not None
    return station if station.last_seen == today else replace(station, last_seen=today)


def _change(station: Station | None, agg: Aggregate | None, today: date, now: datetime) -> Station:
    assert station is not None and agg is not None
    positioned = station.lat is not None and station.lon is not None
    old_w = min(station.weight or 0.0, MAX_OLD_WEIGHT) if positioned else 0.0
    if positioned and old_w > 0:
        assert station.lat is not None and station.lon is not None
        lat, lon = geo.centre([(agg.lat, agg.lon), (station.lat, station.lon)], [agg.weight, old_w])
    else:
        lat, lon = agg.lat, agg.lon
    ranges = [(agg.box.min_lat, agg.box.max_lat, agg.box.min_lon, agg.box.max_lon)]
    if None not in (station.min_lat, station.max_lat, station.min_lon, station.max_lon):
        ranges.append((station.min_lat, station.max_lat, station.min_lon, station.max_lon))  # type: ignore[arg-type]
    box = geo.box_around(ranges, lon)
    # Built whole rather than by dataclasses.replace: the most common effect, and replace
    # costs as much again as the arithmetic.
    return Station(
        lat,
        lon,
        box.max_lat,
        box.min_lat,
        box.max_lon,
        box.min_lon,
        geo.circle_radius(lat, lon, box),
        station.region,
        min((station.samples or 0) + agg.samples, MAX_SAMPLES),
        agg.source,
        min((station.weight or 0.0) + agg.weight, MAX_WEIGHT),
        station.created,
        now,
        today,
        station.block_first,
        station.block_last,
        station.block_count,
        station.psc,
    )


def _replace(station: Station | None, agg: Aggregate | None, today: date, now: datetime) -> Station:
    assert station is not None and agg is not None
    fresh = _positioned(
        agg,
        region=station.region,
        created=station.created,
        modified=now,
        last_seen=today,
        block_first=station.block_first,
        block_last=station.block_last,
        block_count=station.block_count,
        psc=station.psc,
    )
    return fresh


def _block(station: Station | None, agg: Aggregate | None, today: date, now: datetime) -> Station:
    assert station is not None
    return Station(
        region=station.region,
        created=station.created,
        modified=now,
        block_first=station.block_first or today,
        block_last=today,
        block_count=(station.block_count or 0) + 1,
        psc=station.psc,
    )


def _none(
    station: Station | None, agg: Aggregate | None, today: date, now: datetime
) -> Station | None:
    return station


EFFECTS = {
    "new": _new,
    "new_block": _new_block,
    "confirm": _confirm,
    "change": _change,
    "replace": _replace,
    "block": _block,
    "none": _none,
}
