"""Polling the inbox misses nothing: a notification committed late is still handed over.

A notification is stamped with its transaction's start time (`created_at`), but becomes
visible only when that transaction commits. A client polling with `since` = the newest
`created_at` it holds never sees a notification whose transaction started before that one and
committed after the client's poll. The `cursor` the inbox answers with (`X-Inbox-Cursor`)
follows commit order instead.

The notifications really commit, in two transactions, so this module works in a database of
its own (migrated to head, dropped at the end).
"""

from __future__ import annotations

import uuid

import pytest

from api.services.notifications import notify
from tests.factories import bearer, box, build_app, make_grid, make_user

COMMUNITY = "110109009001"


@pytest.fixture(scope="module")
def app(own_database_url):
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, COMMUNITY + "001", box(116.40, 39.70, 116.41, 39.71))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture()
def live(app):
    """The app and a committed user of its own (each test has a fresh inbox)."""
    from api.extensions import db

    with app.app_context(), db.begin() as session:
        user = make_user(session, f"inbox_{uuid.uuid4().hex[:8]}", "worker", community=COMMUNITY)
    return app, user.id


def _get(app, user_id: int, query: str = ""):
    from api.extensions import db
    from api.models import User

    with app.app_context():
        with db.new_session() as session:
            headers = bearer(session.get(User, user_id))
        with app.test_client() as client:
            return client.get(f"/api/v1/notifications{query}", headers=headers)


def test_a_notification_committed_after_a_later_one_reaches_a_client_polling_with_the_cursor(
    live,
):
    from api.extensions import db

    app, user_id = live
    with app.app_context():
        early = db.new_session()  # started first, commits last
        try:
            early.begin()
            notify(early, [user_id], "report_ready", "early")
            with db.begin() as late:
                notify(late, [user_id], "report_ready", "late")
            first = _get(app, user_id)
            assert [n["title"] for n in first.json] == ["late"]
            cursor = first.headers["X-Inbox-Cursor"]
            newest = first.json[0]["created_at"]
            early.commit()
        finally:
            early.close()
    polled = _get(app, user_id, f"?cursor={cursor}")
    assert polled.status_code == 200
    seen = {n["id"] for n in first.json}
    assert [n["title"] for n in polled.json if n["id"] not in seen] == ["early"]
    # `since` still answers what it always did: created after the instant (the early one was
    # created before the late one, so it is not among them; the cursor is what a poller uses).
    since = _get(app, user_id, "?since=" + newest.replace("+", "%2B"))
    assert since.status_code == 200
    assert [n["title"] for n in since.json] == []


def test_a_cursor_with_nothing_new_repeats_at_most_what_the_client_holds(live):
    # Repeats happen while some other transaction of the cluster runs (it holds xmin back):
    # the client skips ids it holds; nothing else comes back.
    app, user_id = live
    from api.extensions import db

    with app.app_context(), db.begin() as session:
        notify(session, [user_id], "report_ready", "one")
    first = _get(app, user_id)
    again = _get(app, user_id, f"?cursor={first.headers['X-Inbox-Cursor']}")
    assert again.status_code == 200
    assert {n["id"] for n in again.json} <= {n["id"] for n in first.json}
    assert int(again.headers["X-Inbox-Cursor"]) >= int(first.headers["X-Inbox-Cursor"])


@pytest.mark.parametrize(
    "query",
    [
        "?cursor=abc",
        "?cursor=-1",
        "?cursor=" + "9" * 25,
        "?cursor=1%0A",
        "?cursor=%EF%BC%91",
        "?cursor=1&since=2026-01-01T00:00:00Z",
    ],
    ids=["not-a-number", "negative", "too-big", "final-newline", "fullwidth", "with-since"],
)
def test_a_bad_cursor_is_a_422_problem(live, query):
    app, user_id = live
    r = _get(app, user_id, query)
    assert r.status_code == 422
    assert r.content_type == "application/problem+json"
