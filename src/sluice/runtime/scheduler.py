"""The scheduler: which feeds' scans are due, and what to do about the work they make.

One `Scheduler` serves both runtimes. Each tick it adopts the feeds registered on the ledger,
takes the feeds whose scan is due (each due scan is taken by one scheduler, even with several
running: the feed rows are locked with SKIP LOCKED and their next scan time moved on), and
hands the work to a `Dispatch`:

* `LocalDispatch` (``sluice run``) scans in-process and wakes the worker threads;
* `sluice.runtime.workers.BrokerDispatch` (``sluice scheduler``) sends Celery tasks that do
  the same on any machine.

Schedules live on the feed rows (``schedule``, ``next_scan_at``), so a restart neither skips nor
repeats a scan, and no broker ever holds a long wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from sluice import schedule
from sluice.errors import ConfigError, SluiceError
from sluice.ledger.records import Counts, RunCounts
from sluice.runtime.flows import Flow, Source
from sluice.runtime.report import LoadReport
from sluice.runtime.session import LedgerSession

log = logging.getLogger(__name__)

#: Seconds between two looks at the feed rows for feeds registered elsewhere, or paused.
ADOPT_EVERY = 5.0


class Dispatch(Protocol):
    """Where the scheduler's decisions are carried out."""

    def scan(self, flow: Flow, source: Any) -> None: ...

    def work(self, flow: Flow, sources: Sequence[Any]) -> None: ...

    def after(self, flow: Flow, sources: Sequence[Any]) -> None: ...


@dataclass
class Tally:
    """The counts of a long-running run, kept as totals (a service runs for days)."""

    counts: RunCounts = field(default_factory=RunCounts)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unit(self, report: LoadReport) -> None:
        with self.lock:
            c = self.counts
            c.claimed += 1
            c.done += report.status == "loaded"
            c.errored += report.status == "errored"
            c.retried += report.status == "ready"
            c.rows = c.rows + report.counts

    def discovered(self, count: int) -> None:
        with self.lock:
            self.counts.discovered += count

    def hooks(self, hooks: Iterable[dict[str, Any]]) -> None:
        with self.lock:
            # The last ones only: a service refreshes its views many times.
            self.counts.hooks = [*self.counts.hooks, *hooks][-20:]

    def snapshot(self) -> RunCounts:
        with self.lock:
            return replace(
                self.counts,
                hooks=list(self.counts.hooks),
                rows=Counts(**self.counts.rows.as_dict()),
            )


class LocalDispatch:
    """Carries the scheduler's decisions out in this process."""

    def __init__(self, session: LedgerSession, tally: Tally, wake: threading.Event) -> None:
        self.session = session
        self.tally = tally
        self.wake = wake

    def scan(self, flow: Flow, source: Any) -> None:
        found = scan(self.session, flow, source)
        if found:
            self.tally.discovered(found)
            self.wake.set()

    def work(self, flow: Flow, sources: Sequence[Any]) -> None:
        """Worker threads poll the queue themselves."""

    def after(self, flow: Flow, sources: Sequence[Any]) -> None:
        ledger = self.session.ledger()
        ready = flow.drained(ledger, flow.needs_after(ledger, sources))
        hooks = flow.after(ledger, ready) if ready else []
        if hooks:
            self.tally.hooks(hooks)


def scan(session: LedgerSession, flow: Flow, source: Any) -> int:
    """Scan one feed, recording on its row when it was scanned and what failed; return the
    units found new. A failing source is logged and the others go on."""
    ledger = session.ledger()
    try:
        result = flow.scan(ledger, source)
    except SluiceError as exc:
        log.error("scanning feed %s failed: %s", getattr(source, "name", source.feed_id), exc)
        ledger.scanned(source.feed_id, str(exc))
        return 0
    ledger.scanned(source.feed_id, None)
    return result.new


class Scheduler:
    """Decides, tick by tick, which feeds to scan and when to run their post-load hooks."""

    def __init__(self, session: LedgerSession, flows: Sequence[Flow], dispatch: Dispatch) -> None:
        self.session = session
        self.flows = list(flows)
        self.dispatch = dispatch
        self._sources: dict[int, tuple[Flow, Source]] = {}
        self._unusable: set[str] = set()
        self._adopted_at = 0.0
        self._lock = threading.Lock()

    # -- which feeds --------------------------------------------------------------------------

    def adopt(self, *, force: bool = False) -> None:
        """Learn the feeds registered on the ledger (and which are paused) every few seconds."""
        if not force and time.monotonic() - self._adopted_at < ADOPT_EVERY:
            return
        self._adopted_at = time.monotonic()
        by_kind = {flow.kind: flow for flow in self.flows}
        found: dict[int, tuple[Flow, Source]] = {}
        for row in self.session.ledger().feeds():
            flow = by_kind.get(row.kind)
            if flow is None:
                continue
            try:
                found[row.id] = (flow, flow.adopt(row))
            except ConfigError as exc:
                if row.name not in self._unusable:
                    log.error("feed %s cannot be run here: %s", row.name, exc)
                    self._unusable.add(row.name)
        with self._lock:
            self._sources = found

    def feed_ids(self) -> list[int]:
        """The active feeds, for the workers to claim from."""
        with self._lock:
            return [i for i, (_, source) in self._sources.items() if source.active]

    def active(self) -> list[tuple[Flow, Source]]:
        with self._lock:
            return [pair for pair in self._sources.values() if pair[1].active]

    # -- one tick -----------------------------------------------------------------------------

    def tick(self, *, force: bool = False) -> int:
        """Scan the due feeds (every active one with `force`), hand out their work and run
        the post-load hooks of drained feeds; return the feeds scanned."""
        self.adopt(force=force)
        due = self._take_due(force=force)
        for flow, source in due:
            self.dispatch.scan(flow, source)
        for flow, sources in self._by_flow(self.active()):
            self.dispatch.work(flow, sources)
            self.dispatch.after(flow, sources)
        return len(due)

    def _take_due(self, *, force: bool) -> list[tuple[Flow, Source]]:
        active = {source.feed_id: (flow, source) for flow, source in self.active()}
        if not active:
            return []
        ledger = self.session.ledger()
        now = datetime.now(UTC)
        with ledger.atomic():
            due = ledger.due_feeds(active) if not force else None
            chosen = list(active) if due is None else [d.id for d in due]
            schedules = {d.id: d.schedule for d in due} if due is not None else {}
            for feed_id in chosen:
                text = schedules.get(feed_id) or _schedule_of(active[feed_id][1])
                ledger.plan_scan(feed_id, schedule.parse(text).next_after(now))
        return [active[feed_id] for feed_id in chosen]

    @staticmethod
    def _by_flow(pairs: Sequence[tuple[Flow, Source]]) -> list[tuple[Flow, list[Source]]]:
        grouped: dict[int, tuple[Flow, list[Source]]] = {}
        for flow, source in pairs:
            grouped.setdefault(id(flow), (flow, []))[1].append(source)
        return list(grouped.values())


def _schedule_of(source: Source) -> str:
    feed = getattr(source, "feed", None)
    return str(getattr(feed, "schedule", schedule.DEFAULT))
