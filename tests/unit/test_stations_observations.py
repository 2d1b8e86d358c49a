"""Reports to observations (the seed's internal transform and validation, case by case), the
weight formula at its edges, keys, shards and the datamap grid."""

from __future__ import annotations

import math
import random
from dataclasses import fields
from typing import Any

import pytest

from sluice import stations
from sluice.stations import datamap
from sluice.stations.keys import CellKey, mac_shard, normal_mac, shard_of
from sluice.stations.observations import Observation, cell_signal, transform, wifi_channel_frequency
from sluice.stations.weights import (
    accuracy_weight,
    age_weight,
    signal_weight,
    speed_weight,
    weight,
)

TS = 1_700_000_000_000


def report(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "timestamp": TS,
        "position": {"latitude": 51.5, "longitude": -0.1, "accuracy": 10.0, "source": "gnss"},
    }
    base.update(extra)
    return base


def wifi(mac: str = "aa:bb:cc:dd:ee:ff", **kw: Any) -> dict[str, Any]:
    return {"macAddress": mac, **kw}


def cell(**kw: Any) -> dict[str, Any]:
    base = {
        "radioType": "lte",
        "mobileCountryCode": 262,
        "mobileNetworkCode": 1,
        "locationAreaCode": 4,
        "cellId": 12345,
    }
    base.update(kw)
    return base


def one(rep: dict[str, Any]) -> Observation:
    out = transform(rep).observations
    assert len(out) == 1, out
    return out[0]


def test_public_surface() -> None:
    assert stations.__all__ == [
        "BatchResult",
        "Observation",
        "Station",
        "Transition",
        "apply_batch",
        "show_station",
        "simulate",
        "station_blocked",
        "stats",
        "transform",
        "update_station",
    ]


# -- the transform --------------------------------------------------------------------------------


def test_fields_are_renamed_and_times_moved_to_gps_time() -> None:
    rep = report(
        wifiAccessPoints=[
            wifi(
                age=3000,
                signalStrength=-60,
                ssid="x",
                channel=6,
                signalToNoiseRatio=20,
                radioType="802.11n",
            )
        ]
    )
    rep["position"].update(
        age=1000, altitude=30.0, altitudeAccuracy=5.0, heading=90.0, pressure=1000.0, speed=2.0
    )
    o = one(rep)
    assert (o.kind, o.key, o.lat, o.lon, o.accuracy) == ("wifi", "aabbccddeeff", 51.5, -0.1, 10.0)
    assert (o.altitude, o.altitude_accuracy, o.heading, o.pressure, o.speed) == (
        30.0,
        5.0,
        90.0,
        1000.0,
        2.0,
    )
    assert o.timestamp == TS - 1000 and o.age == 2000
    assert (o.signal, o.snr, o.channel, o.frequency, o.radio, o.source) == (
        -60,
        20,
        6,
        2437,
        "802.11n",
        3,
    )


@pytest.mark.parametrize(
    "position",
    [
        {},
        {"latitude": 51.5},
        {"latitude": 91.0, "longitude": 0.0},
        {"latitude": 0.0, "longitude": 180.5},
    ],
)
def test_a_report_without_a_usable_position_gives_nothing(position: dict[str, Any]) -> None:
    out = transform({"position": position, "wifiAccessPoints": [wifi()]})
    assert out.observations == [] and out.skipped == "no_position"
    assert transform({"wifiAccessPoints": [wifi()]}).skipped == "no_position"


@pytest.mark.parametrize(
    ("field", "value", "kept"),
    [
        ("accuracy", -1.0, None),
        ("accuracy", 1e6, 1e6),
        ("accuracy", 1e6 + 1, None),
        ("altitude", -10912.0, None),
        ("altitude", -10911.0, -10911.0),
        ("altitude", 100001.0, None),
        ("heading", 360.0, 360.0),
        ("heading", 361.0, None),
        ("pressure", 99.0, None),
        ("pressure", 1200.0, 1200.0),
        ("speed", 300.0, 300.0),
        ("speed", 300.5, None),
    ],
)
def test_report_fields_out_of_range_become_none(
    field: str, value: float, kept: float | None
) -> None:
    rep = report(bluetoothBeacons=[wifi()])
    rep["position"][field] = value
    assert getattr(one(rep), field) == kept


def test_timestamp_out_of_range_becomes_none() -> None:
    assert one(report(timestamp=10**13 + 1, bluetoothBeacons=[wifi()])).timestamp is None


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("AA:BB:CC:DD:EE:FF", "aabbccddeeff"),
        ("aa-bb-cc-dd-ee-ff", "aabbccddeeff"),
        ("aabb.ccdd.eeff", "aabbccddeeff"),
        ("000000000000", None),
        ("ff:ff:ff:ff:ff:ff", None),
        ("01:00:5e:90:10:00", None),
        ("aabbccddee", None),
        ("aabbccddeegg", None),
    ],
)
def test_mac_rules(given: str, normal: str | None) -> None:
    assert normal_mac(given) == normal
    out = transform(report(wifiAccessPoints=[wifi(given)]))
    assert [o.key for o in out.observations] == ([normal] if normal else [])
    assert out.dropped == ({} if normal else {"wifi": 1})


