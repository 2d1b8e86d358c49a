"""Scale-out on Celery: the same work, done by worker processes on any number of machines.

The ledger stays the queue. Celery only carries triggers — "scan feed 3", "process unit 42",
"refresh the view of feed 3" — and each task is a thin shell over the API every other shell
uses (a scan, `Runner.claim_and_process`, the flow's post-load hook). Celery delivers at least
once (``acks_late``, ``reject_on_worker_lost``); the ledger makes that exactly once: a task
whose unit is already done, or in another worker's hands, claims nothing and does nothing.

``sluice scheduler`` decides what is due (`Scheduler` with a `BrokerDispatch`) and sends the
tasks; ``sluice worker`` runs them. A worker that finishes a unit hands out what its feed can
do next (the next unit of an ordered feed, the next within a limit, the serving-view refresh
once the feed is drained), so a chain of work goes on without waiting for the next tick.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown, worker_shutdown

from sluice.api import Engine, open_engine
from sluice.config import Settings
from sluice.errors import ConfigError, SluiceError
from sluice.ledger.records import RunCounts
from sluice.runtime.flows import Flow
from sluice.runtime.runner import Runner
from sluice.runtime.scheduler import Scheduler, Tally, scan
from sluice.runtime.service import join_consumers, register_declared, start_consumers
from sluice.runtime.session import LedgerSession

log = logging.getLogger(__name__)

DISCOVER = "sluice.discover_feed"
PROCESS = "sluice.process_unit"
REFRESH = "sluice.refresh_feed"
#: Seconds before the same feed's post-load hook may be sent again.
AFTER_QUIET = 30.0
#: Seconds the stream consumers get to finish their batch once the worker stops.
CONSUMER_GRACE = 30.0


def make_app(settings: Settings) -> Celery:
    """The Celery app of `settings`' broker, with sluice's tasks."""
    app = Celery("sluice", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.broker_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        # A message is a trigger; the ledger holds the work. A redelivered one is a no-op.
        broker_transport_options={"visibility_timeout": 3600},
    )
    app.task(name=DISCOVER, bind=False)(discover_feed)
    app.task(name=PROCESS, bind=False)(process_unit)
    app.task(name=REFRESH, bind=False)(refresh_feed)
    return app


class BrokerDispatch:
    """Carries the scheduler's decisions out by sending tasks to the workers."""

    def __init__(self, app: Celery, session: LedgerSession, settings: Settings) -> None:
        self.app = app
        self.session = session
        self.settings = settings
        self.sent: dict[str, int] = {"scans": 0, "units": 0, "refreshes": 0}
        self._after_sent: dict[int, float] = {}

    def scan(self, flow: Flow, source: Any) -> None:
        self.app.send_task(DISCOVER, args=[source.feed_id])
        self.sent["scans"] += 1

    def work(self, flow: Flow, sources: Sequence[Any]) -> None:
        """Return the units of dead workers to the queue, and send the units that can be
        claimed now (each once per lease period, however often this runs)."""
        ids = [s.feed_id for s in sources if s.active]
        if not ids:
            return
        queue = self.session.queue()
        options = self.settings.runner
        for step in flow.steps:
            queue.reclaim_expired(step.lane, ids, options.max_attempts)
            for unit_id in queue.candidates(step.lane, ids, quiet_seconds=options.lease_seconds):
                self.app.send_task(PROCESS, args=[unit_id])
                self.sent["units"] += 1

    def after(self, flow: Flow, sources: Sequence[Any]) -> None:
        ledger = self.session.ledger()
        now = time.monotonic()
        for source in flow.drained(ledger, flow.needs_after(ledger, sources)):
            if now - self._after_sent.get(source.feed_id, -AFTER_QUIET) < AFTER_QUIET:
                continue
            self._after_sent[source.feed_id] = now
            self.app.send_task(REFRESH, args=[source.feed_id])
            self.sent["refreshes"] += 1


# -- the worker side ------------------------------------------------------------------------


