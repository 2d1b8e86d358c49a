"""The ledger's one work queue: claim, heartbeat, finish, release and retry units of any kind.

A `Lane` names the statuses one step of a flow moves its units through: claimed from
``ready``, held in ``leased`` while a worker owns them, left in ``done`` on success or in
``failed`` on bad input. Loads into PostgreSQL are the lane ``load: ready → ingesting →
loaded``; routing, exports and queue batches declare their own lanes on the same queue::

    queue = WorkQueue(conn)
    for unit in queue.claim(LOAD, feed_ids, owner="w1", run_id=7, lease_seconds=120):
        ...                                       # do the work, then in its transaction:
        WorkQueue(tx).finish(unit, LOAD, owner="w1", counts=counts, bytes_read=n)

Claims use ``FOR UPDATE SKIP LOCKED`` and a lease: any number of workers (threads, processes,
machines) share the queue, each unit is taken by one of them, and a unit whose worker died
returns to the queue when its owner's connection is gone or its lease expires.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from sluice.errors import ConfigError, LeaseLost
from sluice.ledger.base import Repository
from sluice.ledger.records import Counts, Unit
from sluice.ledger.states import Status, check

S = Status


@dataclass(frozen=True)
class Lane:
    """The statuses one step moves a kind of unit through."""

    kind: str
    ready: Status
    leased: Status
    done: Status
    failed: Status = S.ERRORED
    #: Statuses that come before `ready` in the flow: on an ordered feed a unit in one of them
    #: holds back the units after it, as a unit waiting in `ready` does.
    upstream: frozenset[Status] = frozenset()

    def __post_init__(self) -> None:
        if self.leased in (self.ready, self.done):
            raise ConfigError(f"lane {self.kind}: the leased status must differ from the others")
        check(self.ready, self.leased)
        check(self.leased, self.done)
        check(self.leased, self.failed)
        check(self.leased, self.ready)  # a transient failure returns the unit to the queue

    @property
    def blocking(self) -> list[str]:
        """Statuses of units not yet through this lane (they keep an ordered feed waiting)."""
        return sorted({self.ready, self.leased, *self.upstream})

    def __str__(self) -> str:
        return f"{self.kind}: {self.ready} → {self.leased} → {self.done}"


#: Units a claim considers per feed beyond those it takes: claims running at once skip each
#: other's units (SKIP LOCKED) and still find one of their own within the window.
CLAIM_WINDOW = 32

#: Loads of object versions into PostgreSQL, for pipelines that keep their sources in place.
LOAD = Lane("load", ready=S.READY, leased=S.INGESTING, done=S.LOADED)


class WorkQueue(Repository):
    """Work-queue operations on one connection."""

    # -- claims -----------------------------------------------------------------------------

    def claim(
        self,
        lane: Lane,
        feed_ids: Iterable[int],
        *,
        owner: str,
        run_id: int | None,
        lease_seconds: int,
        limit: int = 1,
        unit_id: int | None = None,
    ) -> list[Unit]:
        """Lease up to `limit` claimable units of `feed_ids` (only `unit_id`, if given) to
        `owner`, in key order."""
        ids = list(feed_ids)
        params = {
            **self._lane(lane, ids),
            "owner": owner,
            "run_id": run_id,
            "limit": limit,
            "window": CLAIM_WINDOW,
            "lease_seconds": lease_seconds,
            "unit_id": unit_id,
        }
        with self.atomic():
            self._run("claim_commit_async", {})
            self._all("lock_limited_feeds", {"feed_ids": ids})
            rows = self._dicts("claim", params)
        return [Unit.from_row(row) for row in sorted(rows, key=lambda r: (r["key"], r["id"]))]

    def candidates(self, lane: Lane, feed_ids: Iterable[int], *, quiet_seconds: float) -> list[int]:
        """Units a claim could take now that were not handed out in the last `quiet_seconds`;
        they are marked as handed out (for a broker's workers to claim by id)."""
        params = {**self._lane(lane, list(feed_ids)), "quiet_seconds": quiet_seconds}
        return sorted(int(r[0]) for r in self._all("candidates", params))

    def feed_of(self, unit_id: int) -> int | None:
        """The feed of a unit, or None if there is no such unit."""
        row = self._one("unit_feed", {"unit_id": unit_id})
        return None if row is None else int(row[0])

    def next_retry_in(self, lane: Lane, feed_ids: Iterable[int]) -> float | None:
        """Seconds until the earliest unit waiting in the lane may be claimed (None: none)."""
        row = self._one("next_retry_in", self._lane(lane, list(feed_ids)))
        return None if row is None or row[0] is None else float(row[0])

    # -- leases -----------------------------------------------------------------------------

    def reclaim_expired(self, lane: Lane, feed_ids: Iterable[int], max_attempts: int) -> int:
        """Return to the queue (or fail, after `max_attempts`) the units of the lane whose
        lease expired or whose owner's connection is gone; return how many."""
        check(lane.leased, lane.ready)
        check(lane.leased, lane.failed)
        params = {**self._lane(lane, list(feed_ids)), "max_attempts": max_attempts}
        params["failed"] = lane.failed.value
        return len(self._all("reclaim_expired", params))

    def heartbeat(self, owner: str, lease_seconds: int) -> set[int]:
        """Renew every lease `owner` holds; return the units it still owns."""
        rows = self._all("heartbeat", {"owner": owner, "lease_seconds": lease_seconds})
        return {int(r[0]) for r in rows}

    def progress(self, unit_id: int, owner: str, bytes_read: int, rows_in: int) -> None:
        self._run(
            "progress",
            {"unit_id": unit_id, "owner": owner, "bytes_read": bytes_read, "rows_in": rows_in},
        )

    # -- outcomes ---------------------------------------------------------------------------

    def finish(
        self,
        unit: Unit,
        lane: Lane,
        *,
        owner: str,
        counts: Counts,
        bytes_read: int,
        status: Status | None = None,
        rejects_key: str | None = None,
    ) -> None:
        """Mark the unit done (`status`, by default the lane's); call inside the unit's data
        transaction, before its commit. A unit that changed rows marks its feed's target as
        changed, for its serving view to be refreshed."""
        target = status or lane.done
        check(lane.leased, target)
        row = self._one(
            "finish_unit",
            {
                "unit_id": unit.id,
                "owner": owner,
                "leased": lane.leased.value,
                "status": target.value,
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
                f"{unit.kind} {unit.id} ({unit.uri}) is no longer owned by {owner}: its lease "
                "expired and another worker took it; this attempt is rolled back"
            )
        if counts.changed:
            self._run("bump_target", {"feed_id": unit.feed_id})

    def end_attempt(
        self,
        unit: Unit,
        lane: Lane,
        *,
        owner: str,
        status: Status,
        error: str,
        detail: dict[str, Any] | None = None,
        delay_seconds: float = 0.0,
        bytes_read: int = 0,
    ) -> bool:
        """Record a failed or abandoned attempt (outside the data transaction, which rolled
        back); False if the lease was already lost."""
        check(lane.leased, status)
        row = self._one(
            "end_attempt",
            {
                "unit_id": unit.id,
                "owner": owner,
                "leased": lane.leased.value,
                "ready": lane.ready.value,
                "status": status.value,
                "error": error,
                "error_detail": Jsonb(detail) if detail else None,
                "delay_seconds": delay_seconds,
                "bytes_read": bytes_read,
            },
        )
        return row is not None

    def retry(
        self,
        lane: Lane,
        *,
        feed_names: Sequence[str] | None = None,
        unit_ids: Sequence[int] | None = None,
        statuses: Sequence[Status] = (S.ERRORED,),
    ) -> list[int]:
        """Put the units of the lane in one of `statuses` back in its queue; return their
        ids."""
        for status in statuses:
            check(status, lane.ready)
        rows = self._all(
            "retry_units",
            {
                "kind": lane.kind,
                "from_statuses": [s.value for s in statuses],
                "to_status": lane.ready.value,
                "feed_names": list(feed_names) if feed_names else None,
                "unit_ids": list(unit_ids) if unit_ids else None,
            },
        )
        return sorted(int(r[0]) for r in rows)

    @staticmethod
    def _lane(lane: Lane, feed_ids: list[int]) -> dict[str, Any]:
        return {
            "feed_ids": feed_ids,
            "kind": lane.kind,
            "ready": lane.ready.value,
            "leased": lane.leased.value,
            "blocking": lane.blocking,
        }
