"""`your_actions`: of the actions legal on a task (`allowed_actions`, its status's), those the
caller may take. A phone draws its buttons from it: `allowed_actions` offered a worker "assign"
and "move" (403 to them) and "accept" on a task assigned to their leader."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.services.tasks import ACTIONS
from tests.factories import A1, A2, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def read(client, world, user, task_id) -> dict:
    response = client.get(f"/api/v1/tasks/{task_id}", headers=world.auth(user))
    assert response.status_code == 200, response.json
    return response.json


def dispatched(session, world, assignee="worker_a1"):
    task = make_task(session, A1, now=T0)  # dispatched to worker_a1, A1's worker
    task.assignee_id = world.users[assignee].id
    session.flush()
    return task


@pytest.mark.parametrize(
    ("user", "actions"),
    [
        ("worker_a1", ["accept", "return", "escalate"]),  # the assignee
        ("leader_a", ["escalate", "assign", "move"]),  # the grid's leader
        ("admin_a", ["escalate", "assign", "move"]),  # the community's admin
        ("viewer_110101", []),  # the district's viewer reads, never acts
    ],
)
def test_each_reads_the_actions_they_may_take_on_a_dispatched_task(
    client, session, world, user, actions
):
    task = dispatched(session, world)
    body = read(client, world, user, task.id)
    assert body["allowed_actions"] == ["accept", "return", "escalate", "assign", "move"]
    assert body["your_actions"] == actions


def test_a_worker_of_the_grid_may_take_none_on_a_task_assigned_to_their_leader(
    client, session, world
):
    task = dispatched(session, world, assignee="leader_a")
    assert read(client, world, "worker_a1", task.id)["your_actions"] == []
    assert read(client, world, "leader_a", task.id)["your_actions"] == [
        "accept",
        "return",
        "escalate",
        "assign",
        "move",
    ]


def test_a_resolved_task_is_the_leaders_to_call_back_close_or_reopen(client, session, world):
    task = dispatched(session, world)
    for action in ("accept", "resolve"):
        response = client.post(
            f"/api/v1/tasks/{task.id}/transitions",
            json={"action": action, "note": "修好了"},
            headers=world.auth("worker_a1"),
        )
        assert response.status_code == 200, response.json
    assert read(client, world, "worker_a1", task.id)["your_actions"] == []
    assert read(client, world, "leader_a", task.id)["your_actions"] == [
        "callback",
        "close",
        "reopen",
    ]


@pytest.mark.parametrize("user", ["worker_a1", "leader_a", "admin_a", "viewer_110101"])
def test_every_action_offered_is_taken_and_every_other_is_refused(client, session, world, user):
    """`your_actions` is the service's own rule: each action it offers succeeds, each legal one
    it leaves out is a 403 (tried on a fresh task each)."""
    offered = read(client, world, user, dispatched(session, world).id)["your_actions"]
    for action in [*ACTIONS, "assign", "move"]:
        task = dispatched(session, world)
        if action not in read(client, world, user, task.id)["allowed_actions"]:
            continue
        if action == "assign":
            path, body = "assign", {"assignee_id": world.users["worker_a2"].id}
        elif action == "move":
            home = world.households[A2][0].id
            path, body = "move", {"grid_code": A2, "reason": "地址错了", "household_id": home}
        else:
            path, body = "transitions", {"action": action, "note": "错派"}
        response = client.post(
            f"/api/v1/tasks/{task.id}/{path}", json=body, headers=world.auth(user)
        )
        if action in offered:
            assert response.status_code == 200, (action, response.json)
        else:
            assert response.status_code in (403, 404), (action, response.json)


def test_the_list_carries_them_too(client, session, world):
    task = dispatched(session, world)
    response = client.get("/api/v1/tasks", headers=world.auth("worker_a1"))
    assert response.status_code == 200, response.json
    [row] = [t for t in response.json if t["id"] == task.id]
    assert row["your_actions"] == ["accept", "return", "escalate"]
