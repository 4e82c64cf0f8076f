"""Moving a task dispatched to the wrong grid to the right grid of its community."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.models import Grid, Leave, Notification, Task, User
from api.services.geometry import point_lonlat
from api.services.weeks import LOCAL
from tests.factories import A1, A2, B1, A, B, box, centre, grid_feature, make_task

T0 = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Beijing
TODAY = T0.astimezone(LOCAL).date()
REASON = "来电人报错地址，实为隔壁网格"


@pytest.fixture(autouse=True)
def fixed_clock(app):
    app.config["FIXED_NOW"] = T0


def move(client, world, user, task_id, **body):
    """Move to A2, at a place in A2 unless `body` says otherwise."""
    lon, lat = centre(A2, dx=0.001)
    body = {"grid_code": A2, "reason": REASON, "location": {"lon": lon, "lat": lat}, **body}
    body = {k: v for k, v in body.items() if v is not None}
    return client.post(f"/api/v1/tasks/{task_id}/move", json=body, headers=world.auth(user))


def told(session, user) -> list[tuple[str, str]]:
    rows = session.execute(
        select(Notification.kind, Notification.title)
        .where(Notification.user_id == user.id)
        .order_by(Notification.id)
    )
    return [(kind, title) for kind, title in rows]


def unchanged(session, task: Task, grid_id: int, assignee_id: int | None, status: str) -> bool:
    session.expire_all()
    row = session.get(Task, task.id)
    return (row.grid_id, row.assignee_id, row.status, len(row.events)) == (
        grid_id,
        assignee_id,
        status,
        2,
    )


def test_the_grids_leader_moves_an_open_task_and_it_is_dispatched_there(client, world, session):
    task = make_task(session, now=T0)
    assert task.assignee_id == world.users["worker_a1"].id
    r = move(client, world, "leader_a", task.id)
    assert r.status_code == 200, r.json
    body = r.json
    assert (body["grid_code"], body["grid_id"]) == (A2, world.grids[A2].id)
    assert (body["status"], body["assignee_id"]) == ("dispatched", world.users["worker_a2"].id)
    assert [e["action"] for e in body["events"]] == ["create", "dispatch", "move", "dispatch"]
    moved = body["events"][2]
    assert (moved["from_status"], moved["to_status"]) == ("dispatched", "new")
    assert moved["actor_id"] == world.users["leader_a"].id
    assert REASON in moved["note"] and A1 in moved["note"] and A2 in moved["note"]


def test_the_community_admin_moves_a_task(client, world, session):
    task = make_task(session, now=T0)
    r = move(client, world, "admin_a", task.id)
    assert r.status_code == 200, r.json
    assert r.json["grid_code"] == A2


def test_the_old_assignee_and_the_new_one_are_told(client, world, session):
    task = make_task(session, now=T0)
    move(client, world, "leader_a", task.id)
    assert told(session, world.users["worker_a1"])[-1] == ("task_updated", "任务已移至其他网格")
    assert told(session, world.users["worker_a2"]) == [("task_dispatched", "新任务")]


def test_a_move_keeps_the_deadline_and_owes_the_new_assignee_its_warning(client, world, session):
    task = make_task(session, now=T0)
    due = task.due_at
    task.warned_at = T0
    session.flush()
    r = move(client, world, "leader_a", task.id)
    assert r.json["due_at"] == due.isoformat()
    assert r.json["warned_at"] is None


def test_a_moved_task_counts_in_the_rates_of_its_new_grid(client, world, session):
    task = make_task(session, now=T0)
    move(client, world, "admin_a", task.id)

    def opened(code):
        r = client.get(
            f"/api/v1/tasks/rates?grid={code}&week=2026-W47", headers=world.auth("admin_a")
        )
        return r.json["opened"]

    assert (opened(A1), opened(A2)) == (0, 1)


def test_a_move_with_nobody_on_duty_there_waits_and_the_admins_are_told(client, world, session):
    from tests.factories import A, make_user

    office = make_user(session, "admin_a_office", "community_admin", community=A)
    task = make_task(session, now=T0)
    for name in ("worker_a2", "leader_a"):
        session.add(
            Leave(
                worker_id=world.users[name].id,
                start_date=TODAY,
                end_date=TODAY,
                status="approved",
            )
        )
    session.flush()
    r = move(client, world, "admin_a", task.id)
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["assignee_id"]) == ("new", None)
    assert told(session, world.users["worker_a1"])[-1] == ("task_updated", "任务已移至其他网格")
    assert told(session, office) == [("task_unassigned", "新任务待分派")]
    assert told(session, world.users["admin_a"]) == []  # who moved it knows


def test_a_move_given_a_place_in_the_new_grid_stands_there(client, world, session):
    household = world.households[A1][0]
    task = make_task(session, now=T0, household_id=household.id, location=None)
    lon, lat = centre(A2, dy=0.001)
    r = move(client, world, "leader_a", task.id, location={"lon": lon, "lat": lat})
    assert r.status_code == 200, r.json
    assert r.json["location"] == {"lon": lon, "lat": lat}
    assert r.json["household_id"] is None


def test_a_move_given_a_household_of_the_new_grid_stands_at_it(client, world, session):
    task = make_task(session, now=T0, household_id=world.households[A1][0].id, location=None)
    household = world.households[A2][1]
    r = move(client, world, "leader_a", task.id, location=None, household_id=household.id)
    assert r.status_code == 200, r.json
    assert r.json["household_id"] == household.id
    assert r.json["location"] == dict(
        zip(("lon", "lat"), point_lonlat(household.location), strict=True)
    )


def test_a_household_of_another_grid_is_unprocessable(client, world, session):
    task = make_task(session, now=T0)
    other = world.households[A1][1]
    r = move(client, world, "leader_a", task.id, location=None, household_id=other.id)
    assert r.status_code == 422, r.json
    assert "household_id" in r.json["errors"]["json"]
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, "dispatched")


def test_a_leader_not_of_the_new_grid_cannot_place_the_task_at_its_households(
    client, world, session
):
    """A leader moves a task to a grid of the community that is not theirs; naming one of
    that grid's households by id placed the task at it, and the answer gave that household's
    point, while an id of another grid was refused: which grid each household id is in, and
    where it stands, for a grid whose register the leader may not read. A household the caller
    does not see is refused as an id of no household of the grid; a place is still taken."""
    from tests.factories import make_user

    world.users["leader_a1"] = make_user(session, "leader_a1", "grid_leader", grids=[A1])
    task = make_task(session, now=T0)
    hidden = world.households[A2][1]
    r = move(client, world, "leader_a1", task.id, location=None, household_id=hidden.id)
    assert r.status_code == 422, r.json
    assert r.json["detail"] == f"Household {hidden.id} is not one of grid {A2}."
    assert "lon" not in str(r.json)
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, "dispatched")
    assert move(client, world, "leader_a1", task.id).status_code == 200


def test_a_move_without_a_place_in_the_new_grid_is_unprocessable(client, world, session):
    """A task left at its old place would stand in the old grid on the map, at the wrong
    address: it moves with the place it belongs."""
    task = make_task(session, now=T0)
    r = move(client, world, "leader_a", task.id, location=None)
    assert r.status_code == 422, r.json
    assert "location" in r.json["errors"]["json"]
    assert A1 in r.json["detail"]
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, "dispatched")


def test_a_task_whose_place_already_lies_in_the_new_grid_moves_without_one(client, world, session):
    """In the wrong grid at the right place (e.g. stored before the grids' borders were
    redrawn)."""
    lon, lat = centre(A2)
    task = make_task(session, now=T0, grid_code=A2)
    task.grid_id = world.grids[A1].id
    session.flush()
    r = move(client, world, "leader_a", task.id, location=None)
    assert r.status_code == 200, r.json
    assert r.json["location"] == {"lon": lon, "lat": lat}


def test_a_place_outside_the_new_grid_is_unprocessable(client, world, session):
    task = make_task(session, now=T0)
    lon, lat = centre(A1, dy=0.001)
    r = move(client, world, "leader_a", task.id, location={"lon": lon, "lat": lat})
    assert r.status_code == 422, r.json
    assert "location" in r.json["errors"]["json"]
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, "dispatched")


def test_a_move_needs_a_reason(client, world, session):
    task = make_task(session, now=T0)
    r = move(client, world, "leader_a", task.id, reason="  ")
    assert r.status_code == 422, r.json
    assert "reason" in r.json["errors"]["json"]
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, "dispatched")


@pytest.mark.parametrize(
    ("code", "why"),
    [(B1, "another community"), (A1, "already"), ("110101001001009", "no grid")],
    ids=["other-community", "same-grid", "unknown"],
)
def test_a_grid_a_task_cannot_move_to_is_unprocessable(client, world, session, code, why):
    task = make_task(session, now=T0)
    r = move(client, world, "admin_a", task.id, grid_code=code)
    assert r.status_code == 422, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    assert why in r.json["errors"]["json"]["grid_code"][0]
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, "dispatched")


def test_a_retired_grid_takes_no_task(client, world, session):
    task = make_task(session, now=T0)
    world.grids[A2].retired_at = T0 - timedelta(days=1)
    session.flush()
    r = move(client, world, "admin_a", task.id)
    assert r.status_code == 422, r.json
    assert "retired" in r.json["errors"]["json"]["grid_code"][0]


def _grid_with_one_task(app, client, world, session, status: str) -> tuple[dict, Task]:
    """A new grid of community A, without households, and a task opened in it; the clock
    then a minute on (a grid's version does not end in the instant it began)."""
    grid = client.post(
        "/api/v1/grids",
        json=grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930)),
        headers=world.auth("admin_a"),
    ).json
    task = make_task(session, A1, now=T0, location={"lon": 116.4025, "lat": 39.9275})
    assert task.grid_id == grid["id"]
    task.status = status
    session.flush()
    app.config["FIXED_NOW"] = T0 + timedelta(minutes=1)
    return grid, task


