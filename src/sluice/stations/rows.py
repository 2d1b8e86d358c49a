"""The station row and the seed's constants of the station algorithm (ichnaea/data/station.py,
models/station.py): radii, caps, blocklist times, states and effects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sluice.stations.keys import Kind

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
EFFECTS: tuple[Effect, ...] = ("new", "new_block", "confirm", "change", "replace", "block", "none")
STATES: tuple[State, ...] = (
    "none", "no_position", "agree_gnss", "agree_query", "disagree", "disagree_old"
)  # fmt: skip
#: What a batch's observations of a station say: the column of the transition table.
OBSERVED = ("gnss", "query", "inconsistent")


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
class Transition:
    effect: Effect
    state: State
    #: The row after; None when there is none (no station, nothing to insert).
    station: Station | None


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
