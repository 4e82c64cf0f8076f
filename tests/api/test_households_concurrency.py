"""Two edits of one household at once: each keeps the other's fields.

A PATCH of `lat` alone fills in `lon` from the household it read. Read before the other edit
committed, that `lon` is stale and overwrites the other edit's. A third connection holds the
household so both edits are in flight before either reads it, then lets go.
"""

from __future__ import annotations

import uuid

from api.models import Household
from api.services.households import household_lonlat
from tests import races
from tests.factories import bearer, box, build_app, make_grid, make_household, make_user

COMMUNITY = "110109009001"


def test_a_lon_edit_and_a_lat_edit_at_once_both_stay(own_database_url):
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, COMMUNITY + "001", box(116.40, 39.70, 116.41, 39.71))
        admin = make_user(
            session, f"hh_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        home = make_household(session, 116.402, 39.702)
        headers, home_id = bearer(admin), home.id

    def patch(changes):
        def send():
            with app.test_client() as client:
                return client.patch(f"/api/v1/households/{home_id}", json=changes, headers=headers)

        return send

    try:
        with app.app_context():
            answers = races.race(
                db.engine,
                "SELECT 1 FROM households WHERE id = :id FOR UPDATE",
                {"id": home_id},
                patch({"lat": 39.705}),
                patch({"lon": 116.405}),
            )
            with db.new_session() as session:
                stored = household_lonlat(session.get(Household, home_id))
    finally:
        with app.app_context():
            db.engine.dispose()
    assert [r.status_code for r in answers] == [200, 200]
    assert stored == (116.405, 39.705)
