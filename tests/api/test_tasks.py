"""The tasks API: create and dispatch, the lifecycle, reassigning, lists, scope, rates."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from api.models import Notification, Task, Visit
from api.services.tasks import TRANSITIONS, allowed_actions, task_from_visit
from tests.factories import A1, A2, B1, A, centre, make_task, make_user

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
STATUSES = (
    "new", "dispatched", "accepted", "in_progress", "resolved",
    "callback", "closed", "returned", "escalated", "reopened", "transferred",
)  # fmt: skip


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def hotline(**fields):
    lon, lat = centre(A1)
    return {
        "source": "hotline",
        "type": "complaint",
        "external_id": "12345-0001",
        "title": "楼下烧烤油烟扰民",
        "urgency": "general",
        "complainant": {"name": "王女士", "phone": "13800000000"},
        "location": {"lon": lon, "lat": lat},
        **fields,
    }


def act(client, world, user, task_id, action, **body):
    return client.post(
        f"/api/v1/tasks/{task_id}/transitions",
        json={"action": action, **body},
        headers=world.auth(user),
    )


def test_a_hotline_task_finds_its_grid_and_goes_to_the_worker(client, world):
    r = client.post("/api/v1/tasks", json=hotline(), headers=world.auth("admin_a"))
    assert r.status_code == 201, r.json
    body = r.json
    assert (body["grid_code"], body["status"]) == (A1, "dispatched")
    assert body["assignee_id"] == world.users["worker_a1"].id
    assert body["due_at"] == (T0 + timedelta(days=7)).isoformat()
    assert body["overdue"] is False
    assert [e["action"] for e in body["events"]] == ["create", "dispatch"]


def test_a_task_dispatched_as_it_is_created_was_last_updated_then(client, world):
    """The dispatch is stamped with the request's instant, as the creation is, not with the
    transaction's start (the column's onupdate)."""
    r = client.post("/api/v1/tasks", json=hotline(), headers=world.auth("admin_a"))
    assert r.json["status"] == "dispatched"
    assert r.json["created_at"] == r.json["updated_at"] == T0.isoformat()


def test_a_hotline_ticket_keeps_the_deadline_the_hotline_gave_it(client, world):
    """12345 dispatches each ticket with its time limit (办理时限): the task's deadline was always
    the urgency's (7 days for general), whatever the hotline set."""
    due = T0 + timedelta(days=3)
    r = client.post(
        "/api/v1/tasks", json=hotline(due_at=due.isoformat()), headers=world.auth("admin_a")
    )
    assert r.status_code == 201, r.json
    assert r.json["due_at"] == due.isoformat()


def test_a_task_shows_the_deadline_its_ticket_came_with_in_its_detail_and_the_list(client, world):
    """The app and the office see that the hotline set the deadline, and which: `ticket_due_at`
    (null where the urgency set it), read-only, beside `due_at`."""
    due = T0 + timedelta(days=3)
    given = hotline(due_at=due.isoformat())
    created = client.post("/api/v1/tasks", json=given, headers=world.auth("admin_a")).json
    own = hotline(external_id="12345-0002")
    client.post("/api/v1/tasks", json=own, headers=world.auth("admin_a"))
    assert created["ticket_due_at"] == due.isoformat()
    detail = client.get(f"/api/v1/tasks/{created['id']}", headers=world.auth("worker_a1")).json
    assert (detail["ticket_due_at"], detail["due_at"]) == (due.isoformat(), due.isoformat())
    listed = client.get("/api/v1/tasks", headers=world.auth("worker_a1")).json
    assert {t["external_id"]: t["ticket_due_at"] for t in listed} == {
        "12345-0001": due.isoformat(),
        "12345-0002": None,
    }
    spec = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    field = spec["Task"]["properties"]["ticket_due_at"]
    assert field["readOnly"] is True and "12345" in field["description"]


def test_a_hotline_deadline_sooner_than_first_contact_brings_first_contact_forward(
    client, world, session
):
    due = T0 + timedelta(hours=2)
    r = client.post(
        "/api/v1/tasks", json=hotline(due_at=due.isoformat()), headers=world.auth("admin_a")
    )
    assert r.status_code == 201, r.json
    task = session.get(Task, r.json["id"])
    assert task.first_contact_due_at == due


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (hotline(due_at=(T0 - timedelta(hours=1)).isoformat()), "after now"),
        (hotline(due_at=(T0 + timedelta(days=91)).isoformat()), "90 days"),
        (hotline(due_at="2026-11-20T10:00:00"), "offset"),
        (
            {
                **hotline(source="window", external_id=None, type="help"),
                "due_at": (T0 + timedelta(days=1)).isoformat(),
            },
            "hotline",
        ),
    ],
    ids=["past", "too-far", "no-offset", "not-hotline"],
)
def test_a_deadline_the_hotline_could_not_have_given_is_refused(
    client, world, session, body, message
):
    body = {k: v for k, v in body.items() if v is not None}
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("admin_a"))
    assert r.status_code == 422, r.json
    assert message in str(r.json["errors"]["json"]["due_at"])
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_task_for_a_household_takes_the_households_grid(client, world):
    household = world.households[B1][0]
    r = client.post(
        "/api/v1/tasks",
        json={"source": "window", "title": "办理证明", "household_id": household.id},
        headers=world.auth("worker_b1"),
    )
    assert (r.status_code, r.json["grid_code"]) == (201, B1)


def test_a_visits_follow_up_is_opened_by_its_visit_not_posted(client, world, session):
    """Source "visit" is the follow-up a visit opens (with the visit behind it); posted, a task
    passed for one with no visit: a removed household's let through, its note kept from view."""
    household = world.households[A1][0]
    r = client.post(
        "/api/v1/tasks",
        json={"source": "visit", "title": "x", "household_id": household.id},
        headers=world.auth("worker_a1"),
    )
    assert r.status_code == 422, r.json
    assert "source" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_repeated_hotline_ticket_is_a_conflict_naming_the_task(client, world):
    first = client.post("/api/v1/tasks", json=hotline(), headers=world.auth("admin_a")).json
    r = client.post("/api/v1/tasks", json=hotline(), headers=world.auth("admin_a"))
    assert (r.status_code, r.json["task_id"]) == (409, first["id"])


def window_request(grid: str, reference: str = "W-0001") -> dict:
    lon, lat = centre(grid)
    return {
        "source": "window",
        "type": "help",
        "external_id": reference,
        "title": "开具居住证明",
        "location": {"lon": lon, "lat": lat},
    }


