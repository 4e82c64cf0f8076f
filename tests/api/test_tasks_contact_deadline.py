"""The first-contact deadline (响应时限) in the tick: warned before it, told to overseers after it.

The response rate, one of the three rates a community is judged by, counts the tasks whose
resident was first contacted (accept, or resolve) by `first_contact_due_at`. Until 2027-01 the
tick warned only of the resolution deadline: a general task left unaccepted failed the response
rate silently, a day before anyone heard of it.
"""

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from api.cli import main
from api.models import Leave, Notification
from api.scope import Scope
from api.services.tasks import (
    change_ticket_deadline,
    move_task,
    reassign,
    tick,
    transition,
)
from api.services.weeks import LOCAL
from tests.factories import A1, A2, B1, centre, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
SATURDAY = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # nobody on duty without a roster
MIN = timedelta(minutes=1)
# Danger: first contact within 30 minutes, warned at 80 % of it; resolved within 2 hours.
DANGER_CONTACT_WARNED = T0 + timedelta(minutes=24)
# General: first contact within 24 hours; resolved within 7 days.
GENERAL_CONTACT_DUE = T0 + timedelta(hours=24)


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def notices(session, user) -> list[tuple[str, str]]:
    rows = session.execute(
        select(Notification.kind, Notification.title)
        .where(Notification.user_id == user.id)
        .order_by(Notification.id)
    )
    return [tuple(row) for row in rows]


def scope(session, world, name):
    return Scope.for_user(session, world.users[name])


# --- the warning, to whoever answers for the task -----------------------------------------
def test_an_unaccepted_task_warns_its_assignee_at_80_percent_of_the_first_contact_time(
    session, world
):
    task = make_task(session, A1, now=T0, urgency="danger")
    worker = world.users["worker_a1"]
    assert tick(session, DANGER_CONTACT_WARNED - MIN).contact_warned == 0
    assert tick(session, DANGER_CONTACT_WARNED).contact_warned == 1
    assert notices(session, worker) == [
        ("task_dispatched", "新任务"),
        ("task_contact_warning", "任务首次联系即将超时"),
    ]
    assert task.contact_warned_at == DANGER_CONTACT_WARNED
    note = session.scalars(select(Notification).where(Notification.user_id == worker.id)).all()
    assert note[-1].data["task_id"] == str(task.id) and note[-1].urgent  # danger is urgent


def test_the_first_contact_warning_is_given_once(session, world):
    make_task(session, A1, now=T0, urgency="danger")
    assert tick(session, DANGER_CONTACT_WARNED).contact_warned == 1
    assert tick(session, DANGER_CONTACT_WARNED + MIN).contact_warned == 0
    kinds = [kind for kind, _ in notices(session, world.users["worker_a1"])]
    assert kinds.count("task_contact_warning") == 1


def test_a_task_accepted_in_time_is_neither_warned_nor_told_of_first_contact(session, world):
    task = make_task(session, A1, now=T0, urgency="danger")
    worker = scope(session, world, "worker_a1")
    transition(session, worker, task, "accept", now=T0 + timedelta(minutes=10))
    for at in (DANGER_CONTACT_WARNED, T0 + timedelta(minutes=31)):
        result = tick(session, at)
        assert (result.contact_warned, result.contact_overdue) == (0, 0)
    assert notices(session, world.users["leader_a"]) == []
    assert (task.contact_warned_at, task.contact_overdue_at) == (None, None)


def test_a_task_waiting_to_be_assigned_is_warned_to_its_overseers_before_first_contact(
    session, world
):
    """Dispatch found nobody on a Saturday: the task waits for its overseers to place it, and
    the resident for a first call. They are warned as an assignee is."""
    task = make_task(session, B1, now=SATURDAY, urgency="danger")
    assert (task.status, task.assignee_id) == ("new", None)
    assert tick(session, SATURDAY + timedelta(minutes=24)).contact_warned == 1
    assert notices(session, world.users["admin_b"]) == [
        ("task_unassigned", "新任务待分派"),
        ("task_contact_warning", "待分派的任务首次联系即将超时"),
    ]


