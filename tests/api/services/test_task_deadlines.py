"""Deadlines per type and urgency, the 80 % warning and escalation at the deadline (the tick)."""

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from api.cli import main
from api.models import Community, Notification
from api.scope import Scope
from api.services.tasks import (
    caller_actions,
    deadlines,
    is_overdue,
    reassign,
    tick,
    transition,
)
from tests.factories import A, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing


def kinds(session, user):
    rows = session.query(Notification).filter_by(user_id=user.id).order_by(Notification.id)
    return [n.kind for n in rows]


def test_default_deadlines_follow_beijing_practice():
    assert [
        deadlines({}, "complaint", u)[0] for u in ("danger", "utility", "general", "complex")
    ] == [
        timedelta(hours=2),
        timedelta(hours=24),
        timedelta(days=7),
        timedelta(days=15),
    ]


def test_a_community_overrides_deadlines_per_type_and_urgency(session, world):
    community = session.get(Community, A)
    community.settings = {
        "tasks": {
            "deadline_hours": {"general": 72},
            "by_type": {"consultation": {"deadline_hours": {"general": 24}}},
            "first_contact_hours": {"general": 4},
        }
    }
    session.flush()
    complaint = make_task(session, now=T0, type="complaint")
    consultation = make_task(session, now=T0, type="consultation")
    assert complaint.due_at - T0 == timedelta(hours=72)
    assert consultation.due_at - T0 == timedelta(hours=24)
    assert complaint.first_contact_due_at - T0 == timedelta(hours=4)


def test_the_assignee_is_warned_once_at_80_percent_of_the_time(session, world):
    task = make_task(session, now=T0, urgency="danger")  # 2 h
    assert tick(session, T0 + timedelta(minutes=95)).warned == 0
    assert tick(session, T0 + timedelta(minutes=96)).warned == 1
    assert tick(session, T0 + timedelta(minutes=100)).warned == 0
    assert task.warned_at == T0 + timedelta(minutes=96)
    assert kinds(session, world.users["worker_a1"]) == ["task_dispatched", "task_deadline_warning"]


def test_at_the_deadline_the_task_is_escalated_to_the_grid_leader_once(session, world):
    task = make_task(session, now=T0, urgency="danger")
    result = tick(session, T0 + timedelta(hours=2))
    assert (result.escalated, task.status, task.escalated_at) == (
        1,
        "escalated",
        T0 + timedelta(hours=2),
    )
    assert tick(session, T0 + timedelta(hours=3)).escalated == 0
    assert kinds(session, world.users["leader_a"]) == ["task_escalated"]
    assert task.events[-1].action == "escalate" and task.events[-1].actor_id is None
    [note] = session.query(Notification).filter_by(kind="task_escalated", user_id=leader_id(world))
    assert note.urgent


def leader_id(world):
    return world.users["leader_a"].id


def test_at_the_deadline_its_holder_is_told_it_passed_too(session, world):
    """The worker still holds the escalated task and alone resolves it: they were warned at
    80 % and then heard nothing, the leader alone told the deadline had passed. Told once,
    urgent as the task's urgency makes its notices."""
    task = make_task(session, now=T0, urgency="danger")
    tick(session, T0 + timedelta(hours=2))
    tick(session, T0 + timedelta(hours=3))
    holder = world.users["worker_a1"]
    [told] = session.query(Notification).filter_by(kind="task_escalated", user_id=holder.id)
    assert (told.title, told.body) == ("你承办的任务已超期", task.title)
    assert told.urgent  # as a danger's every notice is
    assert told.data["task_id"] == str(task.id) and told.data["status"] == "escalated"


def test_a_holder_on_leave_is_not_told_the_deadline_passed(session, world):
    """On approved leave, the task's overseers answer for it (told of the escalation)."""
    from api.models import Leave

    holder = world.users["worker_a1"]
    task = make_task(session, now=T0, urgency="danger")
    assert task.assignee_id == holder.id
    day = (T0 + timedelta(hours=2)).date()
    session.add(Leave(worker_id=holder.id, start_date=day, end_date=day, status="approved"))
    assert tick(session, T0 + timedelta(hours=2)).escalated == 1
    assert kinds(session, holder) == ["task_dispatched"]
    assert kinds(session, world.users["leader_a"])[-1] == "task_escalated"