def test_two_communities_each_open_a_task_of_the_same_window_reference(client, world, session):
    """Another source's reference (a window's request number) is the community's own: B's
    `W-0001` is not A's. It was a 409 "already a task of this community" for good, and told B
    that A had such a reference."""
    a = client.post("/api/v1/tasks", json=window_request(A1), headers=world.auth("admin_a"))
    b = client.post("/api/v1/tasks", json=window_request(B1), headers=world.auth("admin_b"))
    assert (a.status_code, b.status_code) == (201, 201), (a.json, b.json)
    assert (a.json["grid_code"], b.json["grid_code"]) == (A1, B1)
    assert session.scalar(select(func.count(Task.id)).where(Task.external_id == "W-0001")) == 2


def test_a_window_reference_sent_again_in_its_community_is_a_conflict_naming_its_task(
    client, world, session
):
    """Within a community a reference is still one task, in any of its grids: a repeat is the
    409 a repeated ticket is, naming the community's own task (not another community's)."""
    client.post("/api/v1/tasks", json=window_request(B1), headers=world.auth("admin_b"))
    first = client.post("/api/v1/tasks", json=window_request(A1), headers=world.auth("admin_a"))
    r = client.post("/api/v1/tasks", json=window_request(A2), headers=world.auth("admin_a"))
    assert r.status_code == 409, r.json
    assert (r.json["task_id"], r.json["ticket_held"]) == (first.json["id"], True)
    r = client.post("/api/v1/tasks", json=window_request(B1), headers=world.auth("admin_b"))
    assert r.status_code == 409, r.json
    assert r.json["task_id"] != first.json["id"]
    assert session.scalar(select(func.count(Task.id)).where(Task.external_id == "W-0001")) == 2


def test_a_hotline_ticket_and_a_window_reference_of_the_same_number_are_two_tasks(client, world):
    """A reference is unique per source: a window's `12345-0001` is not the hotline's ticket."""
    first = client.post("/api/v1/tasks", json=hotline(), headers=world.auth("admin_a"))
    r = client.post(
        "/api/v1/tasks", json=window_request(A1, "12345-0001"), headers=world.auth("admin_a")
    )
    assert (first.status_code, r.status_code) == (201, 201), r.json


@pytest.mark.parametrize(
    "typed",
    [" 12345-0001", "12345-0001 ", "12345-0001\u3000", "\u200b12345-0001", "１２３４５-０００１"],
)
def test_a_ticket_number_typed_with_spaces_or_in_full_width_is_the_same_ticket(
    client, world, session, typed
):
    """The office types or pastes the ticket number from the 12345 platform: a space around
    it (a paste, an IME's full-width space), a chat app's zero-width space or full-width digits
    made it another number. The ticket became a second task, past the repeat check, opened
    twice in the rates and never resolved once. Stored trimmed and half-width, it is the
    same ticket: a 409 naming its task, nothing added."""
    first = client.post("/api/v1/tasks", json=hotline(), headers=world.auth("admin_a")).json
    r = client.post("/api/v1/tasks", json=hotline(external_id=typed), headers=world.auth("admin_a"))
    assert (r.status_code, r.json.get("task_id")) == (409, first["id"]), r.json
    assert session.scalars(select(Task.external_id)).all() == ["12345-0001"]
    found = client.get(
        "/api/v1/tasks", query_string={"external_id": typed}, headers=world.auth("admin_a")
    )
    assert [t["id"] for t in found.json] == [first["id"]]


def test_a_ticket_number_of_spaces_only_is_a_422_naming_external_id(client, world, session):
    r = client.post(
        "/api/v1/tasks", json=hotline(external_id=" \u3000 "), headers=world.auth("admin_a")
    )
    assert r.status_code == 422, r.json
    assert "external_id" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_known_ticket_number_tells_nothing_to_a_caller_who_may_not_open_the_task(client, world):
    """Checked after the caller's right to open a task there: a 403, not a 409 naming it."""
    client.post("/api/v1/tasks", json=hotline(), headers=world.auth("admin_a"))
    for user in ("viewer_110102", "worker_b1"):
        r = client.post("/api/v1/tasks", json=hotline(), headers=world.auth(user))
        assert r.status_code == 403, user
        assert "task_id" not in r.json and "already" not in r.json["detail"]


def test_a_hotline_task_needs_its_ticket_number_and_type(client, world, session):
    body = hotline()
    del body["external_id"], body["type"]
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("admin_a"))
    assert r.status_code == 422
    assert set(r.json["errors"]["json"]) == {"external_id", "type"}
    assert session.scalar(select(Task.id)) is None


def test_a_location_outside_every_grid_is_unprocessable(client, world):
    r = client.post(
        "/api/v1/tasks", json=hotline(location={"lon": 100.0, "lat": 30.0}),
        headers=world.auth("admin_a"),
    )  # fmt: skip
    assert r.status_code == 422


def test_a_worker_cannot_open_a_task_in_another_grid(client, world):
    lon, lat = centre(B1)
    r = client.post(
        "/api/v1/tasks", json=hotline(location={"lon": lon, "lat": lat}),
        headers=world.auth("worker_a1"),
    )  # fmt: skip
    assert r.status_code == 403


def test_a_district_viewer_cannot_open_tasks(client, world):
    r = client.post("/api/v1/tasks", json=hotline(), headers=world.auth("viewer_110101"))
    assert r.status_code == 403


@pytest.mark.parametrize("action", ["close", "accept", "callback"])
def test_a_district_viewer_taking_a_step_is_refused_for_their_role_not_told_the_steps(
    client, world, session, action
):
    """A step the task's state does not take was answered 409 before the caller's right was
    checked: a district viewer, who takes none, read "allowed: accept, escalate, ...": the
    steps of a task that are others' to take."""
    task = make_task(session, now=T0)
    r = act(client, world, "viewer_110101", task.id, action)
    assert r.status_code == 403, r.json
    assert "allowed" not in r.json and "read-only" in r.json["detail"]


def test_a_step_the_tasks_state_does_not_take_is_409_for_whoever_may_take_it(
    client, world, session
):
    task = make_task(session, now=T0)
    r = act(client, world, "admin_a", task.id, "close")
    assert r.status_code == 409
    assert "accept" not in r.json["allowed"]  # the assignee's step: not the admin's to take


