"""From a v2 report (the shape the intake queues) to per-station observations: the seed's
`InternalTransform`, `Report.create` validation and `combine` with duplicate resolution
(ichnaea/data/export.py, ichnaea/models/observation.py, wifi.py, cell.py, blue.py).

Pure functions: no database, no clock. A field out of its range becomes None; a network
without a usable key is dropped (and counted); a report without a usable position yields no
observation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from typing import Any

from sluice.stations.keys import SOURCES, CellKey, Kind, normal_mac
from sluice.stations.mcc import VALID_MCCS
from sluice.stations.weights import accuracy_weight, network_weight, speed_weight, weight

#: Ranges of report fields (ichnaea/models/constants.py); outside, the field becomes None.
REPORT_RANGES: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1e6),
    "altitude": (-10911.0, 100000.0),
    "altitude_accuracy": (0.0, 1e6),
    "heading": (0.0, 360.0),
    "pressure": (100.0, 1200.0),
    "speed": (0.0, 300.0),
    "timestamp": (1e12, 1e13),
}
MAX_NETWORK_AGE = 3_600_000
WIFI_RANGES = {
    "channel": (1, 199),
    "frequency": (2400, 5999),
    "signal": (-100, -10),
    "snr": (1, 100),
}
BLUE_SIGNAL = (-127, 0)
CELL_SIGNAL = {"gsm": (-113, -51), "wcdma": (-121, -25), "lte": (-150, -43)}
CELL_ASU = {"gsm": (0, 31), "wcdma": (-5, 91), "lte": (0, 97)}
#: signal = factor·asu + offset when a cell reports asu only.
ASU_TO_SIGNAL = {"gsm": (2, -113), "wcdma": (1, -116), "lte": (1, -140)}
WIFI_RADIOS = frozenset({"802.11a", "802.11b", "802.11g", "802.11n", "802.11ac", "802.11ax"})
MAX_CID = 2**28 - 1


@dataclass(frozen=True)
class Observation:
    """One network seen from one position: the report's fields plus the network's own."""

    kind: Kind
    key: str
    lat: float
    lon: float
    accuracy: float | None = None
    altitude: float | None = None
    altitude_accuracy: float | None = None
    heading: float | None = None
    pressure: float | None = None
    speed: float | None = None
    #: ReportSource code (fixed 0, gnss 3, fused 6, query 9); None counts as gnss.
    source: int | None = None
    timestamp: int | None = None
    age: int | None = None
    signal: int | None = None
    # wifi
    channel: int | None = None
    frequency: int | None = None
    radio: str | None = None
    snr: int | None = None
    # cell (radio above)
    asu: int | None = None
    psc: int | None = None
    serving: int | None = None
    ta: int | None = None
    weight: float = field(default=0.0, compare=False)

    def weighed(self) -> Observation:
        """This observation with its weight."""
        return replace(self, weight=self.own_weight())

    def own_weight(self) -> float:
        return weight(
            self.kind,
            accuracy=self.accuracy,
            age=self.age,
            speed=self.speed,
            signal=self.signal,
            radio=self.radio if self.kind == "cell" else None,
        )


_DEFAULTS = {f.name: f.default for f in dataclass_fields(Observation) if f.default is not MISSING}


def _built(report_fields: Mapping[str, Any], **own: Any) -> Observation:
    """The `Observation` of the report's fields and the network's own: the same instance
    ``Observation(**report_fields, **own)`` gives (every field in its ``__dict__``), filled in
    one go instead of by the frozen ``__init__``'s one assignment per field, 6 times slower —
    the transform's hottest line."""
    obs = object.__new__(Observation)
    values = obs.__dict__
    if "weight" not in report_fields:  # not merged with the defaults by `transform` already
        values.update(_DEFAULTS)
    values.update(report_fields)
    values.update(own)
    return obs


@dataclass
class Transformed:
    """What one report gave: its observations (weighed, duplicates resolved), and the networks
    dropped per kind."""

    observations: list[Observation] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    #: Why the whole report gave nothing ("no_position"), or None.
    skipped: str | None = None


