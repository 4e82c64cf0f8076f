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


# --- acknowledging all up to a cursor ------------------------------------------------------
def _post_ack_all(app, user_id: int, **kwargs):
    from api.extensions import db
    from api.models import User

    with app.app_context():
        with db.new_session() as session:
            headers = bearer(session.get(User, user_id))
        with app.test_client() as client:
            return client.post("/api/v1/notifications/ack-all", headers=headers, **kwargs)


def _unread_titles(app, user_id: int) -> list[str]:
    return sorted(n["title"] for n in _get(app, user_id, "?unread=true").json)


def _notify_committed(app, user_id: int, title: str) -> int:
    from api.extensions import db

    with app.app_context(), db.begin() as session:
        [note] = notify(session, [user_id], "task_dispatched", title)
        return note.id


def _before_cursor(app, notification_id: int, cursor: str) -> bool:
    """Whether the notification's transaction is below the cursor (had finished when it was
    taken). Always so for one committed before the poll while no older transaction of the
    cluster ran; another test run's open transaction can hold the cursor back."""
    from sqlalchemy import text

    from api.extensions import db

    with app.app_context(), db.new_session() as session:
        return session.scalar(
            text("SELECT xid < CAST(:cursor AS xid8) FROM notifications WHERE id = :id"),
            {"cursor": cursor, "id": notification_id},
        )


def test_ack_all_with_the_cursor_leaves_a_notification_committed_after_it_unread(live):
    app, user_id = live
    seen = _notify_committed(app, user_id, "seen")
    polled = _get(app, user_id)
    assert [n["title"] for n in polled.json] == ["seen"]
    cursor = polled.headers["X-Inbox-Cursor"]
    _notify_committed(app, user_id, "arrived after the poll")

    r = _post_ack_all(app, user_id, json={"cursor": cursor})

    assert r.status_code == 200
    assert "arrived after the poll" in _unread_titles(app, user_id)
    # What the poll showed is read, unless an older transaction elsewhere held the cursor back
    # (then it stays unread too: never one the client did not see).
    covered = _before_cursor(app, seen, cursor)
    assert r.json == {"acknowledged": int(covered)}
    expected = ["arrived after the poll"] + ([] if covered else ["seen"])
    assert _unread_titles(app, user_id) == sorted(expected)


def test_ack_all_with_the_cursor_leaves_a_notification_committing_during_the_poll_unread(live):
    # Its transaction began before the poll and committed after it: stamped earlier than the
    # poll, never shown by it.
    from api.extensions import db

    app, user_id = live
    with app.app_context():
        slow = db.new_session()
        try:
            slow.begin()
            notify(slow, [user_id], "task_dispatched", "slow")
            polled = _get(app, user_id)
            assert polled.json == []
            slow.commit()
        finally:
            slow.close()

    r = _post_ack_all(app, user_id, json={"cursor": polled.headers["X-Inbox-Cursor"]})

    assert r.json == {"acknowledged": 0}
    assert _unread_titles(app, user_id) == ["slow"]


@pytest.mark.parametrize("body", [None, {}], ids=["no-body", "empty-object"])
def test_ack_all_without_a_cursor_still_marks_everything_read(live, body):
    app, user_id = live
    _notify_committed(app, user_id, "seen")
    _get(app, user_id)
    _notify_committed(app, user_id, "arrived after the poll")

    r = _post_ack_all(app, user_id, **({} if body is None else {"json": body}))

    assert r.json == {"acknowledged": 2}
    assert _unread_titles(app, user_id) == []


@pytest.mark.parametrize(
    "cursor",
    ["abc", "-1", "9" * 25, "1\n", "\uff11", "", 12, None],
    ids=[
        "not-a-number",
        "negative",
        "too-big",
        "final-newline",
        "fullwidth",
        "empty",
        "number",
        "null",
    ],
)
def test_ack_all_with_a_bad_cursor_is_a_422_problem_and_marks_nothing(live, cursor):
    app, user_id = live
    _notify_committed(app, user_id, "unread")

    r = _post_ack_all(app, user_id, json={"cursor": cursor})

    assert r.status_code == 422
    assert r.content_type == "application/problem+json"
    assert list(r.json["errors"]["json"]) == ["cursor"]
    assert _unread_titles(app, user_id) == ["unread"]


# --- paging through a poll while notifications arrive -------------------------------------
@pytest.fixture()
def quiet_cluster(monkeypatch):
    """The cursor as a cluster with no other transaction running answers it: the snapshot's
    `xmax`, which its `xmin` is then. Other test runs' transactions on a shared server hold
    the real `xmin` back, and a cursor held back hides what a test of a skip must show."""
    from sqlalchemy import Text, cast, func

    from api.services import notifications

    monkeypatch.setattr(
        notifications,
        "_cursor_now",
        lambda: cast(func.pg_snapshot_xmax(func.pg_current_snapshot()), Text),
    )


def _page_around_an_arrival(app, user_id: int):
    """Three notifications; page 1 of two read; one arrives; page 2 read. Newest first, the
    arrival goes on top (onto page 1, already read) and shifts page 2 down by one (a repeat)."""
    for title in ("one", "two", "three"):
        _notify_committed(app, user_id, title)
    first = _get(app, user_id, "?page=1&page_size=2")
    assert [n["title"] for n in first.json] == ["three", "two"]
    _notify_committed(app, user_id, "arrived between the pages")
    second = _get(app, user_id, "?page=2&page_size=2")
    assert [n["title"] for n in second.json] == ["two", "one"]
    return first, second


def test_a_notification_arriving_while_a_client_pages_reaches_the_next_poll(live, quiet_cluster):
    app, user_id = live
    first, second = _page_around_an_arrival(app, user_id)
    held = {n["id"] for n in first.json + second.json}

    polled = _get(app, user_id, f"?cursor={second.headers['X-Inbox-Cursor']}")

    assert polled.status_code == 200
    assert [n["title"] for n in polled.json if n["id"] not in held] == ["arrived between the pages"]


def test_ack_all_with_a_later_pages_cursor_leaves_what_arrived_between_the_pages_unread(
    live, quiet_cluster
):
    app, user_id = live
    _, second = _page_around_an_arrival(app, user_id)

    r = _post_ack_all(app, user_id, json={"cursor": second.headers["X-Inbox-Cursor"]})

    assert r.status_code == 200
    # Only rows of transactions below the first page's are surely shown: "three" (of page 1)
    # may stay unread with the arrival, never the other way round.
    assert _unread_titles(app, user_id) == ["arrived between the pages", "three"]
