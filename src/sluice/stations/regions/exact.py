"""The exact test: the polygons, through their R-tree, and distances to them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .cells import _NONE, BUFFER, BoolArray, FloatArray, IntArray

if TYPE_CHECKING:
    from .data import _Regions


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
