"""The runner: drives any step over the ledger's work queue, in a pool of worker threads.

It makes every status move itself. A worker claims a unit of a step's lane (a lease, renewed
by a heartbeat thread), opens the unit's transaction, lets the step do the work in it, and
commits the work together with the unit's move to its next status. A failure is recorded
outside that transaction, which rolled back: bad input fails the unit with its message, a
transient error returns it to the queue with backoff (failing it after `max_attempts`), a
vanished object supersedes it, a lost lease records nothing (another worker has the unit).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sluice import faults
from sluice.db import Connection, Database
from sluice.errors import LeaseLost, ObjectGone, SluiceError, TerminalError, TransientError
from sluice.ledger.queue import WorkQueue
from sluice.ledger.records import Unit
from sluice.ledger.states import Status
from sluice.ledger.steps import Step
from sluice.runtime.progress import Progress
from sluice.runtime.report import LoadReport, summary
from sluice.runtime.session import LedgerSession
from sluice.text import redact_secrets

log = logging.getLogger(__name__)
units_log = logging.getLogger("sluice.progress")

#: A run waits for units that will be retried this soon, rather than leaving them for later.
RETRY_WAIT_LIMIT = 60.0
#: Claims that fail in a row (a lock never released, a broken ledger) before the run gives up.
CLAIM_FAILURES = 10
#: Seconds between looks for leases of dead workers while claims keep finding work.
RECLAIM_EVERY = 1.0
#: Seconds an idle worker of a long-running service sleeps before looking for work again.
IDLE_POLL = 1.0


@dataclass(frozen=True)
class RunnerOptions:
    """How the runner works the queue."""

    #: Units worked on at once by one process.
    workers: int = 1
    #: A claimed unit belongs to its worker for this long; the worker renews it while it works.
    lease_seconds: int = 120
    #: A unit whose transient errors exceed this many attempts is failed.
    max_attempts: int = 5


def backoff_seconds(attempts: int) -> float:
    """Delay before retrying a transient failure: 2, 4, 8 ... seconds, at most 5 minutes."""
    return float(min(2 ** max(attempts, 1), 300))


class Runner:
    """Works the units of some steps, for one worker identity (the session's owner)."""

    def __init__(
        self,
        db: Database,
        session: LedgerSession,
        options: RunnerOptions,
        progress: Progress | None = None,
        *,
        on_unit: Callable[[LoadReport], None] | None = None,
    ) -> None:
        self.db = db
        self.session = session
        self.options = options
        self.progress = progress or Progress()
        self.on_unit = on_unit or (lambda report: None)
        self._active: dict[int, tuple[Unit, Step, Connection]] = {}
        self._lock = threading.Lock()
        #: Set when the process is stopping at once: work in hand is cancelled and released.
        self.interrupted = threading.Event()
        self._claim_failures = 0
        self._reclaimed_at = -RECLAIM_EVERY
        #: Set when the worker threads are given up on (stuck past their cancellation).
        self.abandoned = threading.Event()

    @property
    def owner(self) -> str:
        return self.session.owner

    # -- the pool -----------------------------------------------------------------------------

    def work(
        self,
        steps: Sequence[Step],
        feed_ids: Callable[[], list[int]],
        *,
        stop: threading.Event,
        wake: threading.Event | None = None,
        once: bool = True,
    ) -> None:
        """Work the units of `steps` on the feeds `feed_ids()` names, in `options.workers`
        threads, with leases renewed meanwhile. `once`: return when nothing is left to
        claim (or only units retried too late); otherwise keep waiting for work (woken by
        `wake`) until `stop` is set."""
        threads = [
            threading.Thread(
                target=self._worker,
                args=(steps, feed_ids, stop, wake, once),
                name=f"sluice-worker-{i}",
                daemon=True,
            )
            for i in range(self.options.workers)
        ]
        with self.leases():
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive() and not self.abandoned.is_set():
                    thread.join(0.2)  # a signal interrupts a timed join, not a bare one

    @contextmanager
    def leases(self) -> Iterator[None]:
        """Renew the leases this runner holds (and write the run's counts) while the block
        runs, in a heartbeat thread."""
        beat = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(beat,), name="sluice-heartbeat", daemon=True
        )
        heartbeat.start()
        try:
            yield
        finally:
            beat.set()
            heartbeat.join(5)

    def _worker(
        self,
        steps: Sequence[Step],
        feed_ids: Callable[[], list[int]],
        stop: threading.Event,
        wake: threading.Event | None,
        once: bool,
    ) -> None:
        while not stop.is_set() and not self.interrupted.is_set():
            try:
                found = self._next(steps, feed_ids())
            except SluiceError as exc:
                # The ledger connection failed (the server restarted, say): try again on a
                # new one, or give up cleanly when the database stays away.
                if not self._recover(exc, stop):
                    return
                continue
            with self._lock:
                self._claim_failures = 0
            if found is not None:
                self.process(*found)
                continue
            if once:
                wait = self._retry_wait(steps, feed_ids())
                if wait is None:
                    return
                stop.wait(wait)
            elif wake is not None:
                if wake.wait(IDLE_POLL):
                    wake.clear()
            else:
                stop.wait(IDLE_POLL)

    def _next(self, steps: Sequence[Step], feed_ids: list[int]) -> tuple[Step, Unit] | None:
        """Claim one unit of the first step that has one."""
        if not feed_ids:
            return None
        queue = self.session.queue()
        reclaimed = self._reclaim_due()
        if reclaimed:
            self._reclaim(queue, steps, feed_ids)
        found = self._claim(queue, steps, feed_ids)
        if found is None and not reclaimed:  # before concluding, return what dead workers left
            self._reclaim(queue, steps, feed_ids)
            found = self._claim(queue, steps, feed_ids)
        return found

    def _claim(
        self, queue: WorkQueue, steps: Sequence[Step], feed_ids: list[int]
    ) -> tuple[Step, Unit] | None:
        for step in steps:
            units = queue.claim(
                step.lane,
                feed_ids,
                owner=self.owner,
                run_id=self.session.run_id,
                lease_seconds=self.options.lease_seconds,
            )
            if units:
                return step, units[0]
        return None

    def _reclaim(self, queue: WorkQueue, steps: Sequence[Step], feed_ids: list[int]) -> None:
        for step in steps:
            queue.reclaim_expired(step.lane, feed_ids, self.options.max_attempts)

    def _reclaim_due(self) -> bool:
        """Whether to look for leases of dead workers before this claim: at most once every
        `RECLAIM_EVERY` seconds while there is work (the look reads pg_stat_activity, which
        cost more than the claim itself), and always before a worker concludes that nothing
        is left."""
        now = time.monotonic()
        with self._lock:
            if now - self._reclaimed_at < RECLAIM_EVERY:
                return False
            self._reclaimed_at = now
            return True

    def _retry_wait(self, steps: Sequence[Step], feed_ids: list[int]) -> float | None:
        """Seconds to wait for the next unit being retried, if that is soon enough."""
        waits = [
            w
            for step in steps
            if (w := self.session.queue().next_retry_in(step.lane, feed_ids)) is not None
        ]
        if not waits:
            return None
        wait = max(min(waits), 0.05)
        return wait if wait <= RETRY_WAIT_LIMIT else None

    def _recover(self, exc: SluiceError, stop: threading.Event) -> bool:
        if not self.session.broken:
            with self._lock:
                self._claim_failures += 1
                failures = self._claim_failures
            if failures > CLAIM_FAILURES:
                self.session.fail(f"claiming work failed {failures} times in a row: {exc}")
                stop.set()
                return False
            log.warning("claiming failed (%s); trying again", exc)
            return not stop.wait(1.0)
        log.warning("the ledger connection failed (%s); reconnecting", exc)
        for delay in (0.5, 1, 2, 4, 8):
            if stop.wait(delay):
                return False
            try:
                self.session.reconnect()
                return True
            except SluiceError as again:
                log.warning("reconnecting to the ledger failed: %s", again)
        self.session.fail(f"the ledger database stayed unreachable: {exc}")
        stop.set()
        return False

    def _heartbeat(self, stop: threading.Event) -> None:
        every = max(self.options.lease_seconds / 3, 0.5)
        while not stop.wait(every):
            try:
                queue = self.session.queue()
                queue.heartbeat(self.owner, self.options.lease_seconds)
                for unit_id, (nbytes, lines) in self.progress.latest().items():
                    queue.progress(unit_id, self.owner, nbytes, lines)
                self.session.beat()
            except Exception as exc:  # the next beat tries again; leases outlive a few misses
                log.warning("lease renewal failed: %s", exc)

    # -- one unit -------------------------------------------------------------------------------

    def claim_and_process(self, step: Step, unit_id: int) -> LoadReport | None:
        """Claim the unit `unit_id` and process it; None if it cannot be claimed now (done,
        in hand elsewhere, or held back by its feed's limit or order)."""
        queue = self.session.queue()
        feed_id = queue.feed_of(unit_id)
        if feed_id is None:
            return None
        queue.reclaim_expired(step.lane, [feed_id], self.options.max_attempts)
        found = queue.claim(
            step.lane,
            [feed_id],
            owner=self.owner,
            run_id=self.session.run_id,
            lease_seconds=self.options.lease_seconds,
            unit_id=unit_id,
        )
        if not found:
            return None
        return self.process(step, found[0])

    def process(self, step: Step, unit: Unit) -> LoadReport:
        """Do one claimed unit and record its outcome."""
        self.progress.start(unit.id, unit.key, unit.size or 0)
        started = time.perf_counter()
        base = LoadReport(load_id=unit.id, feed=step.label(unit), key=unit.key, status="")
        try:
            outcome = self._attempt(step, unit)
        except LeaseLost as exc:
            report = replace(base, status="lost", error=str(exc))
        except Exception as exc:
            report = self._failed(step, unit, base, exc)
        else:
            report = replace(
                base,
                status=(outcome.status or step.lane.done).value,
                counts=outcome.counts,
                path=outcome.path,
                rejects_key=outcome.rejects_key,
                phases=dict(outcome.phases),
            )
        report = replace(report, seconds=time.perf_counter() - started, attempt=unit.attempts)
        self.progress.finish(unit.id, summary(report))
        units_log.info(
            "load %d: %s",
            unit.id,
            summary(report),
            extra={"unit": _unit_fields(report), "run_id": self.session.run_id},
        )
        self.on_unit(report)
        return report

    def _attempt(self, step: Step, unit: Unit) -> Any:
        with self.db.connection() as tx:
            with self._lock:
                self._active[unit.id] = (unit, step, tx)
            try:
                with tx.transaction():
                    outcome = step.run(unit, tx, self.progress)
                    WorkQueue(tx).finish(
                        unit,
                        step.lane,
                        owner=self.owner,
                        counts=outcome.counts,
                        bytes_read=outcome.bytes_read,
                        status=outcome.status,
                        rejects_key=outcome.rejects_key,
                    )
                    faults.pause("commit")
                return outcome
            finally:
                with self._lock:
                    self._active.pop(unit.id, None)
                step.ended(unit)

    def _failed(self, step: Step, unit: Unit, base: LoadReport, exc: Exception) -> LoadReport:
        lane = step.lane
        if self.interrupted.is_set():
            message = "the worker was stopped before it finished; returned to the queue"
            return self._end(unit, step, base, lane.ready, message)
        if isinstance(exc, ObjectGone):
            return self._end(unit, step, base, Status.SUPERSEDED, str(exc))
        if isinstance(exc, TerminalError):
            detail = exc.detail() if hasattr(exc, "detail") else None
            return self._end(unit, step, base, lane.failed, str(exc), detail)
        if isinstance(exc, TransientError):
            if unit.attempts >= self.options.max_attempts:
                message = f"gave up after {unit.attempts} attempts: {exc}"
                return self._end(unit, step, base, lane.failed, message)
            delay = backoff_seconds(unit.attempts)
            return self._end(unit, step, base, lane.ready, str(exc), delay=delay)
        log.error("%s %d failed unexpectedly", unit.kind, unit.id, exc_info=exc)
        message = f"internal error: {type(exc).__name__}: {exc}"
        return self._end(unit, step, base, lane.failed, message)

    def _end(
        self,
        unit: Unit,
        step: Step,
        base: LoadReport,
        status: Status,
        error: str,
        detail: dict[str, Any] | None = None,
        *,
        delay: float = 0.0,
    ) -> LoadReport:
        error = redact_secrets(error)
        try:
            kept = self.session.queue().end_attempt(
                unit,
                step.lane,
                owner=self.owner,
                status=status,
                error=error,
                detail=detail,
                delay_seconds=delay,
            )
        except SluiceError as exc:  # the lease then expires and the unit returns by itself
            log.warning("could not record the end of %s %d: %s", unit.kind, unit.id, exc)
            kept = False
        return replace(base, status=status.value if kept else "lost", error=error)

    def cancel(self) -> int:
        """Stop the work in hand at once (its transactions roll back and the units return to
        the queue); return how many units were in hand."""
        self.interrupted.set()
        with self._lock:
            active = [tx for _, _, tx in self._active.values()]
        for conn in active:
            try:
                conn.cancel_safe(timeout=5)
            except Exception as exc:  # the lease expires anyway
                log.warning("could not cancel a statement: %s", exc)
        return len(active)

    def stop_now(self, wait: float) -> int:
        """Cancel the work in hand, give it `wait` seconds to roll back and return its units,
        then release whatever is still stuck; return how many units were in hand."""
        held = self.cancel()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._lock:
                if not self._active:
                    return held
            time.sleep(0.05)
        self.abandon()
        return held

    def abandon(self) -> int:
        """Give up on worker threads that did not stop after `cancel` (stuck outside the
        database): return their units to the queue from here, and stop waiting for them."""
        with self._lock:
            stuck = [(unit, step) for unit, step, _ in self._active.values()]
        for unit, step in stuck:
            message = "the worker was stopped before it finished; returned to the queue"
            self._end(
                unit,
                step,
                LoadReport(unit.id, step.label(unit), unit.key, ""),
                step.lane.ready,
                message,
            )
        self.abandoned.set()
        return len(stuck)


def _unit_fields(report: LoadReport) -> dict[str, Any]:
    return {
        "load_id": report.load_id,
        "feed": report.feed,
        "key": report.key,
        "status": report.status,
        "rows": report.counts.as_dict(),
        "seconds": round(report.seconds, 3),
        "error": report.error,
    }
