"""Grids: GeoJSON in and out, geometry checks, versions, import, locate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from geoalchemy2.shape import to_shape
from shapely.geometry import MultiPolygon, Polygon, shape
from sqlalchemy import func, select

from api.models import Community, District, Grid, GridVersion, Street
from api.services.geometry import point_lonlat
from geo.datum import to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from tests.factories import A1, A2, B1, BOXES, A, B, box, centre, grid_feature, make_household

LOCATE = "/api/v1/grids/locate"


def admin(world):
    return world.auth("admin_a")


def import_grids(client, world, features, retire=None):
    """POST /grids/import of `features` as the community admin, retiring the codes `retire`."""
    body = {"type": "FeatureCollection", "features": features}
    if retire is not None:
        body["retire"] = retire
    return client.post("/api/v1/grids/import", json=body, headers=admin(world))


def test_create_grid_returns_a_feature_at_version_1(client, world):
    geometry = box(116.400, 39.925, 116.405, 39.930)
    response = client.post(
        "/api/v1/grids", json=grid_feature(A + "003", geometry, name="北三"), headers=admin(world)
    )
    assert response.status_code == 201
    body = response.json
    assert body["type"] == "Feature"
    assert body["properties"]["code"] == A + "003"
    assert body["properties"]["version"] == 1
    assert shape(body["geometry"]).equals(shape(geometry))


def test_create_grid_stores_a_polygon_as_a_multipolygon(client, world):
    geometry = box(116.400, 39.925, 116.405, 39.930)
    body = client.post(
        "/api/v1/grids", json=grid_feature(A + "003", geometry), headers=admin(world)
    ).json
    assert body["geometry"]["type"] == "MultiPolygon"


def test_importing_grids_creates_the_hierarchy_their_codes_imply(client, session, world):
    feature = grid_feature(
        "110105002003001",
        box(116.45, 39.92, 116.46, 39.93),
        name="X",
        community_name="团结湖社区",
        street_name="团结湖街道",
        district_name="朝阳区",
    )
    from api.services.grids import import_grids

    import_grids(session, None, {"type": "FeatureCollection", "features": [feature]})
    assert session.get(District, "110105").name == "朝阳区"
    assert session.get(Street, "110105002").name == "团结湖街道"
    assert session.get(Community, "110105002003").name == "团结湖社区"


def test_invalid_code_is_422_naming_the_field(client, world):
    response = client.post(
        "/api/v1/grids", json=grid_feature("11010100100100", box(1, 1, 2, 2)), headers=admin(world)
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "code" in response.json["errors"]["json"]["properties"]


def test_code_of_a_province_not_a_district_is_422(client, world):
    response = client.post(
        "/api/v1/grids",
        json=grid_feature("110000001001009", box(116.4, 39.93, 116.41, 39.94)),
        headers=admin(world),
    )
    assert response.status_code in (403, 422)


def test_self_intersecting_polygon_is_422_naming_where(client, world):
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[116.40, 39.93], [116.41, 39.94], [116.41, 39.93], [116.40, 39.94], [116.40, 39.93]]
        ],
    }
    response = client.post(
        "/api/v1/grids", json=grid_feature(A + "003", bowtie), headers=admin(world)
    )
    assert response.status_code == 422
    assert "intersection" in response.json["detail"].lower()


def test_unclosed_ring_is_422(client, world):
    ring = [[116.40, 39.93], [116.41, 39.93], [116.41, 39.94], [116.40, 39.94]]
    response = client.post(
        "/api/v1/grids",
        json=grid_feature(A + "003", {"type": "Polygon", "coordinates": [ring]}),
        headers=admin(world),
    )
    assert response.status_code == 422
    assert "geometry" in response.json["errors"]


def test_swapped_coordinates_are_422(client, world):
    swapped = box(39.93, 116.40, 39.94, 116.41)
    response = client.post(
        "/api/v1/grids", json=grid_feature(A + "003", swapped), headers=admin(world)
    )
    assert response.status_code == 422
    assert "swap" in response.json["detail"].lower()


def test_overlap_with_a_grid_of_the_same_community_is_422_naming_it(client, world):
    overlapping = box(116.404, 39.921, 116.4045, 39.924)
    response = client.post(
        "/api/v1/grids", json=grid_feature(A + "003", overlapping), headers=admin(world)
    )
    assert response.status_code == 422
    assert A1 in response.json["detail"]
    assert response.json["errors"][0]["other_grid"] == A1


def test_sharing_a_border_is_not_an_overlap(client, world):
    north = box(116.400, 39.925, 116.405, 39.930)
    response = client.post(
        "/api/v1/grids", json=grid_feature(A + "003", north), headers=admin(world)
    )
    assert response.status_code == 201


def test_duplicate_code_is_409(client, world):
    response = client.post(
        "/api/v1/grids",
        json=grid_feature(A1, box(116.4, 39.93, 116.41, 39.94)),
        headers=admin(world),
    )
    assert response.status_code == 409


def test_drawing_a_grid_with_a_retired_grids_code_is_409_saying_it_was_retired_and_how_back(
    client, world
):
    """It said "already exists" of a grid no list, read or lookup finds (a 404 by its id)."""
    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930))
    created = client.post("/api/v1/grids", json=feature, headers=admin(world)).json
    assert client.delete(f"/api/v1/grids/{created['id']}", headers=admin(world)).status_code == 204
    response = client.post("/api/v1/grids", json=feature, headers=admin(world))
    assert response.status_code == 409
    assert "retired" in response.json["detail"]
    assert "/api/v1/grids/import" in response.json["detail"]


def test_a_bad_request_writes_nothing(client, session, world):
    before = session.scalar(select(GridVersion.id).order_by(GridVersion.id.desc()).limit(1))
    client.post(
        "/api/v1/grids",
        json=grid_feature(A + "003", box(116.404, 39.921, 116.4045, 39.924)),
        headers=admin(world),
    )
    after = session.scalar(select(GridVersion.id).order_by(GridVersion.id.desc()).limit(1))
    assert before == after


def test_list_is_a_paginated_feature_collection(client, world):
    response = client.get("/api/v1/grids?page_size=1", headers=admin(world))
    assert response.status_code == 200
    assert response.json["type"] == "FeatureCollection"
    assert len(response.json["features"]) == 1
    assert '"total": 2' in response.headers["X-Pagination"]


def test_list_filters_by_bbox(client, world):
    lon0, lat0, lon1, lat1 = BOXES[A2]
    bbox = f"{lon0 + 0.001},{lat0 + 0.001},{lon1 - 0.001},{lat1 - 0.001}"
    body = client.get(f"/api/v1/grids?bbox={bbox}", headers=admin(world)).json
    assert [f["properties"]["code"] for f in body["features"]] == [A2]


def test_bad_bbox_is_422(client, world):
    response = client.get("/api/v1/grids?bbox=1,2,3", headers=admin(world))
    assert response.status_code == 422
    assert "bbox" in response.json["errors"]["query"]


def test_list_filters_by_community(client, world):
    headers = world.auth("viewer_110101")
    body = client.get(f"/api/v1/grids?community={A}", headers=headers).json
    assert {f["properties"]["code"] for f in body["features"]} == {A1, A2}


def test_get_one_grid_counts_its_households(client, world):
    grid = world.grids[A1]
    body = client.get(f"/api/v1/grids/{grid.id}", headers=admin(world)).json
    assert body["properties"]["households"] == 3


def test_patch_renames(client, world):
    grid = world.grids[A1]
    body = client.patch(
        f"/api/v1/grids/{grid.id}", json={"name": "新名"}, headers=admin(world)
    ).json
    assert body["properties"]["name"] == "新名"
    assert body["properties"]["version"] == 1


def test_a_grid_name_with_a_control_character_is_422_and_creates_nothing(client, session, world):
    """A name goes into the reports' XLSX, which refuses control characters."""
    before = session.scalar(select(func.count(Grid.id)))
    for props in (
        {"name": "北\x07三"},
        {"name": "北三", "community_name": "X\x1b"},
        {"name": "\u202e北三"},  # a bidi override: shown as 三北
    ):
        feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930), **props)
        r = client.post("/api/v1/grids", json=feature, headers=admin(world))
        assert r.status_code == 422, r.json
        assert r.mimetype == "application/problem+json"
    assert session.scalar(select(func.count(Grid.id))) == before