def test_a_hand_escalation_is_urgent_and_the_deadline_still_escalates_after_it(session, world):
    """Every escalation is urgent (it passes quiet hours), the worker's own too; and a task a
    worker escalated for help before its deadline still escalates when the deadline passes:
    before, the hand escalation was an ordinary notice, and the deadline then passed silently
    (the tick took the task for escalated already)."""
    task = make_task(session, now=T0, urgency="general")  # 7 days
    worker = Scope.for_user(session, world.users["worker_a1"])
    transition(session, worker, task, "escalate", note="需要物业配合", now=T0 + timedelta(hours=1))
    [asked] = session.query(Notification).filter_by(kind="task_escalated").all()
    assert asked.urgent and asked.user_id == world.users["leader_a"].id
    assert tick(session, T0 + timedelta(days=6)).escalated == 0
    result = tick(session, T0 + timedelta(days=7, minutes=1))
    assert (result.escalated, task.status) == (1, "escalated")
    assert task.escalated_at == T0 + timedelta(days=7, minutes=1)
    assert tick(session, T0 + timedelta(days=8)).escalated == 0
    notes = session.query(Notification).filter_by(kind="task_escalated", user_id=leader_id(world))
    notes = notes.order_by(Notification.id)
    assert [(n.title, n.urgent) for n in notes] == [("任务已上报", True), ("任务已超期", True)]


def test_a_worker_who_escalated_for_help_is_still_warned_of_the_deadline_once(session, world):
    """The worker accepted and asked for help (the property company is needed): the task is
    `escalated`, still theirs, and only they resolve it. They are warned at 80 % of the time as
    any holder is, once; the deadline's escalation then goes to the leader. Before, the tick
    warned nobody of an escalated task: the one holding it ran out the week unwarned."""
    task = make_task(session, now=T0, urgency="general")  # 7 days
    worker = Scope.for_user(session, world.users["worker_a1"])
    transition(session, worker, task, "accept", now=T0 + timedelta(minutes=10))
    transition(session, worker, task, "escalate", note="需要物业配合", now=T0 + timedelta(hours=1))
    assert tick(session, T0 + timedelta(days=5)).warned == 0
    assert tick(session, T0 + timedelta(days=6)).warned == 1
    assert tick(session, T0 + timedelta(days=6, hours=1)).warned == 0
    assert tick(session, T0 + timedelta(days=7)).escalated == 1
    assert tick(session, T0 + timedelta(days=8)).warned == 0
    assert kinds(session, world.users["worker_a1"]) == [
        "task_dispatched",
        "task_deadline_warning",
        "task_escalated",  # the deadline passed: told once, as the leader is
    ]
    assert kinds(session, world.users["leader_a"]) == ["task_escalated", "task_escalated"]


def test_a_hand_escalation_after_the_deadline_answers_it(session, world):
    task = make_task(session, now=T0, urgency="danger")  # 2 h
    worker = Scope.for_user(session, world.users["worker_a1"])
    transition(session, worker, task, "escalate", now=T0 + timedelta(hours=3))
    assert tick(session, T0 + timedelta(hours=4)).escalated == 0


def test_a_returned_task_escalated_at_its_deadline_stays_with_the_leader_to_place(session, world):
    """A worker returned the task (not theirs: a wrong dispatch) and the deadline passed before
    the leader placed it. The leader is told at once, and the task stays returned, waiting for
    them: it went `escalated` with its returner still its assignee, back on their list with
    "resolve" offered for a task they had said was not theirs, and off the leader's returned."""
    task = make_task(session, now=T0, urgency="danger")  # 2 h
    worker = Scope.for_user(session, world.users["worker_a1"])
    transition(session, worker, task, "return", note="不属于本网格", now=T0 + timedelta(minutes=5))
    assert tick(session, T0 + timedelta(hours=2)).escalated == 1
    assert (task.status, task.escalated_at) == ("returned", T0 + timedelta(hours=2))
    step = task.events[-1]
    assert (step.action, step.from_status, step.to_status) == ("escalate", "returned", "returned")
    assert kinds(session, world.users["leader_a"]) == ["task_updated", "task_escalated"]
    assert kinds(session, world.users["worker_a1"]) == ["task_dispatched"]
    assert "resolve" not in caller_actions(worker, task)
    assert tick(session, T0 + timedelta(hours=3)).escalated == 0


