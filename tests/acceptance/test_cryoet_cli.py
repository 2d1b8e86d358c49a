"""``sluice cryoet load`` in a subprocess, on a local copy of the portal's test files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.acceptance.conftest import Sluice, scalar
from tests.integration.test_cryoet_import import reference_files


def bucket(tmp_path: Path) -> Path:
    folder = tmp_path / "test-public-bucket"
    shutil.copytree(reference_files(), folder)
    return folder


def test_load_prints_a_report_and_a_second_run_changes_nothing(
    sluice: Sluice, tmp_path: Path, database_url: str
) -> None:
    folder = bucket(tmp_path)
    args = (
        "cryoet",
        "load",
        str(folder),
        "https://foo.com",
        "--s3-prefix",
        "30001",
        "--import-everything",
        "--deposition-id",
        "300",
        "--deposition-id",
        "301",
    )

    first = sluice.run(*args)
    assert first.returncode == 0, first.stderr
    assert "dataset 30001: ok" in first.stdout
    assert "annotation_file" in first.stdout

    second = sluice.run(*args, "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["ok"] and not report["changed"]
    assert report["totals"]["annotation_file"] == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": 7,
    }
    assert scalar(database_url, "SELECT count(*) FROM cryoet.run") == 4


def test_dry_run_lists_changes_and_a_broken_document_fails_with_its_name(
    sluice: Sluice, tmp_path: Path, database_url: str
) -> None:
    folder = bucket(tmp_path)
    dry = sluice.run(
        "cryoet",
        "load",
        str(folder),
        "https://foo.com",
        "--s3-prefix",
        "30001",
        "--import-runs",
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    assert "would create run dataset_id=30001, name='RUN1'" in dry.stdout
    assert scalar(database_url, "SELECT to_regclass('cryoet.run')") is None

    (folder / "30001" / "RUN2" / "run_metadata.json").write_text("{oops")
    broken = sluice.run(
        "cryoet", "load", str(folder), "https://foo.com", "--s3-prefix", "30001", "--import-runs"
    )
    assert broken.returncode == 1
    assert "dataset 30001: FAILED" in broken.stdout
    assert "30001/RUN2/run_metadata.json: is not valid JSON" in broken.stdout
    assert scalar(database_url, "SELECT count(*) FROM cryoet.run") == 0
