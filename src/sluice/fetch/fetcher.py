"""The API fetcher: query each feed of a dataset-listing API for what changed since its
watermark, stream every dataset's file into Incoming, and move the watermark only when all of
them are there.

Per feed: ask for ``last_updated = watermark + 1 µs`` (``YYYY-MM-DDTHH:MM:SS.ffffff``; an
explicit `since` instead, to fetch again; nothing before the first fetch), check the results,
then per dataset: copy its link into Incoming (retried with backoff; an expired link makes a
fresh query for a new one), and only then upsert its row. The watermark becomes the newest
``last_updated`` of the feed's valid results once every one of them is in Incoming; a dataset
that fails leaves it where it was, so the next fetch asks again. Invalid results are counted
and reported, and never stop the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from sluice.errors import ConfigError, SluiceError, TerminalError
from sluice.fetch.http import HttpOptions, LinkExpired, client, copy_link, get_json, retrying
from sluice.fetch.repository import ApiFeed, FetchLedger
from sluice.fetch.results import Dataset, check_results, is_loopback, shown_url
from sluice.store import Store

log = logging.getLogger(__name__)

#: How a watermark is written into a query.
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
#: Invalid results a report names (all are counted).
SHOWN_INVALID = 20


@dataclass(frozen=True)
class ApiSource:
    """A dataset-listing API as a recipe configures it."""

    base_url: str
    #: The headers (the API key) of an endpoint; raises ConfigError for an unknown one.
    headers_for: Callable[[str], Mapping[str, str]]
    #: Where a dataset of a type goes, below the Incoming prefix.
    object_key: Callable[[str, str], str]
    http: HttpOptions = field(default_factory=HttpOptions)

    @property
    def allow_http_loopback(self) -> bool:
        """Plain http is for tests: only when the API itself is http on a loopback address."""
        parts = urlsplit(self.base_url)
        return parts.scheme == "http" and is_loopback(parts.hostname or "")

    def check(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme != "https" and not self.allow_http_loopback:
            raise ConfigError(
                f"the API base URL {shown_url(self.base_url)!r} must be https (plain http only "
                "on a loopback address)"
            )


@dataclass
class FeedReport:
    """What one fetch of one feed did."""

    feed: str
    since: str | None
    results: int = 0
    invalid: int = 0
    invalid_shown: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    bytes: int = 0
    refreshed_links: int = 0
    watermark_before: str | None = None
    watermark_after: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    def summary(self) -> str | None:
        """What went wrong, for the feed's row (None: nothing)."""
        parts = []
        if self.error:
            parts.append(self.error)
        if self.failed:
            first = self.failed[0]
            parts.append(
                f"{len(self.failed)} dataset(s) failed, first {first['dataset_id']}: "
                f"{first['error']}"
            )
        if self.invalid:
            parts.append(f"{self.invalid} invalid result(s), first {self.invalid_shown[0]}")
        return "; ".join(parts) or None

    def as_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "ok": self.ok,
            "since": self.since,
            "results": self.results,
            "invalid": self.invalid,
            "invalid_results": self.invalid_shown,
            "uploaded": self.uploaded,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "bytes": self.bytes,
            "refreshed_links": self.refreshed_links,
            "watermark_before": self.watermark_before,
            "watermark_after": self.watermark_after,
            "error": self.error,
        }


def query_stamp(watermark: datetime | None, since: datetime | None) -> str | None:
    """The ``last_updated`` parameter: `since` if given, else the watermark + 1 µs."""
    if since is not None:
        return since.strftime(STAMP_FORMAT)
    if watermark is None:
        return None
    return (watermark + timedelta(microseconds=1)).strftime(STAMP_FORMAT)


