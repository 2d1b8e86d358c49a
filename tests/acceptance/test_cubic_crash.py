"""The Cubic routing as an operator runs it (``sluice run --once`` in a subprocess): SIGKILLed
during a move, before and after a lake commit, then re-run; and two passes at once over one
Incoming. Every file must end in exactly one of Archive or Error, every lake partition must
hold its rows once, every object version must be loaded once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sluice.lake import Lake, LakeOptions, postgres_catalog
from tests.acceptance.conftest import Sluice, describe, query
from tests.fixtures.faults import kill_at_fault
from tests.integration.cubic_seed import files, seed

pytestmark = pytest.mark.slow

PROJECT = """\
[cubic]
incoming = "incoming"
archive = "archive"
error = "error"
lake = "lake"

[cubic.tables.cubic_ods_qlik__edw_sample]
prefix = "cubic/ods_qlik/EDW.SAMPLE/"
snapshot_key = "LOAD1.csv.gz"
raw = false

[cubic.tables.cubic_dmap__agg_sample]
prefix = "cubic/dmap/agg_sample/"
kind = "dmap"
"""
#: Rows per lake table and partition after a clean pass over the sample.
EXPECTED = {
    "cubic_ods_qlik__edw_sample": {"LOAD1.csv.gz": 2, "LOAD2.csv.gz": 1},
    "cubic_ods_qlik__edw_sample__ct": {
        "20211201-112233444.csv.gz": 2,
        "20211201-122433444.csv.gz": 2,
    },
    "raw_cubic_dmap__agg_sample": {
        "agg_sample_20220517.csv.gz": 2,
        "agg_sample_20220518.csv.gz": 2,
    },
}
DATA_FILES = 6


def _project(sluice: Sluice) -> Path:
    (sluice.cwd / "sluice.toml").write_text(PROJECT)
    seed(sluice.cwd / "incoming")
    return sluice.cwd


def _partitions(sluice: Sluice) -> dict[str, dict[str, int]]:
    assert sluice.database_url is not None
    lake = Lake(
        LakeOptions(
            warehouse=sluice.cwd / "lake",
            catalog_uri=postgres_catalog(sluice.database_url),
            namespace="cubic",
        )
    )
    try:
        found: dict[str, dict[str, int]] = {}
        for table in EXPECTED:
            counts: dict[str, int] = {}
            for row in lake.read(table).to_pylist():
                counts[row["identifier"]] = counts.get(row["identifier"], 0) + 1
            found[table] = counts
        return found
    finally:
        lake.close()


def _check_clean(sluice: Sluice) -> None:
    root = sluice.cwd
    assert files(root / "incoming") == []
    archived = [f for f in files(root / "archive") if f.endswith(".csv.gz")]
    errored = [f for f in files(root / "error") if f.endswith(".csv.gz")]
    assert len(archived) == DATA_FILES and errored == []
    assert len([f for f in files(root / "archive") if f.endswith(".dfm")]) == 4
    assert _partitions(sluice) == EXPECTED
    assert sluice.database_url is not None
    units = query(
        sluice.database_url,
        "SELECT key, status FROM sluice.units WHERE kind = 'cubic' ORDER BY key",
    )
    assert len(units) == DATA_FILES, units
    assert {status for _, status in units} == {"archived"}


def _run(sluice: Sluice) -> dict[str, Any]:
    result = sluice.run("run", "--once", "--json")
    assert result.returncode == 0, describe(result)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("point", ["lake", "commit", "move"])
def test_killed_mid_load_then_rerun(sluice: Sluice, point: str) -> None:
    _project(sluice)
    proc = sluice.start("run", "--once", env={"SLUICE_FAULT_PAUSE": point})
    kill_at_fault(proc, point)
    _run(sluice)
    _check_clean(sluice)


def test_two_passes_at_once_load_each_object_once(sluice: Sluice) -> None:
    _project(sluice)
    procs = [sluice.start("run", "--once") for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    _check_clean(sluice)
