"""The three rates: response, resolution, satisfaction, per grid and overall."""

from datetime import UTC, datetime, timedelta

from api.models import Task
from api.services.rates import three_rates
from tests.factories import A1, A2, A

T0 = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)


def task(session, grid, **fields):
    defaults = dict(
        source="hotline",
        type="complaint",
        title="t",
        urgency="general",
        created_at=T0,
        due_at=T0 + timedelta(days=7),
        first_contact_due_at=T0 + timedelta(hours=2),
        status="dispatched",
    )
    row = Task(grid_id=grid.id, **{**defaults, **fields})
    session.add(row)
    session.flush()
    return row


def test_rates_count_response_resolution_and_satisfaction(session, world):
    g = world.grids[A1]
    task(
        session,
        g,
        first_contact_at=T0 + timedelta(hours=1),
        status="closed",
        satisfaction="satisfied",
    )
    task(session, g, first_contact_at=T0 + timedelta(hours=3), status="resolved")
    task(session, g, status="dispatched")
    task(session, g, first_contact_at=T0, status="closed", satisfaction="unsatisfied")
    rates = three_rates(session, T0, T0 + timedelta(days=7), grid_ids=[g.id])[None]
    assert (rates.opened, rates.response_rate, rates.resolution_rate) == (4, 50.0, 75.0)
    assert rates.satisfaction_rate == 50.0


def test_unresolved_tasks_past_their_deadline_are_overdue(session, world):
    task(session, world.grids[A1], due_at=T0 + timedelta(hours=1))
    rates = three_rates(session, T0, T0 + timedelta(days=7), community_code=A)[None]
    assert rates.overdue == 1


def test_rates_group_by_grid(session, world):
    task(session, world.grids[A1])
    task(session, world.grids[A2])
    task(session, world.grids[A2])
    by_grid = three_rates(session, T0, T0 + timedelta(days=7), community_code=A, group_by_grid=True)
    assert {k: v.opened for k, v in by_grid.items()} == {
        world.grids[A1].id: 1,
        world.grids[A2].id: 2,
    }


def test_no_tasks_gives_no_rate_rather_than_zero(session, world):
    rates = three_rates(session, T0, T0 + timedelta(days=7), grid_ids=[world.grids[A1].id])[None]
    assert rates.opened == 0 and rates.response_rate is None


def test_tasks_outside_the_period_are_not_counted(session, world):
    task(session, world.grids[A1], created_at=T0 - timedelta(days=1))
    assert three_rates(session, T0, T0 + timedelta(days=7), community_code=A)[None].opened == 0


def test_a_past_periods_overdue_is_judged_at_its_end_as_the_weekly_report_judges_it(session, world):
    """Read two weeks later, the rates of a week counted as overdue the tasks open *now* past
    their deadline *now*: a task resolved late, after the week, was not overdue in it, and one
    whose deadline fell after the week was, so the week's figure changed each day and
    disagreed with its weekly report's 超期 (deadline passed by the week's end, by when the
    task was resolved)."""
    end = T0 + timedelta(days=7)
    task(  # late: due in the week, resolved only after it ended
        session,
        world.grids[A1],
        due_at=T0 + timedelta(days=1),
        status="resolved",
        resolved_at=T0 + timedelta(days=9),
    )
    task(session, world.grids[A2], due_at=T0 + timedelta(days=8))  # due after the week
    later = T0 + timedelta(days=14)
    by_grid = three_rates(session, T0, end, community_code=A, group_by_grid=True, now=later)
    assert {k: v.overdue for k, v in by_grid.items()} == {
        world.grids[A1].id: 1,
        world.grids[A2].id: 0,
    }
    # While the period is under way, a deadline is judged by the time it is read.
    during = three_rates(
        session, T0, end, community_code=A, group_by_grid=True, now=T0 + timedelta(days=2)
    )
    assert {k: v.overdue for k, v in during.items()} == {
        world.grids[A1].id: 1,
        world.grids[A2].id: 0,
    }