def test_renaming_a_grid_with_a_control_character_is_422_and_keeps_its_name(client, session, world):
    grid = world.grids[A1]
    name = grid.name
    r = client.patch(f"/api/v1/grids/{grid.id}", json={"name": "新\x07名"}, headers=admin(world))
    assert r.status_code == 422
    assert "name" in r.json["errors"]["json"]
    session.refresh(grid)
    assert grid.name == name


def test_the_grid_service_refuses_a_control_character_in_a_name(session, world):
    """The rule holds below the HTTP schema too (the CLI and imports call the service)."""
    from api import errors
    from api.services.grids import update_grid

    with pytest.raises(errors.Unprocessable):
        update_grid(session, None, world.grids[A1], {"name": "新\x07名"})


def test_redrawing_keeps_the_old_version_with_its_period(client, session, world):
    grid = world.grids[A1]
    bigger = box(116.399, 39.920, 116.405, 39.925)
    body = client.patch(
        f"/api/v1/grids/{grid.id}", json={"geometry": bigger}, headers=admin(world)
    ).json
    assert body["properties"]["version"] == 2
    versions = session.scalars(
        select(GridVersion).where(GridVersion.grid_id == grid.id).order_by(GridVersion.version)
    ).all()
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].valid_to == versions[1].valid_from
    assert versions[1].valid_to is None
    from geoalchemy2.shape import to_shape

    assert to_shape(versions[0].boundary).equals(shape(box(*BOXES[A1])))


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"leader_id": {"a": 1}}, "leader_id"),
        ({"leader_id": [1, 2]}, "leader_id"),
        ({"leader_id": True}, "leader_id"),
        ({"name": {"x": 1}}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"target_households": 1_000_000}, "target_households"),
        ({"community_name": ["A"]}, "community_name"),
        ({"name": "一\x07网格"}, "name"),
        ({"community_name": "A\x1b社区"}, "community_name"),
        ({"street_name": "街道\x00"}, "street_name"),
    ],
)
def test_an_imported_grids_properties_are_checked_as_a_single_grids_are(
    client, session, world, props, field
):
    """They were taken as they came: a 500 in the leader lookup, or a dict stored as a name."""
    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930))
    feature["properties"].update(props)
    before = session.scalar(select(func.count(Grid.id)))
    r = import_grids(client, world, [feature])
    assert r.status_code == 422
    assert field in r.json["errors"][0]["errors"]
    assert session.scalar(select(func.count(Grid.id))) == before


def a_border_at(lon: float, west: float = 116.400) -> dict:
    """A1 and A2 redrawn with the border between them at `lon` (A1's west side at `west`)."""
    return {
        "type": "FeatureCollection",
        "features": [
            grid_feature(A1, box(west, 39.920, lon, 39.925)),
            grid_feature(A2, box(lon, 39.920, 116.410, 39.925)),
        ],
    }


def test_redrawing_moves_households_to_the_grid_that_now_holds_them(client, session, world):
    moved = world.households[A1][2]  # the easternmost of A1's three households
    body = client.post(
        "/api/v1/grids/import", json=a_border_at(116.4032), headers=admin(world)
    ).json
    assert sorted(body["redrawn"]) == [A1, A2]
    household = client.get(f"/api/v1/households/{moved.id}", headers=admin(world)).json
    assert household["grid_code"] == A2


def test_redraw_that_would_orphan_households_is_422_and_changes_nothing(client, session, world):
    grid = world.grids[A1]
    response = client.patch(
        f"/api/v1/grids/{grid.id}",
        json={"geometry": box(116.400, 39.920, 116.401, 39.921)},
        headers=admin(world),
    )
    assert response.status_code == 422
    assert "outside every grid" in response.json["detail"]
    session.expire_all()
    assert session.get(type(grid), grid.id).version == 1


