"""A backfill: plan a range of days of one export feed, then work them on the queue.

The days are units of the ledger's one work queue, worked by the runtime's runner in
`workers` threads; several backfill processes (or workers) on the same feed share the days,
each taken by one of them. A killed backfill leaves its day in hand; the next one takes it
back (its owner's connection is gone) and goes on from the first unfinished day.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sluice.db import Database
from sluice.export.flow import ExportFlow, Plan
from sluice.export.options import ExportDeclaration
from sluice.ledger.records import RunCounts
from sluice.runtime.progress import Progress
from sluice.runtime.report import LoadReport, RunReport
from sluice.runtime.runner import Runner, RunnerOptions
from sluice.runtime.session import LedgerSession

#: Seconds a stopped backfill gives its days in hand to roll back.
CANCEL_WAIT = 10.0


@dataclass
class BackfillReport:
    """What a backfill planned and what became of each day it worked."""

    run: RunReport
    plan: Plan
    days: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.run.ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "run_id": self.run.run_id,
            "feed": self.plan.feed,
            "days": self.plan.days,
            "queued": len(self.plan.queued),
            "retried": self.plan.retried,
            "done_before": self.plan.done,
            "units": [
                {
                    "day": u.key,
                    "status": u.status,
                    "path": u.path,
                    "rows": u.counts.rows_in,
                    "output_rows": u.counts.inserted,
                    "rejected": u.counts.rejected,
                    "seconds": round(u.seconds, 3),
                    "phases": {k: round(v, 3) for k, v in u.phases.items()},
                    "error": u.error,
                }
                for u in sorted(self.run.final().values(), key=lambda u: u.key)
            ],
            "seconds": round(self.run.seconds, 3),
        }


def backfill(
    db: Database,
    flow: ExportFlow,
    declared: ExportDeclaration,
    days: Sequence[date],
    options: RunnerOptions,
    *,
    command: str,
    force: bool = False,
    refresh_changed: bool = False,
    dump_root: Path | None = None,
    progress: Progress | None = None,
) -> BackfillReport:
    """Register the feed, plan `days`, export every planned day; failed days end errored on
    the ledger with their reason, the others go on."""
    started = time.perf_counter()
    with LedgerSession(db, command, kind="backfill", units="partitions") as session:
        assert session.run_id is not None
        run = RunReport(run_id=session.run_id, command=command)
        lock = threading.Lock()

        def keep(unit: LoadReport) -> None:
            with lock:
                run.loads.append(unit)

        def counts() -> RunCounts:
            with lock:
                return run.run_counts()

        session.counts = counts
        runner = Runner(db, session, options, progress, on_unit=keep)
        status = "failed"
        plan = Plan(declared.name)
        try:
            with session.guard:
                feed = flow.register(session.ledger(), declared)
                plan = flow.plan(
                    session.ledger(),
                    feed,
                    days,
                    force=force,
                    refresh_changed=refresh_changed,
                    dump_root=dump_root,
                    run_id=session.run_id,
                )
            run.discovered = len(plan.queued)
            runner.work(flow.steps, lambda: [feed.feed_id], stop=threading.Event())
            run.interrupted = session.failure
            status = "succeeded" if run.ok else "failed"
        except KeyboardInterrupt:
            held = runner.stop_now(CANCEL_WAIT)
            run.interrupted = f"interrupted with {held} day(s) in hand; they are back in the queue"
            raise
        finally:
            run.seconds = time.perf_counter() - started
            session.finish(status, run.error)
    return BackfillReport(run, plan)
