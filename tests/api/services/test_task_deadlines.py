"""Deadlines per type and urgency, the 80 % warning and escalation at the deadline (the tick)."""

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from api.cli import main
from api.models import Community, Notification
from api.scope import Scope
from api.services.tasks import deadlines, is_overdue, reassign, tick, transition
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
    [note] = session.query(Notification).filter_by(kind="task_escalated").all()
    assert note.urgent


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
    notes = session.query(Notification).filter_by(kind="task_escalated").order_by(Notification.id)
    assert [(n.title, n.urgent) for n in notes] == [("任务已上报", True), ("任务已超期", True)]


def test_a_hand_escalation_after_the_deadline_answers_it(session, world):
    task = make_task(session, now=T0, urgency="danger")  # 2 h
    worker = Scope.for_user(session, world.users["worker_a1"])
    transition(session, worker, task, "escalate", now=T0 + timedelta(hours=3))
    assert tick(session, T0 + timedelta(hours=4)).escalated == 0


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
