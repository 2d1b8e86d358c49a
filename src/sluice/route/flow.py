"""The routing flow: Incoming files of registered tables ingested into the lake, then moved to
Archive, or to Error with the reason.

Its units (kind ``cubic``, one per object version) go through three lanes of the work
queue, each a step the runner drives with leases, retries and failure isolation per load:

* the scan records each new load in ``ready`` and, in the same transaction, puts it in a batch
  (at most 10 loads and 100 MB; a larger single load alone): ``ready → ready_for_ingesting``;
* ingest ``ready_for_ingesting → ingesting → ready_for_archiving`` (bad input:
  ``ready_for_erroring``);
* archive ``ready_for_archiving → archiving → archived``;
* error ``ready_for_erroring → erroring → errored``.

A batch is what the seed ingested together; here each load of a batch is still its own unit
and transaction, so one bad file never errors its batch-mates. Tables are ordered feeds: a
table's loads go through each lane one at a time in key order (its snapshot's LOAD files, then
its change files by name).
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sluice import faults
from sluice.db import Connection, Database
from sluice.errors import BadInputError, ConfigError, TerminalError, TransientError
from sluice.formats.dfm import MAX_DFM_BYTES, Dfm, dfm_key, parse_dfm
from sluice.lake import Lake, LakeOptions, postgres_catalog
from sluice.ledger.queue import Lane
from sluice.ledger.records import Counts, FeedRow, Unit
from sluice.ledger.registry import FeedRegistry, Scan
from sluice.ledger.repository import FeedRegistration, Ledger
from sluice.ledger.states import Status
from sluice.ledger.steps import Outcome, ProgressSink
from sluice.recipes.cubic.options import TableDeclaration
from sluice.recipes.cubic.tables import stamp
from sluice.route.lakefile import FileSpec, Written, write_file, write_json_lines
from sluice.route.moves import Place, move_with_dfm
from sluice.route.options import KIND, Layout, RouteOptions
from sluice.route.repository import LoadFacts, RouteLedger
from sluice.route.scan import scan_table
from sluice.route.tables import RouteTable
from sluice.store import S3Options, locate

log = logging.getLogger(__name__)

S = Status
INGEST = Lane(
    KIND,
    ready=S.READY_FOR_INGESTING,
    leased=S.INGESTING,
    done=S.READY_FOR_ARCHIVING,
    failed=S.READY_FOR_ERRORING,
    # a load the scan has recorded but not yet batched holds back its table's later files
    upstream=frozenset({S.READY}),
)
ARCHIVE = Lane(
    KIND,
    ready=S.READY_FOR_ARCHIVING,
    leased=S.ARCHIVING,
    done=S.ARCHIVED,
    failed=S.READY_FOR_ARCHIVING,
)
ERROR = Lane(
    KIND, ready=S.READY_FOR_ERRORING, leased=S.ERRORING, done=S.ERRORED, failed=S.READY_FOR_ERRORING
)
LANES = (INGEST, ARCHIVE, ERROR)


@dataclass(frozen=True)
class Places:
    incoming: Place
    archive: Place
    error: Place


class RouteFlow:
    """Registration, scans and the three steps of routed tables."""

    kind = KIND

    def __init__(self, db: Database, options: RouteOptions, layout: Layout) -> None:
        self.db = db
        self.options = options
        self.layout = layout
        self._tables: FeedRegistry[RouteTable] = FeedRegistry(self.adopt)
        self._places: Places | None = None
        self._lake: Lake | None = None
        self._lock = threading.Lock()
        self.ingest = IngestStep(self)
        self.archive = MoveStep(self, ARCHIVE, "archive")
        self.error = MoveStep(self, ERROR, "error")

    @property
    def steps(self) -> tuple[MoveStep, MoveStep, IngestStep]:
        """Moves first: a worker finishes the files already ingested before it takes a new
        one, so Incoming empties as it goes and the move queues stay short."""
        return (self.archive, self.error, self.ingest)

    # -- where things are ----------------------------------------------------------------------

    @property
    def places(self) -> Places:
        with self._lock:
            if self._places is None:
                s3 = S3Options(endpoint_url=self.options.endpoint_url, region=self.options.region)

                def place(url: str) -> Place:
                    store, prefix = locate(url, s3, create=True)
                    return Place(store, prefix)

                self._places = Places(
                    place(self.options.incoming),
                    place(self.options.archive),
                    place(self.options.error),
                )
            return self._places

    @property
    def lake(self) -> Lake:
        with self._lock:
            if self._lake is None:
                url = self.options.lake
                properties: dict[str, str] = {}
                if url.startswith("s3://"):
                    warehouse: Any = url
                    if self.options.endpoint_url:
                        properties["s3.endpoint"] = self.options.endpoint_url
                    properties["s3.region"] = self.options.region
                else:
                    from pathlib import Path

                    warehouse = Path(url.removeprefix("file://"))
                self._lake = Lake(
                    LakeOptions(
                        warehouse=warehouse,
                        catalog_uri=postgres_catalog(self.db.url),
                        namespace="cubic",
                        properties=properties,
                    )
                )
            return self._lake

    def close(self) -> None:
        with self._lock:
            lake, self._lake = self._lake, None
        if lake is not None:
            lake.close()

    # -- tables ---------------------------------------------------------------------------------

    def register(self, ledger: Ledger, declared: TableDeclaration) -> RouteTable:
        """Record a table on the ledger (registering it again updates it; a paused table
        stays paused)."""
        taken = [
            row.name
            for row in ledger.feeds()
            if row.kind == KIND
            and row.name != declared.name
            and row.options.get("prefix") == declared.prefix
        ]
        if taken:
            raise ConfigError(
                f"cubic table {declared.name!r}: the prefix {declared.prefix} is already "
                f"table {taken[0]!r}'s"
            )
        feed_id, active = ledger.register_feed(
            FeedRegistration(
                name=declared.name,
                kind=KIND,
                target_id=None,
                source_url=f"{self.options.incoming.rstrip('/')}/{declared.prefix}",
                pattern="*.csv.gz" if declared.kind != "stream" else "*.json*",
                options=declared.options(),
                schedule=self.options.schedule,
                # only change files must be applied in order; DMAP days are independent
                ordered=declared.kind == "ods",
            )
        )
        return self._tables.keep(RouteTable(feed_id, declared, active))

    def adopt(self, row: FeedRow) -> RouteTable:
        if row.kind != KIND:
            raise ConfigError(f"feed {row.name!r} is a {row.kind!r} feed, not a cubic table")
        declared = TableDeclaration.from_options(row.name, row.options)
        return self._tables.keep(RouteTable(row.id, declared, row.active))

    def source(self, ledger: Ledger, feed_id: int) -> RouteTable:
        return self._tables.get(ledger, feed_id)

    def name_of(self, feed_id: int) -> str:
        return self._tables.name_of(feed_id)

    def scan(self, ledger: Ledger, source: RouteTable) -> Scan:
        found = scan_table(
            ledger,
            source,
            self.places.incoming,
            self.layout,
            cap=self.options.listing_cap,
            batch_loads=self.options.batch_loads,
            batch_bytes=self.options.batch_bytes,
        )
        return Scan(source.name, found.matched, found.new)

    # -- nothing runs after the loads -----------------------------------------------------------

    def sweep(self, ledger: Ledger) -> None:
        """A dead worker's Parquet file is never committed: nothing to clean up here."""

    def needs_after(self, ledger: Ledger, sources: Sequence[RouteTable]) -> list[RouteTable]:
        return []

    def drained(self, ledger: Ledger, sources: Sequence[RouteTable]) -> list[RouteTable]:
        return [s for s in sources if all(ledger.pending(lane, [s.feed_id]) == 0 for lane in LANES)]

    def after(self, ledger: Ledger, sources: Sequence[RouteTable]) -> list[dict[str, Any]]:
        return []


