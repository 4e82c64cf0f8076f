"""The scaling city generator: exact counts, code structure, clean tessellation, lazy households."""

from __future__ import annotations

import collections
import inspect
import itertools
import re
import tracemalloc

import pytest
import shapely
from shapely.geometry import Polygon

from fixtures.generate import BEIJING_DISTRICTS, MAX_GRIDS, generate_city

from ._geo import (
    grid_shapes,
    households_too_close,
    mid_lat,
    numbering_violations,
    overlapping_pairs,
    unshared_border_vertices,
)


@pytest.fixture(scope="module")
def city() -> dict:
    """20,000 households: 67 grids over 7 communities of one street."""
    result = generate_city(20_000, seed=7)
    result["rows"] = list(result["households"])
    return result


@pytest.fixture(scope="module")
def wide_shapes() -> dict:
    """170 grids: more than two streets' worth, so blocks meet at every level."""
    return grid_shapes(generate_city(170 * 300, seed=3)["grids"])


def codes_of(city: dict) -> list[str]:
    return [f["properties"]["code"] for f in city["grids"]["features"]]


def test_households_is_a_generator():
    assert inspect.isgenerator(generate_city(1_000)["households"])


def test_a_900k_city_yields_its_first_row_without_building_the_rest():
    """The first row costs one household's memory, not the other 899,999 rows' (~900 MB):
    households are made as they are asked for. How fast is bench/generate.py's figure."""
    city = generate_city(900_000)
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        first = next(city["households"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 200_000
    assert first["grid_code"] == codes_of(city)[0]
    assert len(city["grids"]["features"]) == 3_000


def test_streaming_households_keeps_memory_bounded():
    city = generate_city(900_000, seed=1)
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        for _ in itertools.islice(city["households"], 30_000):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 5_000_000  # 30,000 retained rows would take ~30 MB


def test_same_seed_gives_identical_city():
    a, b = generate_city(3_000, seed=5), generate_city(3_000, seed=5)
    assert a["grids"] == b["grids"]
    assert list(a["households"]) == list(b["households"])
    assert a["users"] == b["users"]


def test_another_seed_gives_other_grids_and_households():
    a, b = generate_city(3_000, seed=5), generate_city(3_000, seed=6)
    assert a["grids"] != b["grids"]
    assert list(a["households"]) != list(b["households"])


def test_grid_count_defaults_to_households_over_households_per_grid():
    assert len(codes_of(generate_city(20_000))) == 67
    assert len(codes_of(generate_city(20_000, households_per_grid=500))) == 40


def test_explicit_grid_count_is_honoured():
    assert len(codes_of(generate_city(3_000, grids=12))) == 12


def test_household_total_is_exact_and_spread_evenly(city):
    assert len(city["rows"]) == 20_000 == city["household_count"]
    counts = collections.Counter(h["grid_code"] for h in city["rows"])
    assert set(counts) == set(codes_of(city))
    assert max(counts.values()) - min(counts.values()) <= 1
    assert all(290 <= n <= 310 for n in counts.values())


def test_grid_codes_are_15_digits_under_the_chosen_district(city):
    for code in codes_of(city):
        assert re.fullmatch(r"110105\d{9}", code)


def test_tree_levels_are_prefixes_of_grid_codes(city):
    codes = codes_of(city)
    assert [d["code"] for d in city["districts"]] == ["110105"]
    assert {s["code"] for s in city["streets"]} == {c[:9] for c in codes}
    assert {c["code"] for c in city["communities"]} == {c[:12] for c in codes}


def test_communities_hold_ten_grids_streets_eight_communities():
    city = generate_city(300 * 170)
    per_community = collections.Counter(c[:12] for c in codes_of(city))
    per_street = collections.Counter(c["code"][:9] for c in city["communities"])
    assert max(per_community.values()) == 10
    assert max(per_street.values()) == 8


def test_sequences_run_from_001_at_every_level():
    city = generate_city(300 * 170)
    codes = codes_of(city)
    for start, end in ((6, 9), (9, 12), (12, 15)):
        groups = collections.defaultdict(list)
        for code in codes:
            groups[code[:start]].append(int(code[start:end]))
        for seqs in groups.values():
            distinct = sorted(set(seqs))
            assert distinct == list(range(1, len(distinct) + 1))


def test_a_large_city_spills_into_further_real_district_codes():
    city = generate_city(300 * 1601, households_per_grid=300)
    assert [d["code"] for d in city["districts"]] == ["110105", "110101"]
    assert [d["name"] for d in city["districts"]] == ["朝阳区", "东城区"]
    assert codes_of(city)[-1] == "110101001001001"


def test_district_code_chooses_the_first_district():
    city = generate_city(600, district_code="110108")
    assert city["districts"] == [{"code": "110108", "name": "海淀区"}]
    assert all(f["properties"]["district_name"] == "海淀区" for f in city["grids"]["features"])


def test_unknown_district_code_is_rejected():
    with pytest.raises(ValueError, match="district"):
        generate_city(600, district_code="110100")


def test_more_grids_than_beijing_holds_are_rejected():
    assert 1600 * len(BEIJING_DISTRICTS) == MAX_GRIDS
    with pytest.raises(ValueError, match="grids"):
        generate_city(1, grids=MAX_GRIDS + 1)


def test_grid_properties_carry_names_and_target(city):
    for feature in city["grids"]["features"]:
        props = feature["properties"]
        assert props["district_name"] == "朝阳区"
        assert props["street_name"].endswith("街道")
        assert props["community_name"].endswith("社区")
        assert props["target_households"] == 300


def test_grids_are_numbered_west_to_east_then_north_to_south(wide_shapes):
    assert numbering_violations(wide_shapes, row_tolerance_deg=0.0011) == []


def test_every_grid_is_a_valid_polygon(wide_shapes):
    for code, geom in wide_shapes.items():
        assert isinstance(geom, Polygon) and geom.is_valid, code


def test_grids_do_not_overlap(wide_shapes):
    assert overlapping_pairs(wide_shapes, lat0=mid_lat(wide_shapes.values())) == []


def test_neighbours_share_border_vertices_exactly(wide_shapes):
    assert unshared_border_vertices(wide_shapes) == []


def test_tessellation_leaves_no_gaps(wide_shapes):
    union = shapely.union_all(list(wide_shapes.values()))
    assert isinstance(union, Polygon) and len(union.interiors) == 0


def test_every_household_is_inside_its_grid_at_least_3m_from_the_border(city):
    shapes = grid_shapes(city["grids"])
    assert households_too_close(city["rows"], shapes) == []


def test_about_5_percent_businesses(city):
    businesses = sum(1 for h in city["rows"] if h["kind"] == "business")
    assert 0.045 <= businesses / len(city["rows"]) <= 0.055


def test_one_worker_per_grid_and_a_leader_and_admin_per_community(city):
    roles = collections.Counter(u["role"] for u in city["users"])
    assert roles == {
        "worker": len(codes_of(city)),
        "grid_leader": len(city["communities"]),
        "community_admin": len(city["communities"]),
        "district_viewer": 1,
    }


def test_one_viewer_per_district_in_a_multi_district_city():
    city = generate_city(300 * 1601)
    viewers = [u for u in city["users"] if u["role"] == "district_viewer"]
    assert [len(v["grids"]) for v in viewers] == [1600, 1]
