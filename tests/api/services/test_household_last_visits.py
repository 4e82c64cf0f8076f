"""household_last_visits: each household's latest visit, kept by the triggers on visits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, text, update

from api.models import HouseholdLastVisit, Visit
from tests.factories import A1, make_visit

T0 = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)


def last(session, household):
    return session.scalar(
        select(HouseholdLastVisit.last_visited_at).where(
            HouseholdLastVisit.household_id == household.id
        )
    )


def attempt(session, household):
    return session.scalar(
        select(HouseholdLastVisit.last_attempt_at).where(
            HouseholdLastVisit.household_id == household.id
        )
    )


def test_a_household_never_visited_has_no_row(session, world):
    assert last(session, world.households[A1][0]) is None


def test_a_visit_sets_the_last_visit(session, world):
    home = world.households[A1][0]
    make_visit(session, world.users["worker_a1"], home, T0)
    assert last(session, home) == T0


def test_a_late_synced_older_visit_does_not_move_it_back(session, world):
    home = world.households[A1][0]
    make_visit(session, world.users["worker_a1"], home, T0)
    make_visit(session, world.users["worker_a1"], home, T0 - timedelta(days=3))
    assert last(session, home) == T0


def test_one_batch_of_many_visits_keeps_the_latest_per_household(session, world):
    a, b = world.households[A1][:2]
    worker = world.users["worker_a1"]
    for k in range(3):
        make_visit(session, worker, a, T0 + timedelta(hours=k))
        make_visit(session, worker, b, T0 - timedelta(hours=k))
    assert (last(session, a), last(session, b)) == (T0 + timedelta(hours=2), T0)


def test_deleting_the_latest_visit_falls_back_to_the_one_before(session, world):
    home = world.households[A1][0]
    worker = world.users["worker_a1"]
    make_visit(session, worker, home, T0 - timedelta(days=7))
    latest = make_visit(session, worker, home, T0)
    session.execute(delete(Visit).where(Visit.id == latest.id))
    assert last(session, home) == T0 - timedelta(days=7)


def test_deleting_the_only_visit_removes_the_row(session, world):
    home = world.households[A1][0]
    only = make_visit(session, world.users["worker_a1"], home, T0)
    session.execute(delete(Visit).where(Visit.id == only.id))
    assert last(session, home) is None


def test_moving_a_visit_to_another_household_updates_both(session, world):
    a, b = world.households[A1][:2]
    visit = make_visit(session, world.users["worker_a1"], a, T0)
    session.execute(update(Visit).where(Visit.id == visit.id).values(household_id=b.id))
    assert (last(session, a), last(session, b)) == (None, T0)


def test_an_attempt_that_found_nobody_is_not_the_last_visit(session, world):
    # As the report counts: a nobody_home attempt is not a visit; it is the last attempt.
    home = world.households[A1][0]
    worker = world.users["worker_a1"]
    make_visit(session, worker, home, T0 - timedelta(days=7))
    make_visit(session, worker, home, T0, outcome="nobody_home")
    assert (last(session, home), attempt(session, home)) == (T0 - timedelta(days=7), T0)


def test_a_household_only_attempted_has_an_attempt_and_no_visit(session, world):
    home = world.households[A1][0]
    make_visit(session, world.users["worker_a1"], home, T0, outcome="nobody_home")
    assert (last(session, home), attempt(session, home)) == (None, T0)


def test_one_statement_of_visits_and_attempts_keeps_each_per_household(session, world):
    home = world.households[A1][0]
    worker = world.users["worker_a1"]
    seen = make_visit(session, worker, home, T0)
    session.execute(delete(Visit).where(Visit.id == seen.id))
    rows = [
        {**_row(seen), "id": uuid.uuid4(), "visited_at": T0, "outcome": "met"},
        {
            **_row(seen),
            "id": uuid.uuid4(),
            "visited_at": T0 + timedelta(hours=1),
            "outcome": "nobody_home",
        },
    ]
    session.execute(insert(Visit).values(rows))  # one INSERT: the statement trigger sees both
    assert (last(session, home), attempt(session, home)) == (T0, T0 + timedelta(hours=1))


def _row(visit):
    return {c.key: getattr(visit, c.key) for c in Visit.__table__.columns}


def test_correcting_an_outcome_to_nobody_home_takes_the_visit_back(session, world):
    home = world.households[A1][0]
    worker = world.users["worker_a1"]
    make_visit(session, worker, home, T0 - timedelta(days=7))
    latest = make_visit(session, worker, home, T0)
    session.execute(update(Visit).where(Visit.id == latest.id).values(outcome="nobody_home"))
    assert (last(session, home), attempt(session, home)) == (T0 - timedelta(days=7), T0)


def test_correcting_a_visits_time_moves_the_last_visit(session, world):
    home = world.households[A1][0]
    visit = make_visit(session, world.users["worker_a1"], home, T0)
    later = T0 + timedelta(hours=3)
    session.execute(update(Visit).where(Visit.id == visit.id).values(visited_at=later))
    assert (last(session, home), attempt(session, home)) == (later, later)


def test_an_update_changing_no_household_time_or_outcome_leaves_the_row_alone(session, world):
    """Retention's coarsening of a visit's point (and a note's edit) changes nothing the last
    visit is made of: the household's row is neither deleted nor written again (two runs
    doing so at once collided, `test_retention_races.py`)."""
    home = world.households[A1][0]
    visit = make_visit(session, world.users["worker_a1"], home, T0)
    version = text("SELECT ctid::text FROM household_last_visits WHERE household_id = :h")
    before = session.scalar(version, {"h": home.id})
    session.execute(update(Visit).where(Visit.id == visit.id).values(notes="", accuracy_m=None))
    assert session.scalar(version, {"h": home.id}) == before
    assert last(session, home) == T0


def test_migration_0043_backfills_the_last_visit_that_found_someone(own_database_url):
    """Backfill: rows written by 0011's triggers held the latest visit of any outcome; after
    0043 `last_visited_at` is the latest that found someone and `last_attempt_at` the latest."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from api.cli import alembic_config
    from api.extensions import db
    from tests.factories import box, build_app, make_grid, make_household, make_user

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        code = "110109009009001"
        make_grid(session, code, box(116.5, 39.7, 116.51, 39.71))
        worker = make_user(session, "w0043", "worker", grids=[code]).id
        seen, tried = (make_household(session, 116.505, 39.705, room=r).id for r in ("1", "2"))
    with app.app_context():
        db.engine.dispose()
    engine = create_engine(own_database_url)
    config = alembic_config(own_database_url)
    insert = text(
        "INSERT INTO visits (id, worker_id, household_id, grid_id, visited_at,"
        " utc_offset_minutes, week, location, datum, raw_lon, raw_lat, outcome, grade)"
        " SELECT gen_random_uuid(), :w, h.id, h.grid_id, :at, 480, '2026-W47', h.location,"
        " 'wgs84', 116.505, 39.705, :o, 'ok' FROM households h WHERE h.id = :h"
    )
    try:
        command.downgrade(config, "0042")
        with engine.begin() as conn:
            for household, at, outcome in [
                (seen, T0 - timedelta(days=7), "met"),
                (seen, T0, "nobody_home"),
                (tried, T0, "nobody_home"),
            ]:
                conn.execute(insert, {"w": worker, "h": household, "at": at, "o": outcome})
        command.upgrade(config, "head")
        with engine.begin() as conn:
            rows = conn.execute(
                text(
                    "SELECT household_id, last_visited_at, last_attempt_at"
                    " FROM household_last_visits ORDER BY household_id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (seen, T0 - timedelta(days=7), T0),
            (tried, None, T0),
        ]
    finally:
        engine.dispose()
