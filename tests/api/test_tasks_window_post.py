"""The A-post window worker opens window tasks for any grid of their community, that day only."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from api.models import Leave, Roster, Shift, Task
from api.services.weeks import LOCAL, current_week
from tests.factories import A1, A2, B1, A, centre

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
TODAY = T0.astimezone(LOCAL).date()


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def roster(session, world, *, status="published", window_day=TODAY, at_window="worker_a2"):
    """This week's roster of community A: `at_window` at the window on `window_day`, the worker
    of A1 out in their grid today (so dispatch finds them on duty)."""
    week = Roster(community_code=A, week=current_week(T0), status=status)
    session.add(week)
    session.flush()
    session.add_all(
        [
            Shift(
                roster_id=week.id, date=window_day, post="A", worker_id=world.users[at_window].id
            ),
            Shift(
                roster_id=week.id,
                date=TODAY,
                post="B",
                worker_id=world.users["worker_a1"].id,
                grid_id=world.grids[A1].id,
            ),
        ]
    )
    session.flush()
    return week


def window_task(code=A1, **fields):
    lon, lat = centre(code)
    return {
        "source": "window",
        "title": "居民来厅办理居住证明",
        "location": {"lon": lon, "lat": lat},
        **fields,
    }


def test_the_window_worker_opens_a_window_task_in_another_grid_of_the_community(
    client, world, session
):
    roster(session, world)
    r = client.post("/api/v1/tasks", json=window_task(), headers=world.auth("worker_a2"))
    assert r.status_code == 201, r.json
    assert (r.json["grid_code"], r.json["source"], r.json["status"]) == (A1, "window", "dispatched")
    assert r.json["assignee_id"] == world.users["worker_a1"].id
    assert r.json["created_by_id"] == world.users["worker_a2"].id


def test_the_window_worker_opens_no_other_source_outside_their_grids(client, world, session):
    roster(session, world)
    body = window_task(source="proactive")
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2"))
    assert r.status_code == 403, r.json
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_window_post_on_another_day_opens_nothing_outside_their_grids(client, world, session):
    roster(session, world, window_day=TODAY + timedelta(days=1))
    r = client.post("/api/v1/tasks", json=window_task(), headers=world.auth("worker_a2"))
    assert r.status_code == 403, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_window_post_in_a_draft_roster_opens_nothing_outside_their_grids(client, world, session):
    roster(session, world, status="draft")
    r = client.post("/api/v1/tasks", json=window_task(), headers=world.auth("worker_a2"))
    assert r.status_code == 403, r.json


def test_the_window_worker_opens_no_task_in_another_community(client, world, session):
    roster(session, world)
    r = client.post("/api/v1/tasks", json=window_task(B1), headers=world.auth("worker_a2"))
    assert r.status_code == 403, r.json
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_worker_out_on_the_b_post_opens_no_window_task_outside_their_grids(
    client, world, session
):
    roster(session, world)  # worker_a1 is out in A1 today, not at the window
    r = client.post("/api/v1/tasks", json=window_task(A2), headers=world.auth("worker_a1"))
    assert r.status_code == 403, r.json


def on_leave_today(session, world, username="worker_a2", status="approved"):
    session.add(
        Leave(
            worker_id=world.users[username].id,
            start_date=TODAY,
            end_date=TODAY + timedelta(days=2),
            status=status,
        )
    )
    session.flush()


def test_a_window_worker_on_leave_opens_nothing_outside_their_grids(client, world, session):
    """Leave approved after the roster was published: until the A-post is handed on, the roster
    still names them, and the window's reach went on with a worker who was not at work (tasks
    resolved at the window in their name, the community's households looked up)."""
    roster(session, world)
    on_leave_today(session, world)
    body = window_task(resolved_here=True)
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2"))
    assert r.status_code == 403, r.json
    assert session.scalar(select(func.count(Task.id))) == 0


def test_a_leave_only_asked_for_leaves_the_window_open(client, world, session):
    roster(session, world)
    on_leave_today(session, world, status="requested")
    r = client.post("/api/v1/tasks", json=window_task(), headers=world.auth("worker_a2"))
    assert r.status_code == 201, r.json


def test_the_window_worker_follows_up_the_tasks_they_opened_for_other_grids(client, world, session):
    """The resident comes back to the window, or calls: "what happened to my request?"."""
    roster(session, world)
    headers = world.auth("worker_a2")
    task_id = client.post("/api/v1/tasks", json=window_task(), headers=headers).json["id"]
    assert client.get(f"/api/v1/tasks/{task_id}", headers=headers).status_code == 200
    listed = client.get("/api/v1/tasks", headers=headers).json
    assert task_id in [t["id"] for t in listed]
    # Not the other tasks of that grid.
    other = client.post("/api/v1/tasks", json=window_task(), headers=world.auth("admin_a"))
    assert client.get(f"/api/v1/tasks/{other.json['id']}", headers=headers).status_code == 404


@pytest.mark.parametrize(
    "title",
    ["   ", "\n\t", "路灯\n不亮", "路灯\u202e不亮", "\u200b", "\u3000\ufeff\u2060 \u200d"],
)
def test_a_blank_title_or_one_with_control_characters_opens_no_task(client, world, session, title):
    """A title of spaces was a task nobody could tell from another in a list; a newline or a
    bidirectional override in it broke or disguised the lists and reports it is shown in. A
    title of zero-width characters (U+200B, a chat app's) showed as nothing all the same."""
    roster(session, world)
    body = window_task(title=title)
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2"))
    assert r.status_code == 422, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    assert "title" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Task.id))) == 0


