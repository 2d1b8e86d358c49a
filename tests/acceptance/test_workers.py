"""Two ``sluice glam import`` processes started at the same moment on the same bucket and
database share the work: each object version is claimed and loaded by exactly one of them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sluice.recipes.glam.api import generate
from tests.acceptance.conftest import (
    COMMAND_TIMEOUT,
    DESKTOP,
    ROW_COUNTS,
    Sluice,
    assert_same_rows,
    glam_import_args,
    query,
    row_counts,
    scalar,
    table_rows,
)

pytestmark = pytest.mark.slow

ROWS = 40_000
SHARDS = 8


def _two_at_once(sluice: Sluice, bucket: Path, tag: str) -> list[dict[str, Any]]:
    """Start two imports of `bucket` together, wait for both; return their JSON reports."""
    started: list[tuple[subprocess.Popen[str], Path, Path]] = []
    for n in (1, 2):
        out, err = sluice.cwd / f"{tag}-{n}.out", sluice.cwd / f"{tag}-{n}.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = sluice.start(*glam_import_args(bucket, "--json"), stdout=stdout, stderr=stderr)
        started.append((proc, out, err))
    reports = []
    for proc, out, err in started:
        try:
            code = proc.wait(COMMAND_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert code == 0, f"exit {code}\n{out.read_text()}\n{err.read_text()}"
        reports.append(json.loads(out.read_text()))
    return reports


def _check_round(
    db: str, reports: list[dict[str, Any]], loads_before: int, expected: dict[str, int]
) -> None:
    """Both runs succeeded, each took a disjoint share of the 8 new loads, and together they
    loaded every object version exactly once with the `expected` row counts."""
    assert [r["ok"] for r in reports] == [True, True]
    assert sum(r["discovered"] for r in reports) == SHARDS
    assert sum(r["errored"] for r in reports) == 0
    taken = [[load["load_id"] for load in r["loads"]] for r in reports]
    assert set(taken[0]).isdisjoint(taken[1])
    # The round's loads are the ones the earlier rounds did not make. (Not "ids above N":
    # both processes insert the same versions with ON CONFLICT DO NOTHING, so the loser's
    # attempts use up ids, and a round's ids need not follow each other.)
    new_ids = [
        i for (i,) in query(db, "SELECT id FROM sluice.loads ORDER BY id OFFSET %s", [loads_before])
    ]
    assert sorted(taken[0] + taken[1]) == sorted(new_ids)
    assert len(new_ids) == SHARDS
    totals = {name: sum(row_counts(r)[name] for r in reports) for name in ROW_COUNTS}
    assert totals == {**expected, "rejected": 0}

    # the ledger: every load of the round loaded, at the first attempt
    loads = query(
        db, "SELECT status, attempts, count(*) FROM sluice.loads GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert loads == [("loaded", 1, loads_before + SHARDS)]
    run_ids = [r["run_id"] for r in reports]
    runs = query(
        db,
        "SELECT status, claimed, loaded, inserted, updated FROM sluice.runs "
        "WHERE id = ANY(%s) ORDER BY id",
        [run_ids],
    )
    assert [status for status, *_ in runs] == ["succeeded", "succeeded"]
    assert sum(claimed for _, claimed, *_ in runs) == SHARDS
    assert sum(loaded for _, _, loaded, *_ in runs) == SHARDS
    assert sum(inserted for *_, inserted, _ in runs) == expected["inserted"]
    assert sum(updated for *_, updated in runs) == expected["updated"]


def test_two_processes_load_each_file_exactly_once(
    sluice: Sluice, reference_database_url: str, tmp_path: Path
) -> None:
    db = sluice.database_url
    assert db is not None
    reference = sluice.with_database(reference_database_url)
    bucket = tmp_path / "bucket"
    first = generate("desktop", "nightly", rows=ROWS, shards=SHARDS, out=str(bucket))
    assert len(first.files) == SHARDS

    # day one: an empty table, the direct COPY path
    reports = _two_at_once(sluice, bucket, "day1")
    _check_round(db, reports, 0, {"rows_in": ROWS, "inserted": ROWS, "updated": 0, "unchanged": 0})
    assert scalar(db, f"SELECT count(*) FROM {DESKTOP}") == first.rows == ROWS
    reference.ok(*glam_import_args(bucket))
    assert_same_rows(table_rows(db, DESKTOP), table_rows(reference_database_url, DESKTOP))

    # day two: a re-export with 10 % of the rows changed, the staged path
    day2 = generate(
        "desktop", "nightly", rows=0, shards=0, out=str(bucket), base=str(bucket), change=0.1
    )
    assert 0 < day2.changed_rows < ROWS
    reports = _two_at_once(sluice, bucket, "day2")
    _check_round(
        db,
        reports,
        SHARDS,
        {
            "rows_in": ROWS,
            "inserted": 0,
            "updated": day2.changed_rows,
            "unchanged": ROWS - day2.changed_rows,
        },
    )
    assert scalar(db, f"SELECT count(*) FROM {DESKTOP}") == ROWS
    reference.ok(*glam_import_args(bucket))
    assert_same_rows(table_rows(db, DESKTOP), table_rows(reference_database_url, DESKTOP))
    assert scalar(db, f"SELECT count(*) FROM view_{DESKTOP}") == ROWS
    assert scalar(db, "SELECT changes_seq > refreshed_seq FROM sluice.targets") is False
