"""Exports on the work queue: each day of an export feed is a unit of kind ``partition``.

A feed is one declaration (one aggregate type) of a recipe, with where its source is and
where its days go. Planning a range of days records one unit per day whose key is the day and
whose version is the fingerprint of its source tables (`sluice.export.source.Fingerprint`):
a day already exported is not planned again unless asked (``force``: a new version of every
day; ``refresh_changed``: a new version of the days whose fingerprint changed). The step
exports the day to Parquet, publishes it to the lake and the warehouse (each replacing exactly
that day), and writes the day's row of ``sluice.partitions`` in the unit's transaction; the
runner commits it with the unit's move to ``loaded``. A day without source tables ends
``loaded`` with the outcome ``empty``: nothing is written anywhere, nothing is deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sluice import faults
from sluice.db import Connection, Database
from sluice.errors import ConfigError
from sluice.export.day import DayExport, export_direct
from sluice.export.dump import export_dump
from sluice.export.options import ExportDeclaration
from sluice.export.repository import DayUnit, ExportLedger
from sluice.export.source import SourceDatabase
from sluice.export.spec import ExportSpec
from sluice.ledger.queue import Lane, WorkQueue
from sluice.ledger.records import Counts, Discovered, FeedRow, Unit
from sluice.ledger.registry import FeedRegistry, Scan
from sluice.ledger.repository import FeedRegistration, Ledger
from sluice.ledger.states import Status
from sluice.ledger.steps import Outcome, ProgressSink

log = logging.getLogger(__name__)

#: The kind of the feeds of this flow in ``sluice.feeds``.
KIND = "export"
#: Exports of days: claimed from ready, exported in ingesting, done as loaded.
PARTITION = Lane("partition", ready=Status.READY, leased=Status.INGESTING, done=Status.LOADED)
#: The store of units read straight from the source database.
DIRECT = "postgres"
#: Separates a day's fingerprint from what makes a forced version new.
FORCED = "#force-"

#: A recipe's declarations: aggregate type → its export declaration.
Recipe = Callable[[str], ExportSpec]


class DaySink(Protocol):
    """Somewhere a day's Parquet goes after it is written (the lake, the warehouse)."""

    name: str

    def publish(self, spec: ExportSpec, result: DayExport) -> int | None:
        """Replace the day in this sink by `result`'s file; a snapshot id, if it has one."""
        ...


@dataclass(frozen=True)
class ExportFeed:
    """A registered export feed."""

    feed_id: int
    name: str
    declaration: ExportDeclaration
    spec: ExportSpec
    active: bool = True


def day_key(day: date) -> str:
    return day.isoformat()


def days_between(start: date, end: date) -> list[date]:
    """The days from `start` up to `end`, `end` excluded (as the seed's END_DS)."""
    if end <= start:
        raise ConfigError(f"the range {start} .. {end} holds no day (the end is excluded)")
    return [start + timedelta(days=i) for i in range((end - start).days)]


def fingerprint_of(version: str) -> str:
    return version.split(FORCED, 1)[0]


@dataclass
class Plan:
    """What planning a range of days did."""

    feed: str
    days: int = 0
    queued: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    done: int = 0


