"""The ledger repository: registration, discovery, runs, targets and what status reads.

A `Ledger` wraps one connection; each method runs one named query. The work queue's claims,
leases and outcomes are `sluice.ledger.queue.WorkQueue`, on the same queries file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from sluice.ledger.base import Repository
from sluice.ledger.queue import Lane
from sluice.ledger.records import (
    Discovered,
    FeedRow,
    LeasedUnit,
    RunCounts,
    Unit,
    UnitRecord,
)
from sluice.ledger.states import Status, check


@dataclass(frozen=True)
class FeedRegistration:
    """What registering a feed writes to ``sluice.feeds``."""

    name: str
    kind: str
    target_id: int | None
    source_url: str
    pattern: str
    options: dict[str, Any]
    schedule: str = "60s"
    max_active: int | None = None
    ordered: bool = False


@dataclass(frozen=True)
class DueFeed:
    id: int
    name: str
    schedule: str


class Ledger(Repository):
    """Ledger operations on one connection."""

    # -- registration -------------------------------------------------------------------

    def upsert_target(self, name: str, spec: dict[str, Any], serving_view: str | None) -> int:
        row = self._one(
            "upsert_target", {"name": name, "spec": Jsonb(spec), "serving_view": serving_view}
        )
        assert row is not None
        return int(row[0])

    def register_feed(self, feed: FeedRegistration) -> tuple[int, bool]:
        """Insert or update a feed; return its id and whether it is active (registering a
        paused feed again does not resume it)."""
        params = dict(feed.__dict__)
        params["options"] = Jsonb(feed.options)
        row = self._one("upsert_feed", params)
        assert row is not None
        return int(row[0]), bool(row[1])

    def feeds(
        self, *, names: Sequence[str] | None = None, ids: Sequence[int] | None = None
    ) -> list[FeedRow]:
        rows = self._dicts(
            "feed_rows",
            {"names": list(names) if names else None, "ids": list(ids) if ids else None},
        )
        return [FeedRow.from_row(row) for row in rows]

    def set_active(self, name: str, active: bool) -> bool:
        """Pause or resume a feed; False if there is no feed of that name."""
        return self._one("set_active", {"name": name, "active": active}) is not None

    def due_feeds(self, feed_ids: Iterable[int]) -> list[DueFeed]:
        """Lock the feeds among `feed_ids` whose scan is due (call in a transaction, then
        `plan_scan` each)."""
        return [
            DueFeed(int(i), str(n), str(s))
            for i, n, s in self._all("due_feeds", {"ids": list(feed_ids)})
        ]

    def plan_scan(self, feed_id: int, at: datetime) -> None:
        self._run("plan_scan", {"feed_id": feed_id, "next_scan_at": at})

    def scanned(self, feed_id: int, error: str | None) -> None:
        self._run("scanned", {"feed_id": feed_id, "error": error})

    # -- runs -------------------------------------------------------------------------------

    def abandon_dead_runs(self) -> int:
        """Mark ``abandoned`` the runs still ``running`` whose process is gone."""
        return len(self._all("abandon_dead_runs"))

    def start_run(
        self, command: str, owner: str, *, kind: str = "import", units: str = "loads"
    ) -> int:
        self._all("abandon_dead_runs")
        row = self._one(
            "start_run", {"command": command, "owner": owner, "kind": kind, "units": units}
        )
        assert row is not None
        return int(row[0])

    def adopt_run(self, run_id: int) -> None:
        self._run("adopt_run", {"run_id": run_id})

    def update_run(self, run_id: int, counts: RunCounts) -> None:
        self._run("update_run", {"run_id": run_id, **_run_params(counts)})

    def finish_run(self, run_id: int, *, status: str, counts: RunCounts, error: str | None) -> None:
        self._run(
            "finish_run",
            {"run_id": run_id, "status": status, "error": error, **_run_params(counts)},
        )

    # -- discovery --------------------------------------------------------------------------

    def discover(
        self, kind: str, feed_id: int, store: str, objects: Sequence[Discovered]
    ) -> list[int]:
        """Record the unit versions of a listing; return the ids of the units that are now
        waiting because of it: versions never seen before, and superseded versions the listing
        shows again. Each supersedes the other versions of its key still waiting or errored."""
        if not objects:
            return []
        listed = {
            "kind": kind,
            "feed_id": feed_id,
            "store": store,
            "keys": [o.key for o in objects],
            "versions": [o.version for o in objects],
        }
        rows = self._all(
            "discover",
            {
                **listed,
                "etags": [o.etag for o in objects],
                "sizes": [o.size for o in objects],
                "modifieds": [o.modified for o in objects],
            },
        )
        check(Status.SUPERSEDED, Status.READY)
        revived = [int(r[0]) for r in self._all("revive_listed", listed)]
        new_ids = [int(r[0]) for r in rows] + revived
        if new_ids:
            for waiting in (Status.READY, Status.READY_FOR_INGESTING, Status.ERRORED):
                check(waiting, Status.SUPERSEDED)
            self._all("supersede_older", {"new_ids": new_ids})
        return new_ids

    def others_of_feed(self, lane: Lane, unit: Unit) -> tuple[int, int, int]:
        """How many other units of the unit's feed wait in the lane, how many are in hand, and
        how many of those waiting were handed to a broker's workers."""
        row = self._one(
            "others_of_feed",
            {
                "feed_id": unit.feed_id,
                "kind": lane.kind,
                "unit_id": unit.id,
                "ready": lane.ready.value,
                "leased": lane.leased.value,
            },
        )
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    def key_loaded_before(self, unit: Unit) -> bool:
        """Whether another version of the unit's object was loaded into its target before."""
        row = self._one(
            "key_loaded_before",
            {
                "feed_id": unit.feed_id,
                "kind": unit.kind,
                "store": unit.store,
                "key": unit.key,
                "unit_id": unit.id,
            },
        )
        return bool(row and row[0])

    def pending(self, lane: Lane, feed_ids: Iterable[int]) -> int:
        """Units of `feed_ids` not through `lane` yet: waiting, backing off or in hand."""
        row = self._one(
            "pending_units",
            {"feed_ids": list(feed_ids), "kind": lane.kind, "statuses": lane.blocking},
        )
        return int(row[0]) if row else 0

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

    def leased_units(self) -> list[LeasedUnit]:
        return [LeasedUnit.from_row(row) for row in self._dicts("leased_units")]

    def recent_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        return self._dicts("recent_runs", {"limit": limit})

    def targets_overview(self) -> list[tuple[Any, ...]]:
        return self._all("targets_overview")

    def feeds_overview(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self._dicts("feeds_overview", {"names": list(names) if names else None})

    def unit(self, unit_id: int) -> UnitRecord | None:
        rows = self._dicts(
            "list_units",
            {"kind": None, "unit_id": unit_id, "feed": None, "status": None, "limit": 1},
        )
        return UnitRecord.from_row(rows[0]) if rows else None

    def units(
        self, kind: str, *, feed: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[UnitRecord]:
        rows = self._dicts(
            "list_units",
            {"kind": kind, "unit_id": None, "feed": feed, "status": status, "limit": limit},
        )
        return [UnitRecord.from_row(row) for row in rows]

    def ping(self) -> None:
        self._all("ping")

    def throughput(self, minutes: int) -> list[dict[str, Any]]:
        return self._dicts("throughput", {"minutes": minutes})

    def compact_tallies(self) -> None:
        """Fold the work queue's running totals (which every statement on it appends to)
        into one row per feed, kind, status and duration bucket (one statement: atomic as
        it stands)."""
        self._run("compact_tallies", {})

    def metrics_units(self) -> list[dict[str, Any]]:
        return self._dicts("metrics_units")

    def metrics_oldest_waiting(self) -> dict[tuple[str, str], float]:
        return {
            (str(feed), str(kind)): float(age)
            for feed, kind, age in self._all("metrics_oldest_waiting")
        }

    def metrics_durations(self) -> list[dict[str, Any]]:
        return self._dicts("metrics_durations")

    def metrics_workers(self, seconds: float) -> dict[str, int]:
        return {str(k): int(n) for k, n in self._all("metrics_workers", {"seconds": seconds})}

    def metrics_refreshes(self) -> dict[str, float]:
        return {str(v): float(s) for v, s in self._all("metrics_refreshes") if v is not None}

    def loads_of_run(self, run_id: int) -> list[tuple[Any, ...]]:
        return self._all("loads_of_run", {"run_id": run_id})

    def staging_leftovers(self) -> list[str]:
        return [str(r[0]) for r in self._all("staging_leftovers")]


def _run_params(counts: RunCounts) -> dict[str, Any]:
    rows = counts.rows
    return {
        "discovered": counts.discovered,
        "claimed": counts.claimed,
        "loaded": counts.done,
        "errored": counts.errored,
        "retried": counts.retried,
        "rows_in": rows.rows_in,
        "inserted": rows.inserted,
        "updated": rows.updated,
        "unchanged": rows.unchanged,
        "rejected": rows.rejected,
        "deleted": rows.deleted,
        "hooks": Jsonb(counts.hooks),
        "counts": Jsonb(counts.details),
    }
