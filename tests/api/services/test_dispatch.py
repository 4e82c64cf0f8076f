"""Dispatch: the grid's worker on duty, else the reliever or B-post worker, else the leader."""

from datetime import UTC, date, datetime, timedelta

from api.models import Community, Leave, Roster, Shift
from api.services.dispatch import choose_assignee
from tests.factories import A1, A, make_task, make_user

TUESDAY = date(2026, 11, 17)
SATURDAY = date(2026, 11, 21)
T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing


def leave(session, user, start=TUESDAY, end=TUESDAY, status="approved"):
    session.add(Leave(worker_id=user.id, start_date=start, end_date=end, status=status))
    session.flush()


def roster(session, status="published", week="2026-W47"):
    row = Roster(community_code=A, week=week, status=status)
    session.add(row)
    session.flush()
    return row


def shift(session, roster_row, user, post="B", grid=None, relief_for=None, day=TUESDAY):
    session.add(
        Shift(
            roster_id=roster_row.id,
            date=day,
            post=post,
            worker_id=user.id,
            grid_id=grid.id if grid is not None else None,
            relief_for_id=relief_for.id if relief_for is not None else None,
        )
    )
    session.flush()


def test_without_a_roster_the_grid_worker_is_on_duty_on_a_working_day(session, world):
    assert choose_assignee(session, world.grids[A1], TUESDAY)[0] == world.users["worker_a1"]


def test_without_a_roster_nobody_is_on_duty_at_the_weekend_so_the_leader_gets_it(session, world):
    assert choose_assignee(session, world.grids[A1], SATURDAY)[0] == world.users["leader_a"]


def roster_settings(session, **settings):
    community = session.get(Community, A)
    community.settings = {**(community.settings or {}), "roster": settings}
    session.flush()


def test_without_a_roster_nobody_is_on_duty_on_a_public_holiday(session, world):
    roster_settings(session, holidays=[TUESDAY.isoformat()])
    assignee, reason = choose_assignee(session, world.grids[A1], TUESDAY)
    assert (assignee, reason) == (world.users["leader_a"], "grid leader (no worker on duty)")


def test_without_a_roster_the_grid_worker_is_on_duty_on_an_adjusted_working_saturday(
    session, world
):
    roster_settings(session, extra_working_days=[SATURDAY.isoformat()])
    assert choose_assignee(session, world.grids[A1], SATURDAY)[0] == world.users["worker_a1"]


def test_without_a_roster_the_communitys_working_weekdays_count(session, world):
    roster_settings(session, working_days=[2, 3, 4, 5, 6])
    assert choose_assignee(session, world.grids[A1], SATURDAY)[0] == world.users["worker_a1"]
    assert (
        choose_assignee(session, world.grids[A1], TUESDAY + timedelta(days=-1))[0]
        == (world.users["leader_a"])
    )


def test_without_a_roster_a_worker_on_a_rest_day_is_off_duty(session, world):
    worker = world.users["worker_a1"]
    roster_settings(session, rest_days={str(worker.id): [TUESDAY.isoweekday()]})
    assert choose_assignee(session, world.grids[A1], TUESDAY)[0] == world.users["leader_a"]


def test_a_worker_on_approved_leave_is_passed_over_for_the_reliever(session, world):
    published = roster(session)
    reliever = make_user(session, "reliever", "worker", community=A)
    leave(session, world.users["worker_a1"])
    shift(session, published, reliever, grid=world.grids[A1], relief_for=world.users["worker_a1"])
    assignee, reason = choose_assignee(session, world.grids[A1], TUESDAY)
    assert (assignee, reason) == (reliever, "reliever")


def test_leave_only_requested_does_not_take_the_worker_off_duty(session, world):
    leave(session, world.users["worker_a1"], status="requested")
    assert choose_assignee(session, world.grids[A1], TUESDAY)[0] == world.users["worker_a1"]