def test_a_worker_who_returned_a_task_is_not_warned_of_first_contact_its_leader_is(session, world):
    task = make_task(session, A1, now=T0, urgency="danger")
    worker = world.users["worker_a1"]
    transition(session, scope(session, world, "worker_a1"), task, "return",
               note="不属于本网格", now=T0 + timedelta(minutes=5))  # fmt: skip
    assert tick(session, DANGER_CONTACT_WARNED).contact_warned == 1
    assert notices(session, worker) == [("task_dispatched", "新任务")]
    assert notices(session, world.users["leader_a"]) == [
        ("task_updated", "任务被退回"),
        ("task_contact_warning", "待分派的任务首次联系即将超时"),
    ]


def test_the_first_contact_warning_of_an_assignee_on_leave_goes_to_the_leader(session, world):
    """The worker went on leave after the task was dispatched to them: their leader, who hands
    on an away worker's tasks, is warned, as of the deadline (`_warned`)."""
    task = make_task(session, A1, now=T0, urgency="danger")
    worker = world.users["worker_a1"]
    today = T0.astimezone(LOCAL).date()
    session.add(Leave(worker_id=worker.id, start_date=today, end_date=today, status="approved"))
    session.flush()
    assert tick(session, DANGER_CONTACT_WARNED).contact_warned == 1
    assert notices(session, worker) == [("task_dispatched", "新任务")]
    assert notices(session, world.users["leader_a"]) == [
        ("task_contact_warning", "任务首次联系即将超时（承办人休假）")
    ]
    assert task.assignee_id == worker.id


def test_a_first_contact_due_with_the_deadline_is_warned_as_the_deadline_only(session, world):
    """A 12345 ticket due in an hour: its first contact is due then too (never after the
    deadline). One warning says it: the deadline's."""
    task = make_task(session, A1, now=T0, source="hotline", type="complaint",
                     external_id="12345-0001", due_at=T0 + timedelta(hours=1))  # fmt: skip
    assert task.first_contact_due_at == task.due_at
    result = tick(session, T0 + timedelta(minutes=48))
    assert (result.warned, result.contact_warned) == (1, 0)
    assert notices(session, world.users["worker_a1"]) == [
        ("task_dispatched", "新任务"),
        ("task_deadline_warning", "任务即将超期"),
    ]


def test_a_first_contact_deadline_passed_before_the_tick_came_is_not_warned_of(session, world):
    """The tick did not run between the warning point and the deadline (the worker was down):
    what it owes then is the overseers' notice that the deadline passed, not a warning."""
    make_task(session, A1, now=T0)
    result = tick(session, GENERAL_CONTACT_DUE + timedelta(hours=1))
    assert (result.contact_warned, result.contact_overdue) == (0, 1)
    kinds = [kind for kind, _ in notices(session, world.users["worker_a1"])]
    assert "task_contact_warning" not in kinds


# --- the deadline passed: the overseers are told, once ------------------------------------
def test_a_task_left_unaccepted_past_its_first_contact_deadline_is_told_to_the_grid_leader(
    session, world
):
    task = make_task(session, A1, now=T0)  # general: first contact within 24 hours
    assert tick(session, GENERAL_CONTACT_DUE - MIN).contact_overdue == 0
    assert tick(session, GENERAL_CONTACT_DUE).contact_overdue == 1
    assert notices(session, world.users["leader_a"]) == [
        ("task_contact_overdue", "任务首次联系已超时")
    ]
    assert task.contact_overdue_at == GENERAL_CONTACT_DUE
    assert task.status == "dispatched"  # told, not escalated: the work stays with the worker
    kinds = [kind for kind, _ in notices(session, world.users["worker_a1"])]
    assert "task_contact_overdue" not in kinds


def test_the_first_contact_deadline_passing_is_told_once(session, world):
    make_task(session, A1, now=T0)
    assert tick(session, GENERAL_CONTACT_DUE).contact_overdue == 1
    assert tick(session, GENERAL_CONTACT_DUE + timedelta(hours=1)).contact_overdue == 0
    assert len(notices(session, world.users["leader_a"])) == 1


def test_a_first_contact_deadline_passed_in_a_grid_without_a_leader_is_told_to_the_admin(
    session, world
):
    make_task(session, B1, now=T0)
    assert tick(session, GENERAL_CONTACT_DUE).contact_overdue == 1
    assert notices(session, world.users["admin_b"]) == [
        ("task_contact_overdue", "任务首次联系已超时")
    ]