class ExportFlow:
    """Registration, planning and the partition step of export feeds."""

    kind = KIND

    def __init__(
        self,
        db: Database,
        *,
        recipes: Mapping[str, Recipe],
        sinks: Sequence[DaySink] | None = None,
    ) -> None:
        self.db = db
        self.recipes = dict(recipes)
        #: Sinks for every feed; None: each feed's own, from its declaration's lake and
        #: warehouse (what a worker adopting a feed from the ledger publishes to).
        self.sinks = None if sinks is None else list(sinks)
        self.step = PartitionStep(self)
        self._feeds: FeedRegistry[ExportFeed] = FeedRegistry(
            self._from_row, kind=KIND, what="an export"
        )
        self._own: dict[tuple[str, str], DaySink] = {}
        self._closers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    @property
    def steps(self) -> tuple[PartitionStep]:
        return (self.step,)

    def _spec(self, recipe: str, kind: str, feed: str) -> ExportSpec:
        found = self.recipes.get(recipe)
        if found is None:
            known = ", ".join(sorted(self.recipes)) or "none"
            raise ConfigError(f"export {feed!r}: unknown recipe {recipe!r} (known: {known})")
        return found(kind)

    def register(self, ledger: Ledger, declared: ExportDeclaration) -> ExportFeed:
        spec = self._spec(declared.recipe, declared.kind, declared.name)
        feed_id, active = ledger.register_feed(
            FeedRegistration(
                name=declared.name,
                kind=KIND,
                target_id=None,
                source_url=declared.source.url or "",
                pattern=spec.name_regex(date(2000, 1, 1)).replace("20000101", "YYYYMMDD"),
                options=declared.options(),
                schedule=declared.schedule,
            )
        )
        return self._feeds.keep(ExportFeed(feed_id, declared.name, declared, spec, active))

    def adopt(self, row: FeedRow) -> ExportFeed:
        return self._feeds.adopt(row)

    def _from_row(self, row: FeedRow) -> ExportFeed:
        declared = ExportDeclaration.from_options(row.name, row.options, row.schedule)
        spec = self._spec(declared.recipe, declared.kind, row.name)
        return ExportFeed(row.id, row.name, declared, spec, row.active)

    def source(self, ledger: Ledger, feed_id: int) -> ExportFeed:
        return self._feeds.get(ledger, feed_id)

    def name_of(self, feed_id: int) -> str:
        return self._feeds.name_of(feed_id)

    # -- planning ----------------------------------------------------------------------------

    def plan(
        self,
        ledger: Ledger,
        feed: ExportFeed,
        days: Sequence[date],
        *,
        force: bool = False,
        refresh_changed: bool = False,
        dump_root: Path | None = None,
        run_id: int | None = None,
    ) -> Plan:
        """Record a unit for each of `days` that needs an export; put errored days back in
        the queue. A day is exported once: again only with `force`, or with
        `refresh_changed` when its source's fingerprint changed since."""
        plan = Plan(feed.name, days=len(days))
        store, versions = self._versions(feed, days, dump_root)
        keys = [day_key(d) for d in days]
        known: dict[str, list[DayUnit]] = {}
        for unit in ExportLedger(ledger.conn).day_units(feed.feed_id, PARTITION.kind, keys):
            if unit.store == store:
                known.setdefault(unit.key, []).append(unit)
        found: list[Discovered] = []
        errored: list[DayUnit] = []
        for key in keys:
            units = known.get(key, [])
            current = versions[key]
            loaded = [u for u in units if u.status == Status.LOADED.value]
            if force:
                found.append(Discovered(key, f"{current}{FORCED}{run_id or time.time_ns()}"))
                continue
            if loaded and not (refresh_changed and fingerprint_of(loaded[-1].version) != current):
                plan.done += 1
                continue
            errored += [u for u in units if u.status == Status.ERRORED.value]
            found.append(Discovered(key, current))
        ledger.discover(PARTITION.kind, feed.feed_id, store, found)
        if errored:
            again = set(WorkQueue(ledger.conn).retry(PARTITION, unit_ids=[u.id for u in errored]))
            plan.retried = sorted(u.key for u in errored if u.id in again)
        plan.queued = sorted(d.key for d in found)
        log.info(
            "%s: %d days, %d to export, %d done before",
            feed.name,
            len(days),
            len(plan.queued),
            plan.done,
        )
        return plan

    def _versions(
        self, feed: ExportFeed, days: Sequence[date], dump_root: Path | None
    ) -> tuple[str, dict[str, str]]:
        if dump_root is not None:
            from sluice.export.dump import dump_fingerprint, dump_folder

            versions = {
                day_key(d): dump_fingerprint(dump_folder(dump_root, feed.spec, d)) for d in days
            }
            return str(dump_root), versions
        source = SourceDatabase(feed.declaration.source, self.db)
        with source.connect() as reader:
            prints = reader.fingerprints(feed.spec, days)
        return DIRECT, {day_key(d): prints[d].digest for d in days}

    def scan(self, ledger: Ledger, feed: ExportFeed) -> Scan:
        """Plan the days the feed declares (from its start up to its end, or today): the
        runtime's scan of an export. A feed without a start is planned only by backfills."""
        declared = feed.declaration
        if declared.start is None:
            return Scan(feed.name, 0, 0)
        days = days_between(declared.start, declared.days_end())
        plan = self.plan(ledger, feed, days)
        return Scan(feed.name, len(days), len(plan.queued))

    # -- where days go ----------------------------------------------------------------------

    def sinks_of(self, feed: ExportFeed) -> list[DaySink]:
        """Where `feed`'s days are published: the flow's sinks if it was given some, else
        the lake and the warehouse its declaration names (opened once per location)."""
        if self.sinks is not None:
            return self.sinks
        declared = feed.declaration
        found: list[DaySink] = []
        with self._lock:
            if declared.lake_dir is not None:
                found.append(self._sink("lake", declared.lake_dir))
            if declared.warehouse is not None:
                found.append(self._sink("warehouse", declared.warehouse))
        return found

    def _sink(self, kind: str, where: Path) -> DaySink:
        key = (kind, str(where))
        known = self._own.get(key)
        if known is not None:
            return known
        from sluice.export.publish import LakeSink, WarehouseSink

        sink: DaySink
        if kind == "lake":
            from sluice.lake import Lake, LakeOptions

            lake = Lake(LakeOptions(where))
            self._closers.append(lake.close)
            sink = LakeSink(lake)
        else:
            from sluice.warehouse import Warehouse, WarehouseOptions

            sink = WarehouseSink(Warehouse(WarehouseOptions(where)))
        self._own[key] = sink
        return sink

    def close(self) -> None:
        """Close the lakes this flow opened for its feeds."""
        with self._lock:
            closers, self._closers, self._own = self._closers, [], {}
        for close in closers:
            close()

    # -- nothing runs after the units of an export --------------------------------------------

    def sweep(self, ledger: Ledger) -> None:
        """Partial Parquet files are removed by the step that wrote them."""

    def needs_after(self, ledger: Ledger, sources: Sequence[ExportFeed]) -> list[ExportFeed]:
        return []

    def drained(self, ledger: Ledger, sources: Sequence[ExportFeed]) -> list[ExportFeed]:
        return [s for s in sources if ledger.pending(PARTITION, [s.feed_id]) == 0]

    def after(self, ledger: Ledger, sources: Sequence[ExportFeed]) -> list[dict[str, Any]]:
        return []


