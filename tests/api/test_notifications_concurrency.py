"""The inbox under real concurrent requests: two devices acknowledging one notification.

"The first read time is kept": an ack read the row, then wrote its own time over whatever a
concurrent ack had committed meanwhile. A third connection plays the first device's ack: it
marks the row read and holds it uncommitted until the request waits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from api.models import Notification
from api.services.notifications import notify
from tests import races
from tests.factories import bearer, box, build_app, make_grid, make_user

COMMUNITY = "110109009003"
FIRST = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 17, 2, 5, tzinfo=UTC)


def test_an_ack_racing_another_keeps_the_first_read_time(own_database_url):
    from api.extensions import db

    app = build_app(own_database_url, FIXED_NOW=LATER)
    with app.app_context(), db.begin() as session:
        make_grid(session, COMMUNITY + "001", box(116.40, 39.74, 116.41, 39.75))
        worker = make_user(
            session, f"nt_{uuid.uuid4().hex[:8]}", "worker", grids=[COMMUNITY + "001"]
        )
        [note] = notify(session, [worker.id], "task_updated", "任务", now=FIRST)
        headers, note_id = bearer(worker), note.id

    def ack():
        with app.test_client() as client:
            return client.post(f"/api/v1/notifications/{note_id}/ack", headers=headers)

    try:
        with app.app_context():
            [answer] = races.race(
                db.engine,
                "UPDATE notifications SET read_at = :at WHERE id = :id",
                {"at": FIRST, "id": note_id},
                ack,
            )
            with db.new_session() as session:
                stored = session.scalar(
                    select(Notification.read_at).where(Notification.id == note_id)
                )
    finally:
        with app.app_context():
            db.engine.dispose()
    assert answer.status_code == 200
    assert stored == FIRST
    assert answer.json["read_at"] == FIRST.isoformat()
