"""The grid's geometry: cell sizes, the buffer, and the cell of a position."""

from __future__ import annotations

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
_ROWS, _COLS = round(180 / CELL), round(360 / CELL)
_SUBS, _MICROS = round(CELL / SUB), round(SUB / MICRO)
assert BUFFER <= CELL and abs(_SUBS * SUB - CELL) < 1e-12 and abs(_MICROS * MICRO - SUB) < 1e-12
_NONE, _NEAR = -1, -2
#: Half diagonals are widened by this much, and distances compared with it to spare (degrees):
#: a point's cell, computed in floating point, may put it a rounding error outside the cell,
#: and distances differ from shapely's by rounding errors.
_EPS = 1e-9

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


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
