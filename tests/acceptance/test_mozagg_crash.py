"""SIGKILL a backfill of ten days in the middle (a day written to the lake and the warehouse,
its ledger row not committed), run it again: every day exported once on the ledger, the lake
and the warehouse holding each row once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb

from sluice.lake import Lake, LakeOptions
from tests.acceptance.conftest import FAULT, Sluice, describe, query, scalar
from tests.fixtures.faults import kill_at_fault

START, END = "2019-12-01", "2019-12-11"
KILLED_DAY = "2019-12-05"


def test_killed_backfill_resumes_and_counts_every_row_once(
    sluice: Sluice, database_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = {"SLUICE_STATE_DIR": str(state)}
    sluice.ok(
        "mozagg",
        "generate",
        "--start",
        START,
        "--days",
        "10",
        "--tables-per-day",
        "2",
        "--rows-per-table",
        "25",
        env=env,
    )
    args = ("mozagg", "backfill", "--type", "submission_date", "--start", START, "--end", END)
    point = f"export:{KILLED_DAY}"
    proc = sluice.start(*args, env={**env, FAULT: point})

    def in_the_middle() -> None:
        done = scalar(database_url, "SELECT count(*) FROM sluice.partitions")
        assert done == 4  # the four days before the killed one

    kill_at_fault(proc, point, while_paused=in_the_middle)
    status = query(
        database_url, "SELECT key, status FROM sluice.units WHERE kind = 'partition' ORDER BY key"
    )
    assert dict(status)[KILLED_DAY] == "ingesting"

    again = sluice.run(*args, "--workers", "2", "--json", env=env)
    assert again.returncode == 0, describe(again)

    rows = query(
        database_url,
        "SELECT day::text, exports, output_rows FROM sluice.partitions ORDER BY day",
    )
    assert [r[0] for r in rows] == [f"2019-12-{d:02d}" for d in range(1, 11)]
    assert {r[1] for r in rows} == {1}  # each day's export committed once
    assert {r[2] for r in rows} == {50}
    loaded = query(
        database_url,
        "SELECT key, count(*) FROM sluice.units WHERE kind = 'partition' AND status = 'loaded' "
        "GROUP BY key",
    )
    assert {n for _, n in loaded} == {1} and len(loaded) == 10

    lake = Lake(LakeOptions(state / "lake"))
    try:
        table = lake.read("submission_date_aggregates")
    finally:
        lake.close()
    per_day = Counter(table.column("ds_nodash").to_pylist())
    assert per_day == {f"201912{d:02d}": 50 for d in range(1, 11)}
    with duckdb.connect(str(state / "warehouse.duckdb"), read_only=True) as conn:
        counted = conn.execute(
            "SELECT ds_nodash, count(*) FROM submission_date_aggregates GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [c[1] for c in counted] == [50] * 10