def test_the_full_lifecycle_keeps_every_step(client, world, session):
    task = make_task(session, now=T0)
    steps = [
        ("worker_a1", "accept", {"note": "已电话联系居民"}),
        ("worker_a1", "start", {"location": {"lon": 116.4025, "lat": 39.9225}}),
        ("worker_a1", "resolve", {"note": "已更换灯泡", "photos": ["photos/1.jpg"]}),
        ("leader_a", "callback", {"satisfaction": "satisfied"}),
        ("admin_a", "close", {}),
    ]
    for user, action, body in steps:
        r = act(client, world, user, task.id, action, **body)
        assert r.status_code == 200, (action, r.json)
    body = r.json
    assert body["status"] == "closed" and body["satisfaction"] == "satisfied"
    assert body["first_contact_at"] == T0.isoformat()
    events = body["events"]
    assert [e["to_status"] for e in events] == [
        "new", "dispatched", "accepted", "in_progress", "resolved", "callback", "closed",
    ]  # fmt: skip
    assert events[3]["location"] == {"lon": 116.4025, "lat": 39.9225}
    assert events[4]["photos"] == ["photos/1.jpg"]
    assert events[2]["actor_id"] == world.users["worker_a1"].id


def test_district_viewers_see_where_a_worker_stood_to_about_100_m(client, world, session):
    """A step's position is part of the worker's location track, as a visit's is."""
    task = make_task(session, now=T0)
    act(client, world, "worker_a1", task.id, "accept")
    act(client, world, "worker_a1", task.id, "start", location={"lon": 116.40251, "lat": 39.92257})
    for user, shown in (("viewer_110101", (116.403, 39.923)), ("leader_a", (116.40251, 39.92257))):
        events = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth(user)).json["events"]
        started = [e for e in events if e["to_status"] == "in_progress"][0]
        assert (started["location"]["lon"], started["location"]["lat"]) == shown, user


@pytest.mark.parametrize("action", list(TRANSITIONS))
def test_each_action_is_legal_only_from_its_states(client, world, session, action):
    task = make_task(session, now=T0)
    extra = {
        "callback": {"satisfaction": "basically_satisfied"},
        "return": {"note": "不属于本网格"},
    }.get(action, {})
    user = (
        "worker_a1"
        if TRANSITIONS[action][next(iter(TRANSITIONS[action]))].by == "assignee"
        else "leader_a"
    )
    for status in STATUSES:
        # Not yet called back (a callback takes the resident's satisfaction once a round), nor
        # contacted (an escalated task takes the accept that records the first contact once).
        fresh = {"status": status, "satisfaction": None, "first_contact_at": None}
        session.execute(Task.__table__.update().where(Task.id == task.id).values(**fresh))
        r = act(client, world, user, task.id, action, **extra)
        if status in TRANSITIONS[action]:
            assert r.status_code == 200, (status, r.json)
            assert r.json["status"] == TRANSITIONS[action][status].to
        else:
            assert r.status_code == 409, (status, r.json)
            assert r.json["state"] == status
            # The steps the caller may take now: the task's `your_actions`, of the state's.
            yours = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth(user)).json
            assert r.json["allowed"] == yours["your_actions"]
            assert set(r.json["allowed"]) <= set(allowed_actions(status))


@pytest.mark.parametrize("digits", ["9" * 5000, "9" * 19])
def test_an_assignee_beyond_any_user_id_is_422(client, world, digits):
    """5,000 digits were beyond what int() reads: a 500."""
    r = client.get(f"/api/v1/tasks?assignee={digits}", headers=world.auth("admin_a"))
    assert r.status_code == 422


# An id in a body past PostgreSQL's integer (2**31 - 1) reached the database, which refused it:
# a 422 "A value is out of range or malformed." naming no field, whichever the client got wrong.
@pytest.mark.parametrize("big", [2**31, 2**40, 2**63 - 1])
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("", {"source": "proactive", "title": "井盖缺失"}, "household_id"),
        ("/{id}/move", {"grid_code": A2, "reason": "地址错了"}, "household_id"),
        ("/{id}/assign", {}, "assignee_id"),
    ],
)
def test_an_id_past_the_databases_integers_is_a_422_naming_its_field(
    client, world, session, big, path, body, field
):
    task = make_task(session, now=T0)
    before = session.scalar(select(func.count()).select_from(Task))
    r = client.post(
        "/api/v1/tasks" + path.format(id=task.id),
        json={**body, field: big},
        headers=world.auth("leader_a"),
    )
    assert r.status_code == 422, r.json
    assert r.mimetype == "application/problem+json"
    assert list(r.json["errors"]["json"]) == [field]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Task)) == before
    assert (session.get(Task, task.id).grid.code, session.get(Task, task.id).status) == (
        A1,
        "dispatched",
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/transitions", {"action": "accept"}, "note"),
        ("/assign", {"assignee_id": "worker_a1"}, "note"),
        (
            "/move",
            {"grid_code": A2, "location": dict(zip(("lon", "lat"), centre(A2), strict=True))},
            "reason",
        ),
    ],
)
def test_a_step_note_with_a_nul_is_refused_as_a_description_is(
    client, world, session, path, body, field
):
    """A NUL in a step's note was stored (sealed) and handed back as sent, in the task's
    history; a task's description has refused it all along."""
    task = make_task(session, now=T0)
    if body.get("assignee_id"):
        body = {**body, "assignee_id": world.users[body["assignee_id"]].id}
    user = "worker_a1" if path == "/transitions" else "leader_a"
    steps = len(task.events)
    r = client.post(
        f"/api/v1/tasks/{task.id}{path}",
        json={**body, field: "已联系\x00居民"},
        headers=world.auth(user),
    )
    assert r.status_code == 422, r.json
    assert list(r.json["errors"]["json"]) == [field]
    session.expire_all()
    assert (session.get(Task, task.id).status, len(session.get(Task, task.id).events)) == (
        "dispatched",
        steps,
    )


def test_only_the_assignee_accepts(client, world, session):
    task = make_task(session, now=T0)
    assert act(client, world, "leader_a", task.id, "accept").status_code == 403


def test_only_a_leader_or_admin_records_the_callback(client, world, session):
    task = make_task(session, now=T0)
    session.execute(Task.__table__.update().where(Task.id == task.id).values(status="resolved"))
    r = act(client, world, "worker_a1", task.id, "callback", satisfaction="satisfied")
    assert r.status_code == 403


def test_a_return_needs_a_reason(client, world, session):
    task = make_task(session, now=T0)
    r = act(client, world, "worker_a1", task.id, "return")
    assert (r.status_code, list(r.json["errors"]["json"])) == (422, ["note"])


def test_a_callback_needs_the_satisfaction(client, world, session):
    task = make_task(session, now=T0)
    session.execute(Task.__table__.update().where(Task.id == task.id).values(status="resolved"))
    assert act(client, world, "leader_a", task.id, "callback").status_code == 422


