"""Who hears of a task: nobody to dispatch to, escalations, returns, warnings after a reassign."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.models import Grid, Notification
from api.scope import Scope
from api.services.tasks import change_ticket_deadline, reassign, tick, transition
from tests.factories import A1, B1, C1, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
SATURDAY = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # nobody on duty without a roster


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def kinds(session, user):
    rows = session.scalars(
        select(Notification.kind).where(Notification.user_id == user.id).order_by(Notification.id)
    )
    return list(rows)


def scope(session, world, name):
    return Scope.for_user(session, world.users[name])


def test_a_task_nobody_can_take_is_told_to_the_community_admin(session, world):
    """B1 has no leader: on a Saturday the task stays new, and its admin must hear of it."""
    task = make_task(session, B1, now=SATURDAY, urgency="danger")
    assert (task.status, task.assignee_id) == ("new", None)
    assert kinds(session, world.users["admin_b"]) == ["task_unassigned"]
    note = session.scalar(select(Notification).where(Notification.kind == "task_unassigned"))
    assert note.urgent and note.data["task_id"] == str(task.id)


def test_a_task_of_a_grid_whose_leader_is_switched_off_is_told_to_the_admin(session, world):
    world.users["leader_a"].active = False
    session.flush()
    task = make_task(session, A1, now=SATURDAY)
    assert task.status == "new"
    assert kinds(session, world.users["admin_a"]) == ["task_unassigned"]


def test_a_task_nobody_can_take_where_the_community_has_no_admin_is_told_to_the_district(
    client, session, world
):
    """C1 has no worker and no leader, and community C no admin: the task waited unseen until
    its deadline, nobody told. The district's viewers, over the community, hear of it, and
    find it where the unassigned tasks are listed."""
    task = make_task(session, C1, now=SATURDAY)
    assert (task.status, task.assignee_id) == ("new", None)
    assert kinds(session, world.users["viewer_110102"]) == ["task_unassigned"]
    assert kinds(session, world.users["viewer_110101"]) == []
    session.flush()
    for query in ("status=new", "assignee=none"):
        listed = client.get(f"/api/v1/tasks?{query}", headers=world.auth("viewer_110102"))
        assert [t["id"] for t in listed.json] == [task.id]


def test_a_task_nobody_can_take_while_the_leader_is_away_and_no_admin_tells_the_leader(
    session, world
):
    """Community A's admin switched off, its leader on leave: the leader, who may still assign
    it from afar, is told, and the district over the community too."""
    from api.models import Leave

    world.users["admin_a"].active = False
    leader = world.users["leader_a"]
    session.add(Leave(worker_id=leader.id, start_date=SATURDAY.date(), end_date=SATURDAY.date(),
                      status="approved"))  # fmt: skip
    session.flush()
    task = make_task(session, A1, now=SATURDAY)
    assert (task.status, task.assignee_id) == ("new", None)
    assert kinds(session, leader) == ["task_unassigned"]
    assert kinds(session, world.users["viewer_110101"]) == ["task_unassigned"]


def test_an_unassigned_task_in_a_community_with_an_admin_is_not_told_to_the_district(
    session, world
):
    make_task(session, B1, now=SATURDAY)
    assert kinds(session, world.users["admin_b"]) == ["task_unassigned"]
    assert kinds(session, world.users["viewer_110101"]) == []


def test_a_deadline_passed_in_a_grid_without_a_leader_is_told_to_the_admin(session, world):
    task = make_task(session, B1, now=T0, urgency="danger")
    assert task.assignee_id == world.users["worker_b1"].id
    assert tick(session, T0 + timedelta(hours=2)).escalated == 1
    assert kinds(session, world.users["admin_b"]) == ["task_escalated"]


def test_a_leader_escalating_their_own_task_tells_the_admin_not_themselves(session, world):
    task = make_task(session, A1, now=SATURDAY)  # nobody on duty: the leader holds it
    leader = world.users["leader_a"]
    assert task.assignee_id == leader.id
    transition(session, scope(session, world, "leader_a"), task, "escalate", now=SATURDAY)
    assert kinds(session, leader) == ["task_dispatched"]
    assert kinds(session, world.users["admin_a"]) == ["task_escalated"]


def test_a_deadline_passed_on_the_leaders_own_task_is_told_to_the_admin(session, world):
    make_task(session, A1, now=SATURDAY, urgency="danger")
    tick(session, SATURDAY + timedelta(hours=2))
    assert kinds(session, world.users["admin_a"]) == ["task_escalated"]


def test_a_leader_returning_their_own_task_tells_the_admin(session, world):
    task = make_task(session, A1, now=SATURDAY)
    leader = world.users["leader_a"]
    transition(
        session, scope(session, world, "leader_a"), task, "return", note="不归社区", now=SATURDAY
    )
    assert kinds(session, leader) == ["task_dispatched"]
    assert kinds(session, world.users["admin_a"]) == ["task_updated"]


def test_a_worker_escalating_still_tells_the_grid_leader_only(session, world):
    task = make_task(session, A1, now=T0)
    transition(session, scope(session, world, "worker_a1"), task, "escalate", now=T0)
    assert kinds(session, world.users["leader_a"]) == ["task_escalated"]
    assert kinds(session, world.users["admin_a"]) == []


def test_a_resolved_task_tells_the_grid_leader_who_calls_the_resident_back(session, world):
    """A resolve told nobody: the leader, who makes the return call (回访) and closes the task,
    learnt of it only by polling the task list."""
    task = make_task(session, A1, now=T0)
    worker = scope(session, world, "worker_a1")
    transition(session, worker, task, "accept", now=T0)
    transition(session, worker, task, "resolve", note="已修好", now=T0 + timedelta(hours=1))
    assert kinds(session, world.users["leader_a"]) == ["task_resolved"]
    assert kinds(session, world.users["worker_a1"]) == ["task_dispatched"]


def test_a_leader_resolving_the_task_they_hold_tells_the_admin(session, world):
    task = make_task(session, A1, now=SATURDAY)  # nobody on duty: the leader holds it
    leader = scope(session, world, "leader_a")
    transition(session, leader, task, "accept", now=SATURDAY)
    transition(session, leader, task, "resolve", note="已处理", now=SATURDAY)
    assert kinds(session, world.users["leader_a"]) == ["task_dispatched"]
    assert kinds(session, world.users["admin_a"]) == ["task_resolved"]


def _nobody_above_the_worker_in_community_a(session, world, day) -> None:
    """Community A's admin switched off and its grid leader on leave on `day`."""
    from api.models import Leave

    world.users["admin_a"].active = False
    session.add(Leave(worker_id=world.users["leader_a"].id, start_date=day, end_date=day,
                      status="approved"))  # fmt: skip
    session.flush()


