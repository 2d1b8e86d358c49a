"""The Postgres bulk path: one claimed load, from object bytes to committed rows.

Two ways in, one transaction out:

* **direct** — the object's bytes stream through one ``COPY`` straight into the target, inside
  a savepoint. Used when the rows are expected to be new (an empty target, an object key never
  loaded before) and for append/replace. If a row hits an existing key, or the data is bad, the
  savepoint is rolled back and the load goes the staged way.
* **staged** — the bytes are cut into chunks of whole records and COPYed in parallel into an
  unlogged staging table (several connections, so parsing uses every core). Then one set-based
  merge moves them into the target: new keys inserted, changed values updated, identical rows
  left alone. Bad rows are rescued per chunk when the table says ``on_bad_rows = "reject"``.

Either way the target change and the ledger row's move to ``loaded`` commit in the same
transaction, so a crash at any instant neither loses nor doubles a file.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from sluice import faults
from sluice.db import Connection, Database
from sluice.errors import BadInputError
from sluice.formats.compression import gunzip
from sluice.formats.csv import Chunk, chunks, record_line, without_header
from sluice.formats.streams import (
    MAX_LINE_BYTES,
    BadStream,
    LineGuard,
    Meter,
    prefetch,
    without_bom,
)
from sluice.ledger.records import Counts, Unit
from sluice.ledger.steps import ProgressSink
from sluice.load.rejects import Reject, rejects_key, render, rescue
from sluice.load.repository import KeyExists, TargetRepository, drop_staging_table
from sluice.load.serving import RowHolder
from sluice.load.spec import Feed
from sluice.load.timing import Phases
from sluice.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class BulkOptions:
    """How the bulk path reads and stages an object."""

    #: Connections that COPY into staging at once when a file is staged before its merge.
    stage_parallelism: int = 2
    #: Bytes per COPY chunk on the staged path (also the unit of rescue for bad rows).
    chunk_bytes: int = 8 << 20
    #: The longest physical line of an object: a longer one fails the load instead of being
    #: buffered (by COPY, or by the cutting into chunks) whatever its size.
    max_line_bytes: int = MAX_LINE_BYTES


@dataclass(frozen=True)
class LoadJob:
    """One claimed object version to load into its feed's target."""

    claim: Unit
    feed: Feed
    store: Store
    #: Whether another version of the object was loaded into the target before (then its
    #: rows most likely update existing keys, and the direct path would only fail).
    loaded_before: Callable[[], bool] = lambda: False
    #: Whether the feed's other loads will not run while this one does. Only then does a first
    #: load build the empty table's indexes after its COPY: that takes the table's exclusive
    #: lock for the whole load, and loads running beside it would wait instead of working.
    alone: Callable[[], bool] = lambda: True
    #: Holds the rows the load changes for the target's incremental serving copy (None:
    #: the copy is a materialized view, or not built yet, or there is none).
    record: RowHolder | None = None


@dataclass
class LoadResult:
    counts: Counts
    path: str
    bytes_read: int
    rejects_key: str | None = None
    phases: Phases = field(default_factory=Phases)


