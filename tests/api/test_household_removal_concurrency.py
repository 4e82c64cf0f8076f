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
