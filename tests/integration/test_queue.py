"""The general work queue against a real PostgreSQL: lanes of any kind and status, per-feed
limits, ordered feeds, candidates handed to a broker, units in hand shown with their holder."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import psycopg
import pytest

from sluice.errors import IllegalTransition
from sluice.ledger.queue import LOAD, Lane, WorkQueue
from sluice.ledger.records import Counts, Discovered
from sluice.ledger.repository import FeedRegistration, Ledger
from sluice.ledger.states import Status

Conn = psycopg.Connection[tuple[object, ...]]
STORE = "file:///data/bucket"
LEASE = 300
#: A lane with other statuses, as the Incoming routing flow will have (a move that fails
#: goes back to wait for the next attempt: the state machine has no archiving → errored).
ARCHIVE = Lane(
    "load",
    ready=Status.READY_FOR_ARCHIVING,
    leased=Status.ARCHIVING,
    done=Status.ARCHIVED,
    failed=Status.READY_FOR_ARCHIVING,
)


def feed(ledger: Ledger, name: str, **limits: object) -> int:
    target = ledger.upsert_target(f"public.{name}", {}, None)
    feed_id, _ = ledger.register_feed(
        FeedRegistration(
            name=name,
            kind="postgres",
            target_id=target,
            source_url="/data",
            pattern=".*",
            options={},
            **limits,  # type: ignore[arg-type]
        )
    )
    return feed_id


def units(ledger: Ledger, feed_id: int, count: int, kind: str = "load") -> list[int]:
    found = [
        Discovered(f"k{i:03d}.csv", "v1", "v1", 10, datetime(2024, 1, 1, tzinfo=UTC))
        for i in range(count)
    ]
    return ledger.discover(kind, feed_id, STORE, found)


def claim(conn: Conn, lane: Lane, feed_ids: list[int], owner: str, limit: int = 10) -> list[str]:
    got = WorkQueue(conn).claim(
        lane, feed_ids, owner=owner, run_id=None, lease_seconds=LEASE, limit=limit
    )
    return [u.key for u in got]


def test_a_lane_must_follow_the_state_machine() -> None:
    with pytest.raises(IllegalTransition, match="from 'ready' to 'archived'"):
        Lane("load", ready=Status.READY, leased=Status.ARCHIVED, done=Status.LOADED)
    assert LOAD.blocking == ["ingesting", "ready"]
    assert str(ARCHIVE) == "load: ready_for_archiving → archiving → archived"


def test_a_lane_claims_only_its_own_status(db: Conn) -> None:
    ledger = Ledger(db)
    feed_id = feed(ledger, "routed")
    ids = units(ledger, feed_id, 3)
    db.execute("UPDATE sluice.units SET status = 'ingesting' WHERE id = ANY(%s)", [ids[:2]])
    db.execute(
        "UPDATE sluice.units SET status = 'ready_for_archiving' WHERE id = ANY(%s)", [ids[:2]]
    )

    assert claim(db, ARCHIVE, [feed_id], "archiver") == ["k000.csv", "k001.csv"]
    assert claim(db, LOAD, [feed_id], "loader") == ["k002.csv"]
    statuses = dict(db.execute("SELECT key, status FROM sluice.units").fetchall())
    assert statuses == {"k000.csv": "archiving", "k001.csv": "archiving", "k002.csv": "ingesting"}

    unit = WorkQueue(db).claim(ARCHIVE, [feed_id], owner="late", run_id=None, lease_seconds=LEASE)
    assert unit == []  # nothing left in ready_for_archiving
    queue = WorkQueue(db)
    held = queue.claim(LOAD, [feed_id], owner="x", run_id=None, lease_seconds=LEASE)
    assert held == []
    db.execute(
        "UPDATE sluice.units SET lease_until = now() - interval '1 s' WHERE id = %s", [ids[0]]
    )
    assert queue.reclaim_expired(ARCHIVE, [feed_id], max_attempts=3) == 1
    assert db.execute("SELECT status FROM sluice.units WHERE id = %s", [ids[0]]).fetchone() == (
        "ready_for_archiving",
    )


def test_other_kinds_of_units_share_the_queue_without_mixing(db: Conn) -> None:
    ledger = Ledger(db)
    feed_id = feed(ledger, "mixed")
    units(ledger, feed_id, 2, kind="partition")
    units(ledger, feed_id, 2)
    partitions = Lane("partition", ready=Status.READY, leased=Status.INGESTING, done=Status.LOADED)

    assert claim(db, partitions, [feed_id], "exporter") == ["k000.csv", "k001.csv"]
    assert claim(db, LOAD, [feed_id], "loader") == ["k000.csv", "k001.csv"]
    kinds = db.execute(
        "SELECT kind, lease_owner, count(*) FROM sluice.units GROUP BY 1, 2 ORDER BY 1"
    ).fetchall()
    assert kinds == [("load", "loader", 2), ("partition", "exporter", 2)]
    # the loads view shows the object versions only
    assert db.execute("SELECT count(*) FROM sluice.loads").fetchone() == (2,)


def test_a_feed_limit_caps_the_units_in_hand(db: Conn, database_url: str) -> None:
    ledger = Ledger(db)
    limited = feed(ledger, "limited", max_active=2)
    free = feed(ledger, "free")
    units(ledger, limited, 5)
    units(ledger, free, 5)

    first = WorkQueue(db).claim(
        LOAD, [limited, free], owner="w1", run_id=None, lease_seconds=LEASE, limit=20
    )
    by_feed = {f: sum(1 for u in first if u.feed_id == f) for f in (limited, free)}
    assert by_feed == {limited: 2, free: 5}
    assert claim(db, LOAD, [limited], "w2") == []
    done = next(u for u in first if u.feed_id == limited)
    WorkQueue(db).finish(done, LOAD, owner="w1", counts=Counts(rows_in=1), bytes_read=1)
    assert claim(db, LOAD, [limited], "w2") == ["k002.csv"]
    assert claim(db, LOAD, [limited], "w3") == []


def test_a_feed_limit_holds_under_concurrent_claims(db: Conn, database_url: str) -> None:
    ledger = Ledger(db)
    limited = feed(ledger, "contended", max_active=3)
    units(ledger, limited, 40)
    barrier = threading.Barrier(6)
    taken: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            barrier.wait(10)
            for _ in range(5):
                got = WorkQueue(conn).claim(
                    LOAD, [limited], owner="w", run_id=None, lease_seconds=LEASE, limit=2
                )
                with lock:
                    taken.extend(u.id for u in got)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(taken) == len(set(taken)) == 3
    assert db.execute(
        "SELECT count(*) FROM sluice.units WHERE status = 'ingesting'"
    ).fetchone() == (3,)


def test_an_ordered_feed_gives_out_one_unit_at_a_time_in_key_order(db: Conn) -> None:
    ledger = Ledger(db)
    ordered = feed(ledger, "changes", ordered=True)
    units(ledger, ordered, 3)
    queue = WorkQueue(db)

    first = queue.claim(LOAD, [ordered], owner="w1", run_id=None, lease_seconds=LEASE, limit=5)
    assert [u.key for u in first] == ["k000.csv"]
    assert claim(db, LOAD, [ordered], "w2") == []  # k001 waits for k000
    assert queue.candidates(LOAD, [ordered], quiet_seconds=60) == []

    # a transient failure with backoff keeps the unit first in line: k001 still waits
    assert queue.end_attempt(
        first[0], LOAD, owner="w1", status=Status.READY, error="later", delay_seconds=600
    )
    assert claim(db, LOAD, [ordered], "w2") == []

    db.execute("UPDATE sluice.units SET next_attempt_at = now() WHERE key = 'k000.csv'")
    again = queue.claim(LOAD, [ordered], owner="w1", run_id=None, lease_seconds=LEASE)
    assert [u.key for u in again] == ["k000.csv"]
    queue.finish(again[0], LOAD, owner="w1", counts=Counts(rows_in=1), bytes_read=1)
    assert claim(db, LOAD, [ordered], "w2") == ["k001.csv"]


def test_an_errored_unit_does_not_hold_back_an_ordered_feed(db: Conn) -> None:
    ledger = Ledger(db)
    ordered = feed(ledger, "changes", ordered=True)
    units(ledger, ordered, 2)
    queue = WorkQueue(db)
    (head,) = queue.claim(LOAD, [ordered], owner="w1", run_id=None, lease_seconds=LEASE)

    assert queue.end_attempt(head, LOAD, owner="w1", status=Status.ERRORED, error="bad file")

    assert claim(db, LOAD, [ordered], "w2") == ["k001.csv"]


def test_candidates_are_handed_out_once_per_quiet_period(db: Conn) -> None:
    ledger = Ledger(db)
    feed_id = feed(ledger, "brokered", max_active=2)
    ids = units(ledger, feed_id, 4)
    queue = WorkQueue(db)

    assert queue.candidates(LOAD, [feed_id], quiet_seconds=60) == ids[:2]
    assert queue.candidates(LOAD, [feed_id], quiet_seconds=60) == []
    db.execute("UPDATE sluice.units SET enqueued_at = now() - interval '2 minutes'")
    assert queue.candidates(LOAD, [feed_id], quiet_seconds=60) == ids[:2]
    # a worker claims the unit it was sent, by id
    (unit,) = queue.claim(
        LOAD, [feed_id], owner="w", run_id=None, lease_seconds=LEASE, unit_id=ids[1]
    )
    assert unit.id == ids[1]
    assert (
        queue.claim(LOAD, [feed_id], owner="w", run_id=None, lease_seconds=LEASE, unit_id=ids[1])
        == []
    )  # a second delivery of the same task claims nothing


def test_units_in_hand_show_their_holder_and_whether_it_is_gone(
    db: Conn, database_url: str
) -> None:
    ledger = Ledger(db)
    feed_id = feed(ledger, "held")
    units(ledger, feed_id, 2)
    with psycopg.connect(database_url, autocommit=True) as alive:
        claim(alive, LOAD, [feed_id], "alive-worker", limit=1)
        dying = psycopg.connect(database_url, autocommit=True)
        claim(dying, LOAD, [feed_id], "dead-worker", limit=1)
        pid = dying.info.backend_pid
        dying.close()
        deadline = datetime.now(UTC).timestamp() + 10
        while db.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert datetime.now(UTC).timestamp() < deadline

        held = {u.owner: u for u in ledger.leased_units()}

        assert set(held) == {"alive-worker", "dead-worker"}
        assert held["alive-worker"].owner_alive and not held["alive-worker"].stuck
        assert held["alive-worker"].pid == alive.info.backend_pid
        assert not held["dead-worker"].owner_alive and held["dead-worker"].stuck
        assert held["dead-worker"].pid == pid
        assert held["dead-worker"].age_seconds >= 0
        assert 290 < held["dead-worker"].lease_left_seconds <= 300
