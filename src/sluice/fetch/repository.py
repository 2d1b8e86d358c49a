"""The API fetcher's rows on the ledger: its feeds with their watermarks, and the datasets it
has put into Incoming (`FetchLedger`, the one class of this package that runs SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sluice.db import Database
from sluice.db.errors import classify
from sluice.db.queries import load as load_queries
from sluice.errors import ConfigError
from sluice.fetch.results import Dataset

Q = load_queries("sluice.fetch", "queries.sql")


@dataclass(frozen=True)
class ApiFeed:
    """One endpoint of the API and how far its datasets have been fetched."""

    id: int
    relative_url: str
    #: The newest ``last_updated`` of the datasets fetched; None before the first fetch.
    last_updated_at: datetime | None = None
    fetched_at: datetime | None = None
    last_error: str | None = None
    datasets: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "relative_url": self.relative_url,
            "last_updated_at": _iso(self.last_updated_at),
            "fetched_at": _iso(self.fetched_at),
            "last_error": self.last_error,
            "datasets": self.datasets,
        }


@dataclass(frozen=True)
class FetchedDataset:
    """A dataset row: a file that is in Incoming."""

    dataset_id: str
    kind: str
    start_date: date
    end_date: date
    last_updated: datetime
    object_key: str
    size: int
    fetched_at: datetime
    relative_url: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "type": self.kind,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "last_updated": _iso(self.last_updated),
            "object_key": self.object_key,
            "size": self.size,
            "fetched_at": _iso(self.fetched_at),
            "feed": self.relative_url,
        }


class FetchLedger:
    """``sluice.dmap_feeds`` and ``sluice.dmap_datasets`` over the database's pool."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _run(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            with self.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                cur.execute(Q[name], params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise classify(exc, f"API fetch query {name}") from exc

    def add_feed(self, relative_url: str) -> ApiFeed:
        if not self._run("add_feed", {"relative_url": relative_url}):
            raise ConfigError(f"feed {relative_url!r} exists already")
        return self.feed(relative_url)

    def feeds(self) -> list[ApiFeed]:
        return [ApiFeed(**row) for row in self._run("list_feeds", {})]

    def feed(self, relative_url: str) -> ApiFeed:
        for feed in self.feeds():
            if feed.relative_url == relative_url:
                return feed
        known = ", ".join(f.relative_url for f in self.feeds()) or "none"
        raise ConfigError(f"there is no feed {relative_url!r} (feeds: {known})")

    def known(self, dataset_ids: list[str]) -> dict[str, datetime]:
        """The ``last_updated`` of the datasets already fetched, by dataset id."""
        rows = self._run("known_datasets", {"dataset_ids": dataset_ids})
        return {row["dataset_id"]: row["last_updated"] for row in rows}

    def uploaded(self, feed_id: int, dataset: Dataset, object_key: str, size: int) -> None:
        self._run(
            "upsert_dataset",
            {
                "feed_id": feed_id,
                "dataset_id": dataset.dataset_id,
                "type": dataset.kind,
                "start_date": dataset.start_date,
                "end_date": dataset.end_date,
                "last_updated": dataset.last_updated,
                "object_key": object_key,
                "size": size,
            },
        )

    def fetched(self, feed_id: int, watermark: datetime | None, error: str | None) -> None:
        """Record a fetch of the feed: its new watermark (None: unchanged) and what failed."""
        self._run("fetched", {"feed_id": feed_id, "watermark": watermark, "error": error})

    def datasets(self) -> list[FetchedDataset]:
        return [FetchedDataset(kind=row.pop("type"), **row) for row in self._run("datasets", {})]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