@dataclass
class _Staged:
    rows: int = 0
    rejects: list[Reject] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class BulkLoader:
    """Loads objects into their targets; the caller owns the transaction and the ledger."""

    def __init__(self, db: Database, options: BulkOptions) -> None:
        self.db = db
        self.options = options
        # Feeds whose new objects turned out to update existing keys: stage them directly.
        self._prefer_staged: set[int] = set()

    def load(
        self, job: LoadJob, conn: Connection, sink: ProgressSink, staging: list[str]
    ) -> LoadResult:
        """Load `job` inside the open transaction of `conn`; raise on failure (the caller
        rolls back, and nothing of the load is left). The staging tables it creates are
        named in `staging`: the caller drops them with `drop_staging` once the transaction
        has ended (the transaction holds them until then)."""
        meter = Meter()
        repo = TargetRepository(job.feed.table)
        result = self._attempt(job, conn, repo, meter, sink, staging)
        self._check_rows(job, result)
        return result

    def _attempt(
        self,
        job: LoadJob,
        conn: Connection,
        repo: TargetRepository,
        meter: Meter,
        sink: ProgressSink,
        staging_names: list[str],
    ) -> LoadResult:
        repo.begin(conn, job.feed.constants)
        if self._direct_allowed(job, conn, repo):
            try:
                with conn.transaction():  # a savepoint: the staged path starts clean
                    return self._direct(job, conn, repo, meter, sink)
            except KeyExists:
                log.info("%s updates existing keys; merging it through staging", job.claim.uri)
                self._prefer_staged.add(job.claim.feed_id)
            except BadStream:
                raise  # not a bad row: reading the object again would fail the same way
            except BadInputError as exc:
                log.info("%s: %s; re-reading it chunk by chunk", job.claim.uri, exc.reason)
            meter.reset()
        return self._staged(job, conn, repo, meter, sink, staging_names)

    def _direct_allowed(self, job: LoadJob, conn: Connection, repo: TargetRepository) -> bool:
        spec = job.feed.table
        if spec.mode != "upsert":
            return True
        if job.claim.feed_id in self._prefer_staged:
            return False
        if repo.is_empty(conn):
            return True
        return not job.loaded_before()

    def _direct(
        self,
        job: LoadJob,
        conn: Connection,
        repo: TargetRepository,
        meter: Meter,
        sink: ProgressSink,
    ) -> LoadResult:
        deleted = repo.delete_feed_rows(conn, job.record) if job.feed.table.mode == "replace" else 0
        phases = Phases()
        with phases.measure("lock"):
            bulk = job.alone() and repo.is_empty(conn)
            suspended = repo.suspend_indexes(conn) if bulk else None
        mark = job.record.mark(conn) if job.record is not None else None
        pieces = 0
        data, guard = self._pieces(job, meter)

        def on_piece(piece: bytes) -> None:
            nonlocal pieces
            pieces += 1
            sink.advance(job.claim.id, meter.total, guard.lines)
            if pieces == 1:
                faults.pause("copy")

        with phases.measure("copy"):
            rows = repo.copy_into_target(conn, data, on_piece)
        if suspended is not None:
            with phases.measure("index"):
                repo.restore_indexes(conn, suspended)
        if job.record is not None and mark is not None and rows:
            with phases.measure("hold"):
                job.record.since(conn, mark)
        counts = Counts(rows_in=rows, inserted=rows, deleted=deleted)
        path = "direct" if suspended is None else "bulk"
        return LoadResult(counts, path, meter.total, phases=phases)

    def _staged(
        self,
        job: LoadJob,
        conn: Connection,
        repo: TargetRepository,
        meter: Meter,
        sink: ProgressSink,
        staging_names: list[str],
    ) -> LoadResult:
        spec = job.feed.table
        name = f"load_{job.claim.id}_{job.claim.attempts}"
        with self.db.connection(autocommit=True) as admin:
            repo.create_staging(admin, name)
        staging_names.append(name)
        phases = Phases()
        with phases.measure("stage"):
            staged = self._stage(job, repo, name, meter, sink)
        faults.pause("merge")
        updated = deleted = 0
        if spec.mode == "upsert":
            merged = repo.upsert_from_staging(conn, name, job.claim.uri, phases, job.record)
            inserted, updated = merged.inserted, merged.updated
        else:
            with phases.measure("insert"):
                if spec.mode == "replace":
                    deleted = repo.delete_feed_rows(conn, job.record)
                mark = job.record.mark(conn) if job.record is not None else None
                inserted = repo.insert_from_staging(conn, name)
            if job.record is not None and mark is not None and inserted:
                with phases.measure("hold"):
                    job.record.since(conn, mark)
        key = None
        if staged.rejects:
            key = rejects_key(job.claim.key, job.claim.id)
            job.store.put(key, render(staged.rejects))
        rejected = len(staged.rejects)
        counts = Counts(
            rows_in=staged.rows + rejected,
            inserted=inserted,
            updated=updated,
            unchanged=staged.rows - inserted - updated,
            rejected=rejected,
            deleted=deleted,
        )
        return LoadResult(counts, "staged", meter.total, key, phases)

    def _stage(
        self, job: LoadJob, repo: TargetRepository, name: str, meter: Meter, sink: ProgressSink
    ) -> _Staged:
        """COPY the object into the staging table over several connections at once."""
        state = _Staged()
        work: queue.Queue[Chunk | None] = queue.Queue(maxsize=self.options.stage_parallelism)
        stop = threading.Event()
        lines = [0]

        def stager() -> None:
            try:
                with self.db.connection(autocommit=True) as conn:
                    while (chunk := work.get()) is not None:
                        if not stop.is_set():
                            self._stage_chunk(job, repo, conn, name, chunk, state)
                            with state.lock:
                                lines[0] += chunk.newlines
                                done = lines[0]
                            sink.advance(job.claim.id, meter.total, done)
            except BaseException as exc:
                with state.lock:
                    state.errors.append(exc)
                stop.set()
                while work.get() is not None:  # keep draining so the reader never blocks
                    pass

        threads = [
            threading.Thread(target=stager, name=f"sluice-stage-{i}", daemon=True)
            for i in range(self.options.stage_parallelism)
        ]
        for thread in threads:
            thread.start()
        source = self._chunks(job, meter)
        try:
            for chunk in source:
                if stop.is_set():
                    break
                work.put(chunk)
        except BaseException as exc:
            with state.lock:
                state.errors.append(exc)
            stop.set()
        finally:
            source.close()
            for _ in threads:
                work.put(None)
            for thread in threads:
                thread.join()
        spec = job.feed.table
        if len(state.rejects) > spec.max_rejects:
            # Stagers work in parallel: report the first bad row past the budget in line order.
            over = sorted(state.rejects, key=lambda r: r.line)[spec.max_rejects]
            state.errors.append(
                BadInputError(
                    f"more than {spec.max_rejects} bad rows (the table's max_rejects); "
                    f"this one: {over.reason}",
                    obj=job.claim.uri,
                    line=over.line,
                    column=over.column,
                )
            )
        if state.errors:
            raise _first_error(state.errors)
        return state

    def _stage_chunk(
        self,
        job: LoadJob,
        repo: TargetRepository,
        conn: Connection,
        name: str,
        chunk: Chunk,
        state: _Staged,
    ) -> None:
        spec = job.feed.table
        quote = spec.format.quote.encode()
        try:
            rows = repo.copy_into_staging(conn, name, chunk)
        except BadInputError as exc:
            if spec.on_bad_rows != "reject":
                line = record_line(chunk, exc.line or 0, quote)
                raise BadInputError(
                    exc.reason, obj=job.claim.uri, line=line, column=exc.column
                ) from exc

            def on_reject(reject: Reject) -> None:
                with state.lock:
                    state.rejects.append(reject)
                    over = len(state.rejects) > spec.max_rejects
                if over:
                    raise BadInputError(
                        f"more than {spec.max_rejects} bad rows (the table's max_rejects); "
                        f"this one: {reject.reason}",
                        obj=job.claim.uri,
                        line=reject.line,
                        column=reject.column,
                    )

            rows = rescue(
                chunk,
                lambda part: repo.copy_into_staging(conn, name, part),
                quote=quote,
                obj=job.claim.uri,
                on_reject=on_reject,
            )
        with state.lock:
            state.rows += rows

    def _bytes(self, job: LoadJob, meter: Meter) -> LineGuard:
        """The object's bytes: read and decompressed ahead in a thread, then without a byte
        order mark and every line within the limit. The guard counts the line breaks handed
        over, for progress and line numbers (it runs in the consumer's thread, so its count is
        that of the bytes consumed, not of those read ahead)."""
        claim = job.claim
        data: Iterable[bytes] = meter.count(
            job.store.read(claim.key, etag=claim.etag, chunk_size=self.options.chunk_bytes)
        )
        if claim.key.endswith(".gz"):
            data = gunzip(data, claim.uri, count_lines=False)
        return LineGuard(
            without_bom(prefetch(data, depth=2)),
            limit=self.options.max_line_bytes,
            obj=claim.uri,
        )

    def _pieces(self, job: LoadJob, meter: Meter) -> tuple[Iterator[bytes], LineGuard]:
        """The records of the object as they come, for one COPY of all of it."""
        fmt = job.feed.table.format
        guard = self._bytes(job, meter)
        if fmt.header:
            return _named(without_header(guard, quote=fmt.quote.encode()), job.claim.uri), guard
        return iter(guard), guard

    def _chunks(self, job: LoadJob, meter: Meter) -> Generator[Chunk, None, None]:
        """The object cut into chunks of whole records, for staging them in parallel."""
        fmt = job.feed.table.format
        guard = self._bytes(job, meter)
        cut = chunks(
            guard,
            size=self.options.chunk_bytes,
            quote=fmt.quote.encode(),
            header=fmt.header,
            line_breaks=lambda: guard.lines,
        )
        return _named(cut, job.claim.uri)

    def _check_rows(self, job: LoadJob, result: LoadResult) -> None:
        if result.counts.rows_in == 0 and not job.feed.table.allow_empty:
            raise BadInputError(
                "the object holds no rows (the table does not allow empty loads)",
                obj=job.claim.uri,
                line=1,
            )

    def drop_staging(self, names: list[str]) -> None:
        """Drop staging tables of a load whose transaction has ended."""
        if not names:
            return
        try:
            with self.db.connection(autocommit=True) as admin:
                for name in names:
                    drop_staging_table(admin, name)
        except Exception as exc:  # leftovers are swept at the next run's start
            log.warning("could not drop staging tables %s: %s", names, exc)


def _named(stream: Iterable[T], obj: str) -> Generator[T, None, None]:
    """`stream`, with the stream errors it raises named after the object `obj`."""
    try:
        yield from stream
    except BadStream as exc:
        raise exc.at(obj=obj) from exc


def _first_error(errors: list[BaseException]) -> BaseException:
    """The error to report: bad input before anything else, the earliest line first."""
    bad = [e for e in errors if isinstance(e, BadInputError)]
    if bad:
        return min(bad, key=lambda e: e.line if e.line is not None else 1 << 62)
    return errors[0]


def backoff_seconds(attempts: int) -> float:
    """Delay before retrying a transient failure: 2, 4, 8 ... seconds, at most 5 minutes."""
    return float(min(2 ** max(attempts, 1), 300))
