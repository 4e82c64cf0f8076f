"""未诉先办 campaigns (`POST /communities/{code}/campaigns`): before the rains every grid clears
its drains, before a windy day every grid looks for what may fall. The office opened such a
check grid by grid, a task at a time placed by a click on the map; a campaign opens it in every
grid at once, each task dispatched in its grid as any task is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from api.models import Grid, Notification, Task
from api.services.geometry import point_lonlat
from api.services.grids import locate
from tests.factories import A1, A2, B1, A

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
CHECK = {"title": "汛期前清理雨水口", "description": "检查本网格雨水口、排水沟是否堵塞"}
URL = f"/api/v1/communities/{A}/campaigns"


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def open_campaign(client, world, user="admin_a", url=URL, **body):
    return client.post(url, json={**CHECK, **body}, headers=world.auth(user))


def task_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Task))


def test_the_admin_opens_the_check_in_every_grid_each_dispatched_there(client, world, session):
    response = open_campaign(client, world)
    assert response.status_code == 201, response.json
    assert response.json["created"] == 2
    opened = response.json["tasks"]
    assert [t["grid_code"] for t in opened] == [A1, A2]
    for task in opened:
        assert (task["source"], task["type"], task["urgency"]) == ("proactive", "report", "general")
        assert task["title"] == CHECK["title"] and task["status"] == "dispatched"
        stored = session.get(Task, task["id"])
        assert locate(session, *point_lonlat(stored.location)).code == task["grid_code"]
    holders = {t["grid_code"]: t["assignee_id"] for t in opened}
    assert holders == {A1: world.users["worker_a1"].id, A2: world.users["worker_a2"].id}
    told = session.scalars(
        select(Notification.user_id).where(Notification.kind == "task_dispatched")
    ).all()
    assert sorted(told) == sorted(holders.values())


def test_a_leader_opens_it_in_the_grids_they_lead_only(client, world, session):
    session.get(Grid, world.grids[A1].id).leader_id = world.users["leader_a"].id
    session.get(Grid, world.grids[A2].id).leader_id = None  # they hold A2 but do not lead it
    session.flush()
    response = open_campaign(client, world, "leader_a", urgency="utility")
    assert response.status_code == 201, response.json
    assert [(t["grid_code"], t["urgency"]) for t in response.json["tasks"]] == [(A1, "utility")]
    refused = open_campaign(client, world, "leader_a", grids=[A1, A2])
    assert refused.status_code == 403 and A2 in refused.json["detail"]
    assert task_count(session) == 1  # all or nothing: nothing of the refused one


def test_a_grid_not_in_the_community_is_a_422_naming_grids_and_opens_nothing(
    client, world, session
):
    response = open_campaign(client, world, grids=[A1, B1, "110101001001999"])
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("application/problem+json")
    message = response.json["errors"]["json"]["grids"][0]
    assert B1 in message and "110101001001999" in message and A1 not in message
    assert task_count(session) == 0


@pytest.mark.parametrize(
    ("user", "status"),
    [("worker_a1", 403), ("viewer_110101", 403), ("admin_b", 404)],
)
def test_only_the_communitys_admin_and_leaders_open_campaigns(client, world, session, user, status):
    assert open_campaign(client, world, user).status_code == status
    assert task_count(session) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "两行\n标题"}, "title"),
        ({"urgency": "soon"}, "urgency"),
        ({"type": "chat"}, "type"),
        ({"grids": []}, "grids"),
        ({"grids": ["1"]}, "grids"),
    ],
)
def test_a_bad_field_is_a_422_naming_it(client, world, session, body, field):
    response = open_campaign(client, world, **body)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["json"]
    assert task_count(session) == 0


def test_a_retry_with_its_key_gets_the_first_answer_and_opens_nothing_more(client, world, session):
    headers = {**world.auth("admin_a"), "Idempotency-Key": "campaign-rain-1"}
    first = client.post(URL, json=CHECK, headers=headers)
    again = client.post(URL, json=CHECK, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json
    assert task_count(session) == 2
