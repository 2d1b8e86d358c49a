"""The DMAP fetcher against a fake DMAP API served by a real HTTP server process on a loopback
port (tests/integration/dmap_fake.py), over the real sample files: watermark, retries, expired
links, a failing upload, malformed results, a re-published dataset. No mocked HTTP client."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.api import Engine
from sluice.fetch import FeedReport
from sluice.recipes.cubic import dmap_fetch
from sluice.recipes.cubic.dmap import DmapOptions
from sluice.store import S3Options
from tests.fixtures.fix_s3 import s3_client
from tests.integration.dmap_fake import CONTROLLED, PUBLIC, FakeApi, running

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "data" / "cubic-dmap"
FEED = "/datasetcontrolleduserapi/datasets/agg_sample"
FIRST = "2022-05-22T20:49:50.123456"
SECOND = "2022-05-23T08:00:00.000001"


def sample(day: str, last_updated: str) -> dict[str, str]:
    return {
        "id": "agg_sample",
        "dataset_id": f"agg_sample_{day}",
        "start_date": f"{day[:4]}-{day[4:6]}-{day[6:]}",
        "end_date": f"{day[:4]}-{day[4:6]}-{day[6:]}",
        "last_updated": last_updated,
        "file": str(SAMPLES / f"agg_sample_{day}.csv.gz"),
    }


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeApi]:
    with running(tmp_path) as started:
        yield started


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    return tmp_path / "incoming"


@pytest.fixture
def options(api: FakeApi) -> DmapOptions:
    return DmapOptions(
        base_url=api.url,
        controlled_key=CONTROLLED,
        public_key=PUBLIC,
        attempts=3,
        backoff_seconds=0.01,
        timeout_seconds=10,
    )


def fetch(
    engine: Engine, options: DmapOptions, incoming: Path, since: str | None = None
) -> FeedReport:
    reports = dmap_fetch.fetch(engine.db, options, str(incoming), S3Options(), since=since)
    assert len(reports) == 1
    return reports[0]


def rows(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT dataset_id, type, start_date::text, end_date::text, last_updated, size "
        "FROM sluice.dmap_datasets ORDER BY dataset_id"
    ).fetchall()


def watermark(db: psycopg.Connection[Any]) -> datetime | None:
    found = db.execute("SELECT last_updated_at FROM sluice.dmap_feeds").fetchone()
    assert found is not None
    return found[0]  # type: ignore[no-any-return]


def object_path(incoming: Path, day: str) -> Path:
    return incoming / "cubic" / "dmap" / "agg_sample" / f"agg_sample_{day}.csv.gz"


def test_fetch_uploads_every_dataset_then_asks_from_the_watermark_plus_a_microsecond(
    engine: Engine, api: FakeApi, options: DmapOptions, incoming: Path, db: psycopg.Connection[Any]
) -> None:
    dmap_fetch.add_feed(engine.db, FEED)
    api.scenario(datasets=[sample("20220517", FIRST), sample("20220518", SECOND)])

    report = fetch(engine, options, incoming)

    assert report.ok and report.error is None
    assert sorted(report.uploaded) == ["agg_sample_20220517", "agg_sample_20220518"]
    assert (report.results, report.invalid, report.unchanged) == (2, 0, 0)
    for day in ("20220517", "20220518"):
        expected = (SAMPLES / f"agg_sample_{day}.csv.gz").read_bytes()
        assert object_path(incoming, day).read_bytes() == expected
    assert rows(db) == [
        (
            "agg_sample_20220517",
            "agg_sample",
            "2022-05-17",
            "2022-05-17",
            datetime(2022, 5, 22, 20, 49, 50, 123456),
            85,
        ),
        (
            "agg_sample_20220518",
            "agg_sample",
            "2022-05-18",
            "2022-05-18",
            datetime(2022, 5, 23, 8, 0, 0, 1),
            85,
        ),
    ]
    assert watermark(db) == datetime(2022, 5, 23, 8, 0, 0, 1)
    assert report.watermark_after == SECOND

    again = fetch(engine, options, incoming)

    assert (again.results, again.uploaded, again.since) == (0, [], "2022-05-23T08:00:00.000002")
    listings = api.listings()
    assert [r["query"] for r in listings] == ["", "last_updated=2022-05-23T08%3A00%3A00.000002"]
    # The key travels as a header, never in a URL; the blob host never sees it.
    assert all(r["apikey"] == CONTROLLED for r in listings)
    assert all(CONTROLLED not in r["query"] for r in api.requests())
    assert all(r["apikey"] is None for r in api.requests() if r["path"].startswith("/blob/"))
    assert watermark(db) == datetime(2022, 5, 23, 8, 0, 0, 1)


def test_a_500_is_retried_and_the_fetch_succeeds(
    engine: Engine,
    api: FakeApi,
    options: DmapOptions,
    incoming: Path,
    db: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dmap_fetch.add_feed(engine.db, FEED)
    api.scenario(datasets=[sample("20220517", FIRST)], fail_queries=1)

    with caplog.at_level(logging.DEBUG):
        report = fetch(engine, options, incoming)

    assert report.ok and report.uploaded == ["agg_sample_20220517"]
    assert len(api.listings()) == 2
    # The error page quoted the key; the retry's log line shows it masked.
    assert "HTTP 500: internal error (request apikey=***)" in caplog.text
    assert CONTROLLED not in caplog.text
    assert watermark(db) == datetime(2022, 5, 22, 20, 49, 50, 123456)


def test_an_expired_link_makes_a_fresh_query_and_the_new_link_is_used(
    engine: Engine, api: FakeApi, options: DmapOptions, incoming: Path, db: psycopg.Connection[Any]
) -> None:
    dmap_fetch.add_feed(engine.db, FEED)
    api.scenario(
        datasets=[sample("20220517", FIRST), sample("20220518", SECOND)],
        expire_once=["agg_sample_20220518"],
    )

    report = fetch(engine, options, incoming)

    assert report.ok and report.refreshed_links == 1
    assert sorted(report.uploaded) == ["agg_sample_20220517", "agg_sample_20220518"]
    blobs = [r for r in api.requests() if r["path"] == "/blob/agg_sample_20220518"]
    # The expired link of listing 1, then the fresh one of listing 2.
    assert [b["query"] for b in blobs] == ["sig=s1", "sig=s2"]
    assert len(api.listings()) == 2
    assert (
        object_path(incoming, "20220518").read_bytes()
        == (SAMPLES / "agg_sample_20220518.csv.gz").read_bytes()
    )
    assert watermark(db) == datetime(2022, 5, 23, 8, 0, 0, 1)


def test_a_failed_upload_writes_no_row_and_leaves_the_watermark_then_the_next_fetch_mends_it(
    engine: Engine, api: FakeApi, options: DmapOptions, incoming: Path, db: psycopg.Connection[Any]
) -> None:
    dmap_fetch.add_feed(engine.db, FEED)
    api.scenario(datasets=[sample("20220517", FIRST), sample("20220518", SECOND)])
    # A folder where the object must go: every upload of it fails, as a full disk would.
    blocker = object_path(incoming, "20220518")
    (blocker / "in-the-way").mkdir(parents=True)

    report = fetch(engine, options, incoming)

    assert not report.ok
    assert report.uploaded == ["agg_sample_20220517"]
    assert [f["dataset_id"] for f in report.failed] == ["agg_sample_20220518"]
    assert [r[0] for r in rows(db)] == ["agg_sample_20220517"]
    assert watermark(db) is None
    error = db.execute("SELECT last_error FROM sluice.dmap_feeds").fetchone()
    assert error is not None and "1 dataset(s) failed, first agg_sample_20220518" in error[0]

    shutil.rmtree(blocker)
    mended = fetch(engine, options, incoming)

    assert mended.ok and mended.since is None
    assert (mended.uploaded, mended.unchanged) == (["agg_sample_20220518"], 1)
    assert [r[0] for r in rows(db)] == ["agg_sample_20220517", "agg_sample_20220518"]
    assert watermark(db) == datetime(2022, 5, 23, 8, 0, 0, 1)
    assert db.execute("SELECT last_error FROM sluice.dmap_feeds").fetchone() == (None,)


def test_malformed_results_are_counted_and_reported_and_the_valid_ones_fetched(
    engine: Engine, api: FakeApi, options: DmapOptions, incoming: Path, db: psycopg.Connection[Any]
) -> None:
    dmap_fetch.add_feed(engine.db, FEED)
    good = sample("20220517", FIRST)
    link = f"{api.url}/blob/agg_sample_20220517?sig=x"
    fields = {k: good[k] for k in ("id", "start_date", "end_date", "last_updated")}
    malformed = [
        {**fields, "dataset_id": "no_url"},
        {**fields, "dataset_id": "bad_date", "url": link, "start_date": "2022/05/17"},
        {**fields, "dataset_id": "bad_stamp", "url": link, "last_updated": "yesterday"},
        {**fields, "dataset_id": "root_path", "url": "https://blob.example.net/"},
        {**fields, "dataset_id": "plain_http", "url": "http://blob.example.net/a.csv.gz"},
        {**fields, "dataset_id": "../escape", "url": link},
        "not an object",
    ]
    api.scenario(datasets=[good], malformed=malformed)

    report = fetch(engine, options, incoming)

    assert report.error is None and report.ok
    assert (report.results, report.invalid, report.uploaded) == (8, 7, ["agg_sample_20220517"])
    assert report.invalid_shown == [
        "result 1 (no_url): missing url",
        "result 2 (bad_date): start_date '2022/05/17' is not an ISO date (YYYY-MM-DD)",
        "result 3 (bad_stamp): last_updated 'yesterday' is not an ISO timestamp",
        "result 4 (root_path): url 'https://blob.example.net/' has no path",
        "result 5 (plain_http): url 'http://blob.example.net/a.csv.gz' is not https",
        "result 6 (../escape): dataset_id '../escape' is not a plain name",
        "result 7: not an object but str",
    ]
    assert [r[0] for r in rows(db)] == ["agg_sample_20220517"]
    assert watermark(db) == datetime(2022, 5, 22, 20, 49, 50, 123456)
    error = db.execute("SELECT last_error FROM sluice.dmap_feeds").fetchone()
    assert error == ("7 invalid result(s), first result 1 (no_url): missing url",)
    assert (
        not (incoming / "cubic" / "dmap" / "agg_sample" / "..")
        .resolve()
        .joinpath("escape.csv.gz")
        .exists()
    )


def test_a_republished_dataset_is_fetched_again_and_its_object_replaced(
    engine: Engine, api: FakeApi, options: DmapOptions, incoming: Path, db: psycopg.Connection[Any]
) -> None:
    dmap_fetch.add_feed(engine.db, FEED)
    api.scenario(datasets=[sample("20220517", FIRST)])
    assert fetch(engine, options, incoming).uploaded == ["agg_sample_20220517"]
    before = object_path(incoming, "20220517").stat().st_mtime_ns

    # Same dataset id, newer last_updated, new content.
    republished = {
        **sample("20220517", SECOND),
        "file": str(SAMPLES / "agg_sample_20220518.csv.gz"),
    }
    api.scenario(datasets=[republished])
    report = fetch(engine, options, incoming)

    assert report.ok and report.uploaded == ["agg_sample_20220517"]
    assert report.since == "2022-05-22T20:49:50.123457"
    target = object_path(incoming, "20220517")
    assert target.read_bytes() == (SAMPLES / "agg_sample_20220518.csv.gz").read_bytes()
    assert target.stat().st_mtime_ns != before
    assert rows(db) == [
        (
            "agg_sample_20220517",
            "agg_sample",
            "2022-05-17",
            "2022-05-17",
            datetime(2022, 5, 23, 8, 0, 0, 1),
            85,
        ),
    ]
    assert watermark(db) == datetime(2022, 5, 23, 8, 0, 0, 1)

    # --since fetches again what the watermark already passed.
    again = fetch(engine, options, incoming, since="2022-01-01T00:00:00")
    assert again.uploaded == ["agg_sample_20220517"] and again.since == "2022-01-01T00:00:00.000000"
    assert watermark(db) == datetime(2022, 5, 23, 8, 0, 0, 1)


def test_a_wrong_key_fails_the_feed_without_showing_the_key(
    engine: Engine, api: FakeApi, options: DmapOptions, incoming: Path, db: psycopg.Connection[Any]
) -> None:
    dmap_fetch.add_feed(engine.db, FEED)
    api.scenario(datasets=[sample("20220517", FIRST)])

    report = fetch(engine, replace(options, controlled_key="wrong-key-9"), incoming)

    assert report.error is not None and "HTTP 401" in report.error
    assert "wrong-key-9" not in json.dumps(report.as_dict())
    assert rows(db) == [] and watermark(db) is None


def test_datasets_go_to_an_s3_incoming_below_its_prefix(
    engine: Engine,
    api: FakeApi,
    options: DmapOptions,
    s3_bucket: str,
    s3_options: S3Options,
    db: psycopg.Connection[Any],
) -> None:
    dmap_fetch.add_feed(engine.db, FEED)
    api.scenario(datasets=[sample("20220517", FIRST)])

    reports = dmap_fetch.fetch(engine.db, options, f"s3://{s3_bucket}/incoming", s3_options)

    assert reports[0].ok and reports[0].uploaded == ["agg_sample_20220517"]
    body = (
        s3_client(s3_options.endpoint_url)
        .get_object(
            Bucket=s3_bucket, Key="incoming/cubic/dmap/agg_sample/agg_sample_20220517.csv.gz"
        )["Body"]
        .read()
    )
    assert body == (SAMPLES / "agg_sample_20220517.csv.gz").read_bytes()
    found = db.execute("SELECT object_key FROM sluice.dmap_datasets").fetchall()
    assert found == [("incoming/cubic/dmap/agg_sample/agg_sample_20220517.csv.gz",)]
