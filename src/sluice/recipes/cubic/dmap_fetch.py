"""The Cubic DMAP fetcher: the general API fetcher (`sluice.fetch`) configured by
``[cubic.dmap]``, writing into the ``[cubic]`` Incoming location. The typed API of
``sluice cubic dmap``, and the flow that runs it on the runtime's schedule."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sluice.db import Database
from sluice.errors import ConfigError
from sluice.fetch import (
    ApiFeed,
    ApiFetcher,
    ApiSource,
    FeedReport,
    FetchDeclaration,
    FetchedDataset,
    FetchFlow,
    FetchLedger,
    HttpOptions,
)
from sluice.fetch.results import parse_stamp
from sluice.recipes.cubic.dmap import DmapOptions, check_relative_url, object_key
from sluice.store import S3Options, locate

#: The feed row (``sluice feeds``) of the scheduled DMAP fetch.
FEED_NAME = "cubic-dmap"


def source(options: DmapOptions) -> ApiSource:
    options.require()
    return ApiSource(
        base_url=options.base_url,
        headers_for=options.headers_for,
        object_key=object_key,
        http=HttpOptions(
            attempts=options.attempts,
            backoff_seconds=options.backoff_seconds,
            timeout_seconds=options.timeout_seconds,
        ),
    )


def fetcher(
    db: Database,
    options: DmapOptions,
    incoming: str,
    s3: S3Options,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> ApiFetcher:
    """A fetcher of every DMAP feed into `incoming` (a store URL with a prefix)."""
    store, prefix = locate(incoming, s3, create=True)
    return ApiFetcher(FetchLedger(db), source(options), store, prefix, sleep=sleep)


def add_feed(db: Database, relative_url: str) -> ApiFeed:
    """Register an endpoint of the API (``/datasetcontrolleduserapi/...``)."""
    return FetchLedger(db).add_feed(check_relative_url(relative_url))


def list_feeds(db: Database) -> list[ApiFeed]:
    return FetchLedger(db).feeds()


def datasets(db: Database) -> list[FetchedDataset]:
    return FetchLedger(db).datasets()


def fetch(
    db: Database,
    options: DmapOptions,
    incoming: str,
    s3: S3Options,
    *,
    feed: str | None = None,
    since: str | None = None,
) -> list[FeedReport]:
    """Fetch every feed (or `feed`), from its watermark or from `since`."""
    stamp: datetime | None = None
    if since is not None:
        stamp = parse_stamp(since)
        if stamp is None:
            raise ConfigError(
                f"--since must be an ISO timestamp like 2022-05-22T20:49:50.123456, got "
                f"{since[:40]!r}"
            )
    return fetcher(db, options, incoming, s3).fetch([feed] if feed else None, stamp)


def flow(db: Database, options: DmapOptions, incoming: str, s3: S3Options) -> FetchFlow:
    """The flow of ``sluice run``: every feed fetched on the ``[cubic.dmap]`` schedule."""
    return FetchFlow(lambda: fetcher(db, options, incoming, s3))


def declaration(options: DmapOptions) -> FetchDeclaration | None:
    """The scheduled fetch, when the API is configured (the seed's ScheduleDmap rule)."""
    if not options.configured:
        return None
    return FetchDeclaration(FEED_NAME, options.base_url, options.schedule)
