"""What the window page (/window) asks of the API: the grids the caller may open a window
task for today, and the tasks they opened today (`created_by=me`, `created_on`)."""

from datetime import UTC, datetime, timedelta

import pytest

from api.models import Task
from tests.api.test_tasks_window_post import roster, window_task
from tests.factories import A1, A2, B1, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def codes(body):
    return sorted(f["properties"]["code"] for f in body["features"])


def test_the_window_worker_gets_every_grid_of_their_community_to_place_a_request(
    client, world, session
):
    roster(session, world)  # worker_a2 at the window today
    r = client.get("/api/v1/grids/window", headers=world.auth("worker_a2"))
    assert r.status_code == 200, r.json
    assert r.json["type"] == "FeatureCollection"
    assert r.json["at_window"] is True
    assert codes(r.json) == [A1, A2]
    by_code = {f["properties"]["code"]: f for f in r.json["features"]}
    # Their own grid is theirs (households to pick from); the other only a place and a name.
    assert by_code[A2]["properties"]["yours"] is True
    assert by_code[A1]["properties"]["yours"] is False
    assert by_code[A1]["properties"]["name"]
    assert by_code[A1]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    # Outlines only: no household counts of grids that are not theirs.
    assert "households" not in by_code[A1]["properties"]


def test_a_worker_not_at_the_window_today_gets_only_their_own_grids(client, world, session):
    roster(session, world)  # worker_a1 is out on the B-post today
    r = client.get("/api/v1/grids/window", headers=world.auth("worker_a1"))
    assert r.status_code == 200, r.json
    assert r.json["at_window"] is False
    assert codes(r.json) == [A1]


def test_a_window_post_of_another_day_gives_only_their_own_grids(client, world, session):
    roster(session, world, window_day=T0.date() + timedelta(days=1))
    r = client.get("/api/v1/grids/window", headers=world.auth("worker_a2"))
    assert (r.json["at_window"], codes(r.json)) == (False, [A2])


def test_the_community_admin_gets_their_community_s_grids(client, world):
    r = client.get("/api/v1/grids/window", headers=world.auth("admin_a"))
    assert r.status_code == 200, r.json
    assert codes(r.json) == [A1, A2]
    assert all(f["properties"]["yours"] for f in r.json["features"])


def test_a_district_viewer_opens_no_tasks_so_gets_no_window_grids(client, world):
    r = client.get("/api/v1/grids/window", headers=world.auth("viewer_110101"))
    assert r.status_code == 403
    assert r.headers["Content-Type"] == "application/problem+json"


def test_the_window_worker_lists_the_tasks_they_opened_today(client, world, session):
    roster(session, world)
    headers = world.auth("worker_a2")
    mine = client.post("/api/v1/tasks", json=window_task(), headers=headers).json["id"]
    # Opened by someone else in their own grid; opened by them yesterday.
    other = make_task(session, A2, now=T0, actor_id=world.users["admin_a"].id)
    a2 = world.users["worker_a2"].id
    yesterday = make_task(session, A2, now=T0 - timedelta(days=1), actor_id=a2)
    session.flush()
    r = client.get("/api/v1/tasks?created_by=me", headers=headers)
    assert r.status_code == 200, r.json
    assert sorted(t["id"] for t in r.json) == sorted([mine, yesterday.id])
    assert other.id not in [t["id"] for t in r.json]
    r = client.get("/api/v1/tasks?created_by=me&created_on=2026-11-17", headers=headers)
    assert [t["id"] for t in r.json] == [mine]


def test_opened_on_is_the_day_in_beijing(client, world, session):
    """23:30 UTC on the 16th is 07:30 on the 17th in Beijing."""
    at = datetime(2026, 11, 16, 23, 30, tzinfo=UTC)
    early = make_task(session, A2, now=at, actor_id=world.users["worker_a2"].id)
    session.flush()
    headers = world.auth("worker_a2")
    r = client.get("/api/v1/tasks?created_by=me&created_on=2026-11-17", headers=headers)
    assert [t["id"] for t in r.json] == [early.id]
    r = client.get("/api/v1/tasks?created_by=me&created_on=2026-11-16", headers=headers)
    assert r.json == []


def test_created_by_takes_only_me(client, world):
    r = client.get("/api/v1/tasks?created_by=12", headers=world.auth("worker_a2"))
    assert r.status_code == 422
    assert "created_by" in r.json["errors"]["query"]


def test_created_by_me_stays_within_what_the_caller_sees(client, world, session):
    """Tasks another community's worker opened are not found by asking for one's own."""
    make_task(session, B1, now=T0, actor_id=world.users["worker_b1"].id)
    session.flush()
    r = client.get("/api/v1/tasks?created_by=me", headers=world.auth("worker_a2"))
    assert r.json == []
    assert session.query(Task).count() == 1


def test_the_window_worker_is_told_who_holds_the_task_by_name(client, world, session):
    """A worker looks up no other accounts: the task itself names its assignee, for the
    resident who asks who will call them back."""
    roster(session, world)
    headers = world.auth("worker_a2")
    created = client.post("/api/v1/tasks", json=window_task(), headers=headers).json
    a1 = world.users["worker_a1"]
    assert created["assignee_name"] == a1.display_name
    listed = client.get("/api/v1/tasks?created_by=me", headers=headers).json
    assert [t["assignee_name"] for t in listed] == [a1.display_name]
    assert client.get(f"/api/v1/users/{a1.id}", headers=headers).status_code == 404


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_day_at_either_end_of_the_calendar_lists_nothing_rather_than_failing(
    client, world, session, day
):
    """The day after 9999-12-31 is beyond Python's dates: it was a 500."""
    make_task(session, A2, now=T0, actor_id=world.users["worker_a2"].id)
    session.flush()
    r = client.get(f"/api/v1/tasks?created_by=me&created_on={day}", headers=world.auth("worker_a2"))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.json == []