def test_a_returned_task_notifies_the_grid_leader(client, world, session):
    task = make_task(session, now=T0)
    act(client, world, "worker_a1", task.id, "return", note="不属于本网格")
    kinds = session.scalars(
        select(Notification.kind).where(Notification.user_id == world.users["leader_a"].id)
    ).all()
    assert kinds == ["task_updated"]


def test_the_leader_reassigns_and_the_new_assignee_is_notified(client, world, session):
    task = make_task(session, now=T0)
    r = client.post(
        f"/api/v1/tasks/{task.id}/assign",
        json={"assignee_id": world.users["worker_a2"].id, "note": "A2 熟悉情况"},
        headers=world.auth("leader_a"),
    )
    assert r.status_code == 200, r.json
    assert (r.json["assignee_id"], r.json["status"]) == (world.users["worker_a2"].id, "dispatched")
    note = session.scalar(
        select(Notification).where(Notification.user_id == world.users["worker_a2"].id)
    )
    assert (note.kind, note.collapse_key) == ("task_reassigned", f"task:{task.id}")


@pytest.mark.parametrize("steps", [["accept"], ["accept", "start"]])
def test_reassigning_a_task_to_the_worker_at_work_on_it_is_a_conflict(
    client, world, session, steps
):
    """Found playing the demo: a leader gave a task to the worker who had already accepted
    (or started) it. The task went back to `dispatched`, the worker had to accept and start it
    again, and was told "任务已转派给您" of a task they held. Now a 409 that changes nothing."""
    task = make_task(session, now=T0)
    worker = world.users["worker_a1"]
    assert task.assignee_id == worker.id
    for action in steps:
        assert act(client, world, "worker_a1", task.id, action).status_code == 200
    session.expire_all()
    status = session.get(Task, task.id).status
    assert status == {"accept": "accepted", "start": "in_progress"}[steps[-1]]
    told = select(func.count()).select_from(Notification).where(Notification.user_id == worker.id)
    notices = session.scalar(told)
    r = client.post(
        f"/api/v1/tasks/{task.id}/assign",
        json={"assignee_id": worker.id, "note": "加快"},
        headers=world.auth("leader_a"),
    )
    assert r.status_code == 409, r.json
    assert r.mimetype == "application/problem+json"
    assert worker.display_name in r.json["detail"] and r.json["state"] == status
    session.expire_all()
    assert session.get(Task, task.id).status == status
    assert [e.action for e in session.get(Task, task.id).events][-1] == steps[-1]
    assert session.scalar(told) == notices


def test_reassigning_a_resolved_task_is_a_conflict_naming_its_state_as_every_step_does(
    client, world, session
):
    """A refused step says where the task stands in `state` (with `allowed`), as transitions,
    moves and deadline changes do: the reassign's said `status_now`, so a client reading
    `state` (the app, the task page) found nothing there."""
    task = make_task(session, now=T0)
    assert act(client, world, "worker_a1", task.id, "accept").status_code == 200
    assert act(client, world, "worker_a1", task.id, "resolve").status_code == 200
    r = client.post(
        f"/api/v1/tasks/{task.id}/assign",
        json={"assignee_id": world.users["worker_a2"].id, "note": "A2 熟悉情况"},
        headers=world.auth("leader_a"),
    )
    assert r.status_code == 409, r.json
    assert (r.json["state"], r.json["allowed"]) == ("resolved", ["callback", "close", "reopen"])
    assert "status_now" not in r.json


def test_a_worker_cannot_reassign(client, world, session):
    task = make_task(session, now=T0)
    r = client.post(
        f"/api/v1/tasks/{task.id}/assign",
        json={"assignee_id": world.users["worker_a2"].id},
        headers=world.auth("worker_a1"),
    )
    assert r.status_code == 403


def test_a_leader_who_holds_a_grid_another_leads_does_not_act_as_its_leader(client, world, session):
    """Grid A2 is given a leader of its own (its `leader_id`); leader_a still holds it (a member
    of its team) and sees its tasks, but reassigned, closed and reopened them as its leader did,
    while the escalations went to its leader (`overseers` reads `leader_id`)."""
    world.users["leader_a2"] = make_user(session, "leader_a2", "grid_leader", grids=[A2])
    task = make_task(session, A2, now=T0)
    assert task.assignee_id == world.users["worker_a2"].id
    body = {"assignee_id": world.users["worker_a1"].id}
    r = client.post(f"/api/v1/tasks/{task.id}/assign", json=body, headers=world.auth("leader_a"))
    assert r.status_code == 403, r.json
    assert act(client, world, "leader_a", task.id, "escalate").status_code == 403
    assert act(client, world, "worker_a2", task.id, "accept").status_code == 200
    assert act(client, world, "worker_a2", task.id, "resolve").status_code == 200
    assert act(client, world, "leader_a", task.id, "close").status_code == 403
    assert act(client, world, "leader_a2", task.id, "close").status_code == 200
    assert act(client, world, "leader_a", task.id, "reopen").status_code == 403
    # Still leader of A1: their own grid's tasks are theirs to lead.
    own = make_task(session, A1, now=T0)
    body = {"assignee_id": world.users["worker_a2"].id}
    r = client.post(f"/api/v1/tasks/{own.id}/assign", json=body, headers=world.auth("leader_a"))
    assert r.status_code == 200, r.json


def test_reassigning_to_someone_of_another_community_is_unprocessable(client, world, session):
    task = make_task(session, now=T0)
    r = client.post(
        f"/api/v1/tasks/{task.id}/assign",
        json={"assignee_id": world.users["worker_b1"].id},
        headers=world.auth("leader_a"),
    )
    assert r.status_code == 422


def test_reassigning_to_a_worker_on_approved_leave_today_is_a_conflict(client, world, session):
    """Dispatch passes over a worker on leave; a reassign gave them the task anyway (and its
    notification), deadline and all. The leader is told, and the task stays where it was."""
    from datetime import timedelta

    from api.models import Leave
    from api.services.weeks import LOCAL

    task = make_task(session, now=T0)
    today = T0.astimezone(LOCAL).date()  # the app's clock (FIXED_NOW)
    away = world.users["worker_a2"]
    session.add(
        Leave(
            worker_id=away.id,
            start_date=today - timedelta(days=1),
            end_date=today + timedelta(days=2),
            status="approved",
        )
    )
    session.flush()
    r = client.post(
        f"/api/v1/tasks/{task.id}/assign",
        json={"assignee_id": away.id},
        headers=world.auth("leader_a"),
    )
    assert r.status_code == 409, r.json
    assert "leave" in r.json["detail"] and str(today + timedelta(days=2)) in r.json["detail"]
    session.refresh(task)
    assert task.assignee_id != away.id
    assert session.scalar(select(Notification).where(Notification.user_id == away.id)) is None


