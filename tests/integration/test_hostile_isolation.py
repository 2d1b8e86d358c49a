"""Hostile input, class 4: one bad thing never stops the others, and never as a traceback or a
hang — keys with control characters, a ledger connection killed mid-run, a table held by a
stalled session, a pattern built to backtrack, a run whose process died."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from sluice.api import Engine
from sluice.discovery import list_matching
from sluice.errors import ConfigError
from sluice.runtime.progress import Progress
from sluice.runtime.session import LedgerSession
from sluice.store import locate
from tests.integration.hostile import Conn, count, events_feed, loads, shard, write


def test_a_key_with_control_characters_fails_alone_and_says_so(
    engine: Engine, tmp_path: Path, db: Conn
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    write(bucket, "e-1.csv", shard(1))
    write(bucket, "e-2\t.csv", shard(2))  # matches no pattern: ignored like any other name
    write(bucket, "notes\nand more.txt", b"x")
    write(bucket, "e-3.csv", shard(3))
    tabbed = events_feed(str(bucket), pattern=r"e-\d+\t?\.csv")

    report = engine.run_feeds([tabbed])

    found = loads(db)
    assert found["e-1.csv"][0] == found["e-3.csv"][0] == "loaded"
    status, _, error = found["e-2\t.csv"]
    assert status == "errored"
    assert error == (
        f"{bucket.as_uri()}/e-2\\t.csv: the object's key holds a control character (a tab, a "
        "newline...); such keys are not loaded: rename the object"
    )
    assert count(db) == 200 and not report.feed_errors


class KillLedgerOnce(Progress):
    """Terminates the run's ledger connection when the first load is done, as a restarted
    server or a network cut would."""

    def __init__(self, admin: Conn) -> None:
        self.admin = admin
        self.done = False

    def finish(self, load_id: int, summary: str) -> None:
        if self.done:
            return
        self.done = True
        self.admin.execute(
            "SELECT pg_terminate_backend(owner_pid) FROM sluice.runs WHERE status = 'running'"
        )


def test_a_run_whose_ledger_connection_is_killed_carries_on(
    engine: Engine, tmp_path: Path, db: Conn
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    for n in range(1, 7):
        write(bucket, f"e-{n}.csv", shard(n))

    report = engine.run_feeds([events_feed(str(bucket))], progress=KillLedgerOnce(db))

    assert report.ok, report.as_dict()
    assert {status for status, _, _ in loads(db).values()} == {"loaded"}
    assert count(db) == 600
    [(status, loaded, error)] = db.execute(
        "SELECT status, loaded, error FROM sluice.runs"
    ).fetchall()
    assert (status, loaded, error) == ("succeeded", 6, None)


def test_a_table_held_by_a_stalled_session_fails_the_feed_naming_the_holder(
    engine: Engine, tmp_path: Path, db: Conn, database_url: str
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    write(bucket, "e-1.csv", shard(1))
    engine.run_feeds([events_feed(str(bucket), serving=True)])
    write(bucket, "e-2.csv", shard(2))
    with psycopg.connect(database_url) as stalled:  # a worker stopped (SIGSTOP) in its load
        stalled.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        pid = stalled.info.backend_pid
        started = time.monotonic()

        report = engine.run_feeds([events_feed(str(bucket), serving=True)])

        waited = time.monotonic() - started
    assert waited < 30, f"the run waited {waited:.0f} s"
    [failure] = report.feed_errors
    assert failure["feed"] == "events"
    assert failure["error"].startswith(
        "creating public.events: waited 10s for a lock on it; held by process "
        f"{pid} (unnamed, idle in transaction"
    )
    assert "LOCK TABLE events IN ACCESS EXCLUSIVE MODE" in failure["error"]
    assert "e-2.csv" not in loads(db)  # not scanned yet: the next run finds it

    again = engine.run_feeds([events_feed(str(bucket), serving=True)])
    assert again.ok and count(db) == 200


@pytest.mark.timeout(30)
def test_a_pattern_built_to_backtrack_matches_in_linear_time(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    write(bucket, "a" * 40, b"x")
    store, prefix = locate(str(bucket))
    started = time.monotonic()

    assert list_matching(store, prefix, "(a+)+b") == []

    assert time.monotonic() - started < 5


def test_a_pattern_the_linear_engine_cannot_run_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        events_feed(str(tmp_path), pattern=r"(e)-\1\.csv")
    assert str(refused.value).startswith(
        "feed 'events': pattern '(e)-\\\\1\\\\.csv' is not valid: invalid escape sequence: \\1"
    )
    assert "backreferences and lookaround are not supported" in str(refused.value)


def test_a_run_whose_process_died_shows_as_abandoned(engine: Engine, db: Conn) -> None:
    session = LedgerSession(engine.db, "killed import").start()
    db.execute("SELECT pg_terminate_backend(%s)", [session.conn.info.backend_pid])
    deadline = time.monotonic() + 10
    while db.execute(
        "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [session.conn.info.backend_pid]
    ).fetchone():
        assert time.monotonic() < deadline
        time.sleep(0.05)

    [run] = engine.status().runs

    assert (run.command, run.status) == ("killed import", "abandoned")
    assert run.error == "the process running it stopped before finishing"


def test_units_in_hand_show_owner_pid_and_age(engine: Engine, tmp_path: Path, db: Conn) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    write(bucket, "e-1.csv", shard(1))
    seen: list[object] = []

    class Look(Progress):
        def start(self, load_id: int, label: str, total_bytes: int) -> None:
            seen.extend(engine.status().leased)

    thread = threading.Thread(
        target=engine.run_feeds, args=([events_feed(str(bucket))],), kwargs={"progress": Look()}
    )
    thread.start()
    thread.join(60)

    [unit] = seen
    assert (unit.feed, unit.key, unit.status) == ("events", "e-1.csv", "ingesting")  # type: ignore[attr-defined]
    assert unit.owner.split(":")[1].isdigit() and unit.pid  # type: ignore[attr-defined]
    assert unit.owner_alive and not unit.stuck and unit.age_seconds >= 0  # type: ignore[attr-defined]
