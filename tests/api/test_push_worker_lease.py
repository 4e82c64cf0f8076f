"""A round that takes longer than its lease keeps it: a second worker does not send it again.

Web Push sends one message at a time (10 s timeout each) and a relay may answer FCM slowly: a
round can outlast `GRIDWORK_PUSH_LEASE_SECONDS`. Workers scaled out beside it then claimed the
rows whose lease had passed, while the first round was still sending them, and sent every
message twice with no crash at all. The round now renews its lease while it sends. Real time
and a committed database: the second worker is another connection, as in production.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from api.models import Delivery
from api.services.delivery import PushWorker
from api.services.notifications import notify
from tests.factories import box, build_app, make_device, make_grid, make_user

pytestmark = pytest.mark.usefixtures("loopback_only")

LEASE_S = 3  # renewed every third of it: a stall of 1 s on a loaded machine keeps it


def test_a_round_slower_than_its_lease_is_not_sent_again_by_another_worker(
    own_database_url, fake, router
):
    from api.extensions import db

    app = build_app(own_database_url)
    try:
        with app.app_context():
            with db.begin() as session:
                make_grid(session, "110109009002001", box(116.40, 39.70, 116.41, 39.71))
                user = make_user(
                    session, f"lease_{uuid.uuid4().hex[:8]}", "worker", grids=["110109009002001"]
                )
                make_device(session, user, "fcm-slow", now=datetime.now(UTC))
                notify(session, [user.id], "task_updated", "t")
            first = PushWorker(db.begin, router, lease_seconds=LEASE_S)
            second = PushWorker(db.begin, router, lease_seconds=LEASE_S)
            fake.hold()  # FCM takes the message and answers late: three leases
            stats = {}
            sending = threading.Thread(
                target=lambda: stats.update(first=first.run_once(datetime.now(UTC)))
            )
            sending.start()
            time.sleep(3 * LEASE_S)
            _, taken = second.claim(datetime.now(UTC))  # scaled out beside it
            fake.release()
            sending.join(timeout=30)
            with db.new_session() as session:
                state = session.scalar(select(Delivery.state))
    finally:
        with app.app_context():
            db.engine.dispose()
    assert taken == []
    assert stats["first"].sent == 1 and state == "sent"
    assert len(fake.messages) == 1
