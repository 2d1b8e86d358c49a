"""A registered table of the routing stage, as its flow works it."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.recipes.cubic.options import TableDeclaration


@dataclass(frozen=True)
class RouteTable:
    """A table registered on the ledger: its feed and its declaration."""

    feed_id: int
    declaration: TableDeclaration
    active: bool = True

    @property
    def name(self) -> str:
        return self.declaration.name
