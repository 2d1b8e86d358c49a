"""A run: register feeds, discover object versions, load them, refresh serving views.

One `Runner.run` is one row in ``sluice.runs``. Any number of runs (threads, processes,
machines) may work on the same feeds at once: claims use ``FOR UPDATE SKIP LOCKED`` with a
lease, so each load is done exactly once, and a load whose worker died returns to the queue as
soon as its owner's database connection is gone (or its lease expires).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sluice.config import Settings
from sluice.db import Database
from sluice.errors import LeaseLost, ObjectGone, SluiceError, TerminalError, TransientError
from sluice.ledger.repository import Claim, Counts, Discovered, Ledger
from sluice.ledger.states import Status
from sluice.load.bulk import BulkLoader, LoadJob, backoff_seconds
from sluice.load.repository import TargetRepository, drop_staging_table
from sluice.load.spec import Feed
from sluice.runtime.discovery import list_matching
from sluice.runtime.progress import Progress
from sluice.store import Store, locate

log = logging.getLogger(__name__)

#: A run waits for loads that will be retried this soon, rather than leaving them for later.
RETRY_WAIT_LIMIT = 60.0


@dataclass(frozen=True)
class LoadReport:
    """What happened to one load in a run."""

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


@dataclass
class RunReport:
    """The outcome of a run, as printed by the CLI and returned by the API."""

    run_id: int
    command: str
    discovered: int = 0
    loads: list[LoadReport] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    #: Feeds that could not be registered or listed; the other feeds still ran.
    feed_errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> Counts:
        total = Counts()
        for load in self.loads:
            total = total + load.counts
        return total

    def count(self, status: str) -> int:
        return sum(1 for load in self.loads if load.status == status)

    @property
    def ok(self) -> bool:
        return (
            self.count(Status.ERRORED) == 0
            and not self.feed_errors
            and not any(h.get("status") == "error" for h in self.hooks)
        )

    def as_dict(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "run_id": self.run_id,
            "command": self.command,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "discovered": self.discovered,
            "loaded": self.count(Status.LOADED),
            "errored": self.count(Status.ERRORED),
            "rows": counts.__dict__,
            "loads": [{**load.__dict__, "counts": load.counts.__dict__} for load in self.loads],
            "hooks": self.hooks,
            "feed_errors": self.feed_errors,
        }


@dataclass(frozen=True)
class _Registered:
    feed: Feed
    table_id: int
    target_id: int
    store: Store


class Runner:
    """Runs feeds to completion in this process."""

    def __init__(self, db: Database, settings: Settings, progress: Progress | None = None):
        self.db = db
        self.settings = settings
        self.options = settings.load
        self.progress = progress or Progress()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.loader = BulkLoader(db, self.options, self.owner)

    def run(
        self,
        feeds: Sequence[Feed],
        *,
        command: str,
        refresh: bool = True,
        load: bool = True,
    ) -> RunReport:
        """Register `feeds`; unless `load` is False, discover and load their new object
        versions; unless `refresh` is False, refresh the serving views that are stale. A feed
        that cannot be registered or listed is reported and the others go on."""
        started = time.perf_counter()
        with self.db.connection(autocommit=True) as conn:
            ledger = Ledger(conn)
            run_id = ledger.start_run(command, self.owner)
            report = RunReport(run_id=run_id, command=command)
            status, error = "failed", None
            try:
                registered = self._prepare(ledger, feeds, report, discover=load)
                if load:
                    self._sweep_staging(ledger)
                    self._work(ledger, registered, run_id, report)
                if refresh:
                    report.hooks = self._refresh(ledger, registered)
                status = "succeeded" if report.ok else "failed"
                error = "; ".join(f"{e['feed']}: {e['error']}" for e in report.feed_errors) or None
            except SluiceError as exc:
                error = str(exc)
                raise
            finally:
                report.seconds = time.perf_counter() - started
                self._finish(ledger, report, status, error)
        return report

    def _prepare(
        self, ledger: Ledger, feeds: Sequence[Feed], report: RunReport, *, discover: bool
    ) -> list[_Registered]:
        registered = []
        for feed in feeds:
            try:
                reg = self._register(ledger, feed)
                if discover:
                    report.discovered += self._discover(ledger, reg)
            except SluiceError as exc:
                log.error("feed %s: %s", feed.name, exc)
                report.feed_errors.append({"feed": feed.name, "error": str(exc)})
                continue
            registered.append(reg)
        return registered

    # -- steps ------------------------------------------------------------------------------

    def _register(self, ledger: Ledger, feed: Feed) -> _Registered:
        spec = feed.table
        TargetRepository(spec).ensure(ledger.conn)
        view = f"{spec.schema}.{spec.serving.name}" if spec.serving else None
        target_id = ledger.upsert_target(f"{spec.schema}.{spec.name}", spec.to_json(), view)
        table_id = ledger.upsert_table(
            name=feed.name,
            target_id=target_id,
            source_url=feed.source,
            pattern=feed.pattern,
            options={"constants": feed.constants, "table": spec.to_json()},
        )
        store, _ = locate(feed.source, self.settings.s3)
        return _Registered(feed, table_id, target_id, store)

    def _sweep_staging(self, ledger: Ledger) -> None:
        leftovers = ledger.staging_leftovers()
        if not leftovers:
            return
        with self.db.connection(autocommit=True) as admin:
            for name in leftovers:
                log.info("dropping leftover staging table sluice_staging.%s", name)
                drop_staging_table(admin, name)

    def _discover(self, ledger: Ledger, reg: _Registered) -> int:
        _, prefix = locate(reg.feed.source, self.settings.s3)
        found = list_matching(reg.store, prefix, reg.feed.pattern)
        objects = [Discovered(o.key, o.version, o.etag, o.size, o.modified) for o in found]
        new = ledger.discover(reg.table_id, reg.store.url, objects)
        log.info("%s: %d objects match, %d new", reg.feed.name, len(found), len(new))
        return len(new)

    def _work(
        self, ledger: Ledger, registered: list[_Registered], run_id: int, report: RunReport
    ) -> None:
        by_table = {r.table_id: r for r in registered}
        table_ids = list(by_table)
        lock = threading.Lock()
        stop = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(ledger, stop), name="sluice-heartbeat", daemon=True
        )
        heartbeat.start()

        def worker() -> None:
            while True:
                ledger.reclaim_expired(table_ids, self.options.max_attempts)
                claims = ledger.claim(
                    table_ids,
                    owner=self.owner,
                    run_id=run_id,
                    limit=1,
                    lease_seconds=self.options.lease_seconds,
                )
                if not claims:
                    wait = self._next_retry_in(ledger, table_ids)
                    if wait is None:
                        return
                    time.sleep(wait)
                    continue
                for claim in claims:
                    outcome = self._load(ledger, claim, by_table[claim.table_id])
                    with lock:
                        report.loads.append(outcome)

        try:
            threads = [
                threading.Thread(target=worker, name=f"sluice-worker-{i}")
                for i in range(self.options.workers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            stop.set()
            heartbeat.join()

    def _next_retry_in(self, ledger: Ledger, table_ids: list[int]) -> float | None:
        wait = ledger.next_retry_in(table_ids)
        if wait is None:
            return None
        wait = max(wait, 0.05)
        return wait if wait <= RETRY_WAIT_LIMIT else None

    def _heartbeat(self, ledger: Ledger, stop: threading.Event) -> None:
        every = max(self.options.lease_seconds / 3, 0.5)
        while not stop.wait(every):
            try:
                ledger.heartbeat(self.owner, self.options.lease_seconds)
                for load_id, (nbytes, lines) in self.progress.latest().items():
                    ledger.progress(load_id, self.owner, nbytes, lines)
            except Exception as exc:  # the next beat tries again; leases outlive a few misses
                log.warning("lease renewal failed: %s", exc)

    def _load(self, ledger: Ledger, claim: Claim, reg: _Registered) -> LoadReport:
        job = LoadJob(claim, reg.feed, reg.target_id, reg.store)
        self.progress.start(claim.load_id, claim.key, claim.size)
        started = time.perf_counter()
        base = LoadReport(load_id=claim.load_id, feed=reg.feed.name, key=claim.key, status="")
        try:
            result = self.loader.load(job, self.progress)
        except LeaseLost as exc:
            outcome = replace(base, status="lost", error=str(exc))
        except ObjectGone as exc:
            outcome = self._end(ledger, claim, base, Status.SUPERSEDED, str(exc))
        except TerminalError as exc:
            detail = exc.detail() if hasattr(exc, "detail") else None
            outcome = self._end(ledger, claim, base, Status.ERRORED, str(exc), detail)
        except TransientError as exc:
            if claim.attempts >= self.options.max_attempts:
                message = f"gave up after {claim.attempts} attempts: {exc}"
                outcome = self._end(ledger, claim, base, Status.ERRORED, message)
            else:
                delay = backoff_seconds(claim.attempts)
                outcome = self._end(ledger, claim, base, Status.READY, str(exc), delay=delay)
        except Exception as exc:
            log.exception("load %d failed unexpectedly", claim.load_id)
            message = f"internal error: {type(exc).__name__}: {exc}"
            outcome = self._end(ledger, claim, base, Status.ERRORED, message)
        else:
            outcome = replace(
                base,
                status=Status.LOADED.value,
                counts=result.counts,
                path=result.path,
                rejects_key=result.rejects_key,
                phases=dict(result.phases),
            )
        outcome = replace(outcome, seconds=time.perf_counter() - started)
        self.progress.finish(claim.load_id, _summary(outcome))
        return outcome

    def _end(
        self,
        ledger: Ledger,
        claim: Claim,
        base: LoadReport,
        status: Status,
        error: str,
        detail: dict[str, Any] | None = None,
        *,
        delay: float = 0.0,
    ) -> LoadReport:
        kept = ledger.end_attempt(
            claim,
            owner=self.owner,
            status=status,
            error=error,
            detail=detail,
            delay_seconds=delay,
        )
        return replace(base, status=status.value if kept else "lost", error=error)

    def _refresh(self, ledger: Ledger, registered: list[_Registered]) -> list[dict[str, Any]]:
        """Refresh the serving view of every target some load changed since its last refresh
        (in this run or in a run that died before refreshing)."""
        specs = {r.target_id: r.feed.table for r in registered}
        hooks: list[dict[str, Any]] = []
        for target_id, name, view, seq in ledger.stale_targets(specs):
            hook: dict[str, Any] = {"kind": "refresh", "target": name, "view": view}
            try:
                with self.db.connection(autocommit=True) as conn:
                    seconds, concurrently = TargetRepository(specs[target_id]).refresh_view(conn)
                hook["seconds"] = round(seconds, 3)
                hook["concurrently"] = concurrently
                ledger.mark_refreshed(target_id, seq)
                hook["status"] = "ok"
                how = "concurrently" if concurrently else "(first fill)"
                log.info("refreshed %s %s in %.2f s", view, how, hook["seconds"])
            except SluiceError as exc:
                hook.update(status="error", error=str(exc))
                log.error("refreshing %s failed: %s", view, exc)
            hooks.append(hook)
        return hooks

    def _finish(self, ledger: Ledger, report: RunReport, status: str, error: str | None) -> None:
        counts = report.counts
        ledger.finish_run(
            report.run_id,
            status=status,
            stats={
                "discovered": report.discovered,
                "claimed": len(report.loads),
                "loaded": report.count(Status.LOADED),
                "errored": report.count(Status.ERRORED),
                "retried": report.count(Status.READY),
                "rows_in": counts.rows_in,
                "inserted": counts.inserted,
                "updated": counts.updated,
                "unchanged": counts.unchanged,
                "rejected": counts.rejected,
                "deleted": counts.deleted,
                "hooks": report.hooks,
                "error": error,
            },
        )


def _summary(load: LoadReport) -> str:
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
