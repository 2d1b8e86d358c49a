"""Incremental serving copies: a view that readers use, kept from what each run changed.

* **Holding.** The copy is a view over the target and a *held* table (`serving_sql`). Inside
  each load's transaction, before the merge changes a row, the row as it was goes to the held
  table (a key inserted is held as absent) (`RowHolder`), so the held rows commit with the
  changes or not at all. The view shows the target less the held keys, plus the held rows:
  the state of the last apply, whatever the loads have committed since.
* **Apply.** At the end of a run one transaction (`ServingTable.serve`) deletes the held rows
  its snapshot sees and marks the target served: the view shows the target's current rows of
  those keys from that commit on. It costs the held rows, not the table, and takes row locks
  only: no reader waits for it, and neither do the loads of other runs on the table (their
  rows, held after its snapshot, stay held).
* **Build.** A copy that is new (its table was empty and is no longer) or replaces a
  materialized view (or a serving table of an earlier version) is built in bulk: the declared
  indexes are built on the target by sorting, and the view takes the old relation's place in
  a moment. Loads hold nothing until a copy is ready; until then the view is a placeholder
  with no rows.

Applies and builds of one target take turns (an advisory lock per serving copy); those of
different targets never wait for each other.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql

from sluice.db import Connection
from sluice.db.errors import classify
from sluice.db.queries import load as load_queries
from sluice.errors import DatabaseUnavailable
from sluice.load import serving_sql as sv
from sluice.load import statements as st
from sluice.load.spec import TableSpec

log = logging.getLogger(__name__)

Q = load_queries("sluice.load", "serving.sql")
State = Literal["empty", "build", "ready"]

#: Shared with the materialized-view refresh: one lock per serving relation.
LOCK_NAMESPACE = 0x51CE
#: How long an apply or a build waits for another one of the same copy, or a build for the
#: loads in flight on its target.
WAIT_TIMEOUT = "60s"
#: The swap of a build waits this long for readers of the old relation, then tries again:
#: readers that come meanwhile queue behind it, so it never holds them for long.
SWAP_LOCK_TIMEOUT = "200ms"
SWAP_ATTEMPTS = 5
#: Memory for the build's index sorts.
BUILD_MAINTENANCE_MEM = "512MB"
#: The name an apply's or a build's session shows in pg_stat_activity while it works.
APPLICATION_NAME = "sluice serving"


class ServingLedger:
    """The ledger's side of serving copies, on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _run(self, name: str, params: dict[str, Any]) -> psycopg.Cursor[tuple[Any, ...]]:
        try:
            return self.conn.execute(Q[name], params)
        except psycopg.Error as exc:
            raise classify(exc, f"serving query {name}") from exc

    def register(self, target_id: int, kind: str | None, state: State | None) -> str | None:
        """Record the target's serving kind; return its state."""
        row = self._run(
            "register_serving", {"target_id": target_id, "kind": kind, "state": state}
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def holder(self, target_id: int, spec: TableSpec) -> RowHolder | None:
        """Inside a load's transaction: the holder of the rows it changes, or None when the
        serving copy is not incremental or not built yet (the build reads every row)."""
        if spec.serving is None or spec.serving.kind != "incremental":
            return None
        row = self._run("serving_for_load", {"target_id": target_id}).fetchone()
        if row is None or row[0] != "incremental" or row[1] != "ready":
            return None
        return RowHolder(spec)

    def due(self, target_ids: list[int]) -> list[Due]:
        rows = self._run("serving_due", {"target_ids": target_ids}).fetchall()
        return [Due(int(i), str(n), str(v), k, s, int(q)) for i, n, v, k, s, q in rows]


@dataclass(frozen=True)
class Due:
    """A target whose serving copy has work to do."""

    target_id: int
    name: str
    view: str
    kind: str | None
    state: str | None
    seq: int


@dataclass
class RowHolder:
    """Holds, inside a load's transaction, the rows the load is about to change."""

    spec: TableSpec
    _sequence: str | None = None

    def hold(self, alias: str) -> sql.Composed:
        """The start of the statement that holds the rows `alias` names (`serving_sql.hold`)."""
        return sv.hold(self.spec, alias)

    def hold_absent(self, column: str) -> sql.Composed:
        """The start of the statement that holds as absent the keys of `column`."""
        return sv.hold_absent(self.spec, sql.Identifier(column))

    def _execute(
        self, conn: Connection, statement: sql.Composed, params: dict[str, Any] | None = None
    ) -> psycopg.Cursor[tuple[Any, ...]]:
        try:
            return conn.execute(statement, params)
        except psycopg.Error as exc:
            raise classify(exc, "holding the rows a load changes") from exc

    def mark(self, conn: Connection) -> int:
        """Before rows are inserted with keys from the identity sequence: a value below them."""
        try:
            if self._sequence is None:
                row = conn.execute(
                    sv.identity_sequence(),
                    [f"{self.spec.schema}.{self.spec.name}", self.spec.surrogate],
                ).fetchone()
                if row is None or row[0] is None:
                    raise DatabaseUnavailable(
                        f"{self.spec.schema}.{self.spec.name}: its surrogate key has no sequence"
                    )
                self._sequence = str(row[0])
            found = conn.execute(sv.next_key(), [self._sequence]).fetchone()
        except psycopg.Error as exc:
            raise classify(exc, "marking the keys of a load") from exc
        assert found is not None
        return int(found[0])

    def since(self, conn: Connection, mark: int) -> None:
        """Hold as absent the keys inserted by this session since `mark`."""
        self._execute(
            conn,
            sv.hold_inserted_since(self.spec),
            {"since": mark, "sequence": self._sequence},
        )

    def matched(self, conn: Connection, staging: str) -> None:
        """Before a staged merge updates the rows its delta matched: hold them."""
        self._execute(conn, sv.hold_matched(self.spec, staging))

    def new_keys(self, conn: Connection, staging: str) -> None:
        """Before a staged merge inserts its new rows: hold the rows that some of them will
        update instead (their key was inserted since the match, or has a NULL part)."""
        self._execute(conn, sv.hold_new_keys(self.spec, staging))
        if not sv.has_nullable_key(self.spec):
            return
        row = self._execute(conn, sv.delta_has_null_key(self.spec, staging)).fetchone()
        if row is not None and row[0]:
            self._execute(conn, sv.hold_null_keys(self.spec, staging))


@dataclass(frozen=True)
class ServingResult:
    #: ``apply`` (held rows released), ``build`` (indexes built, the view put in place).
    method: Literal["apply", "build"]
    seconds: float
    keys: int


class ServingTable:
    """The incremental serving copy of one declared table."""

    def __init__(self, spec: TableSpec) -> None:
        assert spec.serving is not None and spec.serving.kind == "incremental"
        self.spec = spec
        self.name = f"{spec.schema}.{spec.serving.name}"

    def relkind(self, conn: Connection) -> str | None:
        return relkind(conn, self.name)

    def ensure(self, conn: Connection) -> State | None:
        """Inside the target's creation transaction: create the held table, and a placeholder
        view if there is no relation of the view's name. Return the state it gives the copy
        (None: keep the state the ledger has)."""
        spec = self.spec
        assert spec.serving is not None
        if relkind(conn, sv.held_relation(spec.schema, spec.serving.name)) is None:
            conn.execute(sv.create_held(spec))
            conn.execute(sv.held_key(spec))
        kind = self.relkind(conn)
        if kind == "v":
            return None
        if kind is not None:
            return "build"  # a materialized view (or an earlier serving table) to replace
        conn.execute(sv.placeholder(spec))
        row = conn.execute(st.target_is_empty(spec)).fetchone()
        return "empty" if row and row[0] else "build"

    def serve(self, conn: Connection, target_id: int, state: str | None) -> ServingResult:
        """Bring the copy up to date: build it, or apply the held rows. `conn` is in
        autocommit mode; the work is one transaction."""
        started = time.perf_counter()
        try:
            with conn.transaction():
                self._begin(conn)
                ledger = ServingLedger(conn)
                current = ledger._run("serving_target", {"target_id": target_id}).fetchone()
                state = str(current[1]) if current and current[1] else state
                if state != "ready":
                    # Waits for the loads in flight on the target, which hold nothing, and
                    # keeps new ones waiting: the build reads all of their rows.
                    current = ledger._run("lock_target", {"target_id": target_id}).fetchone()
                seq = int(current[0]) if current else 0
                if state == "ready":
                    keys = self._apply(conn)
                    method: Literal["apply", "build"] = "apply"
                else:
                    keys = self._build(conn)
                    method = "build"
                ledger._run(
                    "serving_applied", {"target_id": target_id, "seq": seq, "state": "ready"}
                )
        except psycopg.Error as exc:
            raise classify(exc, f"bringing the serving copy {self.name} up to date") from exc
        return ServingResult(method, time.perf_counter() - started, keys)

    def _begin(self, conn: Connection) -> None:
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(WAIT_TIMEOUT)))
        conn.execute("SELECT set_config('application_name', %s, true)", [APPLICATION_NAME])
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, self.name])

    def _apply(self, conn: Connection) -> int:
        """Release the held rows; return how many."""
        keys = max(conn.execute(sv.release(self.spec)).rowcount, 0)
        log.debug("%s: %d held rows released", self.name, keys)
        return keys

    def _build(self, conn: Connection) -> int:
        """Build the reader indexes on the target, then put the view in the old relation's
        place; return the target's rows."""
        spec = self.spec
        conn.execute(
            sql.SQL("SET LOCAL maintenance_work_mem = {}").format(
                sql.Literal(BUILD_MAINTENANCE_MEM)
            )
        )
        for index in sv.indexes(spec):
            conn.execute(sv.create_index(spec, index))
        conn.execute(sv.analyze(spec))
        conn.execute(sv.release(spec))
        if not self._swap(conn):
            raise DatabaseUnavailable(
                f"building {self.name}: a session kept the old serving relation in use "
                f"for {SWAP_ATTEMPTS} attempts; the next run builds it"
            )
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(st.table(spec))).fetchone()
        return int(row[0]) if row else 0

    def _swap(self, conn: Connection) -> bool:
        """Put the view in place of the relation of its name (a placeholder view, a
        materialized view, an earlier serving table); False if a session kept that relation
        in use. Its lock is asked for briefly and again, so that a reader holding it (a
        transaction left open) never makes the other readers queue for long."""
        spec = self.spec
        for attempt in range(SWAP_ATTEMPTS):
            try:
                with conn.transaction():  # a savepoint: a timeout leaves the build usable
                    conn.execute(
                        sql.SQL("SET LOCAL lock_timeout = {}").format(
                            sql.Literal(SWAP_LOCK_TIMEOUT)
                        )
                    )
                    kind = self.relkind(conn)
                    if kind is not None and kind != "v":
                        conn.execute(sv.drop_relation(spec, kind))
                    conn.execute(sv.view(spec, replace=kind == "v"))
                    conn.execute(
                        sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(WAIT_TIMEOUT))
                    )
                return True
            except psycopg.errors.LockNotAvailable:
                log.info("%s: a reader holds the serving copy (attempt %d)", self.name, attempt)
                time.sleep(0.2)
        return False