def test_resolved_tasks_are_neither_warned_nor_escalated(session, world):
    task = make_task(session, now=T0, urgency="danger")
    scope = Scope.for_user(session, world.users["worker_a1"])
    for action in ("accept", "start", "resolve"):
        transition(session, scope, task, action, now=T0 + timedelta(minutes=5))
    result = tick(session, T0 + timedelta(hours=5))
    assert (result.warned, result.escalated, task.status) == (0, 0, "resolved")


def test_overdue_is_unresolved_past_the_deadline(session, world):
    task = make_task(session, now=T0, urgency="danger")
    assert not is_overdue(task, T0 + timedelta(hours=1))
    assert is_overdue(task, T0 + timedelta(hours=2, seconds=1))


def test_the_cli_tick_escalates_with_a_given_clock(session, world, app):
    task = make_task(session, now=T0, urgency="danger")
    session.commit()
    later = (T0 + timedelta(hours=3)).isoformat()
    with app.app_context():
        result = CliRunner().invoke(main, ["tasks", "tick", "--now", later])
    assert result.exit_code == 0, result.output
    assert "1 escalated" in result.output
    session.refresh(task)
    assert task.status == "escalated"


def _reopened_after_a_satisfied_callback(session, world, task, at):
    worker = Scope.for_user(session, world.users["worker_a1"])
    leader = Scope.for_user(session, world.users["leader_a"])
    for action in ("accept", "start", "resolve"):
        transition(session, worker, task, action, now=at)
    transition(session, leader, task, "callback", satisfaction="satisfied", now=at)
    transition(session, leader, task, "reopen", now=at + timedelta(minutes=1))


def test_a_reopened_task_forgets_the_callback_and_gets_a_new_deadline(session, world):
    """The resident's verdict was on a resolution that did not hold; the clock starts again."""
    task = make_task(session, now=T0, urgency="danger")  # 2 h
    assert tick(session, T0 + timedelta(hours=2)).escalated == 1  # the first round ran out
    leader = Scope.for_user(session, world.users["leader_a"])
    worker_id = world.users["worker_a1"].id
    reassign(session, leader, task, worker_id, "再试一次", T0 + timedelta(hours=4))
    reopened_at = T0 + timedelta(hours=5, minutes=1)
    _reopened_after_a_satisfied_callback(session, world, task, T0 + timedelta(hours=5))
    assert (task.status, task.satisfaction) == ("reopened", None)
    assert task.due_at == reopened_at + timedelta(hours=2)
    # Warned at 80 % of the new round, escalated at its end: once each, again.
    assert tick(session, reopened_at + timedelta(minutes=95)).warned == 0
    assert tick(session, reopened_at + timedelta(minutes=96)).warned == 1
    assert tick(session, reopened_at + timedelta(hours=2)).escalated == 1
    assert tick(session, reopened_at + timedelta(hours=3)).escalated == 0


def test_a_reopened_tasks_old_satisfaction_leaves_the_rates(client, session, world):
    task = make_task(session, now=T0)
    _reopened_after_a_satisfied_callback(session, world, task, T0 + timedelta(hours=1))
    session.flush()
    rates = client.get(
        f"/api/v1/tasks/rates?community={A}&start=2026-11-01T00:00:00Z&end=2026-12-01T00:00:00Z",
        headers=world.auth("admin_a"),
    ).json
    assert (rates["opened"], rates["satisfaction_rate"]) == (1, None)


def _hotline_ticket(session, due_at):
    return make_task(session, now=T0, source="hotline", type="complaint", urgency="general",
                     external_id=f"T{due_at:%d%H%M}", due_at=due_at)  # fmt: skip


