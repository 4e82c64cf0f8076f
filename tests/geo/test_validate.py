"""Tests for geo.validate: GeoJSON boundary and point validation, with reasons that say where."""

import math
import random

import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo.datum import to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from geo.measure import area_m2
from geo.validate import (
    GeometryProblem,
    check_lon_lat,
    overlap_area_m2,
    parse_boundary,
    parse_point,
    plainly_in_china,
)

# A 0.01 x 0.01 degree cell by Tiananmen, counter-clockwise, as GeoJSON rings.
SQUARE = [[116.40, 39.90], [116.41, 39.90], [116.41, 39.91], [116.40, 39.91], [116.40, 39.90]]
HOLE = [
    [116.402, 39.902],
    [116.402, 39.908],
    [116.408, 39.908],
    [116.408, 39.902],
    [116.402, 39.902],
]
EAST = [[116.42, 39.90], [116.43, 39.90], [116.43, 39.91], [116.42, 39.91], [116.42, 39.90]]


def polygon(*rings):
    return {"type": "Polygon", "coordinates": [list(r) for r in rings]}


def multipolygon(*polygons):
    return {"type": "MultiPolygon", "coordinates": [[list(r) for r in p] for p in polygons]}


def reason_for(geometry):
    with pytest.raises(GeometryProblem) as caught:
        parse_boundary(geometry)
    return caught.value.reason


def test_polygon_becomes_one_part_multipolygon():
    result = parse_boundary(polygon(SQUARE))
    assert isinstance(result, MultiPolygon)
    assert result.equals(MultiPolygon([box(116.40, 39.90, 116.41, 39.91)]))


def test_multipolygon_keeps_its_parts():
    result = parse_boundary(multipolygon([SQUARE], [EAST]))
    expected = MultiPolygon([box(116.40, 39.90, 116.41, 39.91), box(116.42, 39.90, 116.43, 39.91)])
    assert result.equals(expected)


def test_holes_are_kept():
    result = parse_boundary(polygon(SQUARE, HOLE))
    assert result.equals(MultiPolygon([Polygon(SQUARE, [HOLE])]))


def test_clockwise_exterior_is_reoriented_counter_clockwise():
    result = parse_boundary(polygon(SQUARE[::-1]))
    assert result.geoms[0].exterior.is_ccw


def test_altitude_is_dropped():
    result = parse_boundary(polygon([[*p, 45.0] for p in SQUARE]))
    assert not result.has_z


def test_integer_coordinates_are_accepted():
    ring = [[116, 39], [117, 39], [117, 40], [116, 40], [116, 39]]
    assert parse_boundary(polygon(ring)).equals(MultiPolygon([box(116, 39, 117, 40)]))


def test_multipolygon_parts_touching_at_a_corner_are_accepted():
    corner = [[116.41, 39.91], [116.42, 39.91], [116.42, 39.92], [116.41, 39.92], [116.41, 39.91]]
    assert len(parse_boundary(multipolygon([SQUARE], [corner])).geoms) == 2


def test_a_boundary_larger_than_the_limit_is_rejected_naming_its_area():
    """No limit: a grid drawn over half of China was taken, and by the overlap check it kept
    every other community from drawing there."""
    reason = reason_for_limited(polygon(SQUARE), max_area_m2=500_000)
    assert "0.9 km²" in reason and "0.5 km²" in reason


def test_a_boundary_within_the_limit_is_accepted():
    assert parse_boundary(polygon(SQUARE), max_area_m2=1_000_000).area > 0


def reason_for_limited(geometry, **kwargs):
    with pytest.raises(GeometryProblem) as caught:
        parse_boundary(geometry, **kwargs)
    return caught.value.reason


def test_geometry_problem_is_a_value_error_with_reason_as_message():
    problem = GeometryProblem("ring 0 is not closed")
    assert isinstance(problem, ValueError)
    assert str(problem) == problem.reason == "ring 0 is not closed"


@pytest.mark.parametrize("not_a_dict", [None, [], "Polygon", 3])
def test_non_object_is_rejected(not_a_dict):
    assert reason_for(not_a_dict) == "geometry must be a GeoJSON object"


