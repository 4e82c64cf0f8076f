"""Hosts whose clocks disagree stamp notifications alike: the database's clock, not the host's.

A host's clock is moved an hour ahead (NTP down, a VM resumed) by replacing `datetime` where the
app reads the host's time; the database's clock is the one every host shares.
"""

from __future__ import annotations

import datetime as datetime_module
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text

from api.models import Delivery, Notification
from tests.factories import A1, centre, make_device, make_task, make_task_at

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
    # The task goes to the grid's worker on a working day, to its leader on a rest day (in
    # Asia/Shanghai): both have a phone, so a push is due whatever day the test runs.
    for name in ("worker_a1", "leader_a"):
        make_device(session, world.users[name], f"fcm-skew-{name}", now=database_now(session))
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

    if hasattr(clock, "_reading"):  # an offset read by an earlier test: read it afresh
        monkeypatch.setattr(clock, "_reading", None)
    with app.app_context():
        before = database_now(session)
        # The offset is read from a midpoint: a few ms either way of the database's own clock.
        now = clock.now()
        assert (
            before - timedelta(seconds=1)
            <= now
            <= database_now(session) + timedelta(milliseconds=50)
        )
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


TICK = timedelta(seconds=0.5)


@pytest.fixture
def slow_host(monkeypatch):
    """This host's clock moves on half a second at every reading of the time of day (a request
    that takes its time, compressed), its monotonic clock along with it: no jump is seen."""
    import time

    from api import clock

    elapsed = [timedelta(0)]

    class _Slow(datetime):
        @classmethod
        def now(cls, tz=None):
            elapsed[0] += TICK
            return datetime.now(tz) + elapsed[0]

    def monotonic() -> float:
        return time.monotonic() + elapsed[0].total_seconds()

    monkeypatch.setattr(clock, "datetime", _Slow)
    monkeypatch.setattr(clock, "time", SimpleNamespace(monotonic=monotonic))
    monkeypatch.setattr(clock, "_reading", None)  # the slow host's offset, dropped at the end


def test_one_request_reads_one_instant_so_tasks_listed_not_overdue_are_not_shown_overdue(
    app, client, session, world, slow_host
):
    """A request read the clock again at every use: the list filtered `?overdue=false` at one
    instant and marked each task `overdue` at a later one, so a request that took its time
    answered tasks not overdue marked overdue. The first reading in a request fixes its
    instant for the rest of it."""
    from api import clock

    household = world.households[A1][0]
    with app.app_context():
        start = clock.now()
    for k in range(40):  # a deadline every half second from now on, on the slow host's clock
        make_task_at(session, household, start + (k + 0.5) * TICK)
    session.commit()

    r = client.get(
        "/api/v1/tasks", query_string={"overdue": "false"}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200, r.json
    assert r.json  # deadlines still ahead
    assert [t["due_at"] for t in r.json if t["overdue"]] == []


def test_outside_a_request_every_reading_is_the_time_it_is_read(app, slow_host):
    """A worker's long-lived app context (the push worker, the CLI) is no request: its clock
    moves on between readings, or its rounds would all run at the instant it started."""
    from api import clock

    with app.app_context():
        first = clock.now()
        assert clock.now() > first


class _AheadAnywhere(_Ahead):
    """`_Ahead` for modules that also build datetimes: what they build is a plain datetime."""

    def __new__(cls, *args, **kwargs):
        return datetime(*args, **kwargs)


@pytest.fixture
def host_ahead_everywhere(monkeypatch):
    """This host's clock two hours ahead wherever the app reads the host's time: in every
    module of `api` that imported `datetime`, not only in `api.clock`."""
    import sys

    from api import clock

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "api" and getattr(module, "datetime", None) is datetime:
            monkeypatch.setattr(module, "datetime", _AheadAnywhere)
    monkeypatch.setattr(datetime_module, "datetime", _AheadAnywhere)
    monkeypatch.setattr(clock, "_reading", None)


def test_a_host_ahead_of_the_database_stamps_visits_leave_and_grid_versions_by_the_database(
    app, client, session, world, host_ahead_everywhere
):
    """Services stamped with their host's clock where they did not take the API's: a host two
    hours ahead received visits two hours after they were made (their evidence then judged a
    visit two hours late), decided leave and drew grid versions in everyone else's future,
    while the rows beside them (notifications, household history) carry the database's time."""
    from api.models import GridVersion, Leave, Visit
    from api.services import grids as grid_service
    from tests.factories import box, grid_feature, visit_item

    before = database_now(session)
    item = visit_item(world.households[A1][0], at=before)
    r = client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=world.auth("worker_a1")
    )
    assert r.status_code == 200 and r.json["results"][0]["status"] == "created", r.json
    day = (before + timedelta(days=7)).date()
    r = client.post(
        "/api/v1/leaves",
        json={"start_date": str(day), "end_date": str(day), "reason": "家事"},
        headers=world.auth("worker_a1"),
    )
    assert r.status_code == 201, r.json
    r = client.post(
        f"/api/v1/leaves/{r.json['id']}/decision",
        json={"decision": "approve"},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 200, r.json
    with app.app_context():
        grid = grid_service.create_grid(
            session, None, grid_feature(A1[:12] + "009", box(116.70, 39.70, 116.71, 39.71))
        )
    after = database_now(session)

    stamps = {
        "visit received": session.scalar(select(Visit.received_at).where(Visit.id == item["id"])),
        "leave decided": session.scalar(select(Leave.decided_at).where(Leave.id == r.json["id"])),
        "grid drawn": session.scalar(
            select(GridVersion.valid_from).where(GridVersion.grid_id == grid.id)
        ),
    }
    assert {k: before <= v <= after for k, v in stamps.items()} == dict.fromkeys(stamps, True)
