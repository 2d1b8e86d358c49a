"""The station algorithm over JSON, for operators and tests: a row before and observations in,
the transition and the row after out. No database is touched; weights are computed here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import UTC, date, datetime, time
from typing import Any

from sluice.errors import TerminalError
from sluice.stations.algorithm import Station, update_station
from sluice.stations.keys import KINDS, SOURCES, CellKey, Kind, normal_mac
from sluice.stations.observations import Observation

_DATE_FIELDS = ("last_seen", "block_first", "block_last")
_TIME_FIELDS = ("created", "modified")
_STATION_FIELDS = {f.name for f in fields(Station)}


class SimulateError(TerminalError):
    """The JSON given to simulate cannot be used."""


def now_for(today: date) -> datetime:
    """The instant a run on `today` stamps rows with: now when `today` is today (UTC), else the
    start of that day."""
    current = datetime.now(UTC)
    return current if current.date() == today else datetime.combine(today, time(0), UTC)


def simulate(kind: str, document: Any, today: date, now: datetime | None = None) -> dict[str, Any]:
    """``{"transition": ..., "station": <row after> | null}`` for
    ``{"station": <row before> | null, "observations": [...]}``."""
    if kind not in KINDS:
        raise SimulateError(f"kind is one of wifi, blue, cell, not {kind!r}")
    if not isinstance(document, Mapping):
        raise SimulateError("the input is a JSON object with 'station' and 'observations'")
    raw_obs = document.get("observations")
    if not isinstance(raw_obs, list):
        raise SimulateError("'observations' is a list of objects")
    station = station_from_json(document.get("station"))
    observations = [observation_from_json(kind, raw, i) for i, raw in enumerate(raw_obs)]
    kept = [o for o in observations if o.weight > 0]
    result = update_station(kind, station, kept, today=today, now=now or now_for(today))
    return {
        "transition": result.effect,
        "station": None if result.station is None else station_to_json(result.station, kind),
    }


def station_from_json(raw: Any) -> Station | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SimulateError("'station' is an object of station columns, or null")
    unknown = sorted(set(raw) - _STATION_FIELDS)
    if unknown:
        raise SimulateError(f"'station' has unknown columns: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values[name] = _column(name, value)
        except (TypeError, ValueError) as exc:
            raise SimulateError(f"station column {name}: {value!r} is not usable ({exc})") from exc
    return Station(**values)


def _column(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _DATE_FIELDS:
        return date.fromisoformat(value)
    if name in _TIME_FIELDS:
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if name == "source":
        return _source(value)
    if name in ("radius", "samples", "block_count", "psc"):
        return int(value)
    if name == "region":
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _source(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in SOURCES:
            raise ValueError(f"source is one of {', '.join(SOURCES)}")
        return SOURCES[value]
    if isinstance(value, int) and value in SOURCES.values():
        return value
    raise ValueError(f"source is one of {', '.join(SOURCES)} or its code")


def observation_from_json(kind: Kind, raw: Any, index: int) -> Observation:
    where = f"observation {index}"
    if not isinstance(raw, Mapping):
        raise SimulateError(f"{where} is not an object")
    try:
        lat, lon = float(raw["lat"]), float(raw["lon"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SimulateError(f"{where} needs numbers lat and lon") from exc
    key = str(raw.get("key", ""))
    radio = raw.get("radio")
    if kind == "cell":
        try:
            radio = CellKey.parse(key).radio if key else (radio or "gsm")
        except ValueError as exc:
            raise SimulateError(f"{where}: {exc}") from exc
    elif key and normal_mac(key) is None:
        raise SimulateError(f"{where}: key {key!r} is not a usable MAC address")
    try:
        obs = Observation(
            kind=kind,
            key=key,
            lat=lat,
            lon=lon,
            accuracy=_opt_float(raw.get("accuracy")),
            age=_opt_int(raw.get("age")),
            speed=_opt_float(raw.get("speed")),
            signal=_opt_int(raw.get("signal")),
            source=_source(raw.get("source")),
            radio=radio if kind == "cell" else None,
            psc=_opt_int(raw.get("psc")),
        )
    except (TypeError, ValueError) as exc:
        raise SimulateError(f"{where}: {exc}") from exc
    return obs.weighed()


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def station_to_json(station: Station, kind: str = "cell") -> dict[str, Any]:
    """The row as JSON: dates and times in ISO form; ``psc`` for cells only."""
    out: dict[str, Any] = {}
    for name, value in asdict(station).items():
        if name == "psc" and kind != "cell":
            continue
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out