@pytest.mark.parametrize("kind", ["Point", "LineString", "GeometryCollection", "polygon", None])
def test_other_geometry_types_are_rejected(kind):
    assert "must be Polygon or MultiPolygon" in reason_for({"type": kind, "coordinates": []})


def test_missing_coordinates_are_rejected():
    assert reason_for({"type": "Polygon"}) == "Polygon coordinates must be an array"


@pytest.mark.parametrize("kind", ["Polygon", "MultiPolygon"])
def test_empty_geometry_is_rejected(kind):
    assert reason_for({"type": kind, "coordinates": []}) == "geometry is empty"


def test_multipolygon_part_without_rings_is_rejected():
    assert reason_for({"type": "MultiPolygon", "coordinates": [[]]}) == "polygon 0 has no rings"


def test_multipolygon_part_that_is_not_an_array_is_rejected():
    assert reason_for({"type": "MultiPolygon", "coordinates": [7]}) == (
        "polygon 0 is not an array of rings"
    )


def test_ring_that_is_not_an_array_is_rejected():
    assert reason_for({"type": "Polygon", "coordinates": [5]}) == (
        "ring 0 is not an array of positions"
    )


def test_position_that_is_not_a_pair_is_rejected():
    ring = [*SQUARE[:2], [116.41], *SQUARE[3:]]
    assert reason_for(polygon(ring)) == (
        "position 2 of ring 0 is not an array of 2 numbers [lon, lat]"
    )


def test_unclosed_ring_is_rejected_naming_ring_and_polygon():
    assert reason_for(multipolygon([EAST], [SQUARE[:-1] + [[116.40, 39.905]]])) == (
        "ring 0 of polygon 1 is not closed: its first and last positions differ"
    )


def test_ring_with_three_positions_is_rejected():
    tiny = [[116.403, 39.903], [116.404, 39.903], [116.403, 39.903]]
    assert reason_for(polygon(SQUARE, HOLE, tiny)) == (
        "ring 2 has 3 positions; a ring needs at least 4"
    )


@pytest.mark.parametrize("bad", ["116.4", None, True, [116.4]])
def test_non_numeric_coordinate_is_rejected(bad):
    ring = [[bad, 39.90], *SQUARE[1:-1], [bad, 39.90]]
    assert "is not a pair of numbers" in reason_for(polygon(ring))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_coordinate_is_rejected(bad):
    ring = [*SQUARE[:2], [116.41, bad], *SQUARE[3:]]
    assert (
        reason_for(polygon(ring))
        == f"coordinate (116.41, {bad}) in position 2 of ring 0 is not finite"
    )


def test_integer_too_big_for_a_float_is_not_finite():
    with pytest.raises(GeometryProblem, match="is not finite"):
        parse_point(10**400, 39.9)


def test_longitude_out_of_range_is_rejected():
    ring = [*SQUARE[:2], [200.0, 39.91], *SQUARE[3:]]
    assert reason_for(polygon(ring)) == (
        "longitude 200.0 in position 2 of ring 0 out of range [-180, 180]"
    )


def test_latitude_out_of_range_is_rejected():
    ring = [*SQUARE[:2], [-116.41, -95.0], *SQUARE[3:]]
    assert (
        reason_for(polygon(ring)) == "latitude -95.0 in position 2 of ring 0 out of range [-90, 90]"
    )


def test_a_stray_vertex_outside_china_is_rejected_naming_it():
    # 116.41 typed as 11.641: a valid position in Africa, and a "grid" across half of Asia.
    ring = [*SQUARE[:2], [11.641, 39.91], *SQUARE[3:]]
    assert reason_for(polygon(ring)) == (
        "position 2 of ring 0 at (11.641, 39.91) is outside China: "
        "a grid boundary is lon/lat (WGS-84) in China"
    )


def test_a_polygon_across_the_antimeridian_is_rejected():
    ring = [[179.0, 40.0], [-179.0, 40.0], [-179.0, 41.0], [179.0, 41.0], [179.0, 40.0]]
    assert "outside China" in reason_for(polygon(ring))


