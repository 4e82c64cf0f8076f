"""The demo district: deterministic, clean grid topology, sane households, one account per role."""

from __future__ import annotations

import collections
import re

import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from fixtures.demo import DEMO_PASSWORD, demo_district

from ._geo import (
    grid_shapes,
    households_too_close,
    metric,
    mid_lat,
    numbering_violations,
    overlapping_pairs,
    unshared_border_vertices,
)

CARE_TAGS = {
    "elderly_80",
    "living_alone",
    "low_income",
    "disability",
    "migrant",
    "child_in_difficulty",
    "woman_in_difficulty",
    "special_care",
}
HOUSEHOLD_KEYS = {
    "building",
    "unit",
    "floor",
    "room",
    "lon",
    "lat",
    "kind",
    "occupancy",
    "members",
    "tags",
    "phone",
    "grid_code",
}


@pytest.fixture(scope="module")
def demo() -> dict:
    return demo_district()


@pytest.fixture(scope="module")
def shapes(demo) -> dict:
    return grid_shapes(demo["grids"])


@pytest.fixture(scope="module")
def residences(demo) -> list[dict]:
    return [h for h in demo["households"] if h["kind"] == "residence"]


def share(rows, predicate) -> float:
    return sum(1 for r in rows if predicate(r)) / len(rows)


def test_same_seed_gives_identical_demo(demo):
    assert demo_district() == demo


def test_another_seed_gives_other_households(demo):
    assert demo_district(seed=1)["households"] != demo["households"]


def test_administrative_tree_is_dongcheng_jingshan(demo):
    assert demo["district"] == {"code": "110101", "name": "东城区"}
    assert demo["street"]["code"] == "110101001"
    assert demo["street"]["name"] == "景山街道"
    assert [c["code"] for c in demo["communities"]] == [
        "110101001001",
        "110101001002",
        "110101001003",
    ]
    assert all(c["name"].endswith("社区") for c in demo["communities"])


def test_fourteen_grids_split_five_five_four(demo):
    codes = [f["properties"]["code"] for f in demo["grids"]["features"]]
    per_community = collections.Counter(code[:12] for code in codes)
    assert list(per_community.values()) == [5, 5, 4]


def test_grid_codes_are_15_digits_under_their_community(demo):
    for feature in demo["grids"]["features"]:
        code = feature["properties"]["code"]
        assert re.fullmatch(r"110101001\d{6}", code)
        assert code[:12] in {c["code"] for c in demo["communities"]}


def test_grid_sequences_run_from_001_without_gaps(demo):
    codes = sorted(f["properties"]["code"] for f in demo["grids"]["features"])
    by_community = collections.defaultdict(list)
    for code in codes:
        by_community[code[:12]].append(int(code[12:]))
    for seqs in by_community.values():
        assert seqs == list(range(1, len(seqs) + 1))


def test_grids_are_numbered_west_to_east_then_north_to_south(shapes):
    assert numbering_violations(shapes, row_tolerance_deg=0.0025) == []


def test_grid_properties_name_the_administrative_tree(demo):
    communities = {c["code"]: c["name"] for c in demo["communities"]}
    for feature in demo["grids"]["features"]:
        props = feature["properties"]
        assert set(props) == {
            "code",
            "name",
            "community_name",
            "street_name",
            "district_name",
            "target_households",
        }
        assert props["community_name"] == communities[props["code"][:12]]
        assert props["street_name"] == "景山街道"
        assert props["district_name"] == "东城区"
        assert props["name"].startswith(props["community_name"])
        assert props["target_households"] == 300


def test_grids_are_an_rfc7946_feature_collection(demo):
    fc = demo["grids"]
    assert fc["type"] == "FeatureCollection"
    assert "crs" not in fc
    for feature in fc["features"]:
        assert feature["type"] == "Feature"
        geometry = feature["geometry"]
        polygons = (
            geometry["coordinates"]
            if geometry["type"] == "MultiPolygon"
            else [geometry["coordinates"]]
        )
        for exterior, *holes in polygons:
            assert exterior[0] == exterior[-1]
            assert shapely.LinearRing(exterior).is_ccw
            for hole in holes:
                assert hole[0] == hole[-1]
                assert not shapely.LinearRing(hole).is_ccw


