"""What the ledger says: loads per feed and status, the last errors, the last runs, the
freshness of each target's serving view."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sluice.ledger.repository import Ledger


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

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class TargetEntry:
    name: str
    serving_view: str | None
    stale: bool
    last_change_at: datetime | None
    refreshed_at: datetime | None


@dataclass
class StatusReport:
    loads: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[ErrorEntry] = field(default_factory=list)
    runs: list[RunEntry] = field(default_factory=list)
    targets: list[TargetEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "loads": self.loads,
            "errors": [_plain(e.__dict__) for e in self.errors],
            "runs": [_plain({**r.__dict__, "seconds": r.seconds}) for r in self.runs],
            "targets": [_plain(t.__dict__) for t in self.targets],
        }


def read_status(ledger: Ledger, *, errors: int = 10, runs: int = 5) -> StatusReport:
    report = StatusReport()
    for feed, status, count in ledger.load_counts():
        report.loads.setdefault(str(feed), {})[str(status)] = int(count)
    report.errors = [
        ErrorEntry(int(i), str(f), str(o), str(s), int(a), str(e), at)
        for i, f, o, s, a, e, at in ledger.recent_errors(errors)
    ]
    for row in ledger.recent_runs(runs):
        (
            run_id,
            command,
            status,
            started,
            finished,
            claimed,
            loaded,
            errored,
            rows_in,
            inserted,
            updated,
            unchanged,
            rejected,
            deleted,
            hooks,
            error,
        ) = row
        report.runs.append(
            RunEntry(
                int(run_id),
                str(command),
                str(status),
                started,
                finished,
                int(claimed),
                int(loaded),
                int(errored),
                {
                    "in": int(rows_in),
                    "inserted": int(inserted),
                    "updated": int(updated),
                    "unchanged": int(unchanged),
                    "rejected": int(rejected),
                    "deleted": int(deleted),
                },
                list(hooks or []),
                error,
            )
        )
    report.targets = [
        TargetEntry(str(name), view, int(seq) > int(done), changed, refreshed)
        for name, view, seq, done, changed, refreshed in ledger.targets_overview()
    ]
    return report


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
