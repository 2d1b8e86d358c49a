"""The PostgreSQL load flow: feeds of object versions loaded into one target table each.

It plugs into the runtime like every flow: it registers its feeds on the ledger, scans a
feed's source for new object versions (units of kind ``load``), gives the runner its step
(`LoadStep`: COPY and merge, committed with the unit's move to ``loaded``, and the keys it
changed recorded for an incremental serving copy), and after the units of a target are done
brings the target's serving copy up to date.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sluice import faults
from sluice.db import Connection, Database
from sluice.discovery import list_matching
from sluice.errors import BadInputError, ConfigError, SluiceError, TransientError
from sluice.ledger.queue import LOAD
from sluice.ledger.records import Discovered, FeedRow, Unit
from sluice.ledger.registry import FeedRegistry, Scan
from sluice.ledger.repository import FeedRegistration, Ledger
from sluice.ledger.steps import Outcome, ProgressSink
from sluice.load.bulk import BulkLoader, BulkOptions, LoadJob
from sluice.load.repository import TargetRepository, drop_staging_table
from sluice.load.serving import Due, ServingLedger, ServingTable
from sluice.load.spec import Feed, TableSpec
from sluice.store import S3Options, Store, locate
from sluice.text import has_control

log = logging.getLogger(__name__)

#: The kind of the feeds of this flow in ``sluice.feeds``.
KIND = "postgres"


@dataclass(frozen=True)
class Source:
    """A registered feed, ready to scan and load."""

    feed_id: int
    feed: Feed
    target_id: int
    store: Store
    prefix: str
    active: bool = True

    @property
    def name(self) -> str:
        return self.feed.name


class PostgresFlow:
    """Registration, scans, the load step and serving-view refreshes of table feeds."""

    kind = KIND

    def __init__(
        self, db: Database, *, bulk: BulkOptions, s3: S3Options, parallel: int = 1
    ) -> None:
        self.db = db
        self.s3 = s3
        #: Loads this process runs at once (its worker threads).
        self.parallel = parallel
        self.step = LoadStep(self, BulkLoader(db, bulk))
        self._sources: FeedRegistry[Source] = FeedRegistry(
            self._from_row, kind=KIND, what="a table feed"
        )

    @property
    def steps(self) -> tuple[LoadStep]:
        return (self.step,)

    def name_of(self, feed_id: int) -> str:
        return self._sources.name_of(feed_id)

    # -- feeds ------------------------------------------------------------------------------

    def register(self, ledger: Ledger, feed: Feed) -> Source:
        """Create the feed's target (table, serving view) if missing, and record the target
        and the feed on the ledger."""
        spec = feed.table
        state = TargetRepository(spec).ensure(ledger.conn)
        view = f"{spec.schema}.{spec.serving.name}" if spec.serving else None
        target_id = ledger.upsert_target(f"{spec.schema}.{spec.name}", spec.to_json(), view)
        ServingLedger(ledger.conn).register(
            target_id, spec.serving.kind if spec.serving else None, state
        )
        feed_id, active = ledger.register_feed(
            FeedRegistration(
                name=feed.name,
                kind=KIND,
                target_id=target_id,
                source_url=feed.source,
                pattern=feed.pattern,
                options=feed.options(),
                schedule=feed.schedule,
                max_active=feed.max_active,
                ordered=feed.ordered,
            )
        )
        return self._keep(feed_id, feed, target_id, active)

    def source(self, ledger: Ledger, feed_id: int) -> Source:
        """The feed `feed_id`, as registered here or, failing that, as the ledger has it
        (a worker loading units of a feed another process registered)."""
        return self._sources.get(ledger, feed_id)

    def adopt(self, row: FeedRow) -> Source:
        """A feed from its ledger row."""
        return self._sources.adopt(row)

    def _from_row(self, row: FeedRow) -> Source:
        if row.target_id is None:
            raise ConfigError(f"feed {row.name!r} is a {row.kind!r} feed, not a table feed")
        feed = Feed.from_registration(
            name=row.name,
            source=row.source_url,
            pattern=row.pattern,
            options=row.options,
            schedule_text=row.schedule,
            ordered=row.ordered,
            max_active=row.max_active,
        )
        store, prefix = locate(feed.source, self.s3)
        return Source(row.id, feed, row.target_id, store, prefix, row.active)

    def _keep(self, feed_id: int, feed: Feed, target_id: int, active: bool) -> Source:
        store, prefix = locate(feed.source, self.s3)
        return self._sources.keep(Source(feed_id, feed, target_id, store, prefix, active))

    def scan(self, ledger: Ledger, source: Source) -> Scan:
        """List the feed's source and record the object versions not seen before."""
        found = list_matching(source.store, source.prefix, source.feed.pattern)
        objects = [Discovered(o.key, o.version, o.etag, o.size, o.modified) for o in found]
        new = ledger.discover(LOAD.kind, source.feed_id, source.store.url, objects)
        log.info("%s: %d objects match, %d new", source.feed.name, len(found), len(new))
        return Scan(source.feed.name, len(found), len(new))

    # -- after the loads ----------------------------------------------------------------------

    def sweep(self, ledger: Ledger) -> None:
        """Drop the staging tables of attempts no live worker is on (a worker that died)."""
        leftovers = ledger.staging_leftovers()
        if not leftovers:
            return
        with self.db.connection(autocommit=True) as admin:
            for name in leftovers:
                log.info("dropping leftover staging table sluice_staging.%s", name)
                drop_staging_table(admin, name)

    def needs_after(self, ledger: Ledger, sources: Sequence[Source]) -> list[Source]:
        """The sources whose target's serving copy has work to do: a view older than the
        table, a copy to build, keys to apply."""
        due = {d.target_id for d in ServingLedger(ledger.conn).due([s.target_id for s in sources])}
        return [s for s in sources if s.target_id in due]

    def drained(self, ledger: Ledger, sources: Iterable[Source]) -> list[Source]:
        """The sources none of whose units is waiting or in hand."""
        return [s for s in sources if ledger.pending(LOAD, [s.feed_id]) == 0]

    def after(self, ledger: Ledger, sources: Sequence[Source]) -> list[dict[str, Any]]:
        """Bring the serving copy of every target of `sources` up to date, once: refresh a
        view that some load changed since its last refresh, build a copy that needs it, apply
        the keys the loads recorded (in this run, or in one that died before doing it)."""
        specs = {s.target_id: s.feed.table for s in sources}
        due = ServingLedger(ledger.conn).due(list(specs))
        if any(d.kind == "incremental" for d in due):
            faults.pause("serving")
        hooks: list[dict[str, Any]] = []
        for target in due:
            spec = specs[target.target_id]
            hook: dict[str, Any] = {"kind": "refresh", "target": target.name, "view": target.view}
            try:
                declared = spec.serving.kind if spec.serving is not None else None
                if declared != (target.kind or "matview"):
                    raise ConfigError(
                        f"{target.view} is registered as a {target.kind} serving copy and "
                        f"declared here as {declared}; run the command that declares it"
                    )
                if target.kind == "incremental":
                    hook.update(self._serve(target, spec))
                else:
                    hook.update(self._refresh(ledger, target, spec))
                hook["status"] = "ok"
            except SluiceError as exc:
                # A failed refresh is retried by the next run (or the service's next tick) that
                # finds the copy stale, not by this one.
                message = str(exc).removesuffix("; will retry")
                if isinstance(exc, TransientError):
                    message += "; the next run refreshes it"
                hook.update(status="error", error=message)
                log.error("refreshing %s failed: %s", target.view, message)
            hooks.append(hook)
        return hooks

    def _refresh(self, ledger: Ledger, target: Due, spec: TableSpec) -> dict[str, Any]:
        with self.db.connection(autocommit=True) as conn:
            seconds, concurrently = TargetRepository(spec).refresh_view(conn)
        ledger.mark_refreshed(target.target_id, target.seq)
        how = "concurrently" if concurrently else "(first fill)"
        log.info("refreshed %s %s in %.2f s", target.view, how, seconds)
        return {
            "serving": "matview",
            "method": "refresh" if concurrently else "fill",
            "seconds": round(seconds, 3),
            "concurrently": concurrently,
        }

    def _serve(self, target: Due, spec: TableSpec) -> dict[str, Any]:
        with self.db.connection(autocommit=True) as conn:
            done = ServingTable(spec).serve(conn, target.target_id, target.state)
        log.info(
            "%s %s (%d %s) in %.2f s",
            {"apply": "applied to", "build": "built"}[done.method],
            target.view,
            done.keys,
            "keys" if done.method == "apply" else "rows",
            done.seconds,
        )
        return {
            "serving": "incremental",
            "method": done.method,
            "keys": done.keys,
            "seconds": round(done.seconds, 3),
            # An apply never makes readers wait; a build makes them wait for its swap only.
            "concurrently": done.method != "build",
        }


