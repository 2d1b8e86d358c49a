"""Reading a request body within bounds, and turning it into a JSON document.

A body is untrusted: it is read up to `BodyLimits.max_bytes` (a larger ``Content-Length`` is
refused before anything is read), inflated piece by piece when it says ``Content-Encoding:
gzip`` with at most `BodyLimits.max_inflated` bytes out (a gzip bomb is refused, never
expanded), decoded by the charset its ``Content-Type`` names (UTF-8 by default) and parsed as
JSON. Every failure is a `ParseError` (400) or `TooLarge` (413).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from sluice.formats.compression import gunzip
from sluice.formats.streams import BadStream
from sluice.intake.errors import ParseError, TooLarge

#: Inflated bytes taken from the inflater at once: the most a bomb makes us hold beyond the bound.
_PIECE = 64 << 10


@dataclass(frozen=True)
class BodyLimits:
    #: The most bytes a body may have on the wire (compressed or not).
    max_bytes: int = 1 << 20
    #: The most bytes a gzip body may inflate to.
    max_inflated: int = 16 << 20


async def read_body(
    chunks: AsyncIterator[bytes], headers: Mapping[str, str], limits: BodyLimits
) -> bytes:
    """The raw body; refused as soon as it passes `limits.max_bytes`."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise TooLarge(f"the body has {declared} bytes, more than {limits.max_bytes}")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limits.max_bytes:
            raise TooLarge(f"the body has more than {limits.max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


def document(
    raw: bytes, headers: Mapping[str, str], limits: BodyLimits, *, exact: bool = False
) -> Any:
    """The JSON document of a body read by `read_body`.

    A UTF-8 body is parsed by orjson, several times faster than the standard library. What
    orjson refuses (NaN, integers beyond 64 bits, lone surrogates, a byte-order mark,
    broken JSON) goes to the standard library's parser, which takes the first three and words
    the errors; integers beyond 64 bits that orjson takes as floats are left to the caller
    (see `sluice.intake.lenient.Imprecise`), who parses again with `exact`."""
    if not raw:
        raise ParseError("the body is empty")
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        raw = inflate(raw, limits)
    elif encoding not in ("", "identity"):
        raise ParseError(
            f"unsupported Content-Encoding {encoding[:40]!r} (gzip or none)",
            {"decode": "unsupported Content-Encoding"},
        )
    content_type = headers.get("content-type", "")
    if not exact and charset(content_type) == "utf-8":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard library's parser takes it, or says why not
    text = decode(raw, content_type)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and integers too long to convert.
        raise ParseError(f"the body is not JSON: {exc}", {"decode": str(exc)}) from exc


def inflate(raw: bytes, limits: BodyLimits) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        for piece in gunzip([raw], "the body", piece_bytes=_PIECE, count_lines=False):
            size += len(piece)
            if size > limits.max_inflated:
                raise TooLarge(f"the body inflates to more than {limits.max_inflated} bytes")
            parts.append(piece)
    except BadStream as exc:
        raise ParseError(f"the gzip body is broken: {exc.reason}", {"decode": exc.reason}) from exc
    return b"".join(parts)


def charset(content_type: str) -> str:
    """The charset a Content-Type names, UTF-8 when it names none."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"').lower()
    return "utf-8"


def decode(raw: bytes, content_type: str) -> str:
    name = charset(content_type)
    try:
        return raw.decode(name)
    except LookupError as exc:
        raise ParseError(
            f"unknown charset {name[:40]!r}", {"decode": f"unknown charset {name[:40]!r}"}
        ) from exc
    except UnicodeDecodeError as exc:
        raise ParseError(f"the body is not {name}: {exc}", {"decode": str(exc)}) from exc
