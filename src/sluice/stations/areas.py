"""Cell areas (ichnaea/data/area.py): per (radio, mcc, mnc, lac), the unweighted centre of its
positioned cells, the union of their boxes, and their counts. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sluice.stations import geo


@dataclass(frozen=True)
class AreaCell:
    lat: float
    lon: float
    max_lat: float | None
    min_lat: float | None
    max_lon: float | None
    min_lon: float | None
    radius: int | None
    region: str | None
    last_seen: date | None


@dataclass(frozen=True)
class Area:
    lat: float
    lon: float
    box: geo.Box
    radius: int
    region: str | None
    avg_cell_radius: int
    num_cells: int
    last_seen: date | None


def area_of(cells: Sequence[AreaCell]) -> Area | None:
    """The area of its positioned `cells`; None when there are none (the area goes)."""
    if not cells:
        return None
    lat, lon = geo.centre([(c.lat, c.lon) for c in cells], [1.0] * len(cells))
    ranges = [
        (
            c.lat if c.min_lat is None else c.min_lat,
            c.lat if c.max_lat is None else c.max_lat,
            c.lon if c.min_lon is None else c.min_lon,
            c.lon if c.max_lon is None else c.max_lon,
        )
        for c in cells
    ]
    box = geo.box_around(ranges, lon)
    seen = [c.last_seen for c in cells if c.last_seen is not None]
    return Area(
        lat=lat,
        lon=lon,
        box=box,
        radius=geo.circle_radius(lat, lon, box),
        region=majority_region(cells),
        avg_cell_radius=round(sum(c.radius or 0 for c in cells) / len(cells)),
        num_cells=len(cells),
        last_seen=max(seen) if seen else None,
    )


def majority_region(cells: Sequence[AreaCell]) -> str | None:
    """The most frequent region of the cells; a tie goes to the alphabetically first (the
    seed breaks ties by a region lookup at the centre, which needs region data sluice does
    not have)."""
    counts = Counter(c.region for c in cells if c.region)
    if not counts:
        return None
    best = max(counts.values())
    return min(r for r, n in counts.items() if n == best)
