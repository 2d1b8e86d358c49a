"""Named SQL queries kept in ``.sql`` files.

A file holds blocks headed by ``-- name: <query_name>``; the lines up to the next header are the
query. Queries take parameters by name (``%(table_id)s``) and never have values pasted in.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import LiteralString

_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, LiteralString]:
    """Split `text` into ``{name: query}``; the text before the first header is ignored."""
    parts = _HEADER.split(text)
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


@cache
def load(package: str, resource: str) -> dict[str, LiteralString]:
    """The named queries of a ``.sql`` file shipped inside `package`."""
    return parse(files(package).joinpath(resource).read_text(encoding="utf-8"))