def test_a_grid_holding_an_open_task_is_not_retired(app, client, world, session):
    """Retiring a grid asked only that it hold no household: its open tasks stayed in a retired
    grid, where dispatch (a reopening, a holder switched off) gave them to whoever had held
    that grid, and no grid on the map held them. They are moved first (409, nothing changed)."""
    grid, task = _grid_with_one_task(app, client, world, session, "new")
    r = client.delete(f"/api/v1/grids/{grid['id']}", headers=world.auth("admin_a"))
    assert r.status_code == 409, r.data
    assert "move" in r.json["detail"]
    session.expire_all()
    assert session.get(Grid, grid["id"]).retired_at is None


@pytest.mark.parametrize("status", ["closed", "transferred"])
def test_a_grid_whose_tasks_are_all_ended_is_retired(app, client, world, session, status):
    grid, _ = _grid_with_one_task(app, client, world, session, status)
    r = client.delete(f"/api/v1/grids/{grid['id']}", headers=world.auth("admin_a"))
    assert r.status_code == 204


@pytest.mark.parametrize("status", ["resolved", "callback", "closed", "transferred"])
def test_a_task_no_longer_open_is_not_moved(client, world, session, status):
    task = make_task(session, now=T0)
    task.status = status
    session.flush()
    r = move(client, world, "admin_a", task.id)
    assert r.status_code == 409, r.json
    assert r.json["state"] == status
    assert "move" not in r.json["allowed"]
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, status)


