"""PostgreSQL's COPY text format (what ``COPY ... TO STDOUT`` and pg_dump write), exactly.

A row is one line; fields are separated by tabs; ``\\N`` alone is NULL; a backslash starts an
escape: ``\\b \\f \\n \\r \\t \\v \\\\``, one to three octal digits, ``\\x`` and one or two hex
digits; a backslash before any other character stands for that character. Bytes are decoded
as UTF-8 after unescaping (an octal escape may be one byte of a multi-byte character).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

NULL = b"\\N"
#: The line that ends the data of a table in a dump.
END = b"\\."

_SIMPLE = {
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("v"): b"\v",
}
_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.DOTALL)


def _one(match: re.Match[bytes]) -> bytes:
    octal, hexa, other = match.groups()
    if octal is not None:
        return bytes((int(octal, 8) & 0xFF,))
    if hexa is not None:
        return bytes((int(hexa, 16),))
    return _SIMPLE.get(other[0], other)


def unescape(field: bytes) -> bytes | None:
    """One field's bytes as they were stored (None for NULL)."""
    if field == NULL:
        return None
    if b"\\" not in field:
        return field
    return _ESCAPE.sub(_one, field)


def escape(text: str) -> str:
    """`text` written as one COPY text field (the generator's and the tests' way in)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def rows(lines: Iterable[bytes]) -> Iterator[list[bytes | None]]:
    """The rows of COPY text `lines` (without their line breaks), each a list of unescaped
    fields, up to the end marker ``\\.`` if there is one."""
    for line in lines:
        if line == END:
            return
        yield [unescape(field) for field in line.split(b"\t")]


def lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a byte stream cut at ``\\n`` (a line break inside a value is escaped, so
    every ``\\n`` byte ends a row); a last line without a break is kept."""
    rest = b""
    for chunk in chunks:
        if not chunk:
            continue
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest
