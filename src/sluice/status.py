"""What the ledger says: loads per feed and status, the units in hand (and whether their
holder is still there), the last errors, the last runs, the freshness of each serving view,
and the registered feeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sluice.current import view_lags
from sluice.export.repository import ExportLedger
from sluice.ledger.records import LeasedUnit
from sluice.ledger.repository import Ledger
from sluice.load.serving import serving_overview


@dataclass(frozen=True)
class ErrorEntry:
    load_id: int
    feed: str
    object: str
    status: str
    attempts: int
    error: str
    at: datetime | None


@dataclass(frozen=True)
class RunEntry:
    run_id: int
    command: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    claimed: int
    loaded: int
    errored: int
    rows: dict[str, int]
    hooks: list[dict[str, Any]]
    error: str | None
    #: What kind of run (import, sync, service, worker, scheduler) and what its unit
    #: counts count (loads, scopes).
    kind: str = "import"
    units: str = "loads"
    counts: dict[str, Any] = field(default_factory=dict)
    owner: str = ""

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunEntry:
        rows = {
            "in": int(row["rows_in"]),
            **{
                name: int(row[name])
                for name in ("inserted", "updated", "unchanged", "rejected", "deleted")
            },
        }
        return cls(
            run_id=int(row["id"]),
            command=str(row["command"]),
            status=str(row["status"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            claimed=int(row["claimed"]),
            loaded=int(row["loaded"]),
            errored=int(row["errored"]),
            rows=rows,
            hooks=list(row["hooks"] or []),
            error=row["error"],
            kind=str(row["kind"]),
            units=str(row["units"]),
            counts=dict(row["counts"] or {}),
            owner=str(row["owner"]),
        )


@dataclass(frozen=True)
class TargetEntry:
    name: str
    serving_view: str | None
    stale: bool
    last_change_at: datetime | None
    refreshed_at: datetime | None
    #: ``incremental``, ``matview``, or None (no serving copy).
    serving_kind: str | None = None
    #: Keys loads changed that the serving copy does not hold yet.
    pending_keys: int = 0


@dataclass(frozen=True)
class ViewEntry:
    """A current view (``ods.edw_sample``) and how far behind it is."""

    view: str
    snapshot: datetime
    #: The newest change applied (its ``header__timestamp``); None when only LOAD files were.
    newest_change: datetime | None
    #: Seconds from `newest_change` to now; None when no change was applied yet.
    lag_seconds: float | None
    rows: int


@dataclass(frozen=True)
class FeedEntry:
    """A registered feed and how its work stands."""

    name: str
    kind: str
    active: bool
    schedule: str
    max_active: int | None
    ordered: bool
    source: str
    pattern: str
    last_scan_at: datetime | None
    next_scan_at: datetime | None
    scan_error: str | None
    waiting: int
    leased: int
    done: int
    errored: int

    def as_dict(self) -> dict[str, Any]:
        return _plain(self.__dict__)


@dataclass
class StatusReport:
    loads: dict[str, dict[str, int]] = field(default_factory=dict)
    leased: list[LeasedUnit] = field(default_factory=list)
    errors: list[ErrorEntry] = field(default_factory=list)
    runs: list[RunEntry] = field(default_factory=list)
    targets: list[TargetEntry] = field(default_factory=list)
    #: Export days per feed and status (``empty``: the day had no source tables).
    days: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The stream consumers' own status, by name (the Ichnaea fan-out), when any runs.
    consumers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The current views of ODS tables (section absent from `as_dict` when there are none).
    views: list[ViewEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        shown = {
            "loads": self.loads,
            "days": self.days,
            "leased": [{**_plain(u.__dict__), "stuck": u.stuck} for u in self.leased],
            "errors": [_plain(e.__dict__) for e in self.errors],
            "runs": [_plain({**r.__dict__, "seconds": r.seconds}) for r in self.runs],
            "targets": [_plain(t.__dict__) for t in self.targets],
        }
        if self.consumers:
            shown["consumers"] = self.consumers
        if self.views:
            shown["views"] = [_plain(v.__dict__) for v in self.views]
        return shown


def read_status(ledger: Ledger, *, errors: int = 10, runs: int = 5) -> StatusReport:
    report = StatusReport()
    ledger.abandon_dead_runs()  # a run whose process died is not shown as running
    ledger.compact_tallies()
    for feed, status, count in ledger.load_counts():
        report.loads.setdefault(str(feed), {})[str(status)] = int(count)
    report.leased = ledger.leased_units()
    report.errors = [
        ErrorEntry(int(i), str(f), str(o), str(s), int(a), str(e), at)
        for i, f, o, s, a, e, at in ledger.recent_errors(errors)
    ]
    report.runs = [RunEntry.from_row(row) for row in ledger.recent_runs(runs)]
    serving = {copy.target: copy for copy in serving_overview(ledger.conn)}
    for name, view, seq, done, changed, refreshed in ledger.targets_overview():
        copy = serving.get(str(name))
        stale = int(seq) > int(done)
        if copy is not None and copy.current is not None:
            stale = not copy.current
        report.targets.append(
            TargetEntry(
                str(name),
                view,
                stale,
                changed,
                refreshed,
                serving_kind=copy.kind if copy else None,
                pending_keys=copy.pending_keys if copy else 0,
            )
        )
    for feed, status, days in ExportLedger(ledger.conn).day_statuses("partition"):
        report.days.setdefault(feed, {})[status] = days
    report.views = [
        ViewEntry(str(v.target), v.snapshot, v.newest_change, v.lag_seconds, v.rows)
        for v in view_lags(ledger.conn)
    ]
    return report


def read_feeds(ledger: Ledger, names: Sequence[str] | None = None) -> list[FeedEntry]:
    return [
        FeedEntry(
            name=row["name"],
            kind=row["kind"],
            active=row["active"],
            schedule=row["schedule"],
            max_active=row["max_active"],
            ordered=row["ordered"],
            source=row["source_url"],
            pattern=row["pattern"],
            last_scan_at=row["last_scan_at"],
            next_scan_at=row["next_scan_at"],
            scan_error=row["scan_error"],
            waiting=int(row["waiting"]),
            leased=int(row["leased"]),
            done=int(row["done"]),
            errored=int(row["errored"]),
        )
        for row in ledger.feeds_overview(names)
    ]


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


@dataclass(frozen=True)
class ThroughputPoint:
    """What was done in one minute: rows and bytes of the units finished then."""

    minute: datetime
    kind: str
    rows: int
    bytes: int
    units: int

    def as_dict(self) -> dict[str, Any]:
        return _plain(self.__dict__)


def read_throughput(ledger: Ledger, minutes: int) -> list[ThroughputPoint]:
    return [
        ThroughputPoint(row["minute"], row["kind"], row["rows"], row["bytes"], row["units"])
        for row in ledger.throughput(minutes)
    ]


#: Upper bounds, in seconds, of the unit-duration histogram's buckets (the ledger's
#: ``sluice.duration_buckets()`` is the same list, which a test holds).
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, float("inf"))
#: A worker that has not written its run row for this long is not counted as seen.
WORKER_SEEN_SECONDS = 300.0


@dataclass
class LedgerMetrics:
    """What ``/metrics`` reports, read from the ledger's running totals in a handful of
    queries whose cost does not grow with the history."""

    #: Units, rows and bytes by feed, kind and status.
    units: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds since the oldest waiting unit was found, by feed and kind.
    oldest: dict[tuple[str, str], float] = field(default_factory=dict)
    #: Units done and their seconds by feed and duration bucket (each bucket on its own).
    durations: list[dict[str, Any]] = field(default_factory=list)
    workers: dict[str, int] = field(default_factory=dict)
    refreshes: dict[str, float] = field(default_factory=dict)


def read_metrics(ledger: Ledger) -> LedgerMetrics:
    ledger.compact_tallies()
    return LedgerMetrics(
        units=ledger.metrics_units(),
        oldest=ledger.metrics_oldest_waiting(),
        durations=ledger.metrics_durations(),
        workers=ledger.metrics_workers(WORKER_SEEN_SECONDS),
        refreshes=ledger.metrics_refreshes(),
    )