def test_a_redraw_that_orphans_a_household_on_a_slanted_border_is_422(client, session, world):
    """A household exactly on a grid's slanted edge, left outside by the redraw: the union of
    the old and new boundaries, made to find the households a redraw touches, nodes that edge
    where the new boundary crosses it and missed the household, which stayed in a grid that
    no longer held it, outside every grid."""
    slanted = {
        "type": "Polygon",
        "coordinates": [
            [[116.400, 39.930], [116.410, 39.930], [116.410, 39.940], [116.407, 39.940],
             [116.400, 39.930]]
        ],
    }  # fmt: skip
    created = client.post(
        "/api/v1/grids", json=grid_feature(A + "003", slanted), headers=admin(world)
    )
    assert created.status_code == 201
    on_edge = make_household(session, 116.401666, 39.93238)
    assert on_edge.grid_id == created.json["id"]
    response = client.patch(
        f"/api/v1/grids/{created.json['id']}",
        json={"geometry": box(116.4019, 39.930, 116.410, 39.940)},
        headers=admin(world),
    )
    assert response.status_code == 422
    assert "outside every grid" in response.json["detail"]
    assert response.json["errors"]["household_ids"] == [on_edge.id]


def test_a_grid_larger_than_the_limit_is_422_naming_the_geometry(client, world):
    """A grid could be drawn over half of China; by the overlap check no other community
    could then draw a grid anywhere under it."""
    response = client.post(
        "/api/v1/grids",
        json=grid_feature(A + "003", box(74.0, 4.0, 135.0, 39.5)),
        headers=admin(world),
    )
    assert response.status_code == 422
    assert "km²" in response.json["errors"]["geometry"][0]


def test_a_grid_redrawn_larger_than_the_limit_is_422_naming_the_geometry(app, client, world):
    app.config["GRID_MAX_AREA_KM2"] = 0.1  # A1 is 0.24 km²
    response = client.patch(
        f"/api/v1/grids/{world.grids[A1].id}",
        json={"geometry": box(*BOXES[A1])},
        headers=admin(world),
    )
    assert response.status_code == 422
    assert "0.1 km²" in response.json["errors"]["geometry"][0]


def test_delete_refuses_a_grid_with_households(client, world):
    response = client.delete(f"/api/v1/grids/{world.grids[A1].id}", headers=admin(world))
    assert response.status_code == 409


def test_delete_retires_an_empty_grid(client, world):
    created = client.post(
        "/api/v1/grids",
        json=grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930)),
        headers=admin(world),
    ).json
    assert client.delete(f"/api/v1/grids/{created['id']}", headers=admin(world)).status_code == 204
    assert client.get(f"/api/v1/grids/{created['id']}", headers=admin(world)).status_code == 404


def _led_grid_retired(client, session, world, username):
    """A new grid of A led by a new grid leader `username`, then retired: (grid id, leader)."""
    from tests.factories import make_user

    leader = make_user(session, username, "grid_leader", community=A)
    session.flush()
    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930), leader_id=leader.id)
    created = client.post("/api/v1/grids", json=feature, headers=admin(world)).json
    assert client.delete(f"/api/v1/grids/{created['id']}", headers=admin(world)).status_code == 204
    return created["id"], leader


def test_retiring_a_grid_ends_its_leadership_at_the_retirement(client, session, world):
    """The leadership period (grid_leaderships) stayed open and `leader_id` stayed set: the
    leader led a grid off the map for ever after, in every later day's held grids."""
    from api.models import GridLeadership

    grid_id, leader = _led_grid_retired(client, session, world, "leader_a_5")
    grid = session.get(Grid, grid_id)
    session.refresh(grid)
    periods = session.scalars(select(GridLeadership).where(GridLeadership.grid_id == grid_id)).all()
    assert grid.leader_id is None
    assert [(p.user_id, p.ended_at) for p in periods] == [(leader.id, grid.retired_at)]


def test_a_retired_grid_is_not_in_its_old_leaders_scope(client, session, world):
    """The retired grid stayed among the leader's grids (their scope, read with the token)."""
    from api.models import User
    from api.scope import Scope
    from api.services import sessions

    grid_id, leader = _led_grid_retired(client, session, world, "leader_a_6")
    user = session.get(User, leader.id)
    _, _, grids = sessions.token_state(session, None, None, leader.id)
    assert grid_id not in Scope.for_user(session, user).grid_ids
    assert grid_id not in Scope.for_user(session, user, grids).grid_ids


def test_a_grid_retired_still_naming_its_leader_is_not_in_their_scope(client, session, world):
    """A grid retired before retirement cleared its leader (migration 0064 clears them) kept
    `leader_id`, and the scope counted every grid the user is named leader of, retired too."""
    from api.models import User
    from api.scope import Scope
    from api.services import sessions
    from tests.factories import make_user

    leader = make_user(session, "leader_a_7", "grid_leader", community=A)
    session.flush()
    grid = session.get(Grid, world.grids[A1].id)
    grid.leader_id = leader.id
    grid.retired_at = datetime(2026, 1, 5, tzinfo=UTC)
    session.flush()
    _, _, grids = sessions.token_state(session, None, None, leader.id)
    assert grids.led == ()
    assert grid.id not in Scope.for_user(session, session.get(User, leader.id)).grid_ids


def test_a_retired_grid_imported_again_is_led_again_by_its_leader_who_still_may(
    client, session, world
):
    """Retirement ends the leadership; a grid brought back without a `leader_id` is led again
    by the leader it had when it was retired, as long as they may still lead it."""
    from api.models import GridLeadership

    grid_id, leader = _led_grid_retired(client, session, world, "leader_a_8")
    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930))
    r = import_grids(client, world, [feature])
    assert r.status_code == 200, r.json
    back = client.get(f"/api/v1/grids/{grid_id}", headers=admin(world)).json
    assert back["properties"]["leader_id"] == leader.id
    periods = session.scalars(
        select(GridLeadership)
        .where(GridLeadership.grid_id == grid_id)
        .order_by(GridLeadership.started_at)
    ).all()
    assert [(p.user_id, p.ended_at is None) for p in periods] == [
        (leader.id, False),
        (leader.id, True),
    ]