def _number(value: Any) -> float | None:
    if value is None:  # the usual absent field: no isinstance checks
        return None
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _integer(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is int:  # not a bool, whose type is bool
        return value
    f = _number(value)
    return int(f) if f is not None and f == int(f) else None


def _ranged(value: float | None, bounds: tuple[float, float]) -> float | None:
    return value if value is not None and bounds[0] <= value <= bounds[1] else None


def _ranged_int(value: int | None, bounds: tuple[float, float]) -> int | None:
    return value if value is not None and bounds[0] <= value <= bounds[1] else None


def position_of(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The report's fields of an observation, or None when lat/lon are missing or off range."""
    position = report.get("position")
    if not isinstance(position, Mapping):
        return None
    lat, lon = _number(position.get("latitude")), _number(position.get("longitude"))
    if lat is None or lon is None or not (-90 <= lat <= 90) or not (-180 <= lon <= 180):
        return None
    age = _integer(position.get("age")) or 0
    fields: dict[str, Any] = {"lat": lat, "lon": lon}
    for name, given in (
        ("accuracy", "accuracy"),
        ("altitude", "altitude"),
        ("altitude_accuracy", "altitudeAccuracy"),
        ("heading", "heading"),
        ("pressure", "pressure"),
        ("speed", "speed"),
    ):
        fields[name] = _ranged(_number(position.get(given)), REPORT_RANGES[name])
    timestamp = _integer(report.get("timestamp"))
    if timestamp is not None:
        timestamp -= age  # onto GPS time
    fields["timestamp"] = _ranged_int(timestamp, REPORT_RANGES["timestamp"])
    source = position.get("source")
    fields["source"] = SOURCES.get(source) if isinstance(source, str) else None
    fields["_age"] = age
    return fields


def _network_age(raw: Mapping[str, Any], position_age: int) -> int | None:
    given = raw.get("age")
    if given is None:
        return None
    age = _integer(given)
    if age is None:
        return None
    return _ranged_int(age - position_age, (-MAX_NETWORK_AGE, MAX_NETWORK_AGE))


def wifi_channel_frequency(
    channel: int | None, frequency: int | None
) -> tuple[int | None, int | None]:
    """Derive a missing channel from the frequency, or the other way round."""
    if channel is None and frequency is not None:
        if 2411 < frequency < 2473:
            channel = (frequency - 2407) // 5
        elif frequency == 2484:
            channel = 14
        elif 5169 < frequency < 5826:
            channel = (frequency - 5000) // 5
    elif frequency is None and channel is not None:
        if channel < 14:
            frequency = 2407 + channel * 5
        elif channel == 14:
            frequency = 2484
        elif 14 < channel < 200:
            frequency = 5000 + channel * 5
    return channel, frequency


def network_mac(given: Any) -> str | None:
    """A network's ``macAddress`` as 12 lower-case hex digits, or None when it is no usable
    MAC (or no string)."""
    return normal_mac(given) if isinstance(given, str) else None


def wifi_signal(given: Any) -> int | None:
    """A wifi network's ``signalStrength`` in dBm, or None when missing or out of range."""
    return _ranged_int(_integer(given), WIFI_RANGES["signal"])


def wifi_observation(
    raw: Mapping[str, Any], age: int, fields: Mapping[str, Any]
) -> Observation | None:
    get = raw.get
    given = get("macAddress")
    mac = network_mac(given)
    if mac is None:
        return None
    # Most networks give a MAC and a signal only: the absent fields skip their checks.
    channel, frequency = get("channel"), get("frequency")
    if channel is not None or frequency is not None:
        channel = _ranged_int(_integer(channel), WIFI_RANGES["channel"])
        frequency = _ranged_int(_integer(frequency), WIFI_RANGES["frequency"])
        channel, frequency = wifi_channel_frequency(channel, frequency)
    radio, snr = get("radioType"), get("signalToNoiseRatio")
    return _built(
        fields,
        kind="wifi",
        key=mac,
        age=None if get("age") is None else _network_age(raw, age),
        signal=wifi_signal(get("signalStrength")),
        snr=None if snr is None else _ranged_int(_integer(snr), WIFI_RANGES["snr"]),
        channel=channel,
        frequency=frequency,
        radio=radio if radio in WIFI_RADIOS else None,
    )


def blue_observation(
    raw: Mapping[str, Any], age: int, fields: Mapping[str, Any]
) -> Observation | None:
    mac = network_mac(raw.get("macAddress"))
    if mac is None:
        return None
    return _built(
        fields,
        kind="blue",
        key=mac,
        age=_network_age(raw, age),
        signal=_ranged_int(_integer(raw.get("signalStrength")), BLUE_SIGNAL),
    )


def cell_observation(
    raw: Mapping[str, Any], age: int, fields: Mapping[str, Any]
) -> Observation | None:
    radio = raw.get("radioType")
    mcc = _integer(raw.get("mobileCountryCode"))
    mnc = _integer(raw.get("mobileNetworkCode"))
    lac = _integer(raw.get("locationAreaCode"))
    cid = _integer(raw.get("cellId"))
    if radio not in ("gsm", "wcdma", "lte") or None in (mcc, mnc, lac, cid):
        return None  # cdma, or a key field missing
    assert mcc is not None and mnc is not None and lac is not None and cid is not None
    if radio == "gsm" and cid > 65535:
        radio = "wcdma"
    if mcc not in VALID_MCCS or not (0 <= mnc <= 999) or not (1 <= lac <= 65533):
        return None
    if not (1 <= cid <= MAX_CID):
        return None
    psc = _ranged_int(_integer(raw.get("primaryScramblingCode")), (0, 511))
    if radio == "lte" and psc is not None and psc > 503:
        psc = None
    asu, signal, ta = cell_signal(
        radio,
        _integer(raw.get("asu")),
        _integer(raw.get("signalStrength")),
        _integer(raw.get("timingAdvance")),
    )
    return _built(
        fields,
        kind="cell",
        key=CellKey(radio, mcc, mnc, lac, cid).text(),
        radio=radio,
        age=_network_age(raw, age),
        asu=asu,
        signal=signal,
        ta=ta,
        psc=psc,
        serving=_ranged_int(_integer(raw.get("serving")), (0, 1)),
    )


def cell_signal(
    radio: str, asu: int | None, signal: int | None, ta: int | None
) -> tuple[int | None, int | None, int | None]:
    """asu, signal and ta of a cell: swapped when given the wrong way round, ranged per radio,
    the signal derived from asu when missing, ta dropped for WCDMA."""
    if asu is not None and asu < -5 and (signal is None or signal >= 0):
        asu, signal = signal, asu
    asu = _ranged_int(asu, CELL_ASU[radio])
    signal = _ranged_int(signal, CELL_SIGNAL[radio])
    ta = _ranged_int(ta, (0, 63))
    if signal is None and asu is not None:
        factor, offset = ASU_TO_SIGNAL[radio]
        signal = factor * asu + offset
    if radio == "wcdma":
        ta = None
    return asu, signal, ta


def _report_fields(base: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in base.items() if not k.startswith("_")}


#: (field, True when larger is better) in the order the seed's `better()` looks at them.
COMPARATORS: dict[Kind, tuple[tuple[str, bool], ...]] = {
    "wifi": (("signal", True), ("snr", True), ("age", False)),
    "cell": (("ta", False), ("signal", True), ("asu", True), ("age", False)),
    "blue": (("signal", True), ("age", False)),
}


def better(kept: Observation, other: Observation) -> bool:
    """Whether the already kept duplicate beats `other`: strictly better on any comparator where
    both have a value."""
    for name, larger in COMPARATORS[kept.kind]:
        a, b = getattr(kept, name), getattr(other, name)
        if a is not None and b is not None and (a > b if larger else a < b):
            return True
    return False


_BUILDERS: tuple[tuple[Kind, str, Callable[..., Observation | None]], ...] = (
    ("wifi", "wifiAccessPoints", wifi_observation),
    ("blue", "bluetoothBeacons", blue_observation),
    ("cell", "cellTowers", cell_observation),
)


def transform(report: Mapping[str, Any]) -> Transformed:
    """The observations of one v2 report, weighed, duplicates resolved, weight 0 kept (the
    updater drops those, counting them)."""
    out = Transformed()
    base = position_of(report)
    if base is None:
        out.skipped = "no_position"
        return out
    # The report's fields, shared by all its observations: built once, not per network.
    age, fields = base["_age"], {**_DEFAULTS, **_report_fields(base)}
    speed_w = speed_weight(fields["speed"])
    for kind, list_name, build in _BUILDERS:
        entries = report.get(list_name)
        if not isinstance(entries, list):
            continue
        kept: dict[str, Observation] = {}
        for raw in entries:
            is_mapping = type(raw) is dict or isinstance(raw, Mapping)
            obs = build(raw, age, fields) if is_mapping else None
            if obs is None:
                out.dropped[kind] = out.dropped.get(kind, 0) + 1
                continue
            previous = kept.get(obs.key)
            if previous is None or not better(previous, obs):
                kept[obs.key] = obs
        accuracy_w = accuracy_weight(kind, fields["accuracy"])
        for o in kept.values():
            # Built just above and held nowhere else: weighed in place rather than copied.
            w = network_weight(
                kind, accuracy_w, speed_w, o.age, o.signal, o.radio if kind == "cell" else None
            )
            object.__setattr__(o, "weight", w)
            out.observations.append(o)
    return out
