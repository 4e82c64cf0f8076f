"""Tests for geo.measure: haversine distances, the local metric projection, areas and distances."""

import math

import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from geo.measure import (
    EARTH_RADIUS_M,
    area_m2,
    distance_m,
    haversine_m,
    local_metric_projection,
    project,
)

# WGS-84 ellipsoid, for exact reference areas.
A = 6378137.0
E2 = 0.00669437999014


def ellipsoid_cell_area_m2(lon1, lat1, lon2, lat2):
    """Exact area of a lon/lat cell on the WGS-84 ellipsoid (authalic latitude formula)."""
    e = math.sqrt(E2)

    def q(lat):
        s = math.sin(math.radians(lat))
        return (1 - E2) * (s / (1 - E2 * s * s) - math.log((1 - e * s) / (1 + e * s)) / (2 * e))

    return A * A / 2 * math.radians(lon2 - lon1) * (q(lat2) - q(lat1))


def test_haversine_of_one_degree_of_latitude_is_the_sphere_arc():
    assert haversine_m(116.0, 39.0, 116.0, 40.0) == pytest.approx(EARTH_RADIUS_M * math.pi / 180)


def test_haversine_of_same_point_is_zero():
    assert haversine_m(116.4, 39.9, 116.4, 39.9) == 0.0


def test_haversine_is_symmetric():
    assert haversine_m(116.4, 39.9, 121.47, 31.23) == haversine_m(121.47, 31.23, 116.4, 39.9)


def test_haversine_beijing_to_shanghai_is_about_1067_km():
    # Tiananmen to People's Square: 1,067 km great-circle.
    assert haversine_m(116.3975, 39.9087, 121.4737, 31.2304) == pytest.approx(1_067_000, rel=0.005)


def test_haversine_of_antipodes_is_half_circumference():
    assert haversine_m(0.0, 0.0, 180.0, 0.0) == pytest.approx(math.pi * EARTH_RADIUS_M)


def test_projection_puts_centre_at_origin():
    forward, _ = local_metric_projection(116.4, 39.9)
    assert forward(116.4, 39.9) == (0.0, 0.0)


def test_projection_x_grows_east_and_y_north():
    forward, _ = local_metric_projection(116.4, 39.9)
    x, y = forward(116.401, 39.901)
    assert x > 0 and y > 0


def test_projection_inverse_undoes_forward():
    forward, inverse = local_metric_projection(116.4, 39.9)
    assert inverse(*forward(116.43, 39.87)) == pytest.approx((116.43, 39.87), abs=1e-12)


def test_projection_distances_agree_with_haversine_within_half_percent_at_5_km():
    forward, _ = local_metric_projection(116.4, 39.9)
    x, y = forward(116.44, 39.93)
    assert math.hypot(x, y) == pytest.approx(haversine_m(116.4, 39.9, 116.44, 39.93), rel=0.005)


def test_projection_functions_work_with_shapely_transform():
    forward, _ = local_metric_projection(116.4, 39.9)
    line = LineString([(116.4, 39.9), (116.41, 39.9)])
    projected = shapely.transform(line, forward, interleaved=False)
    # Within the 0.5% by which the haversine sphere differs from the ellipsoid.
    assert projected.length == pytest.approx(haversine_m(116.4, 39.9, 116.41, 39.9), rel=5e-3)


def test_unproject_undoes_project():
    proj = local_metric_projection(116.4, 39.9)
    cell = box(116.40, 39.90, 116.41, 39.91)
    assert proj.unproject(proj.project(cell)).equals_exact(cell, tolerance=1e-12)


def test_projection_keeps_z():
    forward, _ = local_metric_projection(116.4, 39.9)
    assert forward(116.4, 39.9, 50.0) == (0.0, 0.0, 50.0)


def test_project_of_empty_geometry_is_empty():
    assert project(Polygon()).is_empty


def test_area_of_cell_matches_ellipsoid_within_a_millionth():
    cell = box(116.40, 39.90, 116.41, 39.91)
    expected = ellipsoid_cell_area_m2(116.40, 39.90, 116.41, 39.91)
    assert area_m2(cell) == pytest.approx(expected, rel=1e-6)


def test_area_of_grid_sized_cell_near_equator_matches_ellipsoid():
    cell = box(109.50, 18.20, 109.52, 18.22)
    expected = ellipsoid_cell_area_m2(109.50, 18.20, 109.52, 18.22)
    assert area_m2(cell) == pytest.approx(expected, rel=1e-5)


def test_area_of_district_sized_cell_is_within_a_thousandth():
    cell = box(116.2, 39.8, 116.5, 40.0)
    expected = ellipsoid_cell_area_m2(116.2, 39.8, 116.5, 40.0)
    assert area_m2(cell) == pytest.approx(expected, rel=1e-3)


def test_area_subtracts_holes():
    shell = box(116.40, 39.90, 116.41, 39.91)
    hole = box(116.402, 39.902, 116.408, 39.908)
    with_hole = Polygon(shell.exterior.coords, [hole.exterior.coords])
    assert area_m2(with_hole) == pytest.approx(area_m2(shell) - area_m2(hole), rel=1e-9)


def test_area_of_point_is_zero():
    assert area_m2(Point(116.4, 39.9)) == 0.0


def test_area_of_empty_geometry_is_zero():
    assert area_m2(Polygon()) == 0.0


def test_distance_between_points_is_haversine():
    expected = haversine_m(116.40, 39.90, 116.41, 39.91)
    assert distance_m(Point(116.40, 39.90), Point(116.41, 39.91)) == pytest.approx(expected)


def test_distance_from_point_to_polygon_is_to_nearest_edge():
    cell = box(116.40, 39.90, 116.41, 39.91)
    expected = haversine_m(116.41, 39.905, 116.42, 39.905)
    assert distance_m(cell, Point(116.42, 39.905)) == pytest.approx(expected, rel=1e-6)


def test_distance_from_point_inside_polygon_is_zero():
    assert distance_m(Point(116.405, 39.905), box(116.40, 39.90, 116.41, 39.91)) == 0.0


def test_distance_between_far_points_stays_great_circle():
    expected = haversine_m(116.3975, 39.9087, 121.4737, 31.2304)
    actual = distance_m(Point(116.3975, 39.9087), Point(121.4737, 31.2304))
    assert actual == pytest.approx(expected)


def test_distance_to_empty_geometry_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        distance_m(Point(116.4, 39.9), Polygon())


def test_haversine_of_arrays_is_the_distance_of_each_pair():
    import numpy as np

    lon1, lat1 = np.array([116.4, 121.47, 116.4]), np.array([39.9, 31.23, 39.9])
    lon2, lat2 = np.array([121.47, 116.4, 116.4]), np.array([31.23, 39.9, 39.9])
    got = haversine_m(lon1, lat1, lon2, lat2)
    assert isinstance(got, np.ndarray)
    assert list(got) == [haversine_m(*pair) for pair in zip(lon1, lat1, lon2, lat2, strict=True)]