def test_a_retired_grid_imported_again_begins_a_new_version_and_is_reported_again(
    client, session, world
):
    """Its boundary unchanged, it had no current version: it vanished from every later report."""
    from api.services import reports
    from api.services.weeks import current_week, shift_week

    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930))
    created = client.post("/api/v1/grids", json=feature, headers=admin(world)).json
    assert client.delete(f"/api/v1/grids/{created['id']}", headers=admin(world)).status_code == 204
    r = import_grids(client, world, [feature])
    assert r.status_code == 200 and r.json["redrawn"] == [A + "003"]
    versions = session.scalars(
        select(GridVersion)
        .where(GridVersion.grid_id == created["id"])
        .order_by(GridVersion.version)
    ).all()
    assert [(v.version, v.valid_to is None) for v in versions] == [(1, False), (2, True)]
    assert versions[1].valid_from >= versions[0].valid_to
    next_week = shift_week(current_week(), 1)
    selection = reports.select_scope(session, None, next_week, community=A)
    assert created["id"] in selection.grid_ids
    assert client.get(f"/api/v1/grids/{created['id']}", headers=admin(world)).status_code == 200


def test_a_retired_grid_imported_again_does_not_bring_back_a_leader_who_may_no_longer_lead_it(
    client, session, world
):
    """Its leader was made a worker while it was retired (allowed: a retired grid is led by
    nobody in service); imported again, the grid came back led by that worker, who hears its
    escalations and cannot act on them."""
    from tests.factories import make_user

    leader = make_user(session, "leader_a_3", "grid_leader", community=A)
    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930), leader_id=leader.id)
    created = client.post("/api/v1/grids", json=feature, headers=admin(world)).json
    assert created["properties"]["leader_id"] == leader.id
    assert client.delete(f"/api/v1/grids/{created['id']}", headers=admin(world)).status_code == 204
    made_worker = client.patch(
        f"/api/v1/users/{leader.id}", json={"role": "worker"}, headers=admin(world)
    )
    assert made_worker.status_code == 200, made_worker.json
    del feature["properties"]["leader_id"]
    r = import_grids(client, world, [feature])
    assert r.status_code == 200, r.json
    back = client.get(f"/api/v1/grids/{created['id']}", headers=admin(world)).json
    assert back["properties"]["leader_id"] is None


def test_a_retired_grid_imported_again_is_led_by_the_leader_its_feature_names(
    client, session, world
):
    from tests.factories import make_user

    successor = make_user(session, "leader_a_4", "grid_leader", community=A)
    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930))
    created = client.post("/api/v1/grids", json=feature, headers=admin(world)).json
    assert client.delete(f"/api/v1/grids/{created['id']}", headers=admin(world)).status_code == 204
    feature["properties"]["leader_id"] = successor.id
    r = import_grids(client, world, [feature])
    assert r.status_code == 200, r.json
    back = client.get(f"/api/v1/grids/{created['id']}", headers=admin(world)).json
    assert back["properties"]["leader_id"] == successor.id


def test_import_is_all_or_nothing_and_names_each_bad_feature(client, session, world):
    good = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930))
    bad_code = grid_feature("12345", box(116.405, 39.925, 116.410, 39.930))
    bad_geom = grid_feature(A + "005", {"type": "Polygon", "coordinates": [[[116.4, 39.93]]]})
    response = client.post(
        "/api/v1/grids/import",
        json={"type": "FeatureCollection", "features": [good, bad_code, bad_geom]},
        headers=admin(world),
    )
    assert response.status_code == 422
    assert [e["feature"] for e in response.json["errors"]] == [1, 2]
    assert (
        client.get("/api/v1/grids/locate?lon=116.402&lat=39.927", headers=admin(world)).status_code
        == 404
    )


def test_import_twice_changes_nothing_the_second_time(client, world):
    collection = {
        "type": "FeatureCollection",
        "features": [grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930))],
    }
    first = client.post("/api/v1/grids/import", json=collection, headers=admin(world)).json
    second = client.post("/api/v1/grids/import", json=collection, headers=admin(world)).json
    assert first["created"] == [A + "003"]
    assert second["unchanged"] == [A + "003"]


def test_import_redraws_a_known_code(client, world):
    collection = {
        "type": "FeatureCollection",
        "features": [grid_feature(A1, box(116.3995, 39.920, 116.405, 39.925))],
    }
    body = client.post("/api/v1/grids/import", json=collection, headers=admin(world)).json
    assert body["redrawn"] == [A1]


def test_an_import_counts_the_households_that_changed_grid_only(client, session, world):
    """A redraw re-places the households of the area it touches: only those whose grid changed
    are counted (and written); the rest stay as they were."""
    from api.models import Household

    west = {
        "type": "FeatureCollection",
        "features": [grid_feature(A1, box(116.3995, 39.920, 116.405, 39.925))],
    }
    body = client.post("/api/v1/grids/import", json=west, headers=admin(world)).json
    assert (body["redrawn"], body["households_moved"]) == ([A1], 0)
    # The A1 | A2 border moves east past A2's first household (at 116.4075).
    border = a_border_at(116.4078, west=116.3995)
    body = client.post("/api/v1/grids/import", json=border, headers=admin(world)).json
    assert body["households_moved"] == 1
    moved = world.households[A2][0]
    session.expire_all()
    assert session.get(Household, moved.id).grid_id == world.grids[A1].id


def test_an_import_naming_another_leader_for_a_known_grid_makes_them_its_leader(
    client, session, world
):
    """The leader_id of a known code was dropped without a word (its name and target were
    taken): a file exported from GET /grids, its leaders changed, imported back, was
    "unchanged" and every grid kept its old leader."""
    from tests.factories import make_user

    successor = make_user(session, "leader_a_5", "grid_leader", community=A)
    feature = grid_feature(A1, box(*BOXES[A1]), leader_id=successor.id)
    r = import_grids(client, world, [feature])
    assert r.status_code == 200, r.json
    back = client.get(f"/api/v1/grids/{world.grids[A1].id}", headers=admin(world)).json
    assert back["properties"]["leader_id"] == successor.id


def test_an_import_without_a_leader_id_keeps_a_known_grids_leader(client, world):
    feature = grid_feature(A1, box(*BOXES[A1]))
    r = import_grids(client, world, [feature])
    assert r.status_code == 200, r.json
    back = client.get(f"/api/v1/grids/{world.grids[A1].id}", headers=admin(world)).json
    assert back["properties"]["leader_id"] == world.users["leader_a"].id


