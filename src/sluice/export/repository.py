"""The ledger side of exports: the partition units of a feed's days, and the partition rows
(`sluice.partitions`) written in the transaction that finishes a unit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from sluice.db.errors import classify
from sluice.db.queries import load as load_queries
from sluice.ledger.base import Repository
from sluice.ledger.records import Row

Q = load_queries("sluice.export", "queries.sql")


@dataclass(frozen=True)
class DayUnit:
    """A partition unit already on the ledger."""

    id: int
    key: str
    store: str
    version: str
    status: str


@dataclass(frozen=True)
class PartitionRecord:
    """What the last export of a day found and wrote."""

    day: date
    outcome: str
    fingerprint: str
    source_tables: list[str]
    source_rows: int
    output_rows: int
    rejected_rows: int
    bytes: int
    location: str | None
    rejects_location: str | None
    snapshot_id: int | None
    timings: dict[str, float]
    exports: int
    started_at: datetime
    finished_at: datetime
    unit_id: int

    @classmethod
    def from_row(cls, row: Row) -> PartitionRecord:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class ExportLedger(Repository):
    """Export queries on one connection of the ledger database."""

    def _q(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            with self._guard, self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(Q[name], params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise classify(exc, f"export query {name}") from exc

    def day_units(self, feed_id: int, kind: str, keys: Sequence[str]) -> list[DayUnit]:
        rows = self._q("day_units", {"feed_id": feed_id, "kind": kind, "keys": list(keys)})
        return [DayUnit(r["id"], r["key"], r["store"], r["version"], r["status"]) for r in rows]

    def record_partition(self, **values: Any) -> None:
        values["timings"] = Jsonb(values.get("timings") or {})
        self._q("record_partition", values)

    def partitions(
        self, feed: str, start: date | None = None, end: date | None = None
    ) -> list[PartitionRecord]:
        rows = self._q("partitions", {"feed": feed, "start": start, "end": end})
        return [PartitionRecord.from_row(r) for r in rows]

    def day_statuses(self, kind: str) -> list[tuple[str, str, int]]:
        rows = self._q("day_statuses", {"kind": kind})
        return [(r["name"], r["status"], int(r["days"])) for r in rows]
