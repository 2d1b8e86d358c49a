"""The current-view repository: every statement run against the views and their ledger rows.

Works on the connection of the caller's transaction: what it changes commits or rolls back
with the caller's work (a change file and its ledger transition are one transaction). Driver
errors are classified here (`sluice.db.errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from sluice.current import statements as cs
from sluice.current.model import ViewLag, ViewTarget
from sluice.db import Connection
from sluice.db.errors import classify, copy_error
from sluice.errors import BadInputError
from sluice.formats.dfm import Column

#: Advisory-lock namespace of current views (the other half is a hash of the view's name).
LOCK_NAMESPACE = 0x51CF
#: A file whose final operations reach this share of the view's rows (and at least
#: `REWRITE_MIN_ROWS`) rewrites the view instead of updating it in place: sequential writes
#: and one index build, rather than an index entry and a page image per changed row.
REWRITE_SHARE = 0.25
REWRITE_MIN_ROWS = 50_000
#: Memory for the apply's sort (the final operation per key) and its joins; JIT is off for
#: the apply (compiling its statements costs more than it saves).
APPLY_WORK_MEM = "256MB"


@dataclass(frozen=True)
class ViewState:
    """A view's ledger row."""

    snapshot: datetime
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    newest_change: datetime | None
    rows: int
    #: Whether the view's table exists (someone may have dropped it).
    present: bool = True


@dataclass(frozen=True)
class Merged:
    inserted: int
    updated: int
    deleted: int
    #: Final operations that were deletes (matched or not).
    deletes: int
    newest_change: datetime | None


