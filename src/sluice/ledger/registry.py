"""The feeds one flow works in this process, by id: registered here, or adopted from their
ledger row when a unit of a feed another process registered comes along (a worker)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sluice.errors import ConfigError
from sluice.ledger.records import FeedRow
from sluice.ledger.repository import Ledger


class _Named(Protocol):
    @property
    def feed_id(self) -> int: ...

    @property
    def name(self) -> str: ...


F = TypeVar("F", bound=_Named)


@dataclass(frozen=True)
class Scan:
    """What one scan of a feed found: its units, and those it recorded now."""

    feed: str
    matched: int
    new: int


class FeedRegistry(Generic[F]):
    """A flow's feeds by id, adopted from the ledger on first use."""

    def __init__(
        self, adopt: Callable[[FeedRow], F], *, kind: str | None = None, what: str = ""
    ) -> None:
        #: Builds a feed from its row (a flow's own reading of its options).
        self._adopt = adopt
        #: With a kind, `adopt` refuses rows of other kinds: ``feed 'x' is a 'sync' feed, not
        #: <what>``.
        self._kind = kind
        self._what = what
        self._feeds: dict[int, F] = {}
        self._lock = threading.Lock()

    def adopt(self, row: FeedRow) -> F:
        """The feed of a ledger row, built by the flow after its kind is checked, and kept."""
        if self._kind is not None and row.kind != self._kind:
            raise ConfigError(f"feed {row.name!r} is a {row.kind!r} feed, not {self._what}")
        return self.keep(self._adopt(row))

    def keep(self, feed: F) -> F:
        with self._lock:
            self._feeds[feed.feed_id] = feed
        return feed

    def get(self, ledger: Ledger, feed_id: int) -> F:
        """The feed `feed_id`, as registered here or, failing that, as the ledger has it."""
        with self._lock:
            known = self._feeds.get(feed_id)
        if known is not None:
            return known
        rows = ledger.feeds(ids=[feed_id])
        if not rows:
            raise ConfigError(f"feed {feed_id} is not registered")
        return self.adopt(rows[0])

    def name_of(self, feed_id: int) -> str:
        with self._lock:
            feed = self._feeds.get(feed_id)
        return feed.name if feed else f"feed {feed_id}"