def test_a_reopened_hotline_ticket_keeps_the_deadline_it_came_with(session, world):
    """The 12345 ticket came with 3 days (its 办理时限, the deadline the city measures): a reopen
    restarted the clock from its urgency (7 days from the reopening), past the hotline's."""
    ticket_due = T0 + timedelta(days=3)
    task = _hotline_ticket(session, ticket_due)
    _reopened_after_a_satisfied_callback(session, world, task, T0 + timedelta(hours=5))
    assert (task.status, task.due_at) == ("reopened", ticket_due)
    assert not is_overdue(task, T0 + timedelta(days=2))
    # Warned at 80 % of what is left from the reopening, escalated at the ticket's deadline.
    reopened_at = T0 + timedelta(hours=5, minutes=1)
    warn_at = reopened_at + (ticket_due - reopened_at) * 0.8
    assert tick(session, warn_at - timedelta(minutes=1)).warned == 0
    assert tick(session, warn_at).warned == 1
    assert tick(session, ticket_due).escalated == 1


def test_a_hotline_ticket_reopened_past_its_deadline_is_overdue_and_escalated_once(session, world):
    """Reopened after the ticket's deadline: the task is overdue at once (honestly: the
    hotline's deadline passed with the resident's problem not solved), not given a new week."""
    ticket_due = T0 + timedelta(days=1)
    task = _hotline_ticket(session, ticket_due)
    _reopened_after_a_satisfied_callback(session, world, task, T0 + timedelta(days=2))
    reopened_at = T0 + timedelta(days=2, minutes=1)
    assert task.due_at == ticket_due
    assert is_overdue(task, reopened_at)
    assert tick(session, reopened_at + timedelta(minutes=1)).escalated == 1
    assert tick(session, reopened_at + timedelta(minutes=2)).escalated == 0
    assert "task_deadline_warning" not in kinds(session, world.users["worker_a1"])


def test_a_reopened_hotline_ticket_without_its_own_deadline_runs_from_its_urgency(session, world):
    task = make_task(session, now=T0, source="hotline", type="complaint", urgency="danger",
                     external_id="T-urgency")  # fmt: skip
    _reopened_after_a_satisfied_callback(session, world, task, T0 + timedelta(hours=5))
    assert task.due_at == T0 + timedelta(hours=5, minutes=1) + timedelta(hours=2)


def test_migration_0040_keeps_the_deadline_tickets_came_with_and_none_computed(own_database_url):
    """Backfill: a hotline task never reopened whose deadline is not its opening plus its
    urgency's hours came with it; one reopened already lost it (left NULL), as did none other."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from api.cli import alembic_config
    from tests.factories import migration_grid

    grid_id, _ = migration_grid(own_database_url)
    engine = create_engine(own_database_url)
    config = alembic_config(own_database_url)
    insert = text(
        "INSERT INTO tasks (source, type, title, external_id, grid_id, status, urgency,"
        " created_at, due_at) VALUES (:s, 'complaint', 'x', :t, :g, 'dispatched', 'general',"
        " :c, :d) RETURNING id"
    )
    week, given = T0 + timedelta(days=7), T0 + timedelta(days=3)
    try:
        command.downgrade(config, "0039")
        with engine.begin() as conn:
            made = [
                conn.scalar(insert, {"s": s, "t": t, "g": grid_id, "c": T0, "d": d})
                for s, t, d in [
                    ("hotline", "given", given),
                    ("hotline", "computed", week),
                    ("hotline", "reopened", given),
                    ("window", None, given),
                ]
            ]
            conn.execute(
                text(
                    "INSERT INTO task_events (task_id, action, from_status, to_status, at)"
                    " VALUES (:i, 'reopen', 'closed', 'reopened', :at)"
                ),
                {"i": made[2], "at": T0},
            )
        command.upgrade(config, "head")
        with engine.begin() as conn:
            kept = conn.scalars(text("SELECT ticket_due_at FROM tasks ORDER BY id")).all()
            conn.execute(text("DELETE FROM tasks"))
        assert kept == [given, None, None, None]
    finally:
        engine.dispose()