def _facts(tx: Connection, unit: Unit) -> LoadFacts:
    facts = RouteLedger(tx).facts(unit.id)
    if facts is None:
        raise ConfigError(f"load {unit.id} ({unit.uri}) has no routing record")
    return facts


class IngestStep:
    """The step of the lane ingest: one Incoming file into its lake table (and the current
    view, for a table that has one)."""

    lane = INGEST

    def __init__(self, flow: RouteFlow) -> None:
        self.flow = flow

    def label(self, unit: Unit) -> str:
        return self.flow.name_of(unit.feed_id)

    def run(self, unit: Unit, tx: Connection, progress: ProgressSink) -> Outcome:
        table = self.flow.source(Ledger(tx), unit.feed_id)
        decl = table.declaration
        facts = _facts(tx, unit)
        incoming = self.flow.places.incoming
        full = incoming.full(unit.key)
        obj = incoming.store.uri(full)
        dfm = self._dfm(incoming, unit.key) if decl.kind == "ods" else None
        name = posixpath.basename(unit.key)
        if decl.kind == "ods":
            if facts.snapshot is None:
                raise BadInputError("the load has no snapshot", obj=obj)
            partition = {"snapshot": stamp(facts.snapshot), "identifier": name}
        else:
            partition = {"identifier": name}
        spec = FileSpec(
            table=self.flow.layout.lake_table(decl, unit.key),
            obj=obj,
            partition=partition,
            dfm=dfm,
            typed=not decl.raw and dfm is not None,
            tag=f"{unit.id}-{unit.attempts}",
        )
        written = self._write(spec, decl, incoming.store.open(full, etag=unit.etag), unit, progress)
        if decl.current_view and dfm is not None and facts.snapshot is not None:
            self._current(tx, dfm, incoming, unit, facts.snapshot, facts.is_change)
        if decl.lake:
            RouteLedger(tx).ingested(
                unit.id, written.table, written.snapshot_id, written.rows, written.rejects
            )
        return Outcome(
            counts=Counts(rows_in=written.rows, inserted=written.rows, rejected=written.rejects),
            bytes_read=unit.size or 0,
            path="lake" if decl.lake else "route",
        )

    def _write(
        self,
        spec: FileSpec,
        decl: TableDeclaration,
        stream: Iterator[bytes],
        unit: Unit,
        progress: ProgressSink,
    ) -> Written:
        """The file into its lake table (nothing for a table that is only routed)."""
        if not decl.lake:
            return Written(spec.table)
        on_rows = lambda n: progress.advance(unit.id, 0, n)  # noqa: E731
        if decl.kind == "stream":
            return write_json_lines(self.flow.lake, spec, stream, on_rows=on_rows)
        delimiter = spec.dfm.field_delimiter if spec.dfm else ","
        return write_file(self.flow.lake, spec, stream, delimiter=delimiter, on_rows=on_rows)

    def _dfm(self, incoming: Place, key: str) -> Dfm:
        full = incoming.full(dfm_key(key))
        where = incoming.store.uri(full)
        info = incoming.store.find(full)
        if info is None:
            raise BadInputError(
                f"there is no .dfm beside it ({where})", obj=incoming.store.uri(incoming.full(key))
            )
        if info.size > MAX_DFM_BYTES:
            raise BadInputError(f"a .dfm of {info.size:,} bytes is not a .dfm", obj=where)
        return parse_dfm(b"".join(incoming.store.read(full, etag=info.etag)), obj=where)

    def _current(
        self,
        tx: Connection,
        dfm: Dfm,
        incoming: Place,
        unit: Unit,
        snapshot: datetime,
        is_change: bool,
    ) -> None:
        import io

        from sluice import current
        from sluice.export.arrow import ChunkFile

        target = current.view_target(dfm.source_schema, dfm.source_table)
        data = io.BufferedReader(
            ChunkFile(incoming.store.open(incoming.full(unit.key), etag=unit.etag))
        )
        current.apply_file(
            tx,
            target,
            dfm,
            data,
            obj=unit.key,
            snapshot=snapshot,
            change=is_change,
        )

    def ended(self, unit: Unit) -> None:
        """An uncommitted attempt's Parquet file is never referenced by the table."""


