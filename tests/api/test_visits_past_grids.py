"""A worker's own visits in a grid they no longer hold: their record, not the residents' data.

A worker moved to another grid kept reading, through their own visits, the notes, health
observations, follow-up notes, premises' addresses, photos and exact door positions of the
households of the grid they left, long after another worker took it over. What they did (when,
where to the block, with what outcome and grade) stays theirs to read; what they learnt of the
residents is for whoever holds the grid now.
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from api.models import AuditEntry
from tests.factories import A1, A2, image_bytes, visit_item

NOTE, FOLLOW_UP = "腿脚不便，需要轮椅", "申请无障碍改造"
FOLLOW_UP_TITLE = "7号楼2单元门口装坡道"
OBSERVED = {"disability": {"needs": "wheelchair"}}
SHOP = {"building": "9号楼", "room": "底商1", "kind": "business", "name": "老王修车铺"}
RESIDENTS_DATA = (NOTE, FOLLOW_UP, FOLLOW_UP_TITLE, "wheelchair", "老王修车铺", "底商1")


@pytest.fixture()
def photo_dir(app, tmp_path):
    app.config["PHOTO_DIR"] = str(tmp_path / "photos")


@pytest.fixture()
def past(client, world, photo_dir):
    """worker_a1's household visit (with a photo) and premises visit in A1, then moved to A2."""
    home = world.households[A1][0]
    visit = visit_item(
        home,
        notes=NOTE,
        observations=OBSERVED,
        follow_up=True,
        follow_up_note=FOLLOW_UP,
        follow_up_title=FOLLOW_UP_TITLE,
    )
    shop = visit_item(premises=SHOP, **_at(home))
    r = client.post(
        "/api/v1/visits/batch", json={"visits": [visit, shop]}, headers=world.auth("worker_a1")
    )
    assert [x["status"] for x in r.json["results"]] == ["created", "created"], r.json
    photo = client.post(
        f"/api/v1/visits/{visit['id']}/photos",
        data={"file": (io.BytesIO(image_bytes("PNG")), "photo.png")},
        headers=world.auth("worker_a1"),
        content_type="multipart/form-data",
    )
    assert photo.status_code == 201, photo.json
    moved = client.patch(
        f"/api/v1/users/{world.users['worker_a1'].id}",
        json={"grid_codes": [A2]},
        headers=world.auth("admin_a"),
    )
    assert moved.status_code == 200, moved.json
    return {"items": [visit, shop], "ids": [visit["id"], shop["id"]], "photo": photo.json}


def _at(household) -> dict:
    from api.services.geometry import point_lonlat

    lon, lat = point_lonlat(household.location)
    return {"lon": lon + 0.0001, "lat": lat}


def assert_record_only(visit: dict) -> None:
    """The worker's record: when, the grid, the outcome, the grade; none of the residents'."""
    assert visit["outcome"] == "met" and visit["visited_at"] and visit["week"]
    # The follow-up's title names the place ("3号楼…"): the grid's now, as the notes are.
    assert visit["follow_up_title"] is None
    assert visit["grid_code"] == A1 and visit["evidence"]["grade"]
    assert (visit["notes"], visit["observations"], visit["follow_up_note"]) == (None,) * 3
    assert visit["premises"] is None and visit["photos"] == []
    location = visit["location"]
    assert (location["raw_lon"], location["raw_lat"], location["accuracy_m"]) == (None,) * 3
    assert round(location["lon"], 3) == location["lon"]  # to the block, as for viewers
    for marker in RESIDENTS_DATA:
        assert marker not in str(visit)


def test_a_worker_reads_their_own_visit_in_a_grid_they_left_as_their_record_only(
    client, world, past
):
    for visit_id in past["ids"]:
        r = client.get(f"/api/v1/visits/{visit_id}", headers=world.auth("worker_a1"))
        assert r.status_code == 200, r.json
        assert_record_only(r.json)