def test_an_open_task_offers_the_move(client, world, session):
    task = make_task(session, now=T0)
    r = client.get(f"/api/v1/tasks/{task.id}", headers=world.auth("leader_a"))
    assert "move" in r.json["allowed_actions"]


@pytest.mark.parametrize(
    ("user", "status"),
    [("worker_a1", 403), ("viewer_110101", 403), ("worker_a2", 404), ("admin_b", 404)],
)
def test_only_the_grids_leader_or_the_admin_moves_a_task(client, world, session, user, status):
    task = make_task(session, now=T0)
    r = move(client, world, user, task.id)
    assert r.status_code == status, r.json
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, "dispatched")


def test_a_leader_of_another_grid_of_the_community_does_not_move_its_tasks(client, world, session):
    from tests.factories import make_user

    world.users["leader_a2"] = make_user(session, "leader_a2", "grid_leader", grids=[A2])
    task = make_task(session, now=T0)
    r = move(client, world, "leader_a2", task.id)
    assert r.status_code == 404, r.json


def test_a_resent_move_gets_its_first_answer_and_tells_nobody_twice(client, world, session):
    task = make_task(session, now=T0)
    headers = {**world.auth("leader_a"), "Idempotency-Key": "move-1"}
    body = {"grid_code": A2, "reason": REASON, "household_id": world.households[A2][0].id}
    first = client.post(f"/api/v1/tasks/{task.id}/move", json=body, headers=headers)
    again = client.post(f"/api/v1/tasks/{task.id}/move", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    worker_a2 = session.get(User, world.users["worker_a2"].id)
    assert len(told(session, worker_a2)) == 1


# --- reopening a task whose grid was retired since it closed ---------------------------------


def _closed_task_in_a_retired_grid(app, client, world, session) -> tuple[dict, Task]:
    grid, task = _grid_with_one_task(app, client, world, session, "closed")
    r = client.delete(f"/api/v1/grids/{grid['id']}", headers=world.auth("admin_a"))
    assert r.status_code == 204, r.data
    return grid, task


def a_grid_drawn_where_it_was(client, world) -> dict:
    """A grid of community A drawn anew over the retired one's place."""
    return client.post(
        "/api/v1/grids",
        json=grid_feature(A + "004", box(116.400, 39.925, 116.405, 39.930)),
        headers=world.auth("admin_a"),
    ).json


def reopen(client, world, task_id, user="admin_a"):
    return client.post(
        f"/api/v1/tasks/{task_id}/transitions",
        json={"action": "reopen", "note": "市民来电：问题复发"},
        headers=world.auth(user),
    )


def test_a_task_reopened_after_its_grid_was_retired_goes_to_the_grid_that_takes_its_place(
    app, client, world, session
):
    """A closed task stays in the grid it was worked in, which may be retired since (its
    households moved to a grid drawn anew). Reopened there (a 12345 ticket sent back), it was
    open again in a retired grid: off the map, dispatched to whoever had held it. It is
    reopened in the grid of its community that covers its place now, the move in its history."""
    grid, task = _closed_task_in_a_retired_grid(app, client, world, session)
    new = a_grid_drawn_where_it_was(client, world)

    r = reopen(client, world, task.id)

    assert r.status_code == 200, r.json
    assert (r.json["grid_code"], r.json["grid_id"]) == (A + "004", new["id"])
    assert r.json["status"] in ("new", "dispatched")
    moved = [e for e in r.json["events"] if e["action"] == "move"]
    assert len(moved) == 1 and f"{A}003 → {A}004" in moved[0]["note"]


def test_a_task_whose_retired_grid_nothing_replaced_is_not_reopened(app, client, world, session):
    grid, task = _closed_task_in_a_retired_grid(app, client, world, session)

    r = reopen(client, world, task.id)

    assert r.status_code == 409, r.json
    assert "retired" in r.json["detail"]
    session.expire_all()
    row = session.get(Task, task.id)
    assert (row.status, row.grid_id) == ("closed", grid["id"])


def test_the_grid_a_reopened_task_goes_to_is_looked_up_in_its_community_only(
    app, client, world, session
):
    """A plain lookup takes the lowest code at a point on a shared border, which may be
    another community's grid (a 409 to a reopening, its own community's grid ignored): the
    reopening looks among its community's grids only (`locate(..., community_code=)`)."""
    from api.services import grids as grid_service

    grid, task = _closed_task_in_a_retired_grid(app, client, world, session)
    new = a_grid_drawn_where_it_was(client, world)
    assert grid_service.locate(session, 116.4025, 39.9275, community_code=B) is None
    assert grid_service.locate(session, 116.4025, 39.9275, community_code=A).id == new["id"]
    r = reopen(client, world, task.id)
    assert (r.status_code, r.json["grid_code"]) == (200, A + "004")


def test_a_task_is_not_moved_to_a_household_that_left_the_register(client, world, session):
    """As it is not opened for one: the right address's household gone, the place is given."""
    task = make_task(session, now=T0)
    gone = world.households[A2][0]
    gone.removed_at, gone.removal_date, gone.removal_reason = T0, TODAY, "demolished"
    session.flush()
    r = move(client, world, "leader_a", task.id, location=None, household_id=gone.id)
    assert r.status_code == 422, r.json
    assert "left the register" in r.json["errors"]["json"]["household_id"][0]
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, "dispatched")


