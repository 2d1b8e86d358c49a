"""The station algorithm, case by case: every cell of the transition table with positions moved
by fractions of the radius (as the seed's tests do), the effects' values, caps, the blocklist
timing and the antimeridian."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.stations import geo
from sluice.stations.algorithm import (
    MAX_RADIUS,
    TABLE,
    Station,
    station_blocked,
    update_station,
)
from sluice.stations.keys import GNSS, QUERY, Kind
from sluice.stations.observations import Observation

TODAY = date(2026, 6, 1)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LAT, LON = 51.5, -0.1
METRES_PER_DEGREE = 2 * math.pi * geo.EARTH_RADIUS / 360


def north(metres: float) -> float:
    return LAT + metres / METRES_PER_DEGREE


def step(kind: Kind, fraction: float) -> float:
    """(radius + 10 m) × fraction, in metres: the seed's test moves."""
    return (MAX_RADIUS[kind] + 10) * fraction


def obs(
    kind: Kind, lat: float = LAT, lon: float = LON, source: int | None = GNSS, **kw: object
) -> Observation:
    key = "lte:262:1:4:5" if kind == "cell" else "aabbccddeeff"
    radio = "lte" if kind == "cell" else None
    return Observation(
        kind=kind, key=key, lat=lat, lon=lon, source=source, radio=radio, **kw
    ).weighed()  # type: ignore[arg-type]


def station(**kw: object) -> Station:
    base = dict(
        lat=LAT,
        lon=LON,
        max_lat=LAT,
        min_lat=LAT,
        max_lon=LON,
        min_lon=LON,
        radius=0,
        samples=1,
        source=GNSS,
        weight=1.0,
        created=NOW - timedelta(days=100),
        modified=NOW - timedelta(days=10),
        last_seen=TODAY - timedelta(days=10),
    )
    base.update(kw)
    return Station(**base)  # type: ignore[arg-type]


def run(kind: Kind, before: Station | None, observations: list[Observation]):  # type: ignore[no-untyped-def]
    return update_station(kind, before, observations, today=TODAY, now=NOW)


KINDS: list[Kind] = ["blue", "wifi", "cell"]


# -- the transition table, cell by cell ----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source", [GNSS, QUERY])
def test_none_and_consistent_is_new(kind: Kind, source: int) -> None:
    got = run(
        kind, None, [obs(kind, source=source), obs(kind, north(step(kind, 0.5)), source=source)]
    )
    assert got.effect == "new" and got.state == "none"
    after = got.station
    assert after is not None
    assert after.samples == 2 and after.source == source
    assert after.created == after.modified == NOW and after.last_seen == TODAY
    assert after.min_lat == LAT and after.max_lat == pytest.approx(north(step(kind, 0.5)))
    assert after.lat == pytest.approx((LAT + north(step(kind, 0.5))) / 2)
    assert after.block_count is None and after.block_first is None