def test_an_import_naming_a_worker_leader_of_a_known_grid_is_422_naming_the_feature(
    client, session, world
):
    feature = grid_feature(A1, box(*BOXES[A1]), leader_id=world.users["worker_a1"].id)
    r = import_grids(client, world, [feature])
    assert r.status_code == 422, r.json
    assert "feature 0" in r.json["detail"] and "leader_id" in r.json["errors"]
    session.expire_all()
    assert session.get(Grid, world.grids[A1].id).leader_id == world.users["leader_a"].id


def test_two_grids_holding_households_are_merged_in_one_import(client, session, world):
    """A grid holding households could not be retired (409: "redraw its neighbours to take them
    in"), and no neighbour could be redrawn to take them in while it stood (an overlap, 422):
    merging two grids took a contortion (shrink one to an empty corner, retire it, fill the
    corner). An import now retires the codes it lists in `retire` as it redraws the rest."""
    from api.models import Household

    both = grid_feature(A1, box(116.400, 39.920, 116.410, 39.925))
    r = import_grids(client, world, [both], retire=[A2])
    assert r.status_code == 200, r.json
    assert (r.json["redrawn"], r.json["retired"]) == ([A1], [A2])
    assert r.json["households_moved"] == len(world.households[A2])
    session.expire_all()
    a2 = session.get(Grid, world.grids[A2].id)
    assert a2.retired_at is not None
    assert all(v.valid_to is not None for v in a2.versions)
    homes = [session.get(Household, h.id).grid_id for h in world.households[A2]]
    assert homes == [world.grids[A1].id] * len(homes)


def _removed(session, lon, lat, room):
    """A household at (lon, lat) taken out of the register (moved out) today."""
    from api import clock
    from api.services import household_removal

    home = make_household(session, lon, lat, room=room)
    session.flush()
    household_removal.remove_household(session, None, home, reason="moved_out", now=clock.now())
    session.flush()
    return home


def test_a_grid_is_redrawn_away_from_a_household_out_of_the_register(client, session, world):
    """A removed household was counted as one the redraw would leave outside every grid: a
    grid could not be shrunk off a demolished block (422)."""
    from api.models import Household

    home = _removed(session, 116.4025, 39.9245, room="999")
    r = client.patch(
        f"/api/v1/grids/{world.grids[A1].id}",
        json={"geometry": box(116.400, 39.920, 116.405, 39.924)},
        headers=admin(world),
    )
    assert r.status_code == 200, r.json
    session.expire_all()
    assert session.get(Household, home.id).grid_id == world.grids[A1].id


def test_another_community_draws_over_a_retired_grid_whose_household_was_removed(
    client, session, world
):
    """The removed household of a retired grid was "taken" by the new grid: another
    community's grid over the retired one's area was refused as taking its households."""
    from api.models import Household

    created = client.post(
        "/api/v1/grids",
        json=grid_feature(A + "003", box(116.420, 39.920, 116.425, 39.925)),
        headers=admin(world),
    ).json
    home = _removed(session, 116.4225, 39.9225, room="777")
    assert client.delete(f"/api/v1/grids/{created['id']}", headers=admin(world)).status_code == 204
    r = client.post(
        "/api/v1/grids",
        json=grid_feature(B + "002", box(116.420, 39.920, 116.425, 39.925)),
        headers=world.auth("admin_b"),
    )
    assert r.status_code == 201, r.json
    session.expire_all()
    assert session.get(Household, home.id).grid_id == created["id"]


def test_a_merge_leaves_a_removed_household_with_the_grid_it_left(client, session, world):
    """A merge moved the retired grid's removed households to the grid drawn over it, as if
    they had lived there: the history of where they were counted was rewritten."""
    from api.models import Household

    home = _removed(session, *centre(A2, dy=0.001), room="888")
    r = import_grids(
        client, world, [grid_feature(A1, box(116.400, 39.920, 116.410, 39.925))], retire=[A2]
    )
    assert r.status_code == 200, r.json
    assert r.json["households_moved"] == len(world.households[A2])
    session.expire_all()
    assert session.get(Household, home.id).grid_id == world.grids[A2].id


def test_a_grid_holding_households_is_renumbered_in_one_import(client, session, world):
    """The new code drawn over the old one's boundary, the old code retired: its households
    follow (a retired code stays its own, for past reports)."""
    from api.models import Household

    r = import_grids(client, world, [grid_feature(A + "009", box(*BOXES[A2]))], retire=[A2])
    assert r.status_code == 200, r.json
    assert (r.json["created"], r.json["retired"]) == ([A + "009"], [A2])
    session.expire_all()
    new = session.scalar(select(Grid).where(Grid.code == A + "009"))
    homes = {session.get(Household, h.id).grid_id for h in world.households[A2]}
    assert homes == {new.id}


def test_an_import_retiring_a_grid_whose_households_no_grid_takes_is_422_and_changes_nothing(
    client, session, world
):
    r = import_grids(client, world, [grid_feature(A1, box(*BOXES[A1]))], retire=[A2])
    assert r.status_code == 422, r.json
    assert "outside every grid" in r.json["detail"]
    session.expire_all()
    assert session.get(Grid, world.grids[A2].id).retired_at is None


def test_an_import_retiring_a_grid_holding_an_open_task_is_409(app, client, session, world):
    from tests.factories import make_task

    make_task(session, A2, now=datetime.now(UTC))
    both = grid_feature(A1, box(116.400, 39.920, 116.410, 39.925))
    r = import_grids(client, world, [both], retire=[A2])
    assert r.status_code == 409, r.json
    assert "open task" in r.json["detail"]


def test_an_import_retiring_a_code_it_also_draws_is_422(client, world):
    r = import_grids(client, world, [grid_feature(A1, box(*BOXES[A1]))], retire=[A1])
    assert r.status_code == 422, r.json


def test_locate_finds_the_containing_grid(client, world):
    lon, lat = centre(A2)
    body = client.get(f"/api/v1/grids/locate?lon={lon}&lat={lat}", headers=admin(world)).json
    assert body["properties"]["code"] == A2


def test_locate_on_a_shared_border_picks_the_lowest_code(client, world):
    response = client.get("/api/v1/grids/locate?lon=116.405&lat=39.9225", headers=admin(world))
    assert response.json["properties"]["code"] == A1