def test_a_resolve_where_the_community_has_nobody_at_work_is_not_told_to_the_district(
    session, world
):
    """The return call (回访) and the close are the community's: a district viewer can do
    neither. The leader away is told (they may call back from afar, as they may assign); the
    district's viewers, told of every resolve while the community has no admin, were not told
    of anything they could do."""
    _nobody_above_the_worker_in_community_a(session, world, T0.date())
    task = make_task(session, A1, now=T0)
    worker = scope(session, world, "worker_a1")
    transition(session, worker, task, "accept", now=T0)
    transition(session, worker, task, "resolve", note="已修好", now=T0 + timedelta(hours=1))
    assert kinds(session, world.users["leader_a"]) == ["task_resolved"]
    assert kinds(session, world.users["viewer_110101"]) == []


def test_an_escalation_where_the_community_has_nobody_at_work_is_still_told_to_the_district(
    session, world
):
    """An escalation is a report upwards, and an overdue ticket is what the district answers
    for: with nobody in the community to answer it, the district hears of it (and can see that
    an admin is named), as of a task nobody can take."""
    _nobody_above_the_worker_in_community_a(session, world, T0.date())
    task = make_task(session, A1, now=T0)
    transition(session, scope(session, world, "worker_a1"), task, "escalate", now=T0)
    assert kinds(session, world.users["leader_a"]) == ["task_escalated"]
    assert kinds(session, world.users["viewer_110101"]) == ["task_escalated"]


def test_the_new_assignee_of_a_task_already_warned_is_warned_too(session, world):
    task = make_task(session, A1, now=T0, urgency="danger")  # 2 h, warned at 96 min
    assert tick(session, T0 + timedelta(minutes=96)).warned == 1
    leader = scope(session, world, "leader_a")
    worker_a2 = world.users["worker_a2"]
    reassign(session, leader, task, worker_a2.id, "A2 就在附近", T0 + timedelta(minutes=100))
    assert tick(session, T0 + timedelta(minutes=101)).warned == 1
    assert kinds(session, worker_a2) == ["task_reassigned", "task_deadline_warning"]


def test_a_worker_who_returned_a_task_is_not_warned_of_its_deadline_its_leader_is(session, world):
    task = make_task(session, A1, now=T0, urgency="danger")
    worker = world.users["worker_a1"]
    transition(session, scope(session, world, "worker_a1"), task, "return", note="不属于本网格",
               now=T0 + timedelta(minutes=10))  # fmt: skip
    assert tick(session, T0 + timedelta(minutes=96)).warned == 1
    assert kinds(session, worker) == ["task_dispatched"]
    # The leader, who must place it, is warned (told of the return at the time, and of its
    # first contact missed at 30 minutes: test_tasks_contact_deadline.py).
    assert kinds(session, world.users["leader_a"]) == [
        "task_updated",
        "task_contact_overdue",
        "task_deadline_warning",
    ]
    # The deadline still escalates it to the leader, who must find it a worker.
    assert tick(session, T0 + timedelta(hours=2)).escalated == 1


