"""Locating many points at once: the grid each would get from GET /locate, within scope."""

from __future__ import annotations

from tests.factories import A1, A2, B1, centre

LOCATE = "/api/v1/grids/locate"


def locate_many(client, world, points, user="admin_a"):
    body = {"points": [{"lon": lon, "lat": lat} for lon, lat in points]}
    return client.post(LOCATE, json=body, headers=world.auth(user))


def test_each_point_gets_its_grid_in_order(client, world):
    points = [centre(A2), centre(A1), centre(A2)]
    response = locate_many(client, world, points)
    assert response.status_code == 200
    assert [r["grid_code"] for r in response.json["results"]] == [A2, A1, A2]
    assert [(r["lon"], r["lat"]) for r in response.json["results"]] == points


def test_each_point_agrees_with_locating_it_alone(client, world):
    points = [centre(A1), (116.405, 39.9225), centre(B1)]
    results = locate_many(client, world, points).json["results"]
    for (lon, lat), found in zip(points, results, strict=True):
        alone = client.get(f"{LOCATE}?lon={lon}&lat={lat}", headers=world.auth("admin_a"))
        if alone.status_code == 404:  # B1 is another community's
            assert found["grid_id"] is None
        else:
            assert alone.json["properties"]["code"] == found["grid_code"]
            assert alone.json["id"] == found["grid_id"]


def test_a_point_outside_every_grid_gets_nulls(client, world):
    results = locate_many(client, world, [(116.5, 39.5)]).json["results"]
    assert (results[0]["grid_id"], results[0]["grid_code"]) == (None, None)


def test_grids_the_caller_does_not_see_are_not_named(client, world):
    results = locate_many(client, world, [centre(A1), centre(B1)], user="worker_a1").json
    assert [r["grid_code"] for r in results["results"]] == [A1, None]


def test_bad_points_are_422_and_name_the_field(client, world):
    response = locate_many(client, world, [(200.0, 39.9)])
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_an_empty_or_oversized_list_is_422(client, world):
    assert locate_many(client, world, []).status_code == 422
    assert locate_many(client, world, [centre(A1)] * 1001).status_code == 422


def test_locating_needs_a_token(client, world):
    response = client.post(LOCATE, json={"points": [{"lon": 116.4, "lat": 39.9}]})
    assert response.status_code == 401


def test_a_point_on_a_border_with_another_community_gets_the_callers_own_grid(client, world):
    """As `GET /locate`: the lowest-coded grid of any community was found, then nulled as not
    the caller's, though the caller's own grid holds the point."""
    results = locate_many(client, world, [(116.41, 39.9225)], user="worker_b1").json["results"]
    assert results[0]["grid_code"] == B1
