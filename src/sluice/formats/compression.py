"""Decompression of object streams, piece by piece."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from sluice.errors import BadInputError


def gunzip(chunks: Iterable[bytes], name: str) -> Iterator[bytes]:
    """Decompress a gzip stream chunk by chunk; a truncated or corrupt stream is bad input."""
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, largest window
    seen = 0
    lines = 0
    for chunk in chunks:
        seen += len(chunk)
        try:
            out = inflater.decompress(chunk)
        except zlib.error as exc:
            raise BadInputError(
                f"corrupt gzip data after {seen} compressed bytes ({exc})",
                obj=name,
                line=lines + 1,
            ) from None
        if out:
            lines += out.count(b"\n")
            yield out
        while inflater.eof and inflater.unused_data:
            # A gzip file may hold several members back to back.
            rest = inflater.unused_data
            inflater = zlib.decompressobj(wbits=47)
            out = inflater.decompress(rest)
            if out:
                lines += out.count(b"\n")
                yield out
    if not inflater.eof:
        raise BadInputError(
            f"gzip stream is truncated: it ends after {seen} compressed bytes without its "
            "end-of-stream marker",
            obj=name,
            line=lines + 1,
        )
    tail = inflater.flush()
    if tail:
        yield tail
