"""The short path of plain wifi reports gives exactly what `transform` gives: the same
observation columns, datamap cells and counts, over reports of every shape; a report whose
position lies in no region (at sea) is dropped whole, whichever path it would take."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.stations import datamap
from sluice.stations.gather import Gathered, KindColumns, gather
from sluice.stations.keys import Kind
from sluice.stations.observations import position_of, transform
from sluice.stations.regions import region_of


def reference(reports: Sequence[Mapping[str, Any]]) -> Gathered:
    """`gather` as it was: every report through `transform`."""
    out = Gathered({}, {}, Counter(), 0, 0)
    for report in reports:
        base = position_of(report)
        if base is not None and region_of(base["lat"], base["lon"]) is None:
            out.reports_dropped += 1  # at sea: in no region
            continue
        transformed = transform(report)
        out.dropped.update(transformed.dropped)
        if not transformed.observations:
            out.reports_dropped += 1
            continue
        first = transformed.observations[0]
        lat_s, lon_s = datamap.scaled(first.lat, first.lon)
        out.grids.setdefault(datamap.table(datamap.quarter(lat_s, lon_s)), []).append(
            datamap.grid_id(lat_s, lon_s)
        )
        for obs in transformed.observations:
            if obs.weight <= 0:
                out.dropped[f"{obs.kind}_weight"] += 1
                continue
            kind: Kind = obs.kind
            out.kinds.setdefault(kind, KindColumns()).add(obs)
    out.observations = sum(len(c) for c in out.kinds.values())
    return out


MACS = ["0123456789ab", "01:23:45:67:89:ab", "aabbccddeeff", "AA-BB-CC-DD-EE-01", "000000000000",
        "zz", "a0b1c2d3e4f5", "102030405060"]  # fmt: skip
SIGNALS = st.one_of(st.none(), st.integers(-130, 10), st.floats(-120, 0), st.just("-70"))
PLAIN = st.fixed_dictionaries(
    {"macAddress": st.sampled_from(MACS)}, optional={"signalStrength": SIGNALS}
)
OTHER = st.fixed_dictionaries(
    {"macAddress": st.sampled_from(MACS)},
    optional={
        "signalStrength": SIGNALS,
        "age": st.integers(-5000, 5000),
        "channel": st.integers(0, 200),
        "frequency": st.integers(2400, 6000),
        "signalToNoiseRatio": st.integers(0, 120),
        "radioType": st.sampled_from(["802.11n", "bogus"]),
    },
)
WIFI = st.lists(st.one_of(PLAIN, PLAIN, OTHER, st.just("not a network")), max_size=6)
#: Anywhere (mostly at sea, or off range), or on land in a few cities.
PLACE = st.one_of(
    st.fixed_dictionaries({"latitude": st.floats(-91, 91), "longitude": st.floats(-181, 181)}),
    st.sampled_from([(51.5, -0.1), (48.85, 2.35), (40.7, -74.0), (-33.9, 151.2)]).map(
        lambda p: {"latitude": p[0], "longitude": p[1]}
    ),
)
POSITION_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "accuracy": st.one_of(st.none(), st.floats(0, 2000)),
        "speed": st.one_of(st.none(), st.floats(0, 400)),
        "source": st.sampled_from(["gnss", "query", "fused", "fixed", "other"]),
        "age": st.integers(0, 10000),
    },
)
POSITION = st.builds(lambda place, fields: {**place, **fields}, PLACE, POSITION_FIELDS)
#: Reports the short path takes (and some it must refuse: a MAC given twice).
PLAIN_REPORT = st.fixed_dictionaries(
    {"position": POSITION, "wifiAccessPoints": st.lists(PLAIN, min_size=1, max_size=6)},
    optional={"bluetoothBeacons": st.just([]), "timestamp": st.integers(10**12, 10**13)},
)
MIXED_REPORT = st.fixed_dictionaries(
    {},
    optional={
        "position": POSITION,
        "wifiAccessPoints": st.one_of(WIFI, WIFI, st.just("junk")),
        "bluetoothBeacons": st.one_of(st.just([]), st.just([{"macAddress": "a0b1c2d3e4f6"}])),
        "cellTowers": st.just([{"radioType": "lte", "mobileCountryCode": 262,
                                "mobileNetworkCode": 1, "locationAreaCode": 4, "cellId": 5}]),
        "timestamp": st.integers(10**12, 10**13),
    },
)  # fmt: skip
REPORT = st.one_of(PLAIN_REPORT, PLAIN_REPORT, MIXED_REPORT)


@settings(max_examples=400, deadline=None)
@given(st.lists(REPORT, max_size=8))
def test_gather_equals_transform(reports: list[dict[str, Any]]) -> None:
    assert gather(reports) == reference(reports)


def test_plain_reports_take_the_short_path_and_agree() -> None:
    reports = [
        {
            "position": {"latitude": 51.5 + i * 1e-4, "longitude": -0.1, "accuracy": 15.0},
            "wifiAccessPoints": [
                {"macAddress": f"a0b1c2d3e4{i:02x}", "signalStrength": -60 - i},
                {"macAddress": "000000000000"},  # not a usable MAC: dropped
            ],
        }
        for i in range(20)
    ]
    got = gather(reports)
    assert got == reference(reports)
    assert got.observations == 20 and got.dropped == Counter({"wifi": 20})
    assert got.kinds["wifi"].keys[:2] == ["a0b1c2d3e400", "a0b1c2d3e401"]
