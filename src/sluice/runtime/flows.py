"""What a flow gives the runtime: how its feeds are scanned into units, the steps that work
those units, and what runs once a feed's units are done.

The PostgreSQL load flow (`sluice.load.flow.PostgresFlow`) is the first; Incoming routing,
exports and submission queues plug in the same way, each with its own feed kind and lanes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from sluice.ledger.records import FeedRow
from sluice.ledger.repository import Ledger
from sluice.ledger.steps import Step


class Source(Protocol):
    """A registered feed as its flow works it."""

    @property
    def feed_id(self) -> int: ...

    @property
    def active(self) -> bool: ...


class ScanResult(Protocol):
    @property
    def matched(self) -> int: ...

    @property
    def new(self) -> int: ...


class Flow(Protocol):
    """One kind of feed and the work it makes."""

    @property
    def kind(self) -> str:
        """The feeds of this flow in ``sluice.feeds`` have this kind."""
        ...

    @property
    def steps(self) -> Sequence[Step]:
        """The steps working the units of this flow's feeds."""
        ...

    def register(self, ledger: Ledger, declared: Any) -> Source:
        """Record a declared feed on the ledger (creating what it needs first)."""
        ...

    def adopt(self, row: FeedRow) -> Source:
        """A feed registered on the ledger (by this process or another)."""
        ...

    def source(self, ledger: Ledger, feed_id: int) -> Source:
        """The feed `feed_id`, adopted from the ledger if this process does not know it."""
        ...

    def scan(self, ledger: Ledger, source: Any) -> ScanResult:
        """Record the feed's units not seen before."""
        ...

    def sweep(self, ledger: Ledger) -> None:
        """Clean up after workers that died (leftover staging tables, say)."""
        ...

    def needs_after(self, ledger: Ledger, sources: Sequence[Any]) -> list[Any]:
        """The sources whose post-load hooks have something to do (a stale serving view)."""
        ...

    def drained(self, ledger: Ledger, sources: Sequence[Any]) -> list[Any]:
        """The sources with no unit waiting or in hand."""
        ...

    def after(self, ledger: Ledger, sources: Sequence[Any]) -> list[dict[str, Any]]:
        """Post-load hooks for sources whose units are done (serving-view refreshes);
        one report per hook run."""
        ...


#: A feed declared in the project file and the flow that registers it.
Declared = tuple[Flow, Any]


class Consumer(Protocol):
    """Long-running work that is not ledger units: a loop over an acknowledged queue of its
    own (the Ichnaea fan-out reads Redis Streams), which keeps its own crash safety. ``sluice
    run`` and ``sluice worker`` run each in a thread of their process until they stop."""

    @property
    def name(self) -> str: ...

    def run(self, stop: threading.Event, *, once: bool) -> object:
        """Work until `stop` is set; with `once`, until nothing is left to do now."""
        ...

    def status(self) -> dict[str, Any] | None:
        """Figures for ``sluice status`` (None: nothing to show); raises SluiceError when
        its queue cannot be read."""
        ...
