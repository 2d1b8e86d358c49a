"""The API fetcher on the runtime's schedule: one feed of kind ``fetch`` in ``sluice.feeds``
whose *scan* is a fetch of every API feed.

A fetch makes no units: its work is the copy of each dataset into Incoming, which the routing
flow then scans like any other object. So the flow has no steps, and the scheduler's one hook
for "do this on a schedule, recorded on the feed row" — the scan — carries it: ``sluice run``
fetches on the feed's schedule (a restart neither skips nor repeats a fetch), a failure lands
in the feed row's ``scan_error`` (``sluice feeds``), and a paused feed is not fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.errors import ConfigError, TransientError
from sluice.fetch.fetcher import ApiFetcher
from sluice.ledger.records import FeedRow
from sluice.ledger.registry import FeedRegistry, Scan
from sluice.ledger.repository import FeedRegistration, Ledger

log = logging.getLogger(__name__)

KIND = "fetch"


@dataclass(frozen=True)
class FetchDeclaration:
    """A scheduled fetch: its feed row's name, the API it fetches from, when."""

    name: str
    source_url: str
    schedule: str


@dataclass(frozen=True)
class FetchFeed:
    feed_id: int
    name: str
    schedule: str
    active: bool = True

    @property
    def feed(self) -> FetchFeed:
        """Where the scheduler reads a source's schedule."""
        return self


class FetchFlow:
    """Registration and scheduled runs of the API fetcher."""

    kind = KIND

    def __init__(self, fetcher: Callable[[], ApiFetcher]) -> None:
        self._fetcher = fetcher
        self._feeds: FeedRegistry[FetchFeed] = FeedRegistry(self.adopt)

    @property
    def steps(self) -> tuple[()]:
        return ()

    def register(self, ledger: Ledger, declared: FetchDeclaration) -> FetchFeed:
        feed_id, active = ledger.register_feed(
            FeedRegistration(
                name=declared.name,
                kind=KIND,
                target_id=None,
                source_url=declared.source_url,
                pattern="",
                options={},
                schedule=declared.schedule,
            )
        )
        return self._feeds.keep(FetchFeed(feed_id, declared.name, declared.schedule, active))

    def adopt(self, row: FeedRow) -> FetchFeed:
        if row.kind != KIND:
            raise ConfigError(f"feed {row.name!r} is a {row.kind!r} feed, not an API fetch")
        return self._feeds.keep(FetchFeed(row.id, row.name, row.schedule, row.active))

    def source(self, ledger: Ledger, feed_id: int) -> FetchFeed:
        return self._feeds.get(ledger, feed_id)

    def scan(self, ledger: Ledger, source: FetchFeed) -> Scan:
        """Fetch every API feed; a feed that failed fails the scan (after the others ran), so
        its reason is on the feed row."""
        reports = self._fetcher().fetch()
        failed = [r for r in reports if not r.ok]
        results = sum(r.results for r in reports)
        uploaded = sum(len(r.uploaded) for r in reports)
        log.info(
            "%s: %d feed(s), %d result(s), %d uploaded",
            source.name,
            len(reports),
            results,
            uploaded,
        )
        if failed:
            raise TransientError(
                f"{len(failed)} of {len(reports)} API feed(s) failed, first "
                f"{failed[0].feed}: {failed[0].summary()}"
            )
        return Scan(source.name, results, 0)

    def sweep(self, ledger: Ledger) -> None:
        """A fetch leaves nothing behind: an upload either completes or is not there."""

    def needs_after(self, ledger: Ledger, sources: Sequence[FetchFeed]) -> list[FetchFeed]:
        return []

    def drained(self, ledger: Ledger, sources: Sequence[FetchFeed]) -> list[FetchFeed]:
        return list(sources)

    def after(self, ledger: Ledger, sources: Sequence[FetchFeed]) -> list[dict[str, Any]]:
        return []