def test_a_worker_lists_their_own_visits_in_a_grid_they_left_as_their_record_only(
    client, world, past
):
    r = client.get(f"/api/v1/visits?grid={A1}", headers=world.auth("worker_a1"))
    assert r.status_code == 200, r.json
    assert sorted(v["id"] for v in r.json) == sorted(past["ids"])
    for visit in r.json:
        assert_record_only(visit)


def test_a_resent_visit_in_a_grid_they_left_is_answered_as_their_record_only(client, world, past):
    """The phone sends the batch again (its first answer lost): `duplicate`, and the stored
    visit it answers with is the worker's record, as a read of it is."""
    r = client.post(
        "/api/v1/visits/batch", json={"visits": past["items"]}, headers=world.auth("worker_a1")
    )
    assert [x["status"] for x in r.json["results"]] == ["duplicate", "duplicate"], r.json
    for result in r.json["results"]:
        assert_record_only(result["visit"])


def test_the_photo_of_a_visit_in_a_grid_they_left_is_not_found_for_its_worker(client, world, past):
    r = client.get(past["photo"]["url"], headers=world.auth("worker_a1"))
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/problem+json")


def test_the_follow_up_task_of_a_visit_in_a_grid_they_left_is_not_theirs_to_read(
    client, world, past
):
    """The task their visit opened is the grid's: its title and note (the residents'), its
    place and the steps of whoever holds it now. A task they opened at the window they follow
    up wherever it went; one their visit opened, not (once another works it)."""
    (task,) = client.get("/api/v1/tasks?source=visit", headers=world.auth("leader_a")).json
    handed = client.post(
        f"/api/v1/tasks/{task['id']}/assign",
        json={"assignee_id": world.users["leader_a"].id},
        headers=world.auth("leader_a"),
    )
    assert handed.status_code == 200, handed.json
    mine = client.get("/api/v1/tasks?created_by=me", headers=world.auth("worker_a1")).json
    assert mine == []
    read = client.get(f"/api/v1/tasks/{task['id']}", headers=world.auth("worker_a1"))
    assert read.status_code == 404


def test_whoever_holds_the_grid_now_reads_those_visits_in_full(client, world, past):
    r = client.get(f"/api/v1/visits/{past['ids'][0]}", headers=world.auth("leader_a"))
    assert (r.json["notes"], r.json["follow_up_note"]) == (NOTE, FOLLOW_UP)
    assert r.json["follow_up_title"] == FOLLOW_UP_TITLE
    assert r.json["observations"] == OBSERVED and len(r.json["photos"]) == 1
    shop = client.get(f"/api/v1/visits/{past['ids'][1]}", headers=world.auth("leader_a")).json
    assert shop["premises"]["name"] == SHOP["name"]
    photo = client.get(past["photo"]["url"], headers=world.auth("leader_a"))
    assert photo.status_code == 200


def test_the_audit_entry_of_such_a_read_lists_no_notes(client, session, world, past):
    client.get(f"/api/v1/visits/{past['ids'][0]}", headers=world.auth("worker_a1"))
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry.resource == "visit"
    assert not {"notes", "observations", "follow_up_note", "raw_location"} & set(entry.fields)
    assert "follow_up_title" not in entry.fields


def test_the_audit_entry_of_a_full_read_names_the_follow_up_title(client, session, world, past):
    client.get(f"/api/v1/visits/{past['ids'][0]}", headers=world.auth("leader_a"))
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert {"follow_up_title", "follow_up_note"} <= set(entry.fields)


def test_a_worker_still_adds_a_photo_to_their_visit_after_leaving_the_grid(client, world, past):
    """Photos go up after the batch, on a better connection, maybe after the move: the visit
    is still theirs to complete (the answer names the photo they sent, nothing more)."""
    r = client.post(
        f"/api/v1/visits/{past['ids'][0]}/photos",
        data={"file": (io.BytesIO(image_bytes("JPEG")), "photo.jpg")},
        headers=world.auth("worker_a1"),
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.json
