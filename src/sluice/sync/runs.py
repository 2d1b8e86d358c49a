"""A sync command on the ledger's list of runs, so that ``sluice status`` shows it beside the
imports: whether it succeeded, how many scopes synced and failed, the rows created, updated,
deleted and unchanged, and why each failed scope failed.

The run row is written on a connection held open for the whole sync: if the process dies, the
next run start finds that connection gone and marks the run ``abandoned``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from sluice.db import Database
from sluice.ledger.repository import Ledger
from sluice.sync.engine import SyncReport


def recorded(db: Database, command: str, sync: Callable[[], SyncReport]) -> SyncReport:
    """Run `sync` as a run of the ledger named `command`; return its report."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    with db.connection(autocommit=True) as conn:
        ledger = Ledger(conn)
        run_id = ledger.start_run(command, owner)
        report: SyncReport | None = None
        error: str | None = None
        try:
            report = sync()
            report.run_id = run_id
            error = failures(report)
        except BaseException as exc:
            error = str(exc) or type(exc).__name__
            raise
        finally:
            status = "succeeded" if report is not None and report.ok else "failed"
            ledger.finish_run(run_id, status=status, stats=run_stats(report, error))
    assert report is not None  # an exception leaves the function before this line
    return report


def failures(report: SyncReport) -> str | None:
    """The failed scopes and their reasons, one clause each, or None."""
    failed = [f"{scope.name}: {scope.error}" for scope in report.scopes if not scope.ok]
    return "; ".join(failed) or None


def run_stats(report: SyncReport | None, error: str | None) -> dict[str, Any]:
    """The run row's counts: scopes stand where loads stand for an import."""
    scopes = report.scopes if report is not None else []
    totals = list(report.totals().values()) if report is not None else []
    created = sum(c.created for c in totals)
    updated = sum(c.updated for c in totals)
    unchanged = sum(c.unchanged for c in totals)
    return {
        "discovered": len(scopes),
        "claimed": len(scopes),
        "loaded": sum(1 for s in scopes if s.ok),
        "errored": sum(1 for s in scopes if not s.ok),
        "retried": 0,
        "rows_in": created + updated + unchanged,
        "inserted": created,
        "updated": updated,
        "unchanged": unchanged,
        "rejected": 0,
        "deleted": sum(c.deleted for c in totals),
        "hooks": [],
        "error": error,
    }
