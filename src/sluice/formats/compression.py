"""Decompression of object streams, piece by piece, in bounded memory.

A compressed object is untrusted input: a few megabytes of gzip can expand to gigabytes (a
"gzip bomb"). The inflater is therefore never asked for all the output of an input piece at
once; it is fed small slices and drained at most `PIECE_BYTES` at a time, so memory stays
bounded whatever the ratio. What the bytes expand *to* (an endless line) is the line guard's
business (`sluice.formats.streams.LineGuard`).

Every malformed stream is bad input naming the object: an empty object, a truncated or
corrupt member, a bad CRC or length, and bytes after the last member. Zero bytes after the last
member are accepted as padding (some tape and block-oriented tools write them; gzip itself
ignores them); anything else after it is an error, because it would be data silently dropped.
"""

from __future__ import annotations

import zlib
from collections.abc import Generator, Iterable, Iterator

from sluice.formats.streams import BadStream

#: Most decompressed bytes handed on at once.
PIECE_BYTES = 1 << 20
#: Compressed bytes given to the inflater at once. Each call that stops at `PIECE_BYTES` of
#: output copies the input it did not consume (zlib's ``unconsumed_tail``): small slices keep
#: that copy small however large the pieces the store reads.
FEED_BYTES = 128 << 10

_MAGIC = b"\x1f\x8b"
#: zlib's words for a broken stream, in the file's terms.
_ZLIB_WORDS = {
    "incorrect header check": "not gzip data (no gzip header)",
    "unknown compression method": "not gzip data (unknown compression method)",
    "incorrect data check": "the CRC-32 recorded in the member does not match its data",
    "incorrect length check": "the length recorded in the member does not match its data",
}


def gunzip(
    chunks: Iterable[bytes],
    name: str,
    *,
    piece_bytes: int = PIECE_BYTES,
    count_lines: bool = True,
) -> Iterator[bytes]:
    """Decompress a gzip stream (one member or several back to back) into pieces of at most
    `piece_bytes`; a malformed stream raises `BadStream` naming `name`, and, inside the data,
    the line reached. A caller whose stream counts its lines anyway (a `LineGuard`, which
    also fills in that line) passes ``count_lines=False`` to spare a pass over the output."""
    reader = _Members(name, piece_bytes)
    lines = 0
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), FEED_BYTES):
                for piece in reader.feed(view[start : start + FEED_BYTES]):
                    if count_lines:
                        lines += piece.count(b"\n")
                    yield piece
        reader.end()
    except BadStream as exc:
        raise exc.at(line=lines + 1 if count_lines and exc.in_data else None) from exc


class _Members:
    """The state of a gzip stream read so far: inside a member, or between members."""

    def __init__(self, name: str, piece_bytes: int) -> None:
        self.name = name
        self.piece_bytes = piece_bytes
        # The first member may also be a zlib stream (wbits 32 + 15: either header).
        self.inflater: zlib._Decompress | None = zlib.decompressobj(wbits=47)
        self.member = 1
        #: Compressed bytes consumed so far (the offset of the next one).
        self.offset = 0
        self.fed = 0
        #: The first byte of what may be a next member, until its second byte arrives.
        self.between = b""
        self.padding = False

    def feed(self, data: memoryview | bytes) -> Iterator[bytes]:
        self.fed += len(data)
        while data:
            if self.inflater is None:
                data = self._next_member(bytes(data))
            else:
                data = yield from self._inflate(data)

    def _inflate(self, data: memoryview | bytes) -> Generator[bytes, None, memoryview | bytes]:
        """Yield the output of `data`; return what is left of it after the member's end."""
        inflater = self.inflater
        assert inflater is not None
        while True:
            try:
                out = inflater.decompress(data, self.piece_bytes)
            except zlib.error as exc:
                raise self._corrupt(exc) from exc
            if out:
                yield out
            if inflater.eof:
                rest = inflater.unused_data
                self.offset += len(data) - len(rest)
                self.inflater = None
                return rest
            tail = inflater.unconsumed_tail
            self.offset += len(data) - len(tail)
            data = tail
            # Output stopped at the limit may still be held by the inflater: ask again.
            if not data and len(out) < self.piece_bytes:
                return b""

    def _next_member(self, data: bytes) -> bytes:
        """After a member: start the next one, or accept padding; return the member's bytes."""
        data, self.between = self.between + data, b""
        if self.padding or data.startswith(b"\0"):
            zeros = len(data) - len(data.lstrip(b"\0"))
            self.padding = True
            self.offset += zeros
            if zeros < len(data):
                raise self._trailing("after the zero padding that follows it")
            return b""
        if data.startswith(_MAGIC):
            self.member += 1
            self.inflater = zlib.decompressobj(wbits=31)
            return data
        if data == _MAGIC[:1]:
            self.between = data
            return b""
        raise self._trailing("not a gzip member")

    def end(self) -> None:
        if self.between:
            raise self._trailing("not a gzip member")
        if self.inflater is None:
            return
        if self.fed == 0:
            raise BadStream("the object is empty: 0 bytes are not a gzip stream", obj=self.name)
        raise BadStream(
            f"gzip stream is truncated: it ends after {self.fed:,} compressed bytes, inside "
            f"member {self.member} (before its end-of-stream marker)",
            obj=self.name,
        )

    def _corrupt(self, exc: zlib.error) -> BadStream:
        detail = str(exc).rpartition(": ")[2]
        if self.member == 1 and self.offset == 0 and detail == "incorrect header check":
            return BadStream(
                "corrupt gzip data: the object does not start with a gzip header (not gzip at "
                "all?)",
                obj=self.name,
            )
        words = _ZLIB_WORDS.get(detail, f"corrupt deflate data ({detail})")
        return BadStream(
            f"corrupt gzip data in member {self.member}, in compressed bytes "
            f"{self.offset:,} to {self.fed:,}: {words}",
            obj=self.name,
        )

    def _trailing(self, what: str) -> BadStream:
        return BadStream(
            f"trailing data after the end of the gzip stream at compressed byte "
            f"{self.offset:,}: {what}",
            obj=self.name,
            in_data=False,
        )