def relkind(conn: Connection, name: str) -> str | None:
    """What the relation `name` (``schema.name``) is: ``v``, ``m``, ``r``..., None if none."""
    row = conn.execute(sv.relkind(), [name]).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def drop_incremental(conn: Connection, spec: TableSpec) -> bool:
    """A table served by a materialized view from now on: drop its incremental view, held
    table and reader indexes on the target (the materialized view has its own). True if there
    was an incremental copy. A table that never had one (its held table, which every
    incremental copy has from its creation, is missing) costs two look-ups and no DDL."""
    assert spec.serving is not None
    kind = relkind(conn, f"{spec.schema}.{spec.serving.name}")
    incremental = kind is not None and kind != "m"
    if not incremental and relkind(conn, sv.held_relation(spec.schema, spec.serving.name)) is None:
        return False
    if incremental:
        assert kind is not None
        conn.execute(sv.drop_relation(spec, kind))
    conn.execute(sv.drop_held(spec))
    for index in sv.indexes(spec):
        conn.execute(sv.drop_index(spec, index))
    return incremental


@dataclass(frozen=True)
class ServingStatus:
    """How a target's serving copy stands, for ``sluice status``."""

    target: str
    serving: str | None
    #: ``incremental``, ``matview``, or None (no serving copy).
    kind: str | None
    state: str | None
    pending_keys: int
    #: The copy holds every change of its table (None: no serving copy).
    current: bool | None
    refreshed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
        }


def serving_overview(conn: Connection) -> list[ServingStatus]:
    """Per target: the kind of its serving copy, the rows held, and whether it is current."""
    try:
        rows = conn.execute(Q["serving_overview"]).fetchall()
        found = []
        for name, view, kind, state, changes, refreshed, at in rows:
            current: bool | None = None
            pending = 0
            if view is not None:
                current = int(changes) <= int(refreshed)
                if kind == "incremental":
                    pending = _held(conn, str(view))
                    current = current and state in ("empty", "ready") and pending == 0
            found.append(ServingStatus(str(name), view, kind, state, pending, current, at))
    except psycopg.Error as exc:
        raise classify(exc, "serving query serving_overview") from exc
    return found


def _held(conn: Connection, view: str) -> int:
    """The rows held for the serving view `view` (``schema.name``); 0 if it has no held table
    yet."""
    schema, _, name = view.partition(".")
    if relkind(conn, sv.held_relation(schema, name)) is None:
        return 0
    row = conn.execute(sv.held_count(schema, name)).fetchone()
    return int(row[0]) if row else 0