def test_without_a_reliever_the_b_post_worker_in_the_grid_gets_it(session, world):
    published = roster(session)
    leave(session, world.users["worker_a1"])
    shift(session, published, world.users["worker_a2"], grid=world.grids[A1])
    assignee, reason = choose_assignee(session, world.grids[A1], TUESDAY)
    assert (assignee, reason) == (world.users["worker_a2"], "B-post on duty")


def test_a_b_post_held_by_an_account_made_a_community_admin_gets_no_task(session, world):
    """An account made a community admin keeps its rostered shifts (listed for the office to
    re-roster, `shifts_ahead`): its B-post in the grid drew the grid's new tasks to the admin,
    out of field work, whom no reassign may name."""
    published = roster(session)
    leave(session, world.users["worker_a1"])
    moved_up = world.users["worker_a2"]
    shift(session, published, moved_up, grid=world.grids[A1])
    moved_up.role, moved_up.grids = "community_admin", []
    session.flush()
    assignee, reason = choose_assignee(session, world.grids[A1], TUESDAY)
    assert (assignee, reason) == (world.users["leader_a"], "grid leader (no worker on duty)")


def test_the_reliever_of_a_grid_its_leader_holds_gets_its_task(session, world):
    """A grid held by its leader is relieved in the leader's name (the solver names the grid's
    first holder): the reliever out in the grid gets its task, not the leader away from it."""
    published = roster(session)
    reliever = make_user(session, "reliever", "worker", community=A)
    leave(session, world.users["worker_a1"])
    leave(session, world.users["leader_a"])
    shift(session, published, reliever, grid=world.grids[A1], relief_for=world.users["leader_a"])
    assignee, reason = choose_assignee(session, world.grids[A1], TUESDAY)
    assert (assignee, reason) == (reliever, "reliever")


def test_a_worker_without_a_shift_in_the_published_roster_is_off_duty(session, world):
    published = roster(session)
    shift(session, published, world.users["worker_a2"], post="A")
    assert choose_assignee(session, world.grids[A1], TUESDAY)[0] == world.users["leader_a"]


def test_a_worker_with_an_a_post_shift_is_on_duty(session, world):
    published = roster(session)
    shift(session, published, world.users["worker_a1"], post="A")
    assert choose_assignee(session, world.grids[A1], TUESDAY)[0] == world.users["worker_a1"]


def test_of_a_grids_workers_on_duty_the_one_out_in_it_gets_its_task_before_one_at_the_window(
    session, world
):
    """A grid of two workers, one at the hall window today (A-post), the other door to door in
    the grid (its B-post): the task went to the first by id, the one who cannot leave the
    window, while the other was a few doors from the resident."""
    published = roster(session)
    second = make_user(session, "worker_a1b", "worker", grids=[A1])
    shift(session, published, world.users["worker_a1"], post="A")
    shift(session, published, second, grid=world.grids[A1])
    assert choose_assignee(session, world.grids[A1], TUESDAY) == (second, "grid worker on duty")


def test_a_draft_roster_does_not_count(session, world):
    roster(session, status="draft")
    assert choose_assignee(session, world.grids[A1], TUESDAY)[0] == world.users["worker_a1"]


def test_on_leave_and_no_one_covering_goes_to_the_grid_leader(session, world):
    leave(session, world.users["worker_a1"])
    assert choose_assignee(session, world.grids[A1], TUESDAY)[0] == world.users["leader_a"]


def test_a_new_task_is_dispatched_and_its_assignee_notified_in_the_same_transaction(session, world):
    from api.models import Notification

    task = make_task(session, now=T0)
    assert (task.status, task.assignee_id) == ("dispatched", world.users["worker_a1"].id)
    [note] = session.query(Notification).filter_by(user_id=world.users["worker_a1"].id).all()
    assert (note.kind, note.collapse_key, note.data["task_id"]) == (
        "task_dispatched",
        f"task:{task.id}",
        str(task.id),
    )
    assert [e.action for e in task.events] == ["create", "dispatch"]