class MoveStep:
    """The steps of the lanes archive and error: a file (and its ``.dfm``) moved out of
    Incoming. A move that keeps failing waits (`RouteOptions.defer_seconds`) and is tried
    again, its error on the load: no state needs a person."""

    def __init__(self, flow: RouteFlow, lane: Lane, role: str) -> None:
        self.flow = flow
        self.lane = lane
        self.role = role

    def label(self, unit: Unit) -> str:
        return self.flow.name_of(unit.feed_id)

    def run(self, unit: Unit, tx: Connection, progress: ProgressSink) -> Outcome:
        table = self.flow.source(Ledger(tx), unit.feed_id)
        decl = table.declaration
        facts = _facts(tx, unit)
        route = RouteLedger(tx)
        places = self.flow.places
        if self.role == "archive":
            dst, dst_key = (
                places.archive,
                self.flow.layout.archive_key(decl, unit.key, facts.snapshot),
            )
        else:
            # the unit's error is cleared when this step finishes: the reason stays here
            route.set_reason(unit.id, facts.reason or facts.error or "unknown reason")
            dst, dst_key = places.error, self.flow.layout.error_key(decl, unit.key, facts.modified)
        try:
            moved = move_with_dfm(places.incoming, unit.key, dst, dst_key, dfm=decl.kind == "ods")
        except (TransientError, TerminalError) as exc:
            # A move that cannot be made now (a store refusing, an object in the way that no
            # retry moves) waits and is tried again; its error is on the load meanwhile.
            if isinstance(exc, TransientError) and unit.attempts < self.flow.options.max_attempts:
                raise
            log.warning("%s of load %d deferred: %s", self.role, unit.id, exc)
            route.defer_move(unit.id, self.flow.options.defer_seconds, str(exc))
            return Outcome(status=self.lane.ready, path="deferred")
        if self.role == "archive":
            route.moved(unit.id, archive_key=moved.key, kept_beside=moved.kept_beside)
        else:
            route.moved(unit.id, error_key=moved.key, kept_beside=moved.kept_beside)
        faults.pause(f"{self.role}-commit")
        return Outcome(bytes_read=unit.size or 0, path="already" if moved.already else self.role)

    def ended(self, unit: Unit) -> None:
        """Nothing is held outside the transaction."""