class PartitionStep:
    """The step of the lane ``partition``: one day exported, published, recorded."""

    lane = PARTITION

    def __init__(self, flow: ExportFlow) -> None:
        self.flow = flow

    def label(self, unit: Unit) -> str:
        return self.flow.name_of(unit.feed_id)

    def run(self, unit: Unit, tx: Connection, progress: ProgressSink) -> Outcome:
        started = datetime.now(UTC)
        feed = self.flow.source(Ledger(tx), unit.feed_id)
        declared = feed.declaration
        day = date.fromisoformat(unit.key)
        done = 0

        def on_rows(n: int) -> None:
            nonlocal done
            done += n
            progress.advance(unit.id, 0, done)

        tag = f"{unit.id}-{unit.attempts}"
        if unit.store == DIRECT:
            source = SourceDatabase(declared.source, self.flow.db)
            with source.connect() as reader:
                result = export_direct(
                    reader,
                    feed.spec,
                    day,
                    declared.out_dir,
                    as_string=declared.as_string,
                    tag=tag,
                    on_rows=on_rows,
                )
            path = "direct"
        else:
            from sluice.export.dump import dump_folder

            result = export_dump(
                dump_folder(Path(unit.store), feed.spec, day),
                feed.spec,
                day,
                declared.out_dir,
                as_string=declared.as_string,
                tag=tag,
                on_rows=on_rows,
            )
            path = "dump"
        snapshot = self._publish(feed, result)
        faults.pause(f"export:{unit.key}")
        ExportLedger(tx).record_partition(
            feed_id=unit.feed_id,
            day=day,
            unit_id=unit.id,
            outcome="empty" if result.empty else "exported",
            fingerprint=fingerprint_of(unit.version),
            source_tables=result.tables,
            source_rows=result.source_rows,
            output_rows=result.output_rows,
            rejected_rows=result.rejected_rows,
            bytes=result.bytes,
            location=result.location,
            rejects_location=result.rejects_location,
            snapshot_id=snapshot,
            timings={k: round(v, 3) for k, v in result.seconds.items()},
            started_at=started,
        )
        counts = Counts(
            rows_in=result.source_rows,
            inserted=result.output_rows,
            rejected=result.rejected_rows,
        )
        return Outcome(
            counts=counts,
            bytes_read=result.bytes,
            path="empty" if result.empty else path,
            rejects_key=result.rejects_location,
            phases=dict(result.seconds),
        )

    def _publish(self, feed: ExportFeed, result: DayExport) -> int | None:
        """Publish a day to every sink; the lake's snapshot id. An empty day touches none:
        a source trimmed of old days must not erase what was exported from them."""
        if result.empty:
            return None
        snapshot: int | None = None
        for sink in self.flow.sinks_of(feed):
            begun = time.perf_counter()
            got = sink.publish(feed.spec, result)
            result.seconds[sink.name] = time.perf_counter() - begun
            if got is not None:
                snapshot = got
        return snapshot

    def ended(self, unit: Unit) -> None:
        """The Parquet of a failed attempt stays (its name is the attempt's): it is never
        published, and the next attempt writes its own."""
