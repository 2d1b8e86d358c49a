"""CSV as PostgreSQL's COPY reads it: cutting a byte stream into chunks of whole records.

COPY parses the rows; this module never does on the happy path. It only finds record
boundaries so that a stream can be sent as independent chunks (parallel staging, per-chunk
rescue of bad rows). A newline ends a record when an even number of quote characters precede it
in the record: that is how COPY itself finds line ends in CSV mode (a doubled quote inside a
quoted field keeps the parity even).

Lines are physical line numbers of the object, counted from 1, as an editor shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain

from sluice.formats.streams import BadStream

#: If no record boundary shows up this far past the chunk size, the quoting is broken: the
#: chunk is cut at the last newline and COPY reports the unterminated field with its line.
#: Also the longest header record.
MAX_RECORD_BYTES = 64 << 20


@dataclass(frozen=True)
class Chunk:
    """Whole records of an object, in order."""

    index: int
    data: bytes
    #: Physical line number of the chunk's first line in the object.
    first_line: int
    #: The line breaks in `data`, when the stream had counted them already.
    breaks: int | None = field(default=None, repr=False, compare=False)

    @cached_property
    def newlines(self) -> int:
        return self.data.count(b"\n") if self.breaks is None else self.breaks


def chunks(
    stream: Iterable[bytes],
    *,
    size: int,
    quote: bytes = b'"',
    header: bool = False,
    max_record: int = MAX_RECORD_BYTES,
    line_breaks: Callable[[], int] | None = None,
) -> Generator[Chunk, None, None]:
    """Regroup `stream` into chunks of about `size` bytes that end on record boundaries.

    What is held at once is a chunk plus a record: the stream's lines must be bounded (a
    `LineGuard` in front), and a record with no end within `max_record` bytes is cut at its
    last newline (broken quoting, which COPY then reports with its line).

    `line_breaks`, if given, tells the line breaks the stream has handed over so far (a
    `LineGuard` counts them): chunks then take their line numbers from it and count only the
    breaks in the rest of a record after each cut, instead of every byte once more."""
    count = _Breaks(line_breaks)
    line = 1
    if header:
        header_lines, stream = split_header(stream, quote, max_record=max_record)
        line += header_lines
    buf = bytearray()
    index = 0
    # While a record is longer than a chunk: the bytes searched already (none of their
    # newlines ends a record) and the quotes among them, so each byte is searched once.
    known = known_quotes = 0
    for piece in stream:
        buf += piece
        if len(buf) < size:
            continue
        cut = _last_boundary(buf, quote, known, known_quotes)
        if cut < 0 and len(buf) > size + max_record:
            cut = buf.rfind(b"\n") + 1
        if cut <= 0:
            known_quotes += buf.count(quote, known)
            known = len(buf)
            continue
        breaks = count.before(buf, cut, line)
        chunk = Chunk(index, _take(buf, cut), line, breaks)
        yield chunk
        index += 1
        line += chunk.newlines
        known = known_quotes = 0
    if buf:
        yield Chunk(index, bytes(buf), line, count.before(buf, len(buf), line))


@dataclass(frozen=True)
class _Breaks:
    """The line breaks of a chunk, from the count of the stream that handed it over."""

    passed: Callable[[], int] | None

    def before(self, buf: bytearray, cut: int, line: int) -> int | None:
        """The breaks in `buf[:cut]`, a chunk that starts on `line`; None if not counted."""
        if self.passed is None:
            return None
        return self.passed() - buf.count(b"\n", cut) - (line - 1)


def _take(buf: bytearray, cut: int) -> bytes:
    """The first `cut` bytes of `buf`, removed from it (one copy; the rest stays in place)."""
    with memoryview(buf) as view:
        data = bytes(view[:cut])
    del buf[:cut]
    return data


def split_header(
    stream: Iterable[bytes], quote: bytes = b'"', *, max_record: int = MAX_RECORD_BYTES
) -> tuple[int, Iterator[bytes]]:
    """Read `stream` to the end of its first record (a header). Return the newlines in that
    record and the rest of the stream, piece by piece as it comes; nothing is left of a stream
    whose only record has no end. A header with no end within `max_record` bytes (a quote that
    never closes) is bad input rather than a reason to read the whole object into memory."""
    pieces = iter(stream)
    head = bytearray()
    quotes = start = 0
    for piece in pieces:
        head += piece
        while (pos := head.find(b"\n", start)) >= 0:
            quotes += head.count(quote, start, pos)
            start = pos + 1
            if quotes % 2 == 0:
                rest = bytes(head[start:])
                return head.count(b"\n", 0, start), chain((rest,) if rest else (), pieces)
        if len(head) > max_record:
            raise BadStream(
                f"the header record has no end within its first {max_record:,} bytes (a "
                "quoted field that never closes?)",
                line=1,
            )
    return head.count(b"\n"), iter(())


def without_header(
    stream: Iterable[bytes], *, quote: bytes = b'"', max_record: int = MAX_RECORD_BYTES
) -> Iterator[bytes]:
    """`stream` without its first record, the rest passed on piece by piece as it came.

    For a single COPY of a whole object, which needs no record boundaries: cutting chunks
    costs the client a second pass over every byte."""
    yield from split_header(stream, quote, max_record=max_record)[1]


def _last_boundary(buf: bytes | bytearray, quote: bytes, start: int = 0, quotes: int = 0) -> int:
    """Offset just past the last newline of `buf` that ends a record, or -1. No newline before
    `start` does, and `quotes` quote characters precede it."""
    pos = buf.rfind(b"\n", start)
    if pos < 0:
        return -1
    quotes += buf.count(quote, start, pos)
    while quotes % 2:
        prev = buf.rfind(b"\n", start, pos)
        if prev < 0:
            return -1
        quotes -= buf.count(quote, prev, pos)
        pos = prev
    return pos + 1


@dataclass(frozen=True)
class Record:
    """One record of a chunk with the physical line it starts on (rescue path only)."""

    line: int
    data: bytes


def records(chunk: Chunk, quote: bytes = b'"') -> list[Record]:
    """Split a chunk into records. Used only when a chunk failed, to find and set aside bad
    rows; the last record may be unterminated if the quoting is broken."""
    out: list[Record] = []
    start = 0
    line = chunk.first_line
    record_start, record_line, quotes = 0, line, 0
    data = chunk.data
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        quotes += data.count(quote, start, end)
        line += 1
        start = end
        if quotes % 2 == 0:
            out.append(Record(record_line, data[record_start:end]))
            record_start, record_line, quotes = end, line, 0
        elif start >= len(data):
            out.append(Record(record_line, data[record_start:end]))
    return out


def copy_record_index(found: Sequence[Record], copy_line: int) -> int:
    """The index in `found` of the record a COPY error names by its line number.

    COPY counts one line per record, plus, once it has seen the stream's first record end, the
    newlines inside quoted fields; an error inside a multi-line record names the line it was
    reading. The last record is returned for a line past the end (an unterminated field).
    """
    counter = 0
    # Inside quotes COPY counts the line-ending character of the stream: "\n" once it has seen
    # an LF-ended record, "\r" before that and for CRLF streams.
    inner = b"\r"
    settled = False
    for index, record in enumerate(found):
        counter += 1
        first = counter
        body = record.data.removesuffix(b"\n").removesuffix(b"\r")
        counter += body.count(inner)
        if first <= copy_line <= counter:
            return index
        if not settled and record.data.endswith(b"\n"):
            inner = b"\r" if record.data.endswith(b"\r\n") else b"\n"
            settled = True
    return len(found) - 1


def record_line(chunk: Chunk, copy_line: int, quote: bytes = b'"') -> int:
    """The physical line on which the record named by a COPY error starts."""
    if copy_line <= 0:
        return chunk.first_line
    found = records(chunk, quote)
    if not found:
        return chunk.first_line
    return found[copy_record_index(found, copy_line)].line