def test_an_address_finds_a_household_in_the_register_until_it_leaves(client, world, session):
    """Its address names it while it is in the register, as its id does: one leaving later
    today is found, one that left is not."""
    leaving, gone = world.households[A2][1], world.households[A2][2]  # rooms 201, 301
    leaving.removed_at, leaving.removal_date, leaving.removal_reason = (
        T0 + timedelta(hours=6), TODAY, "moved_out"
    )  # fmt: skip
    gone.removed_at, gone.removal_date, gone.removal_reason = T0, TODAY, "demolished"
    session.flush()
    task = make_task(session, now=T0)
    r = move(client, world, "leader_a", task.id, location=None, address="1号楼 301")
    assert r.status_code == 422 and "No household" in r.json["errors"]["json"]["address"][0]
    r = move(client, world, "leader_a", task.id, location=None, address="1号楼 201")
    assert (r.status_code, r.json["household_id"]) == (200, leaving.id), r.json


def test_a_leader_not_of_the_new_grid_places_the_task_by_the_address_the_resident_gave(
    client, world, session
):
    """The leader of the wrong grid knows the right address, not the right grid's household
    ids (its register is not theirs to look up): the move takes the address, and the server
    finds the one household of the new grid at it. Before, their move kept the task's wrong
    place, which lies in their own grid: refused every time."""
    from tests.factories import make_user

    world.users["leader_a1"] = make_user(session, "leader_a1", "grid_leader", grids=[A1])
    task = make_task(session, now=T0, household_id=world.households[A1][1].id, location=None)
    right = world.households[A2][1]  # 1-1-1-201 of A2
    r = move(client, world, "leader_a1", task.id, location=None, address="1号楼 1单元 201")
    assert r.status_code == 200, r.json
    assert (r.json["grid_code"], r.json["household_id"]) == (A2, right.id)
    session.expire_all()
    assert point_lonlat(session.get(Task, task.id).location) == point_lonlat(right.location)


