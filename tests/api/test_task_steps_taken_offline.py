"""A step taken with no signal: the phone keeps it and sends it at the next sync with the time
it was taken (`taken_at`). What it settles is dated then, not when it reached the server: an
accept at the door within the half hour of a danger task counted as no answer in time, and a
resolution on Sunday night synced on Monday left the week's report with the task unresolved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.models import Notification, Task, TaskEvent
from api.services.tasks import tick
from tests.factories import A, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing


@pytest.fixture()
def clock(app):
    def at(moment: datetime) -> None:
        app.config["FIXED_NOW"] = moment

    at(T0)
    return at


def stored(session, task_id) -> Task:
    session.expire_all()
    return session.get(Task, task_id)


def step(client, world, task_id, action, user="worker_a1", **body):
    response = client.post(
        f"/api/v1/tasks/{task_id}/transitions",
        json={"action": action, **body},
        headers=world.auth(user),
    )
    return response


def taken(client, world, task_id, action, at: datetime, user="worker_a1", **body) -> dict:
    response = step(client, world, task_id, action, user, taken_at=at.isoformat(), **body)
    assert response.status_code == 200, response.json
    return response.json


def rates(client, world) -> dict:
    return client.get(
        # The week of T0 in Beijing: 16-22 November.
        f"/api/v1/tasks/rates?community={A}&start=2026-11-15T16:00:00Z&end=2026-11-22T16:00:00Z",
        headers=world.auth("admin_a"),
    ).json


def test_an_accept_taken_in_time_and_synced_late_is_an_answer_in_time(
    client, session, world, clock
):
    task = make_task(session, now=T0, urgency="danger")  # first contact within 30 minutes
    session.commit()
    clock(T0 + timedelta(hours=1))
    body = taken(client, world, task.id, "accept", T0 + timedelta(minutes=20))
    accept = body["events"][-1]
    assert accept["taken_at"] == (T0 + timedelta(minutes=20)).isoformat()
    assert accept["at"] == (T0 + timedelta(hours=1)).isoformat()  # when the server heard of it
    assert stored(session, task.id).first_contact_at == T0 + timedelta(minutes=20)
    assert rates(client, world)["response_rate"] == 100.0


def test_a_resolution_taken_before_the_week_ended_counts_in_that_week_though_synced_after(
    client, session, world, clock
):
    task = make_task(session, now=T0, urgency="utility")  # 24 h: due Wednesday 10:00
    session.commit()
    step(client, world, task.id, "accept")
    due = task.due_at
    sunday_night = datetime(2026, 11, 22, 23, 0, tzinfo=UTC) - timedelta(hours=8)
    # The deadline passed with nothing heard from the phone: the tick escalated, as it must.
    assert tick(session, due).escalated == 1
    session.commit()
    clock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC) - timedelta(hours=8))  # Monday 08:00
    body = taken(client, world, task.id, "resolve", sunday_night, note="路灯已修好")
    assert body["status"] == "resolved"
    assert body["events"][-1]["taken_at"] == sunday_night.isoformat()
    week = rates(client, world)
    assert (week["resolved"], week["overdue"]) == (1, 0)


def test_a_step_sent_with_no_time_of_its_own_is_taken_when_it_arrives(
    client, session, world, clock
):
    task = make_task(session, now=T0)
    session.commit()
    clock(T0 + timedelta(hours=1))
    response = step(client, world, task.id, "accept")
    assert response.status_code == 200
    assert response.json["events"][-1]["taken_at"] is None
    assert stored(session, task.id).first_contact_at == T0 + timedelta(hours=1)


def test_a_phone_clock_ahead_is_brought_back_to_now(client, session, world, clock):
    task = make_task(session, now=T0)
    session.commit()
    clock(T0 + timedelta(hours=1))
    body = taken(client, world, task.id, "accept", T0 + timedelta(days=400))
    assert body["events"][-1]["taken_at"] == (T0 + timedelta(hours=1)).isoformat()


def test_a_step_is_not_dated_before_the_task_came_to_its_taker(client, session, world, clock):
    """A phone clock behind (or set back) dates no step before the dispatch it answers, nor
    before the taker's own last step."""
    task = make_task(session, now=T0)
    session.commit()
    clock(T0 + timedelta(hours=1))
    accept = taken(client, world, task.id, "accept", T0 - timedelta(days=3))["events"][-1]
    assert accept["taken_at"] == T0.isoformat()  # dispatched at T0
    clock(T0 + timedelta(hours=2))
    start = taken(client, world, task.id, "start", T0)["events"][-1]
    assert start["taken_at"] == (T0 + timedelta(hours=1)).isoformat()  # its own accept


def test_the_leaders_close_is_not_dated_before_the_resolution_it_closes(
    client, session, world, clock
):
    task = make_task(session, now=T0)
    session.commit()
    for action in ("accept", "start", "resolve"):
        step(client, world, task.id, action)
    clock(T0 + timedelta(hours=3))
    close = taken(client, world, task.id, "close", T0 - timedelta(hours=1), user="leader_a")
    assert close["events"][-1]["taken_at"] == T0.isoformat()
    assert stored(session, task.id).closed_at == T0


@pytest.mark.parametrize("value", ["2026-11-17T10:00:00", "yesterday", 1700000000])
def test_a_time_without_its_offset_or_no_time_is_a_422_naming_taken_at_and_changes_nothing(
    client, session, world, clock, value
):
    task = make_task(session, now=T0)
    session.commit()
    response = step(client, world, task.id, "accept", taken_at=value)
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "taken_at" in response.json["errors"]["json"]
    assert stored(session, task.id).status == "dispatched"
    events = session.query(TaskEvent).filter_by(task_id=task.id).all()
    assert [e.action for e in events] == ["create", "dispatch"]


