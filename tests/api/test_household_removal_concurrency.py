"""A household's removal and a visit to it after that time, at once: never both.

A third connection holds the household so both requests are in flight before either reads it,
then lets go. Whichever goes first, the other sees it: the removal first, the visit is refused
(`household-removed`); the visit first, the removal dated before it is a 422. A visit stored
after a removal's time, of a removed household, is never the outcome.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests import races
from tests.factories import bearer, box, build_app, make_grid, make_household, make_user, visit_item

COMMUNITY = "110109009002"


def test_a_removal_and_a_visit_after_it_at_once_never_both_stand(own_database_url):
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        code = COMMUNITY + "001"
        make_grid(session, code, box(116.40, 39.70, 116.41, 39.71))
        tag = uuid.uuid4().hex[:8]
        admin = make_user(session, f"rm_a_{tag}", "community_admin", community=COMMUNITY)
        worker = make_user(session, f"rm_w_{tag}", "worker", grids=[code])
        home = make_household(
            session, 116.402, 39.702, created_at=datetime.now(UTC) - timedelta(days=30)
        )
        admin_headers, worker_headers, home_id = bearer(admin), bearer(worker), home.id
        item = visit_item(home, at=datetime.now(UTC) + timedelta(minutes=2))

    def removal():
        with app.test_client() as client:
            return client.post(
                f"/api/v1/households/{home_id}/removal",
                json={"reason": "moved_out"},
                headers=admin_headers,
            )

    def visit():
        with app.test_client() as client:
            return client.post(
                "/api/v1/visits/batch", json={"visits": [item]}, headers=worker_headers
            )

    try:
        with app.app_context():
            removed, visited = races.race(
                db.engine,
                "SELECT 1 FROM households WHERE id = :id FOR UPDATE",
                {"id": home_id},
                removal,
                visit,
            )
            with db.engine.connect() as conn:
                after = conn.scalar(
                    text(
                        "SELECT count(*) FROM visits v JOIN households h ON h.id = v.household_id"
                        " WHERE h.id = :id AND h.removed_at IS NOT NULL"
                        " AND v.visited_at >= h.removed_at"
                    ),
                    {"id": home_id},
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    [result] = visited.json["results"]
    outcome = (removed.status_code, result["status"], result.get("code"))
    assert outcome in {(201, "rejected", "household-removed"), (422, "created", None)}, outcome
    assert after == 0


def test_a_restore_racing_its_grids_retirement_leaves_no_household_in_a_retired_grid(
    own_database_url,
):
    """Undoing a removal while the household's grid is retired: one of them is refused.

    The restore read its grid as in service without holding it, and the retirement counted the
    grid's households before the restore committed: both succeeded, and a household in the
    register stood in a grid off the map (in no list, due nowhere, counted in a retired grid).
    """
    from api import clock
    from api.extensions import db
    from api.services import household_removal

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        grid = make_grid(session, COMMUNITY + "002", box(116.42, 39.70, 116.43, 39.71))
        home = make_household(session, 116.425, 39.705)
        session.flush()
        household_removal.remove_household(session, None, home, reason="moved_out", now=clock.now())
        admin = make_user(
            session, f"rm_r_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        headers, grid_id, home_id = bearer(admin), grid.id, home.id

    def send(method, path):
        def request():
            with app.test_client() as client:
                return client.open(path, method=method, headers=headers)

        return request

    try:
        with app.app_context():
            retired, restored = races.race(
                db.engine,
                # What each writes last: the retirement its grid's versions, the restore its
                # household's history (the households trigger).
                "LOCK TABLE grid_versions, household_history IN EXCLUSIVE MODE",
                {},
                send("DELETE", f"/api/v1/grids/{grid_id}"),
                send("DELETE", f"/api/v1/households/{home_id}/removal"),
            )
            with db.engine.connect() as conn:
                live_in_retired = conn.scalar(
                    text(
                        "SELECT count(*) FROM households h JOIN grids g ON g.id = h.grid_id"
                        " WHERE h.id = :id AND h.removed_at IS NULL"
                        " AND g.retired_at IS NOT NULL"
                    ),
                    {"id": home_id},
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    outcome = (retired.status_code, restored.status_code)
    assert outcome in {(204, 409), (409, 200)}, outcome
    assert live_in_retired == 0
