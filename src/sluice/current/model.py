"""What the current views are: their names, what an apply changed, and how far behind they are."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sluice.errors import BadInputError

#: The schema every current view lives in, as the downstream system names it.
VIEW_SCHEMA = "ods"
#: PostgreSQL's identifier limit, in bytes.
MAX_IDENTIFIER = 63
_NAME = re.compile(r"^[a-z_][a-z0-9_$]*$")


@dataclass(frozen=True)
class ViewTarget:
    """A current view: ``ods.edw_sample`` for the source table ``EDW.SAMPLE``."""

    schema: str
    table: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"


def view_target(source_schema: str, source_table: str) -> ViewTarget:
    """The current view of a source table: schema ``ods``, table ``<schema>_<table>``
    lower-case. BadInputError for a name that is not a plain identifier or is too long."""
    table = f"{source_schema}_{source_table}".lower()
    if not source_schema or not source_table or not _NAME.match(table):
        raise BadInputError(
            f"the source table {source_schema}.{source_table} does not name a current view "
            "(letters, digits, _ and $ only)"
        )
    if len(table.encode()) > MAX_IDENTIFIER:
        raise BadInputError(
            f"the current view name {table} of {source_schema}.{source_table} is longer than "
            f"{MAX_IDENTIFIER} bytes"
        )
    return ViewTarget(VIEW_SCHEMA, table)


@dataclass(frozen=True)
class ApplyResult:
    """What one file did to its view (rows of the view changed)."""

    inserted: int
    updated: int
    deleted: int
    #: Rows of the file that changed nothing: before-images (``B``), operations superseded by a
    #: later one on the same key in the file, deletes of keys the view does not hold.
    ignored: int
    #: The newest ``header__timestamp`` applied (UTC); None for a LOAD file.
    newest_change: datetime | None
    #: Whether the view was emptied for a new snapshot before this file's rows.
    rebuilt: bool = False


@dataclass(frozen=True)
class ViewLag:
    """How far behind a current view is."""

    target: ViewTarget
    snapshot: datetime
    #: The newest ``header__timestamp`` applied (UTC); None when only LOAD files were.
    newest_change: datetime | None
    #: Now minus `newest_change`; None when no change was applied yet.
    lag: timedelta | None
    rows: int
    load_files: int
    change_files: int
    applied_at: datetime

    @property
    def lag_seconds(self) -> float | None:
        return None if self.lag is None else self.lag.total_seconds()
