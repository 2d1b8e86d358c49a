"""The Cubic and lake commands as an operator types them."""

from __future__ import annotations

import csv
import io
import json

from tests.acceptance.conftest import Sluice, describe
from tests.integration.cubic_seed import files, seed

PROJECT = """\
[cubic]
incoming = "incoming"
archive = "archive"
error = "error"
lake = "lake"
"""


def test_register_run_and_read_the_lake(sluice: Sluice) -> None:
    (sluice.cwd / "sluice.toml").write_text(PROJECT)
    seed(sluice.cwd / "incoming")
    added = sluice.ok(
        "cubic",
        "tables",
        "add",
        "cubic_ods_qlik__edw_sample",
        "--prefix",
        "cubic/ods_qlik/EDW.SAMPLE/",
        "--snapshot-key",
        "LOAD1.csv.gz",
        "--typed",
    )
    assert added.stdout.strip() == (
        "table cubic_ods_qlik__edw_sample: ods at cubic/ods_qlik/EDW.SAMPLE/ (typed)"
    )
    sluice.ok(
        "cubic",
        "tables",
        "add",
        "cubic_dmap__agg_sample",
        "--prefix",
        "cubic/dmap/agg_sample/",
        "--kind",
        "dmap",
    )
    sluice.ok("cubic", "tables", "deactivate", "cubic_dmap__agg_sample")
    listed = json.loads(sluice.ok("cubic", "tables", "list", "--json").stdout)
    assert [(t["name"], t["active"], t["raw"]) for t in listed] == [
        ("cubic_dmap__agg_sample", False, True),
        ("cubic_ods_qlik__edw_sample", True, False),
    ]
    run = sluice.run("run", "--once")
    assert run.returncode == 0, describe(run)
    status = json.loads(sluice.ok("cubic", "status", "--json").stdout)
    assert status["loads"] == {"cubic_ods_qlik__edw_sample": {"archived": 4}}
    assert len(files(sluice.cwd / "incoming")) == 2  # the inactive table's files stay
    lake = json.loads(sluice.ok("lake", "tables", "--json").stdout)
    assert [(t["name"], t["rows"], t["partitions"]) for t in lake] == [
        ("cubic_ods_qlik__edw_sample", 3, 2),
        ("cubic_ods_qlik__edw_sample__ct", 4, 2),
    ]
    scanned = sluice.ok(
        "lake",
        "scan",
        "cubic_ods_qlik__edw_sample",
        "--where",
        "sample_id >= 2",
        "--format",
        "csv",
    )
    rows = sorted(csv.reader(io.StringIO(scanned.stdout)))
    assert rows[-1][:2] == ["sample_id", "sample_name"]
    assert [r[:2] for r in rows[:-1]] == [["2", "Sample 2"], ["3", "Sample 3"]]
    lines = sluice.ok(
        "lake", "scan", "cubic_ods_qlik__edw_sample", "--limit", "1", "--format", "json"
    ).stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["snapshot"].endswith("Z")
    missing = sluice.run("lake", "scan", "nope")
    assert missing.returncode == 2
    assert "there is no lake table 'nope'" in missing.stderr
    unknown = sluice.run("cubic", "tables", "activate", "nope")
    assert unknown.returncode == 2 and "there is no cubic table 'nope'" in unknown.stderr
    wrong = sluice.run("loads", "retry", "1")
    assert wrong.returncode == 2
    assert "load 1 is not an errored cubic load" in wrong.stderr
