"""A batch of reports → per kind, the observations as columns and the stations numbered in key
order (what `sluice.stations.updater` applies), plus the datamap cells and the counts.

Most reports hold wifi networks given by MAC and signal only. Those take a short path: the
report's position is read once (`observations.position_of`), each network is checked and
weighed by the very functions `observations.transform` uses, and its values go straight into
the columns, without an `Observation` object. Any other report — another kind of network,
another field of a network, a MAC given twice — goes through `transform` whole. Both give the
same columns (a property test holds them to it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sluice.stations import datamap
from sluice.stations.columns import NULL, KindColumns, ObservationColumns
from sluice.stations.keys import CellKey, Kind, shard_of
from sluice.stations.observations import network_mac, position_of, transform, wifi_signal
from sluice.stations.regions import regions_of
from sluice.stations.weights import accuracy_weight, network_weight, speed_weight

#: The fields of a wifi network the short path knows.
_PLAIN = frozenset({"macAddress", "signalStrength"})


@dataclass
class Gathered:
    kinds: dict[Kind, KindColumns]
    grids: dict[str, list[bytes]]
    dropped: Counter[str]
    observations: int
    reports_dropped: int


def gather(reports: Sequence[Mapping[str, Any]], *, map_content: bool = True) -> Gathered:
    out = Gathered({}, {}, Counter(), 0, 0)
    for report, base in zip(reports, _positions(reports), strict=True):
        if base is None:
            out.reports_dropped += 1
            continue
        plain = _plain_wifi(report, base, out)
        if plain is None:
            plain = _whole(report, out)
        if not plain:  # no network gave an observation
            out.reports_dropped += 1
        elif map_content:
            lat_s, lon_s = datamap.scaled(base["lat"], base["lon"])
            out.grids.setdefault(datamap.table(datamap.quarter(lat_s, lon_s)), []).append(
                datamap.grid_id(lat_s, lon_s)
            )
    out.observations = sum(len(c) for c in out.kinds.values())
    return out


def _positions(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
    """Each report's position (`observations.position_of`), None when it has none in range or
    it lies in no region, buffered (§8: ``GEOCODER.any_region``): at sea. The regions are
    looked up for the whole batch at once, which costs a tenth of a microsecond a report
    where one look-up at a time costs some fifteen."""
    bases = [position_of(report) for report in reports]
    placed = [(i, base) for i, base in enumerate(bases) if base is not None]
    if placed:
        lat = np.fromiter((base["lat"] for _, base in placed), np.float64, len(placed))
        lon = np.fromiter((base["lon"] for _, base in placed), np.float64, len(placed))
        for (i, _), region in zip(placed, regions_of(lat, lon), strict=True):
            if region is None:
                bases[i] = None
    return bases


def _plain_wifi(report: Mapping[str, Any], base: Mapping[str, Any], out: Gathered) -> bool | None:
    """The short path: whether the report gave an observation (of any weight); None when it
    is not a report of plain wifi networks only."""
    entries = report.get("wifiAccessPoints")
    if type(entries) is not list:
        return None
    for other in ("bluetoothBeacons", "cellTowers"):
        if isinstance(report.get(other), list) and report[other]:
            return None
    found: list[tuple[str, int | None]] = []
    dropped = 0
    for raw in entries:
        if type(raw) is not dict or not raw.keys() <= _PLAIN:
            return None
        given = raw.get("macAddress")
        mac = network_mac(given)
        if mac is None:
            dropped += 1
            continue
        found.append((mac, wifi_signal(raw.get("signalStrength"))))
    if len({mac for mac, _ in found}) != len(found):
        return None  # a MAC given twice: `transform` resolves duplicates
    if dropped:
        out.dropped["wifi"] += dropped
    accuracy_w = accuracy_weight("wifi", base["accuracy"])
    speed_w = speed_weight(base["speed"])
    source = -1 if base["source"] is None else base["source"]
    columns = None
    for mac, signal in found:
        w = network_weight("wifi", accuracy_w, speed_w, None, signal, None)
        if w <= 0:
            out.dropped["wifi_weight"] += 1
            continue
        if columns is None:
            columns = out.kinds.setdefault("wifi", KindColumns())
        columns.keys.append(mac)
        columns.lat.append(base["lat"])
        columns.lon.append(base["lon"])
        columns.weight.append(w)
        columns.source.append(source)
        columns.psc.append(NULL)
    return bool(found)


def _whole(report: Mapping[str, Any], out: Gathered) -> bool:
    transformed = transform(report)
    out.dropped.update(transformed.dropped)
    for obs in transformed.observations:
        if obs.weight <= 0:
            out.dropped[f"{obs.kind}_weight"] += 1
            continue
        out.kinds.setdefault(obs.kind, KindColumns()).add(obs)
    return bool(transformed.observations)


@dataclass
class KindBatch:
    """One kind's stations of a batch, numbered in key order, and its observations."""

    kind: Kind
    keys: list[str]
    #: The shard tables the stations live in, and each station's index into them.
    tables: list[str]
    tags: npt.NDArray[np.int16]
    observations: ObservationColumns

    @classmethod
    def of(cls, kind: Kind, columns: KindColumns) -> KindBatch:
        keys = sorted(set(columns.keys))
        number = {k: i for i, k in enumerate(keys)}
        shards = [shard_of(kind, k) for k in keys]
        tables = sorted(set(shards))
        tag_of = {t: i for i, t in enumerate(tables)}
        tags = np.fromiter((tag_of[t] for t in shards), np.int16, len(shards))
        observations = columns.observations(
            np.fromiter((number[k] for k in columns.keys), np.intp, len(columns))
        )
        return cls(kind, keys, tables, tags, observations)

    def key_records(self) -> npt.NDArray[Any]:
        """The keys as the tables store them, fixed-width records (``V6`` or ``V11``)."""
        if self.kind == "cell":
            packed = b"".join(CellKey.parse(k).packed() for k in self.keys)
            return np.frombuffer(packed, dtype="V11")
        return np.frombuffer(bytes.fromhex("".join(self.keys)), dtype="V6")
