"""Small helpers for byte streams: counting what was read, reading ahead in a thread, and the
guards an untrusted stream passes before anything buffers it (a byte order mark, the length of
its lines)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar, cast

from sluice.errors import BadInputError

T = TypeVar("T")

_DONE = object()

#: The longest physical line a load accepts by default (``BulkOptions.max_line_bytes``).
MAX_LINE_BYTES = 64 << 20

UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class BadStream(BadInputError):
    """The bytes of an object cannot be read as lines at all: corrupt compression, a line past
    the limit, a header without an end. Unlike a bad row, this is not something COPY can point
    at or a rescue can set aside: reading the object again, chunk by chunk, fails the same way.

    `in_data` says whether the error happened inside the data, so that the line reached is
    where it is (a stream guard adds it); trailing bytes after the end of the data have none.
    Pickled (to cross a process boundary) it becomes the plain `BadInputError` it also is.
    """

    def __init__(
        self,
        reason: str,
        *,
        obj: str | None = None,
        line: int | None = None,
        column: str | None = None,
        in_data: bool = True,
    ) -> None:
        super().__init__(reason, obj=obj, line=line, column=column)
        self.in_data = in_data

    def at(self, *, obj: str | None = None, line: int | None = None) -> BadStream:
        """The same error, with the object and the line filled in where they are missing."""
        return BadStream(
            self.reason,
            obj=self.obj or obj,
            line=self.line if self.line is not None else line,
            column=self.column,
            in_data=self.in_data,
        )


@dataclass
class Meter:
    """Counts the bytes that went through a stream, readable from any thread."""

    total: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, stream: Iterable[bytes]) -> Iterator[bytes]:
        for piece in stream:
            with self._lock:
                self.total += len(piece)
            yield piece

    def reset(self) -> None:
        with self._lock:
            self.total = 0


def without_bom(stream: Iterable[bytes]) -> Iterator[bytes]:
    """`stream` without a UTF-8 byte order mark at its very start.

    Some tools (spreadsheets' "CSV UTF-8") begin a file with one; COPY would read it as part of
    the first field. A UTF-16 byte order mark means the text is not UTF-8 at all: that is said
    plainly instead of leaving COPY to refuse the first byte."""
    pieces = iter(stream)
    head = _head(pieces, len(UTF8_BOM))
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    elif head.startswith(_UTF16_BOMS):
        raise BadStream(
            "the object starts with a UTF-16 byte order mark: it is UTF-16 text, and sluice "
            "loads UTF-8; convert it to UTF-8 first",
            line=1,
        )
    if head:
        yield head
        head = b""  # not held while the rest streams: a piece may be megabytes
    yield from pieces


def _head(pieces: Iterator[bytes], size: int) -> bytes:
    """The first pieces of `pieces`, joined, until they hold `size` bytes (or the end)."""
    head = b""
    for piece in pieces:
        head += piece
        if len(head) >= size:
            break
    return head


class LineGuard:
    """The pieces of a stream passed on as they are, while counting its line breaks and
    refusing a physical line longer than `limit` bytes (not counting its line break).

    Nothing downstream has to hold more than a line then: COPY buffers a line whole, and so
    does cutting a stream into records. An object with no line breaks (a gzip bomb of one
    endless line, a binary file) fails after `limit` bytes instead of filling the memory.

    On usual input the check costs one reverse search per piece: only the bytes since the last
    line break are tracked, and a piece is searched further only when it could hold a line
    past the limit. The count of line breaks is the stream's one: progress and the line
    numbers of chunks read it (`chunks(..., line_breaks=...)`) instead of counting again.
    Errors raised upstream inside the data (a corrupt gzip stream) get the line reached,
    `lines + 1`.
    """

    def __init__(self, stream: Iterable[bytes], *, limit: int, obj: str | None = None) -> None:
        if limit < 1:
            raise ValueError("the line limit must be at least one byte")
        self.limit = limit
        self.obj = obj
        #: Line breaks passed on so far.
        self.lines = 0
        self._stream = stream
        self._run = 0  # bytes since the last line break

    def __iter__(self) -> Iterator[bytes]:
        try:
            for piece in self._stream:
                self._check(piece)
                self.lines += piece.count(b"\n")
                yield piece
        except BadStream as exc:
            line = self.lines + 1 if exc.in_data else None
            raise exc.at(obj=self.obj, line=line) from exc

    def _check(self, piece: bytes) -> None:
        size = len(piece)
        if self._run + size <= self.limit:  # no line of this piece can pass the limit
            last = piece.rfind(b"\n")
            self._run = self._run + size if last < 0 else size - last - 1
            return
        start = -self._run  # where the current line starts, relative to the piece
        while start + self.limit < size:
            # The line must break within `limit` bytes of its start; jump to the last break
            # in reach, so that a piece costs a search per `limit` bytes, not one per line.
            found = piece.rfind(b"\n", max(start, 0), start + self.limit + 1)
            if found < 0:
                raise self._too_long(piece, start)
            start = found + 1
        last = piece.rfind(b"\n", max(start, 0))
        self._run = size - (last + 1 if last >= 0 else start)

    def _too_long(self, piece: bytes, start: int) -> BadStream:
        line = self.lines + piece.count(b"\n", 0, max(start, 0)) + 1
        return BadStream(
            f"line longer than {self.limit:,} bytes (the load's max_line_bytes): the object "
            "has no line break where one was due, or is not CSV; raise [load] max_line_mb if "
            "rows this long are real",
            obj=self.obj,
            line=line,
        )


def prefetch(stream: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate `stream` in a background thread, `depth` pieces ahead, so that reading from the
    store (network, decompression, parsing) overlaps with what the consumer does with each
    piece (sending it to the database, writing Parquet). Errors raised by the stream are
    raised again in the consumer; closing the consumer stops the reader."""
    pieces: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for piece in stream:
                if stop.is_set():
                    return
                pieces.put(piece)
            pieces.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            pieces.put(exc)

    reader = threading.Thread(target=produce, name="sluice-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = pieces.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(T, item)
    finally:
        stop.set()
        while reader.is_alive():
            with contextlib.suppress(queue.Empty):
                pieces.get(timeout=0.1)
