"""The role × endpoint matrix: every role sees exactly its own, and nothing else leaks."""

from __future__ import annotations

import pytest

from tests.factories import A1, A2, B1, C1, A, centre

# What each user may see: grids (and so households) by code.
VISIBLE = {
    "worker_a1": {A1},
    "worker_a2": {A2},
    "leader_a": {A1, A2},
    "admin_a": {A1, A2},
    "admin_b": {B1},
    "worker_b1": {B1},
    "viewer_110101": {A1, A2, B1},
    "viewer_110102": {C1},
}
ALL = {A1, A2, B1, C1}


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_grid_list_shows_exactly_the_users_grids(client, world, user):
    body = client.get("/api/v1/grids?page_size=100", headers=world.auth(user)).json
    assert {f["properties"]["code"] for f in body["features"]} == VISIBLE[user]


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_grid_by_id_is_404_outside_scope(client, world, user):
    for code in ALL:
        status = client.get(
            f"/api/v1/grids/{world.grids[code].id}", headers=world.auth(user)
        ).status_code
        assert status == (200 if code in VISIBLE[user] else 404), code


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_locate_only_finds_the_users_grids(client, world, user):
    for code in ALL:
        lon, lat = centre(code)
        status = client.get(
            f"/api/v1/grids/locate?lon={lon}&lat={lat}", headers=world.auth(user)
        ).status_code
        assert status == (200 if code in VISIBLE[user] else 404), code


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_household_list_shows_exactly_the_users_households(client, world, user):
    body = client.get("/api/v1/households?page_size=100", headers=world.auth(user)).json
    assert {h["grid_code"] for h in body} == VISIBLE[user]
    assert len(body) == 3 * len(VISIBLE[user])


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_household_by_id_is_404_outside_scope(client, world, user):
    for code in ALL:
        household = world.households[code][0]
        status = client.get(
            f"/api/v1/households/{household.id}", headers=world.auth(user)
        ).status_code
        assert status == (200 if code in VISIBLE[user] else 404), code


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_household_patch_is_allowed_only_in_scope_and_never_for_viewers(client, world, user):
    for code in ALL:
        household = world.households[code][0]
        status = client.patch(
            f"/api/v1/households/{household.id}", json={"members": 2}, headers=world.auth(user)
        ).status_code
        if code not in VISIBLE[user]:
            assert status == 404, code
        else:
            assert status == (403 if user.startswith("viewer") else 200), code


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_household_create_is_allowed_only_in_the_users_grids(client, world, user):
    for code in ALL:
        lon, lat = centre(code, dy=0.001)
        status = client.post(
            "/api/v1/households",
            json={"building": "x", "lon": lon, "lat": lat},
            headers=world.auth(user),
        ).status_code
        allowed = code in VISIBLE[user] and not user.startswith("viewer")
        assert status == (201 if allowed else 403), code


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_only_a_community_admin_of_that_community_may_change_its_grids(client, world, user):
    grid = world.grids[A1]
    status = client.patch(
        f"/api/v1/grids/{grid.id}", json={"name": "x"}, headers=world.auth(user)
    ).status_code
    if A1 not in VISIBLE[user]:
        assert status == 404
    else:
        assert status == (200 if user == "admin_a" else 403)


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_only_a_community_admin_may_create_grids_in_their_community(client, world, user):
    feature = {
        "type": "Feature",
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [
                    [116.40, 39.93],
                    [116.41, 39.93],
                    [116.41, 39.94],
                    [116.40, 39.94],
                    [116.40, 39.93],
                ]
            ],
        },
        "properties": {"code": A + "009", "name": "new"},
    }
    status = client.post("/api/v1/grids", json=feature, headers=world.auth(user)).status_code
    assert status == (201 if user == "admin_a" else 403)


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_only_a_community_admin_may_import_grids(client, world, user):
    feature = {
        "type": "Feature",
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [
                    [116.40, 39.93],
                    [116.41, 39.93],
                    [116.41, 39.94],
                    [116.40, 39.94],
                    [116.40, 39.93],
                ]
            ],
        },
        "properties": {"code": A + "009", "name": "new"},
    }
    status = client.post(
        "/api/v1/grids/import",
        json={"type": "FeatureCollection", "features": [feature]},
        headers=world.auth(user),
    ).status_code
    assert status == (200 if user == "admin_a" else 403)