class WorkerRuntime:
    """What a worker process keeps between tasks: its engine, its run on the ledger, a runner
    whose leases are renewed all along."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = open_engine(settings=settings)
        self.flows = {flow.kind: flow for flow in self.engine.flows}
        self.tally = Tally()
        self.session = LedgerSession(self.engine.db, "worker", kind="worker").start()
        self.session.counts = self.tally.snapshot
        self.runner = Runner(self.engine.db, self.session, settings.runner, on_unit=self.tally.unit)
        self._leases = self.runner.leases()
        self._leases.__enter__()
        self.dispatch = BrokerDispatch(make_app(settings), self.session, settings)

    def _feed(self, feed_id: int) -> tuple[Flow, Any]:
        """The flow of a feed, and the feed as that flow works it."""
        rows = self.session.ledger().feeds(ids=[feed_id])
        if not rows:
            raise ConfigError(f"feed {feed_id} is not registered")
        flow = self.flows.get(rows[0].kind)
        if flow is None:
            raise ConfigError(f"feed {rows[0].name!r} is of a kind this worker cannot do")
        return flow, flow.source(self.session.ledger(), feed_id)

    def process(self, unit_id: int) -> dict[str, Any]:
        feed_id = self.session.queue().feed_of(unit_id)
        if feed_id is None:
            return {"unit": unit_id, "status": "no such unit"}
        flow, source = self._feed(feed_id)
        report = None
        for step in flow.steps:
            report = self.runner.claim_and_process(step, unit_id)
            if report is not None:
                break
        self._follow_up(flow, source)
        if report is None:
            return {"unit": unit_id, "status": "not claimable now (done, in hand or waiting)"}
        return {"unit": unit_id, "status": report.status, "error": report.error}

    def discover(self, feed_id: int) -> dict[str, Any]:
        flow, source = self._feed(feed_id)
        if not source.active:
            return {"feed": feed_id, "status": "paused"}
        new = scan(self.session, flow, source)
        self.tally.discovered(new)
        self.dispatch.work(flow, [source])
        return {"feed": feed_id, "new": new}

    def refresh(self, feed_id: int) -> dict[str, Any]:
        flow, source = self._feed(feed_id)
        hooks = flow.after(self.session.ledger(), [source])
        self.tally.hooks(hooks)
        return {"feed": feed_id, "hooks": hooks}

    def _follow_up(self, flow: Flow, source: Any) -> None:
        try:
            self.dispatch.work(flow, [source])
            self.dispatch.after(flow, [source])
        except SluiceError as exc:  # the scheduler's next tick hands the work out instead
            log.warning("handing out the next work of feed %d failed: %s", source.feed_id, exc)

    def close(self) -> None:
        self._leases.__exit__(None, None, None)
        try:
            self.session.finish("succeeded" if self.tally.snapshot().errored == 0 else "failed")
        finally:
            self.session.close()
            self.engine.close()


_settings: Settings | None = None
_runtime: WorkerRuntime | None = None
_lock = threading.Lock()


def _current() -> WorkerRuntime:
    global _runtime
    with _lock:
        if _runtime is None:
            if _settings is None:
                raise RuntimeError("this process was not started by 'sluice worker'")
            _runtime = WorkerRuntime(_settings)
        return _runtime


def _close(**_: Any) -> None:
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.close()


worker_shutdown.connect(_close, weak=False)
worker_process_shutdown.connect(_close, weak=False)


def discover_feed(feed_id: int) -> dict[str, Any]:
    """Task: scan a feed for new units and hand them out."""
    return _current().discover(feed_id)


def process_unit(unit_id: int) -> dict[str, Any]:
    """Task: claim one unit and do it (nothing if it is done or in another worker's hands)."""
    return _current().process(unit_id)


def refresh_feed(feed_id: int) -> dict[str, Any]:
    """Task: run the post-load hooks of a feed (refresh its target's serving view)."""
    return _current().refresh(feed_id)


def run_worker(
    settings: Settings, *, concurrency: int, pool: str = "threads", loglevel: str = "INFO"
) -> int:
    """Run a Celery worker on `settings`' broker until it is stopped; return its exit code."""
    global _settings
    _settings = settings
    app = make_app(settings)
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--loglevel={loglevel}",
        f"--queues={settings.broker_queue}",
        f"--hostname=sluice-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    # The engine's stream consumers (the Ichnaea fan-out, say) run beside the tasks, in
    # threads of this process, until the worker stops.
    stop = threading.Event()
    with open_engine(settings=settings) as engine:
        threads = start_consumers(engine.consumers, stop, once=False)
        try:
            app.worker_main(argv=argv)
        except SystemExit as exc:
            return int(exc.code or 0)
        finally:
            stop.set()
            join_consumers(threads, CONSUMER_GRACE)
    return 0


# -- the scheduler side ---------------------------------------------------------------------


@dataclass
class SchedulerReport:
    run_id: int
    ticks: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    feed_errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.feed_errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "ticks": self.ticks,
            "sent": self.sent,
            "feed_errors": self.feed_errors,
            "seconds": round(self.seconds, 3),
        }


def run_scheduler(
    engine: Engine, stop: threading.Event, *, once: bool, tick_seconds: float = 1.0
) -> SchedulerReport:
    """Send the due work to the workers, tick by tick, until `stop` is set; with `once`, one
    pass over every feed (all scanned now)."""
    started = time.perf_counter()
    settings = engine.settings
    app = make_app(settings)
    with LedgerSession(engine.db, "scheduler", kind="scheduler", units="scans") as session:
        assert session.run_id is not None
        dispatch = BrokerDispatch(app, session, settings)
        report = SchedulerReport(session.run_id, sent=dispatch.sent)
        report.feed_errors = register_declared(session, engine.declared())
        scheduler = Scheduler(session, engine.flows, dispatch)
        session.counts = lambda: _scheduler_counts(report)
        status = "failed"
        try:
            scheduler.tick(force=once)
            report.ticks = 1
            while not once and not stop.wait(tick_seconds):
                try:
                    scheduler.tick()
                except SluiceError as exc:
                    log.error("scheduler tick failed: %s", exc)
                report.ticks += 1
            status = "succeeded" if report.ok else "failed"
        finally:
            report.seconds = time.perf_counter() - started
            errors = "; ".join(f"{e['feed']}: {e['error']}" for e in report.feed_errors)
            session.finish(status, errors or None)
    return report


def _scheduler_counts(report: SchedulerReport) -> RunCounts:
    return RunCounts(discovered=report.sent.get("scans", 0), details=dict(report.sent))
