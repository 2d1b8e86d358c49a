"""Cutting a byte stream into chunks of whole CSV records, as COPY reads them.

However the stream is split into pieces, every chunk ends on a record boundary (never inside a
quoted field holding newlines or doubled quotes), the chunks put together give back the input
minus its header, and line numbers are the physical lines an editor shows.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest

from sluice.errors import BadInputError
from sluice.formats.csv import (
    Chunk,
    Record,
    chunks,
    record_line,
    records,
    split_header,
    without_header,
)
from sluice.formats.streams import LineGuard, without_bom

#: Fields as an export writes them: NULL, empty string, plain, and quoted fields holding the
#: delimiter, newlines, doubled quotes, or a doubled quote right at a newline. Written with LF;
#: a sample in CRLF has every newline (inside fields too) written as CRLF.
FIELDS = [
    b"",
    b'""',
    b"abc",
    b"12345",
    b'"a,b"',
    b'"line one\nline two"',
    b'"x\ny"',
    b'"say ""hi"""',
    b'""""',
    b'"""\n"""',
    b'"\n\n\n"',
    b'"{""0"":1,\n""1"":2}"',
    b'"ends with newline\n"',
]
LF, CRLF = b"\n", b"\r\n"


@dataclass(frozen=True)
class Sample:
    """A CSV object and where each of its records starts."""

    header: bytes
    rows: list[bytes]

    @property
    def body(self) -> bytes:
        return b"".join(self.rows)

    @property
    def data(self) -> bytes:
        return self.header + self.body

    def ends(self) -> set[int]:
        """Offsets in the body just past each record."""
        out, pos = set(), 0
        for row in self.rows:
            pos += len(row)
            out.add(pos)
        return out

    def lines(self) -> dict[int, int]:
        """Body offset of each record → physical line it starts on (1-based, whole object)."""
        out: dict[int, int] = {}
        pos, line = 0, 1 + self.header.count(b"\n")
        for row in self.rows:
            out[pos] = line
            pos += len(row)
            line += row.count(b"\n")
        return out


def make_sample(
    rng: random.Random, *, header: bool, quote: bytes = b'"', eol: bytes = LF
) -> Sample:
    rows = []
    for _ in range(rng.randint(1, 60)):
        fields = [rng.choice(FIELDS) for _ in range(rng.randint(1, 6))]
        rows.append(b",".join(fields).replace(b'"', quote).replace(LF, eol) + eol)
    if rng.random() < 0.3:
        rows[-1] = rows[-1].removesuffix(eol)  # no newline at the end of the object
        if not rows[-1]:
            rows.pop()
    head = b'id,"name ""quoted""",payload'.replace(b'"', quote) + eol if header else b""
    return Sample(head, rows)


def split(rng: random.Random, data: bytes) -> list[bytes]:
    """`data` cut at random places, sometimes with empty pieces in between."""
    cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data) + 1, rng.randint(0, 40))))
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    return pieces


def chunk_records(sample: Sample, chunk_start: int, chunk: Chunk) -> list[Record]:
    """The records of `sample` inside a chunk that starts at body offset `chunk_start`."""
    return [
        Record(line, row)
        for (pos, line), row in zip(sorted(sample.lines().items()), sample.rows, strict=True)
        if chunk_start <= pos < chunk_start + len(chunk.data)
    ]


def check_chunks(sample: Sample, found: list[Chunk], quote: bytes = b'"') -> None:
    """Every property a loader relies on, checked against the sample's known records."""
    assert b"".join(c.data for c in found) == sample.body
    assert [c.index for c in found] == list(range(len(found)))
    assert all(c.data for c in found)
    ends, starts = sample.ends(), sample.lines()
    offset = 0
    for chunk in found:
        # a chunk starts where a record starts, on that record's physical line
        assert offset in starts, f"chunk {chunk.index} starts inside a record"
        assert chunk.first_line == starts[offset]
        # records() gives back the records of the chunk with their physical lines
        assert records(chunk, quote) == chunk_records(sample, offset, chunk)
        offset += len(chunk.data)
        assert offset in ends, f"chunk {chunk.index} ends inside a record"


