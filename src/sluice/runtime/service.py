"""The embedded runtime: one process, a scheduler loop and worker threads.

`run_feeds` is one pass (``sluice import``): register the feeds, scan them, work every unit,
run the post-load hooks, report every attempt. `Service` is the long-running form
(``sluice run``): feeds are scanned on their schedules and worked until it is stopped; with
``once`` it makes one pass over every feed and exits when no work is left.

Stopping (`Service.run`'s `stop` event, set by SIGTERM or SIGINT): no new unit is claimed, the
units in hand may finish within the grace period, then whatever is still in hand is cancelled
and returned to the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sluice.db import Database
from sluice.errors import SluiceError
from sluice.ledger.records import RunCounts
from sluice.load.flow import PostgresFlow, Source
from sluice.load.spec import Feed
from sluice.runtime.flows import Consumer, Declared, Flow
from sluice.runtime.progress import Progress
from sluice.runtime.report import LoadReport, RunReport
from sluice.runtime.runner import Runner, RunnerOptions
from sluice.runtime.scheduler import LocalDispatch, Scheduler, Tally
from sluice.runtime.session import LedgerSession

log = logging.getLogger(__name__)

#: Seconds cancelled work gets to notice it was cancelled before its units are released.
CANCEL_WAIT = 5.0


def run_feeds(
    db: Database,
    flow: PostgresFlow,
    feeds: Sequence[Feed],
    options: RunnerOptions,
    *,
    command: str,
    progress: Progress | None = None,
    refresh: bool = True,
    load: bool = True,
) -> RunReport:
    """Register `feeds`; unless `load` is False, scan them and load their new object
    versions; unless `refresh` is False, refresh the serving views that are stale. A feed that
    cannot be registered or listed is reported and the others go on."""
    started = time.perf_counter()
    with LedgerSession(db, command) as session:
        assert session.run_id is not None
        report = RunReport(run_id=session.run_id, command=command)
        lock = threading.Lock()

        def keep(unit: LoadReport) -> None:
            with lock:
                report.loads.append(unit)

        def counts() -> RunCounts:
            with lock:
                return report.run_counts()

        session.counts = counts
        runner = Runner(db, session, options, progress, on_unit=keep)
        status = "failed"
        try:
            sources = _prepare(session, flow, feeds, report, discover=load)
            if load:
                flow.sweep(session.ledger())
                ids = [s.feed_id for s in sources]
                runner.work(flow.steps, lambda: ids, stop=threading.Event())
            if refresh:
                report.hooks = flow.after(session.ledger(), sources)
            report.interrupted = session.failure
            status = "succeeded" if report.ok else "failed"
        except KeyboardInterrupt:
            held = runner.stop_now(CANCEL_WAIT)
            report.interrupted = (
                f"interrupted (SIGINT) with {held} load(s) in hand; they are back in the queue"
            )
            raise
        finally:
            report.seconds = time.perf_counter() - started
            session.finish(status, report.error)
    return report


def _prepare(
    session: LedgerSession,
    flow: PostgresFlow,
    feeds: Sequence[Feed],
    report: RunReport,
    *,
    discover: bool,
) -> list[Source]:
    prepared = []
    for feed in feeds:
        try:
            source = flow.register(session.ledger(), feed)
            if not source.active:
                log.warning(
                    "feed %s is paused (sluice feeds resume %s); skipped", feed.name, feed.name
                )
                continue
            if discover:
                report.discovered += flow.scan(session.ledger(), source).new
        except SluiceError as exc:
            log.error("feed %s: %s", feed.name, exc)
            report.feed_errors.append({"feed": feed.name, "error": str(exc)})
            continue
        prepared.append(source)
    return prepared


def register_declared(session: LedgerSession, declared: Sequence[Declared]) -> list[dict[str, str]]:
    """Register the feeds of the project file; return those that failed, and why (the others
    still run)."""
    errors = []
    for flow, feed in declared:
        try:
            flow.register(session.ledger(), feed)
        except SluiceError as exc:
            log.error("feed %s: %s", feed.name, exc)
            errors.append({"feed": feed.name, "error": str(exc)})
    return errors


@dataclass(frozen=True)
class ServiceOptions:
    """How the long-running service works."""

    runner: RunnerOptions = field(default_factory=RunnerOptions)
    #: Seconds the units in hand get to finish after a stop before they are cancelled.
    grace_seconds: float = 30.0
    #: Seconds between two scheduler ticks.
    tick_seconds: float = 1.0


@dataclass
class ServiceReport:
    run_id: int
    counts: RunCounts
    feed_errors: list[dict[str, str]]
    seconds: float
    #: Units that had to be cancelled when the grace period ran out.
    cancelled: int = 0
    stopped: bool = False
    #: Why the service stopped by itself (its database lost, say), if it did.
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return (
            not self.feed_errors
            and self.counts.errored == 0
            and not any(h.get("status") == "error" for h in self.counts.hooks)
        )

    def as_dict(self) -> dict[str, object]:
        c = self.counts
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "discovered": c.discovered,
            "claimed": c.claimed,
            "loaded": c.done,
            "errored": c.errored,
            "retried": c.retried,
            "rows": c.rows.as_dict(),
            "hooks": c.hooks,
            "feed_errors": self.feed_errors,
            "cancelled": self.cancelled,
            "stopped": self.stopped,
            "reason": self.reason,
        }


class Service:
    """Every active feed on its schedule, worked by a pool of threads, until stopped."""

    def __init__(
        self,
        db: Database,
        flows: Sequence[Flow],
        options: ServiceOptions,
        *,
        declared: Sequence[Declared] = (),
        progress: Progress | None = None,
        consumers: Sequence[Consumer] = (),
    ) -> None:
        self.db = db
        self.flows = list(flows)
        self.consumers = list(consumers)
        self.options = options
        self.declared = list(declared)
        self.progress = progress

    def run(
        self, stop: threading.Event, *, once: bool = False, command: str = "run"
    ) -> ServiceReport:
        started = time.perf_counter()
        tally = Tally()
        with LedgerSession(self.db, command, kind="service") as session:
            assert session.run_id is not None
            session.counts = tally.snapshot
            wake = threading.Event()
            scheduler = Scheduler(session, self.flows, LocalDispatch(session, tally, wake))
            feed_errors = self._register(session)
            runner = Runner(
                self.db, session, self.options.runner, self.progress, on_unit=tally.unit
            )
            report = ServiceReport(session.run_id, tally.counts, feed_errors, 0.0)
            status = "failed"
            try:
                for flow in self.flows:
                    flow.sweep(session.ledger())
                threads = start_consumers(self.consumers, stop, once=once)
                if once:
                    self._once(scheduler, runner, stop)
                else:
                    report.cancelled = self._serve(scheduler, runner, stop, wake)
                join_consumers(threads, self.options.grace_seconds)
                report.stopped = stop.is_set()
                report.reason = session.failure
                report.counts = tally.snapshot()
                status = "succeeded" if report.ok else "failed"
            finally:
                report.seconds = time.perf_counter() - started
                errors = "; ".join(f"{e['feed']}: {e['error']}" for e in feed_errors) or None
                session.finish(status, errors)
        return report

    def _register(self, session: LedgerSession) -> list[dict[str, str]]:
        return register_declared(session, self.declared)

    def _steps(self) -> list[object]:
        return [step for flow in self.flows for step in flow.steps]

    def _once(self, scheduler: Scheduler, runner: Runner, stop: threading.Event) -> None:
        scheduler.tick(force=True)
        steps = [step for flow in self.flows for step in flow.steps]
        runner.work(steps, scheduler.feed_ids, stop=stop, once=True)
        scheduler.tick()  # the post-load hooks of the feeds just drained

    def _serve(
        self, scheduler: Scheduler, runner: Runner, stop: threading.Event, wake: threading.Event
    ) -> int:
        ticker = threading.Thread(
            target=self._tick, args=(scheduler, stop), name="sluice-scheduler", daemon=True
        )
        scheduler.tick(force=False)
        ticker.start()
        done = threading.Event()
        cancelled = [0]

        def guard() -> None:
            stop.wait()
            if done.wait(self.options.grace_seconds):
                return
            log.warning(
                "grace period of %.0f s over: cancelling the work in hand",
                self.options.grace_seconds,
            )
            cancelled[0] = runner.stop_now(CANCEL_WAIT)
            log.warning("%d unit(s) cancelled and returned to the queue", cancelled[0])

        threading.Thread(target=guard, name="sluice-grace", daemon=True).start()
        steps = [step for flow in self.flows for step in flow.steps]
        try:
            runner.work(steps, scheduler.feed_ids, stop=stop, wake=wake, once=False)
        finally:
            done.set()
            ticker.join(self.options.tick_seconds + 5)
        return cancelled[0]

    def _tick(self, scheduler: Scheduler, stop: threading.Event) -> None:
        while not stop.wait(self.options.tick_seconds):
            try:
                scheduler.tick()
            except SluiceError as exc:
                log.error("scheduler tick failed: %s", exc)


#: Seconds a consumer that failed waits before it starts again.
CONSUMER_RESTART = 5.0


def start_consumers(
    consumers: Sequence[Consumer], stop: threading.Event, *, once: bool
) -> list[threading.Thread]:
    """Each consumer in a thread of its own; one that fails is started again after a pause
    (its queue keeps what it held), until `stop` (or, with `once`, after one run)."""

    def keep_running(consumer: Consumer) -> None:
        while not stop.is_set():
            try:
                consumer.run(stop, once=once)
            except SluiceError as exc:
                log.error(
                    "%s failed; starting again in %.0f s: %s", consumer.name, CONSUMER_RESTART, exc
                )
                if not once:
                    stop.wait(CONSUMER_RESTART)
                    continue
            if once:
                return

    threads = []
    for consumer in consumers:
        thread = threading.Thread(
            target=keep_running, args=(consumer,), name=f"sluice-{consumer.name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


def join_consumers(threads: Sequence[threading.Thread], grace_seconds: float) -> None:
    deadline = time.monotonic() + grace_seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("%s did not stop within the grace period", thread.name)
