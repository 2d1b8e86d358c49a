"""CSV as PostgreSQL's COPY reads it: cutting a byte stream into chunks of whole records.

COPY parses the rows; this module never does on the happy path. It only finds record
boundaries so that a stream can be sent as independent chunks (parallel staging, per-chunk
rescue of bad rows). A newline ends a record when an even number of quote characters precede it
in the record: that is how COPY itself finds line ends in CSV mode (a doubled quote inside a
quoted field keeps the parity even).

Lines are physical line numbers of the object, counted from 1, as an editor shows them.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain

#: If no record boundary shows up this far past the chunk size, the quoting is broken: the
#: chunk is cut at the last newline and COPY reports the unterminated field with its line.
MAX_RECORD_BYTES = 64 << 20


@dataclass(frozen=True)
class Chunk:
    """Whole records of an object, in order."""

    index: int
    data: bytes
    #: Physical line number of the chunk's first line in the object.
    first_line: int

    @cached_property
    def newlines(self) -> int:
        return self.data.count(b"\n")


def chunks(
    stream: Iterable[bytes], *, size: int, quote: bytes = b'"', header: bool = False
) -> Generator[Chunk, None, None]:
    """Regroup `stream` into chunks of about `size` bytes that end on record boundaries."""
    line = 1
    if header:
        header_lines, stream = split_header(stream, quote)
        line += header_lines
    pending: list[bytes] = []
    pending_len = 0
    index = 0
    for piece in stream:
        if not piece:
            continue
        pending.append(piece)
        pending_len += len(piece)
        if pending_len < size:
            continue
        buf = b"".join(pending)
        cut = _last_boundary(buf, quote)
        if cut < 0 and len(buf) > size + MAX_RECORD_BYTES:
            cut = buf.rfind(b"\n") + 1
        if cut <= 0:
            pending, pending_len = [buf], len(buf)
            continue
        chunk = Chunk(index, buf[:cut], line)
        yield chunk
        index += 1
        line += chunk.newlines
        rest = buf[cut:]
        pending, pending_len = ([rest], len(rest)) if rest else ([], 0)
    buf = b"".join(pending)
    if buf:
        yield Chunk(index, buf, line)


def split_header(stream: Iterable[bytes], quote: bytes = b'"') -> tuple[int, Iterator[bytes]]:
    """Read `stream` to the end of its first record (a header). Return the newlines in that
    record and the rest of the stream, piece by piece as it comes; nothing is left of a stream
    whose only record has no end."""
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
    return head.count(b"\n"), iter(())


def without_header(stream: Iterable[bytes], *, quote: bytes = b'"') -> Iterator[bytes]:
    """`stream` without its first record, the rest passed on piece by piece as it came.

    For a single COPY of a whole object, which needs no record boundaries: cutting chunks
    costs the client a second pass over every byte."""
    yield from split_header(stream, quote)[1]


def _last_boundary(buf: bytes, quote: bytes) -> int:
    """Offset just past the last newline of `buf` that ends a record, or -1."""
    pos = buf.rfind(b"\n")
    if pos < 0:
        return -1
    quotes = buf.count(quote, 0, pos)
    while pos >= 0:
        if quotes % 2 == 0:
            return pos + 1
        prev = buf.rfind(b"\n", 0, pos)
        if prev < 0:
            return -1
        quotes -= buf.count(quote, prev, pos)
        pos = prev
    return -1


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