def copy_lines(rows: list[bytes]) -> list[tuple[int, int]]:
    """The line numbers PostgreSQL's COPY gives each record of one COPY (first, last).

    COPY counts one line per record, plus each newline inside quotes; an error names the last
    line it read. Until the first record has ended it does not know the line ending yet and
    counts carriage returns inside quotes, not line feeds (as PostgreSQL's line reader does).
    """
    out, counter, eol = [], 0, b""
    for row in rows:
        ending = CRLF if row.endswith(CRLF) else LF if row.endswith(LF) else b""
        inside = row[: len(row) - len(ending)]
        first = counter + 1
        counter = first + inside.count(b"\n" if eol == LF else b"\r")
        out.append((first, counter))
        eol = eol or ending
    return out


def check_record_line(sample: Sample, found: list[Chunk], quote: bytes = b'"') -> None:
    """Each COPY line number of each chunk maps to the physical line its record starts on."""
    offset = 0
    for chunk in found:
        expected = chunk_records(sample, offset, chunk)
        offset += len(chunk.data)
        spans = copy_lines([r.data for r in expected])
        for record, (first, last) in zip(expected, spans, strict=True):
            for copy_line in range(first, last + 1):
                assert record_line(chunk, copy_line, quote) == record.line, (
                    chunk.data,
                    copy_line,
                )
        assert record_line(chunk, 0, quote) == chunk.first_line
        assert record_line(chunk, spans[-1][1] + 1, quote) == expected[-1].line


@pytest.mark.parametrize("seed", range(60))
def test_random_splits_regroup_into_whole_records(seed: int) -> None:
    rng = random.Random(seed)
    sample = make_sample(rng, header=seed % 2 == 1, eol=CRLF if seed % 3 == 0 else LF)
    for _ in range(8):
        pieces = split(rng, sample.data)
        size = rng.choice([1, 2, 7, 30, 100, 500, len(sample.data) + 1])
        found = list(chunks(iter(pieces), size=size, header=bool(sample.header)))
        check_chunks(sample, found)


@pytest.mark.parametrize("seed", range(60))
def test_line_numbers_from_a_counting_stream_are_the_same(seed: int) -> None:
    """Chunks of a stream whose line breaks a guard counted take their lines from that count;
    they are the same as counted afresh."""
    rng = random.Random(3000 + seed)
    sample = make_sample(rng, header=seed % 2 == 1, eol=CRLF if seed % 3 == 0 else LF)
    for _ in range(8):
        pieces = split(rng, sample.data)
        size = rng.choice([1, 2, 7, 30, 100, 500, len(sample.data) + 1])
        guard = LineGuard(pieces, limit=1 << 20)
        header = bool(sample.header)

        def counted(g: LineGuard = guard) -> int:
            return g.lines

        found = list(chunks(guard, size=size, header=header, line_breaks=counted))
        check_chunks(sample, found)
        assert [c.breaks for c in found] == [c.data.count(b"\n") for c in found]
        assert found == list(chunks(iter(pieces), size=size, header=header))


@pytest.mark.parametrize("eol", [LF, CRLF], ids=["lf", "crlf"])
def test_record_line_maps_copy_line_numbers_to_physical_lines(eol: bytes) -> None:
    for seed in range(40):
        rng = random.Random(2000 + seed)
        quote = b"'" if seed % 2 else b'"'
        sample = make_sample(rng, header=seed % 4 == 0, quote=quote, eol=eol)
        for _ in range(4):
            size = rng.choice([1, 50, 400, len(sample.data) + 1])
            found = list(
                chunks(
                    iter(split(rng, sample.data)),
                    size=size,
                    quote=quote,
                    header=bool(sample.header),
                )
            )
            check_record_line(sample, found, quote)


@pytest.mark.parametrize("seed", range(20))
def test_random_splits_with_another_quote_character(seed: int) -> None:
    rng = random.Random(1000 + seed)
    sample = make_sample(rng, header=seed % 2 == 0, quote=b"'")
    # the double quote is an ordinary character when the quote is '
    sample = Sample(sample.header, [b'"' + row if row else row for row in sample.rows])
    for _ in range(5):
        pieces = split(rng, sample.data)
        size = rng.choice([1, 13, 200])
        found = list(chunks(iter(pieces), size=size, quote=b"'", header=bool(sample.header)))
        check_chunks(sample, found, quote=b"'")