def _closed_task(client, world, session):
    task = make_task(session, now=T0)
    for user, action, body in (
        ("worker_a1", "accept", {}),
        ("worker_a1", "resolve", {"note": "已处理"}),
        ("leader_a", "callback", {"satisfaction": "unsatisfied"}),
        ("admin_a", "close", {}),
    ):
        assert act(client, world, user, task.id, action, **body).status_code == 200
    return task


def _cannot_work(session, world, how):
    from api.models import Leave
    from api.services.weeks import LOCAL

    worker = world.users["worker_a1"]
    if how == "deactivated":
        worker.active = False
    else:
        today = T0.astimezone(LOCAL).date()
        session.add(Leave(worker_id=worker.id, start_date=today, end_date=today, status="approved"))
    session.flush()
    return worker


@pytest.mark.parametrize("how", ["deactivated", "on-leave"])
def test_a_task_reopened_while_its_assignee_cannot_work_goes_to_whom_dispatch_picks(
    client, world, session, how
):
    """Reopening gave the task back to its last assignee: one who has since left (switched off)
    or is on leave today held it, told nothing could be done, until its deadline passed."""
    from api.services import dispatch
    from api.services.weeks import LOCAL

    task = _closed_task(client, world, session)
    gone = _cannot_work(session, world, how)
    expected, _ = dispatch.choose_assignee(session, world.grids[A1], T0.astimezone(LOCAL).date())
    r = act(client, world, "leader_a", task.id, "reopen", note="居民反映问题未解决")
    assert r.status_code == 200, r.json
    assert r.json["assignee_id"] != gone.id
    assert r.json["assignee_id"] == (expected.id if expected else None)
    assert r.json["status"] == ("dispatched" if expected else "new")
    assert [e["action"] for e in r.json["events"]][-2:] == [
        "reopen",
        "dispatch" if expected else "unassign",
    ]
    told = session.scalars(
        select(Notification.user_id).where(Notification.title == "任务已重新打开")
    ).all()
    assert gone.id not in told


def test_a_task_reopened_with_nobody_to_take_it_waits_and_the_admins_are_told(
    client, world, session
):
    task = _closed_task(client, world, session)
    _cannot_work(session, world, "deactivated")
    world.users["leader_a"].active = False
    other_admin = make_user(session, "admin_a_2", "community_admin", community=A)
    session.flush()
    r = act(client, world, "admin_a", task.id, "reopen")
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["assignee_id"]) == ("new", None)
    assert [e["action"] for e in r.json["events"]][-2:] == ["reopen", "unassign"]
    told = session.scalars(
        select(Notification.user_id).where(Notification.title == "重新打开的任务待分派")
    ).all()
    assert told == [other_admin.id]  # the admin who reopened it knows
    again = client.post(
        f"/api/v1/tasks/{task.id}/assign",
        json={"assignee_id": world.users["worker_a2"].id},
        headers=world.auth("admin_a"),
    )
    assert (again.status_code, again.json["status"]) == (200, "dispatched")


def test_a_task_reopened_after_its_assignee_became_an_admin_goes_to_whom_dispatch_picks(
    client, world, session
):
    """An account made a community admin leaves field work: the tasks it held are handed on
    then, but one it had resolved went back to it when reopened (an admin, told to work it,
    whom no reassign may name and dispatch never picks)."""
    task = _closed_task(client, world, session)
    former = world.users["worker_a1"]
    r = client.patch(
        f"/api/v1/users/{former.id}",
        json={"role": "community_admin"},
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 200, r.json
    r = act(client, world, "leader_a", task.id, "reopen", note="居民反映问题未解决")
    assert r.status_code == 200, r.json
    # Nobody else works A1 on this Tuesday without a roster: dispatch falls back to its leader,
    # who reopened it (and so is not told).
    assert (r.json["status"], r.json["assignee_id"]) == ("dispatched", world.users["leader_a"].id)
    assert [e["action"] for e in r.json["events"]][-2:] == ["reopen", "dispatch"]
    told = session.scalars(
        select(Notification.user_id).where(Notification.title == "任务已重新打开")
    ).all()
    assert former.id not in told


def test_a_task_reopened_after_its_assignee_left_its_grid_goes_to_the_grids_worker(
    client, world, session
):
    """The 12345 hotline sent a ticket back (重办) after its worker was moved to another grid:
    the reopening gave it back to them, out in their new grid, while the grid's own worker
    served the resident's door; told "任务已重新打开", they could not even return it (a
    reopened task is accepted or escalated). It goes to whom dispatch picks in its grid now."""
    task = _closed_task(client, world, session)
    moved = world.users["worker_a1"]
    successor = make_user(session, "worker_a1_next", "worker", grids=[A1])
    r = client.patch(
        f"/api/v1/users/{moved.id}", json={"grid_codes": [A2]}, headers=world.auth("admin_a")
    )
    assert r.status_code == 200, r.json
    r = act(client, world, "leader_a", task.id, "reopen", note="12345 重办")
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["assignee_id"]) == ("dispatched", successor.id)
    assert [e["action"] for e in r.json["events"]][-2:] == ["reopen", "dispatch"]
    assert (
        moved.id
        not in session.scalars(
            select(Notification.user_id).where(Notification.title == "任务已重新打开")
        ).all()
    )
    assert session.scalars(
        select(Notification.kind).where(Notification.user_id == successor.id)
    ).all() == ["task_dispatched"]


def test_a_task_reopened_goes_back_to_its_assignee_who_can_work(client, world, session):
    task = _closed_task(client, world, session)
    r = act(client, world, "leader_a", task.id, "reopen")
    assert (r.json["status"], r.json["assignee_id"]) == ("reopened", world.users["worker_a1"].id)


def test_tasks_outside_your_scope_are_not_found(client, world, session):
    task = make_task(session, now=T0)
    for user in ("worker_a2", "admin_b", "viewer_110102"):
        assert client.get(f"/api/v1/tasks/{task.id}", headers=world.auth(user)).status_code == 404
    for user in ("worker_a1", "leader_a", "admin_a", "viewer_110101"):
        assert client.get(f"/api/v1/tasks/{task.id}", headers=world.auth(user)).status_code == 200


