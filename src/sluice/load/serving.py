"""Incremental serving copies: a real table that readers use, kept from what each run changed.

* **Recording.** Inside each load's transaction, the merge records the surrogate keys it
  inserted, updated or deleted in ``sluice.serving_pending`` (`KeyRecorder`), so the keys
  commit with the rows or not at all.
* **Apply.** At the end of a run one transaction (`ServingTable.serve`) moves the target's
  pending keys into a temporary table in key order, then one ``MERGE`` updates the serving
  rows of those keys whose values differ, inserts the ones it lacks, deletes the ones the
  target no longer has, looking each key up by index in key order, and the target is marked
  served. Readers read the old rows until that commit and the new ones after it; the
  apply takes row locks only (no lock a reader would wait for).
* **Build.** A serving copy that is new (its table was empty and is no longer) or replaces a
  materialized view is built in bulk (`ServingTable.build`): a new table created and filled in
  one statement, then indexed, then put in place of the old relation in a moment. Loads record
  no keys until a copy is ready; the build locks the target's ledger row, so it reads every
  row of the loads that did not record theirs.

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
#: Memory for the build's index sorts and the apply's joins.
BUILD_MAINTENANCE_MEM = "512MB"
APPLY_WORK_MEM = "128MB"
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
        """Record the target's serving kind; return its state. A copy that is not kept
        incrementally (now) has no pending keys."""
        row = self._run(
            "register_serving", {"target_id": target_id, "kind": kind, "state": state}
        ).fetchone()
        found = None if row is None else row[0]
        if found != "ready":
            self._run("clear_pending", {"target_id": target_id})
        return None if found is None else str(found)

    def recorder(self, target_id: int, spec: TableSpec) -> KeyRecorder | None:
        """Inside a load's transaction: the recorder of its changed keys, or None when the
        serving copy is not incremental or not built yet (the build will read every row)."""
        if spec.serving is None or spec.serving.kind != "incremental":
            return None
        row = self._run("serving_for_load", {"target_id": target_id}).fetchone()
        if row is None or row[0] != "incremental" or row[1] != "ready":
            return None
        return KeyRecorder(target_id, spec)

    def due(self, target_ids: list[int]) -> list[Due]:
        rows = self._run("serving_due", {"target_ids": target_ids}).fetchall()
        return [Due(int(i), str(n), str(v), k, s, int(q)) for i, n, v, k, s, q in rows]

    def pending(self, target_id: int) -> int:
        row = self._run("pending_count", {"target_id": target_id}).fetchone()
        return int(row[0]) if row else 0


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
class KeyRecorder:
    """Records, inside a load's transaction, the keys the load changes."""

    target_id: int
    spec: TableSpec
    _sequence: str | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {"target_id": self.target_id}

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
        """Record the keys inserted by this session since `mark`."""
        try:
            conn.execute(
                sv.record_since(self.spec),
                {**self.params, "since": mark, "sequence": self._sequence},
            )
        except psycopg.Error as exc:
            raise classify(exc, "recording the keys of a load") from exc

    def updated(self, conn: Connection, staging: str) -> None:
        """Record the keys a staged merge updated."""
        try:
            conn.execute(sv.record_updated(staging), self.params)
        except psycopg.Error as exc:
            raise classify(exc, "recording the keys of a load") from exc


@dataclass(frozen=True)
class ServingResult:
    #: ``apply`` (pending keys), ``build`` (a new table put in place), ``fill`` (a build that
    #: filled the serving table in place because a reader held it).
    method: Literal["apply", "build", "fill"]
    seconds: float
    keys: int


