"""Translate driver errors into sluice's terminal / transient classes, where they enter."""

from __future__ import annotations

import re

import psycopg
from psycopg import errors as pg

from sluice.errors import (
    BadInputError,
    DatabaseUnavailable,
    SchemaError,
    SluiceError,
    TerminalError,
)

# COPY's error context: 'COPY t, line 17, column total_users: "abc"' (column is optional).
_COPY_CONTEXT = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([^:\s]+))?")

#: SQLSTATEs that mean "try again": serialization failures, deadlocks, lock timeouts,
#: shutdowns and lost connections.
_TRANSIENT_STATES = {
    "40001",
    "40P01",
    "55P03",
    "57P01",
    "57P02",
    "57P03",
    "57014",
    "53100",
    "53200",
    "53300",
}


def copy_error(exc: psycopg.Error) -> BadInputError | None:
    """The bad-input error a failed COPY reports, with its record number and column, or None
    if the failure is not about the data."""
    state = exc.sqlstate or ""
    if not (state.startswith("22") or state in {"23502", "23514"}):
        return None
    diag = exc.diag
    reason = (diag.message_primary or str(exc)).strip()
    match = _COPY_CONTEXT.search(diag.context or "")
    line = int(match.group(1)) if match else None
    column = match.group(2) if match and match.group(2) else None
    if column is None and diag.column_name:
        column = diag.column_name
    return BadInputError(reason, line=line, column=column)


def classify(exc: psycopg.Error, doing: str) -> SluiceError:
    """A sluice error for a driver error raised while `doing` something."""
    bad = copy_error(exc)
    if bad is not None:
        return bad
    state = exc.sqlstate or ""
    text = (exc.diag.message_primary if exc.diag else None) or str(exc).strip()
    if isinstance(exc, psycopg.OperationalError) and not state:
        return DatabaseUnavailable(f"{doing}: the database connection failed: {text}")
    if state in _TRANSIENT_STATES or state.startswith("08"):
        return DatabaseUnavailable(f"{doing}: {text} (SQLSTATE {state}); will retry")
    if state.startswith("42") or isinstance(exc, pg.UndefinedTable):
        return SchemaError(f"{doing}: {text} (SQLSTATE {state})")
    return TerminalError(f"{doing}: {text} (SQLSTATE {state or 'none'})")
