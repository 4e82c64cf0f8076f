"""The batch's fast paths load and answer exactly as the schemas they stand in for."""

from __future__ import annotations

import copy
import io
import uuid

import marshmallow as ma
import pytest
from flask_jwt_extended import verify_jwt_in_request
from sqlalchemy import select

from api.models import Visit
from api.resources.visits.schemas import (
    VisitItemSchema,
    VisitSchema,
    quick_load_item,
    visit_answer,
)
from tests.factories import A1, centre, image_bytes, visit_item

BATCH = "/api/v1/visits/batch"

PLAIN = {
    "id": "5b1f0c64-3f43-4a59-9d9f-6c4fb0b5b1a1",
    "household_id": 7,
    "visited_at": "2026-11-23T10:15:00+08:00",
    "location": {
        "lon": 116.4,
        "lat": 39.9,
        "accuracy_m": 12.0,
        "datum": "gcj02",
        "provider": "gps",
        "mock": False,
    },
    "outcome": "met",
    "notes": "bench",
    "observations": {},
}


def variant(**changes) -> dict:
    item = copy.deepcopy(PLAIN)
    for key, value in changes.items():
        if key.startswith("loc_"):
            key = key[4:]
            target = item["location"]
        else:
            target = item
        if value is ...:
            target.pop(key, None)
        else:
            target[key] = value
    return item


WELL_FORMED = [
    PLAIN,
    variant(notes=..., observations=...),
    variant(loc_accuracy_m=None, loc_provider=None),
    variant(loc_accuracy_m=..., loc_provider=..., loc_mock=...),
    variant(loc_lon=116, loc_lat=40, loc_accuracy_m=0),
    variant(loc_lon=-180.0, loc_lat=90.0),
    variant(visited_at="2026-11-23T02:15:00Z"),
    variant(visited_at="2026-11-23T08:00:00+05:45"),
    variant(follow_up=True, follow_up_note="Needs a ramp"),
    variant(follow_up=False, follow_up_note=None),
    variant(observations={"living_alone": {"ok": True}, "elderly_80": "fine"}),
    variant(id="5B1F0C643F434A599D9F6C4FB0B5B1A1", outcome="nobody_home"),
    variant(notes="line one\nline two\ttabbed", follow_up=True, follow_up_note="a\r\nb"),
]


@pytest.mark.parametrize("item", WELL_FORMED)
def test_a_well_formed_item_loads_as_the_schema_loads_it(item):
    assert quick_load_item(copy.deepcopy(item)) == VisitItemSchema().load(copy.deepcopy(item))


UNUSUAL = [
    variant(id=...),
    variant(id="not-a-uuid"),
    variant(id=12),
    variant(household_id="7"),
    variant(household_id=True),
    variant(household_id=7.0),
    variant(household_id=..., premises={"building": "Shop 1"}),
    variant(premises={"building": "Shop 1"}),
    variant(visited_at="2026-11-23T10:15:00"),
    variant(visited_at="yesterday"),
    variant(visited_at=""),
    variant(visited_at="2026-11-23T10:15:00+08:00:30"),
    variant(location=[116.4, 39.9]),
    variant(loc_lon="116.4"),
    variant(loc_lon=180.5),
    variant(loc_lat=float("nan")),
    variant(loc_lat=...),
    variant(loc_lon=True),
    variant(loc_datum="bd-09"),
    variant(loc_datum=...),
    variant(loc_accuracy_m=-1),
    variant(loc_provider="x" * 21),
    variant(loc_provider="gps\u0000"),
    variant(loc_provider="gps\n"),
    variant(loc_provider="gps\u0085"),
    variant(notes="met\u0000"),
    variant(follow_up=True, follow_up_note="ramp\u0000"),
    variant(loc_mock="false"),
    variant(loc_speed=3),
    variant(outcome="maybe"),
    variant(outcome=...),
    variant(notes=None),
    variant(notes="x" * 4001),
    variant(observations={"unknown_tag": 1}),
    variant(observations=[]),
    variant(follow_up="yes"),
    variant(follow_up=True),
    variant(follow_up=True, follow_up_note="  "),
    variant(follow_up_note="x" * 2001),
    variant(extra="field"),
]


@pytest.mark.parametrize("item", UNUSUAL)
def test_anything_unusual_is_left_to_the_schema(item):
    assert quick_load_item(copy.deepcopy(item)) is None


@pytest.mark.parametrize("item", UNUSUAL)
def test_what_the_fast_path_leaves_is_either_loaded_or_explained_by_the_schema(item):
    try:
        VisitItemSchema().load(copy.deepcopy(item))
    except ma.ValidationError as exc:
        assert exc.messages


def test_the_answer_is_what_the_visit_schema_dumps(client, world, session, app, tmp_path):
    app.config["PHOTO_DIR"] = str(tmp_path / "photos")
    household = world.households[A1][0]

    lon, lat = centre(A1, dy=0.001)
    items = [
        visit_item(household, follow_up=True, follow_up_note="Call back", observations={}),
        visit_item(None, lon=lon, lat=lat, premises={"building": "Shop 3", "kind": "business"}),
    ]
    response = client.post(BATCH, json={"visits": items}, headers=world.auth("worker_a1"))
    assert [r["status"] for r in response.json["results"]] == ["created", "created"]
    jpeg = image_bytes("JPEG")
    client.post(
        f"/api/v1/visits/{items[0]['id']}/photos",
        data={"file": (io.BytesIO(jpeg), "photo.jpg")},
        headers=world.auth("worker_a1"),
        content_type="multipart/form-data",
    )
    ids = [uuid.UUID(i["id"]) for i in items]
    session.expire_all()
    # Both disclose what the caller's role may see: compare them as the recorder sees them.
    with app.test_request_context(headers=world.auth("worker_a1")):
        verify_jwt_in_request()
        for visit in session.scalars(select(Visit).where(Visit.id.in_(ids))):
            assert visit_answer(visit) == VisitSchema().dump(visit)
    assert len(visit.photos) in (0, 1)


def test_created_and_replayed_items_answer_alike(client, world):

    item = visit_item(world.households[A1][0])
    first = client.post(BATCH, json={"visits": [item]}, headers=world.auth("worker_a1"))
    again = client.post(BATCH, json={"visits": [item]}, headers=world.auth("worker_a1"))
    created, duplicate = first.json["results"][0], again.json["results"][0]
    assert (created["status"], duplicate["status"]) == ("created", "duplicate")
    assert created["visit"] == duplicate["visit"]