@pytest.mark.parametrize(
    ("address", "says"),
    [("9号楼 101", "No household of grid"), ("1号楼", "3 households of grid"), ("  ", "address")],
)
def test_an_address_matching_no_household_or_many_is_refused_and_moves_nothing(
    client, world, session, address, says
):
    task = make_task(session, now=T0)
    r = move(client, world, "leader_a", task.id, location=None, address=address)
    assert r.status_code == 422, r.json
    assert says in r.json["errors"]["json"]["address"][0]
    assert unchanged(session, task, world.grids[A1].id, world.users["worker_a1"].id, "dispatched")


def test_an_address_and_a_household_together_are_refused(client, world, session):
    task = make_task(session, now=T0)
    right = world.households[A2][1]
    r = move(client, world, "leader_a", task.id, household_id=right.id, address="1号楼 201")
    assert r.status_code == 422, r.json
    assert set(r.json["errors"]["json"]) == {"address", "household_id"}


def test_a_task_moved_to_a_grid_its_worker_holds_too_stays_theirs_as_it_was(client, world, session):
    """Its worker holds the new grid too, and dispatch picks them again: the move set their
    work back to "dispatched" and pushed them 新任务 for the task they were doing."""
    worker = world.users["worker_a1"]
    worker.grids.append(world.grids[A2])
    task = make_task(session, now=T0)
    task.assignee_id, task.status = worker.id, "in_progress"
    session.flush()
    before = told(session, worker)
    r = move(client, world, "leader_a", task.id)
    assert r.status_code == 200, r.json
    assert (r.json["grid_code"], r.json["assignee_id"]) == (A2, worker.id)
    assert r.json["status"] == "in_progress"
    assert [e["action"] for e in r.json["events"]][-1] == "move"
    assert told(session, worker)[len(before) :] == [("task_updated", "任务已移至其他网格")]


