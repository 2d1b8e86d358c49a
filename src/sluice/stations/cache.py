"""The rows a station updater read and wrote, kept in memory between its batches.

Each shard has one updater at a time, so the rows it wrote last are, nearly always, the rows
its next batch would read again. Every cached row carries the version its table had once the
row was current (migration 0015: a table's version is the id of the last transaction that
wrote it). A row is used only while its table still has that version: any other writer —
another updater, the expiry, an operator's SQL — moves the version, and the rows of that
table are read from the database again.

A batch stores its rows before its commit, still holding its shards' locks: the next batch of
those shards, in whichever thread of the process, finds them. A batch that then rolls back
leaves its tables at a version other than its transaction id, the version it stored with its
rows, and a transaction id never comes again: the cache trusts none of those tables' rows.

It also remembers the datamap cells its batches marked today: marking one again would change
nothing (a cell's `modified` is a day), so a batch sends only the others.

The cache holds at most `capacity` stations; when a batch would pass that, it starts again
empty: memory stays bounded, and the cost is one full read per batch for a while.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date

import numpy as np
import numpy.typing as npt

from sluice.stations.columns import StationColumns

#: Stations kept per kind by default: about 40 MB for wifi's keys, rows and index.
DEFAULT_CAPACITY = 250_000
#: Datamap cells remembered as marked today, at most (about 60 MB).
MAX_MARKED = 500_000


@dataclass
class Staged:
    """Rows of one kind to store once their batch commits: station ``i`` has key
    ``keys[i]``, lives in ``tables[tags[i]]`` and is ``rows`` row ``i``; the batch wrote the
    tables `written`, which have its transaction id `txid` as their version now."""

    kind: str
    keys: Sequence[str]
    tables: Sequence[str]
    tags: npt.NDArray[np.int16]
    rows: StationColumns
    written: frozenset[str]
    txid: int


class StationCache:
    """Rows per kind, by key. The rows of a table are valid together: the cache knows the
    version its rows of each table are current at, and drops them all (by moving the table to
    a new epoch) as soon as the table has another version."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._kinds: dict[str, _KindCache] = {}
        # Updaters of one process may share the cache (threads of a worker).
        self._lock = threading.Lock()
        self._marked_day: date | None = None
        self._marked: set[bytes] = set()

    def lookup(
        self,
        kind: str,
        keys: Sequence[str],
        tables: Sequence[str],
        tags: npt.NDArray[np.int16],
        versions: Mapping[str, int],
    ) -> tuple[StationColumns, npt.NDArray[np.bool_]]:
        """The rows of `keys` (numbered as `Staged` numbers them) the cache holds for their
        table's current version (`versions`, read under the batch's locks), and which of them
        it had: the others must be read."""
        with self._lock:
            cache = self._kinds.setdefault(kind, _KindCache())
            epochs = [cache.epoch(t, versions.get(t, -1)) for t in tables]
            return cache.lookup(keys, np.array(epochs, dtype=np.int64)[tags])

    def store(self, staged: Staged) -> None:
        with self._lock:
            self._store(staged)

    def _store(self, staged: Staged) -> None:
        cache = self._kinds.get(staged.kind)
        if cache is None or len(cache.index) + len(staged.keys) > self.capacity:
            cache = self._kinds[staged.kind] = _KindCache()
        for table in staged.written:
            # The batch wrote exactly the rows it stores: every other row of the table it
            # holds is still current.
            cache.versions[table] = staged.txid
        epochs = np.array([cache.epochs.get(t, -1) for t in staged.tables], dtype=np.int64)
        cache.store(staged.keys, staged.rows, epochs[staged.tags])

    def clear(self) -> None:
        with self._lock:
            self._kinds.clear()
            self._marked.clear()

    def unmarked(self, today: date, grids: Iterable[bytes]) -> list[bytes]:
        """The datamap cells of `grids` no committed batch of this cache marked on `today`."""
        with self._lock:
            if self._marked_day != today:
                self._marked_day, self._marked = today, set()
            return sorted(set(grids) - self._marked)

    def marked(self, today: date, grids: Iterable[bytes]) -> None:
        """`grids` are marked on `today` (their batch committed)."""
        with self._lock:
            if self._marked_day == today:
                if len(self._marked) >= MAX_MARKED:
                    self._marked.clear()
                self._marked.update(grids)


class _KindCache:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.rows = StationColumns.empty(0)
        self.slot_epoch = np.zeros(0, dtype=np.int64)
        #: Per table: the version its rows are current at, and their epoch.
        self.versions: dict[str, int] = {}
        self.epochs: dict[str, int] = {}
        self._next_epoch = 0

    def epoch(self, table: str, version: int) -> int:
        """The epoch of `table`'s valid rows, a new one (none valid) when its version moved."""
        if self.versions.get(table) != version or table not in self.epochs:
            self.versions[table] = version
            self._next_epoch += 1
            self.epochs[table] = self._next_epoch
        return self.epochs[table]

    def lookup(
        self, keys: Sequence[str], epochs: npt.NDArray[np.int64]
    ) -> tuple[StationColumns, npt.NDArray[np.bool_]]:
        found = StationColumns.empty(len(keys))
        if not self.index:
            return found, np.zeros(len(keys), dtype=bool)
        slots = np.fromiter((self.index.get(k, -1) for k in keys), np.intp, len(keys))
        hit = (slots >= 0) & (self.slot_epoch[np.maximum(slots, 0)] == epochs)
        where = np.flatnonzero(hit)
        found.put(where, self.rows.take(slots[where]))
        return found, hit

    def store(
        self, keys: Sequence[str], rows: StationColumns, epochs: npt.NDArray[np.int64]
    ) -> None:
        slots = np.empty(len(keys), dtype=np.intp)
        size = len(self.index)
        for i, key in enumerate(keys):
            slot = self.index.get(key)
            if slot is None:
                slot = self.index[key] = size
                size += 1
            slots[i] = slot
        if size > len(self.slot_epoch):
            self._grow(max(size, 2 * len(self.slot_epoch), 1024))
        self.rows.put(slots, rows)
        self.slot_epoch[slots] = epochs

    def _grow(self, capacity: int) -> None:
        grown = StationColumns.empty(capacity)
        used = len(self.slot_epoch)
        for f in fields(grown):
            getattr(grown, f.name)[:used] = getattr(self.rows, f.name)
        self.rows = grown
        epoch = np.full(capacity, -1, dtype=np.int64)
        epoch[:used] = self.slot_epoch
        self.slot_epoch = epoch
