"""What every ledger repository shares: one connection, the named queries, and the driver's
errors classified where they enter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sluice.db import Connection
from sluice.db.errors import classify
from sluice.db.queries import load as load_queries
from sluice.errors import IllegalTransition

Q = load_queries("sluice.ledger", "queries.sql")


class Repository:
    """Runs the ledger's named queries on one connection.

    A connection shared by threads (a worker's ledger connection) comes with a `lock`: each
    statement, and each transaction as a whole, holds it, so that no thread's statement ever
    runs inside another thread's transaction."""

    def __init__(self, conn: Connection, lock: AbstractContextManager[Any] | None = None) -> None:
        self.conn = conn
        self._guard: AbstractContextManager[Any] = lock if lock is not None else nullcontext()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction (a savepoint inside one) that no other thread's statement joins."""
        with self._guard:
            try:
                with self.conn.transaction():
                    yield
            except psycopg.Error as exc:  # its BEGIN or COMMIT: a lost connection, say
                raise _translate(exc, "transaction") from exc

    def _one(self, name: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        return self._run(name, params).fetchone()

    def _all(self, name: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._run(name, params or {}).fetchall()

    def _dicts(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows of a query as mappings, for building typed records by column name."""
        try:
            with self._guard, self.conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(Q[name], params or {}).fetchall()
        except psycopg.Error as exc:
            raise _translate(exc, name) from exc

    def _run(self, name: str, params: dict[str, Any]) -> psycopg.Cursor[tuple[Any, ...]]:
        try:
            with self._guard:
                return self.conn.execute(Q[name], params)
        except psycopg.Error as exc:
            raise _translate(exc, name) from exc


def _translate(exc: psycopg.Error, name: str) -> Exception:
    if isinstance(exc, psycopg.errors.CheckViolation):
        # The units_transition trigger: a status change the state machine refuses.
        return IllegalTransition(f"ledger query {name}: {exc.diag.message_primary or exc}")
    return classify(exc, f"ledger query {name}")