def test_the_shard_is_the_fifth_hex_digit() -> None:
    assert mac_shard("0123456789ab") == 4
    assert shard_of("wifi", "0123f56789ab") == "wifi_shard_f"
    assert shard_of("blue", "01230aaaaaaa") == "blue_shard_0"
    assert shard_of("cell", "wcdma:262:1:4:5") == "cell_wcdma"


@pytest.mark.parametrize(
    ("field", "value", "kept"),
    [
        ("channel", 0, None),
        ("channel", 199, 199),
        ("channel", 200, None),
        ("signalStrength", -101, None),
        ("signalStrength", -10, -10),
        ("signalStrength", -9, None),
        ("signalToNoiseRatio", 0, None),
        ("signalToNoiseRatio", 100, 100),
    ],
)
def test_wifi_ranges(field: str, value: int, kept: int | None) -> None:
    o = one(report(wifiAccessPoints=[wifi(**{field: value})]))
    attr = {"channel": "channel", "signalStrength": "signal", "signalToNoiseRatio": "snr"}[field]
    assert getattr(o, attr) == kept


def test_wifi_channel_and_frequency_derive_each_other() -> None:
    assert wifi_channel_frequency(None, 2412) == (1, 2412)
    assert wifi_channel_frequency(None, 2484) == (14, 2484)
    assert wifi_channel_frequency(None, 5180) == (36, 5180)
    assert wifi_channel_frequency(11, None) == (11, 2462)
    assert wifi_channel_frequency(14, None) == (14, 2484)
    assert wifi_channel_frequency(36, None) == (36, 5180)
    assert one(report(wifiAccessPoints=[wifi(frequency=2399)])).frequency is None


def test_bluetooth_signal_range() -> None:
    assert one(report(bluetoothBeacons=[wifi(signalStrength=-127)])).signal == -127
    assert one(report(bluetoothBeacons=[wifi(signalStrength=1)])).signal is None


def test_network_age_within_an_hour() -> None:
    assert one(report(bluetoothBeacons=[wifi(age=3_600_000)])).age == 3_600_000
    assert one(report(bluetoothBeacons=[wifi(age=3_600_001)])).age is None


@pytest.mark.parametrize(
    "changes",
    [
        {"radioType": "cdma"},
        {"radioType": None},
        {"mobileCountryCode": 553},
        {"mobileCountryCode": 999},
        {"mobileNetworkCode": 1000},
        {"locationAreaCode": 0},
        {"locationAreaCode": 65534},
        {"cellId": 0},
        {"cellId": 2**28},
        {"cellId": None},
    ],
)
def test_cells_refused(changes: dict[str, Any]) -> None:
    c = {k: v for k, v in {**cell(), **changes}.items() if v is not None}
    out = transform(report(cellTowers=[c]))
    assert out.observations == [] and out.dropped == {"cell": 1}


def test_cell_key_psc_and_gsm_relabel() -> None:
    o = one(report(cellTowers=[cell(radioType="gsm", cellId=70000, primaryScramblingCode=300)]))
    assert (o.key, o.radio, o.psc) == ("wcdma:262:1:4:70000", "wcdma", 300)
    assert one(report(cellTowers=[cell(primaryScramblingCode=504)])).psc is None
    assert one(report(cellTowers=[cell(primaryScramblingCode=503)])).psc == 503
    assert one(report(cellTowers=[cell(radioType="gsm", primaryScramblingCode=512)])).psc is None
    key = CellKey.parse("lte:262:1:4:12345")
    assert len(key.packed()) == 11 and CellKey.unpack(key.packed()) == key and len(key.area()) == 7


def test_cell_signal_rules() -> None:
    assert cell_signal("gsm", -70, None, None) == (None, -70, None)  # swapped
    assert cell_signal("gsm", 10, None, 5) == (10, -93, 5)  # 2·asu − 113
    assert cell_signal("wcdma", 10, None, 5) == (10, -106, None)  # asu − 116, no ta
    assert cell_signal("lte", 10, None, 64) == (10, -130, None)  # asu − 140, ta 0–63
    assert cell_signal("lte", 10, -30, 3) == (10, -130, 3)  # -30 is off range: from asu
    assert cell_signal("gsm", 40, -60, 3) == (None, -60, 3)


def test_duplicates_keep_the_better_entry() -> None:
    out = transform(
        report(
            wifiAccessPoints=[wifi(signalStrength=-50, age=100), wifi(signalStrength=-70, age=10)]
        )
    )
    assert [o.signal for o in out.observations] == [-50]  # better on signal: kept
    out = transform(report(wifiAccessPoints=[wifi(signalStrength=-70), wifi(signalStrength=-50)]))
    assert [o.signal for o in out.observations] == [-50]  # kept one is not better: replaced
    out = transform(
        report(
            cellTowers=[
                cell(timingAdvance=3, signalStrength=-120),
                cell(timingAdvance=5, signalStrength=-60),
            ]
        )
    )
    assert [o.ta for o in out.observations] == [3]  # lower ta wins first
    out = transform(report(bluetoothBeacons=[wifi(age=10), wifi(age=5)]))
    assert [o.age for o in out.observations] == [5]