def test_a_task_made_on_a_holiday_without_a_roster_goes_to_the_grid_leader(session, world):
    roster_settings(session, holidays=[TUESDAY.isoformat()])
    task = make_task(session, now=T0)
    assert task.assignee_id == world.users["leader_a"].id


def test_a_grid_leader_on_leave_is_not_the_fallback(session, world):
    """Nobody on duty and the leader away: the task waits for the admin, who is told."""
    leave(session, world.users["leader_a"], start=SATURDAY, end=SATURDAY)
    assert choose_assignee(session, world.grids[A1], SATURDAY) == (None, "nobody to dispatch to")
    saturday_10am = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    task = make_task(session, now=saturday_10am)
    assert (task.status, task.assignee_id) == ("new", None)
    from api.models import Notification

    told = session.query(Notification).filter_by(kind="task_unassigned").all()
    assert [n.user_id for n in told] == [world.users["admin_a"].id]


def test_the_leaders_leave_is_read_on_the_beijing_day(session, world):
    """Friday 17:00 UTC is Saturday 01:00 in Beijing: the Saturday leave counts."""
    leave(session, world.users["leader_a"], start=SATURDAY, end=SATURDAY)
    task = make_task(session, now=datetime(2026, 11, 20, 17, 0, tzinfo=UTC))
    assert task.assignee_id is None


# --- a visit's follow-up: the worker who found it ----------------------------------------------
SATURDAY_10AM = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def follow_up_of(session, world, worker, grid_code=A1, now=T0):
    """The follow-up task of a visit `worker` made to the grid's first household at `now`."""
    import uuid

    from api.models import Visit
    from api.services.tasks import task_from_visit

    household = world.households[grid_code][0]
    visit = Visit(
        id=uuid.uuid4(), worker_id=worker.id, household_id=household.id,
        grid_id=household.grid_id, visited_at=now, utc_offset_minutes=480, week="2026-W47",
        location=household.location, datum="wgs84", raw_lon=116.4, raw_lat=39.92,
        outcome="met", follow_up=True, follow_up_note="楼道灯坏了", grade="ok",
    )  # fmt: skip
    session.add(visit)
    session.flush()
    return task_from_visit(session, visit, now=now)


def test_a_follow_up_found_on_a_day_off_goes_to_the_worker_who_found_it(session, world):
    """A worker out on Saturday (nobody rostered) records a follow-up in their own grid: it went
    to the grid leader, who knew nothing of the door, while the worker who stood at it, met the
    resident and wrote the note was told nothing."""
    task = follow_up_of(session, world, world.users["worker_a1"], now=SATURDAY_10AM)
    assert task.assignee_id == world.users["worker_a1"].id
    assert task.events[-1].note == "the worker who found it"


def test_of_two_workers_of_a_grid_the_one_who_found_it_gets_the_follow_up(session, world):
    """On a working day both are on duty; the first by id got every follow-up of the grid."""
    second = make_user(session, "worker_a1b", "worker", grids=[A1])
    assert follow_up_of(session, world, second).assignee_id == second.id


def test_a_finder_on_leave_on_the_day_of_the_sync_is_passed_over(session, world):
    """A visit made before the leave, synced on its first day: dispatch as for any task."""
    leave(session, world.users["worker_a1"], start=SATURDAY, end=SATURDAY)
    task = follow_up_of(session, world, world.users["worker_a1"], now=SATURDAY_10AM)
    assert task.assignee_id == world.users["leader_a"].id


def test_a_finder_who_does_not_hold_the_grid_leaves_it_to_dispatch(session, world):
    """A worker of the next grid relieving in this one: the grid's own worker follows it up."""
    task = follow_up_of(session, world, world.users["worker_a2"])
    assert task.assignee_id == world.users["worker_a1"].id
