"""The batch's fast paths load and answer exactly as the schemas they stand in for."""

from __future__ import annotations

import copy
import io
import json
import uuid

import marshmallow as ma
import pytest
from flask_jwt_extended import verify_jwt_in_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from api import limits
from api.limits import JsonLimitError, strict_loads
from api.models import Visit
from api.resources.visits.schemas import (
    VisitBatchSchema,
    VisitItemSchema,
    VisitSchema,
    load_plain_batch,
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
    variant(follow_up=True, follow_up_note="Light the stairwell", follow_up_kind="need"),
    variant(follow_up=True, follow_up_note="Lift broken", follow_up_kind="problem"),
    variant(follow_up=True, follow_up_note="Needs a ramp", follow_up_kind=None),
    variant(follow_up=False, follow_up_kind="problem"),  # taken, kept nowhere (no follow-up)
    variant(follow_up=True, follow_up_note="Lamp out", follow_up_title="3号楼楼道灯不亮"),
    variant(
        follow_up=True, follow_up_note="Gas", follow_up_title="燃气味", follow_up_urgency="danger"
    ),
    variant(follow_up=True, follow_up_note="Lamp", follow_up_title=None, follow_up_urgency=None),
    variant(follow_up=True, follow_up_note="Lamp", follow_up_title="灯" * 200),
    variant(follow_up=True, follow_up_note="Lamp", follow_up_title="楼道\u200d灯"),  # a joiner
    variant(follow_up=False, follow_up_title="unticked", follow_up_urgency="complex"),
]


@pytest.mark.parametrize("item", WELL_FORMED)
def test_a_well_formed_item_loads_as_the_schema_loads_it(item):
    quick = quick_load_item(copy.deepcopy(item))
    assert quick == VisitItemSchema().load(copy.deepcopy(item))
    # the same types and order too (116 and 116.0 are equal, but not alike)
    assert repr(quick) == repr(VisitItemSchema().load(copy.deepcopy(item)))


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
    variant(visited_at="2000-01-01T00:00:00+08:00"),  # 1999-W52: outside the weeks served
    variant(visited_at="2999-12-31T23:00:00-12:00"),  # 3000-W01 in Shanghai
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
    variant(loc_provider="\u202egps"),
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
    variant(observations={"elderly_80": None}),
    variant(follow_up="yes"),
    variant(follow_up=True),
    variant(follow_up=True, follow_up_note="  "),
    variant(follow_up_note="x" * 2001),
    variant(follow_up=True, follow_up_note="ramp", follow_up_kind="wish"),
    variant(follow_up=True, follow_up_note="ramp", follow_up_kind="Need"),
    variant(follow_up=True, follow_up_note="ramp", follow_up_kind=""),
    variant(follow_up=True, follow_up_note="ramp", follow_up_kind=1),
    variant(follow_up_kind=["need"]),
    variant(follow_up=True, follow_up_note="ramp", follow_up_title=""),
    variant(follow_up=True, follow_up_note="ramp", follow_up_title="  "),
    variant(follow_up=True, follow_up_note="ramp", follow_up_title="\u200b\ufeff"),
    variant(follow_up=True, follow_up_note="ramp", follow_up_title="a\nb"),
    variant(follow_up=True, follow_up_note="ramp", follow_up_title="\u2066lamp"),
    variant(follow_up=True, follow_up_note="ramp", follow_up_title="x\u0000"),
    variant(follow_up=True, follow_up_note="ramp", follow_up_title="x" * 201),
    variant(follow_up=True, follow_up_note="ramp", follow_up_title=3),
    variant(follow_up=True, follow_up_note="ramp", follow_up_urgency="urgent"),
    variant(follow_up=True, follow_up_note="ramp", follow_up_urgency="General"),
    variant(follow_up=True, follow_up_note="ramp", follow_up_urgency=""),
    variant(follow_up_urgency=1),
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