@pytest.mark.parametrize("kind", KINDS)
def test_none_and_inconsistent_is_new_block(kind: Kind) -> None:
    got = run(kind, None, [obs(kind), obs(kind, north(step(kind, 1.0)))])
    assert got.effect == "new_block"
    assert got.station == Station(
        created=NOW, modified=NOW, block_first=TODAY, block_last=TODAY, block_count=1
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source", [GNSS, QUERY])
def test_no_position_and_consistent_is_change_from_nothing(kind: Kind, source: int) -> None:
    before = Station(
        region="GB",
        created=NOW - timedelta(days=400),
        modified=NOW - timedelta(days=50),
        block_first=date(2025, 1, 1),
        block_last=date(2025, 3, 1),
        block_count=1,
    )
    got = run(kind, before, [obs(kind, north(10), source=source)])
    assert got.effect == "change" and got.state == "no_position"
    after = got.station
    assert after is not None
    assert after.lat == pytest.approx(north(10)) and after.samples == 1
    assert after.weight == pytest.approx(obs(kind).weight)
    assert after.region == "GB" and after.block_count == 1 and after.block_first == date(2025, 1, 1)
    assert after.modified == NOW and after.last_seen == TODAY and after.source == source


@pytest.mark.parametrize("kind", KINDS)
def test_no_position_and_inconsistent_is_nothing(kind: Kind) -> None:
    before = Station(created=NOW - timedelta(days=400), block_last=date(2025, 3, 1), block_count=1)
    got = run(kind, before, [obs(kind), obs(kind, north(step(kind, 1.0)))])
    assert got.effect == "none" and got.station == before


@pytest.mark.parametrize("kind", KINDS)
def test_agree_gnss_and_gnss_is_change(kind: Kind) -> None:
    before = station(weight=3.0, samples=3)
    moved = north(step(kind, 0.5))
    got = run(kind, before, [obs(kind, moved)])
    assert got.effect == "change" and got.state == "agree_gnss"
    after = got.station
    assert after is not None
    w = obs(kind).weight
    expected = geo.centre([(moved, LON), (LAT, LON)], [w, 3.0])
    assert after.lat == pytest.approx(expected[0]) and after.lon == pytest.approx(LON)
    assert after.samples == 4 and after.weight == pytest.approx(3.0 + w)
    assert after.min_lat == LAT and after.max_lat == pytest.approx(moved)
    assert after.created == before.created and after.modified == NOW


@pytest.mark.parametrize("kind", KINDS)
def test_agree_gnss_and_query_is_confirm_touching_last_seen_only(kind: Kind) -> None:
    before = station()
    got = run(kind, before, [obs(kind, north(step(kind, 0.5)), source=QUERY)])
    assert got.effect == "confirm"
    assert got.station == replace(before, last_seen=TODAY)


def test_confirm_on_a_station_seen_today_changes_nothing() -> None:
    before = station(last_seen=TODAY)
    got = run("wifi", before, [obs("wifi", source=QUERY)])
    assert got.effect == "confirm" and got.station == before


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state_source", [GNSS, QUERY])
def test_agree_and_inconsistent_is_block(kind: Kind, state_source: int) -> None:
    before = station(source=state_source, region="GB", block_count=2, block_first=date(2025, 1, 1))
    got = run(kind, before, [obs(kind), obs(kind, north(step(kind, 1.0)))])
    assert got.effect == "block"
    assert got.station == Station(
        region="GB",
        created=before.created,
        modified=NOW,
        block_first=date(2025, 1, 1),
        block_last=TODAY,
        block_count=3,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_agree_query_and_gnss_is_replace(kind: Kind) -> None:
    before = station(source=QUERY, weight=50.0, samples=50, min_lat=LAT - 0.0001)
    moved = north(step(kind, 0.5))
    got = run(kind, before, [obs(kind, moved)])
    assert got.effect == "replace" and got.state == "agree_query"
    after = got.station
    assert after is not None
    assert after.lat == pytest.approx(moved) and after.min_lat == pytest.approx(moved)
    assert after.samples == 1 and after.weight == pytest.approx(obs(kind).weight)
    assert after.source == GNSS and after.created == before.created and after.modified == NOW


@pytest.mark.parametrize("kind", KINDS)
def test_agree_query_and_query_is_change(kind: Kind) -> None:
    got = run(kind, station(source=QUERY), [obs(kind, north(step(kind, 0.5)), source=QUERY)])
    assert got.effect == "change" and got.state == "agree_query"
    assert got.station is not None and got.station.samples == 2


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source", [GNSS, QUERY])
def test_disagree_recent_is_block(kind: Kind, source: int) -> None:
    before = station(modified=NOW - timedelta(days=364))
    far = north(step(kind, 1.5))
    got = run(kind, before, [obs(kind, far, source=source)])
    assert got.effect == "block" and got.state == "disagree"
    assert got.station is not None and got.station.lat is None and got.station.block_count == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source", [GNSS, QUERY])
def test_disagree_old_is_replace(kind: Kind, source: int) -> None:
    before = station(modified=NOW - timedelta(days=366), samples=99, weight=99.0)
    far = north(step(kind, 1.5))
    got = run(kind, before, [obs(kind, far, source=source)])
    assert got.effect == "replace" and got.state == "disagree_old"
    after = got.station
    assert after is not None
    assert after.lat == pytest.approx(far) and after.samples == 1 and after.source == source


@pytest.mark.parametrize("kind", KINDS)
def test_disagree_old_and_inconsistent_is_block(kind: Kind) -> None:
    before = station(modified=NOW - timedelta(days=366))
    got = run(kind, before, [obs(kind, north(step(kind, 1.5))), obs(kind, north(step(kind, 3)))])
    assert got.effect == "block" and got.state == "disagree_old"


def test_the_table_has_every_state_and_column() -> None:
    states = {"none", "no_position", "agree_gnss", "agree_query", "disagree", "disagree_old"}
    assert set(TABLE) == {(s, o) for s in states for o in ("gnss", "query", "inconsistent")}


def test_gnss_beats_query_within_a_batch() -> None:
    # The query observation far away is ignored: only the gnss group counts.
    got = run("blue", None, [obs("blue"), obs("blue", north(500), source=QUERY)])
    assert got.effect == "new" and got.station is not None
    assert got.station.samples == 1 and got.station.source == GNSS


@pytest.mark.parametrize("source", [None, 0, 6])
def test_fixed_fused_and_unknown_sources_count_as_gnss(source: int | None) -> None:
    got = run("wifi", station(source=QUERY), [obs("wifi", source=source)])
    assert got.effect == "replace"


# -- caps ------------------------------------------------------------------------------------------


def test_the_old_weight_is_capped_at_10000_when_blending_but_not_in_the_total() -> None:
    before = station(weight=50000.0, samples=10)
    moved = north(1000)
    got = run("wifi", before, [obs("wifi", moved)])
    assert got.station is not None
    w = obs("wifi").weight
    assert got.station.lat == pytest.approx(geo.centre([(moved, LON), (LAT, LON)], [w, 10000.0])[0])
    assert got.station.weight == pytest.approx(50000.0 + w)


def test_samples_and_weight_are_capped() -> None:
    before = station(weight=1e9 - 0.5, samples=4294967295)
    got = run("wifi", before, [obs("wifi")])
    assert got.station is not None
    assert got.station.samples == 4294967295 and got.station.weight == 1e9


def test_block_count_is_not_capped_at_255() -> None:
    before = station(block_count=255, created=NOW - timedelta(days=30 * 300))
    got = run("wifi", before, [obs("wifi", north(6000))])
    assert got.effect == "block" and got.station is not None and got.station.block_count == 256


# -- the blocklist -------------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "blocked"), [(0, True), (1, True), (2, False), (3, False)])
def test_temporary_block_lasts_two_days(days: int, blocked: bool) -> None:
    s = Station(
        block_last=TODAY - timedelta(days=days), block_count=1, created=NOW - timedelta(days=10000)
    )
    assert station_blocked(s, TODAY) is blocked


@pytest.mark.parametrize(
    ("age_days", "blocked"),
    # round(age/30) >= 1 block: 44 days → round(1.47) = 1 (blocked); 45 → round(1.5) = 2 (free).
    [(14, True), (30, True), (44, True), (45, False), (75, False)],
)
def test_a_new_block_station_stays_blocked_until_day_45(age_days: int, blocked: bool) -> None:
    s = Station(
        created=NOW - timedelta(days=age_days),
        block_first=TODAY - timedelta(days=age_days),
        block_last=TODAY - timedelta(days=age_days),
        block_count=1,
    )
    assert station_blocked(s, TODAY) is blocked


def test_the_mobile_station_rule_uses_python_rounding() -> None:
    # 12 blocks in a year stay blocked; 75 days / 30 = 2.5 rounds to 2 (halves to even), so 2
    # blocks still block; 105 / 30 = 3.5 rounds to 4, so 3 blocks do not.
    assert station_blocked(
        Station(
            created=NOW - timedelta(days=365), block_count=12, block_last=TODAY - timedelta(days=30)
        ),
        TODAY,
    )
    assert station_blocked(
        Station(
            created=NOW - timedelta(days=75), block_count=2, block_last=TODAY - timedelta(days=30)
        ),
        TODAY,
    )
    assert not station_blocked(
        Station(
            created=NOW - timedelta(days=105), block_count=3, block_last=TODAY - timedelta(days=30)
        ),
        TODAY,
    )


def test_a_station_never_blocked_is_not_blocked() -> None:
    assert not station_blocked(station(block_count=0), TODAY)
    assert not station_blocked(station(), TODAY)


def test_a_blocked_station_is_skipped() -> None:
    before = station(
        block_last=TODAY - timedelta(days=1), block_count=1, created=NOW - timedelta(days=1000)
    )
    got = run("wifi", before, [obs("wifi")])
    assert got.effect == "none" and got.station == before


def test_after_the_block_window_the_station_is_relearned() -> None:
    blocked = run("wifi", station(), [obs("wifi", north(6000))]).station
    assert blocked is not None and blocked.lat is None
    later = update_station(
        "wifi",
        blocked,
        [obs("wifi", north(6000))],
        today=TODAY + timedelta(days=2),
        now=NOW + timedelta(days=2),
    )
    assert later.effect == "change" and later.state == "no_position"
    assert later.station is not None and later.station.lat == pytest.approx(north(6000))
    assert later.station.samples == 1


# -- cells, the sphere -----------------------------------------------------------------------------


def test_cell_psc_is_the_last_given_else_the_stored_one() -> None:
    before = station(psc=7)
    got = run("cell", before, [obs("cell", psc=5), obs("cell", psc=None)])
    assert got.station is not None and got.station.psc == 5
    got = run("cell", before, [obs("cell", north(100))])
    assert got.station is not None and got.station.psc == 7


def test_the_antimeridian_keeps_stations_in_place() -> None:
    east, west = obs("wifi", 0.0, 179.99), obs("wifi", 0.0, -179.99)
    got = run("wifi", None, [east, west])
    assert got.effect == "new" and got.station is not None
    s = got.station
    assert abs(s.lon) == pytest.approx(180.0) and s.lat == pytest.approx(0.0, abs=1e-9)
    assert s.min_lon == pytest.approx(179.99) and s.max_lon == pytest.approx(-179.99)
    assert s.radius == pytest.approx(1112, abs=2)  # half of 0.02° at the equator
    # A change keeps it there, rather than averaging degrees to the meridian of Greenwich.
    again = run("wifi", s, [obs("wifi", 0.0, -179.98)])
    assert again.effect == "change" and again.station is not None
    assert abs(again.station.lon) > 179.9 and again.station.max_lon == pytest.approx(-179.98)


def test_the_poles_are_not_broken() -> None:
    got = run("cell", None, [obs("cell", 89.9999, 0.0), obs("cell", 89.9999, 180.0)])
    assert got.effect == "new" and got.station is not None
    assert got.station.lat == pytest.approx(90.0, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(-80, 80),
    lon=st.floats(-180, 180),
    fraction=st.floats(0, 0.45),
    kind=st.sampled_from(KINDS),
)
def test_observations_within_half_the_radius_make_a_new_station_around_them(
    lat: float, lon: float, fraction: float, kind: Kind
) -> None:
    d = step(kind, fraction) / METRES_PER_DEGREE
    points = [obs(kind, lat, lon), obs(kind, lat + d, lon)]
    got = update_station(kind, None, points, today=TODAY, now=NOW)
    assert got.effect == "new" and got.station is not None
    s = got.station
    assert s.lat is not None and s.lon is not None
    for p in points:
        assert geo.distance(s.lat, s.lon, p.lat, p.lon) <= (s.radius or 0) + 1
    assert s.radius is not None and s.radius <= MAX_RADIUS[kind]


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(-70, 70),
    lon=st.floats(-180, 180),
    spread=st.floats(0, 0.02),
    turn=st.floats(-180, 180),
)
def test_a_station_does_not_depend_on_where_the_antimeridian_is(
    lat: float, lon: float, spread: float, turn: float
) -> None:
    """Turning every longitude by the same angle turns the station with them: same latitude,
    radius, samples and box size, wherever the points sit relative to 180°."""

    def learn(shift: float) -> Station:
        points = [
            obs("wifi", lat, geo.wrap(lon + shift - spread)),
            obs("wifi", lat + spread / 4, geo.wrap(lon + shift + spread)),
        ]
        got = update_station("wifi", None, points, today=TODAY, now=NOW)
        assert got.effect == "new" and got.station is not None
        return got.station

    a, b = learn(0.0), learn(turn)
    assert a.lat == pytest.approx(b.lat, abs=1e-9) and a.radius == b.radius
    assert a.lon is not None and b.lon is not None
    assert geo.wrap(b.lon - a.lon - turn) == pytest.approx(0.0, abs=1e-7)
    assert a.min_lon is not None and a.max_lon is not None
    assert b.min_lon is not None and b.max_lon is not None
    width_a = (a.max_lon - a.min_lon) % 360
    width_b = (b.max_lon - b.min_lon) % 360
    assert width_a == pytest.approx(width_b, abs=1e-7) and width_a <= 2 * spread + 1e-9


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-89.9, 89.9),
    lon=st.floats(-180.0, 179.999),
    south=st.floats(0.0, 0.5),
    north=st.floats(0.0, 0.5),
    west=st.floats(0.0, 0.5),
    east=st.floats(0.0, 0.5),
)
def test_circle_radius_is_the_largest_corner_distance_to_the_bit(
    lat: float, lon: float, south: float, north: float, west: float, east: float
) -> None:
    """circle_radius shares the corners' common terms: the same value as `distance` to each."""
    box = geo.Box(
        max(-90.0, lat - south), min(90.0, lat + north), geo.wrap(lon - west), geo.wrap(lon + east)
    )
    slow = round(max(geo.distance(lat, lon, c_lat, c_lon) for c_lat, c_lon in box.corners()))
    assert geo.circle_radius(lat, lon, box) == slow


