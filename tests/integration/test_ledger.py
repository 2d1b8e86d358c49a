"""The ledger against a real PostgreSQL: migrations, the transition trigger, claims with
FOR UPDATE SKIP LOCKED, leases (expired, or held by a dead worker), discovery of versions and
retries."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import psycopg
import pytest

from sluice.config import Settings
from sluice.db import Database
from sluice.db.migrate import available, migrate
from sluice.errors import IllegalTransition, LeaseLost
from sluice.ledger.queue import LOAD, WorkQueue
from sluice.ledger.records import Counts, Discovered, Unit
from sluice.ledger.repository import FeedRegistration, Ledger
from sluice.ledger.states import Status, check, edges
from tests.fixtures.fix_db import fresh_database

Conn = psycopg.Connection[tuple[object, ...]]
STORE = "file:///data/bucket"
LEASE = 300


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A fresh database on which no migration ran."""
    with fresh_database(server_url, "sluice_e") as url:
        yield url


@pytest.fixture
def ledger(db: Conn) -> Ledger:
    return Ledger(db)


@pytest.fixture
def feed_ids(ledger: Ledger) -> tuple[int, int]:
    """A registered feed: (table id, target id)."""
    target_id = ledger.upsert_target("public.events", {"name": "events"}, None)
    table_id = register(ledger, "events", target_id, "/data/bucket")
    return table_id, target_id


@pytest.fixture
def table_id(feed_ids: tuple[int, int]) -> int:
    return feed_ids[0]


@pytest.fixture
def run_id(ledger: Ledger) -> int:
    return ledger.start_run("test", "tester")


def register(ledger: Ledger, name: str, target_id: int, source: str) -> int:
    feed_id, _ = ledger.register_feed(
        FeedRegistration(
            name=name,
            kind="postgres",
            target_id=target_id,
            source_url=source,
            pattern=".*",
            options={},
        )
    )
    return feed_id


def queue(ledger: Ledger | Conn) -> WorkQueue:
    return WorkQueue(ledger.conn if isinstance(ledger, Ledger) else ledger)


def objects(*keys: str, version: str = "v1") -> list[Discovered]:
    return [Discovered(key, version, version, 10, datetime(2024, 1, 1, tzinfo=UTC)) for key in keys]


def status_of(db: Conn, load_id: int) -> tuple[object, ...]:
    row = db.execute(
        "SELECT status, attempts, error, lease_owner FROM sluice.loads WHERE id = %s", [load_id]
    ).fetchone()
    assert row is not None
    return row


def claim_one(ledger: Ledger, table_id: int, run_id: int, owner: str) -> Unit:
    claims = queue(ledger).claim(
        LOAD, [table_id], owner=owner, run_id=run_id, limit=1, lease_seconds=LEASE
    )
    assert len(claims) == 1
    return claims[0]


def expire(db: Conn, load_id: int) -> None:
    db.execute(
        "UPDATE sluice.loads SET lease_until = now() - interval '1 second' WHERE id = %s",
        [load_id],
    )


def finish(ledger: Ledger, claim: Unit, owner: str, target_id: int) -> None:
    assert target_id  # the unit's feed names its target: finishing it marks the target changed
    queue(ledger).finish(
        claim, LOAD, owner=owner, counts=Counts(rows_in=5, inserted=5), bytes_read=10
    )


# -- migrations ----------------------------------------------------------------------------------