# --- the grids a task may move to (GET /tasks/{id}/move) -------------------------------------


def move_targets(client, world, user, task_id):
    return client.get(f"/api/v1/tasks/{task_id}/move", headers=world.auth(user))


def offered(r) -> dict[str, bool]:
    """The grids offered, by code, each with `yours`."""
    return {f["properties"]["code"]: f["properties"]["yours"] for f in r.json["features"]}


def test_a_leader_of_one_grid_is_offered_every_other_active_grid_of_the_community(
    app, client, world, session
):
    """The task page offered the grids of `GET /grids/window`, a leader's own: the leader of
    the one wrong grid, who may move its task to any grid of the community, was told there was
    none. Offered: the community's active grids less the task's own, a retired one not, nor
    another community's; `yours` says whose households the caller may look up (none of A2's
    for the leader of A1 alone)."""
    from tests.factories import make_user

    world.users["leader_a1"] = make_user(session, "leader_a1", "grid_leader", grids=[A1])
    retired = client.post(
        "/api/v1/grids",
        json=grid_feature(A + "003", box(116.400, 39.925, 116.405, 39.930)),
        headers=world.auth("admin_a"),
    ).json
    session.get(Grid, retired["id"]).retired_at = T0
    task = make_task(session, now=T0)
    session.flush()

    r = move_targets(client, world, "leader_a1", task.id)

    assert r.status_code == 200, r.json
    assert offered(r) == {A2: False}
    [a2] = r.json["features"]
    assert (a2["id"], a2["properties"]["name"]) == (world.grids[A2].id, world.grids[A2].name)
    assert a2["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_a_grid_offered_is_yours_when_its_households_are_yours_to_look_up(client, world, session):
    task = make_task(session, now=T0)
    assert offered(move_targets(client, world, "leader_a", task.id)) == {A2: True}
    assert offered(move_targets(client, world, "admin_a", task.id)) == {A2: True}


def test_every_grid_offered_takes_the_move(client, world, session):
    """What the list offers, the move takes (a place given in the grid)."""
    from tests.factories import make_user

    world.users["leader_a1"] = make_user(session, "leader_a1", "grid_leader", grids=[A1])
    task = make_task(session, now=T0)
    [code] = offered(move_targets(client, world, "leader_a1", task.id))
    assert move(client, world, "leader_a1", task.id, grid_code=code).status_code == 200


@pytest.mark.parametrize(
    ("user", "status"),
    [("worker_a1", 403), ("viewer_110101", 403), ("worker_a2", 404), ("admin_b", 404)],
)
def test_the_grids_are_offered_to_whoever_may_move_the_task_only(
    client, world, session, user, status
):
    """As the move: the task's worker and the district's viewer read the task but do not move
    it (403); those who do not read it find no task (404)."""
    task = make_task(session, now=T0)
    r = move_targets(client, world, user, task.id)
    assert r.status_code == status, r.json
    assert r.headers["Content-Type"] == "application/problem+json"


def test_the_grids_of_an_unknown_task_are_not_found(client, world, session):
    r = move_targets(client, world, "admin_a", 987654321)
    assert r.status_code == 404, r.json
    assert r.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_a_task_no_longer_open_offers_no_grid_but_says_why(client, world, session, status):
    """As the move answers it: a 409 naming the state and the actions left."""
    task = make_task(session, now=T0)
    task.status = status
    session.flush()
    r = move_targets(client, world, "admin_a", task.id)
    assert r.status_code == 409, r.json
    assert r.json["state"] == status
    assert "move" not in r.json["allowed"]


def test_a_community_of_one_grid_offers_none(client, world, session):
    """The page then says whom to ask (noGridToMove)."""
    task = make_task(session, now=T0)
    world.grids[A2].retired_at = T0 - timedelta(days=1)
    session.flush()
    r = move_targets(client, world, "admin_a", task.id)
    assert (r.status_code, r.json["features"]) == (200, [])
