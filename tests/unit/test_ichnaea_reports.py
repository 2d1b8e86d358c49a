"""The Ichnaea payloads: v0/v1 converted to the v2 shape, and each lenient-validation rule."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.intake.errors import ParseError
from sluice.recipes.ichnaea.reports import NO_NETWORKS, parse_v0, parse_v1, parse_v2
from sluice.recipes.ichnaea.schemas import MAX_TIMESTAMP, MIN_TIMESTAMP

WIFI = {"macAddress": "ab:cd:ef:01:23:45", "signalStrength": -70}
T = 1_700_000_000_000


def v2(**report: Any) -> list[dict[str, Any]]:
    return [r.report for r in parse_v2({"items": [report]}).reports]


def one(**report: Any) -> dict[str, Any]:
    found = v2(**report)
    assert len(found) == 1, found
    return found[0]


def refused(parse: Any, document: Any) -> dict[str, str]:
    with pytest.raises(ParseError) as caught:
        parse(document)
    assert caught.value.details is not None
    validation: dict[str, str] = caught.value.details["validation"]
    return validation


def test_v2_report_is_kept_in_its_shape() -> None:
    report = {
        "timestamp": T,
        "position": {"latitude": 51.5, "longitude": -0.1, "accuracy": 10, "source": "gnss"},
        "wifiAccessPoints": [WIFI],
        "cellTowers": [{"radioType": "lte", "mobileCountryCode": 234, "cellId": 7}],
        "bluetoothBeacons": [{"macAddress": "aa:bb:cc:dd:ee:ff", "name": "beacon"}],
    }
    got = one(**report)
    assert got == {**report, "position": {**report["position"], "accuracy": 10.0}}


def test_unknown_keys_null_and_empty_values_are_dropped() -> None:
    got = one(
        wifiAccessPoints=[{**WIFI, "ssid": "", "channel": None, "bogus": 1}],
        position={"latitude": 1.0, "longitude": None, "extra": "x"},
        carrier="ignored",
    )
    assert got == {"wifiAccessPoints": [WIFI], "position": {"latitude": 1.0}}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_dropped(bad: float) -> None:
    got = one(position={"latitude": bad, "longitude": 2.0}, wifiAccessPoints=[{**WIFI, "age": bad}])
    assert got["position"] == {"longitude": 2.0}
    assert got["wifiAccessPoints"] == [WIFI]


def test_vocabularies_are_lower_cased_and_umts_becomes_wcdma() -> None:
    got = one(
        cellTowers=[{"radioType": "GSM", "cellId": 1}, {"radioType": "UMTS", "cellId": 2}],
        position={"source": "Fused"},
    )
    assert [c["radioType"] for c in got["cellTowers"]] == ["gsm", "wcdma"]
    assert got["position"]["source"] == "fused"


@pytest.mark.parametrize("word", ["gps", "manual", "nope"])
def test_off_vocabulary_source_is_dropped_and_counts_as_gnss(word: str) -> None:
    submission = parse_v2({"items": [{"position": {"source": word}, "wifiAccessPoints": [WIFI]}]})
    (report,) = submission.reports
    assert "position" not in report.report
    assert report.source == "gnss"


def test_query_source_is_the_queued_source() -> None:
    submission = parse_v2(
        {"items": [{"position": {"source": "query"}, "wifiAccessPoints": [WIFI]}]}
    )
    assert submission.reports[0].source == "query"


def test_off_vocabulary_radio_is_dropped() -> None:
    got = one(cellTowers=[{"radioType": "5g", "cellId": 1}])
    assert got["cellTowers"] == [{"cellId": 1}]


def test_report_radio_type_is_inherited_then_removed() -> None:
    got = one(
        radioType="umts",
        cellTowers=[
            {"cellId": 1},
            {"cellId": 2, "radioType": "lte"},
            {"cellId": 3, "radioType": "x"},
        ],
    )
    assert "radioType" not in got
    assert [c["radioType"] for c in got["cellTowers"]] == ["wcdma", "lte", "wcdma"]


def test_wifi_and_bluetooth_without_mac_are_dropped() -> None:
    got = one(
        wifiAccessPoints=[{"signalStrength": -50}, WIFI, {"macAddress": ""}],
        bluetoothBeacons=[{"name": "no mac"}],
    )
    assert got == {"wifiAccessPoints": [WIFI]}


def test_reports_without_networks_are_dropped_and_counted() -> None:
    submission = parse_v2(
        {
            "items": [
                {"position": {"latitude": 1.0, "longitude": 2.0}},
                {"wifiAccessPoints": [{"ssid": "no mac"}], "cellTowers": [{}]},
                None,
                {"wifiAccessPoints": [WIFI]},
            ]
        }
    )
    assert [r.report for r in submission.reports] == [{"wifiAccessPoints": [WIFI]}]
    assert submission.dropped == {NO_NETWORKS: 3}


def test_reports_without_position_are_kept() -> None:
    assert one(cellTowers=[{"cellId": 5}]) == {"cellTowers": [{"cellId": 5}]}


@pytest.mark.parametrize("stamp", [0, MIN_TIMESTAMP, MAX_TIMESTAMP, 10**15, -5, math.nan])
def test_timestamps_out_of_range_become_now(stamp: float) -> None:
    before = int(time.time() * 1000)
    got = one(timestamp=stamp, wifiAccessPoints=[WIFI])
    assert before <= got["timestamp"] <= int(time.time() * 1000)


def test_timestamp_in_range_is_kept_and_missing_stays_missing() -> None:
    assert one(timestamp=T, wifiAccessPoints=[WIFI])["timestamp"] == T
    assert "timestamp" not in one(wifiAccessPoints=[WIFI])


def test_numbers_as_text_are_read_and_fractions_cut_for_integers() -> None:
    got = one(
        wifiAccessPoints=[{**WIFI, "channel": "11", "age": 12.7}], position={"latitude": "1.5"}
    )
    assert got["wifiAccessPoints"][0]["channel"] == 11
    assert got["wifiAccessPoints"][0]["age"] == 12
    assert got["position"] == {"latitude": 1.5}


def test_wrong_types_refuse_the_whole_request_with_every_path() -> None:
    validation = refused(
        parse_v2,
        {
            "items": [
                {"wifiAccessPoints": [WIFI]},
                {"wifiAccessPoints": [{"macAddress": 10}], "position": {"latitude": "north"}},
                {"cellTowers": {"cellId": 1}},
                {"wifiAccessPoints": [{"macAddress": "x", "age": True}]},
                "not a report",
            ]
        },
    )
    assert validation == {
        "items.1.wifiAccessPoints.0.macAddress": "a number is not a string",
        "items.1.position.latitude": "'north' is not a number",
        "items.2.cellTowers": "an object is not an array",
        "items.3.wifiAccessPoints.0.age": "a boolean is not a number",
        "items.4": "a string is not an object",
    }


@pytest.mark.parametrize(
    ("document", "path"),
    [([], "(document)"), ({}, "items"), ({"items": None}, "items"), ({"items": {}}, "items")],
)
def test_the_envelope_must_hold_items(document: Any, path: str) -> None:
    assert path in refused(parse_v2, document)


def test_an_empty_batch_is_fine() -> None:
    assert parse_v2({"items": []}).reports == []


def test_v1_position_fields_move_into_position_and_psc_is_renamed() -> None:
    submission = parse_v1(
        {
            "items": [
                {
                    "latitude": 51.5,
                    "longitude": -0.1,
                    "accuracy": 5,
                    "altitudeAccuracy": 3,
                    "source": "fixed",
                    "timestamp": T,
                    "radioType": "gsm",
                    "cellTowers": [{"cellId": 1, "psc": 4}],
                    "wifiAccessPoints": [WIFI],
                }
            ]
        }
    )
    (report,) = submission.reports
    assert report.report == {
        "timestamp": T,
        "position": {
            "latitude": 51.5,
            "longitude": -0.1,
            "accuracy": 5.0,
            "altitudeAccuracy": 3.0,
            "source": "fixed",
        },
        "cellTowers": [{"cellId": 1, "primaryScramblingCode": 4, "radioType": "gsm"}],
        "wifiAccessPoints": [WIFI],
    }
    assert report.source == "fixed"


def test_v0_short_names_become_v2() -> None:
    submission = parse_v0(
        {
            "items": [
                {
                    "lat": 51.5,
                    "lon": -0.1,
                    "altitude_accuracy": 2,
                    "time": "2023-11-14T22:13:20Z",
                    "radio": "umts",
                    "cell": [{"mcc": 234, "mnc": 15, "lac": 3, "cid": 9, "psc": 1, "ta": 2}],
                    "wifi": [{"key": "ab:cd", "signal": -60, "radio": "802.11n"}],
                    "blue": [{"key": "be:ac", "signal": -80}],
                }
            ]
        }
    )
    (report,) = submission.reports
    assert report.report == {
        "timestamp": T,
        "position": {"latitude": 51.5, "longitude": -0.1, "altitudeAccuracy": 2.0},
        "cellTowers": [
            {
                "mobileCountryCode": 234,
                "mobileNetworkCode": 15,
                "locationAreaCode": 3,
                "cellId": 9,
                "primaryScramblingCode": 1,
                "timingAdvance": 2,
                "radioType": "wcdma",
            }
        ],
        "wifiAccessPoints": [
            {"macAddress": "ab:cd", "signalStrength": -60, "radioType": "802.11n"}
        ],
        "bluetoothBeacons": [{"macAddress": "be:ac", "signalStrength": -80}],
    }


@pytest.mark.parametrize("text", ["yesterday", "", "1999-01-01T00:00:00", "2300-01-01T00:00:00Z"])
def test_v0_bad_iso_time_becomes_now(text: str) -> None:
    before = int(time.time() * 1000)
    submission = parse_v0({"items": [{"time": text, "wifi": [{"key": "ab"}]}]})
    stamp = submission.reports[0].report.get("timestamp", before)
    assert before <= stamp <= int(time.time() * 1000)


def test_v0_wrong_types_refuse() -> None:
    assert refused(parse_v0, {"items": [{"wifi": [{"key": 5}], "time": 12}]}) == {
        "items.0.time": "a number is not a string",
        "items.0.wifi.0.key": "a number is not a string",
    }


# -- any document ---------------------------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["gsm", "UMTS", "lte", "gnss", "query", "ab:cd", "2020-01-01T00:00:00"])
)
_FIELDS = st.sampled_from(
    [
        "items", "position", "latitude", "lat", "macAddress", "key", "radioType", "radio",
        "cellTowers", "cell", "wifiAccessPoints", "wifi", "bluetoothBeacons", "blue",
        "timestamp", "time", "source", "psc", "cellId", "signalStrength", "ssid",
    ]
)  # fmt: skip
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_FIELDS, inner, max_size=5),
    max_leaves=30,
)
_V2_KEYS = {"timestamp", "position", "bluetoothBeacons", "cellTowers", "wifiAccessPoints"}


@pytest.mark.parametrize("parse", [parse_v0, parse_v1, parse_v2])
@given(document=st.dictionaries(_FIELDS, _JSON, max_size=3) | _JSON)
@settings(max_examples=150, deadline=None, database=None)
def test_any_document_is_reports_or_a_parse_error(parse: Any, document: Any) -> None:
    """Whatever comes, a parser returns v2 reports with a network each, or refuses with a
    ParseError listing paths: never another exception (which would be a 500)."""
    try:
        submission = parse(document)
    except ParseError as exc:
        assert exc.details is not None and exc.details["validation"]
        return
    for one in submission.reports:
        assert set(one.report) <= _V2_KEYS
        assert any(
            one.report.get(name) for name in ("bluetoothBeacons", "cellTowers", "wifiAccessPoints")
        )
        assert one.source in {"fixed", "gnss", "fused", "query"}
        for cell in one.report.get("cellTowers", []):
            assert cell.get("radioType", "gsm") in {"gsm", "cdma", "wcdma", "lte"}
        for wifi in one.report.get("wifiAccessPoints", []):
            assert isinstance(wifi["macAddress"], str)
    assert len(submission.reports) + sum(submission.dropped.values()) == len(document["items"])
