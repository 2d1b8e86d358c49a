"""Scale-out on Celery with real processes: ``sluice worker`` processes on a Redis broker,
``sluice scheduler`` handing them the work, one PostgreSQL ledger. Every unit is done exactly
once; a worker killed in the middle of a load loses nothing; an ordered feed stays in order."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.acceptance.conftest import FAULT, Sluice, describe, query, scalar
from tests.acceptance.feeds import TABLE, write_project, write_shard, write_sync
from tests.acceptance.test_runtime import Collector, assert_applied_in_key_order, loaded, wait_for

pytestmark = pytest.mark.slow

ROWS = 3_000


@contextmanager
def workers(
    sluice: Sluice, env: dict[str, str], count: int, extra: dict[str, str] | None = None
) -> Iterator[list[tuple[subprocess.Popen[str], Collector]]]:
    """`count` ``sluice worker`` processes, ready to take tasks; stopped (SIGTERM) afterwards."""
    started = []
    for _ in range(count):
        proc = sluice.start("worker", "--concurrency", "1", env={**env, **(extra or {})})
        started.append((proc, Collector(proc)))
    try:
        for _, log in started:
            wait_for(lambda log=log: log.has("ready."), "a worker to be ready")  # type: ignore[misc]
        yield started
    finally:
        for proc, _ in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in started:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def worker_runs(db: str) -> dict[int, str]:
    return dict(query(db, "SELECT id, owner FROM sluice.runs WHERE kind = 'worker'"))


def test_three_workers_load_every_shard_exactly_once(
    sluice: Sluice, tmp_path: Path, broker_env: dict[str, str]
) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = write_project(tmp_path)
    for shard in range(1, 31):
        write_shard(bucket, shard, ROWS)

    with workers(sluice, broker_env, 3) as started:
        scheduled = sluice.run("scheduler", "--once", "--json", env=broker_env)
        assert scheduled.returncode == 0, describe(scheduled)
        wait_for(lambda: loaded(db) == 30, "all 30 shards to load", timeout=120)
        pids = {proc.pid for proc, _ in started}

    assert scalar(db, f"SELECT count(*) FROM {TABLE}") == 30 * ROWS
    assert scalar(db, f"SELECT count(DISTINCT event_id) FROM {TABLE}") == 30 * ROWS
    assert query(db, "SELECT status, attempts, count(*) FROM sluice.loads GROUP BY 1, 2") == [
        ("loaded", 1, 30)
    ]
    # which worker did what: every load names the run of the worker process that did it
    runs = worker_runs(db)
    by_run = dict(query(db, "SELECT run_id, count(*) FROM sluice.loads GROUP BY 1"))
    assert set(by_run) <= set(runs) and sum(by_run.values()) == 30
    assert {int(owner.split(":")[1]) for owner in runs.values()} == pids
    assert len(by_run) >= 2, f"the work was not shared: {by_run}"
    assert query(db, "SELECT DISTINCT status FROM sluice.runs WHERE kind = 'worker'") == [
        ("succeeded",)
    ]
    per_run = dict(query(db, "SELECT id, loaded FROM sluice.runs WHERE kind = 'worker'"))
    assert {run: per_run[run] for run in by_run} == by_run


def test_a_worker_killed_in_a_load_loses_nothing(
    sluice: Sluice,
    tmp_path: Path,
    broker_env: dict[str, str],
    reference_database_url: str,
) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = write_project(tmp_path)
    for shard in range(1, 7):
        write_shard(bucket, shard, ROWS)
    env = {**broker_env, "SLUICE_LEASE_SECONDS": "5"}

    with workers(sluice, env, 1, {FAULT: "copy"}) as [(doomed, log)]:
        assert sluice.run("scheduler", "--once", env=env).returncode == 0
        wait_for(lambda: log.has("sluice-fault: paused at copy"), "the worker to pause in COPY")
        [(killed_id, key)] = query(
            db, "SELECT id, key FROM sluice.loads WHERE status = 'ingesting'"
        )
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(30)

    scheduler = sluice.start("scheduler", env=env)
    try:
        with workers(sluice, env, 1):
            wait_for(lambda: loaded(db) == 6, "the other worker to finish every shard", 120)
    finally:
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(30) == 0

    reference = sluice.with_database(reference_database_url)
    assert reference.run("run", "--once").returncode == 0
    ours = query(db, f"SELECT event_id, shard, value FROM {TABLE} ORDER BY event_id")
    theirs = query(
        reference_database_url, f"SELECT event_id, shard, value FROM {TABLE} ORDER BY event_id"
    )
    assert len(ours) == 6 * ROWS and ours == theirs
    assert query(db, "SELECT attempts FROM sluice.loads WHERE id = %s", [killed_id]) == [(2,)]
    others = query(
        db, "SELECT attempts, count(*) FROM sluice.loads WHERE id <> %s GROUP BY 1", [killed_id]
    )
    assert others == [(1, 5)], key
    statuses = dict(query(db, "SELECT owner, status FROM sluice.runs WHERE kind = 'worker'"))
    assert sorted(statuses.values()) == ["abandoned", "succeeded"]


def test_an_ordered_feed_is_applied_in_key_order_by_three_workers(
    sluice: Sluice, tmp_path: Path, broker_env: dict[str, str]
) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = write_project(tmp_path, ordered=True)
    shards = [4, 1, 9, 6, 2, 8, 3, 7]
    for shard in shards:
        write_shard(bucket, shard, ROWS)

    with workers(sluice, broker_env, 3):
        assert sluice.run("scheduler", "--once", env=broker_env).returncode == 0
        wait_for(lambda: loaded(db) == len(shards), "every shard to load", timeout=120)

    assert_applied_in_key_order(db, len(shards))
    assert scalar(db, f"SELECT count(*) FROM {TABLE}") == len(shards) * ROWS


def test_workers_sync_a_dataset(sluice: Sluice, tmp_path: Path, broker_env: dict[str, str]) -> None:
    db = sluice.database_url
    assert db is not None
    portal = tmp_path / "test-public-bucket"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "cryoet-test-files", portal)
    write_sync(tmp_path, portal)

    with workers(sluice, broker_env, 2):
        assert sluice.run("scheduler", "--once", env=broker_env).returncode == 0
        wait_for(
            lambda: scalar(db, "SELECT count(*) FROM sluice.units WHERE status = 'loaded'") == 1,
            "the dataset to sync",
        )

    assert query(db, "SELECT kind, key, status, attempts FROM sluice.units") == [
        ("sync", "30001/", "loaded", 1)
    ]
    assert scalar(db, "SELECT count(*) FROM cryoet.run") == 4
