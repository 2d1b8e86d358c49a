"""Stations and observations as columns (numpy arrays), the shape the station algorithm works
in: one batch's stations of a kind are updated together, a few dozen array operations in all,
instead of one Python call per station.

A NULL is NaN in a float column and `NULL` (the smallest int64) in an integer, time or date
column; times are microseconds and dates days since 1970-01-01 UTC; regions stay Python strings
(or None) in an object array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from sluice.stations.observations import Observation
from sluice.stations.rows import Station

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

NULL = int(np.iinfo(np.int64).min)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY = date(1970, 1, 1)
_MICRO = timedelta(microseconds=1)

FLOAT_COLUMNS = ("lat", "lon", "max_lat", "min_lat", "max_lon", "min_lon", "weight")
INT_COLUMNS = ("radius", "samples", "source", "block_count", "psc")
TIME_COLUMNS = ("created", "modified")
DATE_COLUMNS = ("last_seen", "block_first", "block_last")


def micros(value: datetime) -> int:
    return (value - EPOCH) // _MICRO


def days(value: date) -> int:
    return (value - EPOCH_DAY).days


@dataclass
class StationColumns:
    """The rows of `n` stations; `exists` is False where there is no row (a new station)."""

    exists: npt.NDArray[np.bool_]
    lat: Floats
    lon: Floats
    max_lat: Floats
    min_lat: Floats
    max_lon: Floats
    min_lon: Floats
    weight: Floats
    radius: Ints
    samples: Ints
    source: Ints
    block_count: Ints
    psc: Ints
    created: Ints
    modified: Ints
    last_seen: Ints
    block_first: Ints
    block_last: Ints
    region: npt.NDArray[np.object_]

    @classmethod
    def empty(cls, n: int) -> StationColumns:
        """`n` stations without rows."""
        values: dict[str, Any] = {"exists": np.zeros(n, dtype=bool)}
        for name in FLOAT_COLUMNS:
            values[name] = np.full(n, np.nan)
        for name in INT_COLUMNS + TIME_COLUMNS + DATE_COLUMNS:
            values[name] = np.full(n, NULL, dtype=np.int64)
        values["region"] = np.full(n, None, dtype=object)
        return cls(**values)

    def __len__(self) -> int:
        return len(self.exists)

    def copy(self) -> StationColumns:
        return StationColumns(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> StationColumns:
        return StationColumns(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def put(self, index: npt.NDArray[np.intp], rows: StationColumns) -> None:
        """Rows `index` set from `rows` (in order)."""
        for f in fields(self):
            getattr(self, f.name)[index] = getattr(rows, f.name)

    @classmethod
    def of(cls, stations: Sequence[Station | None]) -> StationColumns:
        out = cls.empty(len(stations))
        for i, s in enumerate(stations):
            if s is not None:
                out.set_row(i, s)
        return out

    def set_row(self, i: int, s: Station) -> None:
        self.exists[i] = True
        for name in FLOAT_COLUMNS:
            value = getattr(s, name)
            self_col: Floats = getattr(self, name)
            self_col[i] = np.nan if value is None else value
        for name in INT_COLUMNS:
            value = getattr(s, name)
            getattr(self, name)[i] = NULL if value is None else value
        for name in TIME_COLUMNS:
            value = getattr(s, name)
            getattr(self, name)[i] = NULL if value is None else micros(value)
        for name in DATE_COLUMNS:
            value = getattr(s, name)
            getattr(self, name)[i] = NULL if value is None else days(value)
        self.region[i] = s.region

    def station(self, i: int) -> Station | None:
        """Row `i` as a `Station` (None when there is no row)."""
        if not self.exists[i]:
            return None
        values: dict[str, Any] = {"region": self.region[i]}
        for name in FLOAT_COLUMNS:
            value = float(getattr(self, name)[i])
            values[name] = None if np.isnan(value) else value
        for name in INT_COLUMNS:
            value = int(getattr(self, name)[i])
            values[name] = None if value == NULL else value
        for name in TIME_COLUMNS:
            value = int(getattr(self, name)[i])
            values[name] = None if value == NULL else EPOCH + timedelta(microseconds=value)
        for name in DATE_COLUMNS:
            value = int(getattr(self, name)[i])
            values[name] = None if value == NULL else EPOCH_DAY + timedelta(days=value)
        return Station(**values)


@dataclass
class ObservationColumns:
    """Observations of weight > 0, each with the index of its station in the batch's
    `StationColumns`, in the order they came."""

    station: npt.NDArray[np.intp]
    lat: Floats
    lon: Floats
    weight: Floats
    #: ReportSource code, or -1 for none (which counts as gnss).
    source: Ints
    #: Cells' psc, or NULL.
    psc: Ints

    def __len__(self) -> int:
        return len(self.station)


@dataclass
class KindColumns:
    """One kind's observations (weight > 0) in the order they came, as lists: what a batch
    gathers before its stations are numbered."""

    keys: list[str] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    #: ReportSource code, -1 for none.
    source: list[int] = field(default_factory=list)
    psc: list[int] = field(default_factory=list)

    def add(self, obs: Observation) -> None:
        self.keys.append(obs.key)
        self.lat.append(obs.lat)
        self.lon.append(obs.lon)
        self.weight.append(obs.weight)
        self.source.append(-1 if obs.source is None else obs.source)
        self.psc.append(NULL if obs.psc is None else obs.psc)

    def __len__(self) -> int:
        return len(self.keys)

    def observations(self, station: npt.NDArray[np.intp]) -> ObservationColumns:
        """As arrays, observation ``i`` of the station numbered ``station[i]``."""
        return ObservationColumns(
            station=station,
            lat=np.array(self.lat, dtype=np.float64),
            lon=np.array(self.lon, dtype=np.float64),
            weight=np.array(self.weight, dtype=np.float64),
            source=np.array(self.source, dtype=np.int64),
            psc=np.array(self.psc, dtype=np.int64),
        )
