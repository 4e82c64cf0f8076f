"""household_last_visits: each household's latest visit, kept by the triggers on visits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update

from api.models import HouseholdLastVisit, Visit
from tests.factories import A1, make_visit

T0 = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)


def last(session, household):
    return session.scalar(
        select(HouseholdLastVisit.last_visited_at).where(
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