def test_a_task_overdue_by_its_deadline_too_is_told_by_the_escalation_alone(session, world):
    """The tick finds both deadlines passed (it did not run for two hours): the escalation,
    urgent, says more than the missed first contact; one notice, not two."""
    task = make_task(session, A1, now=T0, urgency="danger")
    result = tick(session, T0 + timedelta(hours=2))
    assert (result.escalated, result.contact_overdue) == (1, 0)
    assert notices(session, world.users["leader_a"]) == [("task_escalated", "任务已超期")]
    assert task.contact_overdue_at == T0 + timedelta(hours=2)  # settled: not looked at again


def test_a_task_contacted_late_is_not_told_when_it_was_contacted_before_the_tick(session, world):
    task = make_task(session, A1, now=T0)
    transition(session, scope(session, world, "worker_a1"), task, "accept",
               now=GENERAL_CONTACT_DUE + MIN)  # fmt: skip
    assert tick(session, GENERAL_CONTACT_DUE + 2 * MIN).contact_overdue == 0
    assert notices(session, world.users["leader_a"]) == []


def test_a_task_says_when_its_first_contact_was_warned_of_and_found_missed(client, session, world):
    task = make_task(session, A1, now=T0)
    tick(session, T0 + timedelta(hours=20))
    tick(session, GENERAL_CONTACT_DUE)
    session.flush()
    r = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("leader_a"))
    assert r.status_code == 200
    assert datetime.fromisoformat(r.json["contact_warned_at"]) == T0 + timedelta(hours=20)
    assert datetime.fromisoformat(r.json["contact_overdue_at"]) == GENERAL_CONTACT_DUE


# --- a new holder, a new deadline ---------------------------------------------------------
def test_the_new_assignee_of_a_task_already_warned_of_first_contact_is_warned_too(session, world):
    task = make_task(session, A1, now=T0, urgency="danger")
    assert tick(session, DANGER_CONTACT_WARNED).contact_warned == 1
    worker_a2 = world.users["worker_a2"]
    reassign(session, scope(session, world, "leader_a"), task, worker_a2.id, "A2 就在附近",
             DANGER_CONTACT_WARNED + MIN)  # fmt: skip
    assert tick(session, DANGER_CONTACT_WARNED + 2 * MIN).contact_warned == 1
    assert notices(session, worker_a2) == [
        ("task_reassigned", "任务已转派给您"),
        ("task_contact_warning", "任务首次联系即将超时"),
    ]


def test_reassigning_a_task_to_its_own_assignee_does_not_warn_of_first_contact_twice(
    session, world
):
    task = make_task(session, A1, now=T0, urgency="danger")
    assert tick(session, DANGER_CONTACT_WARNED).contact_warned == 1
    reassign(session, scope(session, world, "leader_a"), task, world.users["worker_a1"].id, "",
             DANGER_CONTACT_WARNED + MIN)  # fmt: skip
    assert tick(session, DANGER_CONTACT_WARNED + 2 * MIN).contact_warned == 0


def test_a_missed_first_contact_is_told_once_however_often_the_task_is_reassigned(session, world):
    """The missed first contact is a fact of the task, not of its holder: a reassign does not
    tell the overseers again, nor warn the new assignee of a deadline already gone."""
    task = make_task(session, A1, now=T0)
    assert tick(session, GENERAL_CONTACT_DUE).contact_overdue == 1
    reassign(session, scope(session, world, "leader_a"), task, world.users["worker_a2"].id, "",
             GENERAL_CONTACT_DUE + MIN)  # fmt: skip
    result = tick(session, GENERAL_CONTACT_DUE + timedelta(hours=1))
    assert (result.contact_warned, result.contact_overdue) == (0, 0)


