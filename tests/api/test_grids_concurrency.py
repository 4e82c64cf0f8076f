"""Grid changes racing each other and households being placed: the register stays one map.

Each test holds a table from a third connection (tests/races.py) so both requests are in
flight before either decides, then lets go.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from tests import races
from tests.factories import bearer, box, build_app, grid_feature, make_grid, make_user


def _admin(session, community: str):
    return make_user(session, f"g_{uuid.uuid4().hex[:8]}", "community_admin", community=community)


def _send(app, method: str, path: str, headers: dict, json: dict):
    def send():
        with app.test_client() as client:
            return client.open(path, method=method, json=json, headers=headers)

    return send


def test_two_redraws_into_the_same_gap_at_once_do_not_both_pass_the_overlap_check(
    own_database_url,
):
    """Each redraw checked overlaps against the other's old boundary, so both were stored and
    the two grids overlapped (a household there is in both, counted in one)."""
    from api.extensions import db

    community = "110109009002"
    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        west = make_grid(session, community + "001", box(116.40, 39.80, 116.41, 39.81))
        east = make_grid(session, community + "002", box(116.42, 39.80, 116.43, 39.81))
        headers, west_id, east_id = bearer(_admin(session, community)), west.id, east.id
    try:
        with app.app_context():
            answers = races.race(
                db.engine,
                "LOCK TABLE grid_versions IN EXCLUSIVE MODE",
                {},
                _send(
                    app,
                    "PATCH",
                    f"/api/v1/grids/{west_id}",
                    headers,
                    {"geometry": box(116.40, 39.80, 116.416, 39.81)},
                ),
                _send(
                    app,
                    "PATCH",
                    f"/api/v1/grids/{east_id}",
                    headers,
                    {"geometry": box(116.414, 39.80, 116.43, 39.81)},
                ),
            )
            with db.engine.connect() as conn:
                overlap = conn.scalar(
                    text(
                        "SELECT ST_Area(ST_Intersection(a.boundary, b.boundary)::geography) "
                        "FROM grids a, grids b WHERE a.id = :a AND b.id = :b"
                    ),
                    {"a": west_id, "b": east_id},
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    assert sorted(r.status_code for r in answers) == [200, 422]
    assert overlap == 0


def test_a_household_registered_while_its_grid_is_redrawn_lands_in_the_grid_that_holds_it(
    own_database_url,
):
    """The household was placed on the old boundary and written after the redraw had
    recomputed the grid's households: it stayed in a grid that no longer holds its point."""
    from api.extensions import db

    community = "110109009003"
    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, community + "001", box(116.50, 39.80, 116.51, 39.81))
        make_grid(session, community + "002", box(116.51, 39.80, 116.52, 39.81))
        headers = bearer(_admin(session, community))
    # The border moves west of the point: grid 002 takes it.
    moved = {
        "type": "FeatureCollection",
        "features": [
            grid_feature(community + "001", box(116.50, 39.80, 116.504, 39.81)),
            grid_feature(community + "002", box(116.504, 39.80, 116.52, 39.81)),
        ],
    }
    home = {"building": "1", "room": "101", "lon": 116.506, "lat": 39.805}
    try:
        with app.app_context():
            answers = races.race(
                db.engine,
                "LOCK TABLE households IN EXCLUSIVE MODE",
                {},
                _send(app, "POST", "/api/v1/grids/import", headers, moved),
                _send(app, "POST", "/api/v1/households", headers, home),
            )
            with db.engine.connect() as conn:
                stored = conn.scalar(
                    text(
                        "SELECT g.code FROM households h JOIN grids g ON g.id = h.grid_id "
                        "WHERE g.community_code = :c"
                    ),
                    {"c": community},
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    assert [r.status_code for r in answers] == [200, 201]
    assert stored == community + "002"


def test_a_grid_retired_while_a_household_is_registered_in_it_does_not_keep_the_household(
    own_database_url,
):
    """The retirement counted no households, the household was written after the count: a
    household in a retired grid, on no map and in no report."""
    from api.extensions import db

    community = "110109009004"
    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        grid = make_grid(session, community + "001", box(116.60, 39.80, 116.61, 39.81))
        headers, grid_id = bearer(_admin(session, community)), grid.id
    home = {"building": "1", "room": "101", "lon": 116.605, "lat": 39.805}
    try:
        with app.app_context():
            answers = races.race(
                db.engine,
                "LOCK TABLE households, grid_versions IN EXCLUSIVE MODE",
                {},
                _send(app, "DELETE", f"/api/v1/grids/{grid_id}", headers, None),
                _send(app, "POST", "/api/v1/households", headers, home),
            )
            with db.engine.connect() as conn:
                in_retired = conn.scalar(
                    text(
                        "SELECT count(*) FROM households h JOIN grids g ON g.id = h.grid_id "
                        "WHERE g.retired_at IS NOT NULL"
                    )
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    # Either the retirement went first (the household is then outside every grid), or the
    # household did (the retirement then finds it).
    assert [r.status_code for r in answers] in ([204, 422], [409, 201])
    assert in_retired == 0


def test_a_grid_retired_while_a_redraw_of_it_waits_is_not_redrawn_back_onto_the_map(
    own_database_url,
):
    """The redraw read the grid before the retirement committed, waited for the map, then
    opened a new boundary version on the retired grid: a grid off the map (no longer listed,
    located or counted) with an open version, which every later week's report and map found
    again."""
    from sqlalchemy.orm import Session

    from api.extensions import db
    from api.models import Grid
    from api.services import grids as grid_service

    community = "110109009005"
    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        grid = make_grid(session, community + "001", box(116.70, 39.80, 116.71, 39.81))
        headers, grid_id = bearer(_admin(session, community)), grid.id
    redraw = {"geometry": box(116.70, 39.80, 116.705, 39.81)}
    try:
        with app.app_context():
            with (
                db.engine.connect() as holder,
                Session(bind=holder) as office,
                ThreadPoolExecutor(1) as pool,
            ):
                # Another office retires the grid: the map is theirs until they commit.
                grid_service.retire_grid(office, None, office.get(Grid, grid_id))
                patch = pool.submit(
                    _send(app, "PATCH", f"/api/v1/grids/{grid_id}", headers, redraw)
                )
                races.wait_for_lock_waits(db.engine, 1)
                office.commit()
                patched = patch.result(timeout=60)
            with db.engine.connect() as conn:
                open_versions = conn.scalar(
                    text(
                        "SELECT count(*) FROM grid_versions WHERE grid_id = :id "
                        "AND valid_to IS NULL"
                    ),
                    {"id": grid_id},
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    assert open_versions == 0
    assert patched.status_code == 404


def _redraw_while_a_household_change_waits(own_database_url, community: str, change) -> tuple:
    """Three grids side by side (001|002|003) and a household in 001 near its border; `change`
    (session, household) holds the household's row, uncommitted, while an import moves the
    001|002 border west of its point. The import's statement read the household as it was;
    once the change commits the import goes on. The household's grid, whether it is removed,
    and the grid that covers its point, afterwards."""
    from sqlalchemy.orm import Session

    from api.extensions import db
    from api.services import grids as grid_service
    from api.services import households as household_service
    from tests.factories import make_household

    west = 116.60 + int(community[-2:]) * 0.05  # each community's grids a place of their own
    east = west + 0.01
    codes = [community + n for n in ("001", "002", "003")]
    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        for i, code in enumerate(codes):
            make_grid(session, code, box(west + 0.01 * i, 39.80, east + 0.01 * i, 39.81))
        home_id = make_household(session, west + 0.008, 39.805).id
    border = west + 0.006
    moved = {
        "type": "FeatureCollection",
        "features": [
            grid_feature(codes[0], box(west, 39.80, border, 39.81)),
            grid_feature(codes[1], box(border, 39.80, east + 0.01, 39.81)),
        ],
    }

    def redraw():
        with app.app_context(), Session(db.engine) as other:
            summary = grid_service.import_grids(other, None, moved)
            other.commit()
            return summary

    try:
        with app.app_context():
            with Session(db.engine) as held, ThreadPoolExecutor(1) as pool:
                home = household_service.get_household(held, None, home_id, lock=True)
                change(held, home, east + 0.015)
                future = pool.submit(redraw)
                races.wait_for_lock_waits(db.engine, 1)
                held.commit()
                future.result(timeout=60)
            with db.engine.connect() as conn:
                return conn.execute(
                    text(
                        "SELECT g.code, h.removed_at IS NOT NULL AS removed,"
                        " (SELECT c.code FROM grids c WHERE c.retired_at IS NULL"
                        "  AND ST_Intersects(c.boundary, h.location) ORDER BY c.code LIMIT 1)"
                        " AS covering FROM households h JOIN grids g ON g.id = h.grid_id"
                        " WHERE h.id = :id"
                    ),
                    {"id": home_id},
                ).one()
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_household_moved_while_its_old_grid_is_redrawn_stays_in_the_grid_of_its_point(
    own_database_url,
):
    """Its door corrected to a point in 003 while a redraw put its old point in 002: the
    redraw, which read the old point, set 002 on the row holding the new one. The household
    sat in 003 counted in 002, due to the wrong worker, until a later redraw touched it."""
    from api.services import households as household_service

    def correct_its_door(session, home, lon):
        household_service.update_household(session, None, home, {"lon": lon, "lat": 39.805})

    after = _redraw_while_a_household_change_waits(
        own_database_url, "110109009081", correct_its_door
    )
    assert (after.code, after.covering) == ("110109009081003", "110109009081003")


def test_a_household_removed_while_its_grid_is_redrawn_stays_with_the_grid_it_left(
    own_database_url,
):
    """Out of the register, a household stays with the grid it left (grids._TOUCHED); removed
    while a redraw moved its point into 002, it was moved there all the same."""
    from datetime import UTC, datetime

    from api.services import household_removal

    def remove_it(session, home, _lon):
        household_removal.remove_household(
            session, None, home, reason="moved_out", now=datetime.now(UTC)
        )

    after = _redraw_while_a_household_change_waits(own_database_url, "110109009082", remove_it)
    assert after.removed and after.code == "110109009082001"
