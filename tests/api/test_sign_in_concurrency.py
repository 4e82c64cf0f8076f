"""Password guesses sent in parallel are throttled as if sent one after another.

The throttle counts recent failures, checks the password, then records the attempt. Guesses in
flight together must not all be counted against the same old number: a third connection holds
the attempts table so every guess is in flight before any is recorded, then lets go.
"""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy import func, select

from api.models import LoginAttempt
from tests import races
from tests.factories import box, build_app, make_grid, make_user

GUESSES = 8
MAX_FAILURES = 5


def test_parallel_guesses_from_many_addresses_check_at_most_the_limit(own_database_url):
    from api.extensions import db

    app = build_app(own_database_url, LOGIN_MAX_FAILURES=MAX_FAILURES)
    username = f"target_{uuid.uuid4().hex[:8]}"
    with app.app_context(), db.begin() as session:
        make_grid(session, "110109009001001", box(116.40, 39.70, 116.41, 39.71))
        make_user(session, username, "worker", grids=["110109009001001"])

    def guess(n: int):
        def send():
            with app.test_client() as client:
                return client.post(
                    "/api/v1/auth/token",
                    json={"username": username, "password": f"guess-{n}"},
                    environ_base={"REMOTE_ADDR": f"198.51.100.{n + 1}"},
                )

        return send

    try:
        with app.app_context():
            answers = races.race(
                db.engine,
                "LOCK TABLE login_attempts IN SHARE ROW EXCLUSIVE MODE",
                {},
                *(guess(n) for n in range(GUESSES)),
            )
            checked = db.session.scalar(
                select(func.count(LoginAttempt.id)).where(LoginAttempt.username == username)
            )
    finally:
        with app.app_context():
            db.engine.dispose()
    assert Counter(r.status_code for r in answers) == {
        401: MAX_FAILURES,
        429: GUESSES - MAX_FAILURES,
    }
    assert checked == MAX_FAILURES