def test_grids_lie_near_jingshan_in_wgs84(shapes):
    minx, miny, maxx, maxy = shapely.GeometryCollection(list(shapes.values())).bounds
    assert minx >= 116.389 and maxx <= 116.421
    assert miny >= 39.919 and maxy <= 39.941


def test_every_grid_is_a_valid_polygon(shapes):
    for code, geom in shapes.items():
        assert geom.is_valid, (code, shapely.is_valid_reason(geom))
        assert isinstance(geom, Polygon | MultiPolygon)


def test_grids_do_not_overlap(shapes):
    assert overlapping_pairs(shapes, lat0=mid_lat(shapes.values())) == []


def test_neighbours_share_border_vertices_exactly(shapes):
    assert unshared_border_vertices(shapes) == []


def test_grids_cover_the_district_without_gaps_except_the_park(shapes):
    union = shapely.union_all(list(shapes.values()))
    assert isinstance(union, Polygon)
    assert len(union.interiors) == 1  # the park


def test_not_all_grids_are_rectangles(shapes):
    assert all(len(shapely.get_coordinates(g)) > 5 for g in shapes.values())


def test_one_grid_has_a_park_hole_that_belongs_to_no_grid(shapes):
    holes = [
        (code, Polygon(ring))
        for code, g in shapes.items()
        if isinstance(g, Polygon)
        for ring in g.interiors
    ]
    parks = [
        code
        for code, hole in holes
        if not any(other.intersection(hole).area > 0 for other in shapes.values())
    ]
    assert len(parks) == 1


def test_one_grid_is_a_multipolygon_whose_small_part_fills_another_grids_hole(shapes):
    multi = {code: g for code, g in shapes.items() if isinstance(g, MultiPolygon)}
    assert len(multi) == 1
    (geom,) = multi.values()
    assert len(geom.geoms) == 2
    small = min(geom.geoms, key=lambda p: p.area)
    hole_owners = [
        code
        for code, g in shapes.items()
        if isinstance(g, Polygon) and any(Polygon(r).equals(small) for r in g.interiors)
    ]
    assert len(hole_owners) == 1


def test_households_have_exactly_the_documented_keys(demo):
    for row in demo["households"]:
        assert set(row) == HOUSEHOLD_KEYS


def test_household_values_have_the_documented_types(demo):
    for row in demo["households"]:
        assert row["building"].isdigit()
        assert row["unit"] in {"1", "2", "3", "4"}
        assert isinstance(row["floor"], int) and 1 <= row["floor"] <= 18
        assert row["room"].startswith(str(row["floor"])) and row["room"].isdigit()
        assert row["kind"] in {"residence", "business"}
        assert row["occupancy"] in {"owner", "tenant", "vacant"}
        assert isinstance(row["members"], int) and row["members"] >= 0
        assert set(row["tags"]) <= CARE_TAGS


def test_phones_are_11_digit_13x_15x_18x(demo):
    for row in demo["households"]:
        assert re.fullmatch(r"1[358]\d{9}", row["phone"])


def test_addresses_are_unique_within_a_grid(demo):
    keys = [(h["grid_code"], h["building"], h["unit"], h["room"]) for h in demo["households"]]
    assert len(keys) == len(set(keys))


def test_every_household_is_inside_its_grid_at_least_3m_from_the_border(demo, shapes):
    assert households_too_close(demo["households"], shapes) == []


def test_households_name_existing_grids(demo, shapes):
    assert {h["grid_code"] for h in demo["households"]} == set(shapes)


def test_each_grid_holds_about_300_households(demo):
    counts = collections.Counter(h["grid_code"] for h in demo["households"])
    assert all(250 <= n <= 350 for n in counts.values()), counts


def test_multipolygon_grid_has_households_in_both_parts(demo, shapes):
    (code,) = [c for c, g in shapes.items() if isinstance(g, MultiPolygon)]
    parts = shapes[code].geoms
    rows = [h for h in demo["households"] if h["grid_code"] == code]
    for part in parts:
        assert any(part.contains(shapely.Point(h["lon"], h["lat"])) for h in rows)