def ordinary(body: bytes):
    """The batch's items as the ordinary way gives them: parsed, then loaded by the schema;
    or the error that refuses the body."""
    try:
        return VisitBatchSchema().load(strict_loads(body))
    except (JsonLimitError, ma.ValidationError) as exc:
        return exc


def body_of(*items, **extra) -> bytes:
    return json.dumps({"visits": list(items), **extra}).encode()


def assert_plain_agrees(body: bytes) -> None:
    """The plain loader gives what the ordinary way gives, or leaves the body to it."""
    plain, expected = load_plain_batch(body), ordinary(body)
    if isinstance(expected, Exception):
        assert plain is None, f"taken, though the ordinary way refuses it: {expected}"
    else:
        assert plain is None or plain == expected


def test_a_batch_of_plain_items_is_loaded_from_its_bytes_as_the_schema_loads_it():
    body = body_of(*WELL_FORMED)
    assert load_plain_batch(body) == ordinary(body)
    assert repr(load_plain_batch(body)) == repr(ordinary(body))
    assert len(ordinary(body)) == len(WELL_FORMED)


@pytest.mark.parametrize("item", UNUSUAL)
def test_one_unusual_item_sends_the_whole_batch_the_ordinary_way(item):
    body = body_of(PLAIN, item)
    assert load_plain_batch(body) is None
    assert_plain_agrees(body)


def deep(levels: int):
    value: object = 1
    for _ in range(levels):
        value = {"x": value}
    return value


HOSTILE = [
    body_of(),  # no visit
    body_of(*[PLAIN] * 501),  # more than a batch holds
    body_of(PLAIN, extra=1),  # a field the batch does not have
    b'{"visits": {"id": 1}}',
    b"[]",
    b'{"visits": [1, 2]}',
    body_of(PLAIN, None),  # a null item: rejected alone the ordinary way
    body_of(PLAIN) + b"x",  # trailing bytes
    b"\xef\xbb\xbf" + body_of(PLAIN),  # a byte-order mark
    body_of(PLAIN).replace(b'"bench"', b'"\xff"'),  # not UTF-8
    body_of(PLAIN).replace(b'"bench"', b'"\\ud800"'),  # a lone surrogate
    body_of(PLAIN).replace(b"116.4", b"NaN"),
    body_of(PLAIN).replace(b"116.4", b"1e400"),
    body_of(variant(observations={"elderly_80": 12345678901234567890123})),  # beyond 64 bits
    body_of(variant(observations={"elderly_80": 1234567890123456789})),  # 19 digits
    body_of(variant(observations={"elderly_80": deep(60)})),  # as deep as a body may nest
    body_of(variant(observations={"elderly_80": deep(61)})),  # one level deeper
    body_of(PLAIN).replace(  # beyond any parser's stack
        b'"observations": {}', b'"observations": {"elderly_80": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    ),
    body_of(PLAIN).replace(b'"notes"', b'"outcome": "refused", "notes"'),  # a key twice
    body_of(PLAIN).replace(b'"visits"', b'"visits": [], "visits"'),
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_a_body_the_ordinary_way_refuses_or_reads_otherwise_is_left_to_it(body):
    assert_plain_agrees(body)


def test_a_body_of_plain_items_nested_within_the_limit_is_still_plain():
    assert load_plain_batch(body_of(variant(observations={"elderly_80": deep(60)}))) is not None


# Items made of good and bad parts, shaken together: the plain loader never disagrees.
_FIELDS = {
    "id": st.sampled_from([PLAIN["id"], "5B1F0C643F434A599D9F6C4FB0B5B1A1", "{x}", "", 7]),
    "household_id": st.one_of(st.integers(-3, 2**31 + 3), st.sampled_from([2**31 - 1, 1.0])),
    "visited_at": st.one_of(
        st.sampled_from(
            [
                "2026-11-23T10:15:00+08:00",
                "2026-11-23T10:15:00.123456-03:30",
                "2026-11-23 10:15:00+08:00",
                "2026-11-23T10:15+08:00",
                "2026-11-23T10:15:00+08:00:30",
                "1999-01-01T00:00:00Z",
                "2026-11-23T10:15:00.1234567+08:00",
                "2026-W48-1T10:15:00+08:00",
            ]
        ),
        st.text(max_size=30),
    ),
    "outcome": st.sampled_from(["met", "refused", "MET", "", None]),
    "notes": st.one_of(st.text(max_size=20), st.just("x" * 4001), st.none()),
    "observations": st.one_of(
        st.dictionaries(
            st.sampled_from(["elderly_80", "disability", "pets"]),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3)
                ),
                max_leaves=6,
            ),
            max_size=2,
        ),
        st.just([]),
    ),
    "follow_up": st.sampled_from([True, False, 0, None]),
    "follow_up_note": st.one_of(st.none(), st.text(max_size=10)),
    "follow_up_kind": st.sampled_from(["need", "problem", None, "", "NEED", 0]),
    "follow_up_title": st.one_of(
        st.none(),
        st.text(max_size=6),
        st.sampled_from(["3号楼楼道灯不亮", " \u3000", "\u200b", "x" * 200, "x" * 201, 5]),
    ),
    "follow_up_urgency": st.sampled_from(["danger", "general", None, "", "DANGER", 1]),
}
_LOCATION = {
    "lon": st.one_of(st.floats(-200, 200), st.integers(-200, 200), st.just("1")),
    "lat": st.one_of(st.floats(-100, 100), st.just(True)),
    "accuracy_m": st.one_of(st.none(), st.floats(-1, 1e6), st.integers(-1, 100)),
    "datum": st.sampled_from(["wgs84", "gcj02", "bd09", "BD09", None]),
    "provider": st.one_of(st.none(), st.text(max_size=22)),
    "mock": st.sampled_from([False, True, "false", 0]),
}


