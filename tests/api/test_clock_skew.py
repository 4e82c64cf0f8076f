"""Hosts whose clocks disagree stamp notifications alike: the database's clock, not the host's.

A host's clock is moved an hour ahead (NTP down, a VM resumed) by replacing `datetime` where the
app reads the host's time; the database's clock is the one every host shares.
"""

from __future__ import annotations

import datetime as datetime_module
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text

from api.models import Delivery, Notification
from tests.factories import A1, centre, make_device, make_task

AHEAD = timedelta(hours=2)


class _Ahead(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.now(tz) + AHEAD


@pytest.fixture
def host_ahead(monkeypatch):
    """This host's clock runs two hours ahead of the database's."""
    monkeypatch.setattr(datetime_module, "datetime", _Ahead)
    import api.clock

    monkeypatch.setattr(api.clock, "datetime", _Ahead)


def database_now(session) -> datetime:
    return session.scalar(text("SELECT clock_timestamp()"))


def test_an_api_host_ahead_of_the_database_stamps_its_notifications_by_the_database(
    client, session, world, host_ahead
):
    """The API stamped a notification (and made its pushes due) at its host's time: a host
    two hours ahead put its notifications two hours into everyone else's future (the inbox's
    `since` and its order disagree between hosts) and held their pushes back two hours."""
    make_device(session, world.users["worker_a1"], "fcm-skew", now=database_now(session))
    lon, lat = centre(A1)
    before = database_now(session)
    r = client.post(
        "/api/v1/tasks",
        json={
            "source": "window",
            "type": "help",
            "title": "楼道灯不亮",
            "urgency": "general",
            "location": {"lon": lon, "lat": lat},
        },
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 201, r.json
    after = database_now(session)
    stamps = session.scalars(select(Notification.created_at)).all()
    due = session.scalars(select(Delivery.next_attempt_at)).all()
    assert stamps and due
    assert all(before <= at <= after for at in stamps + due)


def test_the_deadline_tick_on_a_host_ahead_of_the_database_escalates_nothing_early(
    app, session, world, host_ahead
):
    """The push worker's deadline tick read its host's clock: a host two hours ahead escalated a
    danger-to-life task (2 h to answer) the moment it was dispatched, and stamped the leader's
    notification two hours ahead."""
    from click.testing import CliRunner

    from api import cli

    task = make_task(session, now=database_now(session), urgency="danger")
    app.config.update(GRIDWORK_PUSH_BACKEND="log")
    with app.app_context():
        result = CliRunner().invoke(cli.main, ["push-worker", "--once"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    session.refresh(task)
    assert (task.status, task.escalated_at, task.warned_at) == ("dispatched", None, None)
    assert (
        session.scalar(select(Notification.id).where(Notification.kind == "task_escalated")) is None
    )


def test_the_offset_to_the_database_clock_is_read_again_when_the_host_clock_jumps(
    app, session, monkeypatch
):
    """The API corrects its host's clock by the offset to the database's, read once a minute:
    a host clock stepped meanwhile (NTP, a VM resumed) is noticed at once, not a minute late."""
    from api import clock

    with app.app_context():
        before = database_now(session)
        assert before - timedelta(seconds=1) <= clock.now() <= database_now(session)
        monkeypatch.setattr(datetime_module, "datetime", _Ahead)
        monkeypatch.setattr(clock, "datetime", _Ahead)  # stepped two hours ahead
        assert abs(clock.now() - database_now(session)) < timedelta(seconds=1)


def test_the_api_reads_the_database_clock_without_a_query_per_request(
    client, world, app, monkeypatch
):
    """A request's clock costs no statement of its own: the offset is kept between requests."""
    from sqlalchemy import event

    from api import clock
    from api.extensions import db

    client.get("/api/v1/auth/me", headers=world.auth("worker_a1"))  # reads the offset
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):
            r = client.get("/api/v1/auth/me", headers=world.auth("worker_a1"))
            assert r.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "clock_timestamp" in s]
    assert clock._reading is not None