def test_locate_on_a_border_with_another_community_finds_the_callers_own_grid(client, world):
    """The lowest-coded grid of any community was found first, then refused as not the
    caller's: a worker of B1 on its border with A2 was told no grid of theirs holds it."""
    response = client.get(f"{LOCATE}?lon=116.41&lat=39.9225", headers=world.auth("worker_b1"))
    assert response.status_code == 200, response.json
    assert response.json["properties"]["code"] == B1


def test_locate_outside_every_grid_is_404(client, world):
    response = client.get("/api/v1/grids/locate?lon=116.5&lat=39.5", headers=admin(world))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_locate_in_a_hole_finds_no_grid(client, world):
    ring = [
        [116.420, 39.920],
        [116.430, 39.920],
        [116.430, 39.930],
        [116.420, 39.930],
        [116.420, 39.920],
    ]
    hole = [
        [116.424, 39.924],
        [116.424, 39.926],
        [116.426, 39.926],
        [116.426, 39.924],
        [116.424, 39.924],
    ]
    headers = world.auth("admin_b")
    created = client.post(
        "/api/v1/grids",
        json=grid_feature(B + "002", {"type": "Polygon", "coordinates": [ring, hole]}),
        headers=headers,
    )
    assert created.status_code == 201
    assert (
        client.get("/api/v1/grids/locate?lon=116.425&lat=39.925", headers=headers).status_code
        == 404
    )
    assert (
        client.get("/api/v1/grids/locate?lon=116.421&lat=39.921", headers=headers).json[
            "properties"
        ]["code"]
        == B + "002"
    )


def test_multipolygon_parts_are_both_located(client, world):
    parts = {
        "type": "MultiPolygon",
        "coordinates": [
            box(116.420, 39.920, 116.422, 39.922)["coordinates"],
            box(116.426, 39.920, 116.428, 39.922)["coordinates"],
        ],
    }
    headers = world.auth("admin_b")
    assert (
        client.post(
            "/api/v1/grids", json=grid_feature(B + "002", parts), headers=headers
        ).status_code
        == 201
    )
    for lon in (116.421, 116.427):
        found = client.get(f"/api/v1/grids/locate?lon={lon}&lat=39.921", headers=headers).json
        assert found["properties"]["code"] == B + "002"


def b_draws_north_of_a2(client, world, south: float):
    """Community B's office draws a grid reaching down to `south` (A2's top edge: 39.925)."""
    return client.post(
        "/api/v1/grids",
        json=grid_feature(B + "002", box(116.408, south, 116.409, 39.926)),
        headers=world.auth("admin_b"),
    )


def test_a_grid_overlapping_another_communitys_grid_is_422_naming_it(client, world):
    # Communities do not overlap either: B's office may not draw over A2.
    response = b_draws_north_of_a2(client, world, south=39.923)
    assert response.status_code == 422
    assert response.json["errors"][0]["other_grid"] == A2


def test_a_grid_of_another_community_may_share_a_border(client, world):
    assert b_draws_north_of_a2(client, world, south=39.925).status_code == 201


def test_a_tiny_grid_around_another_communitys_household_cannot_take_it(client, session, world):
    """The overlap tolerance (1 m², for border slivers) let a grid of 0.2 m² be drawn around one
    of B1's households, which then went to it, the lowest-coded grid covering it."""
    home = world.households[B1][0]
    lon, lat = point_lonlat(home.location)
    d = 0.000005
    tiny = grid_feature(A + "003", box(lon - d, lat - d, lon + d, lat + d))
    created = client.post("/api/v1/grids", json=tiny, headers=admin(world))
    imported = client.post(
        "/api/v1/grids/import",
        json={"type": "FeatureCollection", "features": [tiny]},
        headers=admin(world),
    )
    assert [r.status_code for r in (created, imported)] == [422, 422]
    assert f"overlaps grid {B1}" in created.json["detail"]  # all of it lies in B1: no sliver
    session.refresh(home)
    assert home.grid_id == world.grids[B1].id
    assert client.get(f"/api/v1/households/{home.id}", headers=admin(world)).status_code == 404


def test_a_tiny_grid_inside_another_communitys_grid_is_refused_away_from_its_households(
    client, world
):
    """A grid of 0.6 m² drawn inside B1, 10 m from any household, overlapped it by less than
    the tolerance and was created: the points under it then went to community A (the lowest
    code wins), and B's own workers were refused there. An overlap is a sliver only when it is
    a small share of the smaller grid too."""
    lon, lat = centre(B1, dy=0.0001)
    d = 0.0000035
    tiny = grid_feature(A + "003", box(lon - d, lat - d, lon + d, lat + d))
    created = client.post("/api/v1/grids", json=tiny, headers=admin(world))
    assert created.status_code == 422
    assert created.json["errors"][0]["other_grid"] == B1
    listed = client.get("/api/v1/grids?page_size=1000", headers=admin(world)).json
    assert A + "003" not in {f["properties"]["code"] for f in listed["features"]}


def test_a_refused_move_between_communities_names_none_of_the_other_communitys_households(
    client, world
):
    """A redraw of A2 with a thin spike (0.5 m², a sliver by the rules) reaching a household of
    B1 would hand it to A2: refused, without naming it (A's admin may not read it)."""
    home = world.households[B1][0]
    hx, hy = point_lonlat(home.location)
    e = 1e-8
    ring = [
        [116.405, 39.920],
        [116.410, 39.920],
        [116.410, hy - e],
        [hx + 1e-7, hy - e],
        [hx + 1e-7, hy + e],
        [116.410, hy + e],
        [116.410, 39.925],
        [116.405, 39.925],
        [116.405, 39.920],
    ]
    spike = grid_feature(A2, {"type": "Polygon", "coordinates": [ring]})
    refused = client.post(
        "/api/v1/grids/import",
        json={"type": "FeatureCollection", "features": [spike]},
        headers=admin(world),
    )
    assert refused.status_code == 422
    assert "another community" in refused.json["detail"]
    assert str(home.id) not in refused.get_data(as_text=True)


