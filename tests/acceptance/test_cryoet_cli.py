"""``sluice cryoet load`` in a subprocess, on a local copy of the portal's test files."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from sluice.recipes.cryoet.generate import generate_tree
from tests.acceptance.conftest import FAULT, Sluice, query, scalar
from tests.fixtures.faults import kill_at_fault
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

    # nothing changed: nothing is read, nothing written
    quick = sluice.run(*args, "--json")
    assert quick.returncode == 0, quick.stderr
    skipped = json.loads(quick.stdout)
    assert skipped["ok"] and not skipped["changed"] and skipped["requests"]["gets"] == 0
    assert [s["skipped"] for s in skipped["scopes"]] == [True, True]

    # --full reads everything again, and finds everything in place
    second = sluice.run(*args, "--full", "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["requests"]["gets"] > 0
    assert report["ok"] and not report["changed"]
    assert report["totals"]["annotation_file"] == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": 7,
    }
    assert scalar(database_url, "SELECT count(*) FROM cryoet.run") == 4

    status = sluice.run("status", "--json")
    assert status.returncode == 0, status.stderr
    again, _, first_run = json.loads(status.stdout)["runs"][:3]
    assert again["run_id"] == report["run_id"]
    command = f"cryoet load {folder} --s3-prefix 30001 --deposition-id 300 --deposition-id 301"
    assert (first_run["command"], first_run["status"]) == (command, "succeeded")
    assert (first_run["loaded"], first_run["errored"]) == (2, 0)  # depositions, dataset 30001
    created = sum(counts["unchanged"] for counts in report["totals"].values())
    assert first_run["rows"]["inserted"] == created
    assert again["status"] == "succeeded"
    assert again["rows"]["inserted"] == again["rows"]["updated"] == again["rows"]["deleted"] == 0
    assert again["rows"]["unchanged"] == again["rows"]["in"] == created


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

    status = sluice.run("status", "--json")
    [run] = json.loads(status.stdout)["runs"]  # the dry run is not recorded
    assert run["status"] == "failed"
    assert (run["loaded"], run["errored"]) == (0, 1)
    assert run["error"].startswith("dataset 30001: file://")
    assert "30001/RUN2/run_metadata.json: is not valid JSON" in run["error"]
    text = " ".join(sluice.run("status").stdout.split())
    assert f"run {run['run_id']} failed: dataset 30001:" in text
    assert "is not valid JSON" in text


def test_a_sync_killed_before_its_commit_leaves_nothing_and_a_rerun_finishes_it(
    sluice: Sluice, reference_database_url: str, tmp_path: Path, database_url: str
) -> None:
    folder = bucket(tmp_path)
    args = ("cryoet", "load", str(folder), "https://foo.com", "--s3-prefix", "30001")
    args += ("--import-everything",)
    reference = sluice.with_database(reference_database_url)
    for target in (sluice, reference):
        assert target.run(*args).returncode == 0

    # The next day: a run is gone from the bucket, the dataset has a new title.
    shutil.rmtree(folder / "30001" / "RUN2")
    metadata = folder / "30001" / "dataset_metadata.json"
    metadata.write_text(metadata.read_text().replace("Lorem ipsum dolor", "Lorem ipsum, revised"))
    before = cryoet_rows(database_url)

    kill_at_fault(sluice.start(*args, env={FAULT: "sync"}), "sync")
    wait_for_no_other_sessions(database_url)
    assert cryoet_rows(database_url) == before  # the killed transaction left nothing
    [(killed_run, status)] = query(
        database_url, "SELECT id, status FROM sluice.runs ORDER BY id DESC LIMIT 1"
    )
    assert status == "running"

    rerun = sluice.run(*args, "--json")
    assert rerun.returncode == 0, rerun.stderr
    totals = json.loads(rerun.stdout)["totals"]
    assert (totals["run"]["deleted"], totals["dataset"]["updated"]) == (1, 1)
    assert reference.run(*args).returncode == 0

    # Exactly the database of a clean run, primary keys included.
    assert cryoet_rows(database_url) == cryoet_rows(reference_database_url)
    assert scalar(database_url, "SELECT title FROM cryoet.dataset") == "Lorem ipsum, revised"
    assert scalar(database_url, "SELECT count(*) FROM cryoet.run") == 3
    statuses = dict(query(database_url, "SELECT id, status FROM sluice.runs"))
    assert statuses[killed_run] == "abandoned"
    assert list(statuses.values()).count("succeeded") == 2


def cryoet_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the cryoet schema, every column, ordered by id."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'cryoet'"
        ).fetchall()
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier("cryoet", table))
            ).fetchall()
            for (table,) in tables
        }


def wait_for_no_other_sessions(url: str, timeout: float = 30.0) -> None:
    """Wait until the server has ended the killed process's sessions (rolling them back)."""
    deadline = time.monotonic() + timeout
    while scalar(
        url,
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    ):
        assert time.monotonic() < deadline, "the killed process's sessions never ended"
        time.sleep(0.05)


def test_two_syncs_at_once_take_turns_and_create_every_row_once(
    sluice: Sluice, tmp_path: Path, database_url: str
) -> None:
    tree = generate_tree(str(tmp_path / "bucket"), runs=40)
    args = ("cryoet", "load", str(tmp_path / "bucket"), "--import-everything", "--json")
    outputs = [tmp_path / "first.json", tmp_path / "second.json"]
    procs = [sluice.start(*args, stdout=out.open("w")) for out in outputs]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr

    reports = [json.loads(out.read_text()) for out in outputs]
    created = sorted(sum(c["created"] for c in r["totals"].values()) for r in reports)
    unchanged = sorted(sum(c["unchanged"] for c in r["totals"].values()) for r in reports)
    # one of them created everything, the other found it all in place (every run kept as the
    # first one left it, or all of it compared if it read the state before the first ended)
    assert created[0] == 0 and unchanged[0] == 0 and created[1] > 0 and unchanged[1] > 0
    second = next(r for r in reports if sum(c["created"] for c in r["totals"].values()) == 0)
    assert second["totals"]["run"]["unchanged"] == 40
    assert scalar(database_url, "SELECT count(*) FROM cryoet.run") == tree.runs == 40
    assert scalar(database_url, "SELECT count(*) FROM cryoet.dataset") == 1