def test_a_task_waiting_to_be_assigned_is_warned_to_its_overseers_before_its_deadline(
    session, world
):
    """Dispatch found nobody on a Saturday: the admin was told once (新任务待分派) and then
    nothing until the danger task was overdue. At the warning fraction, as a held task's
    assignee is, whoever must place it is warned, once."""
    task = make_task(session, B1, now=SATURDAY, urgency="danger")  # 2 h, warned at 96 min
    admin = world.users["admin_b"]
    assert tick(session, SATURDAY + timedelta(minutes=95)).warned == 0
    assert tick(session, SATURDAY + timedelta(minutes=96)).warned == 1
    # Its first contact, due at 30 minutes, was missed: told at the tick before.
    assert kinds(session, admin) == [
        "task_unassigned",
        "task_contact_overdue",
        "task_deadline_warning",
    ]
    note = session.scalars(
        select(Notification).where(Notification.user_id == admin.id).order_by(Notification.id)
    ).all()[-1]
    assert note.title == "待分派的任务即将超期" and note.data["task_id"] == str(task.id)
    assert tick(session, SATURDAY + timedelta(minutes=100)).warned == 0  # once
    assert tick(session, SATURDAY + timedelta(hours=2)).escalated == 1


def test_an_unassigned_ticket_escalated_and_extended_is_warned_to_its_overseers(session, world):
    """Nobody to take the ticket on a Saturday: the tick escalated it at its deadline with
    nobody assigned; the hotline then extends it. The new round is warned to whoever must place
    it, as a task waiting to be placed is: before, an escalated task was warned to nobody."""
    due = SATURDAY + timedelta(days=1)
    task = make_task(session, B1, now=SATURDAY, source="hotline", external_id="12345-B1-0001",
                     type="complaint", due_at=due)  # fmt: skip
    assert tick(session, due).escalated == 1
    assert (task.status, task.assignee_id) == ("escalated", None)
    changed = due + timedelta(hours=1)
    change_ticket_deadline(session, scope(session, world, "admin_b"), task,
                           changed + timedelta(days=10), "延期获批", changed)  # fmt: skip
    assert tick(session, changed + timedelta(days=8) - timedelta(minutes=1)).warned == 0
    assert tick(session, changed + timedelta(days=8)).warned == 1
    assert tick(session, changed + timedelta(days=9)).warned == 0
    note = session.scalars(
        select(Notification)
        .where(Notification.user_id == world.users["admin_b"].id)
        .order_by(Notification.id)
    ).all()[-1]
    assert (note.kind, note.title) == ("task_deadline_warning", "待分派的任务即将超期")


def test_grid_b1_has_no_leader(session, world):
    assert session.get(Grid, world.grids[B1].id).leader_id is None


def test_reassigning_a_warned_task_to_its_own_assignee_does_not_warn_twice(session, world):
    task = make_task(session, A1, now=T0, urgency="danger")
    assert tick(session, T0 + timedelta(minutes=96)).warned == 1
    leader = scope(session, world, "leader_a")
    reassign(session, leader, task, world.users["worker_a1"].id, "", T0 + timedelta(minutes=100))
    assert tick(session, T0 + timedelta(minutes=101)).warned == 0


def test_an_escalation_while_the_leader_is_on_leave_goes_to_the_admin(session, world):
    from api.models import Leave

    saturday = SATURDAY.date()
    leader = world.users["leader_a"]
    session.add(Leave(worker_id=leader.id, start_date=saturday, end_date=saturday,
                      status="approved"))  # fmt: skip
    task = make_task(session, A1, now=T0, urgency="complex")  # 15 days: still open on Saturday
    transition(session, scope(session, world, "worker_a1"), task, "escalate", now=SATURDAY)
    assert kinds(session, leader) == []
    assert kinds(session, world.users["admin_a"]) == ["task_escalated"]


def test_a_task_escalated_early_and_reassigned_still_warns_and_escalates_at_its_deadline(
    session, world
):
    """The worker asks for help on day 1 of 7; the leader gives the task to A2 on day 2. The
    deadline has not passed: A2 is warned at 80 % and the leader told when it runs out."""
    task = make_task(session, A1, now=T0)  # general: 7 days
    transition(session, scope(session, world, "worker_a1"), task, "escalate",
               note="需要物业配合", now=T0 + timedelta(days=1))  # fmt: skip
    a2 = world.users["worker_a2"]
    reassign(session, scope(session, world, "leader_a"), task, a2.id, "", T0 + timedelta(days=2))
    assert tick(session, T0 + timedelta(days=6)).warned == 1
    assert tick(session, T0 + timedelta(days=7)).escalated == 1
    assert kinds(session, a2) == ["task_reassigned", "task_deadline_warning", "task_escalated"]
    # Never accepted, its first contact (a day) was missed: told once, between the two.
    assert kinds(session, world.users["leader_a"]) == [
        "task_escalated",
        "task_contact_overdue",
        "task_escalated",
    ]