def test_a_polygon_around_the_pole_is_rejected():
    ring = [[0.0, 89.0], [120.0, 89.0], [-120.0, 89.0], [0.0, 89.0]]
    assert "outside China" in reason_for(polygon(ring))


def test_swapped_coordinates_are_named_as_swapped():
    swapped = [[lat, lon] for lon, lat in SQUARE]
    assert reason_for(polygon(swapped)) == (
        "coordinate (39.9, 116.4) in position 0 of ring 0 looks swapped: "
        "(lat, lon) given where (lon, lat) is expected"
    )


def test_swap_is_detected_when_both_values_are_valid_latitudes():
    # Urumqi (87.6, 43.8) swapped is (43.8, 87.6): a valid position near the North Pole, but
    # for a platform in China only the swapped reading fits.
    ring = [[43.80, 87.60], [43.80, 87.61], [43.81, 87.61], [43.81, 87.60], [43.80, 87.60]]
    assert "looks swapped" in reason_for(polygon(ring))


def test_western_china_is_not_mistaken_for_swapped():
    ring = [[80.0, 40.0], [80.01, 40.0], [80.01, 40.01], [80.0, 40.01], [80.0, 40.0]]
    assert parse_boundary(polygon(ring)).equals(MultiPolygon([box(80.0, 40.0, 80.01, 40.01)]))


def test_self_intersection_is_rejected_with_location():
    bowtie = [[116.40, 39.90], [116.41, 39.91], [116.41, 39.90], [116.40, 39.91], [116.40, 39.90]]
    assert reason_for(polygon(bowtie)) == (
        "polygon is invalid: self-intersection at (116.405, 39.905)"
    )


def test_ring_self_intersection_is_rejected_with_location():
    pinched = [
        [116.40, 39.90],
        [116.41, 39.90],
        [116.41, 39.91],
        [116.405, 39.90],
        [116.40, 39.91],
        [116.40, 39.90],
    ]
    assert reason_for(polygon(pinched)) == (
        "polygon is invalid: ring self-intersection at (116.405, 39.9)"
    )


def test_hole_outside_shell_is_rejected_with_location():
    assert reason_for(polygon(SQUARE, EAST)) == (
        "polygon is invalid: hole lies outside shell at (116.42, 39.9)"
    )


def test_invalid_part_of_multipolygon_names_the_part():
    bowtie = [[116.40, 39.90], [116.41, 39.91], [116.41, 39.90], [116.40, 39.91], [116.40, 39.90]]
    assert reason_for(multipolygon([EAST], [bowtie])).startswith("polygon 1 is invalid:")


def test_overlapping_parts_are_rejected():
    shifted = [[lon + 0.005, lat + 0.005] for lon, lat in SQUARE]
    assert reason_for(multipolygon([SQUARE], [shifted])) == (
        "polygon 0 and polygon 1 overlap near (116.4075, 39.9075)"
    )


def test_part_inside_another_part_is_an_overlap():
    inner = [
        [116.402, 39.902],
        [116.408, 39.902],
        [116.408, 39.908],
        [116.402, 39.908],
        [116.402, 39.902],
    ]
    assert "polygon 0 and polygon 1 overlap" in reason_for(multipolygon([SQUARE], [inner]))


def test_parts_sharing_an_edge_are_rejected():
    neighbour = [
        [116.41, 39.90],
        [116.42, 39.90],
        [116.42, 39.91],
        [116.41, 39.91],
        [116.41, 39.90],
    ]
    assert reason_for(multipolygon([SQUARE], [neighbour])).startswith(
        "polygon 0 and polygon 1 share an edge"
    )


def test_parse_point_returns_point():
    assert parse_point(116.404, 39.915).equals(Point(116.404, 39.915))


def test_parse_point_rejects_swapped_pair():
    with pytest.raises(GeometryProblem, match="looks swapped"):
        parse_point(39.915, 116.404)


def test_parse_point_rejects_out_of_range_longitude():
    with pytest.raises(GeometryProblem, match=r"longitude 200.0 out of range \[-180, 180\]"):
        parse_point(200.0, 39.9)