@st.composite
def shaken_items(draw):
    item = copy.deepcopy(PLAIN)
    for key in draw(st.sets(st.sampled_from(sorted(_FIELDS)), max_size=3)):
        if draw(st.booleans()) and key != "id":
            item.pop(key, None)
        else:
            item[key] = draw(_FIELDS[key])
    for key in draw(st.sets(st.sampled_from(sorted(_LOCATION)), max_size=2)):
        if draw(st.booleans()):
            item["location"].pop(key, None)
        else:
            item["location"][key] = draw(_LOCATION[key])
    return item


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.one_of(shaken_items(), st.sampled_from(WELL_FORMED)), min_size=1, max_size=4))
def test_the_plain_loader_never_disagrees_with_parsing_and_loading(items):
    assert_plain_agrees(body_of(*items))
    for item in items:  # and the quick load of one item, with the item's schema
        try:
            expected = VisitItemSchema().load(copy.deepcopy(item))
        except ma.ValidationError:
            expected = None
        quick = quick_load_item(copy.deepcopy(item))
        assert quick is None or quick == expected


def test_the_batch_route_loads_a_plain_batch_without_parsing_it_the_ordinary_way(
    client, world, monkeypatch
):
    parsed = []

    def counted(data, **kwargs):
        parsed.append(len(data))
        return strict_loads(data, **kwargs)

    monkeypatch.setattr(limits, "strict_loads", counted)
    household = world.households[A1][0]
    plain = [visit_item(household), visit_item(household)]
    response = client.post(BATCH, json={"visits": plain}, headers=world.auth("worker_a1"))
    assert [r["status"] for r in response.json["results"]] == ["created", "created"]
    assert parsed == []
    # One unusual item: the whole batch goes the ordinary way, and each item is answered.
    mixed = [visit_item(household), {**visit_item(household), "outcome": "maybe"}]
    response = client.post(BATCH, json={"visits": mixed}, headers=world.auth("worker_a1"))
    assert [r["status"] for r in response.json["results"]] == ["created", "rejected"]
    assert "outcome" in response.json["results"][1]["reason"]
    assert len(parsed) == 1


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