def test_the_list_filters_by_assignee_status_grid_and_overdue(client, world, session):
    mine = make_task(session, now=T0 - timedelta(days=8))  # overdue by now
    other = make_task(session, A2, now=T0)

    def ids(query, user="leader_a"):  # noqa: E306
        r = client.get(f"/api/v1/tasks?{query}", headers=world.auth(user))
        assert r.status_code == 200, r.json
        return [t["id"] for t in r.json]

    assert ids("assignee=me", "worker_a1") == [mine.id]
    assert ids("overdue=true") == [mine.id]
    assert ids("overdue=false") == [other.id]
    assert ids(f"grid={A1}") == [mine.id]
    assert ids("status=dispatched") == [mine.id, other.id]
    assert ids("status=closed") == []
    r = client.get("/api/v1/tasks", headers=world.auth("leader_a"))
    assert [t["overdue"] for t in r.json] == [True, False]
    assert ids("", "worker_b1") == []


def test_the_office_lists_a_weeks_tasks_newest_first_closed_ones_too(client, world, session):
    """The community office answers for the week's figures: the list gives the tasks the
    week's rates count (opened that week, Beijing time, whatever their state now), last
    opened first, and a district viewer narrows it to one community."""
    before = make_task(session, now=datetime(2026, 11, 15, 15, 59, tzinfo=UTC))  # Sun 23:59
    monday = make_task(session, now=datetime(2026, 11, 15, 16, 0, tzinfo=UTC))  # Mon 00:00
    later = make_task(session, A2, now=T0)
    closed = make_task(session, now=T0 + timedelta(hours=1))
    closed.status = "closed"
    elsewhere = make_task(session, B1, now=T0)
    session.flush()

    def ids(query, user="admin_a"):
        r = client.get(f"/api/v1/tasks?{query}", headers=world.auth(user))
        assert r.status_code == 200, r.json
        return [t["id"] for t in r.json]

    assert ids("week=2026-W47&sort=newest") == [closed.id, later.id, monday.id]
    assert ids("week=2026-W46") == [before.id]
    assert ids("week=2026-W47&status=closed") == [closed.id]
    viewer = "viewer_110101"
    assert elsewhere.id in ids("week=2026-W47", viewer)
    assert ids(f"week=2026-W47&community={A}&sort=newest", viewer) == [
        closed.id,
        later.id,
        monday.id,
    ]
    assert ids(f"community={A}", "admin_b") == []  # another community's: nothing of it


def test_a_street_office_reads_its_streets_tasks(client, world, session):
    """A street's weekly report links to the street's tasks: its communities' (A and B lie
    in street 110101001), not the whole district's."""
    in_a, in_b = make_task(session, now=T0), make_task(session, B1, now=T0)
    session.flush()

    def ids(query, user="viewer_110101"):
        r = client.get(f"/api/v1/tasks?week=2026-W47&{query}", headers=world.auth(user))
        assert r.status_code == 200, r.json
        return {t["id"] for t in r.json}

    assert ids("street=110101001") == {in_a.id, in_b.id}
    assert ids("street=110101002") == set()
    assert ids("street=110101001", "admin_a") == {in_a.id}  # only ever the caller's tasks
    assert ids("street=110101001", "viewer_110102") == set()
    r = client.get("/api/v1/tasks?street=1101010", headers=world.auth("viewer_110101"))
    assert r.status_code == 422 and "street" in r.json["errors"]["query"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("week=2026-W60", "week"),
        ("week=48", "week"),
        ("sort=oldest", "sort"),
        ("community=1", "community"),
    ],
)
def test_a_bad_week_sort_or_community_is_a_422_naming_it(client, world, query, field):
    r = client.get(f"/api/v1/tasks?{query}", headers=world.auth("admin_a"))
    assert r.status_code == 422, r.json
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert field in str(r.json)


def test_the_list_finds_the_task_of_a_hotline_ticket_by_its_number(client, world):
    """The 12345 bridge holds a ticket number, not the task's id: `external_id` finds the task
    that number opened (the number exactly as the hotline sent it), among those the caller sees."""
    posted = {}
    for number in ("12345-0001", "12345-00010", "12345-000"):
        r = client.post(
            "/api/v1/tasks", json=hotline(external_id=number), headers=world.auth("admin_a")
        )
        assert r.status_code == 201, r.json
        posted[number] = r.json["id"]

    def ids(number, user="admin_a"):  # noqa: E306
        r = client.get(
            "/api/v1/tasks", query_string={"external_id": number}, headers=world.auth(user)
        )
        assert r.status_code == 200, r.json
        return [t["id"] for t in r.json]

    assert ids("12345-0001") == [posted["12345-0001"]]
    assert ids("12345-000") == [posted["12345-000"]]
    assert ids("12345-0001", "worker_a1") == [posted["12345-0001"]]
    assert ids("12345-0001", "viewer_110101") == [posted["12345-0001"]]
    assert ids("12345-0002") == []
    assert ids("12345-000%") == []  # no pattern: the number as it is
    assert ids("12345-00") == []
    for outside in ("worker_b1", "admin_b", "worker_a2", "viewer_110102"):
        assert ids("12345-0001", outside) == [], outside


@pytest.mark.parametrize("value", ["", "1" * 65, "12345\x00", "12345-0001\n"])
def test_a_ticket_number_no_ticket_can_have_is_a_422_naming_external_id(client, world, value):
    r = client.get(
        "/api/v1/tasks", query_string={"external_id": value}, headers=world.auth("admin_a")
    )
    assert r.status_code == 422, r.json
    assert r.content_type == "application/problem+json"
    assert "external_id" in r.json["errors"]["query"]


@pytest.mark.parametrize("value", ["12345\x00", "12345-0001\n"])
def test_a_ticket_number_with_a_control_character_is_refused_naming_external_id(
    client, world, session, value
):
    """Stored, a newline would hide the ticket from its lookup by number; a NUL was the
    database's refusal, a 422 naming no field."""
    r = client.post("/api/v1/tasks", json=hotline(external_id=value), headers=world.auth("admin_a"))
    assert r.status_code == 422, r.json
    assert "external_id" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Task.id))) == 0


def test_the_ticket_number_filter_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").json
    parameters = {p["name"]: p for p in spec["paths"]["/api/v1/tasks"]["get"]["parameters"]}
    assert parameters["external_id"]["in"] == "query"
    assert parameters["external_id"]["schema"]["maxLength"] == 64
    assert "12345" in parameters["external_id"]["description"]


