"""One window, one visit, done (一窗受理、一次办结): a walk-in request the A-post worker settles
at the window (a certificate issued, a question answered) is registered as done there, by
them, not dispatched to a B-post worker out in the grid as work still to do."""

from sqlalchemy import func, select

from api.models import Notification, Task, TaskEvent
from tests.api.test_tasks_window_post import T0, fixed_clock, roster, window_task  # noqa: F401
from tests.factories import A1, A2

DONE_HERE = "窗口当场办结"


def notices(session, kind: str) -> list[int]:
    return list(
        session.scalars(
            select(Notification.user_id).where(Notification.kind == kind).order_by(Notification.id)
        )
    )


def test_a_request_settled_at_the_window_is_the_window_worker_s_and_resolved(
    client, world, session
):
    roster(session, world)
    body = window_task(title="开具居住证明", type="consultation", resolved_here=True)
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2"))
    assert r.status_code == 201, r.json
    me = world.users["worker_a2"].id
    assert (r.json["status"], r.json["assignee_id"], r.json["grid_code"]) == ("resolved", me, A1)
    task = session.get(Task, r.json["id"])
    # Answered and resolved the moment it was registered: both rates count it on time.
    assert task.first_contact_at == task.resolved_at == T0
    steps = session.scalars(
        select(TaskEvent).where(TaskEvent.task_id == task.id).order_by(TaskEvent.id)
    ).all()
    assert [(e.action, e.to_status, e.actor_id) for e in steps] == [
        ("create", "new", me),
        ("dispatch", "dispatched", me),
        ("resolve", "resolved", me),
    ]
    assert steps[-1].note == DONE_HERE
    # Nobody out in the grid is handed it; its leader makes the return call as for any task.
    assert notices(session, "task_dispatched") == []
    assert notices(session, "task_resolved") == [world.users["leader_a"].id]


def test_the_leader_calls_back_and_closes_it_as_any_resolved_task(client, world, session):
    roster(session, world)
    body = window_task(resolved_here=True)
    task_id = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2")).json["id"]
    leader = world.auth("leader_a")
    step = {"action": "callback", "satisfaction": "satisfied"}
    r = client.post(f"/api/v1/tasks/{task_id}/transitions", json=step, headers=leader)
    assert r.status_code == 200, r.json
    close = {"action": "close"}
    r = client.post(f"/api/v1/tasks/{task_id}/transitions", json=close, headers=leader)
    assert (r.status_code, r.json["status"]) == (200, "closed")


def test_the_three_rates_count_it_answered_and_resolved(client, world, session):
    roster(session, world)
    headers = world.auth("worker_a2")
    client.post("/api/v1/tasks", json=window_task(resolved_here=True), headers=headers)
    client.post("/api/v1/tasks", json=window_task(), headers=headers)  # dispatched, not done
    leader = world.auth("leader_a")
    rates = client.get(f"/api/v1/tasks/rates?grid={A1}&week=2026-W47", headers=leader)
    assert rates.status_code == 200, rates.json
    assert (rates.json["opened"], rates.json["resolved"]) == (2, 1)
    assert rates.json["response_rate"] == rates.json["resolution_rate"] == 50.0


def test_only_the_worker_at_the_window_settles_a_request_there(client, world, session):
    """A worker out on the B-post, in their own grid, opens a window task but is not at the
    window to have settled it; nor is the community admin, who holds no task."""
    roster(session, world)  # worker_a1 is out in A1 today
    for who in ("worker_a1", "admin_a"):
        r = client.post(
            "/api/v1/tasks", json=window_task(A1, resolved_here=True), headers=world.auth(who)
        )
        assert r.status_code == 403, (who, r.json)
        assert r.headers["Content-Type"] == "application/problem+json"
        assert "window" in r.json["detail"]
    assert session.scalar(select(func.count(Task.id))) == 0


def test_only_a_window_request_is_settled_at_the_window(client, world, session):
    roster(session, world)
    body = window_task(A2, source="proactive", resolved_here=True)
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2"))
    assert r.status_code == 422, r.json
    assert "resolved_here" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_request_not_settled_is_dispatched_as_before(client, world, session):
    roster(session, world)
    body = window_task(resolved_here=False)
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2"))
    assert (r.status_code, r.json["status"]) == (201, "dispatched")
    assert r.json["assignee_id"] == world.users["worker_a1"].id


def test_sent_twice_with_its_key_it_is_one_task(client, world, session):
    roster(session, world)
    headers = {**world.auth("worker_a2"), "Idempotency-Key": "window-done-1"}
    body = window_task(resolved_here=True)
    first = client.post("/api/v1/tasks", json=body, headers=headers)
    again = client.post("/api/v1/tasks", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"]
    assert session.scalar(select(func.count(Task.id))) == 1
    assert notices(session, "task_resolved") == [world.users["leader_a"].id]
