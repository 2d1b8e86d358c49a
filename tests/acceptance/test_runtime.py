"""``sluice run``, the embedded service, as a real process: it loads what it finds, keeps
watching its feeds on their schedules, and stops cleanly on SIGTERM with nothing left in hand."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import FAULT, Sluice, describe, query, scalar
from tests.acceptance.feeds import TABLE, write_project, write_shard, write_sync

pytestmark = pytest.mark.slow

ROWS = 2_000
CRYOET_FILES = Path(__file__).resolve().parents[1] / "data" / "cryoet-test-files"
#: Seconds a test waits for the service to do something before it gives up.
DEADLINE = 60.0


def wait_for(check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> float:
    """Poll `check` until it holds; return the seconds it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def loaded(db: str) -> int:
    return int(scalar(db, "SELECT count(*) FROM sluice.loads WHERE status = 'loaded'"))


class Collector:
    """Reads a process's stderr in a thread, so that it never blocks on a full pipe."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        stream = proc.stderr
        self.thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.thread.start()

    def text(self) -> str:
        return "".join(self.lines)

    def has(self, fragment: str) -> bool:
        return any(fragment in line for line in list(self.lines))


def stop(proc: subprocess.Popen[str], timeout: float) -> tuple[int, float]:
    """SIGTERM `proc`; return its exit code and the seconds it took to exit."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the service did not exit within {timeout} s of SIGTERM")
    return code, time.monotonic() - started


def test_the_service_loads_a_new_file_within_the_feed_interval_and_stops_on_sigterm(
    sluice: Sluice, tmp_path: Path
) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = write_project(tmp_path, schedule="2s", serving=True)
    for shard in (1, 2):
        write_shard(bucket, shard, ROWS)
    out = (tmp_path / "run.out").open("w")
    proc = sluice.start("run", "--workers", "2", "--grace", "10", "--json", stdout=out)
    log = Collector(proc)
    try:
        wait_for(lambda: loaded(db) == 2, "the first two files to load")

        write_shard(bucket, 3, ROWS)
        waited = wait_for(lambda: loaded(db) == 3, "the new file to load")
        assert waited < 2.0 + 10.0, f"the new file took {waited:.1f} s to load"
        wait_for(lambda: scalar(db, "SELECT count(*) FROM view_events") == 3 * ROWS, "refresh")

        code, seconds = stop(proc, timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    log.thread.join(10)

    assert code == 0, log.text()
    assert seconds < 10, f"exit took {seconds:.1f} s"
    assert scalar(db, f"SELECT count(*) FROM {TABLE}") == 3 * ROWS
    assert query(db, "SELECT status, count(*) FROM sluice.loads GROUP BY 1") == [("loaded", 3)]
    [(status, kind, loaded_count, inserted, error)] = query(
        db, "SELECT status, kind, loaded, inserted, error FROM sluice.runs"
    )
    assert (status, kind, loaded_count, inserted, error) == (
        "succeeded",
        "service",
        3,
        3 * ROWS,
        None,
    )
    report: dict[str, Any] = json.loads((tmp_path / "run.out").read_text())
    assert (report["ok"], report["loaded"], report["stopped"]) == (True, 3, True)
    assert log.has("stopping")


def test_sigterm_returns_a_load_in_hand_to_the_queue_after_the_grace_period(
    sluice: Sluice, tmp_path: Path
) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = write_project(tmp_path, schedule="1h")
    write_shard(bucket, 1, ROWS)
    proc = sluice.start("run", "--grace", "2", env={FAULT: "copy"})
    log = Collector(proc)
    try:
        wait_for(lambda: log.has("sluice-fault: paused at copy"), "the load to pause in COPY")
        assert scalar(db, "SELECT status FROM sluice.loads") == "ingesting"

        code, seconds = stop(proc, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    log.thread.join(10)

    assert code == 0, log.text()
    assert seconds < 2 + 5 + 5, f"exit took {seconds:.1f} s"  # grace, cancel wait, slack
    [(status, attempts, error, owner)] = query(
        db, "SELECT status, attempts, error, lease_owner FROM sluice.loads"
    )
    assert (status, attempts, owner) == ("ready", 1, None)
    assert error == "the worker was stopped before it finished; returned to the queue"
    assert scalar(db, f"SELECT count(*) FROM {TABLE}") == 0
    assert scalar(db, "SELECT status FROM sluice.runs") == "succeeded"

    # the next pass loads it, at its second attempt
    again = sluice.run("run", "--once", "--json")
    assert again.returncode == 0, describe(again)
    assert query(db, "SELECT status, attempts FROM sluice.loads") == [("loaded", 2)]
    assert scalar(db, f"SELECT count(*) FROM {TABLE}") == ROWS


def test_an_ordered_feed_is_applied_in_key_order_by_three_worker_threads(
    sluice: Sluice, tmp_path: Path
) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = write_project(tmp_path, ordered=True)
    shards = [7, 3, 11, 1, 5, 9, 2, 8]
    for shard in shards:  # written out of order: the order is the keys'
        write_shard(bucket, shard, ROWS)

    result = sluice.run("run", "--once", "--workers", "3", "--json")

    assert result.returncode == 0, describe(result)
    assert_applied_in_key_order(db, len(shards))
    assert scalar(db, f"SELECT count(*) FROM {TABLE}") == len(shards) * ROWS


def assert_applied_in_key_order(db: str, count: int) -> None:
    """Each load of the feed started after the one before it (in key order) had finished."""
    rows = query(db, "SELECT key, status, started_at, finished_at FROM sluice.loads ORDER BY key")
    assert len(rows) == count and {status for _, status, _, _ in rows} == {"loaded"}
    for (before, _, _, finished), (after, _, started, _) in itertools.pairwise(rows):
        assert started >= finished, f"{after} started before {before} had finished"


def test_a_feed_limit_caps_the_loads_in_hand(sluice: Sluice, tmp_path: Path) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = write_project(tmp_path, max_active=2)
    for shard in range(1, 9):
        write_shard(bucket, shard, ROWS * 5)

    result = sluice.run("run", "--once", "--workers", "4", "--json")

    assert result.returncode == 0, describe(result)
    spans = query(db, "SELECT started_at, finished_at FROM sluice.loads")
    assert len(spans) == 8
    most = max(sum(1 for s, f in spans if s <= moment < f) for moment, _ in spans)
    assert most <= 2, f"{most} loads of the feed were in hand at once"
    assert scalar(db, f"SELECT count(*) FROM {TABLE}") == 8 * ROWS * 5


def test_the_service_runs_table_feeds_and_syncs_together(sluice: Sluice, tmp_path: Path) -> None:
    db = sluice.database_url
    assert db is not None
    bucket = write_project(tmp_path)
    write_shard(bucket, 1, ROWS)
    portal = tmp_path / "test-public-bucket"
    shutil.copytree(CRYOET_FILES, portal)
    write_sync(tmp_path, portal)

    result = sluice.run("run", "--once", "--workers", "2", "--json")

    assert result.returncode == 0, describe(result)
    assert query(db, "SELECT kind, key, status FROM sluice.units ORDER BY kind, key") == [
        ("load", "e-0001.csv", "loaded"),
        ("sync", "30001/", "loaded"),
    ]
    assert scalar(db, "SELECT count(*) FROM cryoet.run") == 4
    assert scalar(db, f"SELECT count(*) FROM {TABLE}") == ROWS
    feeds = json.loads(sluice.ok("feeds", "list", "--json").stdout)
    assert sorted((f["name"], f["kind"]) for f in feeds) == [
        ("events", "postgres"),
        ("portal", "sync"),
    ]
