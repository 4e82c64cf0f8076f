"""The 12345 hotline changes a ticket's deadline (延期, or a correction): `PUT /tasks/{id}/deadline`
moves it, records the step, warns and escalates the new deadline anew and tells the assignee."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.models import Notification, Task
from api.services.tasks import tick
from tests.factories import A1, B1, centre, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
TICKET = "12345-DL-0001"


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def ticket(grid: str = A1, **fields) -> dict:
    lon, lat = centre(grid)
    return {
        "source": "hotline",
        "type": "complaint",
        "external_id": TICKET,
        "title": "楼下烧烤油烟扰民",
        "urgency": "general",
        "due_at": (T0 + timedelta(days=3)).isoformat(),
        "location": {"lon": lon, "lat": lat},
        **fields,
    }


def open_ticket(client, world, user: str = "admin_a", **fields) -> dict:
    body = {k: v for k, v in ticket(**fields).items() if v is not None}
    r = client.post("/api/v1/tasks", json=body, headers=world.auth(user))
    assert r.status_code == 201, r.json
    return r.json


def change(client, world, task_id: int, due_at, user: str = "admin_a", **body):
    due = due_at.isoformat() if isinstance(due_at, datetime) else due_at
    return client.put(
        f"/api/v1/tasks/{task_id}/deadline",
        json={"due_at": due, **body},
        headers=world.auth(user),
    )


def updates_to(session, world, name: str) -> list[str]:
    rows = session.scalars(
        select(Notification.title)
        .where(Notification.user_id == world.users[name].id, Notification.kind == "task_updated")
        .order_by(Notification.id)
    )
    return list(rows)


def test_the_hotline_extends_a_tickets_deadline_and_the_assignee_is_told(client, world, session):
    task = open_ticket(client, world)
    later = T0 + timedelta(days=10)
    r = change(client, world, task["id"], later, note="延期获批")
    assert r.status_code == 200, r.json
    body = r.json
    assert (body["due_at"], body["ticket_due_at"]) == (later.isoformat(), later.isoformat())
    assert (body["status"], body["assignee_id"]) == ("dispatched", world.users["worker_a1"].id)
    step = body["events"][-1]
    assert (step["action"], step["from_status"], step["to_status"], step["actor_id"]) == (
        "deadline",
        "dispatched",
        "dispatched",
        world.users["admin_a"].id,
    )
    # Beijing times, the old deadline and the new, and the reason.
    assert step["note"] == "12345 办理时限 2026-11-20 10:00 → 2026-11-27 10:00: 延期获批"
    assert updates_to(session, world, "worker_a1") == ["任务办理时限已变更"]


def test_the_same_deadline_sent_again_changes_nothing_and_tells_nobody_again(
    client, world, session
):
    task = open_ticket(client, world)
    later = T0 + timedelta(days=10)
    first = change(client, world, task["id"], later)
    again = change(client, world, task["id"], later)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json["updated_at"] == first.json["updated_at"]
    assert [e["action"] for e in again.json["events"]].count("deadline") == 1
    assert updates_to(session, world, "worker_a1") == ["任务办理时限已变更"]


def test_a_ticket_opened_without_its_deadline_takes_the_one_the_hotline_sends(client, world):
    task = open_ticket(client, world, due_at=None)
    assert task["ticket_due_at"] is None
    given = T0 + timedelta(days=2)
    r = change(client, world, task["id"], given)
    assert (r.json["due_at"], r.json["ticket_due_at"]) == (given.isoformat(), given.isoformat())


def test_a_deadline_extended_after_it_passed_is_warned_and_escalated_anew(client, world, session):
    """The tick escalated the ticket at its deadline; the hotline then grants more time: the
    task is no longer overdue, and the new deadline is warned and escalated as one not yet
    reached (as a reopening treats the ticket's deadline still ahead)."""
    task = open_ticket(client, world, due_at=(T0 + timedelta(days=1)).isoformat())
    assert tick(session, T0 + timedelta(hours=20)).warned == 1
    assert tick(session, T0 + timedelta(days=1)).escalated == 1
    session.flush()
    now = T0 + timedelta(days=1, hours=1)
    client.application.config["FIXED_NOW"] = now
    r = change(client, world, task["id"], T0 + timedelta(days=3))
    assert r.status_code == 200, r.json
    assert (r.json["overdue"], r.json["warned_at"], r.json["escalated_at"]) == (False, None, None)
    assert r.json["status"] == "escalated"  # with the leader still; the assignee may resolve it
    assert tick(session, T0 + timedelta(days=3) - timedelta(minutes=1)).escalated == 0
    assert tick(session, T0 + timedelta(days=3)).escalated == 1


def test_a_deadline_brought_forward_brings_an_unmade_first_contact_forward(client, world, session):
    task = open_ticket(client, world, due_at=None)  # first contact within 24 h
    sooner = T0 + timedelta(hours=6)
    r = change(client, world, task["id"], sooner, note="改为紧急")
    assert r.json["first_contact_due_at"] == sooner.isoformat()
    # Brought forward: told as the ticket's urgency says (a general one is not urgent).
    (note,) = session.scalars(
        select(Notification).where(Notification.title == "任务办理时限已变更")
    ).all()
    assert note.urgent is False


@pytest.mark.parametrize(
    ("due_at", "message"),
    [
        ((T0 - timedelta(minutes=1)).isoformat(), "after now"),
        ((T0 + timedelta(days=91)).isoformat(), "90 days"),
        ("2026-11-20T10:00:00", "offset"),
    ],
    ids=["past", "too-far", "no-offset"],
)
def test_a_deadline_the_hotline_could_not_have_given_is_refused(
    client, world, session, due_at, message
):
    task = open_ticket(client, world)
    r = change(client, world, task["id"], due_at)
    assert r.status_code == 422, r.json
    assert message in str(r.json["errors"]["json"]["due_at"])
    stored = session.get(Task, task["id"])
    session.refresh(stored)
    assert stored.due_at == stored.ticket_due_at == T0 + timedelta(days=3)
    assert [e.action for e in stored.events] == ["create", "dispatch"]


def test_only_the_grids_leader_or_the_community_admin_changes_a_deadline(client, world):
    """The deadline measures those who work the ticket: its worker does not move it."""
    task = open_ticket(client, world)
    later = T0 + timedelta(days=5)
    expected = {"worker_a1": 403, "viewer_110101": 403, "worker_a2": 404, "admin_b": 404}
    for user, status in expected.items():
        assert change(client, world, task["id"], later, user=user).status_code == status, user
    assert change(client, world, task["id"], later, user="leader_a").status_code == 200


def test_only_a_hotline_ticket_has_a_deadline_the_hotline_changes(client, world, session):
    task = make_task(session, now=T0)  # a window task: its urgency sets the deadline
    r = change(client, world, task.id, T0 + timedelta(days=10))
    assert r.status_code == 409, r.json
    assert r.json["source"] == "window"


def test_a_ticket_no_longer_open_keeps_its_deadline(client, world):
    """Resolved (its on-time-ness settled: a reopening comes first) or passed on to another
    community (the ticket is theirs now): a 409 with the state and the allowed actions."""
    task = open_ticket(client, world)
    for action in ("accept", "resolve"):
        client.post(
            f"/api/v1/tasks/{task['id']}/transitions",
            json={"action": action},
            headers=world.auth("worker_a1"),
        )
    r = change(client, world, task["id"], T0 + timedelta(days=10))
    assert (r.status_code, r.json["state"]) == (409, "resolved"), r.json
    assert "reopen" in r.json["allowed"]
    other = open_ticket(client, world, external_id="12345-DL-0002")
    open_ticket(client, world, "admin_b", grid=B1, external_id="12345-DL-0002", redispatch=True)
    r = change(client, world, other["id"], T0 + timedelta(days=10))
    assert (r.status_code, r.json["state"]) == (409, "transferred"), r.json


def test_a_ticket_sent_again_with_another_deadline_is_a_409_that_says_how_to_change_it(
    client, world
):
    task = open_ticket(client, world)
    r = client.post(
        "/api/v1/tasks",
        json=ticket(due_at=(T0 + timedelta(days=10)).isoformat()),
        headers=world.auth("admin_a"),
    )
    assert (r.status_code, r.json["task_id"]) == (409, task["id"])
    assert f"PUT /api/v1/tasks/{task['id']}/deadline" in r.json["detail"]
    same = client.post("/api/v1/tasks", json=ticket(), headers=world.auth("admin_a"))
    assert same.status_code == 409 and "deadline" not in same.json["detail"]


def test_an_extended_deadline_is_warned_at_80_percent_of_what_was_left_at_the_change(
    client, world, session
):
    """The warning's round starts at the change, as at a reopening: 80 % of the 10 days left
    after an extension made two days in is day 10, not 80 % of the whole 12 days (day 9.6)."""
    task = open_ticket(client, world)  # due in 3 days, warned at 2.4 days
    changed = T0 + timedelta(days=2)
    client.application.config["FIXED_NOW"] = changed
    r = change(client, world, task["id"], T0 + timedelta(days=12), note="延期获批")
    assert r.status_code == 200, r.json
    assert tick(session, T0 + timedelta(days=10) - timedelta(minutes=1)).warned == 0
    assert tick(session, T0 + timedelta(days=10)).warned == 1


def test_an_escalated_ticket_whose_deadline_is_extended_is_warned_of_the_new_one_once(
    client, world, session
):
    """The tick escalated the ticket at its deadline (overdue: the status stays `escalated`,
    its worker may still resolve it); the hotline then grants ten more days. The new round is
    warned at 80 % of it, to the worker who still holds the ticket, once: before, the tick
    warned only dispatched, accepted, in-progress and reopened tasks, and the extended ticket
    ran out its new deadline with nobody warned."""
    task = open_ticket(client, world, due_at=(T0 + timedelta(days=1)).isoformat())
    assert tick(session, T0 + timedelta(hours=20)).warned == 1
    assert tick(session, T0 + timedelta(days=1)).escalated == 1
    # Escalated because overdue: the round's warning is not given a second time.
    assert tick(session, T0 + timedelta(days=1, minutes=30)).warned == 0
    session.flush()
    changed = T0 + timedelta(days=1, hours=1)
    client.application.config["FIXED_NOW"] = changed
    r = change(client, world, task["id"], T0 + timedelta(days=11), note="延期获批")
    assert (r.status_code, r.json["status"], r.json["warned_at"]) == (200, "escalated", None)
    # 80 % of the 9 days 23 hours left from the change: day 9, 5:24 past the change.
    point = changed + (T0 + timedelta(days=11) - changed) * 0.8
    assert tick(session, point - timedelta(minutes=1)).warned == 0
    assert tick(session, point).warned == 1
    assert tick(session, point + timedelta(hours=1)).warned == 0
    warnings = session.scalars(
        select(Notification.title)
        .where(
            Notification.user_id == world.users["worker_a1"].id,
            Notification.kind == "task_deadline_warning",
        )
        .order_by(Notification.id)
    )
    assert list(warnings) == ["任务即将超期", "任务即将超期"]  # the first round's, the new one's
    assert tick(session, T0 + timedelta(days=11)).escalated == 1