# -- weights ---------------------------------------------------------------------------------------


def test_accuracy_weight_edges() -> None:
    assert accuracy_weight("wifi", None) == accuracy_weight("wifi", 0) == 1.0
    assert accuracy_weight("wifi", 40) == pytest.approx(0.5)
    assert accuracy_weight("blue", 100) > 0 and accuracy_weight("blue", 100.1) == 0
    assert accuracy_weight("wifi", 200) > 0 and accuracy_weight("wifi", 200.1) == 0
    assert (
        accuracy_weight("cell", 1000) == pytest.approx(0.1) and accuracy_weight("cell", 1001) == 0
    )


def test_age_weight_edges() -> None:
    assert age_weight(None) == age_weight(0) == age_weight(-2000) == 1.0
    assert age_weight(8000) == pytest.approx(0.5)
    assert age_weight(20000) == pytest.approx(math.sqrt(0.1)) and age_weight(20001) == 0


def test_speed_weight_edges() -> None:
    assert speed_weight(None) == speed_weight(0) == speed_weight(5) == 1.0
    assert speed_weight(20) == pytest.approx(0.5)
    assert speed_weight(50) == pytest.approx(math.sqrt(0.1)) and speed_weight(50.1) == 0


def test_signal_weight_edges() -> None:
    assert signal_weight("blue", -100, None) == 1.0
    assert signal_weight("wifi", None, None) == signal_weight("wifi", -80, None) == 1.0
    assert signal_weight("wifi", -40, None) == pytest.approx((10000 / 3600) ** 2)
    assert signal_weight("cell", None, "gsm") == signal_weight("cell", -95, "gsm") == 1.0
    assert signal_weight("cell", None, "wcdma") == 1.0 and signal_weight("cell", None, "lte") == 1.0
    assert signal_weight("cell", -50, "wcdma") == pytest.approx(16.0)


def test_weight_is_the_product_and_zero_observations_are_dropped_by_the_updater() -> None:
    assert weight("wifi", accuracy=40, age=8000, speed=20, signal=-80) == pytest.approx(0.125)
    out = transform(report(wifiAccessPoints=[wifi(age=30000)]))
    assert out.observations[0].weight == 0  # kept here; apply_batch drops and counts it


def test_transform_builds_the_observations_init_builds_and_weighs_them_exactly() -> None:
    """The transform fills its observations without the frozen __init__ and multiplies the
    report's weight factors once: the results are the same objects and the same bits."""
    rng = random.Random(8)
    seen = 0
    for _ in range(2000):
        position = {
            "latitude": rng.uniform(-80, 80),
            "longitude": rng.uniform(-170, 170),
            "accuracy": rng.choice([None, 0, 5.0, 15.0, rng.uniform(0, 1200)]),
            "speed": rng.choice([None, 0, rng.uniform(0, 60)]),
            "age": rng.choice([None, 0, rng.randint(-30000, 30000)]),
            "source": rng.choice([None, "gnss", "query", "fused"]),
        }
        out = transform(
            {
                "position": position,
                "wifiAccessPoints": [
                    {
                        "macAddress": f"{rng.getrandbits(48):012X}",
                        "signalStrength": rng.choice([None, rng.randint(-110, 0)]),
                        "age": rng.choice([None, rng.randint(-40000, 40000)]),
                    }
                ],
                "bluetoothBeacons": [
                    {
                        "macAddress": f"{rng.getrandbits(48):012x}",
                        "signalStrength": rng.choice([None, rng.randint(-130, 5)]),
                    }
                ],
                "cellTowers": [
                    {
                        "radioType": rng.choice(["gsm", "wcdma", "lte"]),
                        "mobileCountryCode": 262,
                        "mobileNetworkCode": 1,
                        "locationAreaCode": rng.randint(1, 100),
                        "cellId": rng.randint(1, 70000),
                        "signalStrength": rng.choice([None, rng.randint(-150, -20)]),
                        "asu": rng.choice([None, rng.randint(-10, 100)]),
                    }
                ],
            }
        )
        for o in out.observations:
            rebuilt = Observation(**{f.name: getattr(o, f.name) for f in fields(Observation)})
            assert o == rebuilt and vars(o) == vars(rebuilt)
            assert o.weight == o.own_weight()  # exactly, not approximately
            seen += 1
    assert seen == 6000


# -- datamap grid ----------------------------------------------------------------------------------


def test_datamap_grid_and_quarters() -> None:
    assert datamap.scaled(36.0, 5.0) == (36000, 5000)
    assert datamap.quarter(36000, 5000) == "ne" and datamap.quarter(35999, 4999) == "sw"
    assert datamap.quarter(36000, -100) == "nw" and datamap.quarter(-1, 5000) == "se"
    assert datamap.grid_id(0, 0) == (90000).to_bytes(4, "big") + (180000).to_bytes(4, "big")
    assert datamap.decode_grid(datamap.grid_id(-12345, 170000)) == (-12345, 170000)
    assert datamap.scaled(0.0005, 0.0015) == (0, 2)  # halves to even, as the seed