class ServingTable:
    """The incremental serving copy of one declared table."""

    def __init__(self, spec: TableSpec) -> None:
        assert spec.serving is not None and spec.serving.kind == "incremental"
        self.spec = spec
        self.name = f"{spec.schema}.{spec.serving.name}"

    def relkind(self, conn: Connection) -> str | None:
        row = conn.execute(sv.relkind(), [self.name]).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def ensure(self, conn: Connection) -> State | None:
        """Inside the target's creation transaction: create the empty serving table and its
        indexes if there is no relation of that name. Return the state it gives the copy
        (None: keep the state the ledger has)."""
        kind = self.relkind(conn)
        if kind == "m":
            return "build"  # a materialized view to replace: built once, then kept
        if kind is not None:
            return None
        spec = self.spec
        assert spec.serving is not None
        conn.execute(sv.create_empty(spec, spec.serving.name))
        for index in sv.indexes(spec):
            name = st.index_name(spec.serving.name, index)
            conn.execute(sv.create_index(spec, spec.serving.name, index, name))
        row = conn.execute(st.target_is_empty(spec)).fetchone()
        return "empty" if row and row[0] else "build"

    def serve(self, conn: Connection, target_id: int, state: str | None) -> ServingResult:
        """Bring the copy up to date: build it, or apply the pending keys. `conn` is in
        autocommit mode; the work is one transaction."""
        started = time.perf_counter()
        try:
            with conn.transaction():
                self._begin(conn)
                row = ServingLedger(conn)._run("serving_target", {"target_id": target_id})
                current = row.fetchone()
                state = str(current[1]) if current and current[1] else state
                if state == "ready":
                    keys = self._apply(conn, target_id, int(current[0]) if current else 0)
                    method: Literal["apply", "build", "fill"] = "apply"
                else:
                    keys, method = self._build(conn, target_id)
        except psycopg.Error as exc:
            raise classify(exc, f"bringing the serving copy {self.name} up to date") from exc
        return ServingResult(method, time.perf_counter() - started, keys)

    def _begin(self, conn: Connection) -> None:
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(WAIT_TIMEOUT)))
        conn.execute("SET LOCAL jit = off")
        conn.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(APPLY_WORK_MEM)))
        conn.execute("SELECT set_config('application_name', %s, true)", [APPLICATION_NAME])
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, self.name])

    def _apply(self, conn: Connection, target_id: int, seq: int) -> int:
        """The pending keys, applied; return how many. The changes they stand for were
        counted in `seq` (read before the keys were taken, so a load that commits meanwhile
        is applied now or next time, never lost)."""
        keys = max(conn.execute(sv.take_keys(), {"target_id": target_id}).rowcount, 0)
        written = 0
        if keys:
            apply_plan(conn)
            written = max(conn.execute(sv.apply(self.spec)).rowcount, 0)
        log.debug("%s: %d keys, %d rows written", self.name, keys, written)
        ServingLedger(conn)._run(
            "serving_applied", {"target_id": target_id, "seq": seq, "state": "ready"}
        )
        return keys

    def _build(self, conn: Connection, target_id: int) -> tuple[int, Literal["build", "fill"]]:
        """Create, fill and index a new table, then put it in the old relation's place."""
        spec = self.spec
        assert spec.serving is not None
        ledger = ServingLedger(conn)
        locked = ledger._run("lock_for_build", {"target_id": target_id}).fetchone()
        seq = int(locked[0]) if locked else 0
        conn.execute(
            sql.SQL("SET LOCAL maintenance_work_mem = {}").format(
                sql.Literal(BUILD_MAINTENANCE_MEM)
            )
        )
        building = sv.build_name(spec)
        conn.execute(sv.drop_if_exists(spec, building))
        rows = conn.execute(sv.create_filled(spec, building)).rowcount
        names = []
        method: Literal["build", "fill"] = "build"
        for index in sv.indexes(spec):
            temporary = st.index_name(building, index)
            conn.execute(sv.create_index(spec, building, index, temporary))
            names.append((temporary, st.index_name(spec.serving.name, index)))
        if not self._swap(conn, building, names):
            if self.relkind(conn) != "r":
                raise DatabaseUnavailable(
                    f"building {self.name}: a session kept the old serving relation in use "
                    f"for {SWAP_ATTEMPTS} attempts; the next run builds it"
                )
            # A reader holds the serving table (a transaction left open after a read): fill
            # it in place instead, with row locks only, and let the reader be.
            log.info("%s: a reader holds the serving table; filling it in place", self.name)
            conn.execute(sv.drop_if_exists(spec, building))
            conn.execute(sv.delete_all(spec))
            rows = conn.execute(sv.fill_in_place(spec)).rowcount
            method = "fill"
        conn.execute(sql.SQL("ANALYZE {}").format(sv.serving(spec)))
        ledger._run("clear_pending", {"target_id": target_id})
        ledger._run("serving_applied", {"target_id": target_id, "seq": seq, "state": "ready"})
        return max(rows, 0), method

    def _swap(self, conn: Connection, building: str, names: list[tuple[str, str]]) -> bool:
        """Drop the old relation and rename the new table (and its indexes) into its place;
        False if a session kept the old relation in use. Its lock is asked for briefly and
        again, so that a reader holding it (a transaction left open) never makes the other
        readers queue for long."""
        spec = self.spec
        assert spec.serving is not None
        for attempt in range(SWAP_ATTEMPTS):
            try:
                with conn.transaction():  # a savepoint: a timeout leaves the build usable
                    kind = self.relkind(conn)
                    if kind is not None:
                        conn.execute(
                            sql.SQL("SET LOCAL lock_timeout = {}").format(
                                sql.Literal(SWAP_LOCK_TIMEOUT)
                            )
                        )
                        # The drop takes the relation's exclusive lock, within that timeout.
                        conn.execute(sv.drop_serving(spec, kind))
                    conn.execute(sv.rename_table(spec, building, spec.serving.name))
                    for temporary, final in names:
                        conn.execute(sv.rename_index(spec, temporary, final))
                    conn.execute(
                        sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(WAIT_TIMEOUT))
                    )
                return True
            except psycopg.errors.LockNotAvailable:
                log.info("%s: a reader holds the serving copy (attempt %d)", self.name, attempt)
                time.sleep(0.2)
        return False


def apply_plan(conn: Connection) -> None:
    """The apply's planner settings, for the rest of its transaction: only nested loops, so
    each key is looked up by index in key order (see `serving_sql.apply`), never a hash join
    that reads the whole serving table to find a tenth of it and writes its rows in random
    order, nor a merge join that reads a whole index."""
    conn.execute("SET LOCAL enable_hashjoin = off")
    conn.execute("SET LOCAL enable_mergejoin = off")


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
    """Per target: the kind of its serving copy, the keys waiting, and whether it is current."""
    try:
        rows = conn.execute(Q["serving_overview"]).fetchall()
    except psycopg.Error as exc:
        raise classify(exc, "serving query serving_overview") from exc
    found = []
    for name, view, kind, state, pending, changes, refreshed, at in rows:
        current: bool | None = None
        if view is not None:
            current = int(changes) <= int(refreshed)
            if kind == "incremental":
                current = current and state in ("empty", "ready") and int(pending) == 0
        found.append(ServingStatus(str(name), view, kind, state, int(pending), current, at))
    return found
