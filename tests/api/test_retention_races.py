"""Retention run by two push workers at once (or a run overlapping a slow one): each takes
rows the other does not hold, and neither fails for the other."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from api.models import HouseholdLastVisit, Visit
from api.services import retention
from tests.factories import A1, build_app, build_world, make_visit

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CUTOFF = NOW - 90 * DAY


def _waiting(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
        )


def test_two_runs_coarsening_visits_of_one_household_at_once_both_succeed(own_database_url):
    """Coarsening changes no visit's household, time or outcome, yet the last-visit trigger
    (migration 0011) deleted and inserted again the household's row for each UPDATE: a second
    run coarsening another visit of the same household waited for the first, then inserted
    the row the first had inserted meanwhile (duplicate key), and failed; with several
    households in both, they deadlocked."""
    app = build_app(own_database_url)
    engine = create_engine(own_database_url)
    try:
        with Session(engine) as session, app.app_context():
            world = build_world(session, app)
            worker, household = world.users["worker_a1"], world.households[A1][0]
            first = make_visit(session, worker, household, NOW - 100 * DAY).id
            second = make_visit(session, worker, household, NOW - 95 * DAY).id
            household_id = household.id
            last = session.get(HouseholdLastVisit, household_id).last_visited_at
            session.commit()
        with Session(engine) as one, ThreadPoolExecutor(1) as pool:
            assert retention.coarsen_visit_tracks(one, CUTOFF, NOW, 1)[0] == 1  # the first

            def other():
                with Session(engine) as two, two.begin():
                    return retention.coarsen_visit_tracks(two, CUTOFF, NOW, 1)[0]

            done = pool.submit(other)  # the second (the first is held)
            deadline = time.monotonic() + 20
            while not done.done() and not _waiting(engine) and time.monotonic() < deadline:
                time.sleep(0.01)
            one.commit()
            assert done.result(timeout=60) == 1
        with Session(engine) as session:
            coarsened = session.scalars(select(Visit.id).where(Visit.coarsened_at.is_not(None)))
            assert set(coarsened) == {first, second}
            assert session.get(HouseholdLastVisit, household_id).last_visited_at == last
    finally:
        engine.dispose()
