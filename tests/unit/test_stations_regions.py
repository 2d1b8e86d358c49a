"""Region lookup (sluice.stations.regions) on the Natural Earth countries: capitals, small
states, points at sea, near borders and coasts, the antimeridian; the grid path agrees with the
exact polygon test everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from sluice.stations import regions
from sluice.stations.regions import in_region, region_of, regions_of

CAPITALS = [
    (52.5200, 13.4050, "DE"),  # Berlin
    (48.8566, 2.3522, "FR"),  # Paris
    (35.6762, 139.6503, "JP"),  # Tokyo
    (38.9072, -77.0369, "US"),  # Washington
    (-35.2809, 149.1300, "AU"),  # Canberra
    (-15.7900, -47.8800, "BR"),  # Brasília
    (-1.2921, 36.8219, "KE"),  # Nairobi
    (55.7558, 37.6173, "RU"),  # Moscow
    (28.6139, 77.2090, "IN"),  # Delhi
    (45.4215, -75.6972, "CA"),  # Ottawa
    (-41.2865, 174.7762, "NZ"),  # Wellington
    (64.1466, -21.9426, "IS"),  # Reykjavík
    (-33.9249, 18.4241, "ZA"),  # Cape Town
    (4.8594, 31.5713, "SS"),  # Juba: South Sudan has its own polygon
    (42.6629, 21.1655, "XK"),  # Pristina: Kosovo as GENC names it
    (1.3521, 103.8198, "SG"),  # Singapore
    (43.7384, 7.4246, "MC"),  # Monaco
    (41.9029, 12.4534, "VA"),  # the Vatican
    (49.6116, 6.1319, "LU"),  # Luxembourg
    (22.3193, 114.1694, "HK"),  # Hong Kong
]

AT_SEA = [
    (30.0, -40.0),  # mid-Atlantic
    (0.0, -140.0),  # Pacific
    (-30.0, 80.0),  # Indian Ocean
    (56.0, 3.0),  # North Sea
    (35.0, 18.0),  # Ionian Sea
    (0.0, 180.0),  # the antimeridian at the equator
    (89.9, 0.0),  # the North Pole is ice on water
]

NEAR_BORDERS = [
    (48.5734, 7.7521, "FR"),  # Strasbourg, 4 km west of the Rhine
    (48.5722, 7.8153, "DE"),  # Kehl, across the river
    (47.5596, 7.5886, "CH"),  # Basel
    (47.5935, 7.6205, "DE"),  # Weil am Rhein, 3 km north of Basel
    (46.2044, 6.1432, "CH"),  # Geneva
    (46.1934, 6.2342, "FR"),  # Annemasse
    (32.5149, -117.0382, "MX"),  # Tijuana
    (32.7157, -117.1611, "US"),  # San Diego
    (-29.3167, 27.4833, "LS"),  # Maseru: Lesotho, a hole in South Africa
    (-29.6000, 27.0000, "ZA"),  # just west of Lesotho
]

ANTIMERIDIAN = [
    (65.5, 179.5, "RU"),  # Chukotka, west of 180°
    (66.0, -175.0, "RU"),  # Chukotka, east of 180°
    (-16.8, -179.95, "FJ"),  # Taveuni, across 180°
    (-16.8, 180.05, "FJ"),  # the same place, longitude past 180
    (-18.1248, 178.4501, "FJ"),  # Suva
    (1.87, -157.4, "KI"),  # Kiritimati
]


@pytest.mark.parametrize(("lat", "lon", "code"), CAPITALS + NEAR_BORDERS + ANTIMERIDIAN)
def test_points_in_countries(lat: float, lon: float, code: str) -> None:
    assert region_of(lat, lon) == code


@pytest.mark.parametrize(("lat", "lon"), AT_SEA)
def test_points_at_sea_have_no_region(lat: float, lon: float) -> None:
    assert region_of(lat, lon) is None


def test_a_point_just_off_the_coast_takes_the_nearest_country() -> None:
    # 2 km out in the Bay of Biscay from Biarritz: within the buffer, as the seed's buffered
    # regions; 100 km out it is at sea.
    assert region_of(43.48, -1.58) == "FR"
    assert region_of(44.5, -3.0) is None


def test_not_a_position() -> None:
    assert regions_of([float("nan"), 0.0, 91.0], [0.0, float("inf"), 0.0]) == [None, None, None]


def test_vectorised_equals_one_by_one() -> None:
    points = CAPITALS + NEAR_BORDERS + ANTIMERIDIAN + [(lat, lon, None) for lat, lon in AT_SEA]
    lat = np.array([p[0] for p in points])
    lon = np.array([p[1] for p in points])
    assert regions_of(lat, lon) == [p[2] for p in points]
    assert regions_of(lat[:0], lon[:0]) == []
    with pytest.raises(ValueError):
        regions_of(lat, lon[:-1])


def test_the_grid_agrees_with_the_exact_test() -> None:
    """Random points over the globe and dense ones around borders: a cell answered by the grid
    gives what the polygons give."""
    rng = np.random.default_rng(7)
    lat = np.concatenate(
        [np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000))), rng.uniform(35, 60, 20_000)]
    )
    lon = np.concatenate([rng.uniform(-180, 180, 20_000), rng.uniform(-10, 30, 20_000)])
    data = regions._data()
    exact = regions._exact(data, lat, lon)
    expected = [data.codes[i] if i >= 0 else None for i in exact]
    assert regions_of(lat, lon) == expected
    assert sum(code is not None for code in expected) > 10_000


def test_in_region_is_buffered() -> None:
    assert in_region(52.52, 13.405, "DE")
    assert in_region(43.48, -1.58, "FR")  # off the coast, within the buffer
    assert not in_region(48.8566, 2.3522, "DE")
    assert not in_region(44.5, -3.0, "FR")
    assert not in_region(52.52, 13.405, "ZZ")
    assert not in_region(float("nan"), 0.0, "DE")


def test_codes_are_two_letters() -> None:
    codes = regions.codes()
    assert len(codes) > 200
    assert all(len(c) == 2 and c.isupper() for c in codes)
    assert {"DE", "XK", "SS", "VA"} <= set(codes)
