"""The public Python API. The CLI (`sluice.cli`), the Celery tasks (`sluice.runtime.workers`)
and the recipe commands (`sluice.recipes.*.api`) are thin shells over these verbs.

    >>> from sluice import open_engine
    >>> with open_engine() as engine:          # sluice.toml + SLUICE_* settings
    ...     report = engine.run_feeds(engine.feeds())
    ...     print(engine.status().loads)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from sluice.config import PROJECT_FILE, STARTER, Settings, load_settings
from sluice.db import Database
from sluice.errors import ConfigError, SluiceError
from sluice.ledger.queue import LOAD, WorkQueue
from sluice.ledger.records import UnitRecord
from sluice.ledger.repository import Ledger
from sluice.ledger.states import Status
from sluice.load.flow import KIND as TABLE_FEED
from sluice.load.flow import PostgresFlow
from sluice.load.serving import ServingStatus, serving_overview
from sluice.load.spec import Feed
from sluice.recipes import sync_recipes
from sluice.runtime.flows import Consumer, Declared, Flow
from sluice.runtime.progress import Progress
from sluice.runtime.report import RunReport
from sluice.runtime.service import Service, ServiceOptions, ServiceReport, run_feeds
from sluice.status import (
    FeedEntry,
    LedgerMetrics,
    StatusReport,
    ThroughputPoint,
    read_feeds,
    read_metrics,
    read_status,
    read_throughput,
)
from sluice.store import S3Options
from sluice.sync.flow import SyncFlow

#: The kind of the Cubic routing's units (`sluice.route.options.KIND`, which imports the lake:
#: spelt here so that a CLI start imports no Arrow); their retry moves a file back into Incoming.
ROUTED = "cubic"

if TYPE_CHECKING:
    from sluice.export.flow import ExportFlow
    from sluice.route.flow import RouteFlow

log = logging.getLogger(__name__)

#: What a retry of loads named by id requeues.
BY_ID = (Status.ERRORED, Status.SUPERSEDED)


def init_project(directory: Path | None = None, *, force: bool = False) -> Path:
    """Write a commented starter ``sluice.toml`` in `directory`; return its path."""
    folder = directory or Path.cwd()
    target = folder / PROJECT_FILE
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists (use --force to overwrite it)")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(STARTER, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


class Engine:
    """A configured sluice: settings plus an open database (embedded or not)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    @cached_property
    def flow(self) -> PostgresFlow:
        """The PostgreSQL load flow of this engine (its feeds, scans and load step)."""
        return PostgresFlow(
            self.db,
            bulk=self.settings.bulk,
            s3=self.settings.s3,
            parallel=self.settings.runner.workers,
        )

    @cached_property
    def sync_flow(self) -> SyncFlow:
        """The hierarchical sync flow (``[syncs.NAME]`` feeds: a scope per unit)."""
        return SyncFlow(self.db, s3=self.settings.s3, recipes=sync_recipes())

    @property
    def flows(self) -> list[Flow]:
        """Every flow the runtime works, each with its feed kind and steps."""
        return [self.flow, self.sync_flow, self.dmap_flow, self.cubic_flow, self.export_flow]

    @property
    def consumers(self) -> list[Consumer]:
        """The long-running stream consumers ``sluice run`` and ``sluice worker`` run beside
        the flows: the Ichnaea fan-out when ``[ichnaea] enabled = true``, and a batcher per
        ``[streams.NAME]``."""
        from sluice.stream.consumer import StreamConsumer

        incoming = self.settings.cubic.incoming
        batchers: list[Consumer] = [
            StreamConsumer(declared, incoming, self.cubic_s3)
            for declared in self.settings.streams.values()
        ]
        if not self.settings.ichnaea.enabled:
            return batchers
        from sluice.recipes.ichnaea.fanout import FanoutConsumer

        return [FanoutConsumer(self.db, self.settings.ichnaea, self.settings.s3), *batchers]

    @cached_property
    def export_flow(self) -> ExportFlow:
        """Exports of day-partitioned tables (``[exports.NAME]``; a unit per day, lane
        ``partition``), each feed publishing where its declaration says."""
        from sluice.export.flow import ExportFlow
        from sluice.recipes.mozagg.tables import RECIPES

        return ExportFlow(self.db, recipes=RECIPES)

    @cached_property
    def cubic_flow(self) -> RouteFlow:
        """The Cubic routing (``[cubic]``: Incoming → lake → Archive / Error)."""
        from sluice.recipes.cubic.routing import route_flow

        return route_flow(self.db, self.settings.cubic, self.settings.runner.max_attempts)

    @cached_property
    def dmap_flow(self) -> Flow:
        """The Cubic DMAP fetch on its schedule (``[cubic.dmap]``; a feed of kind ``fetch``)."""
        from sluice.recipes.cubic import dmap_fetch

        s3 = self.cubic_s3
        return dmap_fetch.flow(self.db, self.settings.cubic_dmap, self.settings.cubic.incoming, s3)

    @property
    def cubic_s3(self) -> S3Options:
        """The S3 options of the Cubic locations (their own endpoint, if set)."""
        endpoint = self.settings.cubic.endpoint_url or self.settings.s3.endpoint_url
        return replace(self.settings.s3, endpoint_url=endpoint)

    def declared(self) -> list[Declared]:
        """The feeds and syncs of the project file, each with the flow that registers it."""
        found: list[Declared] = [(self.flow, feed) for feed in self.settings.feeds.values()]
        found += [(self.sync_flow, sync) for sync in self.settings.syncs.values()]
        from sluice.recipes.cubic.dmap_fetch import declaration

        dmap = declaration(self.settings.cubic_dmap)
        found += [(self.dmap_flow, dmap)] if dmap else []
        found += [(self.cubic_flow, table) for table in self.settings.cubic.tables.values()]
        found += [(self.export_flow, export) for export in self.settings.exports.values()]
        return found

    # -- feeds and runs ---------------------------------------------------------------------

    def feeds(self, names: Sequence[str] | None = None) -> list[Feed]:
        """Feeds declared in the project file, all of them or those named."""
        declared = self.settings.feeds
        if not names:
            if not declared:
                where = self.settings.project_file or "no sluice.toml found"
                raise ConfigError(f"no feeds are declared ({where}); see 'sluice init'")
            return list(declared.values())
        missing = [n for n in names if n not in declared]
        if missing:
            known = ", ".join(sorted(declared)) or "none"
            raise ConfigError(f"unknown feed {missing[0]!r} (declared: {known})")
        return [declared[n] for n in names]

    def run_feeds(
        self,
        feeds: Sequence[Feed],
        *,
        command: str = "import",
        progress: Progress | None = None,
        refresh: bool = True,
    ) -> RunReport:
        """Scan `feeds` and load every new object version, then refresh the serving views
        whose tables changed. Loads that fail end errored on the ledger; the run goes on."""
        return run_feeds(
            self.db,
            self.flow,
            feeds,
            self.settings.runner,
            command=command,
            progress=progress,
            refresh=refresh,
        )

    def table_feeds(self, names: Sequence[str] | None = None) -> list[Feed]:
        """The table feeds the ledger has registered (declared in sluice.toml or by a recipe's
        import), all of them or those named."""
        with self.db.connection(autocommit=True) as conn:
            ledger = Ledger(conn)
            rows = [row for row in ledger.feeds(names=names) if row.kind == TABLE_FEED]
            missing = sorted(set(names or ()) - {row.name for row in rows})
            if missing:
                self._known_feed(ledger, missing[0])
                raise ConfigError(f"feed {missing[0]!r} is not a table feed")
        return [self.flow.adopt(row).feed for row in rows]

    def refresh_views(self, feeds: Sequence[Feed]) -> RunReport:
        """Bring the serving copies of `feeds` up to date without scanning or loading: refresh
        stale views, build copies that need it, apply the keys left pending (by a run that
        died before applying them, say)."""
        return run_feeds(
            self.db,
            self.flow,
            feeds,
            self.settings.runner,
            command="refresh",
            refresh=True,
            load=False,
        )

    def serve(
        self,
        stop: threading.Event,
        *,
        once: bool = False,
        grace_seconds: float = 30.0,
        progress: Progress | None = None,
    ) -> ServiceReport:
        """Run every active feed (declared in the project file, or registered on the ledger)
        on its schedule until `stop` is set; with `once`, one pass over all of them."""
        options = ServiceOptions(runner=self.settings.runner, grace_seconds=grace_seconds)
        service = Service(
            self.db,
            self.flows,
            options,
            declared=self.declared(),
            progress=progress,
            consumers=self.consumers,
        )
        return service.run(stop, once=once, command="run --once" if once else "run")

    # -- the ledger -------------------------------------------------------------------------

    def status(self, *, errors: int = 10, runs: int = 5) -> StatusReport:
        with self.db.connection(autocommit=True) as conn:
            report = read_status(Ledger(conn), errors=errors, runs=runs)
        for consumer in self.consumers:
            try:
                figures = consumer.status()
            except SluiceError as exc:  # its queue is away: say so, show the ledger anyway
                figures = {"error": str(exc)}
            if figures is not None:
                report.consumers[consumer.name] = figures
        return report

    def serving(self) -> list[ServingStatus]:
        """Per target: the kind of its serving copy, the rows held until the next apply, and
        whether it holds every change of its table."""
        with self.db.connection(autocommit=True) as conn:
            return serving_overview(conn)

    def throughput(self, minutes: int = 180) -> list[ThroughputPoint]:
        """Rows and bytes done per minute over the last `minutes` minutes."""
        with self.db.connection(autocommit=True) as conn:
            return read_throughput(Ledger(conn), minutes)

    def metrics(self) -> LedgerMetrics:
        """The ledger's figures for ``/metrics``."""
        with self.db.connection(autocommit=True) as conn:
            return read_metrics(Ledger(conn))

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers."""
        with self.db.connection(autocommit=True) as conn:
            Ledger(conn).ping()

    def loads(
        self, *, feed: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[UnitRecord]:
        """The most recent loads, newest first, of one feed and in one status if given."""
        with self.db.connection(autocommit=True) as conn:
            ledger = Ledger(conn)
            if feed is not None:
                self._known_feed(ledger, feed)
            return ledger.units(LOAD.kind, feed=feed, status=status, limit=limit)

    def load(self, load_id: int) -> UnitRecord:
        """Everything the ledger says about one load."""
        with self.db.connection(autocommit=True) as conn:
            found = Ledger(conn).unit(load_id)
        if found is None or found.kind != LOAD.kind:
            raise ConfigError(f"there is no load {load_id}")
        return found

    def retry(
        self, *, feeds: Sequence[str] | None = None, load_ids: Sequence[int] | None = None
    ) -> list[int]:
        """Put loads back in the queue; return their ids. Named by id, any load that is not
        loaded nor in hand (errored, or superseded: its object vanished, say) is requeued; by
        feed, its errored loads (requeuing superseded versions wholesale could load old
        versions over newer ones). An errored Cubic load named by id has its file moved back
        from Error into Incoming, where the next scan loads it again. A load id that does not
        exist, or a feed that is not registered, is an error."""
        routed: list[int] = []
        with self.db.connection(autocommit=True) as conn:
            ledger = Ledger(conn)
            for feed in feeds or ():
                self._known_feed(ledger, feed)
            for load_id in load_ids or ():
                found = ledger.unit(load_id)
                if found is not None and found.kind == ROUTED:
                    routed.append(load_id)
                elif found is None or found.kind != LOAD.kind:
                    raise ConfigError(f"there is no load {load_id}")
            tables = [i for i in load_ids or () if i not in routed]
            requeued: list[int] = []
            if feeds or tables:
                statuses = BY_ID if tables else (Status.ERRORED,)
                requeued = WorkQueue(conn).retry(
                    LOAD, feed_names=feeds, unit_ids=tables or None, statuses=statuses
                )
        if routed:
            from sluice.recipes.cubic.api import retry as move_back

            move_back(self, routed)
        return sorted([*requeued, *routed])

    def feeds_overview(self, names: Sequence[str] | None = None) -> list[FeedEntry]:
        """Every registered feed: its schedule, limits, last scan and units per state."""
        with self.db.connection(autocommit=True) as conn:
            return read_feeds(Ledger(conn), names)

    def pause(self, name: str) -> None:
        """Stop scanning and loading a feed (its units in hand finish)."""
        self._set_active(name, False)

    def resume(self, name: str) -> None:
        self._set_active(name, True)

    def _set_active(self, name: str, active: bool) -> None:
        with self.db.connection(autocommit=True) as conn:
            ledger = Ledger(conn)
            if ledger.set_active(name, active):
                return
            declared = {feed.name: (flow, feed) for flow, feed in self.declared()}
            if name not in declared:
                self._known_feed(ledger, name)
                return
            # Declared in the project file but never run yet: register it, then pause it.
            flow, feed = declared[name]
            flow.register(ledger, feed)
            ledger.set_active(name, active)

    @staticmethod
    def _known_feed(ledger: Ledger, name: str) -> None:
        if not ledger.feeds(names=[name]):
            known = ", ".join(row.name for row in ledger.feeds()) or "none"
            raise ConfigError(f"there is no feed {name!r} (registered: {known})")

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        if "cubic_flow" in self.__dict__:
            self.cubic_flow.close()
        if "export_flow" in self.__dict__:
            self.export_flow.close()
        self.db.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_engine(
    project: Path | None = None, *, settings: Settings | None = None, upgrade: bool = True
) -> Engine:
    """Resolve settings, open the database (starting the embedded server when no URL is
    configured) and bring the ledger schema up to date."""
    resolved = settings or load_settings(project)
    return Engine(resolved, Database.open(resolved.database, upgrade=upgrade))