class LoadStep:
    """The step of the lane ``load``: one object version into its feed's target table."""

    lane = LOAD

    def __init__(self, flow: PostgresFlow, loader: BulkLoader) -> None:
        self.flow = flow
        self.loader = loader
        self._staging: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    def label(self, unit: Unit) -> str:
        return self.flow.name_of(unit.feed_id)

    def run(self, unit: Unit, tx: Connection, progress: ProgressSink) -> Outcome:
        if has_control(unit.key):
            raise BadInputError(
                "the object's key holds a control character (a tab, a newline...); such keys "
                "are not loaded: rename the object",
                obj=unit.uri,
            )
        ledger = Ledger(tx)
        source = self.flow.source(ledger, unit.feed_id)
        job = LoadJob(
            unit,
            source.feed,
            source.store,
            loaded_before=lambda: ledger.key_loaded_before(unit),
            alone=lambda: self._alone(ledger, unit),
            record=ServingLedger(tx).holder(source.target_id, source.feed.table),
        )
        with self._lock:
            staging = self._staging.setdefault(unit.id, [])
        result = self.loader.load(job, tx, progress, staging)
        return Outcome(
            counts=result.counts,
            bytes_read=result.bytes_read,
            path=result.path,
            rejects_key=result.rejects_key,
            phases=dict(result.phases),
        )

    def _alone(self, ledger: Ledger, unit: Unit) -> bool:
        """No other load of the feed in hand, and none waiting that would run beside it: in
        this process's other threads, or in other worker processes (it was handed to them)."""
        waiting, in_hand, handed_out = ledger.others_of_feed(LOAD, unit)
        if in_hand or handed_out:
            return False
        return waiting == 0 or self.flow.parallel == 1

    def ended(self, unit: Unit) -> None:
        """The unit's transaction is over: drop its staging tables."""
        with self._lock:
            staging = self._staging.pop(unit.id, [])
        self.loader.drop_staging(staging)
