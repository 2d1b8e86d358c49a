"""Typed records of the ledger: what its queries return, built from rows by name.

Each record has a ``from_row`` class method taking a row as a mapping (column name → value),
so a query can gain a column without breaking the records built from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sluice.ledger.states import Status
from sluice.text import visible

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Discovered:
    """One unit version seen by a scan: an object in a listing, a day of a table, a batch."""

    key: str
    version: str
    etag: str | None = None
    size: int | None = None
    modified: datetime | None = None


@dataclass(frozen=True)
class Unit:
    """A unit of work as a worker holds it, from its claim until it finishes."""

    id: int
    kind: str
    feed_id: int
    store: str
    key: str
    version: str
    etag: str | None
    size: int | None
    status: Status
    attempts: int
    run_id: int | None = None

    @classmethod
    def from_row(cls, row: Row) -> Unit:
        return cls(
            id=int(row["id"]),
            kind=str(row["kind"]),
            feed_id=int(row["feed_id"]),
            store=str(row["store"]),
            key=str(row["key"]),
            version=str(row["version"]),
            etag=row["etag"],
            size=None if row["size"] is None else int(row["size"]),
            status=Status(row["status"]),
            attempts=int(row["attempts"]),
            run_id=row.get("run_id"),
        )

    @property
    def uri(self) -> str:
        """The unit's object as a URL (its key alone when it has no store), for messages:
        invisible characters escaped."""
        return visible(f"{self.store.rstrip('/')}/{self.key}" if self.store else self.key)

    # The name loads have always had for their id.
    @property
    def load_id(self) -> int:
        return self.id


@dataclass(frozen=True)
class Counts:
    """Rows of one unit (or a sum of units)."""

    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    #: Rows a replacing load took the place of, or stale rows a sync deleted.
    deleted: int = 0

    @property
    def changed(self) -> bool:
        return self.inserted > 0 or self.updated > 0 or self.deleted > 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.rows_in + other.rows_in,
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.rejected + other.rejected,
            self.deleted + other.deleted,
        )

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FeedRow:
    """A registered feed as the ledger holds it."""

    id: int
    name: str
    kind: str
    target_id: int | None
    source_url: str
    pattern: str
    active: bool
    options: dict[str, Any]
    schedule: str
    max_active: int | None
    ordered: bool
    next_scan_at: datetime | None = None
    last_scan_at: datetime | None = None
    scan_error: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> FeedRow:
        return cls(
            id=int(row["id"]),
            name=str(row["name"]),
            kind=str(row["kind"]),
            target_id=row["target_id"],
            source_url=str(row["source_url"]),
            pattern=str(row["pattern"]),
            active=bool(row["active"]),
            options=dict(row["options"] or {}),
            schedule=str(row["schedule"]),
            max_active=row["max_active"],
            ordered=bool(row["ordered"]),
            next_scan_at=row.get("next_scan_at"),
            last_scan_at=row.get("last_scan_at"),
            scan_error=row.get("scan_error"),
        )


@dataclass(frozen=True)
class UnitRecord:
    """Everything the ledger says about one unit (``sluice loads show``)."""

    id: int
    kind: str
    feed: str
    store: str
    key: str
    version: str
    status: str
    attempts: int
    counts: Counts
    bytes_read: int | None
    etag: str | None = None
    size: int | None = None
    modified: datetime | None = None
    rejects_key: str | None = None
    error: str | None = None
    error_detail: dict[str, Any] | None = None
    lease_owner: str | None = None
    lease_pid: int | None = None
    lease_until: datetime | None = None
    run_id: int | None = None
    next_attempt_at: datetime | None = None
    discovered_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Row) -> UnitRecord:
        counts = Counts(
            *(
                int(row[name] or 0)
                for name in (
                    "rows_in",
                    "rows_inserted",
                    "rows_updated",
                    "rows_unchanged",
                    "rows_rejected",
                    "rows_deleted",
                )
            )
        )
        plain = {
            name: row[name]
            for name in cls.__dataclass_fields__
            if name not in {"counts", "feed"} and name in row
        }
        return cls(**{**plain, "feed": str(row["feed"]), "counts": counts})

    @property
    def uri(self) -> str:
        return f"{self.store.rstrip('/')}/{self.key}" if self.store else self.key

    def as_dict(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["counts"] = self.counts.as_dict()
        values["object"] = self.uri
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


@dataclass(frozen=True)
class LeasedUnit:
    """A unit in hand: who holds it, for how long, and whether its holder is still there."""

    id: int
    feed: str
    key: str
    status: str
    owner: str
    pid: int | None
    age_seconds: float
    lease_left_seconds: float
    owner_alive: bool

    @classmethod
    def from_row(cls, row: Row) -> LeasedUnit:
        return cls(
            id=int(row["id"]),
            feed=str(row["name"]),
            key=str(row["key"]),
            status=str(row["status"]),
            owner=str(row["lease_owner"]),
            pid=row["lease_pid"],
            age_seconds=float(row["age"] or 0.0),
            lease_left_seconds=float(row["lease_left"] or 0.0),
            owner_alive=bool(row["owner_alive"]),
        )

    @property
    def stuck(self) -> bool:
        """Its holder is gone or stopped renewing: it returns to the queue at the next claim."""
        return not self.owner_alive or self.lease_left_seconds < 0


@dataclass
class RunCounts:
    """What a run did, in the terms of its kind of work: `units` names what the unit counts
    count (loads, scopes, partitions, batches); `details` holds the kind's own breakdown."""

    discovered: int = 0
    claimed: int = 0
    done: int = 0
    errored: int = 0
    retried: int = 0
    rows: Counts = field(default_factory=Counts)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