def test_a_newline_inside_quotes_never_ends_a_chunk() -> None:
    data = b'1,"first\nsecond"\n2,x\n'
    pieces = [b'1,"first\n', b'second"\n2', b",x\n"]  # a piece ends inside the quoted field

    found = list(chunks(iter(pieces), size=1))

    assert [(c.first_line, c.data) for c in found] == [(1, b'1,"first\nsecond"\n'), (3, b"2,x\n")]
    assert b"".join(c.data for c in found) == data


def test_doubled_quotes_keep_the_field_open_across_a_newline() -> None:
    # '"a ""' + newline: the field is still open (three quotes so far); it closes on line 2.
    data = b'"a ""\nb"" c",1\n"""",2\n'

    # one byte at a time: every newline is a candidate boundary as soon as it arrives
    found = list(chunks((data[i : i + 1] for i in range(len(data))), size=1))

    assert [(c.first_line, c.data) for c in found] == [(1, b'"a ""\nb"" c",1\n'), (3, b'"""",2\n')]


def test_a_record_longer_than_the_chunk_size_stays_whole() -> None:
    long = b"1," + b'"' + b"x\n" * 1000 + b'"\n'
    data = long + b"2,y\n"

    found = list(chunks((data[i : i + 3] for i in range(0, len(data), 3)), size=10))

    assert [c.data for c in found] == [long, b"2,y\n"]
    assert [c.first_line for c in found] == [1, 1002]


def test_chunks_are_about_the_requested_size() -> None:
    rows = [f"{i},{'v' * (i % 17)}\n".encode() for i in range(2000)]
    data = b"".join(rows)

    found = list(chunks(iter([data[i : i + 100] for i in range(0, len(data), 100)]), size=1000))

    assert len(found) > 10
    assert all(len(c.data) <= 1000 + 100 for c in found)
    assert all(len(c.data) >= 1000 - 30 for c in found[:-1])
    assert [c.first_line for c in found] == [
        1 + sum(prev.newlines for prev in found[:i]) for i in range(len(found))
    ]


def test_the_header_is_dropped_and_counted_as_line_one() -> None:
    data = b"id,name\n1,a\n2,b\n"

    found = list(chunks(iter([b"id,na", b"me\n1,a\n", b"2,b\n"]), size=4, header=True))

    assert b"".join(c.data for c in found) == b"1,a\n2,b\n"
    assert found[0].first_line == 2
    assert data.startswith(b"id,name\n")


def test_a_header_spanning_two_physical_lines_moves_the_first_line() -> None:
    # A quoted column name holding a newline: the header takes lines 1 and 2.
    data = b'"a\nb",c\n1,2\n3,4\n'
    for size in (1, 5, 1000):
        found = list(chunks(iter([data]), size=size, header=True))
        assert b"".join(c.data for c in found) == b"1,2\n3,4\n"
        assert found[0].first_line == 3, f"size {size}"


@pytest.mark.parametrize("seed", range(30))
def test_without_header_passes_on_everything_after_the_first_record(seed: int) -> None:
    rng = random.Random(3000 + seed)
    sample = make_sample(rng, header=True, eol=CRLF if seed % 3 == 0 else LF)
    for _ in range(5):
        pieces = split(rng, sample.data)
        out = list(without_header(iter(pieces)))
        assert b"".join(out) == sample.body


def test_without_header_keeps_a_quoted_newline_in_the_header() -> None:
    pieces = [b'id,"na', b'\nme"\n1,', b"a\n", b"2,b\n"]
    assert list(without_header(iter(pieces))) == [b"1,", b"a\n", b"2,b\n"]
    assert list(without_header(iter([b"id,name"]))) == []
    assert list(without_header(iter([b"id,'x\ny'\n1,2\n"]), quote=b"'")) == [b"1,2\n"]


def test_empty_input_and_header_only_give_no_chunks() -> None:
    assert list(chunks(iter([]), size=10)) == []
    assert list(chunks(iter([b"", b""]), size=1)) == []
    assert list(chunks(iter([b"id,name\n"]), size=1, header=True)) == []
    assert list(chunks(iter([b"id,name"]), size=100, header=True)) == []


def test_last_record_without_newline_is_kept() -> None:
    found = list(chunks(iter([b"1,a\n2,", b'"b\nc"']), size=1))

    assert [(c.first_line, c.data) for c in found] == [(1, b"1,a\n"), (2, b'2,"b\nc"')]
    assert records(found[1]) == [Record(2, b'2,"b\nc"')]