@pytest.mark.parametrize(
    "complainant",
    [{"name": "王秀英\u0000"}, {"phone": "1391234\n5678"}, {"phone": "1" * 201}, {"名\u0007": "x"}],
)
def test_a_complainant_with_control_characters_or_beyond_200_characters_opens_no_task(
    client, world, session, complainant
):
    """The resident's name and phone were stored as sent, a NUL or 5,000 digits included."""
    roster(session, world)
    body = window_task(complainant=complainant)
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2"))
    assert r.status_code == 422, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    assert "complainant" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Task.id))) == 0


def test_details_with_a_nul_open_no_task(client, world, session):
    """Free text (newlines welcome), but a NUL was stored (sealed) and handed back as sent."""
    roster(session, world)
    body = window_task(description="3号楼门口\x00的路灯坏了")
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2"))
    assert r.status_code == 422, r.json
    assert "description" in r.json["errors"]["json"]
    assert session.scalar(select(func.count(Task.id))) == 0
    body = window_task(description="3号楼门口\n路灯坏了一周")
    r = client.post("/api/v1/tasks", json=body, headers=world.auth("worker_a2"))
    assert r.status_code == 201, r.json
    assert r.json["description"] == "3号楼门口\n路灯坏了一周"


# --- the household the resident names, wherever in the community it is ----------------------
WINDOW_LOOKUP = "/api/v1/households/window"


def resident(session, code=A1, **fields):
    """A household of grid `code` at 7号楼 2单元 5层 502, with the facts a window need not see."""
    from tests.factories import make_household

    lon, lat = centre(code)
    facts = {"building": "7", "unit": "2", "floor": "5", "room": "502"}
    return make_household(
        session, lon, lat, phone="13800138000", tags=["living_alone"], **{**facts, **fields}
    )


def test_the_window_worker_finds_a_household_of_another_grid_by_the_address_said(
    client, world, session
):
    """The resident who walks in may live in any grid of the community: the window worker finds
    their household by the address they say, its address, grid and point only (not its phone,
    care tags or occupancy: the window registers a request, it does not read the register), and
    the read is in the audit log."""
    from api.models import AuditEntry

    roster(session, world)
    household = resident(session)  # in A1; worker_a2's grid is A2
    r = client.get(
        WINDOW_LOOKUP, query_string={"address": "7号楼2单元502"}, headers=world.auth("worker_a2")
    )
    assert r.status_code == 200, r.json
    (found,) = r.json
    assert found == {
        "id": household.id,
        "grid_code": A1,
        "building": "7",
        "unit": "2",
        "floor": "5",
        "room": "502",
        "kind": "residence",
        "lon": pytest.approx(centre(A1)[0]),
        "lat": pytest.approx(centre(A1)[1]),
    }
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "household", AuditEntry.action == "read")
    ).one()
    assert (entry.user_id, entry.resource_ids) == (world.users["worker_a2"].id, [household.id])
    assert set(entry.fields) == {"address", "location"}


def test_a_worker_not_at_the_window_today_looks_up_no_household_outside_their_grids(
    client, world, session
):
    roster(session, world, window_day=TODAY + timedelta(days=1))
    resident(session)
    r = client.get(
        WINDOW_LOOKUP, query_string={"address": "7号楼2单元502"}, headers=world.auth("worker_a2")
    )
    assert r.status_code == 403, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    assert "window" in r.json["detail"]


def test_a_window_worker_on_leave_looks_up_no_household_outside_their_grids(client, world, session):
    roster(session, world)
    on_leave_today(session, world)
    resident(session)
    r = client.get(
        WINDOW_LOOKUP, query_string={"address": "7号楼2单元502"}, headers=world.auth("worker_a2")
    )
    assert r.status_code == 403, r.json
    assert "window" in r.json["detail"]


def test_the_window_finds_no_household_of_another_community_nor_one_out_of_the_register(
    client, world, session
):
    from api.services.household_removal import remove_household

    roster(session, world)
    resident(session, B1)
    gone = resident(session, A1, room="503")
    remove_household(session, None, gone, reason="moved_out", now=datetime.now(UTC))
    headers = world.auth("worker_a2")
    for address in ("7号楼2单元502", "7号楼2单元503"):
        r = client.get(WINDOW_LOOKUP, query_string={"address": address}, headers=headers)
        assert (r.status_code, r.json) == (200, [])


@pytest.mark.parametrize("query", [{}, {"address": ""}, {"address": "1 2 3 4 5"}])
def test_the_window_lookup_needs_the_address_said(client, world, session, query):
    roster(session, world)
    r = client.get(WINDOW_LOOKUP, query_string=query, headers=world.auth("worker_a2"))
    assert r.status_code == 422, r.json
    assert r.headers["Content-Type"] == "application/problem+json"


def test_the_window_task_carries_the_household_found_in_another_grid(client, world, session):
    """Placed at the household the resident named, in its grid, dispatched to that grid's
    worker; another source still may not name a household outside one's grids."""
    roster(session, world)
    household = resident(session)
    headers = world.auth("worker_a2")
    body = {"source": "window", "title": "居民来厅反映楼道灯不亮", "household_id": household.id}
    r = client.post("/api/v1/tasks", json=body, headers=headers)
    assert r.status_code == 201, r.json
    assert (r.json["household_id"], r.json["grid_code"]) == (household.id, A1)
    assert r.json["assignee_id"] == world.users["worker_a1"].id
    r = client.post("/api/v1/tasks", json={**body, "source": "proactive"}, headers=headers)
    assert r.status_code == 422, r.json
    assert session.scalar(select(func.count(Task.id))) == 1
