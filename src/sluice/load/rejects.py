"""The rescue path for bad rows (``on_bad_rows = "reject"``).

When COPY refuses a chunk, the chunk is split into records (the only place sluice looks at
individual rows) and sent again in windows: COPY names the first bad record of a window, the
records before it are sent once more, the bad one is set aside with its line and reason, and the
window moves on. Each failure costs at most one window of re-sent rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sluice.errors import BadInputError
from sluice.formats.csv import Chunk, Record, copy_record_index, records

#: Records sent per COPY while rescuing a chunk.
RESCUE_WINDOW = 1000
_STRUCTURAL = ("unterminated CSV quoted field",)


@dataclass(frozen=True)
class Reject:
    """A row that was set aside: where it was and why."""

    line: int
    column: str | None
    reason: str
    data: bytes


def rescue(
    chunk: Chunk,
    copy: Callable[[Chunk], int],
    *,
    quote: bytes,
    obj: str,
    on_reject: Callable[[Reject], None],
) -> int:
    """Copy the good records of `chunk` with `copy`; hand each bad one to `on_reject` (which
    raises to stop, e.g. past the table's max_rejects). Return the rows copied.

    Raises BadInputError if the chunk cannot be split into records (broken quoting).
    """
    pending = records(chunk, quote)
    windows = [pending[i : i + RESCUE_WINDOW] for i in range(0, len(pending), RESCUE_WINDOW)]
    windows.reverse()
    copied = 0
    while windows:
        window = windows.pop()
        try:
            copied += copy(_as_chunk(chunk, window))
            continue
        except BadInputError as exc:
            failure = exc
        bad_index = _bad_index(failure, window, obj)
        bad = window[bad_index]
        if failure.reason.startswith(_STRUCTURAL):
            raise BadInputError(
                f"{failure.reason}; the rest of the file cannot be split into rows",
                obj=obj,
                line=bad.line,
            )
        on_reject(Reject(bad.line, failure.column, failure.reason, bad.data))
        # The records around the bad one go back on the stack: a window that fails again is
        # split again, so a record is never copied twice and never dropped.
        if bad_index + 1 < len(window):
            windows.append(window[bad_index + 1 :])
        if bad_index > 0:
            windows.append(window[:bad_index])
    return copied


def _bad_index(exc: BadInputError, window: Sequence[Record], obj: str) -> int:
    if exc.line is None or exc.line < 1:
        # COPY did not say which row: the window cannot be split further.
        raise BadInputError(exc.reason, obj=obj, line=window[0].line, column=exc.column)
    return copy_record_index(window, exc.line)


def _as_chunk(chunk: Chunk, window: Sequence[Record]) -> Chunk:
    return Chunk(chunk.index, b"".join(r.data for r in window), window[0].line if window else 0)


def render(rejects: Sequence[Reject]) -> bytes:
    """The rejects object: CSV with a header, one row per rejected record, in line order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["line", "column", "reason", "record"])
    for reject in sorted(rejects, key=lambda r: r.line):
        text = reject.data.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")
        writer.writerow(
            [reject.line, reject.column or "", reject.reason, text.replace("\0", "\\x00")]
        )
    return out.getvalue().encode("utf-8")


def rejects_key(key: str, load_id: int) -> str:
    """Where the rejects of a load go: beside the source object."""
    return f"{key}.rejects-{load_id}.csv"
