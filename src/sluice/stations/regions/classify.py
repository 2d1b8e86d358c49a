"""The classification of a near cell's sub-cells and micro-cells, from distances to the
polygons' edges."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .cells import _EPS, _MICROS, _SUBS, BUFFER, CELL, MICRO, SUB, BoolArray, FloatArray, IntArray

if TYPE_CHECKING:
    from .data import _Regions

#: A fine grid's region values (uint8): code indexes below, then these two.
_FINE_NONE, _FINE_EXACT = 254, 255
#: A fine grid's region value for a refined sub-cell: _POOL + its entry in the pool.
_POOL = 256
#: A fine grid's in_region states, 2 bits per code, for up to `_REACH` codes per cell.
_FALSE, _TRUE, _UNSURE = 0, 1, 2
_REACH = 4
#: The polygon edges a cell's classification looks at: those within this much of the cell
#: (every distance the classification compares, up to `BUFFER` plus a sub-cell's half
#: diagonal, is below it).
_MARGIN = BUFFER + 2 * SUB


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
