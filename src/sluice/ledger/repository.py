"""The ledger repository: one method per ledger operation, each running one named query.

A `Ledger` wraps one connection. Most operations run on a worker's long-lived *ledger
connection* (autocommit); `finish_load` runs on the data connection inside the load's
transaction, so the rows and the status change commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from sluice.db import Connection
from sluice.db.errors import classify
from sluice.db.queries import load as load_queries
from sluice.errors import IllegalTransition, LeaseLost
from sluice.ledger.states import Status, check

Q = load_queries("sluice.ledger", "queries.sql")


@dataclass(frozen=True)
class Discovered:
    """One object version seen in a listing."""

    key: str
    version: str
    etag: str | None
    size: int
    modified: datetime | None


@dataclass(frozen=True)
class Claim:
    """A load a worker owns until it finishes or its lease expires."""

    load_id: int
    table_id: int
    store: str
    key: str
    version: str
    etag: str | None
    size: int
    attempts: int

    @property
    def uri(self) -> str:
        return f"{self.store.rstrip('/')}/{self.key}"


@dataclass(frozen=True)
class Counts:
    """Rows of one load (or a sum of loads)."""

    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    #: Rows a replacing load took the place of.
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


class Ledger:
    """Ledger operations on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _one(self, name: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        return self._run(name, params).fetchone()

    def _all(self, name: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._run(name, params or {}).fetchall()

    def _run(self, name: str, params: dict[str, Any]) -> psycopg.Cursor[tuple[Any, ...]]:
        try:
            return self.conn.execute(Q[name], params)
        except psycopg.errors.CheckViolation as exc:
            # The loads_transition trigger: a status change the state machine refuses.
            raise IllegalTransition(
                f"ledger query {name}: {exc.diag.message_primary or exc}"
            ) from None
        except psycopg.Error as exc:
            raise classify(exc, f"ledger query {name}") from None

    # -- registration -------------------------------------------------------------------

    def upsert_target(self, name: str, spec: dict[str, Any], serving_view: str | None) -> int:
        row = self._one(
            "upsert_target", {"name": name, "spec": Jsonb(spec), "serving_view": serving_view}
        )
        assert row is not None
        return int(row[0])

    def upsert_table(
        self, *, name: str, target_id: int, source_url: str, pattern: str, options: dict[str, Any]
    ) -> int:
        row = self._one(
            "upsert_table",
            {
                "name": name,
                "kind": "postgres",
                "target_id": target_id,
                "source_url": source_url,
                "pattern": pattern,
                "options": Jsonb(options),
            },
        )
        assert row is not None
        return int(row[0])

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, command: str, owner: str) -> int:
        self._all("abandon_dead_runs")
        row = self._one("start_run", {"command": command, "owner": owner})
        assert row is not None
        return int(row[0])

    def finish_run(self, run_id: int, *, status: str, stats: dict[str, Any]) -> None:
        params = {"run_id": run_id, "status": status, **stats}
        params["hooks"] = Jsonb(stats.get("hooks", []))
        self._run("finish_run", params)

    # -- discovery and claims ---------------------------------------------------------------

    def discover(self, table_id: int, store: str, objects: Sequence[Discovered]) -> list[int]:
        """Record new object versions; return the ids of loads created now."""
        if not objects:
            return []
        rows = self._all(
            "discover",
            {
                "table_id": table_id,
                "store": store,
                "keys": [o.key for o in objects],
                "versions": [o.version for o in objects],
                "etags": [o.etag for o in objects],
                "sizes": [o.size for o in objects],
                "modifieds": [o.modified for o in objects],
            },
        )
        new_ids = [int(r[0]) for r in rows]
        if new_ids:
            for waiting in (Status.READY, Status.READY_FOR_INGESTING, Status.ERRORED):
                check(waiting, Status.SUPERSEDED)
            self._all("supersede_older", {"new_ids": new_ids})
        return new_ids

    def reclaim_expired(self, table_ids: Iterable[int], max_attempts: int) -> int:
        check(Status.INGESTING, Status.READY)
        check(Status.INGESTING, Status.ERRORED)
        rows = self._all(
            "reclaim_expired", {"table_ids": list(table_ids), "max_attempts": max_attempts}
        )
        return len(rows)

    def claim(
        self, table_ids: Iterable[int], *, owner: str, run_id: int, limit: int, lease_seconds: int
    ) -> list[Claim]:
        check(Status.READY, Status.INGESTING)
        rows = self._all(
            "claim",
            {
                "table_ids": list(table_ids),
                "owner": owner,
                "run_id": run_id,
                "limit": limit,
                "lease_seconds": lease_seconds,
            },
        )
        return [Claim(*row) for row in rows]

    def next_retry_in(self, table_ids: Iterable[int]) -> float | None:
        row = self._one("next_retry_in", {"table_ids": list(table_ids)})
        return None if row is None or row[0] is None else float(row[0])

    def heartbeat(self, owner: str, lease_seconds: int) -> set[int]:
        """Renew every lease `owner` holds; return the loads it still owns."""
        rows = self._all("heartbeat", {"owner": owner, "lease_seconds": lease_seconds})
        return {int(r[0]) for r in rows}

    def progress(self, load_id: int, owner: str, bytes_read: int, rows_in: int) -> None:
        self._run(
            "progress",
            {"load_id": load_id, "owner": owner, "bytes_read": bytes_read, "rows_in": rows_in},
        )

    def key_loaded_before(self, claim: Claim) -> bool:
        row = self._one(
            "key_loaded_before",
            {
                "table_id": claim.table_id,
                "store": claim.store,
                "key": claim.key,
                "load_id": claim.load_id,
            },
        )
        return bool(row and row[0])

    # -- outcomes ---------------------------------------------------------------------------

    def finish_load(
        self,
        claim: Claim,
        *,
        owner: str,
        status: Status,
        counts: Counts,
        bytes_read: int,
        target_id: int,
        rejects_key: str | None = None,
    ) -> None:
        """Mark the load done; call inside the data transaction, before its commit."""
        check(Status.INGESTING, status)
        row = self._one(
            "finish_load",
            {
                "load_id": claim.load_id,
                "owner": owner,
                "status": status.value,
                "rows_in": counts.rows_in,
                "inserted": counts.inserted,
                "updated": counts.updated,
                "unchanged": counts.unchanged,
                "rejected": counts.rejected,
                "deleted": counts.deleted,
                "bytes_read": bytes_read,
                "rejects_key": rejects_key,
            },
        )
        if row is None:
            raise LeaseLost(
                f"load {claim.load_id} ({claim.uri}) is no longer owned by {owner}: its lease "
                "expired and another worker took it; this attempt is rolled back"
            )
        if counts.changed:
            self._run("bump_target", {"target_id": target_id})

    def end_attempt(
        self,
        claim: Claim,
        *,
        owner: str,
        status: Status,
        error: str,
        detail: dict[str, Any] | None = None,
        delay_seconds: float = 0.0,
        bytes_read: int = 0,
    ) -> bool:
        """Record a failed or abandoned attempt; False if the lease was already lost."""
        check(Status.INGESTING, status)
        row = self._one(
            "end_attempt",
            {
                "load_id": claim.load_id,
                "owner": owner,
                "status": status.value,
                "error": error,
                "error_detail": Jsonb(detail) if detail else None,
                "delay_seconds": delay_seconds,
                "bytes_read": bytes_read,
            },
        )
        return row is not None

    def retry_errored(
        self, *, table_names: Sequence[str] | None = None, load_ids: Sequence[int] | None = None
    ) -> list[int]:
        check(Status.ERRORED, Status.READY)
        rows = self._all(
            "retry_errored",
            {
                "table_names": list(table_names) if table_names else None,
                "load_ids": list(load_ids) if load_ids else None,
            },
        )
        return [int(r[0]) for r in rows]

    # -- serving views ----------------------------------------------------------------------

    def stale_targets(self, target_ids: Iterable[int]) -> list[tuple[int, str, str, int]]:
        rows = self._all("stale_targets", {"target_ids": list(target_ids)})
        return [(int(a), str(b), str(c), int(d)) for a, b, c, d in rows]

    def mark_refreshed(self, target_id: int, seq: int) -> None:
        self._run("mark_refreshed", {"target_id": target_id, "seq": seq})

    # -- reading ----------------------------------------------------------------------------

    def load_counts(self) -> list[tuple[Any, ...]]:
        return self._all("load_counts")

    def recent_errors(self, limit: int = 10) -> list[tuple[Any, ...]]:
        return self._all("recent_errors", {"limit": limit})

    def recent_runs(self, limit: int = 5) -> list[tuple[Any, ...]]:
        return self._all("recent_runs", {"limit": limit})

    def targets_overview(self) -> list[tuple[Any, ...]]:
        return self._all("targets_overview")

    def load_by_id(self, load_id: int) -> tuple[Any, ...] | None:
        return self._one("load_by_id", {"load_id": load_id})

    def loads_of_run(self, run_id: int) -> list[tuple[Any, ...]]:
        return self._all("loads_of_run", {"run_id": run_id})

    def staging_leftovers(self) -> list[str]:
        return [str(r[0]) for r in self._all("staging_leftovers")]