def test_records_and_record_line_map_copy_lines_to_physical_lines() -> None:
    chunk = Chunk(index=3, data=b'1,x\n2,"a\nb\nc"\n3,"q ""\n"""\n4,y\n', first_line=41)

    assert records(chunk) == [
        Record(41, b"1,x\n"),
        Record(42, b'2,"a\nb\nc"\n'),
        Record(45, b'3,"q ""\n"""\n'),
        Record(47, b"4,y\n"),
    ]
    # COPY numbers these records' lines 1, 2-4, 5-6 and 7 (newlines inside quotes count once
    # the first record has ended); an error names any line of its record.
    assert [record_line(chunk, n) for n in range(1, 8)] == [41, 42, 42, 42, 45, 45, 47]
    # before the first line, and past the end (an unterminated field): stay within the chunk
    assert record_line(chunk, 0) == 41
    assert record_line(chunk, 99) == 47


def test_record_line_when_the_first_record_holds_newlines() -> None:
    # COPY does not count the newlines inside the first record: it does not know the line
    # ending yet. The bad record 'x,b' is COPY's line 2 (PostgreSQL: "COPY t, line 2").
    chunk = Chunk(index=0, data=b'1,"a\nb"\nx,b\n3,c\n', first_line=1)

    assert record_line(chunk, 2) == 3
    assert record_line(chunk, 3) == 4


def test_record_line_in_a_crlf_file_whose_first_record_holds_newlines() -> None:
    # With the line ending still unknown COPY counts carriage returns inside quotes, so in a
    # CRLF file the first record's inner newlines do count: 'x,b' is COPY's line 3
    # (PostgreSQL: "COPY t, line 3"), and it starts on physical line 3.
    chunk = Chunk(index=0, data=b'1,"a\r\nb"\r\nx,b\r\n3,c\r\n', first_line=1)

    assert record_line(chunk, 3) == 3
    assert record_line(chunk, 4) == 4


def test_record_line_without_quotes_is_a_plain_offset() -> None:
    chunk = Chunk(index=0, data=b"1,a\n2,b\n3,c\n", first_line=10)

    assert [record_line(chunk, n) for n in (1, 2, 3)] == [10, 11, 12]
    assert records(chunk) == [Record(10, b"1,a\n"), Record(11, b"2,b\n"), Record(12, b"3,c\n")]


def test_records_of_broken_quoting_end_with_the_unterminated_rest() -> None:
    chunk = Chunk(index=0, data=b'1,a\n2,"open\n3,b\n', first_line=5)

    assert records(chunk) == [Record(5, b"1,a\n"), Record(6, b'2,"open\n3,b\n')]
    assert record_line(chunk, 2) == 6


# -- hostile streams: lines past the limit, headers without an end, byte order marks ----------


def first_past(data: bytes, limit: int) -> int | None:
    """The first line of `data` longer than `limit` bytes (without its line break), if any."""
    lengths = [len(line) for line in data.split(b"\n")]
    return next((n for n, length in enumerate(lengths, 1) if length > limit), None)


