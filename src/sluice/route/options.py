"""The routing stage's own options and the recipe interface it is driven through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sluice.recipes.cubic.options import TableDeclaration

#: The kind of the routing stage's feeds in ``sluice.feeds`` and of its units.
KIND = "cubic"


@dataclass(frozen=True)
class RouteOptions:
    """Where files arrive (`incoming`), go (`archive`, `error`) and are written (`lake`):
    store URLs with prefixes."""

    incoming: str
    archive: str
    error: str
    lake: str
    endpoint_url: str = ""
    region: str = "us-east-1"
    #: New loads one scan of a table records at most; the next scan resumes after them.
    listing_cap: int = 500
    #: Attempts of a move before it waits `defer_seconds` and starts counting again.
    max_attempts: int = 5
    defer_seconds: float = 300.0
    #: Loads per batch, and bytes per batch (an oversized single load is a batch of its own).
    batch_loads: int = 10
    batch_bytes: int = 100_000_000
    #: How often a table's Incoming prefixes are scanned.
    schedule: str = "30s"


class Layout(Protocol):
    """A recipe's names and key layouts, as the routing stage asks for them."""

    def lake_table(self, table: TableDeclaration, key: str) -> str: ...

    def archive_key(self, table: TableDeclaration, key: str, snapshot: datetime | None) -> str: ...

    def error_key(self, table: TableDeclaration, key: str, modified: datetime | None) -> str: ...

    def prefixes(self, table: TableDeclaration) -> list[str]: ...

    def is_change(self, key: str) -> bool: ...
