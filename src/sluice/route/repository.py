"""What the routing stage keeps on the ledger beside the work queue: per table its snapshot
and listing cursor, per load its snapshot, lake write, moves and reason (migration 0008)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sluice.db.errors import classify
from sluice.db.queries import load as load_queries
from sluice.ledger.base import Repository

Q = load_queries("sluice.route", "queries.sql")


@dataclass(frozen=True)
class LoadFacts:
    snapshot: datetime | None
    is_change: bool
    reason: str | None
    modified: datetime | None
    error: str | None
    size: int | None


class RouteLedger(Repository):
    """The routing stage's queries on one connection."""

    @classmethod
    def beside(cls, other: Repository) -> RouteLedger:
        """On the connection (and under the lock) of another repository."""
        return cls(other.conn, other._guard)

    def _q(self, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        try:
            with self._guard:
                cur = self.conn.execute(Q[name], params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise classify(exc, f"routing query {name}") from exc

    # -- scans ------------------------------------------------------------------------------

    def lock_scan(self, feed_id: int) -> None:
        """Wait for any other scan of the table to commit (until this transaction ends)."""
        self._q("lock_scan", {"feed_id": feed_id})

    def cursor(self, feed_id: int) -> str | None:
        rows = self._q("cursor", {"feed_id": feed_id})
        return None if not rows else rows[0][0]

    def set_cursor(self, feed_id: int, start_after: str | None) -> None:
        self._q("set_cursor", {"feed_id": feed_id, "start_after": start_after})

    def known_versions(
        self, kind: str, feed_id: int, store: str, keys: Sequence[str]
    ) -> set[tuple[str, str]]:
        rows = self._q(
            "known_versions", {"kind": kind, "feed_id": feed_id, "store": store, "keys": list(keys)}
        )
        return {(str(k), str(v)) for k, v in rows}

    def units_of(
        self, kind: str, feed_id: int, store: str, ids: Sequence[int]
    ) -> list[tuple[int, str, str]]:
        rows = self._q(
            "units_of", {"kind": kind, "feed_id": feed_id, "store": store, "ids": list(ids)}
        )
        return [(int(i), str(k), str(v)) for i, k, v in rows]

    def snapshot(self, feed_id: int) -> datetime | None:
        rows = self._q("snapshot", {"feed_id": feed_id})
        return None if not rows else rows[0][0]

    def set_snapshot(self, feed_id: int, snapshot: datetime, unit_id: int) -> None:
        self._q("set_snapshot", {"feed_id": feed_id, "snapshot": snapshot, "unit_id": unit_id})

    def supersede_snapshot(self, feed_id: int, snapshot: datetime, stamp: str) -> list[int]:
        rows = self._q(
            "supersede_snapshot", {"feed_id": feed_id, "snapshot": snapshot, "stamp": stamp}
        )
        return [int(r[0]) for r in rows]

    def next_batch(self) -> int:
        return int(self._q("next_batch", {})[0][0])

    def record_load(
        self, unit_id: int, feed_id: int, snapshot: datetime | None, is_change: bool, batch: int
    ) -> None:
        self._q(
            "record_load",
            {
                "unit_id": unit_id,
                "feed_id": feed_id,
                "snapshot": snapshot,
                "is_change": is_change,
                "batch": batch,
            },
        )

    def batched(self, unit_ids: Sequence[int]) -> None:
        """Move new loads of a formed batch to ``ready_for_ingesting``."""
        self._q("batched", {"unit_ids": list(unit_ids)})

    def to_error(self, unit_id: int, reason: str) -> bool:
        moved = bool(self._q("to_error", {"unit_id": unit_id, "reason": reason}))
        if moved:
            self.set_reason(unit_id, reason)
        return moved

    def set_reason(self, unit_id: int, reason: str) -> None:
        self._q("set_reason", {"unit_id": unit_id, "reason": reason})

    # -- steps ------------------------------------------------------------------------------

    def facts(self, unit_id: int) -> LoadFacts | None:
        rows = self._q("load_facts", {"unit_id": unit_id})
        if not rows:
            return None
        snapshot, is_change, reason, modified, error, size = rows[0]
        return LoadFacts(snapshot, bool(is_change), reason, modified, error, size)

    def ingested(
        self, unit_id: int, lake_table: str, snapshot_id: int | None, rows: int, rejects: int
    ) -> None:
        self._q(
            "ingested",
            {
                "unit_id": unit_id,
                "lake_table": lake_table,
                "snapshot_id": snapshot_id,
                "rows": rows,
                "rejects": rejects,
            },
        )

    def moved(
        self,
        unit_id: int,
        *,
        archive_key: str | None = None,
        error_key: str | None = None,
        kept_beside: str | None = None,
    ) -> None:
        self._q(
            "moved",
            {
                "unit_id": unit_id,
                "archive_key": archive_key,
                "error_key": error_key,
                "kept_beside": kept_beside,
            },
        )

    def defer_move(self, unit_id: int, seconds: float, error: str) -> None:
        self._q("defer_move", {"unit_id": unit_id, "seconds": seconds})
        self._q("move_failed", {"unit_id": unit_id, "error": error})

    # -- reading ----------------------------------------------------------------------------

    def tables_overview(self, feed_kind: str, kind: str) -> list[tuple[Any, ...]]:
        return self._q("tables_overview", {"feed_kind": feed_kind, "kind": kind})

    def status_counts(self, feed_kind: str, kind: str) -> list[tuple[Any, ...]]:
        return self._q("status_counts", {"feed_kind": feed_kind, "kind": kind})

    def loads(
        self,
        feed_kind: str,
        kind: str,
        *,
        table: str | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        params = {
            "feed_kind": feed_kind,
            "kind": kind,
            "table": table,
            "status": status,
            "limit": limit,
        }
        with self.conn.cursor(row_factory=dict_row) as cur:
            return list(cur.execute(Q["loads"], params).fetchall())
