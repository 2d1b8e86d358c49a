"""Positions on the sphere: distances, weighted centres and boxes that stay right across the
antimeridian.

The seed averages degrees, which puts the centre of two points at 179.9°E and 179.9°W on the
meridian of Greenwich, and takes the box of such points as the whole globe. Here a centre is the
weighted mean of unit vectors, and a box's longitudes are measured around its centre: a box whose
``min_lon`` is greater than its ``max_lon`` crosses the antimeridian.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Mean radius of the earth in metres (the seed's haversine fallback uses the same sphere).
EARTH_RADIUS = 6_371_000.0


def distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(a)))


def wrap(lon: float) -> float:
    """`lon` brought into [-180, 180)."""
    return (lon + 180.0) % 360.0 - 180.0


def centre(points: Sequence[tuple[float, float]], weights: Sequence[float]) -> tuple[float, float]:
    """The weighted mean of `points` (lat, lon) as unit vectors, back in degrees.

    Antipodal points with equal weights have no mean; the first point stands in for it."""
    x = y = z = 0.0
    for (lat, lon), w in zip(points, weights, strict=True):
        p, lam = math.radians(lat), math.radians(lon)
        x += w * math.cos(p) * math.cos(lam)
        y += w * math.cos(p) * math.sin(lam)
        z += w * math.sin(p)
    h = math.hypot(x, y)
    if h < 1e-15 and abs(z) < 1e-15:
        return points[0]
    lat = math.degrees(math.atan2(z, h))
    lon = math.degrees(math.atan2(y, x)) if h >= 1e-15 else points[0][1]
    return lat, _clean(wrap(lon))


def _clean(lon: float) -> float:
    # atan2 gives -180 and 180 for the same meridian; keep the value the points used.
    return 180.0 if lon == -180.0 else lon


@dataclass(frozen=True)
class Box:
    """Latitude range and longitude arc; ``min_lon > max_lon`` when it crosses 180°."""

    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def corners(self) -> tuple[tuple[float, float], ...]:
        return (
            (self.min_lat, self.min_lon),
            (self.min_lat, self.max_lon),
            (self.max_lat, self.min_lon),
            (self.max_lat, self.max_lon),
        )

    def diagonal(self) -> float:
        """Metres between the min and the max corner: the seed's consistency measure."""
        return distance(self.min_lat, self.min_lon, self.max_lat, self.max_lon)


def box_around(lat_lon_ranges: Iterable[tuple[float, float, float, float]], ref_lon: float) -> Box:
    """The box holding every (min_lat, max_lat, min_lon, max_lon) range, its longitudes taken
    as offsets from `ref_lon` (a point's own centre), so that an arc never goes the long way
    round the globe."""
    lo_lat = hi_lat = lo = hi = math.nan
    for min_lat, max_lat, min_lon, max_lon in lat_lon_ranges:
        west = wrap(min_lon - ref_lon)
        east = west + ((max_lon - min_lon) % 360.0)
        lo_lat = min_lat if math.isnan(lo_lat) else min(lo_lat, min_lat)
        hi_lat = max_lat if math.isnan(hi_lat) else max(hi_lat, max_lat)
        lo = west if math.isnan(lo) else min(lo, west)
        hi = east if math.isnan(hi) else max(hi, east)
    return Box(lo_lat, hi_lat, _clean(wrap(ref_lon + lo)), _clean(wrap(ref_lon + hi)))


def circle_radius(lat: float, lon: float, box: Box) -> int:
    """The rounded largest distance in metres from (lat, lon) to the box's corners.

    `distance` to each corner, with the terms the corners share computed once: the same
    operations in the same order, so the same bits."""
    p1 = math.radians(lat)
    cos_p1 = math.cos(p1)
    best = -1.0
    for c_lat in (box.min_lat, box.max_lat):
        p2 = math.radians(c_lat)
        sin_dp = math.sin((p2 - p1) / 2) ** 2
        cos_both = cos_p1 * math.cos(p2)
        for c_lon in (box.min_lon, box.max_lon):
            a = sin_dp + cos_both * math.sin(math.radians(c_lon - lon) / 2) ** 2
            d = 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(a)))
            if d > best:
                best = d
    return round(best)


# -- the same, over arrays (numpy): the station algorithm's batch form ---------------------------

Floats = npt.NDArray[np.float64]


def distances(lat1: Floats, lon1: Floats, lat2: Floats, lon2: Floats) -> Floats:
    """`distance` of each pair of points."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2 - lon1)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: Floats = 2 * EARTH_RADIUS * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return out


def wraps(lon: Floats) -> Floats:
    out: Floats = np.mod(lon + 180.0, 360.0) - 180.0
    return out


def cleans(lon: Floats) -> Floats:
    out: Floats = np.where(lon == -180.0, 180.0, lon)
    return out


def vectors(lat: Floats, lon: Floats, weight: Floats) -> tuple[Floats, Floats, Floats]:
    """Each point as a unit vector times its weight, the terms `centre` sums."""
    p, lam = np.radians(lat), np.radians(lon)
    cos_p = np.cos(p)
    return weight * cos_p * np.cos(lam), weight * cos_p * np.sin(lam), weight * np.sin(p)


def centres(
    x: Floats, y: Floats, z: Floats, first_lat: Floats, first_lon: Floats
) -> tuple[Floats, Floats]:
    """`centre` of summed vectors (x, y, z); the group's first point where they cancel."""
    h = np.hypot(x, y)
    flat = h < 1e-15
    none = flat & (np.abs(z) < 1e-15)
    lat = np.degrees(np.arctan2(z, h))
    lon = cleans(wraps(np.where(flat, first_lon, np.degrees(np.arctan2(y, x)))))
    return np.where(none, first_lat, lat), np.where(none, first_lon, lon)


def circle_radii(
    lat: Floats, lon: Floats, min_lat: Floats, max_lat: Floats, min_lon: Floats, max_lon: Floats
) -> npt.NDArray[np.int64]:
    """`circle_radius` of each centre and box."""
    p1 = np.radians(lat)
    cos_p1 = np.cos(p1)
    best = np.full(len(lat), -1.0)
    for c_lat in (min_lat, max_lat):
        p2 = np.radians(c_lat)
        sin_dp = np.sin((p2 - p1) / 2) ** 2
        cos_both = cos_p1 * np.cos(p2)
        for c_lon in (min_lon, max_lon):
            a = sin_dp + cos_both * np.sin(np.radians(c_lon - lon) / 2) ** 2
            best = np.maximum(best, 2 * EARTH_RADIUS * np.arcsin(np.minimum(1.0, np.sqrt(a))))
    out: npt.NDArray[np.int64] = np.rint(best).astype(np.int64)
    return out
