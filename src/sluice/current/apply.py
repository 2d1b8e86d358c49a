"""Applying one ODS file (a snapshot's LOAD file or a change file) to its current view.

The file is streamed with ``COPY ... FROM STDIN`` into a temporary table of text columns, then
everything is set-wise SQL: the casts into the view's types, the final operation per key, the
deletes and the upsert. Python reads only the header row. Everything runs in a savepoint of the
caller's transaction: a bad file leaves neither the view nor the caller's work touched, and the
caller commits the view's rows together with its own ledger transition.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from sluice.current import statements as cs
from sluice.current.model import ApplyResult, ViewLag, ViewTarget
from sluice.current.repository import CurrentViews, ViewState
from sluice.db import Connection
from sluice.errors import BadInputError
from sluice.formats.csv import MAX_RECORD_BYTES
from sluice.formats.dfm import Column, Dfm, postgres_type

#: Bytes read from the file at a time.
PIECE_BYTES = 1 << 20
OPERATIONS = ("I", "U", "D", "B")


def apply_file(
    tx: Connection,
    target: ViewTarget,
    dfm: Dfm,
    data: BinaryIO,
    *,
    obj: str,
    snapshot: datetime,
    change: bool,
) -> ApplyResult:
    """Apply a LOAD file (`change` False) or a change file of `snapshot` to the view `target`,
    inside the caller's open transaction on `tx`. `data` is the decompressed CSV, header first.
    Bad input raises BadInputError naming `obj`, the line and the column."""
    snapshot = snapshot if snapshot.tzinfo else snapshot.replace(tzinfo=UTC)
    header, header_lines, rest = read_header(_pieces(data), obj=obj, delimiter=dfm.field_delimiter)
    dfm.check_header(header, obj=obj)
    file_columns = tuple(h.strip().lower() for h in header)
    spelled = {h.strip().lower(): h.strip() for h in header}
    repo = CurrentViews(tx)
    with repo.savepoint():
        repo.lock(target)
        state = repo.state(target)
        rebuilt = False
        if change:
            shape = _change_shape(target, dfm, state, file_columns, obj=obj, snapshot=snapshot)
        else:
            rebuilt = _prepare_load(repo, target, dfm, state, obj=obj, snapshot=snapshot)
            shape = _load_shape(target, dfm, file_columns)
        with repo.work_mem():
            try:
                records = repo.stage(
                    shape, rest, delimiter=dfm.field_delimiter, null=dfm.null_value
                )
            except BadInputError as exc:
                raise _in_file(exc, obj, header_lines, spelled) from exc
            if change:
                _check_operations(repo, obj=obj, header_lines=header_lines)
            merged = repo.merge(
                shape,
                change=change,
                seq=_load_seq(snapshot),
                at=snapshot,
                fresh=rebuilt,
                view_rows=state.rows if state is not None and not rebuilt else 0,
            )
            repo.applied(target, merged, change=change)
    changed = merged.inserted + merged.updated + merged.deleted
    return ApplyResult(
        inserted=merged.inserted,
        updated=merged.updated,
        deleted=merged.deleted,
        ignored=records - changed,
        newest_change=merged.newest_change if change else None,
        rebuilt=rebuilt,
    )


def view_lags(conn: Connection) -> list[ViewLag]:
    """Per current view: its snapshot, the newest change applied and how long ago that was."""
    return CurrentViews(conn).lags()


# -- shapes --------------------------------------------------------------------------------------


def _business(dfm: Dfm) -> tuple[Column, ...]:
    return tuple(c for c in dfm.columns if not c.lower.startswith("header__"))


def _signature(columns: Iterable[Column]) -> list[tuple[str, str, int]]:
    return [(c.lower, postgres_type(c), c.primary_key_pos) for c in columns]


def _prepare_load(
    repo: CurrentViews,
    target: ViewTarget,
    dfm: Dfm,
    state: ViewState | None,
    *,
    obj: str,
    snapshot: datetime,
) -> bool:
    """Rebuild the view for a newer snapshot (True), or check the LOAD file belongs to the one
    it holds."""
    columns = _business(dfm)
    if state is None or not state.present or state.snapshot < snapshot:
        key = tuple(c.lower for c in dfm.key)
        source = (dfm.source_schema, dfm.source_table)
        repo.rebuild(target, columns=columns, key=key, snapshot=snapshot, source=source)
        return True
    if state.snapshot > snapshot:
        raise BadInputError(
            f"the LOAD file is of snapshot {_when(snapshot)}, older than the snapshot "
            f"{_when(state.snapshot)} the view {target} holds",
            obj=obj,
        )
    if _signature(columns) != _signature(state.columns):
        raise BadInputError(
            f"the .dfm columns ({_listed(columns)}) differ from those of the view {target} "
            f"for snapshot {_when(snapshot)} ({_listed(state.columns)})",
            obj=obj,
        )
    return False


def _load_shape(target: ViewTarget, dfm: Dfm, file_columns: tuple[str, ...]) -> cs.Shape:
    business = _business(dfm)
    return cs.Shape(
        target=target,
        file_columns=_typed(file_columns, {c.lower: c for c in business}),
        columns=(*business, *cs.HEADER),
        key=tuple(c.lower for c in dfm.key),
        view_columns=(*business, *cs.HEADER),
    )


def _typed(names: tuple[str, ...], columns: dict[str, Column]) -> tuple[Column, ...]:
    """The file's columns typed as the view's; change columns as Qlik declares them, and any
    other ``header__`` column (kept in staging only) as text."""
    header = {c.name: c for c in cs.HEADER}
    return tuple(header.get(n) or columns.get(n) or Column(n, "STRING") for n in names)


def _change_shape(
    target: ViewTarget,
    dfm: Dfm,
    state: ViewState | None,
    file_columns: tuple[str, ...],
    *,
    obj: str,
    snapshot: datetime,
) -> cs.Shape:
    """The columns a change file sets, typed as the view's; BadInputError if it cannot apply."""
    if state is None:
        raise BadInputError(
            f"a change file of snapshot {_when(snapshot)}, but the view {target} holds no "
            "snapshot yet (its LOAD files come first)",
            obj=obj,
        )
    if not state.present:
        raise BadInputError(
            f"the view {target} of snapshot {_when(state.snapshot)} no longer exists (dropped?): "
            "its LOAD files must be applied again first",
            obj=obj,
        )
    if state.snapshot != snapshot:
        raise BadInputError(
            f"the change file is of snapshot {_when(snapshot)}, but the view {target} holds "
            f"snapshot {_when(state.snapshot)}",
            obj=obj,
        )
    if not state.key:
        raise BadInputError(
            f"the view {target} has no primary key (its .dfm declares no primaryKeyPos): "
            "changes cannot be applied to it",
            obj=obj,
        )
    missing = [n for n in cs.HEADER_NAMES if n not in file_columns]
    if missing:
        raise BadInputError(f"a change file needs the columns {', '.join(missing)}", obj=obj)
    declared = tuple(c.lower for c in dfm.key)
    if declared and declared != state.key:
        raise BadInputError(
            f"the .dfm key ({', '.join(declared)}) differs from the key of the view {target} "
            f"({', '.join(state.key)})",
            obj=obj,
        )
    view_columns = {c.lower: c for c in state.columns}
    carried = [c.lower for c in _business(dfm)]
    unknown = [n for n in carried if n not in view_columns]
    if unknown:
        raise BadInputError(
            f"the columns {', '.join(unknown)} are not columns of the view {target} (snapshot "
            f"{_when(state.snapshot)}); a new snapshot is needed to add them",
            obj=obj,
        )
    absent = [k for k in state.key if k not in carried]
    if absent:
        raise BadInputError(f"the key columns {', '.join(absent)} are missing", obj=obj)
    return cs.Shape(
        target=target,
        file_columns=_typed(file_columns, view_columns),
        columns=(*(view_columns[n] for n in carried), *cs.HEADER),
        key=state.key,
        view_columns=(*state.columns, *cs.HEADER),
    )