class CurrentViews:
    """The current views of one database, through the caller's connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _run(self, statement: sql.Composable | str, params: dict[str, Any] | None = None) -> Any:
        try:
            return self.conn.execute(statement, params)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise classify(exc, "applying a current view") from exc

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A block whose changes roll back alone if it fails (the caller's work stays)."""
        with self.conn.transaction():
            yield

    @contextmanager
    def work_mem(self) -> Iterator[None]:
        """The apply's memory for its sort and joins, back to the caller's setting after."""
        settings = {"work_mem": APPLY_WORK_MEM, "jit": "off"}
        old = {
            name: self._run(cs.Q["current_setting"], {"name": name}).fetchone()[0]
            for name in settings
        }
        for name, value in settings.items():
            self._run(cs.Q["local_setting"], {"name": name, "value": value})
        yield
        # After a failure the caller's savepoint rolls back, and the settings with it.
        for name, value in old.items():
            self._run(cs.Q["local_setting"], {"name": name, "value": value})

    # -- the ledger row ---------------------------------------------------------------------

    def lock(self, target: ViewTarget) -> None:
        self._run(cs.Q["lock_view"], {"namespace": LOCK_NAMESPACE, "name": str(target)})

    def state(self, target: ViewTarget) -> ViewState | None:
        row = self._run(
            cs.Q["view_state"], {"schema": target.schema, "table": target.table}
        ).fetchone()
        if row is None:
            return None
        snapshot, columns, key, newest, rows, present = row
        return ViewState(
            snapshot=snapshot,
            columns=tuple(_column(c) for c in columns),
            key=tuple(key),
            newest_change=newest,
            rows=int(rows),
            present=bool(present),
        )

    def rebuild(
        self,
        target: ViewTarget,
        *,
        columns: tuple[Column, ...],
        key: tuple[str, ...],
        snapshot: datetime,
        source: tuple[str, str],
    ) -> None:
        """Drop the view and create it empty for `snapshot`; reset its ledger row."""
        for statement in cs.view_ddl(target, (*columns, *cs.HEADER)):
            self._run(statement)
        self._run(
            cs.Q["view_reset"],
            {
                "schema": target.schema,
                "table": target.table,
                "source_schema": source[0],
                "source_table": source[1],
                "snapshot": snapshot,
                "columns": Jsonb([_plain(c) for c in columns]),
                "key_columns": list(key),
            },
        )

    def applied(self, target: ViewTarget, merged: Merged, *, change: bool) -> None:
        self._run(
            cs.Q["view_applied"],
            {
                "schema": target.schema,
                "table": target.table,
                "inserted": merged.inserted,
                "deleted": merged.deleted,
                "newest_change": merged.newest_change if change else None,
                "load_files": 0 if change else 1,
                "change_files": 1 if change else 0,
            },
        )

    def lags(self) -> list[ViewLag]:
        rows = self._run(cs.Q["view_lags"]).fetchall()
        return [
            ViewLag(
                target=ViewTarget(str(schema), str(table)),
                snapshot=snapshot,
                newest_change=newest,
                lag=lag,
                rows=int(count),
                load_files=int(loads),
                change_files=int(changes),
                applied_at=applied_at,
            )
            for schema, table, snapshot, newest, lag, count, loads, changes, applied_at in rows
        ]

    # -- one file -----------------------------------------------------------------------------

    def stage(self, shape: cs.Shape, pieces: Iterable[bytes], *, delimiter: str, null: str) -> int:
        """COPY the file's records (after its header) into the staging table; return how many.
        A record COPY refuses is a BadInputError with its line counted from the first record."""
        self._run(shape.named("drop_temp"))
        self._run(shape.create_stage())
        try:
            with self.conn.cursor() as cur:
                with cur.copy(shape.copy_stage(delimiter, null)) as copy:
                    for piece in pieces:
                        copy.write(piece)
                return max(cur.rowcount, 0)
        except psycopg.Error as exc:
            bad = copy_error(exc)
            if bad is not None:
                raise bad from exc
            raise classify(exc, "staging a current-view file") from exc

    def unknown_oper(self) -> tuple[int, str | None] | None:
        """The first record whose operation is none of I, U, D, B, and that operation."""
        stage = sql.Identifier(cs.STAGE)
        (found,) = self._run(cs.template("any_unknown_oper", stage=stage)).fetchone()
        if not found:
            return None
        row = self._run(cs.template("unknown_oper", stage=stage)).fetchone()
        return None if row is None else (int(row[0]), row[1])

    def merge(
        self,
        shape: cs.Shape,
        *,
        change: bool,
        seq: str,
        at: datetime,
        fresh: bool,
        view_rows: int = 0,
    ) -> Merged:
        """Take the final operation per key of the staged records, then apply them: deletes,
        then updates of the keys the view holds and inserts of the others. A `fresh` view (just
        created for a new snapshot) gets its key index after its first rows."""
        params = None if change else {"seq": seq, "at": at.astimezone(UTC).replace(tzinfo=None)}
        if fresh:
            inserted = self._run(shape.fill_view(), params).rowcount
            if shape.key:
                self._run(cs.key_index(shape.target, shape.key))
            self._run(shape.named("drop_temp"))
            return Merged(int(inserted), 0, 0, 0, None)
        self._run(shape.create_final())
        self._run(shape.fill_final(change=change), params)
        if not shape.key:
            inserted = self._run(shape.named("insert_all")).rowcount
            self._run(shape.named("drop_temp"))
            return Merged(int(inserted), 0, 0, 0, None)
        final, deletes, null_deletes, null_live, newest = self._run(shape.summary()).fetchone()
        large = final >= max(REWRITE_MIN_ROWS, view_rows * REWRITE_SHARE)
        if large and not (null_deletes or null_live):
            try:
                with self.savepoint():
                    return self._rewrite(shape, final, deletes, newest)
            except _HasDependents:
                pass  # a view of the user's reads the table: it must stay; update in place
        deleted = 0
        if deletes > null_deletes:
            deleted += self._run(shape.delete_keys(nulls=False)).rowcount
        if null_deletes:
            deleted += self._run(shape.delete_keys(nulls=True)).rowcount
        inserted, updated = self._run(shape.upsert(nulls=False)).fetchone()
        if null_live:
            more_inserted, more_updated = self._run(shape.upsert(nulls=True)).fetchone()
            inserted, updated = inserted + more_inserted, updated + more_updated
        self._run(shape.named("drop_temp"))
        return Merged(
            inserted=int(inserted),
            updated=int(updated),
            deleted=int(deleted),
            deletes=int(deletes),
            newest_change=newest.replace(tzinfo=UTC) if newest is not None else None,
        )

    def _rewrite(
        self, shape: cs.Shape, final: int, deletes: int, newest: datetime | None
    ) -> Merged:
        """Apply a large final set by writing the view anew: its untouched rows and the new
        ones into a new table, indexed once, put in the view's place. The counts follow from
        the rows before and after: every final row that is not a delete is in the new table,
        beside the rows of keys the file does not touch."""
        (before,) = self._run(shape.named("count_view")).fetchone()
        (deleted,) = self._run(shape.rewrite_deleted()).fetchone()
        create, fill, drop, rename = shape.rewrite()
        self._run(create)
        after = self._run(fill).rowcount
        try:
            self.conn.execute(drop)
        except psycopg.errors.DependentObjectsStillExist as exc:
            raise _HasDependents from exc
        except psycopg.Error as exc:
            raise classify(exc, "applying a current view") from exc
        self._run(rename)
        self._run(cs.key_index(shape.target, shape.key))
        self._run(shape.named("drop_temp"))
        live = final - deletes
        updated = before - (after - live) - deleted
        return Merged(
            inserted=int(live - updated),
            updated=int(updated),
            deleted=int(deleted),
            deletes=int(deletes),
            newest_change=newest.replace(tzinfo=UTC) if newest is not None else None,
        )


class _HasDependents(Exception):
    """The view's table cannot be dropped: other objects (views) depend on it."""


def _plain(column: Column) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type,
        "length": column.length,
        "precision": column.precision,
        "scale": column.scale,
        "primary_key_pos": column.primary_key_pos,
    }


def _column(raw: dict[str, Any]) -> Column:
    """A column of the ledger row; its type is mapped again by `postgres_type`, never used as
    SQL text."""
    try:
        return Column(
            name=str(raw["name"]),
            type=str(raw["type"]),
            length=int(raw.get("length") or 0),
            precision=int(raw.get("precision") or 0),
            scale=int(raw.get("scale") or 0),
            primary_key_pos=int(raw.get("primary_key_pos") or 0),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"the current view's recorded column {raw!r} is not valid") from exc
