"""Crash tests: a real ``sluice glam import`` is SIGKILLed at an exact moment of a load (during
the COPY, during the merge, just before the commit). Re-running the same import must end with
exactly the rows of a clean run, each object version loaded once, and a tidy ledger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sluice.recipes.glam.api import generate
from tests.acceptance.conftest import (
    DESKTOP,
    FAULT,
    Sluice,
    assert_same_rows,
    glam_import_args,
    json_report,
    query,
    row_counts,
    scalar,
    staging_tables,
    table_rows,
)
from tests.fixtures.faults import kill_at_fault

pytestmark = pytest.mark.slow

ROWS = 20_000
SHARDS = 4
FIRST_SHARD = "aggs-desktop-nightly-000000000000.csv"
LEDGER = (
    "SELECT key, version, status, rows_in, rows_inserted, rows_updated, rows_unchanged, "
    "rows_rejected FROM sluice.loads ORDER BY key, version"
)


@dataclass(frozen=True)
class Crashed:
    """What the killed import left behind, seen from outside before the re-run."""

    load_id: int
    run_id: int


def _import_json(target: Sluice, bucket: Path) -> dict[str, Any]:
    return json_report(target.ok(*glam_import_args(bucket, "--json")))


def _crash_and_rerun(
    sluice: Sluice,
    reference_url: str,
    bucket: Path,
    point: str,
    *,
    reexport: bool,
    while_paused: Callable[[int], None],
) -> None:
    """Generate a bucket (and a re-export if asked), kill an import of it at `point`, re-run
    it, and compare everything with a clean import into the reference database."""
    db = sluice.database_url
    assert db is not None
    reference = sluice.with_database(reference_url)
    generate("desktop", "nightly", rows=ROWS, shards=SHARDS, out=str(bucket))
    changed = 0
    if reexport:
        for target in (sluice, reference):
            first = _import_json(target, bucket)
            assert row_counts(first) == {
                "rows_in": ROWS,
                "inserted": ROWS,
                "updated": 0,
                "unchanged": 0,
                "rejected": 0,
            }
        day2 = generate(
            "desktop", "nightly", rows=0, shards=0, out=str(bucket), base=str(bucket), change=0.1
        )
        changed = day2.changed_rows
        assert 0 < changed < ROWS
    before = table_rows(db, DESKTOP) if reexport else []
    loads_before = SHARDS if reexport else 0

    def check_paused() -> None:
        ingesting = query(
            db, "SELECT id, key, attempts FROM sluice.loads WHERE status = 'ingesting'"
        )
        assert len(ingesting) == 1, ingesting
        load_id, key, attempts = ingesting[0]
        assert (key, attempts) == (FIRST_SHARD, 1)
        while_paused(load_id)

    proc = sluice.start(*glam_import_args(bucket), env={FAULT: point})
    kill_at_fault(proc, point, while_paused=check_paused)

    # What the dead process left: one load still "ingesting", its run still "running", and
    # not a single row of the interrupted transaction in the target.
    left = query(db, "SELECT id, run_id FROM sluice.loads WHERE status = 'ingesting'")
    assert len(left) == 1, left
    crashed = Crashed(*left[0])
    assert query(db, "SELECT status FROM sluice.runs WHERE id = %s", [crashed.run_id]) == [
        ("running",)
    ]
    assert_same_rows(table_rows(db, DESKTOP), before)

    rerun = _import_json(sluice, bucket)
    clean = _import_json(reference, bucket)

    # The re-run finishes the job: every object of this generation loaded, the counts those of
    # a clean run.
    expected_rows = (
        {"rows_in": ROWS, "inserted": 0, "updated": changed, "unchanged": ROWS - changed}
        if reexport
        else {"rows_in": ROWS, "inserted": ROWS, "updated": 0, "unchanged": 0}
    )
    assert row_counts(rerun) == {**expected_rows, "rejected": 0}
    assert clean["rows"] == rerun["rows"]
    assert (rerun["ok"], rerun["discovered"], rerun["loaded"], rerun["errored"]) == (
        True,
        0,  # the killed run had already discovered them
        SHARDS,
        0,
    )
    assert crashed.load_id in [load["load_id"] for load in rerun["loads"]]

    # Exactly the rows of a clean run, row for row (every column but the surrogate id).
    assert_same_rows(table_rows(db, DESKTOP), table_rows(reference_url, DESKTOP))
    assert scalar(db, f"SELECT count(*) FROM view_{DESKTOP}") == ROWS
    assert scalar(db, "SELECT changes_seq > refreshed_seq FROM sluice.targets") is False

    # The ledger: every object version loaded exactly once, nothing left ingesting, the killed
    # load attempted twice and every other load once.
    loads = query(db, "SELECT id, status, attempts FROM sluice.loads ORDER BY id")
    assert len(loads) == loads_before + SHARDS
    assert {status for _, status, _ in loads} == {"loaded"}
    assert {load_id: attempts for load_id, _, attempts in loads} == {
        load_id: 2 if load_id == crashed.load_id else 1 for load_id, _, _ in loads
    }
    assert query(db, LEDGER) == query(reference_url, LEDGER)

    # No staging table outlives the re-run; the killed run is shown as abandoned.
    assert staging_tables(db) == []
    runs = dict(query(db, "SELECT id, status FROM sluice.runs"))
    assert runs[crashed.run_id] == "abandoned"
    assert runs[rerun["run_id"]] == "succeeded"
    assert scalar(db, "SELECT claimed FROM sluice.runs WHERE id = %s", [rerun["run_id"]]) == SHARDS


def test_kill_during_copy_of_a_first_import(
    sluice: Sluice, reference_database_url: str, tmp_path: Path
) -> None:
    """Case A: a fresh bucket, the direct path, killed while its COPY into the target runs."""
    db = sluice.database_url
    assert db is not None

    def copying(load_id: int) -> None:
        copies = query(
            db,
            "SELECT relid::regclass::text, command FROM pg_stat_progress_copy "
            "WHERE datname = current_database()",
        )
        assert copies == [(DESKTOP, "COPY FROM")]

    _crash_and_rerun(
        sluice,
        reference_database_url,
        tmp_path / "bucket",
        "copy",
        reexport=False,
        while_paused=copying,
    )


def test_kill_during_the_merge_of_a_reexport(
    sluice: Sluice, reference_database_url: str, tmp_path: Path
) -> None:
    """Case B: a re-export with 10 % changed rows, the staged path, killed after staging and
    before the merge into the target."""
    db = sluice.database_url
    assert db is not None
    bucket = tmp_path / "bucket"

    def staged(load_id: int) -> None:
        assert staging_tables(db) == [f"load_{load_id}_1"]
        with (bucket / FIRST_SHARD).open("rb") as fh:
            lines = sum(1 for _ in fh)
        assert scalar(db, f"SELECT count(*) FROM sluice_staging.load_{load_id}_1") == lines

    _crash_and_rerun(
        sluice, reference_database_url, bucket, "merge", reexport=True, while_paused=staged
    )


@pytest.mark.parametrize("reexport", [False, True], ids=["first-import", "reexport"])
def test_kill_just_before_commit(
    sluice: Sluice, reference_database_url: str, tmp_path: Path, reexport: bool
) -> None:
    """Case C: the load's rows and its ledger row are written, the transaction is not yet
    committed (on the direct path of a first import and on the staged path of a re-export)."""
    db = sluice.database_url
    assert db is not None

    def written_not_committed(load_id: int) -> None:
        open_writers = scalar(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction' AND backend_xid IS NOT NULL",
        )
        assert open_writers == 1

    _crash_and_rerun(
        sluice,
        reference_database_url,
        tmp_path / "bucket",
        "commit",
        reexport=reexport,
        while_paused=written_not_committed,
    )
