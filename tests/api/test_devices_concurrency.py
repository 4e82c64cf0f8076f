"""Two phones of one user registering at once: the user still keeps at most 10 active devices.

Each registration inserts its device, then deactivates the user's longest-unseen ones beyond
the cap. Two at once each counted the others without the other's new row (not committed yet),
and the user ended with 11. A third connection holds the user's row so both registrations are
in flight before either counts; the requests commit, so the module has a database of its own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from api.models import Device
from api.services.devices import MAX_ACTIVE_DEVICES
from tests import races
from tests.factories import bearer, box, build_app, make_device, make_grid, make_user

GRID = "110109009099001"


def test_two_registrations_at_once_keep_the_device_cap(own_database_url):
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, GRID, box(116.40, 39.70, 116.41, 39.71))
        user = make_user(session, f"dev_{uuid.uuid4().hex[:8]}", "worker", grids=[GRID])
        for n in range(MAX_ACTIVE_DEVICES - 1):
            make_device(session, user, f"old-{n}", now=datetime(2026, 11, 1, n, tzinfo=UTC))
        headers, user_id = bearer(user), user.id

    def register(token: str):
        def send():
            with app.test_client() as client:
                body = {"platform": "android", "token": token}
                return client.post("/api/v1/devices", json=body, headers=headers)

        return send

    try:
        with app.app_context():
            answers = races.race(
                db.engine,
                "SELECT 1 FROM users WHERE id = :id FOR UPDATE",
                {"id": user_id},
                register("new-a"),
                register("new-b"),
            )
            with db.engine.connect() as conn:
                active = conn.scalar(
                    select(func.count()).where(Device.user_id == user_id, Device.active)
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    assert all(r.status_code in (200, 201) for r in answers), [r.get_json() for r in answers]
    assert active == MAX_ACTIVE_DEVICES
