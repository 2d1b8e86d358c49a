"""Reports of runs: what happened to each unit, and to the run as a whole, as the CLI prints
them and the API returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluice.ledger.records import Counts, RunCounts
from sluice.ledger.states import Status


@dataclass(frozen=True)
class LoadReport:
    """What happened to one attempt at one unit in a run."""

    load_id: int
    feed: str
    key: str
    status: str
    counts: Counts = field(default_factory=Counts)
    path: str = ""
    seconds: float = 0.0
    error: str | None = None
    rejects_key: str | None = None
    #: Seconds per phase of the load (copy, stage, classify, check, update, insert).
    phases: dict[str, float] = field(default_factory=dict)
    #: Which attempt at the unit this was (1 for the first).
    attempt: int = 1


@dataclass
class RunReport:
    """The outcome of a run, as printed by the CLI and returned by the API."""

    run_id: int
    command: str
    discovered: int = 0
    #: Every attempt of the run, in the order they ended (a unit retried within the run
    #: appears once per attempt).
    loads: list[LoadReport] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    #: Feeds that could not be registered or listed; the other feeds still ran.
    feed_errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: Why the run stopped early (a signal, a lost database), if it did.
    interrupted: str | None = None

    @property
    def counts(self) -> Counts:
        total = Counts()
        for load in self.loads:
            total = total + load.counts
        return total

    def final(self) -> dict[int, LoadReport]:
        """Each unit's last attempt in the run."""
        last: dict[int, LoadReport] = {}
        for load in self.loads:
            last[load.load_id] = load
        return last

    def count(self, status: str) -> int:
        """Units whose last attempt in the run ended in `status`."""
        return sum(1 for load in self.final().values() if load.status == status)

    @property
    def ok(self) -> bool:
        return (
            self.count(Status.ERRORED) == 0
            and not self.feed_errors
            and not any(h.get("status") == "error" for h in self.hooks)
            and self.interrupted is None
        )

    @property
    def error(self) -> str | None:
        """The run's reason to have failed, as the ledger records it."""
        parts = [f"{e['feed']}: {e['error']}" for e in self.feed_errors]
        if self.interrupted:
            parts.insert(0, self.interrupted)
        return "; ".join(parts) or None

    def run_counts(self) -> RunCounts:
        """The counts of the run's row in ``sluice.runs``: units once each, attempts apart."""
        final = self.final()
        return RunCounts(
            discovered=self.discovered,
            claimed=len(self.loads),
            done=sum(1 for r in final.values() if r.status == Status.LOADED),
            errored=sum(1 for r in final.values() if r.status == Status.ERRORED),
            retried=sum(1 for r in self.loads if r.status == Status.READY),
            rows=self.counts,
            hooks=self.hooks,
            details={"units": len(final), "attempts": len(self.loads)},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "discovered": self.discovered,
            "loaded": self.count(Status.LOADED),
            "errored": self.count(Status.ERRORED),
            "rows": self.counts.as_dict(),
            "loads": [{**load.__dict__, "counts": load.counts.as_dict()} for load in self.loads],
            "hooks": self.hooks,
            "feed_errors": self.feed_errors,
            "interrupted": self.interrupted,
        }


def summary(load: LoadReport) -> str:
    """One line about one attempt, for logs and progress bars."""
    c = load.counts
    if load.status == Status.LOADED:
        phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in load.phases.items())
        text = (
            f"loaded {c.rows_in:,} rows ({c.inserted:,} new, {c.updated:,} updated, "
            f"{c.unchanged:,} unchanged, {c.rejected:,} rejected) in {load.seconds:.2f} s"
            + (f" ({phases})" if phases else "")
        )
        return text + (f"; rejects in {load.rejects_key}" if load.rejects_key else "")
    return f"{load.status}: {load.error}"