def test_a_task_reassigned_after_its_deadline_is_not_escalated_again(session, world):
    task = make_task(session, A1, now=T0, urgency="danger")
    assert tick(session, T0 + timedelta(hours=2)).escalated == 1
    a2 = world.users["worker_a2"]
    reassign(session, scope(session, world, "leader_a"), task, a2.id, "", T0 + timedelta(hours=3))
    assert tick(session, T0 + timedelta(hours=4)).escalated == 0


def test_a_worker_opening_a_task_dispatched_to_themselves_is_not_notified(client, world, session):
    """At the window the worker opens the task and holds it: their phone need not ring."""
    from tests.factories import centre

    lon, lat = centre(A1)
    r = client.post(
        "/api/v1/tasks",
        json={"source": "window", "title": "办理证明", "location": {"lon": lon, "lat": lat}},
        headers=world.auth("worker_a1"),
    )
    assert (r.status_code, r.json["assignee_id"]) == (201, world.users["worker_a1"].id)
    assert kinds(session, world.users["worker_a1"]) == []


def test_a_leader_taking_a_task_themselves_is_not_notified(session, world):
    task = make_task(session, A1, now=T0)
    leader = world.users["leader_a"]
    reassign(session, scope(session, world, "leader_a"), task, leader.id, "我来", T0)
    assert kinds(session, leader) == []
    assert kinds(session, world.users["worker_a1"]) == ["task_dispatched", "task_updated"]


def test_a_leader_handing_on_a_task_they_hold_is_not_told_it_went_to_someone_else(session, world):
    """Nobody is told of a step they took: a leader giving away the task dispatch fell back to
    them was told "任务已转派他人" of their own reassign (a move already spared them)."""
    task = make_task(session, A1, now=SATURDAY)  # nobody on duty: the leader holds it
    leader = world.users["leader_a"]
    assert task.assignee_id == leader.id
    reassign(session, scope(session, world, "leader_a"), task, world.users["worker_a2"].id, "", T0)
    assert kinds(session, leader) == ["task_dispatched"]  # the dispatch only
    assert kinds(session, world.users["worker_a2"]) == ["task_reassigned"]


def test_the_deadline_warning_of_a_task_whose_assignee_went_on_leave_goes_to_the_leader(
    session, world
):
    """Dispatched to worker A1, who went on approved leave before its 80 % point: the warning
    went to a phone on leave. The leader, who hands on an away worker's tasks (the leave's
    `tasks_to_reassign`), is warned; the task stays with its assignee until they do."""
    from api.models import Leave

    task = make_task(session, A1, now=T0, urgency="complex")  # 15 days: warned on day 12
    worker, warn_at = world.users["worker_a1"], T0 + timedelta(days=12)
    session.add(Leave(worker_id=worker.id, start_date=warn_at.date(), end_date=warn_at.date(),
                      status="approved"))  # fmt: skip
    session.flush()
    assert tick(session, warn_at).warned == 1
    assert kinds(session, worker) == ["task_dispatched"]
    # (Never accepted: its first contact, due on day 1, was missed, and the leader told.)
    assert kinds(session, world.users["leader_a"]) == [
        "task_contact_overdue",
        "task_deadline_warning",
    ]
    assert task.assignee_id == worker.id
    assert tick(session, warn_at + timedelta(hours=1)).warned == 0


def test_the_deadline_warning_of_a_task_held_by_an_account_switched_off_goes_to_its_new_holder(
    session, world
):
    """A switch-off the tick's sweep has not reached yet (its limit: here one task a tick): the
    warning went to the account switched off. The task is handed on as the sweep would, and
    whoever takes it is warned."""
    worker, leader = world.users["worker_a1"], world.users["leader_a"]
    week = make_task(session, A1, now=T0)  # swept first (lowest id)
    hours = make_task(session, A1, now=T0, urgency="danger")  # warned at 96 min
    assert week.assignee_id == hours.assignee_id == worker.id
    worker.active = False
    session.flush()
    assert tick(session, T0 + timedelta(minutes=96), limit=1).warned == 1
    assert hours.assignee_id == leader.id
    assert kinds(session, worker) == ["task_dispatched", "task_dispatched"]
    warned = session.scalars(
        select(Notification.user_id).where(Notification.kind == "task_deadline_warning")
    ).all()
    assert warned == [leader.id]
