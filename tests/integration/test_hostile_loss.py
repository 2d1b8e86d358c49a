"""Hostile input, class 1: silent loss. A version present in its source and not loaded always
ends up loaded or visibly errored; a retry can requeue any version that is not loaded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from sluice.api import Engine, open_engine
from sluice.config import S3Options, Settings
from sluice.runtime.session import LedgerSession
from tests.fixtures.fix_s3 import s3_client
from tests.integration.hostile import Conn, count, events_feed, loads, shard


@pytest.fixture
def s3_engine(settings: Settings, s3_options: S3Options) -> Iterator[Engine]:
    with open_engine(settings=replace(settings, s3=s3_options)) as opened:
        yield opened


def scan_only(engine: Engine, source: str) -> None:
    """What a run killed right after its scan leaves: the versions recorded, none loaded."""
    with LedgerSession(engine.db, "killed after its scan") as session:
        engine.flow.scan(
            session.ledger(), engine.flow.register(session.ledger(), events_feed(source))
        )


def test_a_version_that_vanished_and_came_back_byte_identical_is_loaded(
    s3_engine: Engine, s3_endpoint: str, s3_bucket: str, db: Conn
) -> None:
    client: Any = s3_client(s3_endpoint)
    source = f"s3://{s3_bucket}/in"
    for n in (1, 2):
        client.put_object(Bucket=s3_bucket, Key=f"in/e-{n}.csv", Body=shard(n))
    scan_only(s3_engine, source)
    client.delete_object(Bucket=s3_bucket, Key="in/e-1.csv")

    first = s3_engine.run_feeds([events_feed(source)])

    assert loads(db)["in/e-1.csv"][0] == "superseded"  # gone while the run wanted it
    assert (first.discovered, count(db)) == (0, 100)

    client.put_object(Bucket=s3_bucket, Key="in/e-1.csv", Body=shard(1))  # the same bytes
    second = s3_engine.run_feeds([events_feed(source)])

    assert second.ok and second.discovered == 1
    assert loads(db) == {
        "in/e-1.csv": ("loaded", 1, None),
        "in/e-2.csv": ("loaded", 1, None),
    }
    assert count(db) == 200


def test_retry_requeues_a_superseded_version_by_id(engine: Engine, tmp_path: Any, db: Conn) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "e-1.csv").write_bytes(shard(1))
    scan_only(engine, str(bucket))
    held = (bucket / "e-1.csv").read_bytes()
    (bucket / "e-1.csv").unlink()
    engine.run_feeds([events_feed(str(bucket))])
    [(load_id, status)] = db.execute("SELECT id, status FROM sluice.loads").fetchall()
    assert status == "superseded"
    assert engine.retry(feeds=["events"]) == []  # by feed: errored loads only

    (bucket / "e-1.csv").write_bytes(held)
    assert engine.retry(load_ids=[load_id]) == [load_id]

    assert db.execute("SELECT status, attempts FROM sluice.loads").fetchall() == [("ready", 0)]