def test_parse_point_rejects_nan():
    with pytest.raises(GeometryProblem, match="not finite"):
        parse_point(math.nan, 39.9)


def test_parse_point_accepts_point_abroad():
    assert parse_point(2.3522, 48.8566).equals(Point(2.3522, 48.8566))


def test_overlap_area_is_the_shared_area_in_square_metres():
    a = box(116.40, 39.90, 116.41, 39.91)
    b = box(116.405, 39.90, 116.415, 39.91)
    assert overlap_area_m2(a, b) == pytest.approx(area_m2(box(116.405, 39.90, 116.41, 39.91)))


def test_overlap_area_of_neighbours_sharing_an_edge_is_zero():
    assert (
        overlap_area_m2(box(116.40, 39.90, 116.41, 39.91), box(116.41, 39.90, 116.42, 39.91)) == 0
    )


def test_overlap_area_with_empty_geometry_is_zero():
    assert overlap_area_m2(box(116.40, 39.90, 116.41, 39.91), shapely.Polygon()) == 0


def test_a_pair_plainly_in_china_is_one_the_full_check_accepts():
    """The batch's quick test never lets through what `check_lon_lat` refuses."""
    rng = random.Random(7)
    pairs = [(rng.uniform(-200, 200), rng.uniform(-100, 100)) for _ in range(20_000)]
    pairs += [(116.4, 39.9), (73.0, 3.0), (136.0, 54.0), (39.9, 116.4), (math.nan, 39.9)]
    quick = [p for p in pairs if plainly_in_china(*p)]
    assert len(quick) > 100
    for lon, lat in quick:
        assert check_lon_lat(lon, lat) == (lon, lat)
    assert not plainly_in_china(39.9, 116.4)  # swapped: left to the full check
    assert not plainly_in_china(116, 39.9)  # an integer: left to the full check
    assert not plainly_in_china(math.nan, 39.9)


# Datums: a boundary drawn on an Amap/Tencent (GCJ-02) or Baidu (BD-09) map.


def _in(datum, ring):
    """`ring` (WGS-84) as a map in `datum` draws it."""
    convert = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}[datum]
    return [list(convert(lon, lat)) for lon, lat in ring]


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_a_boundary_in_another_datum_comes_back_in_wgs84_vertex_by_vertex(datum):
    drawn = _in(datum, SQUARE)
    result = parse_boundary(polygon(drawn), datum=datum)
    expected = [to_wgs84(lon, lat, datum) for lon, lat in drawn]
    got = [v for xy in result.geoms[0].exterior.coords for v in xy]
    assert got == pytest.approx([v for xy in expected for v in xy], abs=1e-9)  # ~0.1 mm
    assert result.equals_exact(MultiPolygon([Polygon(SQUARE)]), tolerance=1e-7)


def test_a_boundary_in_wgs84_is_taken_as_it_comes():
    drawn = _in("gcj02", SQUARE)
    assert parse_boundary(polygon(drawn), datum="wgs84").equals(parse_boundary(polygon(drawn)))
    assert list(parse_boundary(polygon(drawn)).geoms[0].exterior.coords) == [
        tuple(p) for p in drawn
    ]


def test_holes_and_parts_are_converted_too():
    drawn = multipolygon([_in("gcj02", SQUARE), _in("gcj02", HOLE)], [_in("gcj02", EAST)])
    expected = MultiPolygon([Polygon(SQUARE, [HOLE]), Polygon(EAST)])
    assert parse_boundary(drawn, datum="gcj02").equals_exact(expected, tolerance=1e-7)


def test_an_unknown_datum_is_refused():
    with pytest.raises(ValueError, match="unknown datum 'wgs-84'"):
        parse_boundary(polygon(SQUARE), datum="wgs-84")


def test_a_bad_vertex_in_another_datum_is_named_as_given():
    ring = [*SQUARE[:2], ["x", 39.91], *SQUARE[3:]]
    with pytest.raises(GeometryProblem, match="position 2 of ring 0"):
        parse_boundary(polygon(ring), datum="gcj02")