def test_about_5_percent_are_businesses_on_the_ground_floor(demo):
    businesses = [h for h in demo["households"] if h["kind"] == "business"]
    assert 0.04 <= len(businesses) / len(demo["households"]) <= 0.06
    assert all(b["floor"] == 1 and b["tags"] == [] for b in businesses)


def test_businesses_sit_on_the_south_street_edge_of_their_grid(demo, shapes):
    for code, geom in shapes.items():
        rows = [h for h in demo["households"] if h["grid_code"] == code]
        lats = sorted(h["lat"] for h in rows if h["kind"] == "residence")
        for shop in (h for h in rows if h["kind"] == "business"):
            assert shop["lat"] < lats[len(lats) // 10]  # south of 90% of the homes
        assert geom.bounds[1] < min(h["lat"] for h in rows)


def test_occupancy_is_mostly_owners_then_tenants_then_vacant(residences):
    assert 0.65 <= share(residences, lambda h: h["occupancy"] == "owner") <= 0.75
    assert 0.18 <= share(residences, lambda h: h["occupancy"] == "tenant") <= 0.26
    assert 0.05 <= share(residences, lambda h: h["occupancy"] == "vacant") <= 0.11


def test_vacant_homes_have_no_members_and_no_tags(residences):
    for row in residences:
        if row["occupancy"] == "vacant":
            assert row["members"] == 0 and row["tags"] == []
        else:
            assert row["members"] >= 1


def test_living_alone_means_one_member(residences):
    for row in residences:
        assert ("living_alone" in row["tags"]) == (row["members"] == 1)


@pytest.mark.parametrize(
    ("tag", "low", "high"),
    [
        ("elderly_80", 0.025, 0.06),
        ("living_alone", 0.03, 0.07),
        ("low_income", 0.01, 0.035),
        ("disability", 0.01, 0.035),
        ("migrant", 0.07, 0.13),
        ("child_in_difficulty", 0.0005, 0.015),
        ("woman_in_difficulty", 0.0005, 0.015),
        ("special_care", 0.003, 0.02),
    ],
)
def test_care_tags_occur_at_realistic_rates(residences, tag, low, high):
    assert low <= share(residences, lambda h: tag in h["tags"]) <= high


def test_grid_polygons_are_metric_sized_like_real_grids(shapes):
    lat0 = mid_lat(shapes.values())
    for geom in shapes.values():
        assert 0.05e6 < metric(geom, lat0).area < 1.0e6  # 0.05–1 km²


def test_one_worker_per_grid(demo, shapes):
    workers = [u for u in demo["users"] if u["role"] == "worker"]
    assert sorted(g for u in workers for g in u["grids"]) == sorted(shapes)
    assert all(len(u["grids"]) == 1 and u["community"] == u["grids"][0][:12] for u in workers)


def test_one_leader_and_one_admin_per_community_scoped_to_its_grids(demo, shapes):
    for role in ("grid_leader", "community_admin"):
        accounts = [u for u in demo["users"] if u["role"] == role]
        assert sorted(u["community"] for u in accounts) == [c["code"] for c in demo["communities"]]
        for user in accounts:
            assert user["grids"] == sorted(c for c in shapes if c[:12] == user["community"])


def test_one_district_viewer_seeing_every_grid(demo, shapes):
    (viewer,) = [u for u in demo["users"] if u["role"] == "district_viewer"]
    assert viewer["community"] is None
    assert sorted(viewer["grids"]) == sorted(shapes)


def test_accounts_have_unique_usernames_and_the_demo_password(demo):
    names = [u["username"] for u in demo["users"]]
    assert len(names) == len(set(names))
    assert all(u["password"] == DEMO_PASSWORD for u in demo["users"])
    assert all(re.fullmatch(r"[a-z]+\d*", n) for n in names)


def test_grid_geometries_round_trip_through_shape(demo):
    for feature in demo["grids"]["features"]:
        assert shape(feature["geometry"]).is_valid