def escalated_by_the_tick(session, clock) -> Task:
    """A danger task (2 h; first contact within 30 minutes) the tick escalated at its deadline,
    the clock 10 minutes past it: a phone with no signal syncs now."""
    task = make_task(session, now=T0, urgency="danger")
    session.commit()
    assert tick(session, T0 + timedelta(hours=2)).escalated == 1
    session.commit()
    clock(T0 + timedelta(hours=2, minutes=10))
    return task


def test_an_accept_taken_before_the_ticks_escalation_is_taken_from_escalated(
    client, session, world, clock
):
    """A danger task: accepted at the door 20 minutes in, with no signal; the phone syncs after
    the deadline, which the tick escalated meanwhile (the phone could not know). The contact
    made in time is recorded: the accept is taken from `escalated`, which the task stays (the
    deadline passed; its worker resolves it). Before, it was a 409 and the contact was lost,
    dated by the later resolution, the task counted as not answered in time."""
    task = escalated_by_the_tick(session, clock)
    body = taken(client, world, task.id, "accept", T0 + timedelta(minutes=20))
    accept = body["events"][-1]
    assert (accept["action"], accept["from_status"], accept["to_status"]) == (
        "accept",
        "escalated",
        "escalated",
    )
    assert accept["taken_at"] == (T0 + timedelta(minutes=20)).isoformat()
    assert (body["status"], body["your_actions"]) == ("escalated", ["resolve"])
    assert stored(session, task.id).first_contact_at == T0 + timedelta(minutes=20)
    assert rates(client, world)["response_rate"] == 100.0
    # Taken once: the same accept kept twice on the phone is refused the second time.
    kept_too = (T0 + timedelta(minutes=21)).isoformat()
    again = step(client, world, task.id, "accept", taken_at=kept_too)
    assert (again.status_code, again.json["allowed"]) == (409, ["resolve"])


def test_a_return_taken_before_the_ticks_escalation_leaves_the_task_with_the_leader(
    client, session, world, clock
):
    """ "Not mine" said at the door with no signal, before the deadline; the tick escalated the
    task meanwhile. The return was a 409, and the task stayed escalated on the list of the
    worker who had said it was not theirs, "resolve" offered. It is taken: returned, with the
    leader to place (as one returned before the tick stays returned at its deadline), and the
    leader is told it was returned."""
    task = escalated_by_the_tick(session, clock)
    body = taken(client, world, task.id, "return", T0 + timedelta(minutes=20), note="不是本网格的")
    returned = body["events"][-1]
    assert (returned["action"], returned["from_status"], returned["to_status"]) == (
        "return",
        "escalated",
        "returned",
    )
    assert body["status"] == "returned" and body["your_actions"] == []
    kinds = [n.title for n in session.query(Notification).filter_by(user_id=leader(world))]
    assert kinds[-1] == "任务被退回"


def test_a_start_taken_before_the_ticks_escalation_is_recorded_and_the_task_stays_escalated(
    client, session, world, clock
):
    task = make_task(session, now=T0, urgency="danger")
    session.commit()
    assert step(client, world, task.id, "accept").status_code == 200
    assert stored(session, task.id).status == "accepted"  # as the tick reads it
    assert tick(session, T0 + timedelta(hours=2)).escalated == 1
    session.commit()
    clock(T0 + timedelta(hours=2, minutes=10))
    body = taken(client, world, task.id, "start", T0 + timedelta(minutes=40))
    started = body["events"][-1]
    assert (started["action"], started["to_status"], started["taken_at"]) == (
        "start",
        "escalated",
        (T0 + timedelta(minutes=40)).isoformat(),
    )
    assert (body["status"], body["your_actions"]) == ("escalated", ["resolve"])


def leader(world) -> int:
    return world.users["leader_a"].id


@pytest.mark.parametrize(
    "taken_at",
    [T0 + timedelta(hours=2, minutes=5), None],
    ids=["taken-after-the-escalation", "sent-live"],
)
def test_an_accept_taken_after_the_ticks_escalation_records_the_contact_when_it_was_made(
    client, session, world, clock, taken_at
):
    """The task stays escalated (its deadline passed all the same), the contact is recorded
    when it was made, late, as the response rate then counts it; not offered again. Until
    2026-12-07 it was refused: the ticket counted as never answered until resolved."""
    task = escalated_by_the_tick(session, clock)
    body = {"taken_at": taken_at.isoformat()} if taken_at else {}
    response = step(client, world, task.id, "accept", **body)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "escalated"
    made = taken_at or T0 + timedelta(hours=2, minutes=10)
    assert stored(session, task.id).first_contact_at == made
    assert "accept" not in response.json["allowed_actions"]


def test_an_accept_taken_before_a_hand_escalation_is_dated_no_earlier_than_it(
    client, session, world, clock
):
    """The leader escalated the task on the worker's behalf: a person's step, which bounds the
    phone's time as any does (the phone's owner could have known of it). The escalated task
    takes the accept (its first contact not recorded), dated at that step, not before."""
    task = make_task(session, now=T0, urgency="danger")
    session.commit()
    clock(T0 + timedelta(hours=1))
    assert step(client, world, task.id, "escalate", user="leader_a").status_code == 200
    clock(T0 + timedelta(hours=1, minutes=10))
    kept = (T0 + timedelta(minutes=20)).isoformat()
    response = step(client, world, task.id, "accept", taken_at=kept)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "escalated"
    assert stored(session, task.id).first_contact_at == T0 + timedelta(hours=1)
