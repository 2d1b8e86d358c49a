"""``sluice ichnaea stations show`` and ``sluice ichnaea stats`` on a real PostgreSQL, through
the command group as `attach` mounts it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.db import Database, DatabaseOptions
from sluice.stations import apply_batch
from tests.fixtures.stations import ichnaea_cli


@pytest.fixture
def filled(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    report = {
        "position": {"latitude": 10.0, "longitude": 20.0},
        "wifiAccessPoints": [{"macAddress": "01:02:03:04:05:06"}],
    }
    with Database.open(DatabaseOptions(url=database_url)) as database:
        apply_batch(database, "cli", [report], today=date(2026, 2, 3))


def test_show_prints_one_row(filled: None) -> None:
    result = CliRunner().invoke(
        ichnaea_cli(), ["ichnaea", "stations", "show", "wifi", "01:02:03:04:05:06", "--json"]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert (row["lat"], row["lon"], row["samples"], row["source"]) == (10.0, 20.0, 1, 3)
    assert row["last_seen"] == "2026-02-03" and "psc" not in row


def test_show_of_a_missing_or_malformed_key_is_an_error(filled: None) -> None:
    missing = CliRunner().invoke(
        ichnaea_cli(), ["ichnaea", "stations", "show", "blue", "010203040506"]
    )
    assert missing.exit_code != 0
    assert "there is no blue station 010203040506" in str(missing.exception)
    bad = CliRunner().invoke(ichnaea_cli(), ["ichnaea", "stations", "show", "cell", "lte:1"])
    assert bad.exit_code != 0 and "radio:mcc:mnc:lac:cid" in str(bad.exception)


def test_stats_prints_the_counters(filled: None) -> None:
    result = CliRunner().invoke(ichnaea_cli(), ["ichnaea", "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"key": 3, "name": "wifi", "time": "2026-02-03", "value": 1},
        {"key": 4, "name": "unique_wifi", "time": "2026-02-03", "value": 1},
    ]