def test_an_import_feature_whose_properties_are_not_an_object_is_named(client, world):
    feature = {**grid_feature(A + "003", box(116.40, 39.93, 116.401, 39.931)), "properties": ["x"]}
    response = client.post(
        "/api/v1/grids/import",
        json={"type": "FeatureCollection", "features": [feature]},
        headers=admin(world),
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["feature"] == 0


def test_drawing_over_another_community_cannot_take_its_households(client, session, world):
    """A grid drawn (or redrawn, or imported) over B1 would have been handed B1's households,
    as a household goes to the lowest-coded grid that covers it: it is refused instead."""
    over_b1 = box(*BOXES[B1])
    created = client.post(
        "/api/v1/grids", json=grid_feature(A + "003", over_b1), headers=admin(world)
    )
    redrawn = client.patch(
        f"/api/v1/grids/{world.grids[A2].id}",
        json={"geometry": box(116.405, 39.920, 116.415, 39.925)},
        headers=admin(world),
    )
    imported = client.post(
        "/api/v1/grids/import",
        json={"type": "FeatureCollection", "features": [grid_feature(A + "003", over_b1)]},
        headers=admin(world),
    )
    assert [r.status_code for r in (created, redrawn, imported)] == [422, 422, 422]
    for household in world.households[B1]:
        session.refresh(household)
        assert household.grid_id == world.grids[B1].id
    mine = client.get(f"/api/v1/households?grid={B1}", headers=world.auth("admin_b")).json
    assert len(mine) == len(world.households[B1])


def test_a_leader_id_beyond_any_user_id_is_422_naming_the_field(client, world):
    """PATCH took any integer: 2**40 reached the database, answered as "a value is out of range
    or malformed" naming no field (POST and import check the range)."""
    response = client.patch(
        f"/api/v1/grids/{world.grids[A1].id}", json={"leader_id": 2**40}, headers=admin(world)
    )
    assert response.status_code == 422
    assert "leader_id" in response.json["errors"]["json"]


INVISIBLE_NAMES = ["幸福\u200b里", "\ufeff幸福里", "幸福\u2060里"]


@pytest.mark.parametrize("name", INVISIBLE_NAMES)
def test_an_imported_grid_name_holding_an_invisible_character_is_422_naming_feature_and_field(
    client, session, world, name
):
    """A zero-width space, a word joiner or a BOM makes a name that reads as 幸福里 another
    name (searched, sorted, compared in reports): refused, saying which character, not stored."""
    before = session.scalar(select(func.count(Grid.id)))
    feature = grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930), name=name)
    response = client.post(
        "/api/v1/grids/import",
        json={"type": "FeatureCollection", "features": [feature]},
        headers=admin(world),
    )
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert error["feature"] == 0
    assert "invisible" in str(error)
    assert "name" in str(error)
    assert session.scalar(select(func.count(Grid.id))) == before


@pytest.mark.parametrize("name", INVISIBLE_NAMES)
def test_renaming_a_grid_with_an_invisible_character_is_422_naming_the_field(
    client, session, world, name
):
    grid = world.grids[A1]
    before = grid.name
    r = client.patch(f"/api/v1/grids/{grid.id}", json={"name": name}, headers=admin(world))
    assert r.status_code == 422, r.json
    assert "invisible" in str(r.json["errors"]["json"]["name"])
    session.refresh(grid)
    assert grid.name == before


def test_a_grid_name_may_hold_the_joiners_a_script_or_an_emoji_needs(client, world):
    """U+200C and U+200D shape Persian and Indic words and join emoji: not invisible noise."""
    grid = world.grids[A1]
    for name in ("می\u200cخواهم", "网格\U0001f468\u200d\U0001f469\u200d\U0001f467"):
        r = client.patch(f"/api/v1/grids/{grid.id}", json={"name": name}, headers=admin(world))
        assert r.status_code == 200, r.json
        assert r.json["properties"]["name"] == name


# Datums: a grid drawn on an Amap/Tencent (GCJ-02) or Baidu (BD-09) map, ~300-600 m off WGS-84.

NORTH = (116.400, 39.930, 116.405, 39.935)  # north of A1, clear of every grid of the world


def drawn_in(datum: str, lon0: float, lat0: float, lon1: float, lat1: float) -> dict:
    """The WGS-84 box as a map in `datum` draws it: each vertex converted."""
    convert = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}[datum]
    ring = box(lon0, lat0, lon1, lat1)["coordinates"][0]
    return {"type": "Polygon", "coordinates": [[list(convert(x, y)) for x, y in ring]]}


def in_wgs84(geometry: dict, datum: str):
    """geo's own conversion of every vertex of `geometry` to WGS-84, as a shape."""
    ring = geometry["coordinates"][0]
    return Polygon([to_wgs84(x, y, datum) for x, y in ring])


def stored(session, code: str):
    return to_shape(session.scalar(select(Grid.boundary).where(Grid.code == code)))


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_a_grid_drawn_in_another_datum_is_stored_at_its_wgs84_position(
    client, session, world, datum
):
    drawn = drawn_in(datum, *NORTH)
    feature = {**grid_feature(A + "003", drawn), "datum": datum}
    r = client.post("/api/v1/grids", json=feature, headers=admin(world))
    assert r.status_code == 201, r.json
    expected = in_wgs84(drawn, datum)
    assert shape(r.json["geometry"]).equals_exact(MultiPolygon([expected]), tolerance=1e-9)
    assert stored(session, A + "003").equals_exact(MultiPolygon([expected]), tolerance=1e-9)
    # Hundreds of metres from where it was drawn, on the box it was drawn from.
    assert not stored(session, A + "003").intersects(shape(drawn))
    assert stored(session, A + "003").hausdorff_distance(shape(box(*NORTH))) < 1e-7


def test_a_household_at_the_true_point_is_placed_in_the_grid_drawn_in_gcj02(client, session, world):
    feature = {**grid_feature(A + "003", drawn_in("gcj02", *NORTH)), "datum": "gcj02"}
    grid_id = client.post("/api/v1/grids", json=feature, headers=admin(world)).json["id"]
    lon, lat = (NORTH[0] + NORTH[2]) / 2, (NORTH[1] + NORTH[3]) / 2
    home = client.post(
        "/api/v1/households",
        json={"building": "1", "unit": "1", "floor": "1", "room": "101", "lon": lon, "lat": lat},
        headers=admin(world),
    )
    assert home.status_code == 201, home.json
    assert home.json["grid_code"] == A + "003"
    located = client.get(f"/api/v1/grids/locate?lon={lon}&lat={lat}", headers=admin(world))
    assert located.json["id"] == grid_id


