"""Decompressing gzip objects in bounded memory, and every malformed gzip stream as bad input.

However the compressed bytes are split and however far they expand, the output comes in pieces
of at most `PIECE_BYTES`; an empty object, a truncated or corrupt member and bytes after the
last member are `BadInputError`s naming the object (never a `zlib.error`). Zero bytes after the
last member are padding, accepted.
"""

from __future__ import annotations

import gzip
import random
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from sluice.errors import BadInputError
from sluice.formats.compression import PIECE_BYTES, gunzip

NAME = "s3://bucket/part-1.csv.gz"


def body(rows: int) -> bytes:
    return b"".join(b"%d,name %d,%d\n" % (i, i, i % 97) for i in range(rows))


def split(data: bytes, rng: random.Random) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 2, 7, 100, 4096, 70_000, 1 << 20])
        yield data[pos : pos + step]
        pos += step


def inflate(blob: bytes, rng: random.Random | None = None) -> bytes:
    pieces = split(blob, rng) if rng is not None else iter([blob])
    return b"".join(gunzip(pieces, NAME))


def failure(blob: bytes) -> BadInputError:
    with pytest.raises(BadInputError) as caught:
        inflate(blob)
    assert caught.value.obj == NAME
    return caught.value


def bomb(size: int, fill: bytes = b"x") -> bytes:
    """`size` bytes of `fill` compressed as tightly as gzip can (about 1000 to 1)."""
    packer = zlib.compressobj(9, wbits=31)
    block = fill * (1 << 20)
    out = [packer.compress(block) for _ in range(size >> 20)]
    return b"".join(out) + packer.flush()


@pytest.mark.parametrize("seed", range(20))
def test_any_split_of_one_or_several_members_gives_the_data_back(seed: int) -> None:
    rng = random.Random(seed)
    parts = [body(rng.randint(0, 3000)) for _ in range(rng.randint(1, 4))]
    blob = b"".join(gzip.compress(p, mtime=0) for p in parts)

    assert inflate(blob, rng) == b"".join(parts)


def test_a_bomb_comes_out_in_bounded_pieces_in_bounded_memory() -> None:
    blob = bomb(128 << 20)  # 128 MiB from about 130 KB, handed over in one piece
    assert len(blob) < 200_000

    tracemalloc.start()
    try:
        sizes = [len(piece) for piece in gunzip(iter([blob]), NAME)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sum(sizes) == 128 << 20
    assert max(sizes) <= PIECE_BYTES
    assert peak < 4 * PIECE_BYTES + 2 * len(blob)


def test_output_pieces_respect_a_smaller_limit() -> None:
    data = body(20_000)
    pieces = list(gunzip(iter([gzip.compress(data)]), NAME, piece_bytes=1000))

    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= 1000


def test_zero_padding_after_the_last_member_is_accepted() -> None:
    data = body(500)
    blob = gzip.compress(data) + b"\0" * 5000

    assert inflate(blob) == data
    assert inflate(blob, random.Random(3)) == data


def test_trailing_garbage_names_its_offset() -> None:
    packed = gzip.compress(body(500))

    error = failure(packed + b"PK\x03\x04 a zip file appended")

    assert error.reason == (
        f"trailing data after the end of the gzip stream at compressed byte {len(packed):,}: "
        "not a gzip member"
    )
    assert error.line is None  # after the data: no line of it is at fault


def test_garbage_after_zero_padding_is_not_padding() -> None:
    packed = gzip.compress(body(10))

    error = failure(packed + b"\0\0\0junk")

    assert error.reason == (
        f"trailing data after the end of the gzip stream at compressed byte "
        f"{len(packed) + 3:,}: after the zero padding that follows it"
    )


def test_a_lone_first_byte_of_a_member_is_trailing_data() -> None:
    packed = gzip.compress(body(10))

    error = failure(packed + b"\x1f")

    assert error.reason.startswith(
        f"trailing data after the end of the gzip stream at compressed byte {len(packed):,}"
    )


def test_an_empty_object_is_not_a_gzip_stream() -> None:
    assert failure(b"").reason == "the object is empty: 0 bytes are not a gzip stream"


@pytest.mark.parametrize("cut", [1, 2, 3, 9])
def test_a_truncated_header_is_a_truncated_stream(cut: int) -> None:
    error = failure(gzip.compress(body(10))[:cut])

    assert error.reason == (
        f"gzip stream is truncated: it ends after {cut:,} compressed bytes, inside member 1 "
        "(before its end-of-stream marker)"
    )


def test_a_truncated_second_member_names_it() -> None:
    first = gzip.compress(body(10))

    error = failure(first + gzip.compress(body(10))[:12])

    assert error.reason == (
        f"gzip stream is truncated: it ends after {len(first) + 12:,} compressed bytes, inside "
        "member 2 (before its end-of-stream marker)"
    )
    assert error.line == 11  # the line reached: the ten rows of the first member arrived whole


def test_a_bad_crc_is_corrupt_data() -> None:
    packed = bytearray(gzip.compress(body(200)))
    packed[-8] ^= 0xFF  # the CRC-32 of the trailer

    error = failure(bytes(packed))

    assert error.reason == (
        f"corrupt gzip data in member 1, in compressed bytes 0 to {len(packed):,}: the CRC-32 "
        "recorded in the member does not match its data"
    )


def test_a_bad_length_is_corrupt_data() -> None:
    packed = bytearray(gzip.compress(body(200)))
    packed[-1] ^= 0x01  # the length (mod 2**32) of the trailer

    assert failure(bytes(packed)).reason.endswith(
        "the length recorded in the member does not match its data"
    )


def test_corrupt_deflate_data_is_bad_input() -> None:
    packed = bytearray(gzip.compress(random.Random(1).randbytes(50_000)))
    for pos in range(20, 200):
        packed[pos] ^= 0x5A

    assert failure(bytes(packed)).reason.startswith("corrupt gzip data in member 1")


def test_plain_text_named_gz_is_not_gzip_data() -> None:
    error = failure(body(10))

    assert (
        error.reason
        == "corrupt gzip data: the object does not start with a gzip header (not gzip at all?)"
    )
