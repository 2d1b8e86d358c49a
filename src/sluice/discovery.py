"""Finding the objects of a feed: one listing, an anchored pattern, no clock.

The listing is narrowed to the folder of the pattern's literal prefix (listings match whole path
segments), then every key is matched in memory against the feed's pattern, which must match the
whole key below the source prefix; the rejects objects sluice itself writes beside its
sources never match. Nothing is skipped by modification time: an object is new
when its version (etag, or size and modified time) has not been seen before.
"""

from __future__ import annotations

import re

from sluice.patterns import compile_pattern
from sluice.store import ObjectInfo, Store

_META = set(".^$*+?{}[]()|")
#: Objects sluice writes beside the sources it reads (rejected rows) are never sources.
_OWN_OUTPUT = re.compile(r".*\.rejects-\d+\.csv")
_ESCAPED_LITERAL = set(".^$*+?{}[]()|\\/-_")


def literal_prefix(pattern: str) -> str:
    """The text every match of `pattern` starts with (conservatively; may be shorter)."""
    if "|" in pattern:
        return ""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt and nxt in _ESCAPED_LITERAL:
                literal, width = nxt, 2
            else:
                break  # \d, \w, ...: a class, not a literal
        elif ch in _META:
            break
        else:
            literal, width = ch, 1
        following = pattern[i + width : i + width + 1]
        if following and following in "?*{":
            break  # the character may be absent or repeated
        out.append(literal)
        i += width
        if following == "+":
            break
    return "".join(out)


def list_matching(store: Store, prefix: str, pattern: str) -> list[ObjectInfo]:
    """Objects below `prefix` whose remaining key fully matches `pattern`, sorted by key."""
    regex = compile_pattern(pattern)
    base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    wanted = base + literal_prefix(pattern)
    folder = wanted[: wanted.rfind("/") + 1]
    found = [
        info
        for info in store.list(folder.rstrip("/"))
        if info.key.startswith(wanted)
        and regex.fullmatch(info.key[len(base) :])
        and not _OWN_OUTPUT.fullmatch(info.key)
    ]
    return sorted(found, key=lambda info: info.key)