# -- regions (sluice.stations.regions) -----------------------------------------------------------

GENEVA = (46.2044, 6.1432)  # in Switzerland, within the buffer of France


def test_a_new_station_takes_the_region_of_its_centre() -> None:
    got = run("wifi", None, [obs("wifi")])
    assert got.effect == "new" and got.station is not None and got.station.region == "GB"


def test_a_station_at_sea_has_no_region() -> None:
    got = run("wifi", None, [obs("wifi", lat=45.0, lon=-30.0)])
    assert got.station is not None and got.station.region is None


def test_a_change_keeps_a_region_its_centre_is_still_in_buffered() -> None:
    lat, lon = GENEVA
    before = station(lat=lat, lon=lon, max_lat=lat, min_lat=lat, max_lon=lon, min_lon=lon,
                     region="FR")  # fmt: skip
    got = run("wifi", before, [obs("wifi", lat=lat + 0.0001, lon=lon)])
    assert got.effect == "change" and got.station is not None and got.station.region == "FR"


def test_a_change_out_of_its_region_looks_the_region_up_again() -> None:
    got = run("wifi", station(region="FR"), [obs("wifi", lat=north(step("wifi", 0.5)))])
    assert got.effect == "change" and got.station is not None and got.station.region == "GB"


def test_replace_looks_the_region_up_and_block_keeps_it() -> None:
    replaced = run("wifi", station(source=QUERY, region="FR"), [obs("wifi")])
    assert replaced.effect == "replace" and replaced.station is not None
    assert replaced.station.region == "GB"
    far = north(step("wifi", 1.5))
    blocked = run("wifi", station(region="FR"), [obs("wifi"), obs("wifi", lat=far)])
    assert blocked.effect == "block" and blocked.station is not None
    assert blocked.station.region == "FR" and blocked.station.lat is None
