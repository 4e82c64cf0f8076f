"""A follow-up noted at the door of a grid retired before the phone synced.

The worker visits a household of a compound being demolished, asks for a follow-up and goes on
offline; meanwhile the households leave the register and the grid is deleted. The visit is
taken (made before the removal), but its follow-up task could be opened in no grid: the whole
batch was refused (409) every time it was sent, and every visit queued behind it with it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from api.models import Grid, Task, Visit
from api.services.geometry import point_lonlat
from tests.factories import A1, A2, B1, A, box, grid_feature, visit_item

NOTE = "老人独居，拆迁后去向不明，需社区跟进安置"
SHOP = {"building": "9号楼", "room": "底商1", "kind": "business", "name": "老王修车铺"}


def _retire(client, world, code: str, user: str) -> None:
    """Every household of the grid leaves the register (demolished), then the grid goes."""
    headers = world.auth(user)
    for household in world.households[code]:
        removal = client.post(
            f"/api/v1/households/{household.id}/removal",
            json={"reason": "demolished"},
            headers=headers,
        )
        assert removal.status_code == 201, removal.json
    gone = client.delete(f"/api/v1/grids/{world.grids[code].id}", headers=headers)
    assert gone.status_code == 204, gone.json


def _sync_visit_and_follow_up(
    client, world, code: str, worker: str, made_at: datetime, premises: bool = False
):
    """A plain visit and one asking for a follow-up (at a household's door, or at premises
    beside it), made at `made_at`, sent now."""
    first, second = world.households[code][:2]
    asked = {"follow_up": True, "follow_up_note": NOTE}
    if premises:
        lon, lat = point_lonlat(second.location)
        asked |= {"premises": SHOP, "lon": lon + 0.0001, "lat": lat}
    items = [
        visit_item(first, at=made_at),
        visit_item(None if premises else second, at=made_at, **asked),
    ]
    response = client.post(
        "/api/v1/visits/batch", json={"visits": items}, headers=world.auth(worker)
    )
    assert response.status_code == 200, response.json
    assert [r["status"] for r in response.json["results"]] == ["created", "created"]
    return items


def _follow_up(session, item) -> Task | None:
    session.expire_all()
    return session.scalar(select(Task).where(Task.visit_id == item["id"]))


def test_the_follow_up_opens_in_the_grid_that_took_the_place_of_the_retired_one(
    client, world, session
):
    made_at = datetime.now(UTC)
    _retire(client, world, A1, "admin_a")
    successor = client.post(
        "/api/v1/grids",
        json=grid_feature(A + "003", box(116.400, 39.920, 116.405, 39.925)),
        headers=world.auth("admin_a"),
    )
    assert successor.status_code == 201, successor.json
    items = _sync_visit_and_follow_up(client, world, A1, "worker_a1", made_at, premises=True)
    assert session.get(Visit, items[1]["id"]).grid_id == world.grids[A1].id  # where it was made
    task = _follow_up(session, items[1])
    assert task is not None
    assert (task.grid_id, task.source) == (successor.json["id"], "visit")


def test_without_a_successor_it_opens_in_the_nearest_grid_of_the_community(client, world, session):
    made_at = datetime.now(UTC)
    _retire(client, world, A1, "admin_a")
    items = _sync_visit_and_follow_up(client, world, A1, "worker_a1", made_at)
    task = _follow_up(session, items[1])
    assert task is not None and task.grid_id == world.grids[A2].id
    assert task.assignee_id == world.users["worker_a2"].id  # dispatched there, to its worker
    assert task.status == "dispatched"


def test_a_community_with_no_grid_left_keeps_the_visits_and_the_request_on_them(
    client, world, session
):
    """No grid in service to open it in: the visits are stored, the follow-up asked for with
    its note on the visit (for the community admin's records), and no task."""
    made_at = datetime.now(UTC)
    _retire(client, world, B1, "admin_b")
    items = _sync_visit_and_follow_up(client, world, B1, "worker_b1", made_at)
    assert _follow_up(session, items[1]) is None
    visit = session.get(Visit, items[1]["id"])
    assert (visit.follow_up, visit.grid_id) == (True, world.grids[B1].id)
    assert session.get(Grid, world.grids[B1].id).retired_at is not None
