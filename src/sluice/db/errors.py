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
from sluice.text import visible

# COPY's error context: 'COPY t, line 17, column total_users: "abc"' (column is optional).
_COPY_CONTEXT = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([^:\s]+))?")
# How the server names the table a row was refused by. The reason of a bad row speaks of the
# object, its line and column: the table is sluice's business (often an internal staging table
# such as load_12_1, whose name would mean nothing to whoever fixes the file).
_OF_RELATION = re.compile(r' of relation "(?:[^"]|"")*"')
_FOR_RELATION = re.compile(r'new row for relation "(?:[^"]|"")*"')

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
    reason = row_reason(diag.message_primary or str(exc).strip().partition("\n")[0])
    match = _COPY_CONTEXT.search(diag.context or "")
    line = int(match.group(1)) if match else None
    column = match.group(2) if match and match.group(2) else None
    if column is None and diag.column_name:
        column = diag.column_name
    return BadInputError(reason, line=line, column=column)


def row_reason(message: str) -> str:
    """The server's message about a refused row, as the reason of a bad row: without the name
    of the table it was copied into, and with the characters that would not show (a byte order
    mark, a tab, a control character quoted from the data) escaped."""
    reason = _OF_RELATION.sub("", message.strip())
    reason = _FOR_RELATION.sub("the row", reason)
    return visible(reason)


def classify(exc: psycopg.Error, doing: str) -> SluiceError:
    """A sluice error for a driver error raised while `doing` something."""
    bad = copy_error(exc)
    if bad is not None:
        return bad
    state = exc.sqlstate or ""
    primary = exc.diag.message_primary if exc.diag else None
    # The server's message may quote a value; the client library's own text (a failed
    # connection, over several lines) is shown as it is.
    text = visible(primary) if primary else str(exc).strip()
    if isinstance(exc, psycopg.OperationalError) and not state:
        return DatabaseUnavailable(f"{doing}: the database connection failed: {text}")
    if state in _TRANSIENT_STATES or state.startswith("08"):
        return DatabaseUnavailable(f"{doing}: {text} (SQLSTATE {state}); will retry")
    if state.startswith("42") or isinstance(exc, pg.UndefinedTable):
        return SchemaError(f"{doing}: {text} (SQLSTATE {state})")
    return TerminalError(f"{doing}: {text} (SQLSTATE {state or 'none'})")
