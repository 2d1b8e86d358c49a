"""COPY text format: every escape PostgreSQL writes, unescaped exactly."""

from __future__ import annotations

from sluice.formats import pgcopy


def test_unescape_every_escape() -> None:
    assert pgcopy.unescape(b"\\N") is None
    assert pgcopy.unescape(b"plain") == b"plain"
    assert pgcopy.unescape(b"a\\\\b") == b"a\\b"
    assert pgcopy.unescape(b"a\\tb\\nc\\rd") == b"a\tb\nc\rd"
    assert pgcopy.unescape(b"\\b\\f\\v") == b"\b\f\v"
    assert pgcopy.unescape(b"\\101\\0\\12") == b"A\x00\n"
    assert pgcopy.unescape(b"\\x41\\x4") == b"A\x04"
    assert pgcopy.unescape(b"\\303\\274").decode() == "ü"  # octal bytes of one character
    assert pgcopy.unescape(b"\\q") == b"q"  # any other character stands for itself
    assert pgcopy.unescape(b"\\\\N") == b"\\N"  # an escaped backslash, not NULL


def test_escape_round_trip() -> None:
    text = 'tab\there, line\nbreak, back\\slash, "quote", ünï'
    assert pgcopy.unescape(pgcopy.escape(text).encode()) == text.encode()


def test_rows_and_lines() -> None:
    chunks = [b"a\t\\N\nb\\tc", b"\td\n\\.\n", b"ignored\n"]
    lines = list(pgcopy.lines(chunks))
    assert lines == [b"a\t\\N", b"b\\tc\td", b"\\.", b"ignored"]
    assert list(pgcopy.rows(lines)) == [[b"a", None], [b"b\tc", b"d"]]
