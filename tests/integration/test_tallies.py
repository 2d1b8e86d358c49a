"""The work queue's running totals (``sluice.unit_tallies``) against a real PostgreSQL: after
any mix of statements on ``sluice.units`` (inserts, claims, heartbeats, finishes, errors,
retries, deletes, a truncate) and compactions at any moment, every figure read from the totals
equals the same figure counted from the units themselves."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import psycopg
import pytest

from sluice.ledger.repository import FeedRegistration, Ledger
from sluice.status import DURATION_BUCKETS, read_metrics, read_status

Conn = psycopg.Connection[tuple[object, ...]]
FEEDS = ("alpha", "beta", "gamma")


@pytest.fixture
def ledger(db: Conn) -> Ledger:
    return Ledger(db)


@pytest.fixture
def feed_ids(ledger: Ledger) -> list[int]:
    ids = []
    for name in FEEDS:
        target_id = ledger.upsert_target(f"public.{name}", {"name": name}, None)
        feed_id, _ = ledger.register_feed(
            FeedRegistration(
                name=name,
                kind="postgres",
                target_id=target_id,
                source_url=f"/data/{name}",
                pattern=".*",
                options={},
            )
        )
        ids.append(feed_id)
    return ids


def counted(db: Conn) -> dict[str, Any]:
    """The figures the totals stand for, counted from sluice.units."""
    units = {
        (str(f), str(k), str(s)): (int(n), int(r), int(b))
        for f, k, s, n, r, b in db.execute(
            "SELECT f.name, u.kind, u.status, count(*), sum(COALESCE(u.rows_in, 0)),"
            " sum(COALESCE(u.bytes_read, 0))"
            " FROM sluice.units u JOIN sluice.feeds f ON f.id = u.feed_id GROUP BY 1, 2, 3"
        ).fetchall()
    }
    durations: dict[tuple[str, float], list[float]] = defaultdict(list)
    for feed, seconds in db.execute(
        "SELECT f.name, EXTRACT(EPOCH FROM u.finished_at - u.started_at)::float8"
        " FROM sluice.units u JOIN sluice.feeds f ON f.id = u.feed_id"
        " WHERE u.status IN ('loaded', 'archived') AND u.started_at IS NOT NULL"
    ).fetchall():
        bound = min(b for b in DURATION_BUCKETS if b >= float(seconds))  # type: ignore[arg-type]
        durations[(str(feed), bound)].append(float(seconds))  # type: ignore[arg-type]
    return {"units": units, "durations": durations}


def tallied(ledger: Ledger) -> dict[str, Any]:
    units = {
        (str(r["feed"]), str(r["kind"]), str(r["status"])): (
            int(r["units"]),
            int(r["rows"]),
            int(r["bytes"]),
        )
        for r in ledger.metrics_units()
    }
    durations = {
        (str(r["feed"]), float(r["le"])): (int(r["units"]), float(r["seconds"]))
        for r in ledger.metrics_durations()
    }
    return {"units": units, "durations": durations}


def assert_same(db: Conn, ledger: Ledger) -> None:
    truth, totals = counted(db), tallied(ledger)
    assert totals["units"] == truth["units"]
    assert set(totals["durations"]) == set(truth["durations"])
    for key, seconds in truth["durations"].items():
        units, total = totals["durations"][key]
        assert units == len(seconds), key
        assert total == pytest.approx(sum(seconds), abs=1e-6), key
    by_status: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (feed, _kind, status), (n, _rows, _bytes) in truth["units"].items():
        by_status[feed][status] += n
    assert read_status(ledger).loads == by_status


def test_the_ledgers_duration_buckets_are_the_histograms(db: Conn) -> None:
    [(buckets,)] = db.execute("SELECT sluice.duration_buckets()").fetchall()
    assert tuple(buckets) == DURATION_BUCKETS  # type: ignore[arg-type]


def test_totals_follow_every_statement(db: Conn, ledger: Ledger, feed_ids: list[int]) -> None:
    rng = random.Random(20261201)
    serial = 0

    def insert(n: int) -> None:
        nonlocal serial
        rows = []
        for _ in range(n):
            serial += 1
            rows.append((rng.choice(feed_ids), f"k/{serial:06d}.csv"))
        with db.cursor() as cur:
            cur.executemany(
                "INSERT INTO sluice.units (kind, feed_id, store, key, version, size)"
                " VALUES ('load', %s, 'file:///data', %s, 'v1', 10)",
                rows,
            )

    def some(status: str, n: int) -> list[int]:
        ids = [
            int(i)  # type: ignore[call-overload]
            for (i,) in db.execute(
                "SELECT id FROM sluice.units WHERE status = %s ORDER BY id", [status]
            ).fetchall()
        ]
        return rng.sample(ids, min(n, len(ids)))

    def claim() -> None:
        db.execute(
            "UPDATE sluice.units SET status = 'ingesting', lease_owner = 'w',"
            " lease_until = now() + interval '5 minutes', started_at = now(),"
            " attempts = attempts + 1 WHERE id = ANY(%s)",
            [some("ready", rng.randint(1, 30))],
        )

    def heartbeat() -> None:
        db.execute(
            "UPDATE sluice.units SET lease_until = now() + interval '6 minutes'"
            " WHERE status = 'ingesting'"
        )

    def finish() -> None:
        for unit_id in some("ingesting", rng.randint(1, 20)):
            db.execute(
                "UPDATE sluice.units SET status = 'loaded', lease_owner = NULL,"
                " lease_until = NULL, rows_in = %s, bytes_read = %s,"
                " finished_at = started_at + make_interval(secs => %s) WHERE id = %s",
                [rng.randint(0, 10**6), rng.randint(0, 10**9), rng.uniform(0, 4000), unit_id],
            )

    def error() -> None:
        db.execute(
            "UPDATE sluice.units SET status = 'errored', lease_owner = NULL, lease_until = NULL,"
            " error = 'bad line', finished_at = now(), bytes_read = 7 WHERE id = ANY(%s)",
            [some("ingesting", rng.randint(1, 5))],
        )

    def retry() -> None:
        db.execute(
            "UPDATE sluice.units SET status = 'ready', error = NULL WHERE id = ANY(%s)",
            [some("errored", rng.randint(1, 5))],
        )

    def delete() -> None:
        db.execute(
            "DELETE FROM sluice.units WHERE id = ANY(%s)",
            [some(rng.choice(["ready", "loaded", "errored"]), rng.randint(1, 5))],
        )

    steps = [claim, claim, heartbeat, finish, finish, error, retry, delete]
    insert(200)
    assert_same(db, ledger)
    for round_no in range(60):
        rng.choice(steps)()
        if round_no % 7 == 0:
            insert(rng.randint(1, 40))
        if rng.random() < 0.3:
            ledger.compact_tallies()
        assert_same(db, ledger)

    # A transaction that rolls back leaves the totals as they were.
    with pytest.raises(RuntimeError, match="changed its mind"), db.transaction():
        insert(10)
        claim()
        raise RuntimeError("changed its mind")
    assert_same(db, ledger)

    db.execute("TRUNCATE sluice.units CASCADE")
    assert_same(db, ledger)
    insert(5)
    assert_same(db, ledger)


def test_compaction_leaves_one_row_per_group(db: Conn, ledger: Ledger, feed_ids: list[int]) -> None:
    for n in range(50):
        db.execute(
            "INSERT INTO sluice.units (kind, feed_id, store, key, version, size)"
            " VALUES ('load', %s, 'file:///data', %s, 'v1', 10)",
            [feed_ids[n % 2], f"k{n}"],
        )
    db.execute("UPDATE sluice.units SET status = 'ingesting' WHERE key LIKE 'k1%%'")
    [(before,)] = db.execute("SELECT count(*) FROM sluice.unit_tallies").fetchall()
    assert before > 4
    ledger.compact_tallies()
    groups = db.execute(
        "SELECT feed_id, status, units FROM sluice.unit_tallies ORDER BY 1, 2"
    ).fetchall()
    assert groups == [
        (feed_ids[0], "ingesting", 5),
        (feed_ids[0], "ready", 20),
        (feed_ids[1], "ingesting", 6),
        (feed_ids[1], "ready", 19),
    ]


def test_metrics_read_from_totals(db: Conn, ledger: Ledger, feed_ids: list[int]) -> None:
    db.execute(
        "INSERT INTO sluice.units (kind, feed_id, store, key, version, size, status,"
        " started_at, finished_at, rows_in, bytes_read)"
        " VALUES ('load', %s, 'file:///data', 'a', 'v1', 10, 'loaded',"
        " now() - interval '2 seconds', now(), 100, 1000),"
        " ('load', %s, 'file:///data', 'b', 'v1', 10, 'ready', NULL, NULL, NULL, NULL)",
        [feed_ids[0], feed_ids[0]],
    )
    metrics = read_metrics(ledger)
    assert [(r["status"], r["units"], r["rows"], r["bytes"]) for r in metrics.units] == [
        ("loaded", 1, 100, 1000),
        ("ready", 1, 0, 0),
    ]
    assert [(r["le"], r["units"]) for r in metrics.durations] == [(5.0, 1)]
    assert metrics.durations[0]["seconds"] == pytest.approx(2.0, abs=0.01)
    assert set(metrics.oldest) == {("alpha", "load")}
