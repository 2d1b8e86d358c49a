"""The fine grids of near-border cells: a bounded ring of slots and a pool of refined
sub-cells, filled on use."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .cells import _COLS, _MICROS, _NEAR, _NONE, _SUBS, MICRO, BoolArray, FloatArray, IntArray
from .classify import _FALSE, _FINE_EXACT, _FINE_NONE, _POOL, _REACH, _UNSURE, _classify

if TYPE_CHECKING:
    from .data import _Regions

#: Slots for fine grids (each about 1.2 kB: at most 20 MB).
FINE_CELLS = 16_384
#: Entries for refined sub-cells (each about 56 bytes: at most 3.6 MB).
FINE_POOL = 65_000
#: A near cell gets its fine grid once this many points have fallen in it (about a millisecond
#: to make, the cost of some hundreds of exact tests: a cell seen once or twice stays exact).
FINE_AFTER = 8


class _Fine:
    """The fine grids of near-border cells, made on use, in a ring of slots: a slot's
    region values per sub-cell (uint16: a code index, _FINE_NONE, _FINE_EXACT, or _POOL + k
    for a sub-cell refined into `_MICROS` × `_MICROS` micro-cells, entry k of the pool), its
    in_region states (2 bits per code of `codes`), and the codes that come within `BUFFER` of
    the cell (-1 pads; `more`: there are more). The pool is a ring too: an entry taken back
    returns its sub-cell to the value it had before. Both rings give a second chance to what
    was used since the last round (`used`, `pool_used`: the clock policy), so busy cells stay.
    A cell is filled once `after` points have fallen in it while it had no slot (`seen`, up to
    255)."""

    def __init__(
        self,
        near_cells: int,
        slots: int = FINE_CELLS,
        pool: int = FINE_POOL,
        after: int = FINE_AFTER,
    ) -> None:
        cells = _SUBS * _SUBS
        assert pool <= np.iinfo(np.uint16).max + 1 - _POOL
        # np.zeros: pages are only resident once written
        self.region = np.zeros((slots, cells), dtype=np.uint16)
        self.state = np.zeros((slots, cells), dtype=np.uint8)
        self.codes = np.full((slots, _REACH), -1, dtype=np.int16)
        self.more = np.zeros(slots, dtype=np.bool_)
        self.holder = np.full(slots, -1, dtype=np.int64)  # the near cell in each slot
        self.used = np.zeros(slots, dtype=np.bool_)
        self.slot_of = np.full(near_cells, -1, dtype=np.int32)
        self.seen = np.zeros(near_cells, dtype=np.uint8)
        self.after = min(max(after, 1), 255)
        self.next = 0
        micros = _MICROS * _MICROS
        self.pool_region = np.zeros((pool, micros), dtype=np.uint8)
        self.pool_state = np.zeros((pool, micros), dtype=np.uint8)
        self.pool_slot = np.full(pool, -1, dtype=np.int32)
        self.pool_sub = np.zeros(pool, dtype=np.int16)
        self.pool_before = np.zeros(pool, dtype=np.uint16)
        self.pool_used = np.zeros(pool, dtype=np.bool_)
        self.pool_next = 0
        self.lock = threading.Lock()

    def regions(
        self,
        data: _Regions,
        rows: IntArray,
        cols: IntArray,
        grid: npt.NDArray[np.int16],
        lat: FloatArray,
        lon: FloatArray,
    ) -> IntArray:
        """Code indexes, _NONE, or _NEAR (take the exact test), for points in near cells (at
        `rows`, `cols`, whose `grid` values these are)."""
        cell, sub, micro = _sub_cells(data, rows, cols, grid, lat, lon)
        with self.lock:
            slot = self._slots(data, cell)
            value = self.region[slot, sub].astype(np.int64)
            pooled, entry = self._pooled(value)
            value[pooled] = self.pool_region[entry, micro[pooled]]
        value[value == _FINE_NONE] = _NONE
        value[(value == _FINE_EXACT) | (slot < 0)] = _NEAR
        return value

    def states(
        self,
        data: _Regions,
        rows: IntArray,
        cols: IntArray,
        grid: npt.NDArray[np.int16],
        lat: FloatArray,
        lon: FloatArray,
        wanted: IntArray,
    ) -> npt.NDArray[np.uint8]:
        """_TRUE, _FALSE or _UNSURE: whether points in near cells are within `BUFFER` of the
        region `wanted`."""
        cell, sub, micro = _sub_cells(data, rows, cols, grid, lat, lon)
        with self.lock:
            slot = self._slots(data, cell)
            codes = self.codes[slot]
            state = self.state[slot, sub]
            more = self.more[slot]
            pooled, entry = self._pooled(self.region[slot, sub])
            state[pooled] = self.pool_state[entry, micro[pooled]]
        hit = codes == wanted[:, None]
        known = hit.any(axis=1)
        shift = (2 * hit.argmax(axis=1)).astype(np.uint8)
        result = np.where(known, (state >> shift) & 3, np.where(more, _UNSURE, _FALSE))
        result[slot < 0] = _UNSURE
        return result.astype(np.uint8)

    def _pooled(self, value: npt.NDArray[Any]) -> tuple[IntArray, IntArray]:
        """Which of the sub-cells' `value`s point into the pool, and their pool entries,
        marked used (the pool's clock spares them). The caller holds the lock."""
        pooled = np.flatnonzero(value >= _POOL)
        entry = value[pooled].astype(np.int64) - _POOL
        self.pool_used[entry] = True
        return pooled, entry

    def _slots(self, data: _Regions, cell: IntArray) -> IntArray:
        """The slot of each near cell, or -1 (the exact test): missing cells seen `after` times
        are filled, at most a ring's worth (a cell whose slot a later one took in the same call
        gets -1 too)."""
        slot = self.slot_of[cell]
        missing = cell[slot < 0]
        if missing.size:
            cells, count = np.unique(missing, return_counts=True)
            seen = np.minimum(self.seen[cells] + count, 255)
            self.seen[cells] = seen
            ready = cells[seen >= self.after]
            for one in ready[: self.holder.size]:
                self._fill(data, int(one))
            if ready.size:
                slot = self.slot_of[cell]
        self.used[slot[slot >= 0]] = True
        return slot.astype(np.int64)

    def _fill(self, data: _Regions, cell: int) -> None:
        slot = _clock(self.used, self.next)
        self.next = (slot + 1) % self.holder.size
        if self.holder[slot] >= 0:
            self.slot_of[self.holder[slot]] = -1
            self.seen[self.holder[slot]] = 0  # to be seen `after` times again
        row, col = divmod(int(data.near[cell]), _COLS)
        found = _classify(data, row, col)
        self.region[slot], self.state[slot] = found.region, found.state
        self.codes[slot], self.more[slot] = found.codes, found.more
        for sub, region, state in zip(
            found.refined, found.micro_region, found.micro_state, strict=True
        ):
            self._pool(slot, int(sub), region, state)
        self.holder[slot] = cell
        self.slot_of[cell] = slot

    def _pool(
        self, slot: int, sub: int, region: npt.NDArray[np.uint8], state: npt.NDArray[np.uint8]
    ) -> None:
        k = _clock(self.pool_used, self.pool_next)
        self.pool_next = (k + 1) % self.pool_slot.size
        old = int(self.pool_slot[k])
        if old >= 0 and self.region[old, self.pool_sub[k]] == _POOL + k:
            self.region[old, self.pool_sub[k]] = self.pool_before[k]
        self.pool_region[k], self.pool_state[k] = region, state
        self.pool_slot[k], self.pool_sub[k] = slot, sub
        self.pool_before[k] = self.region[slot, sub]
        self.region[slot, sub] = _POOL + k


def _clock(used: BoolArray, start: int) -> int:
    """The first entry from `start` on (round the ring) not used since the hand last passed
    it; the hand clears the used ones it passes (all of them, at worst, then takes `start`)."""
    free = np.flatnonzero(~used[start:])
    if free.size:
        at = start + int(free[0])
        used[start:at] = False
        return at
    used[start:] = False
    free = np.flatnonzero(~used[:start])
    at = int(free[0]) if free.size else start
    used[:at] = False
    return at


def _sub_cells(
    data: _Regions,
    rows: IntArray,
    cols: IntArray,
    grid: npt.NDArray[np.int16],
    lat: FloatArray,
    lon: FloatArray,
) -> tuple[IntArray, IntArray, IntArray]:
    """The near-cell number, the sub-cell (row-major in the cell) and the micro-cell (row-major
    in the sub-cell) of points in near cells."""
    cell = data.row_near[rows] + (_NEAR - grid.astype(np.int64))
    y, x = (lat + 90) / MICRO, (lon + 180) / MICRO
    micro_row = np.clip(y.astype(np.int64) - rows * (_SUBS * _MICROS), 0, _SUBS * _MICROS - 1)
    micro_col = np.clip(x.astype(np.int64) - cols * (_SUBS * _MICROS), 0, _SUBS * _MICROS - 1)
    sub_row, in_row = np.divmod(micro_row, _MICROS)
    sub_col, in_col = np.divmod(micro_col, _MICROS)
    return cell, sub_row * _SUBS + sub_col, in_row * _MICROS + in_col