def test_a_task_closed_before_its_callback_still_records_the_residents_satisfaction(
    client, world, session
):
    """The leader closed the resolved ticket (办结) and the resident's verdict came after (the
    hotline's 回访, or the community's own call made late): a callback was refused on a closed
    task, and the ticket stayed out of the satisfaction rate for good. It is taken once: the
    task stays closed as it was, the verdict recorded and counted; a second is a 409."""
    task = make_task(session, now=T0)
    for user, action in (("worker_a1", "accept"), ("worker_a1", "resolve"), ("leader_a", "close")):
        assert act(client, world, user, task.id, action).status_code == 200, action
    closed = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("leader_a")).json
    assert closed["your_actions"] == ["callback", "reopen"]
    r = act(client, world, "leader_a", task.id, "callback", satisfaction="basically_satisfied")
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["satisfaction"]) == ("closed", "basically_satisfied")
    assert r.json["closed_at"] == closed["closed_at"]
    step = r.json["events"][-1]
    assert (step["action"], step["from_status"], step["to_status"]) == (
        "callback",
        "closed",
        "closed",
    )
    assert r.json["your_actions"] == ["reopen"]
    again = act(client, world, "leader_a", task.id, "callback", satisfaction="unsatisfied")
    assert (again.status_code, again.json["state"], again.json["allowed"]) == (
        409,
        "closed",
        ["reopen"],
    )
    assert "called back" in again.json["detail"]
    rates = client.get(
        f"/api/v1/tasks/rates?grid={A1}&week=2026-W47", headers=world.auth("admin_a")
    )
    assert rates.json["satisfaction_rate"] == 100.0


def test_rates_of_a_grid_for_a_week(client, world, session):
    task = make_task(session, now=T0)
    session.execute(
        Task.__table__.update()
        .where(Task.id == task.id)
        .values(status="closed", satisfaction="satisfied", first_contact_at=T0)
    )
    r = client.get(f"/api/v1/tasks/rates?grid={A1}&week=2026-W47", headers=world.auth("admin_a"))
    assert r.status_code == 200, r.json
    assert (r.json["opened"], r.json["response_rate"], r.json["satisfaction_rate"]) == (
        1,
        100.0,
        100.0,
    )
    # On how many verdicts the satisfaction rate rests: 100 % of one callback is not 100 % of 50.
    assert r.json["rated"] == 1
    r = client.get(
        f"/api/v1/tasks/rates?community={A}&start=2026-11-01T00:00:00Z&end=2026-12-01T00:00:00Z",
        headers=world.auth("admin_a"),
    )
    assert (r.status_code, r.json["opened"], r.json["resolution_rate"]) == (200, 1, 100.0)


def test_rates_by_source_give_the_hotlines_three_rates_apart(client, world, session):
    """A community is judged by the three rates of its 12345 tickets; tasks it opened itself
    (at the window, on rounds) are counted with them unless the source is asked for."""
    ticket, own = make_task(session, now=T0), make_task(session, now=T0)
    session.execute(
        Task.__table__.update()
        .where(Task.id == ticket.id)
        .values(source="hotline", status="closed", satisfaction="satisfied", first_contact_at=T0)
    )

    def rates(query=""):
        r = client.get(
            f"/api/v1/tasks/rates?community={A}&week=2026-W47{query}",
            headers=world.auth("admin_a"),
        )
        assert r.status_code == 200, r.json
        return r.json["opened"], r.json["resolution_rate"]

    assert rates() == (2, 50.0)
    assert rates("&source=hotline") == (1, 100.0)
    assert rates("&source=window") == (1, 0.0)
    refused = client.get(
        f"/api/v1/tasks/rates?community={A}&week=2026-W47&source=phone",
        headers=world.auth("admin_a"),
    )
    assert refused.status_code == 422
    assert own.id != ticket.id


def test_rates_of_a_community_you_cannot_see_are_not_found(client, world):
    r = client.get(
        f"/api/v1/tasks/rates?community={A}&week=2026-W47", headers=world.auth("admin_b")
    )
    assert r.status_code == 404


def test_rates_for_a_week_beyond_the_calendar_are_422(client, world):
    r = client.get(f"/api/v1/tasks/rates?grid={A1}&week=9999-W52", headers=world.auth("admin_a"))
    assert r.status_code == 422
    assert r.json["field"] == "week"


def test_a_visit_follow_up_becomes_one_task(session, world):
    import uuid

    from geoalchemy2.shape import from_shape
    from shapely.geometry import Point

    household = world.households[A1][0]
    visit = Visit(
        id=uuid.uuid4(), worker_id=world.users["worker_a1"].id, household_id=household.id,
        grid_id=world.grids[A1].id, visited_at=T0, utc_offset_minutes=480, week="2026-W47",
        location=from_shape(Point(*centre(A1)), srid=4326), datum="wgs84",
        raw_lon=centre(A1)[0], raw_lat=centre(A1)[1], outcome="met", follow_up=True,
        follow_up_note="独居老人需要助餐", grade="ok",
    )  # fmt: skip
    session.add(visit)
    session.flush()
    task = task_from_visit(session, visit, now=T0)
    again = task_from_visit(session, visit, now=T0)
    assert again.id == task.id
    assert (task.source, task.visit_id, task.household_id) == ("visit", visit.id, household.id)
    assert task.status == "dispatched"
    # The note tells a resident's circumstances: sealed description, never the plain title.
    assert (task.title, task.description) == ("入户走访跟进", "独居老人需要助餐")
    stored = session.execute(
        text("SELECT title, description FROM tasks WHERE id = :i"), {"i": task.id}
    ).one()
    assert stored.title == "入户走访跟进" and stored.description.startswith("v1:")


def test_a_premises_follow_up_task_takes_the_visits_point_without_checking_it_again(session, world):
    """The stored-visits hook must not be able to fail the batch: the task of a premises
    visit stands at the visit's stored point as it is, in the visit's grid."""
    import uuid

    from geoalchemy2.shape import from_shape, to_shape
    from shapely.geometry import Point

    beyond = Point(-180.0065, 0.0)  # not a WGS-84 point: the batch now rejects such a visit
    visit = Visit(
        id=uuid.uuid4(), worker_id=world.users["worker_a1"].id, premises={"building": "7"},
        grid_id=world.grids[A1].id, visited_at=T0, utc_offset_minutes=480, week="2026-W47",
        location=from_shape(beyond, srid=4326), datum="bd09", raw_lon=-180.0, raw_lat=0.0,
        outcome="met", follow_up=True, follow_up_note="路灯坏了", grade="ok",
    )  # fmt: skip
    session.add(visit)
    session.flush()
    task = task_from_visit(session, visit, now=T0)
    assert task.grid_id == world.grids[A1].id and task.household_id is None
    assert to_shape(task.location).equals(beyond)