def test_a_grid_without_a_datum_is_taken_as_wgs84_as_before(client, session, world):
    drawn = drawn_in("gcj02", *NORTH)
    r = client.post("/api/v1/grids", json=grid_feature(A + "003", drawn), headers=admin(world))
    assert r.status_code == 201, r.json
    assert stored(session, A + "003").equals(shape(drawn))
    lon, lat = (NORTH[0] + NORTH[2]) / 2, (NORTH[1] + NORTH[3]) / 2
    assert (
        client.get(f"/api/v1/grids/locate?lon={lon}&lat={lat}", headers=admin(world)).status_code
        == 404
    )


def test_an_import_drawn_in_gcj02_is_stored_in_wgs84(client, session, world):
    drawn = drawn_in("gcj02", *NORTH)
    r = client.post(
        "/api/v1/grids/import",
        json={
            "type": "FeatureCollection",
            "datum": "gcj02",
            "features": [grid_feature(A + "003", drawn)],
        },
        headers=admin(world),
    )
    assert r.status_code == 200, r.json
    assert r.json["created"] == [A + "003"]
    expected = MultiPolygon([in_wgs84(drawn, "gcj02")])
    assert stored(session, A + "003").equals_exact(expected, tolerance=1e-9)


def test_a_redraw_in_gcj02_keeps_the_households_at_their_true_points(client, session, world):
    """A1 redrawn on an Amap map where it lies: as WGS-84 it would leave its households out."""
    grid = world.grids[A1]
    drawn = drawn_in("gcj02", *BOXES[A1])
    as_wgs84 = client.patch(
        f"/api/v1/grids/{grid.id}", json={"geometry": drawn}, headers=admin(world)
    )
    assert as_wgs84.status_code == 422  # the old behaviour: orphans every household of A1
    r = client.patch(
        f"/api/v1/grids/{grid.id}", json={"geometry": drawn, "datum": "gcj02"}, headers=admin(world)
    )
    assert r.status_code == 200, r.json
    assert r.json["properties"]["households"] == len(world.households[A1])
    expected = MultiPolygon([in_wgs84(drawn, "gcj02")])
    assert shape(r.json["geometry"]).equals_exact(expected, tolerance=1e-9)


@pytest.mark.parametrize("datum", ["wgs-84", "WGS84", "gcj", "", None, 84])
@pytest.mark.parametrize("how", ["create", "import", "patch"])
def test_an_unknown_datum_is_422_naming_the_field_and_writes_nothing(
    client, session, world, datum, how
):
    drawn = drawn_in("gcj02", *NORTH)
    grid = world.grids[A1]
    if how == "create":
        r = client.post(
            "/api/v1/grids",
            json={**grid_feature(A + "003", drawn), "datum": datum},
            headers=admin(world),
        )
    elif how == "import":
        collection = {"type": "FeatureCollection", "features": [grid_feature(A + "003", drawn)]}
        r = client.post(
            "/api/v1/grids/import", json={**collection, "datum": datum}, headers=admin(world)
        )
    else:
        r = client.patch(
            f"/api/v1/grids/{grid.id}",
            json={"geometry": box(116.399, 39.920, 116.405, 39.925), "datum": datum},
            headers=admin(world),
        )
    assert r.status_code == 422
    assert "datum" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Grid.id)).where(Grid.code == A + "003")) == 0
    session.refresh(grid)
    assert grid.version == 1


@pytest.mark.parametrize("datum", ["gcj02", "bd09", "wgs84"])
def test_a_patch_with_a_datum_but_no_geometry_is_422_and_changes_nothing(
    client, session, world, datum
):
    """The datum says what map a new boundary was drawn on: alone it describes nothing."""
    grid = world.grids[A1]
    name = grid.name
    r = client.patch(
        f"/api/v1/grids/{grid.id}", json={"name": "Renamed", "datum": datum}, headers=admin(world)
    )
    assert r.status_code == 422
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert "geometry" in r.json["errors"]["json"]["datum"][0]
    session.refresh(grid)
    assert (grid.name, grid.version) == (name, 1)


def test_the_grid_service_refuses_a_datum_without_a_geometry(session, world):
    from api import errors
    from api.services.grids import update_grid

    grid = world.grids[A1]
    with pytest.raises(errors.Unprocessable) as caught:
        update_grid(session, None, grid, {"name": "Renamed", "datum": "gcj02"})
    assert "datum" in caught.value.errors
    assert grid.name != "Renamed"


def test_migration_0064_ends_the_leadership_of_a_grid_retired_before_it_at_its_retirement(
    own_database_url,
):
    """Grids retired before retirement ended leaderships kept their leader and an open
    leadership; the migration ends it at the retirement's time and clears the leader."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from api.cli import alembic_config
    from tests.factories import migration_grid

    grid_id, _ = migration_grid(own_database_url)
    engine = create_engine(own_database_url)
    config = alembic_config(own_database_url)
    retired = datetime(2026, 12, 1, 2, tzinfo=UTC)
    try:
        command.downgrade(config, "0063")
        try:
            with engine.begin() as conn:
                leader = conn.scalar(
                    text(
                        "INSERT INTO users (username, display_name, password_hash, role,"
                        " community_code) SELECT 'mig_0064', 'm', 'x', 'grid_leader',"
                        " community_code FROM grids"
                        " WHERE id = :g RETURNING id"
                    ),
                    {"g": grid_id},
                )
                conn.execute(
                    text("UPDATE grids SET leader_id = :u WHERE id = :g"),
                    {"u": leader, "g": grid_id},
                )
                conn.execute(
                    text("UPDATE grid_leaderships SET started_at = :t - interval '30 days'"),
                    {"t": retired},
                )
                conn.execute(
                    text("UPDATE grids SET retired_at = :t WHERE id = :g"),
                    {"t": retired, "g": grid_id},
                )
        finally:
            command.upgrade(config, "head")
        with engine.begin() as conn:
            leader_id = conn.scalar(
                text("SELECT leader_id FROM grids WHERE id = :g"), {"g": grid_id}
            )
            periods = conn.execute(
                text("SELECT user_id, ended_at FROM grid_leaderships WHERE grid_id = :g"),
                {"g": grid_id},
            ).all()
    finally:
        engine.dispose()
    assert leader_id is None
    assert [tuple(p) for p in periods] == [(leader, retired)]
