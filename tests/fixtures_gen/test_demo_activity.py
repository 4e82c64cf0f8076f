"""`gridwork seed demo`'s activity (api/demo.py): the visits it records are ones a worker could
make, so the demo's first screens do not show the ingest's doubts about the demo itself."""

from __future__ import annotations

from sqlalchemy import func, select

from api.models import Visit
from tests.api.test_demo_rerun import _seed_demo


def test_a_demo_worker_is_never_at_two_doors_at_once(app, session, connection, monkeypatch):
    """The second weekly visit of a household living alone was put on a slot of the worker's
    round already taken by another household's visit: two visits of one worker at the same
    minute, in different buildings, which the ingest grades `impossible_speed` (suspect)."""
    monkeypatch.setitem(app.config, "GRIDWORK_ENV", "development")
    session.scalar(select(func.count(Visit.id)))  # its transaction begun outside the savepoint
    mark = connection.begin_nested()
    try:
        _seed_demo(app, monkeypatch)
        visits = session.scalar(select(func.count(Visit.id)))
        twins = session.scalar(
            select(func.count()).select_from(
                select(Visit.worker_id, Visit.visited_at)
                .group_by(Visit.worker_id, Visit.visited_at)
                .having(func.count() > 1)
                .subquery()
            )
        )
        too_fast = session.scalar(
            select(func.count(Visit.id)).where(Visit.reasons.contains(["impossible_speed"]))
        )
    finally:
        mark.rollback()
        session.expire_all()
    assert visits > 1000
    assert (twins, too_fast) == (0, 0)


def test_the_demos_follow_ups_are_on_both_lists(app, session, connection, monkeypatch):
    """The demo's visits bring up needs and problems (需求清单 / 问题清单), each follow-up's
    task on its visit's list: the reports page and the lists read something of each."""
    from api.models import Task

    monkeypatch.setitem(app.config, "GRIDWORK_ENV", "development")
    session.scalar(select(func.count(Visit.id)))  # its transaction begun outside the savepoint
    mark = connection.begin_nested()
    try:
        _seed_demo(app, monkeypatch)
        kinds = dict(
            session.execute(
                select(Task.list_kind, func.count())
                .join(Visit, Visit.id == Task.visit_id)
                .where(Visit.follow_up_kind == Task.list_kind)
                .group_by(Task.list_kind)
            ).all()
        )
        unlisted = session.scalar(
            select(func.count(Task.id)).where(Task.source == "visit", Task.list_kind.is_(None))
        )
    finally:
        mark.rollback()
        session.expire_all()
    assert set(kinds) == {"need", "problem"} and unlisted == 0


def test_seeded_early_on_a_monday_the_weeks_first_visits_take_a_slot_each(
    app, session, connection, monkeypatch
):
    """At 09:20 on a Monday the week's round has ten two-minute slots gone: the demo put nearly
    half of each worker's households on them, several a slot, graded impossible speed."""
    from datetime import datetime, time, timedelta

    from click.testing import CliRunner

    from api.cli import main
    from api.demo import DemoActivity
    from api.models import User
    from api.services.weeks import LOCAL, current_week, week_dates

    monkeypatch.setitem(app.config, "GRIDWORK_ENV", "development")
    session.scalar(select(func.count(Visit.id)))  # its transaction begun outside the savepoint
    monday = datetime.combine(week_dates(current_week())[0], time(9, 20), LOCAL)
    if monday > datetime.now(LOCAL) - timedelta(minutes=5):
        monday -= timedelta(days=7)  # not a time to come: the ingest would grade it so
    mark = connection.begin_nested()
    try:
        with app.app_context():
            result = CliRunner().invoke(main, ["seed", "demo", "--no-activity"])
            assert result.exit_code == 0, result.output
            users = session.scalars(select(User).where(User.role.in_(["worker"]))).all()
            DemoActivity(app, session).run(users, [], now=monday)
        this_week = [Visit.visited_at >= monday - timedelta(minutes=20)]
        twins = session.scalar(
            select(func.count()).select_from(
                select(Visit.worker_id, Visit.visited_at)
                .where(*this_week)
                .group_by(Visit.worker_id, Visit.visited_at)
                .having(func.count() > 1)
                .subquery()
            )
        )
        visits = session.scalar(select(func.count(Visit.id)).where(*this_week))
    finally:
        mark.rollback()
        session.expire_all()
    assert visits > 0
    assert twins == 0
