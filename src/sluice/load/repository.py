"""The target repository: every statement sluice runs against target tables.

Methods take the connection to use, because one load spans several (the data transaction and
the staging connections). Driver errors are classified here (`sluice.db.errors`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from sluice.db import Connection
from sluice.db.errors import classify
from sluice.errors import BadInputError, DatabaseUnavailable, SchemaError, SluiceError
from sluice.formats.csv import Chunk
from sluice.load import statements as st
from sluice.load.serving import RowHolder, ServingTable, State, drop_incremental
from sluice.load.spec import TableSpec
from sluice.load.timing import Phases

log = logging.getLogger(__name__)

# Memory for the classification join of a staged load; the join is done once per load.
MERGE_WORK_MEM = "128MB"
# Memory for building a table's indexes after its first bulk load (parallel sort).
BUILD_MAINTENANCE_MEM = "512MB"
# How long filling an empty serving view waits for readers to let go of it.
FILL_LOCK_TIMEOUT = "1s"
# How long a refresh waits for the sessions holding its view (or its table) to let go.
REFRESH_LOCK_TIMEOUT = "60s"
# How long creating or checking a table waits for another session to let go of it.
DDL_LOCK_TIMEOUT = "10s"
_LOCK_NAMESPACE = 0x51CE


class KeyExists(SluiceError):
    """A row copied straight into the target hit an existing key: the load must be staged and
    merged instead. Never leaves the loader."""


@dataclass(frozen=True)
class Suspended:
    """Constraints dropped for a bulk build, to be added back before commit."""

    primary_key: str | None


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int


class TargetRepository:
    """Statements on one declared target table."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.name = f"{spec.schema}.{spec.name}"

    # -- schema ---------------------------------------------------------------------------

    def ensure(self, conn: Connection) -> State | None:
        """Create the table and its serving copy (a materialized view and its indexes, or an
        incremental serving view and its held table) if missing; check an existing table
        against the declaration. For an incremental serving copy, return the state its
        creation gives it (None: keep the ledger's)."""
        spec = self.spec
        state: State | None = None
        try:
            with conn.transaction():
                # A worker stalled while holding the table (stopped, not dead) must not hang
                # every later command here: wait a while, then say who holds it.
                conn.execute(
                    sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(DDL_LOCK_TIMEOUT))
                )
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, self.name]
                )
                conn.execute(st.create_table(spec))
                # Wait here (within the timeout) for a session that holds the table
                # exclusively, rather than in a load that has no timeout.
                conn.execute(st.lock_shared(spec))
                self._verify(conn)
                if spec.serving is not None and spec.serving.kind == "incremental":
                    state = ServingTable(spec).ensure(conn)
                elif spec.serving is not None:
                    self._drop_serving_table(conn)
                    conn.execute(st.create_view(spec))
                    for index in spec.serving.indexes:
                        conn.execute(st.create_view_index(spec, index))
        except psycopg.errors.LockNotAvailable as exc:
            raise DatabaseUnavailable(
                f"creating {self.name}: waited {DDL_LOCK_TIMEOUT} for a lock on it; "
                f"{lock_holders(conn, self.name)}"
            ) from exc
        except psycopg.Error as exc:
            raise classify(exc, f"creating {self.name}") from exc
        return state

    def _drop_serving_table(self, conn: Connection) -> None:
        """A table switched back to a materialized view: drop its incremental serving view
        (the materialized view takes its name), held table and reader indexes."""
        assert self.spec.serving is not None
        if drop_incremental(conn, self.spec):
            name = f"{self.spec.schema}.{self.spec.serving.name}"
            log.info("%s: serving %s by a materialized view from now on", self.name, name)

    def _verify(self, conn: Connection) -> None:
        found = {
            name: (kind, notnull)
            for name, kind, notnull in conn.execute(st.table_columns(), [self.name]).fetchall()
        }
        for col in self.spec.all_columns:
            if col.name not in found:
                raise SchemaError(
                    f"table {self.name} has no column {col.name!r} ({col.type}) that its "
                    "declaration lists; add it with ALTER TABLE or drop the table"
                )
            kind, _ = found[col.name]
            if kind != st.canonical_type(col.type):
                raise SchemaError(
                    f"table {self.name}: column {col.name!r} is {kind}, the declaration says "
                    f"{col.type}"
                )

    # -- a load's transaction ---------------------------------------------------------------

    def begin(self, conn: Connection, constants: Mapping[str, str]) -> None:
        """Settings for the current transaction: constant column values and merge memory."""
        conn.execute("SET LOCAL jit = off")
        conn.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(MERGE_WORK_MEM)))
        # Staging and delta tables have no statistics; a merge join would sort the whole
        # staged file. Hash joins (or index lookups for small deltas) are always the right plan.
        conn.execute("SET LOCAL enable_mergejoin = off")
        for column, value in constants.items():
            conn.execute("SELECT set_config(%s, %s, true)", [st.setting_name(column), value])

    def is_empty(self, conn: Connection) -> bool:
        row = conn.execute(st.target_is_empty(self.spec)).fetchone()
        return bool(row and row[0])

    def suspend_indexes(self, conn: Connection) -> Suspended | None:
        """For the first load of an empty table: drop its key and primary-key constraints, so
        that COPY only writes the heap and the indexes are then built in one sort each (much
        cheaper than a million index insertions). Takes an exclusive lock until commit. Does
        nothing, and keeps no lock, if another load holds the table (two first loads at once
        would otherwise deadlock upgrading their locks) or has filled it meanwhile."""
        suspended: Suspended | None = None
        try:
            with conn.transaction():  # a savepoint: rolling it back releases the lock
                try:
                    conn.execute(st.lock_exclusive(self.spec))
                except psycopg.errors.LockNotAvailable:
                    raise psycopg.Rollback() from None
                if not self.is_empty(conn):
                    raise psycopg.Rollback()
                row = conn.execute(st.primary_key_name(), [self.name]).fetchone()
                primary_key = str(row[0]) if row is not None else None
                if primary_key is not None:
                    conn.execute(st.drop_constraint(self.spec, primary_key))
                if self.spec.key:
                    conn.execute(st.drop_constraint(self.spec, self.spec.constraint))
                suspended = Suspended(primary_key)
        except psycopg.Error as exc:
            raise classify(exc, f"preparing {self.name} for a bulk build") from exc
        return suspended

    def restore_indexes(self, conn: Connection, suspended: Suspended) -> None:
        """Rebuild what `suspend_indexes` dropped; a duplicate key in the data is KeyExists."""
        try:
            conn.execute(
                sql.SQL("SET LOCAL maintenance_work_mem = {}").format(
                    sql.Literal(BUILD_MAINTENANCE_MEM)
                )
            )
            if suspended.primary_key is not None:
                conn.execute(st.add_primary_key(self.spec, suspended.primary_key))
            if self.spec.key:
                conn.execute(st.add_key_constraint(self.spec))
        except psycopg.errors.UniqueViolation as exc:
            raise KeyExists(str(exc.diag.message_detail or exc)) from exc
        except psycopg.Error as exc:
            raise classify(exc, f"building the indexes of {self.name}") from exc

    def copy_into_target(
        self, conn: Connection, pieces: Iterable[bytes], on_piece: Callable[[bytes], None]
    ) -> int:
        """COPY a stream of bytes straight into the target; return the rows copied."""
        return self._copy(conn, st.table(self.spec), pieces, on_piece)

    def copy_into_staging(self, conn: Connection, staging: str, chunk: Chunk) -> int:
        """COPY one chunk into a staging table (autocommit connection: one transaction)."""
        return self._copy(conn, st.staging(staging), (chunk.data,), None)

    def _copy(
        self,
        conn: Connection,
        target: sql.Identifier,
        pieces: Iterable[bytes],
        on_piece: Callable[[bytes], None] | None,
    ) -> int:
        statement = st.copy_from_stdin(target, self.spec, self.spec.format)
        try:
            with conn.cursor() as cur:
                with cur.copy(statement) as copy:
                    for piece in pieces:
                        copy.write(piece)
                        if on_piece is not None:
                            on_piece(piece)
                return cur.rowcount
        except psycopg.errors.UniqueViolation as exc:
            raise KeyExists(str(exc.diag.message_detail or exc)) from exc
        except psycopg.Error as exc:
            raise classify(exc, f"copying into {self.name}") from exc

    def create_staging(self, conn: Connection, name: str) -> None:
        try:
            conn.execute(st.drop_staging(name))
            conn.execute(st.create_staging(self.spec, name))
        except psycopg.Error as exc:
            raise classify(exc, f"creating staging table {name}") from exc

    def drop_staging(self, conn: Connection, name: str) -> None:
        drop_staging_table(conn, name)

    def upsert_from_staging(
        self,
        conn: Connection,
        staging: str,
        obj: str,
        phases: Phases,
        record: RowHolder | None = None,
    ) -> UpsertResult:
        """Merge staged rows into the target on the natural key: insert new keys, update
        changed values, leave identical rows untouched. With `record`, the rows about to be
        changed are held for the serving copy first, in the same transaction."""
        spec = self.spec
        hold_absent = record.hold_absent("sluice_key") if record is not None else None
        try:
            with phases.measure("classify"):
                conn.execute(st.classify(spec, staging))
            with phases.measure("check"):
                duplicate = conn.execute(st.duplicate_of_changed(spec, staging)).fetchone()
            if duplicate is not None:
                raise self._duplicate(obj, duplicate)
            conn.execute("SET LOCAL enable_hashjoin = off")
            if record is not None:
                with phases.measure("hold"):
                    record.matched(conn, staging)
            with phases.measure("update"):
                updated = conn.execute(st.update_changed(spec, staging)).rowcount
            conn.execute("SET LOCAL enable_hashjoin = on")
            if record is not None:
                # Right before the insert: what a load committed since the match is held too.
                with phases.measure("hold"):
                    record.new_keys(conn, staging)
            with phases.measure("insert"), conn.transaction():  # a savepoint: explain duplicates
                statement = st.insert_new(spec, staging, hold_absent=hold_absent)
                row = conn.execute(statement).fetchone()
            conn.execute(st.drop_delta(staging))
        except psycopg.errors.CardinalityViolation:
            duplicate = conn.execute(st.duplicate_new_key(spec, staging)).fetchone()
            raise self._duplicate(obj, duplicate) from None
        except psycopg.Error as exc:
            raise classify(exc, f"merging into {self.name}") from exc
        assert row is not None
        inserted, updated_on_conflict = int(row[0]), int(row[1])
        return UpsertResult(inserted=inserted, updated=updated + updated_on_conflict)

    def _duplicate(self, obj: str, values: tuple[object, ...] | None) -> BadInputError:
        keys = [k for k in self.spec.key if k in self.spec.file_columns]
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(keys, values or (), strict=False))
        return BadInputError(
            f"the key ({shown}) appears more than once in the file; each key may appear once",
            obj=obj,
        )

    def insert_from_staging(self, conn: Connection, staging: str) -> int:
        try:
            return conn.execute(st.insert_all(self.spec, staging)).rowcount
        except psycopg.Error as exc:
            raise classify(exc, f"inserting into {self.name}") from exc

    def delete_feed_rows(self, conn: Connection, record: RowHolder | None = None) -> int:
        hold = record.hold("d") if record is not None else None
        try:
            row = conn.execute(st.delete_feed_rows(self.spec, hold=hold)).fetchone()
            return int(row[0]) if row else 0
        except psycopg.Error as exc:
            raise classify(exc, f"clearing {self.name}") from exc

    # -- serving ----------------------------------------------------------------------------

    def refresh_view(self, conn: Connection) -> tuple[float, bool]:
        """Refresh the serving view; return the seconds it took and whether it was concurrent.

        A view with rows is refreshed CONCURRENTLY: readers keep reading the old contents until
        the new ones commit. A view with no rows yet (before the first import) is filled by a
        plain REFRESH, which writes the view once and builds its indexes by sorting — several
        times faster than the concurrent diff, which inserts row by row — and only makes
        readers of the empty view wait for it."""
        started = time.perf_counter()
        assert self.spec.serving is not None
        view = f"{self.spec.schema}.{self.spec.serving.name}"
        try:
            with conn.transaction():
                # A session holding the view (a reader left in a transaction, a stalled
                # refresh) must not hang the run: the refresh waits a while, then fails, and
                # the next run that finds the view stale refreshes it.
                conn.execute(
                    sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(REFRESH_LOCK_TIMEOUT))
                )
                # Refreshes of one view take turns: two that both found it empty would each
                # hold it shared and wait for the other to let go to fill it (a deadlock).
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, view]
                )
                row = conn.execute(st.view_is_empty(self.spec)).fetchone()
                empty = bool(row and row[0])
                concurrently = not (empty and self._fill(conn))
                if concurrently:
                    conn.execute(st.refresh_view(self.spec, concurrently=True))
        except psycopg.Error as exc:
            raise classify(exc, f"refreshing the view of {self.name}") from exc
        return time.perf_counter() - started, concurrently

    def _fill(self, conn: Connection) -> bool:
        """Fill the empty view with a plain refresh, unless a reader holds it (then False).

        A plain refresh needs the view's exclusive lock; a reader left in an open transaction
        would make it wait, and every new reader queue behind it, for as long as that
        transaction stays open. So it waits a moment only, then leaves it to CONCURRENTLY."""
        try:
            with conn.transaction():  # a savepoint: a timeout leaves the transaction usable
                conn.execute(
                    sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(FILL_LOCK_TIMEOUT))
                )
                conn.execute(st.refresh_view(self.spec, concurrently=False))
        except psycopg.errors.LockNotAvailable:
            log.info("%s: a reader holds the empty view; refreshing it concurrently", self.name)
            return False
        return True


def lock_holders(conn: Connection, relation: str) -> str:
    """Who holds locks on `relation`, for the message of a lock wait that timed out."""
    try:
        with conn.transaction():
            rows = conn.execute(st.lock_holders(), [relation]).fetchall()
    except psycopg.Error:
        return "the sessions holding it could not be read"
    if not rows:
        return "it was released meanwhile; the next scan tries again"
    held = "; ".join(
        f"process {pid} ({app or 'unnamed'}, {state}, for {age:.0f} s: {query})"
        for pid, app, state, age, query in rows
    )
    return f"held by {held}; the next scan tries again"


def drop_staging_table(conn: Connection, name: str) -> None:
    """Drop a staging table by name (e.g. one a dead worker left behind)."""
    try:
        conn.execute(st.drop_staging(name))
    except psycopg.Error as exc:
        raise classify(exc, f"dropping staging table {name}") from exc