class ApiFetcher:
    """Fetches the feeds on `ledger` from `source` into `incoming` (a store and a prefix)."""

    def __init__(
        self,
        ledger: FetchLedger,
        source: ApiSource,
        incoming: Store,
        prefix: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        source.check()
        self.ledger = ledger
        self.source = source
        self.incoming = incoming
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.sleep = sleep

    def fetch(
        self, feeds: Sequence[str] | None = None, since: datetime | None = None
    ) -> list[FeedReport]:
        """Fetch every feed (or those named); a feed that fails is reported, the others go on."""
        chosen = self.ledger.feeds()
        if feeds:
            chosen = [self.ledger.feed(name) for name in feeds]
        with client(self.source.http) as http:
            return [self.fetch_feed(http, feed, since) for feed in chosen]

    def fetch_feed(
        self, http: httpx.Client, feed: ApiFeed, since: datetime | None = None
    ) -> FeedReport:
        stamp = query_stamp(feed.last_updated_at, since)
        report = FeedReport(feed.relative_url, stamp)
        report.watermark_before = _iso(feed.last_updated_at)
        newest: datetime | None = None
        try:
            datasets = self._query(http, feed, stamp, report)
            known = self.ledger.known([d.dataset_id for d in datasets])
            for dataset in sorted(datasets, key=lambda d: (d.last_updated, d.dataset_id)):
                if since is None and known.get(dataset.dataset_id, datetime.min) >= (
                    dataset.last_updated
                ):
                    report.unchanged += 1  # in Incoming already (a query overlapping the last)
                else:
                    self._dataset(http, feed, stamp, dataset, report)
            if not report.failed and datasets:
                newest = max(d.last_updated for d in datasets)
        except SluiceError as exc:
            report.error = self._scrub(str(exc), feed)
            log.error("DMAP feed %s: %s", feed.relative_url, report.error)
        self.ledger.fetched(feed.id, newest, report.summary())
        after = max(filter(None, [feed.last_updated_at, newest]), default=None)
        report.watermark_after = _iso(after)
        log.info(
            "feed %s: %d result(s), %d invalid, %d uploaded, %d unchanged, %d failed",
            feed.relative_url,
            report.results,
            report.invalid,
            len(report.uploaded),
            report.unchanged,
            len(report.failed),
        )
        return report

    def _query(
        self, http: httpx.Client, feed: ApiFeed, stamp: str | None, report: FeedReport
    ) -> list[Dataset]:
        body = self._listing(http, feed, stamp)
        results = body.get("results")
        report.results = len(results) if isinstance(results, list) else 0
        datasets, invalid = check_results(
            results if isinstance(results, list) else [],
            allow_http_loopback=self.source.allow_http_loopback,
        )
        report.invalid = len(invalid)
        report.invalid_shown = [self._scrub(str(i), feed) for i in invalid[:SHOWN_INVALID]]
        for bad in invalid:
            log.warning("feed %s: invalid %s", feed.relative_url, self._scrub(str(bad), feed))
        return datasets

    def _listing(self, http: httpx.Client, feed: ApiFeed, stamp: str | None) -> dict[str, Any]:
        url = self.source.base_url + feed.relative_url
        headers = self.source.headers_for(feed.relative_url)
        params = {"last_updated": stamp} if stamp else {}

        def attempt() -> Any:
            try:
                return get_json(http, url, params=params, headers=headers)
            except SluiceError as exc:
                # Scrubbed before anything logs it: an error page may quote the request.
                raise type(exc)(self._scrub(str(exc), feed)) from exc

        body = retrying(
            f"query of {feed.relative_url}", attempt, self.source.http, sleep=self.sleep
        )
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise TerminalError(
                f"GET {shown_url(url)}: expected an object with a 'results' list, got "
                f"{type(body).__name__}"
            )
        if body.get("success") is False:
            raise TerminalError(f"GET {shown_url(url)}: the API answered success=false")
        return body

    def _dataset(
        self,
        http: httpx.Client,
        feed: ApiFeed,
        stamp: str | None,
        dataset: Dataset,
        report: FeedReport,
    ) -> None:
        key = self.prefix + self.source.object_key(dataset.kind, dataset.dataset_id)
        try:
            dataset, size = self._copy(http, feed, stamp, dataset, key, report)
        except SluiceError as exc:
            message = self._scrub(str(exc), feed)
            log.error(
                "feed %s: dataset %s not fetched: %s",
                feed.relative_url,
                dataset.dataset_id,
                message,
            )
            report.failed.append({"dataset_id": dataset.dataset_id, "error": message})
            return
        # Only now: a row means its file is in Incoming.
        self.ledger.uploaded(feed.id, dataset, key, size)
        report.uploaded.append(dataset.dataset_id)
        report.bytes += size

    def _copy(
        self,
        http: httpx.Client,
        feed: ApiFeed,
        stamp: str | None,
        dataset: Dataset,
        key: str,
        report: FeedReport,
    ) -> tuple[Dataset, int]:
        """Copy the dataset's file, asking for a fresh link when one has expired; every
        failure counts as an attempt."""
        options = self.source.http
        for number in range(1, options.attempts + 1):
            try:
                return dataset, copy_link(http, dataset.url, self.incoming, key, options)
            except LinkExpired as exc:
                if number == options.attempts:
                    raise
                log.warning("%s: %s; asking the API for a fresh link", dataset.dataset_id, exc)
                dataset = self._fresh(http, feed, stamp, dataset)
                report.refreshed_links += 1
            except SluiceError as exc:
                if isinstance(exc, TerminalError) or number == options.attempts:
                    raise
                delay = min(60.0, options.backoff_seconds * 2 ** (number - 1))
                log.warning(
                    "%s failed (attempt %d of %d), again in %.1f s: %s",
                    dataset.dataset_id,
                    number,
                    options.attempts,
                    delay,
                    exc,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _fresh(
        self, http: httpx.Client, feed: ApiFeed, stamp: str | None, dataset: Dataset
    ) -> Dataset:
        body = self._listing(http, feed, stamp)
        found, _ = check_results(
            body["results"], allow_http_loopback=self.source.allow_http_loopback
        )
        for candidate in found:
            if candidate.dataset_id == dataset.dataset_id:
                return candidate
        raise TerminalError(
            f"dataset {dataset.dataset_id}: its link expired and the API no longer lists it"
        )

    def _scrub(self, text: str, feed: ApiFeed) -> str:
        """`text` without the feed's key, should an answer have echoed it."""
        try:
            headers = self.source.headers_for(feed.relative_url)
        except ConfigError:
            return text
        for secret in headers.values():
            if secret:
                text = text.replace(secret, "***")
        return text


def _iso(value: datetime | None) -> str | None:
    return value.strftime(STAMP_FORMAT) if value else None
