"""An export declared in the project file (``[exports.NAME]``) runs on the runtime: ``sluice run
--once`` plans and exports its days, and Celery ``sluice worker`` processes take its
``partition`` units, each day exported once, published to the lake and the warehouse the
declaration names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pytest

from sluice.lake import Lake, LakeOptions
from tests.acceptance.conftest import Sluice, describe, query, scalar
from tests.acceptance.test_celery import worker_runs, workers
from tests.acceptance.test_runtime import stop, wait_for

START, END = "2019-12-01", "2019-12-05"
DAYS = [f"2019-12-0{d}" for d in range(1, 5)]
ROWS_PER_DAY = 2 * 20


def write_export_project(folder: Path) -> None:
    (folder / "sluice.toml").write_text(
        f"""
[exports.moz]
recipe = "mozagg"
type = "submission_date"
start = {START}
end = "{END}"
source_schema = "mozaggregator"
out_dir = "parquet"
lake = "lake"
warehouse = "moz.duckdb"
schedule = "1d"
""",
        encoding="utf-8",
    )


def generate(sluice: Sluice, env: dict[str, str]) -> None:
    sluice.ok(
        "mozagg",
        "generate",
        "--start",
        START,
        "--days",
        "5",  # the fifth day is past the declared end: never exported
        "--tables-per-day",
        "2",
        "--rows-per-table",
        "20",
        env=env,
    )


def assert_exported_once(db: str, folder: Path) -> None:
    rows = query(
        db,
        "SELECT p.day::text, p.exports, p.output_rows, p.outcome FROM sluice.partitions p "
        "JOIN sluice.feeds f ON f.id = p.feed_id WHERE f.name = 'moz' ORDER BY p.day",
    )
    assert rows == [(day, 1, ROWS_PER_DAY, "exported") for day in DAYS]
    assert sorted((folder / "parquet" / "submission_date").iterdir()) == [
        folder / "parquet" / "submission_date" / day.replace("-", "") for day in DAYS
    ]
    lake = Lake(LakeOptions(folder / "lake"))
    try:
        table = lake.read("submission_date_aggregates")
    finally:
        lake.close()
    expected = {day.replace("-", ""): ROWS_PER_DAY for day in DAYS}
    assert Counter(table.column("ds_nodash").to_pylist()) == expected
    with duckdb.connect(str(folder / "moz.duckdb"), read_only=True) as conn:
        counted = conn.execute(
            "SELECT ds_nodash, count(*) FROM submission_date_aggregates GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert dict(counted) == expected


def test_run_once_exports_the_declared_days(sluice: Sluice, tmp_path: Path) -> None:
    db = sluice.database_url
    assert db is not None
    env = {"SLUICE_STATE_DIR": str(tmp_path / "state")}
    write_export_project(tmp_path)
    generate(sluice, env)

    ran = sluice.run("run", "--once", "--json", env=env)
    assert ran.returncode == 0, describe(ran)
    assert_exported_once(db, tmp_path)
    statuses = query(
        db, "SELECT key, status FROM sluice.units WHERE kind = 'partition' ORDER BY key"
    )
    assert statuses == [(day, "loaded") for day in DAYS]

    # a second pass plans nothing new: every day was exported once
    again = sluice.run("run", "--once", "--json", env=env)
    assert again.returncode == 0, describe(again)
    assert_exported_once(db, tmp_path)
    assert scalar(db, "SELECT count(*) FROM sluice.units WHERE kind = 'partition'") == 4


@pytest.mark.slow
def test_celery_workers_take_partition_units(
    sluice: Sluice, tmp_path: Path, broker_env: dict[str, str]
) -> None:
    db = sluice.database_url
    assert db is not None
    env = {**broker_env, "SLUICE_STATE_DIR": str(tmp_path / "state")}
    write_export_project(tmp_path)
    generate(sluice, env)

    with workers(sluice, env, 2) as started:
        # the scheduler keeps running: a day whose publication met the other worker's (a
        # busy lake or warehouse file) is retried later, and handed out again by its ticks
        scheduler = sluice.start("scheduler", env=env)

        def done() -> bool:
            return (
                scalar(
                    db,
                    "SELECT count(*) FROM sluice.units WHERE kind = 'partition' "
                    "AND status = 'loaded'",
                )
                == 4
            )

        try:
            wait_for(done, "the four days to be exported by the workers", timeout=180)
        except AssertionError:
            logs = "\n".join(log.text()[-3000:] for _, log in started)
            raise AssertionError(f"the workers did not export the days:\n{logs}") from None
        finally:
            code, _ = stop(scheduler, 30)
        assert code == 0

    assert_exported_once(db, tmp_path)
    runs = worker_runs(db)
    by_run = dict(
        query(db, "SELECT run_id, count(*) FROM sluice.units WHERE kind = 'partition' GROUP BY 1")
    )
    assert set(by_run) <= set(runs) and sum(by_run.values()) == 4
