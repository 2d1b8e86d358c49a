"""The coarse grid: one answer per cell away from borders, the near cells marked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .cells import _COLS, _NEAR, _ROWS, CELL, _cells, _wrap
from .exact import _containing

if TYPE_CHECKING:
    from .data import _Regions


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