def test_a_premises_follow_up_task_shows_viewers_where_the_worker_stood_to_about_100_m(
    client, world
):
    """A premises visit's follow-up task is placed where the worker stood: part of their
    track, rounded for district viewers as the visit's own position is."""
    from tests.factories import visit_item

    stood = (116.40312, 39.92338)  # in A1
    item = visit_item(
        None, lon=stood[0], lat=stood[1], follow_up=True, follow_up_note="路灯坏了",
        premises={"building": "Shop 3", "kind": "business"},
    )  # fmt: skip
    r = client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=world.auth("worker_a1")
    )
    assert r.json["results"][0]["status"] == "created"
    viewer, leader = world.auth("viewer_110101"), world.auth("leader_a")
    task_id = client.get("/api/v1/tasks?source=visit", headers=leader).json[0]["id"]
    rounded = {"lon": 116.403, "lat": 39.923}
    assert client.get(f"/api/v1/tasks/{task_id}", headers=viewer).json["location"] == rounded
    listed = client.get("/api/v1/tasks?source=visit", headers=viewer).json
    assert [t["location"] for t in listed] == [rounded]
    exact = {"lon": stood[0], "lat": stood[1]}
    assert client.get(f"/api/v1/tasks/{task_id}", headers=leader).json["location"] == exact


def test_a_viewer_sees_a_hotline_tasks_place_in_full(client, world):
    lon, lat = 116.40312, 39.92338  # a place given by the caller, not a worker's position
    created = client.post(
        "/api/v1/tasks",
        json=hotline(location={"lon": lon, "lat": lat}),
        headers=world.auth("admin_a"),
    )
    assert created.status_code == 201, created.json
    seen = client.get(f"/api/v1/tasks/{created.json['id']}", headers=world.auth("viewer_110101"))
    assert seen.json["location"] == {"lon": lon, "lat": lat}


def test_rates_read_a_period_given_without_an_offset_in_beijing_time(client, world, session):
    """November in Beijing runs from 2026-10-31T16:00Z to 2026-11-30T16:00Z: tasks opened at
    00:30 and 01:30 on 1 November (Beijing) are November's; one at 00:30 on 1 December is not."""
    make_task(session, now=datetime(2026, 10, 31, 16, 30, tzinfo=UTC))
    make_task(session, now=datetime(2026, 10, 31, 17, 30, tzinfo=UTC))
    make_task(session, now=datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
    r = client.get(
        f"/api/v1/tasks/rates?community={A}&start=2026-11-01T00:00:00&end=2026-12-01T00:00:00",
        headers=world.auth("admin_a"),
    )
    assert r.status_code == 200, r.json
    assert r.json["opened"] == 2
    assert r.json["start"] == "2026-11-01T00:00:00+08:00"


def test_the_assignee_still_resolves_a_task_escalated_at_its_deadline(client, world, session):
    """The deadline escalates the task to the leader while the worker is at the door: the
    work done is recorded, and the leader closes it, without a reassign first."""
    from api.services.tasks import tick

    task = make_task(session, now=T0, urgency="danger")
    assert act(client, world, "worker_a1", task.id, "accept").status_code == 200
    assert act(client, world, "worker_a1", task.id, "start").status_code == 200
    tick(session, T0 + timedelta(hours=2))
    session.flush()
    assert "resolve" in allowed_actions("escalated")
    r = act(client, world, "worker_a1", task.id, "resolve", note="已修好")
    assert (r.status_code, r.json["status"]) == (200, "resolved"), r.json
    assert act(client, world, "leader_a", task.id, "close").status_code == 200


def test_a_task_resolved_without_an_accept_records_its_first_contact(client, world, session):
    """A worker asks the leader for help at once (a danger ticket) and goes to the door: an
    escalated task is not accepted, so its resolution is the first contact the resident had.
    It counted as never answered in the response rate."""
    task = make_task(session, now=T0, urgency="danger")
    assert act(client, world, "worker_a1", task.id, "escalate", note="需要物业").status_code == 200
    r = act(client, world, "worker_a1", task.id, "resolve", note="已处置")
    assert (r.status_code, r.json["first_contact_at"]) == (200, T0.isoformat()), r.json
    rates = client.get(
        f"/api/v1/tasks/rates?grid={A1}&week=2026-W47", headers=world.auth("admin_a")
    ).json
    assert (rates["opened"], rates["response_rate"]) == (1, 100.0)


def test_a_task_escalated_before_it_was_accepted_takes_the_accept_that_records_the_contact(
    app, client, world, session
):
    """The worker asked for help at once (需物业配合), then phoned the resident: the accept that
    records it was refused ("you may: resolve"), the first-contact deadline passed, the leader
    was told of a contact overdue, and the response rate counted the ticket as never answered
    until its resolution days later. The accept records the contact; the task stays escalated
    (the leader's help still asked), and is accepted once."""
    task = make_task(session, now=T0)
    assert (
        act(client, world, "worker_a1", task.id, "escalate", note="需物业配合").status_code == 200
    )
    app.config["FIXED_NOW"] = T0 + timedelta(minutes=30)
    r = act(client, world, "worker_a1", task.id, "accept", note="已电话联系居民")
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["first_contact_at"]) == (
        "escalated",
        (T0 + timedelta(minutes=30)).isoformat(),
    )
    assert "accept" not in r.json["allowed_actions"]
    again = act(client, world, "worker_a1", task.id, "accept")
    assert again.status_code == 409 and "first contact" in again.json["detail"]
    rates = client.get(
        f"/api/v1/tasks/rates?grid={A1}&week=2026-W47", headers=world.auth("admin_a")
    ).json
    assert (rates["opened"], rates["response_rate"]) == (1, 100.0)


def test_a_resolution_keeps_the_first_contact_made_before_it(client, world, session):
    task = make_task(session, now=T0)
    act(client, world, "worker_a1", task.id, "accept")
    session.execute(
        Task.__table__.update()
        .where(Task.id == task.id)
        .values(first_contact_at=T0 - timedelta(minutes=5))
    )
    r = act(client, world, "worker_a1", task.id, "resolve")
    assert r.json["first_contact_at"] == (T0 - timedelta(minutes=5)).isoformat()


def test_only_the_assignee_resolves_an_escalated_task(client, world, session):
    task = make_task(session, now=T0)
    act(client, world, "worker_a1", task.id, "escalate", note="需要物业配合")
    assert act(client, world, "worker_a2", task.id, "resolve").status_code == 404
    assert act(client, world, "leader_a", task.id, "resolve").status_code == 403