class Counted:
    """A stream that counts the bytes taken from it."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = pieces
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.taken += len(piece)
            yield piece


def guarded(pieces: Iterable[bytes], limit: int) -> LineGuard:
    return LineGuard(pieces, limit=limit, obj="file:///bucket/part-1.csv")


def too_long(limit: int) -> str:
    return (
        f"line longer than {limit:,} bytes (the load's max_line_bytes): the object has no line "
        "break where one was due, or is not CSV; raise [load] max_line_mb if rows this long "
        "are real"
    )


@pytest.mark.parametrize("seed", range(200))
def test_the_line_guard_refuses_exactly_the_lines_past_its_limit(seed: int) -> None:
    rng = random.Random(seed)
    lines = [b"x" * rng.choice([0, 1, 5, 30, 99, 100, 101, 250]) for _ in range(rng.randint(1, 30))]
    data = b"\n".join(lines) + rng.choice([b"", b"\n"])
    limit = rng.choice([1, 7, 50, 100, 120, 400])
    line = first_past(data, limit)
    guard = guarded(split(rng, data), limit)

    if line is None:
        assert b"".join(guard) == data
        assert guard.lines == data.count(b"\n")
    else:
        with pytest.raises(BadInputError) as caught:
            list(guard)
        error = caught.value
        assert (error.obj, error.line, error.reason) == (
            "file:///bucket/part-1.csv",
            line,
            too_long(limit),
        )


def test_a_piece_larger_than_the_limit_is_searched_line_by_line() -> None:
    # one piece of many short lines and one too long in the middle: a reverse search per piece
    # would only see the short lines at its end
    data = b"ab\n" * 1000 + b"y" * 11 + b"\n" + b"cd\n" * 1000

    assert b"".join(guarded([data], 11)) == data
    with pytest.raises(BadInputError) as caught:
        list(guarded([data], 10))
    assert caught.value.line == 1001


def test_the_line_guard_stops_an_endless_line_after_the_limit() -> None:
    endless = Counted(itertools.repeat(b"x" * 4096))

    with pytest.raises(BadInputError) as caught:
        list(guarded(endless, 1 << 20))

    assert caught.value.line == 1
    assert endless.taken <= (1 << 20) + 4096


def test_chunks_of_a_guarded_stream_never_hold_a_line_past_the_limit() -> None:
    """The staged path: cutting chunks buffers a record until its end; an endless line fails
    after the limit instead of filling the memory."""
    head = b"".join(b"%d,a\n" % i for i in range(1000))  # 1000 lines, then one without end
    endless = Counted(itertools.chain([head], itertools.repeat(b"x" * 1000)))
    found: list[Chunk] = []

    with pytest.raises(BadInputError) as caught:
        found.extend(chunks(guarded(endless, 100_000), size=4096))

    assert caught.value.line == 1001
    assert endless.taken <= len(head) + 100_000 + 1000
    assert b"".join(c.data for c in found) == head[: len(b"".join(c.data for c in found))]


def test_a_long_record_is_searched_once_not_once_per_piece() -> None:
    # A quoted field of 20,000 lines in pieces of 4 bytes. Searching the whole buffer for a
    # record end at every piece takes about half a minute here; searching each byte once, a
    # few milliseconds.
    data = b'1,"' + b"x\n" * 20_000 + b'"\n2,y\n'
    pieces = [data[i : i + 4] for i in range(0, len(data), 4)]

    started = time.perf_counter()
    found = list(chunks(iter(pieces), size=16))
    seconds = time.perf_counter() - started

    assert [c.data for c in found] == [data[:-4], b"2,y\n"]
    assert [c.first_line for c in found] == [1, 20_002]
    assert seconds < 2.0


def test_a_header_without_an_end_is_bad_input_not_a_whole_read() -> None:
    # a quote that never closes in the header: every physical line is short
    stream = Counted(itertools.chain([b'id,"name\n'], itertools.repeat(b"x,y\n", 10_000)))

    with pytest.raises(BadInputError) as caught:
        split_header(stream, max_record=1000)

    error = caught.value
    assert (error.line, error.reason) == (
        1,
        "the header record has no end within its first 1,000 bytes (a quoted field that never "
        "closes?)",
    )
    assert stream.taken <= 1004
    with pytest.raises(BadInputError):
        list(chunks(iter([b'"h\n'] + [b"1\n"] * 600), size=10, header=True, max_record=1000))


def test_a_utf8_byte_order_mark_at_the_start_is_removed() -> None:
    bom = b"\xef\xbb\xbf"

    assert b"".join(without_bom([bom + b"1,a\n", b"2,b\n"])) == b"1,a\n2,b\n"
    assert b"".join(without_bom([b"\xef", b"", b"\xbb", b"\xbf1", b",a\n"])) == b"1,a\n"
    assert b"".join(without_bom([bom])) == b""
    # only at the very start: elsewhere it is data (COPY shows it, escaped, if it is refused)
    assert b"".join(without_bom([b"1,a\n" + bom + b"2,b\n"])) == b"1,a\n" + bom + b"2,b\n"
    assert b"".join(without_bom([b"\xef\xbb"])) == b"\xef\xbb"
    assert b"".join(without_bom([])) == b""


def test_a_utf16_byte_order_mark_is_named() -> None:
    text = "id,name\n1,a\n".encode("utf-16")

    with pytest.raises(BadInputError) as caught:
        list(without_bom([text]))

    assert caught.value.line == 1
    assert caught.value.reason.startswith("the object starts with a UTF-16 byte order mark")