def _check_operations(repo: CurrentViews, *, obj: str, header_lines: int) -> None:
    found = repo.unknown_oper()
    if found is None:
        return
    rec, value = found
    shown = "empty" if value is None else repr(value)
    raise BadInputError(
        f"header__change_oper is {shown}, not one of I, U, D, B",
        obj=obj,
        line=rec + header_lines,
        column="header__change_oper",
    )


# -- the file ------------------------------------------------------------------------------------


def _pieces(data: BinaryIO) -> Iterator[bytes]:
    while piece := data.read(PIECE_BYTES):
        yield piece


def read_header(
    pieces: Iterable[bytes], *, obj: str, delimiter: str = ","
) -> tuple[list[str], int, Iterator[bytes]]:
    """The header record of a CSV stream (its fields), the line breaks in it, and the rest of
    the stream piece by piece. A header with no end within `MAX_RECORD_BYTES` is bad input."""
    stream = iter(pieces)
    head = bytearray()
    start = quotes = 0
    end = -1
    for piece in stream:
        head += piece
        while (pos := head.find(b"\n", start)) >= 0:
            quotes += head.count(b'"', start, pos)
            start = pos + 1
            if quotes % 2 == 0:
                end = start
                break
        if end >= 0:
            break
        if len(head) > MAX_RECORD_BYTES:
            raise BadInputError(
                f"the header row has no end within {MAX_RECORD_BYTES:,} bytes", obj=obj, line=1
            )
    if not head:
        raise BadInputError("the file is empty (no header row)", obj=obj, line=1)
    if end < 0:
        end = len(head)
    raw, rest = bytes(head[:end]), bytes(head[end:])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"the header row is not UTF-8 ({exc.reason})", obj=obj, line=1) from exc
    fields = next(csv.reader(io.StringIO(text.rstrip("\r\n")), delimiter=delimiter), [])
    remaining: Iterator[bytes] = _chain(rest, stream)
    return fields, raw.count(b"\n"), remaining


def _chain(first: bytes, stream: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from stream


def _in_file(
    exc: BadInputError, obj: str, header_lines: int, spelled: dict[str, str]
) -> BadInputError:
    """A COPY error located in the file: its line counted from the top, the column as the file
    spells it."""
    moved = exc.located(obj=obj, line_offset=header_lines)
    column = spelled.get(moved.column or "", moved.column)
    return BadInputError(moved.reason, obj=obj, line=moved.line, column=column)


def _load_seq(snapshot: datetime) -> str:
    """The change sequence of a snapshot's rows, as the downstream merge writes it: the
    snapshot's ``YYYYMMDDHHMMSShh`` right-padded with zeros to 35 digits."""
    utc = snapshot.astimezone(UTC)
    return f"{utc:%Y%m%d%H%M%S}{utc.microsecond // 10000:02d}".ljust(35, "0")


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _listed(columns: Iterable[Column]) -> str:
    return ", ".join(f"{c.lower} {postgres_type(c)}" for c in columns)