def test_a_task_moved_to_another_grid_warns_its_new_holder_of_first_contact(session, world):
    task = make_task(session, A1, now=T0, urgency="danger")
    assert tick(session, DANGER_CONTACT_WARNED).contact_warned == 1
    lon, lat = centre(A2)
    move_task(session, scope(session, world, "leader_a"), task, A2, "地址填错了",
              DANGER_CONTACT_WARNED + MIN, location={"lon": lon, "lat": lat})  # fmt: skip
    worker_a2 = world.users["worker_a2"]
    assert task.assignee_id == worker_a2.id
    assert tick(session, DANGER_CONTACT_WARNED + 2 * MIN).contact_warned == 1
    assert notices(session, worker_a2)[-1] == ("task_contact_warning", "任务首次联系即将超时")


def test_a_task_handed_on_from_a_switched_off_account_warns_its_new_holder_of_first_contact(
    session, world
):
    task = make_task(session, A1, now=T0, urgency="danger")
    assert tick(session, DANGER_CONTACT_WARNED).contact_warned == 1
    world.users["worker_a1"].active = False
    session.flush()
    result = tick(session, DANGER_CONTACT_WARNED + MIN)
    leader = world.users["leader_a"]
    assert (result.handed_on, result.contact_warned, task.assignee_id) == (1, 1, leader.id)
    assert notices(session, leader)[-1] == ("task_contact_warning", "任务首次联系即将超时")


def test_a_ticket_deadline_brought_forward_brings_its_first_contact_warning_with_it(session, world):
    """The hotline shortens a ticket's time to two hours: its first contact, due in a day, is
    due in two hours too (`change_ticket_deadline`), and only the deadline is warned."""
    task = make_task(session, A1, now=T0, source="hotline", type="complaint",
                     external_id="12345-0002", due_at=T0 + timedelta(days=3))  # fmt: skip
    change_ticket_deadline(session, scope(session, world, "leader_a"), task,
                           T0 + timedelta(hours=2), "市热线缩短时限", T0)  # fmt: skip
    result = tick(session, T0 + timedelta(minutes=96))
    assert (result.warned, result.contact_warned) == (1, 0)


# --- the command --------------------------------------------------------------------------
def test_the_cli_tick_counts_the_first_contact_warnings_and_overdue_notices(session, world, app):
    make_task(session, A1, now=T0)
    make_task(session, A2, now=T0, urgency="danger")
    session.commit()
    with app.app_context():
        result = CliRunner().invoke(
            main, ["tasks", "tick", "--now", GENERAL_CONTACT_DUE.isoformat()]
        )
    assert result.exit_code == 0, result.output
    assert "1 first contact overdue" in result.output


def test_migration_0060_stamps_the_first_contacts_missed_before_it_as_told(own_database_url):
    """Missed before the tick watched them: not news at the first tick (their deadline's warning
    and escalation still come), where a burst of urgent notices hid the ones that are. A task
    whose first contact is still ahead is warned and told as any."""
    from datetime import UTC, datetime, timedelta

    from alembic import command
    from sqlalchemy import create_engine, text

    from api.cli import alembic_config
    from tests.factories import migration_grid

    grid_id, _ = migration_grid(own_database_url)
    engine = create_engine(own_database_url)
    config = alembic_config(own_database_url)
    task = text(
        "INSERT INTO tasks (source, type, title, grid_id, status, created_at, due_at,"
        " first_contact_due_at) VALUES ('window', 'help', 'x', :g, :s, :t, :d, :c) RETURNING id"
    )
    now = datetime.now(UTC)
    try:
        command.downgrade(config, "0059")
        with engine.begin() as conn:
            rows = {
                name: conn.scalar(
                    task,
                    {
                        "g": grid_id,
                        "s": status,
                        "t": now - timedelta(days=2),
                        "d": now + ahead,
                        "c": now + contact,
                    },
                )  # fmt: skip
                for name, status, ahead, contact in (
                    ("missed", "dispatched", timedelta(days=5), -timedelta(days=1)),
                    ("ahead", "dispatched", timedelta(days=5), timedelta(hours=3)),
                    ("passed_on", "transferred", timedelta(days=5), -timedelta(days=1)),
                )
            }
        command.upgrade(config, "head")
        with engine.begin() as conn:
            told = dict(conn.execute(text("SELECT id, contact_overdue_at FROM tasks")).all())
            conn.execute(text("DELETE FROM tasks"))
        assert told[rows["missed"]] is not None
        assert told[rows["ahead"]] is None and told[rows["passed_on"]] is None
    finally:
        engine.dispose()
