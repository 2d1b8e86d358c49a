"""Region lookup (sluice.stations.regions) on the Natural Earth countries: capitals, small
states, points at sea, near borders and coasts, the antimeridian; the grid path agrees with the
exact polygon test everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from sluice.stations import regions
from sluice.stations.regions import (
    _code_index,
    _in_codes,
    _region_indexes,
    in_region,
    in_regions,
    region_of,
    regions_of,
)
from sluice.stations.regions.cells import _arrays
from sluice.stations.regions.data import _data
from sluice.stations.regions.exact import _exact, _in_exact
from sluice.stations.regions.fine import _Fine

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
    data = _data()
    exact = _exact(data, lat, lon)
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


# -- the fine grid: the same answers as the exact test ------------------------------------------

#: 1° × 1° windows around borders, coasts, islands and tri-points (south-west corners).
WINDOWS = [
    (48.0, 7.0),  # the Rhine: Strasbourg, Kehl
    (47.0, 7.0),  # Basel: CH, DE, FR
    (45.7, 5.7),  # Geneva
    (32.0, -117.5),  # Tijuana, San Diego, the Pacific
    (43.0, -2.0),  # Biarritz, Hendaye: FR, ES, the Bay of Biscay
    (43.3, 7.0),  # Monaco, Menton: MC, FR, IT, the sea
    (51.0, 3.0),  # the Scheldt: BE, NL, the North Sea
    (41.5, 12.0),  # Rome and the Vatican
    (-29.8, 27.0),  # Maseru: LS in ZA
    (1.0, 103.4),  # Singapore, Johor, the Riau islands
    (35.8, -5.8),  # Gibraltar, Ceuta, Morocco
    (54.5, 9.5),  # DE, DK, two seas
]


def _sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in the windows: uniform, and piled up near the polygons' vertices there."""
    import shapely

    lat, lon = [], []
    data = _data()
    for south, west in WINDOWS:
        lat.append(rng.uniform(south, south + 1, n // 2))
        lon.append(rng.uniform(west, west + 1, n // 2))
        parts = data.tree.query(shapely.box(west, south, west + 1, south + 1))
        coords = shapely.get_coordinates(data.parts[parts])
        coords = coords[
            (coords[:, 0] > west)
            & (coords[:, 0] < west + 1)
            & (coords[:, 1] > south)
            & (coords[:, 1] < south + 1)
        ]
        pick = coords[rng.integers(0, len(coords), n // 2)]
        lat.append(pick[:, 1] + rng.normal(0, 0.02, n // 2))
        lon.append(pick[:, 0] + rng.normal(0, 0.02, n // 2))
    return np.concatenate(lat), np.concatenate(lon)


def _exact_codes(lat: np.ndarray, lon: np.ndarray) -> list[str | None]:
    data = _data()
    la, lo = _arrays(lat, lon)
    return [data.codes[i] if i >= 0 else None for i in _exact(data, la, lo)]


def test_the_fine_grid_agrees_with_the_exact_test() -> None:
    """Over 100,000 points on borders, coasts and at sea near them, and over the brief's box of
    Spain, the Bay of Biscay and France: the fast path gives what the polygons give."""
    rng = np.random.default_rng(11)
    lat, lon = _sample(rng, 8_000)
    lat = np.concatenate([lat, rng.uniform(40, 50, 20_000)])
    lon = np.concatenate([lon, rng.uniform(-3, -2, 20_000)])
    assert lat.size >= 100_000
    expected = _exact_codes(lat, lon)
    for start in range(0, lat.size, 2_000):  # in the updater's batches, cache filling as it goes
        chunk = slice(start, start + 2_000)
        assert regions_of(lat[chunk], lon[chunk]) == expected[chunk]
    assert regions_of(lat, lon) == expected  # now from the filled cache
    found = set(expected)
    assert {"FR", "ES", "DE", "CH", "MC", "LS", "SG", "GI", None} <= found


def test_the_fine_grid_is_bounded_and_takes_cells_back() -> None:
    """A cache of 3 cells and 5 refined sub-cells, for points over many cells: slots and pool
    entries are taken back over and over, and the answers stay those of the exact test."""
    rng = np.random.default_rng(12)
    lat, lon = _sample(rng, 600)
    data = _data()
    fine = _Fine(data.near.size, slots=3, pool=5, after=1)
    la, lo = _arrays(lat, lon)
    expected = _exact(data, la, lo)
    for start in range(0, lat.size, 50):
        chunk = slice(start, start + 50)
        found = _region_indexes(data, fine, la[chunk], lo[chunk])
        assert found.tolist() == expected[chunk].tolist()
    assert (fine.holder >= 0).sum() == 3
    wanted = np.asarray(expected).copy()
    wanted[::3] = _code_index(data)["FR"]
    fast = _in_codes(data, fine, la, lo, wanted)
    slow = _in_exact(data, la, lo, wanted)
    assert fast.tolist() == np.where(wanted >= 0, slow, False).tolist()


def test_in_regions_agrees_with_in_region() -> None:
    """Each point's buffered test for its own code: its region, a neighbour's (the region a
    little way off), a far one, an unknown one or none; near borders and coasts, past the
    poles and the antimeridian; through the module's cache and a fresh one that fills every
    cell at once."""
    rng = np.random.default_rng(13)
    lat, lon = _sample(rng, 2_500)
    lat = np.concatenate([lat, [-90.05, 90.05, -16.8, 65.5, float("nan"), 95.0]])
    lon = np.concatenate([lon, [10.0, 0.0, 180.05, 179.95, 0.0, 0.0]])
    own = regions_of(lat, lon)
    angle = rng.uniform(0, 2 * np.pi, lat.size)
    off = regions_of(lat + 0.12 * np.sin(angle), lon + 0.12 * np.cos(angle))
    choices = ["FR", "DE", "ES", "CH", "IT", "MC", "NL", "BE", "US", "MX", "SG", "MY", "ZZ"]
    codes: list[str | None] = []
    for i in range(lat.size):
        pick = i % 5
        far = choices[rng.integers(len(choices))]
        codes.append([own[i], off[i], off[i], far, None][pick])
    codes[-6:] = ["AQ", "AQ", "FJ", "RU", "FR", "FR"]
    expected = [
        False if c is None else in_region(a, b, c) for a, b, c in zip(lat, lon, codes, strict=True)
    ]
    for start in range(0, lat.size, 2_000):
        chunk = slice(start, start + 2_000)
        assert in_regions(lat[chunk], lon[chunk], codes[chunk]).tolist() == expected[chunk]
    data = _data()
    fine = _Fine(data.near.size, after=1)
    index = _code_index(data)
    wanted = np.array([index.get(c, -1) for c in codes])
    la, lo = _arrays(lat, lon)
    assert _in_codes(data, fine, la, lo, wanted).tolist() == expected
    assert expected[-6] is True  # Antarctica is within the buffer of a latitude past the pole
    assert lat.size // 4 < sum(expected) < lat.size * 3 // 4
    assert in_regions(lat[:0], lon[:0], []).tolist() == []
    with pytest.raises(ValueError):
        in_regions(lat[:2], lon[:2], ["FR"])
