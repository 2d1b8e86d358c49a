"""Hostile input, class 6: the small ones — a run's counts of a load retried within it, an
empty bucket name, loads and feeds that do not exist."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from sluice import render
from sluice.api import Engine
from sluice.errors import ConfigError
from sluice.faults import UNREADABLE
from sluice.load import repository
from sluice.recipes.cryoet import api as cryoet
from tests.integration.hostile import Conn, events_feed, shard, write


def test_a_load_retried_within_a_run_counts_once_with_its_attempts(
    engine: Engine, tmp_path: Path, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    write(bucket, "e-1.csv", shard(1))
    monkeypatch.setenv(UNREADABLE, "e-1.csv")  # every read fails as a network error would

    report = engine.run_feeds([events_feed(str(bucket))])

    assert [load.status for load in report.loads] == ["ready", "ready", "errored"]
    assert (report.count("errored"), report.count("ready")) == (1, 0)
    [(claimed, loaded, errored, retried, counts)] = db.execute(
        "SELECT claimed, loaded, errored, retried, counts FROM sluice.runs"
    ).fetchall()
    assert (claimed, loaded, errored, retried) == (3, 0, 1, 2)
    assert counts == {"units": 1, "attempts": 3}
    console = Console(width=200, record=True)
    render.run_report(console, report)
    assert "1 loads (3 attempts)" in console.export_text()


def test_an_empty_bucket_name_is_refused(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a folder with datasets in it must not be synced by mistake
    with pytest.raises(ConfigError, match="name a bucket"):
        cryoet.load(engine, "", "https://files.example", everything=True)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.retry(load_ids=[999_999]), "there is no load 999999"),
        (lambda e: e.retry(feeds=["nosuch"]), "there is no feed 'nosuch' (registered: none)"),
        (lambda e: e.load(999_999), "there is no load 999999"),
        (lambda e: e.pause("nosuch"), "there is no feed 'nosuch'"),
    ],
)
def test_loads_and_feeds_that_do_not_exist_are_errors(engine: Engine, call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as refused:
        call(engine)
    assert str(refused.value).startswith(message)


def test_a_refresh_that_waits_too_long_fails_and_says_the_next_run_refreshes(
    engine: Engine, tmp_path: Path, db: Conn, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository, "REFRESH_LOCK_TIMEOUT", "1s")
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    write(bucket, "e-1.csv", shard(1))
    engine.run_feeds([events_feed(str(bucket), serving=True)])
    write(bucket, "e-2.csv", shard(2))
    with psycopg.connect(database_url) as stalled:  # a refresh stopped in its transaction
        stalled.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext('public.view_events'))",
            [repository._LOCK_NAMESPACE],
        )

        report = engine.run_feeds([events_feed(str(bucket), serving=True)])

    assert report.count("loaded") == 1, report.as_dict()
    [hook] = report.hooks
    assert hook["status"] == "error"
    assert hook["error"].endswith("; the next run refreshes it")
    assert "will retry" not in hook["error"]
    again = engine.run_feeds([events_feed(str(bucket), serving=True)])
    assert [h["status"] for h in again.hooks] == ["ok"]
    assert db.execute("SELECT count(*) FROM view_events").fetchone() == (200,)
