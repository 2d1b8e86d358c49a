"""Runs of commands that do their work outside the work queue (a hierarchical sync), on the
same list of runs as every other command: one `LedgerSession`, counts that fit the kind."""

from __future__ import annotations

from collections.abc import Callable

from sluice.db import Database
from sluice.ledger.records import Counts, RunCounts
from sluice.runtime.session import LedgerSession
from sluice.sync import SyncReport


def record_sync(db: Database, command: str, sync: Callable[[], SyncReport]) -> SyncReport:
    """Run `sync` as a run of the ledger named `command`; return its report. Its unit counts
    count scopes (a dataset, a set of depositions), its rows those created, updated, deleted
    and left unchanged, and its details hold the counts per entity."""
    report: SyncReport | None = None
    with LedgerSession(db, command, kind="sync", units="scopes") as session:
        session.counts = lambda: sync_counts(report)
        error: str | None = None
        try:
            report = sync()
            report.run_id = session.run_id
            error = failures(report)
        except BaseException as exc:
            error = str(exc) or type(exc).__name__
            raise
        finally:
            ok = report is not None and report.ok
            session.finish("succeeded" if ok else "failed", error)
    return report


def failures(report: SyncReport) -> str | None:
    """The failed scopes and their reasons, one clause each, or None."""
    failed = [f"{scope.name}: {scope.error}" for scope in report.scopes if not scope.ok]
    return "; ".join(failed) or None


def sync_counts(report: SyncReport | None) -> RunCounts:
    if report is None:
        return RunCounts()
    scopes = report.scopes
    totals = report.totals()
    return RunCounts(
        discovered=len(scopes),
        claimed=len(scopes),
        done=sum(1 for s in scopes if s.ok),
        errored=sum(1 for s in scopes if not s.ok),
        rows=Counts(
            # the rows the source describes: each one is created, updated or unchanged
            rows_in=sum(c.created + c.updated + c.unchanged for c in totals.values()),
            inserted=sum(c.created for c in totals.values()),
            updated=sum(c.updated for c in totals.values()),
            unchanged=sum(c.unchanged for c in totals.values()),
            deleted=sum(c.deleted for c in totals.values()),
        ),
        details={
            "entities": {name: dict(c.__dict__) for name, c in totals.items()},
            "requests": dict(report.requests),
            "statements": report.statements,
        },
    )