def test_migrations_apply_once(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        first = migrate(conn)
        second = migrate(conn)
        recorded = conn.execute("SELECT version, name FROM sluice.migrations ORDER BY 1").fetchall()
        transitions = conn.execute(
            "SELECT from_status, to_status FROM sluice.transitions ORDER BY 1, 2"
        ).fetchall()

    assert [m.version for m in first] == [m.version for m in available()]
    assert first and first[0].version == 1
    assert second == []
    assert recorded == [(m.version, m.name) for m in available()]
    assert transitions == edges()


def test_migrate_restores_the_transition_table(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM sluice.transitions WHERE from_status = 'errored'")
        conn.execute("INSERT INTO sluice.transitions VALUES ('loaded', 'ready')")

        assert migrate(conn) == []

        found = conn.execute(
            "SELECT from_status, to_status FROM sluice.transitions ORDER BY 1, 2"
        ).fetchall()
    assert found == edges()


def _open_database(url: str, barrier: Barrier, results: Queue[str]) -> None:
    """Run in a child process: start sluice on `url` at the same moment as its sibling."""
    try:
        barrier.wait(timeout=60)
        Database.open(Settings(database_url=url).database).close()
        results.put("ok")
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_two_processes_starting_at_once_migrate_exactly_once(empty_database_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results: Queue[str] = ctx.Queue()
    procs = [
        ctx.Process(target=_open_database, args=(empty_database_url, barrier, results))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)

    assert outcomes == ["ok", "ok"]
    assert [proc.exitcode for proc in procs] == [0, 0]
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        recorded = conn.execute("SELECT version, name FROM sluice.migrations ORDER BY 1").fetchall()
        transitions = conn.execute(
            "SELECT from_status, to_status FROM sluice.transitions ORDER BY 1, 2"
        ).fetchall()
        assert migrate(conn) == []
    assert recorded == [(m.version, m.name) for m in available()]
    assert transitions == edges()


# -- the transition trigger ----------------------------------------------------------------------


def test_illegal_transition_is_refused_in_python_and_by_the_database(
    ledger: Ledger, db: Conn, feed_ids: tuple[int, int], run_id: int
) -> None:
    table_id, target_id = feed_ids
    (load_id,) = ledger.discover("load", table_id, STORE, objects("a.csv"))
    claim = claim_one(ledger, table_id, run_id, "w1")
    finish(ledger, claim, "w1", target_id)
    assert status_of(db, load_id)[0] == "loaded"

    with pytest.raises(IllegalTransition, match="from 'loaded' to 'ready'"):
        check("loaded", "ready")
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        db.execute("UPDATE sluice.loads SET status = 'ready' WHERE id = %s", [load_id])

    assert f"illegal load transition loaded -> ready (load {load_id})" in str(refused.value)
    assert status_of(db, load_id)[0] == "loaded"


def test_the_trigger_refuses_skipping_a_step_and_allows_legal_edges(
    ledger: Ledger, db: Conn, table_id: int
) -> None:
    (load_id,) = ledger.discover("load", table_id, STORE, objects("a.csv"))

    with pytest.raises(psycopg.errors.CheckViolation, match="ready -> loaded"):
        db.execute("UPDATE sluice.loads SET status = 'loaded' WHERE id = %s", [load_id])
    with pytest.raises(psycopg.errors.CheckViolation, match="ready -> bogus"):
        db.execute("UPDATE sluice.loads SET status = 'bogus' WHERE id = %s", [load_id])

    db.execute("UPDATE sluice.loads SET status = 'ready_for_ingesting' WHERE id = %s", [load_id])
    db.execute("UPDATE sluice.loads SET status = 'ingesting' WHERE id = %s", [load_id])
    db.execute("UPDATE sluice.loads SET status = 'errored' WHERE id = %s", [load_id])
    db.execute("UPDATE sluice.loads SET status = 'ready' WHERE id = %s", [load_id])
    assert status_of(db, load_id)[0] == "ready"


# -- claims --------------------------------------------------------------------------------------


def test_claim_takes_ready_loads_in_key_order_and_leases_them(
    ledger: Ledger, db: Conn, table_id: int, run_id: int
) -> None:
    ids = ledger.discover("load", table_id, STORE, objects("c.csv", "a.csv", "b.csv"))

    claims = queue(ledger).claim(
        LOAD, [table_id], owner="w1", run_id=run_id, limit=2, lease_seconds=LEASE
    )

    assert [c.key for c in claims] == ["a.csv", "b.csv"]
    assert all(c.attempts == 1 and c.store == STORE and c.version == "v1" for c in claims)
    assert claims[0].uri == f"{STORE}/a.csv"
    assert len(ids) == 3
    row = db.execute(
        "SELECT status, lease_owner, lease_pid, run_id, "
        "lease_until BETWEEN now() + interval '290 seconds' AND now() + interval '301 seconds' "
        "FROM sluice.loads WHERE id = %s",
        [claims[0].load_id],
    ).fetchone()
    assert row == ("ingesting", "w1", db.info.backend_pid, run_id, True)
    # nothing claimable is claimed twice
    rest = queue(ledger).claim(
        LOAD, [table_id], owner="w2", run_id=run_id, limit=10, lease_seconds=LEASE
    )
    assert [c.key for c in rest] == ["c.csv"]
    assert (
        queue(ledger).claim(
            LOAD, [table_id], owner="w3", run_id=run_id, limit=10, lease_seconds=LEASE
        )
        == []
    )


def test_claims_skip_rows_locked_by_another_claim(
    ledger: Ledger, database_url: str, table_id: int, run_id: int
) -> None:
    ids = ledger.discover("load", table_id, STORE, objects(*(f"k{i:02d}.csv" for i in range(10))))

    with (
        psycopg.connect(database_url) as first,  # a transaction, not committed yet
        psycopg.connect(database_url, autocommit=True) as second,
    ):
        second.execute("SET lock_timeout = '2s'")  # waiting on a lock would fail the test
        held = queue(Ledger(first)).claim(
            LOAD, [table_id], owner="w1", run_id=run_id, limit=4, lease_seconds=LEASE
        )
        started = time.monotonic()
        others = queue(Ledger(second)).claim(
            LOAD, [table_id], owner="w2", run_id=run_id, limit=100, lease_seconds=LEASE
        )
        waited = time.monotonic() - started
        first.commit()
        after = queue(Ledger(second)).claim(
            LOAD, [table_id], owner="w3", run_id=run_id, limit=100, lease_seconds=LEASE
        )

    assert waited < 1.5
    assert len(held) == 4 and len(others) == 6 and after == []
    assert {c.load_id for c in held}.isdisjoint(c.load_id for c in others)
    assert {c.load_id for c in held} | {c.load_id for c in others} == set(ids)


def test_concurrent_claims_never_share_a_load(
    ledger: Ledger, database_url: str, table_id: int, run_id: int, db: Conn
) -> None:
    ids = ledger.discover("load", table_id, STORE, objects(*(f"k{i:03d}.csv" for i in range(300))))
    workers = 4
    barrier = threading.Barrier(workers)
    taken: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(owner: str) -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                mine = Ledger(conn)
                got: list[int] = []
                barrier.wait(10)
                while claims := queue(mine).claim(
                    LOAD, [table_id], owner=owner, run_id=run_id, limit=3, lease_seconds=LEASE
                ):
                    got.extend(c.load_id for c in claims)
                taken[owner] = got
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    claimed = [load_id for got in taken.values() for load_id in got]
    assert len(claimed) == len(set(claimed)) == 300
    assert set(claimed) == set(ids)
    assert sum(1 for got in taken.values() if got) >= 2  # they really ran side by side
    by_owner = {
        owner: count
        for owner, count in db.execute(
            "SELECT lease_owner, count(*) FROM sluice.loads WHERE status = 'ingesting' GROUP BY 1"
        )
    }
    assert by_owner == {owner: len(got) for owner, got in taken.items() if got}


# -- leases --------------------------------------------------------------------------------------


def test_a_live_lease_is_not_reclaimed(
    ledger: Ledger, db: Conn, table_id: int, run_id: int
) -> None:
    (load_id,) = ledger.discover("load", table_id, STORE, objects("a.csv"))
    claim_one(ledger, table_id, run_id, "w1")

    assert queue(ledger).reclaim_expired(LOAD, [table_id], max_attempts=3) == 0
    assert status_of(db, load_id) == ("ingesting", 1, None, "w1")


def test_an_expired_lease_returns_the_load_then_errors_it_after_max_attempts(
    ledger: Ledger, db: Conn, table_id: int, run_id: int
) -> None:
    (load_id,) = ledger.discover("load", table_id, STORE, objects("a.csv"))

    for attempt in (1, 2):
        claim = claim_one(ledger, table_id, run_id, f"w{attempt}")
        assert claim.attempts == attempt
        expire(db, load_id)

        assert queue(ledger).reclaim_expired(LOAD, [table_id], max_attempts=3) == 1
        assert status_of(db, load_id) == (
            "ready",
            attempt,
            f"worker w{attempt} stopped; returned to the queue",
            None,
        )

    claim = claim_one(ledger, table_id, run_id, "w3")
    assert claim.attempts == 3
    expire(db, load_id)

    assert queue(ledger).reclaim_expired(LOAD, [table_id], max_attempts=3) == 1
    assert status_of(db, load_id) == (
        "errored",
        3,
        "abandoned after 3 attempts: the worker holding it stopped (last owner w3)",
        None,
    )
    finished = db.execute(
        "SELECT finished_at IS NOT NULL, lease_until, lease_pid FROM sluice.loads WHERE id = %s",
        [load_id],
    ).fetchone()
    assert finished == (True, None, None)
    assert (
        queue(ledger).claim(
            LOAD, [table_id], owner="w4", run_id=run_id, limit=1, lease_seconds=LEASE
        )
        == []
    )


def test_reclaim_only_touches_the_feeds_it_is_given(
    ledger: Ledger, db: Conn, feed_ids: tuple[int, int], run_id: int
) -> None:
    table_id, target_id = feed_ids
    other = register(ledger, "other", target_id, "/x")
    (load_id,) = ledger.discover("load", other, STORE, objects("a.csv"))
    claim_one(ledger, other, run_id, "w1")
    expire(db, load_id)

    assert queue(ledger).reclaim_expired(LOAD, [table_id], max_attempts=3) == 0
    assert status_of(db, load_id)[0] == "ingesting"
    assert queue(ledger).reclaim_expired(LOAD, [other], max_attempts=3) == 1


def test_a_dead_workers_claim_is_reclaimed_before_its_lease_expires(
    ledger: Ledger, db: Conn, database_url: str, table_id: int, run_id: int
) -> None:
    (load_id,) = ledger.discover("load", table_id, STORE, objects("a.csv"))
    worker = psycopg.connect(database_url, autocommit=True)
    claim_one(Ledger(worker), table_id, run_id, "dying")
    pid = worker.info.backend_pid
    worker.close()  # the worker process died: its connection is gone
    deadline = time.monotonic() + 10
    while db.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() != (
        0,
    ):
        assert time.monotonic() < deadline, "the closed connection's backend did not go away"
        time.sleep(0.05)
    lease = db.execute(
        "SELECT lease_until > now() + interval '200 seconds' FROM sluice.loads WHERE id = %s",
        [load_id],
    ).fetchone()
    assert lease == (True,)  # far from expired

    assert queue(ledger).reclaim_expired(LOAD, [table_id], max_attempts=3) == 1

    assert status_of(db, load_id) == (
        "ready",
        1,
        "worker dying stopped; returned to the queue",
        None,
    )
    assert claim_one(ledger, table_id, run_id, "next").attempts == 2


def test_finish_by_a_worker_that_lost_its_lease_raises_lease_lost(
    ledger: Ledger, db: Conn, feed_ids: tuple[int, int], run_id: int
) -> None:
    table_id, target_id = feed_ids
    (load_id,) = ledger.discover("load", table_id, STORE, objects("a.csv"))
    slow = claim_one(ledger, table_id, run_id, "slow")
    expire(db, load_id)
    assert queue(ledger).reclaim_expired(LOAD, [table_id], max_attempts=3) == 1
    fast = claim_one(ledger, table_id, run_id, "fast")

    with pytest.raises(LeaseLost) as lost:
        finish(ledger, slow, "slow", target_id)

    assert str(lost.value) == (
        f"load {load_id} ({STORE}/a.csv) is no longer owned by slow: its lease expired and "
        "another worker took it; this attempt is rolled back"
    )
    status, attempts, _, owner = status_of(db, load_id)
    assert (status, attempts, owner) == ("ingesting", 2, "fast")
    assert not queue(ledger).end_attempt(
        slow, LOAD, owner="slow", status=Status.READY, error="late"
    )
    assert status_of(db, load_id) == (status, attempts, _, owner)

    finish(ledger, fast, "fast", target_id)
    assert db.execute(
        "SELECT status, rows_in, rows_inserted FROM sluice.loads WHERE id = %s", [load_id]
    ).fetchone() == ("loaded", 5, 5)
    assert db.execute(
        "SELECT changes_seq FROM sluice.targets WHERE id = %s", [target_id]
    ).fetchone() == (1,)


# -- discovery -----------------------------------------------------------------------------------


def test_discover_records_each_version_once(ledger: Ledger, db: Conn, table_id: int) -> None:
    first = ledger.discover("load", table_id, STORE, objects("a.csv", "b.csv"))
    second = ledger.discover("load", table_id, STORE, objects("a.csv", "b.csv"))
    mixed = ledger.discover("load", table_id, STORE, objects("b.csv", "c.csv"))

    assert len(first) == 2
    assert second == []
    assert len(mixed) == 1
    assert ledger.discover("load", table_id, STORE, []) == []
    rows = db.execute(
        "SELECT key, version, etag, size, status FROM sluice.loads ORDER BY key"
    ).fetchall()
    assert rows == [
        ("a.csv", "v1", "v1", 10, "ready"),
        ("b.csv", "v1", "v1", 10, "ready"),
        ("c.csv", "v1", "v1", 10, "ready"),
    ]


def test_a_newer_version_supersedes_a_waiting_older_one(
    ledger: Ledger, db: Conn, table_id: int
) -> None:
    (old,) = ledger.discover("load", table_id, STORE, objects("a.csv", version="v1"))
    (kept,) = ledger.discover("load", table_id, STORE, objects("b.csv", version="v1"))

    (new,) = ledger.discover("load", table_id, STORE, objects("a.csv", version="v2"))

    assert status_of(db, old)[:3] == (
        "superseded",
        0,
        f"a newer version of the object was discovered (load {new})",
    )
    assert status_of(db, new)[0] == "ready"
    assert status_of(db, kept)[0] == "ready"
    # a listing that shows the old version again (the object reverted to it) brings it back,
    # and it is the newer waiting version that no longer matters
    assert ledger.discover("load", table_id, STORE, objects("a.csv", version="v1")) == [old]
    assert status_of(db, old)[:3] == ("ready", 0, None)
    assert status_of(db, new)[:3] == (
        "superseded",
        0,
        f"a newer version of the object was discovered (load {old})",
    )
    # the same listing again changes nothing
    assert ledger.discover("load", table_id, STORE, objects("a.csv", version="v1")) == []


def test_a_newer_version_supersedes_an_errored_one_keeping_its_error(
    ledger: Ledger, db: Conn, table_id: int, run_id: int
) -> None:
    (old,) = ledger.discover("load", table_id, STORE, objects("a.csv", version="v1"))
    claim = claim_one(ledger, table_id, run_id, "w1")
    assert queue(ledger).end_attempt(
        claim, LOAD, owner="w1", status=Status.ERRORED, error="line 2: bad"
    )

    (new,) = ledger.discover("load", table_id, STORE, objects("a.csv", version="v2"))

    assert status_of(db, old)[:3] == ("superseded", 1, "line 2: bad")
    assert status_of(db, new)[0] == "ready"
    assert queue(ledger).retry(LOAD) == []  # nothing errored is left to retry


def test_a_newer_version_leaves_loaded_and_running_loads_alone(
    ledger: Ledger, db: Conn, feed_ids: tuple[int, int], run_id: int
) -> None:
    table_id, target_id = feed_ids
    (done,) = ledger.discover("load", table_id, STORE, objects("a.csv", version="v1"))
    finish(ledger, claim_one(ledger, table_id, run_id, "w1"), "w1", target_id)
    (running,) = ledger.discover("load", table_id, STORE, objects("b.csv", version="v1"))
    claim_one(ledger, table_id, run_id, "w1")

    ledger.discover("load", table_id, STORE, [*objects("a.csv", "b.csv", version="v2")])

    assert status_of(db, done)[0] == "loaded"
    assert status_of(db, running)[0] == "ingesting"


def test_a_version_that_vanished_and_came_back_is_loaded_again(
    ledger: Ledger, db: Conn, feed_ids: tuple[int, int], run_id: int
) -> None:
    table_id, _ = feed_ids
    (load_id,) = ledger.discover("load", table_id, STORE, objects("a.csv"))
    claim = claim_one(ledger, table_id, run_id, "w1")
    # the object was deleted while it was being read
    assert queue(ledger).end_attempt(
        claim, LOAD, owner="w1", status=Status.SUPERSEDED, error="a.csv does not exist"
    )

    # it is uploaded again, byte for byte: same etag, same version
    assert ledger.discover("load", table_id, STORE, objects("a.csv")) == [load_id]

    assert status_of(db, load_id) == ("ready", 0, None, None)
    again = claim_one(ledger, table_id, run_id, "w2")
    assert (again.id, again.attempts) == (load_id, 1)


def test_retry_by_id_requeues_a_superseded_version(
    ledger: Ledger, db: Conn, table_id: int, run_id: int
) -> None:
    (load_id,) = ledger.discover("load", table_id, STORE, objects("a.csv"))
    claim = claim_one(ledger, table_id, run_id, "w1")
    assert queue(ledger).end_attempt(
        claim, LOAD, owner="w1", status=Status.SUPERSEDED, error="gone"
    )
    assert queue(ledger).retry(LOAD, feed_names=["events"]) == []  # errored only, by feed

    retried = queue(ledger).retry(
        LOAD, unit_ids=[load_id], statuses=(Status.ERRORED, Status.SUPERSEDED)
    )

    assert retried == [load_id]
    assert status_of(db, load_id) == ("ready", 0, None, None)


def test_the_same_key_in_another_feed_is_a_separate_load(
    ledger: Ledger, db: Conn, feed_ids: tuple[int, int]
) -> None:
    table_id, target_id = feed_ids
    other = register(ledger, "other", target_id, "/x")
    (first,) = ledger.discover("load", table_id, STORE, objects("a.csv", version="v1"))

    assert len(ledger.discover("load", other, STORE, objects("a.csv", version="v2"))) == 1
    assert status_of(db, first)[0] == "ready"


# -- retries -------------------------------------------------------------------------------------


def test_retry_errored_puts_errored_loads_back_to_ready(
    ledger: Ledger, db: Conn, feed_ids: tuple[int, int], run_id: int
) -> None:
    table_id, target_id = feed_ids
    other = register(ledger, "other", target_id, "/x")
    bad_a, bad_b, fine = ledger.discover(
        "load", table_id, STORE, objects("a.csv", "b.csv", "c.csv")
    )
    (bad_other,) = ledger.discover("load", other, STORE, objects("z.csv"))
    for feed in (table_id, table_id, other):
        claim = claim_one(ledger, feed, run_id, "w1")
        assert queue(ledger).end_attempt(
            claim,
            LOAD,
            owner="w1",
            status=Status.ERRORED,
            error="line 3: bad value",
            detail={"line": 3},
        )
    assert {status_of(db, i)[0] for i in (bad_a, bad_b, bad_other)} == {"errored"}

    retried = queue(ledger).retry(LOAD, feed_names=["events"])

    assert sorted(retried) == [bad_a, bad_b]
    for load_id in (bad_a, bad_b):
        assert status_of(db, load_id) == ("ready", 0, None, None)
        assert db.execute(
            "SELECT error_detail, finished_at FROM sluice.loads WHERE id = %s", [load_id]
        ).fetchone() == (None, None)
    assert status_of(db, fine)[0] == "ready"
    assert status_of(db, bad_other)[0] == "errored"
    assert queue(ledger).retry(LOAD, unit_ids=[bad_a]) == []  # no longer errored

    assert queue(ledger).retry(LOAD) == [bad_other]
    assert queue(ledger).retry(LOAD) == []
    again = queue(ledger).claim(
        LOAD, [table_id], owner="w2", run_id=run_id, limit=10, lease_seconds=LEASE
    )
    assert sorted(c.load_id for c in again) == [bad_a, bad_b, fine]
    assert {c.attempts for c in again} == {1}
