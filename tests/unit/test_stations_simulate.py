"""The simulate verb: the station algorithm over JSON, through the Python API and the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from sluice.errors import TerminalError
from sluice.stations import simulate
from sluice.stations.simulate import station_from_json, station_to_json
from tests.fixtures.stations import ichnaea_cli

TODAY = "2026-05-10"
ROW: dict[str, Any] = {
    "lat": 51.5,
    "lon": -0.1,
    "max_lat": 51.5,
    "min_lat": 51.5,
    "max_lon": -0.1,
    "min_lon": -0.1,
    "radius": 0,
    "region": "GB",
    "samples": 3,
    "source": 3,
    "weight": 3.0,
    "created": "2025-01-01T00:00:00+00:00",
    "modified": "2026-05-01T00:00:00+00:00",
    "last_seen": "2026-05-01",
    "block_first": None,
    "block_last": None,
    "block_count": None,
}


def run(
    kind: str, station: dict[str, Any] | None, observations: list[dict[str, Any]]
) -> dict[str, Any]:
    from datetime import date

    return simulate(
        kind, {"station": station, "observations": observations}, date.fromisoformat(TODAY)
    )


def test_new_from_nothing_with_weights_computed() -> None:
    got = run("wifi", None, [{"key": "aabbccddeeff", "lat": 1.0, "lon": 2.0, "signal": -40}])
    assert got["transition"] == "new"
    assert got["station"]["weight"] == pytest.approx((10000 / 3600) ** 2)
    assert got["station"]["created"] == "2026-05-10T00:00:00+00:00" and "psc" not in got["station"]


def test_each_transition_through_json() -> None:
    near = {"lat": 51.5001, "lon": -0.1, "source": "gnss"}
    far = {"lat": 52.5, "lon": -0.1, "source": "gnss"}
    assert run("wifi", ROW, [near])["transition"] == "change"
    assert run("wifi", ROW, [{**near, "source": "query"}])["transition"] == "confirm"
    assert run("wifi", {**ROW, "source": "query"}, [near])["transition"] == "replace"
    assert run("wifi", ROW, [near, far])["transition"] == "block"
    assert run("wifi", ROW, [far])["transition"] == "block"
    assert (
        run("wifi", {**ROW, "modified": "2025-05-01T00:00:00+00:00"}, [far])["transition"]
        == "replace"
    )
    assert run("wifi", None, [near, far])["transition"] == "new_block"
    blocked = {**ROW, "block_last": "2026-05-09", "block_count": 1}
    assert run("wifi", blocked, [near]) == {"transition": "none", "station": blocked}
    assert run("wifi", ROW, [{**near, "accuracy": 500}]) == {"transition": "none", "station": ROW}
    block = run("blue", ROW, [{"lat": 51.502, "lon": -0.1}])
    assert block["station"] == {
        **{k: None for k in ROW},
        "region": "GB",
        "created": ROW["created"],
        "modified": "2026-05-10T00:00:00+00:00",
        "block_first": TODAY,
        "block_last": TODAY,
        "block_count": 1,
    }


def test_cells_keep_psc_and_radio_from_the_key() -> None:
    got = run(
        "cell", None, [{"key": "lte:262:1:4:5", "lat": 1.0, "lon": 2.0, "psc": 7, "signal": -100}]
    )
    assert got["transition"] == "new" and got["station"]["psc"] == 7
    # The radio comes from the key: LTE's offset +5, not GSM's -5 ((10000 / 105²)² ≈ 0.82).
    assert got["station"]["weight"] == pytest.approx((10000 / 95**2) ** 2)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "a JSON object"),
        ({"station": None}, "'observations' is a list"),
        ({"station": {"colour": 1}, "observations": []}, "unknown columns: colour"),
        ({"station": {"created": "yesterday"}, "observations": []}, "station column created"),
        ({"station": None, "observations": [{"lat": "x"}]}, "observation 0 needs numbers"),
        (
            {"station": None, "observations": [{"key": "zz", "lat": 1, "lon": 1}]},
            "not a usable MAC",
        ),
        (
            {"station": None, "observations": [{"lat": 1, "lon": 1, "source": "gps"}]},
            "source is one of",
        ),
    ],
)
def test_bad_input_is_a_clear_error(document: Any, message: str) -> None:
    from datetime import date

    with pytest.raises(TerminalError, match=message):
        simulate("wifi", document, date(2026, 1, 1))


def test_a_row_round_trips() -> None:
    station = station_from_json(ROW)
    assert station is not None and station_to_json(station, "wifi") == ROW


def test_simulate_through_the_command_line() -> None:
    document = {"station": ROW, "observations": [{"lat": 51.5001, "lon": -0.1, "source": "query"}]}
    result = CliRunner().invoke(
        ichnaea_cli(),
        ["ichnaea", "stations", "simulate", "--kind", "wifi", "--today", TODAY],
        input=json.dumps(document),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "transition": "confirm",
        "station": {**ROW, "last_seen": TODAY},
    }
