"""Visits: batch sync (idempotent, per-item results), datum, evidence rules, reads and scope."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from geoalchemy2.shape import to_shape
from shapely.geometry import Point
from sqlalchemy import func, select, text, update

from api.copy_rows import text_array
from api.models import Visit
from api.services import visits as visit_service
from api.services.weeks import LOCAL, week_of
from tests.factories import A1, A2, BOXES, box, centre, grid_feature, make_relief_shift, visit_item

BATCH = "/api/v1/visits/batch"

# Published reference values (see tests/geo/test_datum.py for their sources).
# wandergis/coordtransform: the WGS-84 point (116.404, 39.915) is this GCJ-02 point.
REFERENCE_WGS84 = (116.404, 39.915)
REFERENCE_GCJ02 = (116.41024449916938, 39.91640428150164)
# Glatzel/pyxis: one place near Shanghai in all three datums (WGS-84 given to about 1 cm).
SHANGHAI_WGS84 = (121.0917077, 30.6107779)
SHANGHAI_GCJ02 = (121.09626935575027, 30.608604331756705)
SHANGHAI_BD09 = (121.10271732371203, 30.61484572185035)


def sync(client, world, items, user="worker_a1"):
    return client.post(BATCH, json={"visits": items}, headers=world.auth(user))


def one(client, world, item, user="worker_a1") -> dict:
    response = sync(client, world, [item], user)
    assert response.status_code == 200, response.json
    return response.json["results"][0]


def visit_count(session) -> int:
    return session.scalar(select(func.count(Visit.id)))


def home(world, code=A1, i=0):
    return world.households[code][i]


# --- batch ingest --------------------------------------------------------------------------


def test_batch_creates_each_visit_and_answers_in_order(client, world, session):
    items = [visit_item(home(world, A1, i)) for i in range(3)]
    results = sync(client, world, items).json["results"]
    assert [r["status"] for r in results] == ["created"] * 3
    assert [r["id"] for r in results] == [i["id"] for i in items]
    assert results[0]["visit"]["household_id"] == home(world).id
    assert results[0]["visit"]["grid_code"] == A1
    assert visit_count(session) == 3


def test_replayed_batch_returns_duplicates_and_changes_nothing(client, world, session):
    items = [visit_item(home(world, A1, i)) for i in range(2)]
    first = sync(client, world, items).json["results"]
    stored_before = session.execute(select(Visit.id, Visit.received_at, Visit.notes)).all()
    items[0]["notes"] = "changed on the phone after the first sync"
    replay = sync(client, world, items).json["results"]
    assert [r["status"] for r in replay] == ["duplicate", "duplicate"]
    assert replay[0]["visit"] == first[0]["visit"]
    assert session.execute(select(Visit.id, Visit.received_at, Visit.notes)).all() == stored_before


def test_a_replay_is_a_duplicate_even_when_the_item_would_now_be_refused(client, world, session):
    stored = visit_item(home(world, A1, 0))
    first = one(client, world, stored)
    invalid_now = dict(stored, outcome="chatted")  # fails the schema
    elsewhere_now = dict(stored, household_id=home(world, A2, 0).id)  # not the worker's grid
    for item in (invalid_now, elsewhere_now):
        assert one(client, world, item) == dict(first, status="duplicate")
    assert visit_count(session) == 1


def test_a_fresh_batch_does_not_look_for_stored_visits(client, world, connection):
    from sqlalchemy import event

    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        results = sync(client, world, [visit_item(home(world, A1, i)) for i in range(3)])
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert [r["status"] for r in results.json["results"]] == ["created"] * 3
    assert any("FROM visits" in s for s in statements)  # the listener saw the batch's reads
    # A lookup of stored visits by id, whatever columns it reads (the timeline query reads
    # visits by worker and time, not by id).
    by_id = re.compile(r"\bFROM visits\b.*\bWHERE\b.*\bvisits\.id (= ANY|IN)\b", re.S)
    assert not [s for s in statements if s.startswith("SELECT") and by_id.search(s)]


def test_an_integer_beyond_64_bits_is_refused_before_anything_is_stored(client, world, session):
    """Stored in a visit's observations, it made the answer and every later read a 500."""
    item = visit_item(home(world))
    item["observations"] = {"elderly_80": 2**64}
    body = json.dumps({"visits": [item]})  # as the phone sends it (orjson cannot write it)
    response = client.post(
        BATCH, data=body, content_type="application/json", headers=world.auth("worker_a1")
    )
    assert response.status_code == 400
    assert "beyond 64 bits" in response.json["detail"]
    assert visit_count(session) == 0


@pytest.mark.parametrize(
    "field",
    [
        {"household_id": 2**31},
        {"visited_at": "0001-01-01T00:00:00+14:00"},
        {"visited_at": "9999-12-31T23:59:59-14:00"},
        {"visited_at": "2000-01-01T00:00:00+08:00"},  # 1999-W52
        {"visited_at": "2999-12-31T23:00:00-12:00"},  # 3000-W01 in Shanghai
        {"visited_at": "2999-12-29T16:00:00Z"},  # Monday 00:00 of 3000-W01 in Shanghai
    ],
)
def test_an_out_of_range_item_is_rejected_alone(client, world, session, field):
    """One item used to sink the whole batch (a 422 or a 500) and every retry of it."""
    good, bad = visit_item(home(world)), visit_item(home(world, i=1))
    bad.update(field)
    results = sync(client, world, [good, bad]).json["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert visit_count(session) == 1


@pytest.mark.parametrize(
    ("visited_at", "week"),
    [
        ("2000-01-02T16:00:00Z", "2000-W01"),  # Monday 00:00 in Shanghai
        ("2999-12-29T23:59:00+08:00", "2999-W52"),
        ("2999-12-29T03:00:00-12:00", "2999-W52"),
    ],
)
def test_a_visit_at_the_edge_of_the_weeks_served_is_stored_and_served(
    client, world, visited_at, week
):
    """The year was checked in the sent offset, the week taken in Shanghai: a visit was
    stored in 1999-W52 or 3000-W01, which `?week=` refuses to serve."""
    result = one(client, world, visit_item(home(world), visited_at=visited_at))
    assert (result["status"], result["visit"]["week"]) == ("created", week)
    listed = client.get(
        "/api/v1/visits", query_string={"week": week}, headers=world.auth("worker_a1")
    )
    assert [v["id"] for v in listed.json] == [result["id"]]


def test_a_visit_outside_the_weeks_served_is_told_which_weeks_are(client, world):
    item = visit_item(home(world), visited_at="2000-01-01T00:00:00+08:00")
    result = one(client, world, item)
    assert result["errors"] == {
        "visited_at": [
            "The time must fall in the weeks served, 2000-W01 to 2999-W52 "
            "(ISO weeks, Asia/Shanghai)."
        ]
    }


def _with(item: dict, path: str, value) -> dict:
    *parents, key = path.split(".")
    target = item
    for name in parents:
        target = target.setdefault(name, {})
    target[key] = value
    return item


def test_premises_address_parts_are_stored_as_the_register_stores_an_address(client, world):
    """Half-width, trimmed, spaced one way and without invisible characters (names.address_part),
    as a household's: the shop at ３号楼 is at 3号楼 when it is registered from the visit."""
    premises = {
        "building": " ３ 号楼\u200b",
        "unit": "2\u3000单元",
        "floor": "\ufeff1",
        "room": "Ｆ502 ",
        "name": "Lucky  Shop",
    }
    item = visit_item(lon=centre(A1)[0], lat=centre(A1)[1], premises=premises)
    result = one(client, world, item)
    assert result["status"] == "created", result
    stored = result["visit"]["premises"]
    assert [stored[k] for k in ("building", "unit", "floor", "room", "name")] == [
        "3号楼",
        "2单元",
        "1",
        "F502",
        "Lucky  Shop",
    ]


def test_a_premises_building_of_spaces_and_invisible_characters_only_is_rejected(
    client, world, session
):
    item = visit_item(lon=centre(A1)[0], lat=centre(A1)[1], premises={"building": "\u3000\u200b "})
    result = sync(client, world, [item]).json["results"][0]
    assert result["status"] == "rejected"
    assert "building" in result["reason"]
    assert visit_count(session) == 0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("location.provider", "gps\u0000"),
        ("location.provider", "gps\n"),
        ("premises.building", "B\u00007"),
        ("premises.unit", "2\u001b"),
        ("premises.room", "301\u0000"),
        ("premises.name", "Shop\u0000"),
        ("premises.room", "\u202e101"),  # a bidi override: reads as another room
        ("premises.name", "\u2067Shop\u2069"),
        ("notes", "met\u0000"),
        ("follow_up_note", "ramp\u0000"),
    ],
)
def test_a_nul_or_control_character_is_rejected_alone(client, world, session, path, value):
    """PostgreSQL's text and jsonb refuse NUL: one such string used to sink the whole batch
    (422). Labels refuse every control character, notes only NUL."""
    good = visit_item(home(world, A1, 1))
    bad = visit_item(home(world), follow_up=True, follow_up_note="ramp")
    if path.startswith("premises."):
        bad = visit_item(None, lon=centre(A1)[0], lat=centre(A1)[1], premises={"building": "7"})
    response = sync(client, world, [good, _with(bad, path, value)])
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert path.split(".")[-1] in results[1]["reason"]
    assert "character" in results[1]["reason"]
    assert visit_count(session) == 1


def test_notes_keep_their_newlines_and_tabs(client, world):
    item = visit_item(home(world), notes="独居\n\t需要轮椅", follow_up=True, follow_up_note="a\nb")
    result = one(client, world, item)
    assert result["status"] == "created"
    assert result["visit"]["notes"] == "独居\n\t需要轮椅"


def test_a_row_the_database_refuses_is_rejected_alone(session, world):
    """Should a value the database refuses get past the schema (a DataError, not a broken
    constraint), only its item is rejected: the rest of the batch is stored."""
    from api.resources.visits.schemas import VisitItemSchema
    from api.scope import Scope

    loader = VisitItemSchema()
    good, bad = (loader.load(visit_item(home(world, A1, i))) for i in (0, 1))
    bad["location"]["provider"] = "gps\u0000"
    items = [visit_service.BatchItem(raw_id=str(d["id"]), data=d) for d in (good, bad)]
    scope = Scope.for_user(session, world.users["worker_a1"])
    results = visit_service.ingest_batch(session, scope, items)
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert "database" in results[1]["reason"]
    assert visit_count(session) == 1


def test_a_row_broken_at_the_database_is_rejected_alone_and_the_rest_stored(session, world):
    """A row PostgreSQL itself refuses while storing the batch (here a check constraint: an
    outcome the schema would have refused) leaves the rest of the batch stored."""
    from api.resources.visits.schemas import VisitItemSchema
    from api.scope import Scope

    loader = VisitItemSchema()
    loaded = [loader.load(visit_item(home(world, A1, i))) for i in range(3)]
    loaded[1]["outcome"] = "chatted"
    items = [visit_service.BatchItem(raw_id=str(d["id"]), data=d) for d in loaded]
    scope = Scope.for_user(session, world.users["worker_a1"])
    results = visit_service.ingest_batch(session, scope, items)
    assert [r["status"] for r in results] == ["created", "rejected", "created"]
    assert "CheckViolation" in results[1]["reason"]
    assert results[1]["code"] == "database-rule"
    assert visit_count(session) == 2


def test_a_batch_holding_another_workers_visit_id_stores_the_rest(client, world, session):
    """The other worker's visit is refused (as alone, see below) and the batch's new visits
    are stored beside it."""
    taken = visit_item(home(world, A1, 0))
    one(client, world, taken, user="leader_a")
    batch = [visit_item(home(world, A1, 1)), taken, visit_item(home(world, A1, 2))]
    results = sync(client, world, batch).json["results"]
    assert [r["status"] for r in results] == ["created", "rejected", "created"]
    assert "visit" not in results[1]
    assert visit_count(session) == 3


def test_an_answer_made_while_the_rows_store_is_given_back_only_for_the_results_returned(
    session, world
):
    """The batch's answer is made while PostgreSQL ends the COPY, from the results the batch
    has if it succeeds; when it is refused and the rows go again another way, none is given
    back and the caller answers the results returned."""
    from api.resources.visits.schemas import VisitItemSchema
    from api.scope import Scope

    loader = VisitItemSchema()
    scope = Scope.for_user(session, world.users["worker_a1"])
    made = []

    def render(results):
        made.append([r["status"] for r in results])
        return "the answer"

    def batch(*items):
        loaded = [loader.load(item) for item in items]
        return [visit_service.BatchItem(raw_id=str(d["id"]), data=d) for d in loaded]

    results, answer = visit_service.ingest_and_render(
        session, scope, batch(visit_item(home(world, A1, 0))), render
    )
    assert answer == "the answer" and made == [["created"]]
    assert [r["status"] for r in results] == ["created"]

    taken = visit_item(home(world, A1, 1))
    leader = Scope.for_user(session, world.users["leader_a"])
    visit_service.ingest_batch(session, leader, batch(taken))
    results, answer = visit_service.ingest_and_render(
        session, scope, batch(visit_item(home(world, A1, 2)), taken), render
    )
    assert answer is None  # the COPY met the leader's visit: made, then dropped
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert visit_count(session) == 3


def test_a_replay_whose_time_changed_on_the_phone_is_a_duplicate_beside_new_visits(
    client, world, session
):
    """A replay is known by its id alone, even when its time moved far from the stored one."""
    stored = visit_item(home(world, A1, 0), at=datetime.now(UTC) - timedelta(days=3))
    first = one(client, world, stored)
    moved = dict(stored, visited_at=datetime.now(UTC).astimezone(LOCAL).isoformat())
    results = sync(client, world, [moved, visit_item(home(world, A1, 1))]).json["results"]
    assert [r["status"] for r in results] == ["duplicate", "created"]
    assert results[0]["visit"] == first["visit"]
    assert visit_count(session) == 2


def test_text_is_stored_exactly_as_sent_whatever_characters_it_holds(client, world):
    """Backslashes, quotes, tabs and newlines, which the bulk load escapes, come back as sent."""
    premises = {"building": 'B\\2 "east"', "unit": "1\\", "room": "\\N"}
    items = [
        visit_item(home(world, A1, 0), notes='a\\b\tc\nd "e"'),
        visit_item(lon=centre(A1)[0], lat=centre(A1)[1], premises=premises, notes="\\."),
    ]
    items[0]["location"]["provider"] = "net\\gps"
    results = sync(client, world, items).json["results"]
    assert [r["status"] for r in results] == ["created", "created"]
    for result in results:
        read = client.get(f"/api/v1/visits/{result['id']}", headers=world.auth("worker_a1"))
        assert read.json == result["visit"]
    assert results[0]["visit"]["notes"] == 'a\\b\tc\nd "e"'
    assert results[0]["visit"]["location"]["provider"] == "net\\gps"
    assert results[1]["visit"]["premises"] == premises
    assert results[1]["visit"]["notes"] == "\\."


@pytest.mark.parametrize(
    "values", [[], ["ok"], ["a,b", 'say "hi"', "back\\slash", "{braces}", "NULL", " pad "]]
)
def test_a_list_of_text_reaches_the_database_as_sent(session, values):
    literal = text_array(values)
    assert session.scalar(text("SELECT CAST(:v AS text[])"), {"v": literal}) == values


def test_items_of_any_shape_are_rejected_alone(client, world, session):
    """Items a phone should never send: each rejected with its reason, the good one stored."""
    premises = {
        "premises": {"building": "1"},
        "visited_at": "2026-11-20T10:00:00+08:00",
        "outcome": "met",
        "location": {"lon": 116.4025, "lat": 39.9225, "datum": "wgs84"},
    }
    odd = [
        {},
        {"id": 5},
        {"id": [1]},
        {"id": str(uuid.uuid4())},
        {"id": str(uuid.uuid4()), "household_id": True},
        {"id": str(uuid.uuid4()), "premises": None},
        {"id": str(uuid.uuid4()), **premises, "observations": {"elderly_80": {"x": [1e308]}}},
    ]
    response = sync(client, world, [visit_item(home(world, A1, 1)), *odd])
    assert response.status_code == 200, response.json
    statuses = [r["status"] for r in response.json["results"]]
    assert statuses == ["created", *["rejected"] * 6, "created"]
    assert all(r["reason"] for r in response.json["results"][1:7])
    assert visit_count(session) == 2


@pytest.mark.parametrize("odd", [None, 1, "a", [], [None]])
def test_an_item_that_is_not_an_object_is_rejected_alone(client, world, session, odd):
    """A null item sank the whole batch (422 `visits.1: Field may not be null`, nothing
    stored) where every other non-object was rejected alone."""
    response = sync(client, world, [visit_item(home(world)), odd])
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["reason"] == "Each visit must be a JSON object."
    assert visit_count(session) == 1


def test_the_same_id_twice_in_one_batch_is_one_visit(client, world, session):
    item = visit_item(home(world))
    results = sync(client, world, [item, dict(item)]).json["results"]
    assert [r["status"] for r in results] == ["created", "duplicate"]
    assert results[1]["visit"]["id"] == item["id"]
    assert visit_count(session) == 1


def test_one_bad_item_never_sinks_the_batch(client, world, session):
    good = visit_item(home(world))
    naive = visit_item(home(world), visited_at="2026-11-20T10:00:00")
    bad_outcome = visit_item(home(world), outcome="chatted")
    no_household = visit_item(None, lon=116.4025, lat=39.9225, household_id=999999)
    not_uuid = visit_item(home(world), id="visit-1")
    results = sync(
        client, world, [naive, good, bad_outcome, no_household, not_uuid, "not an object"]
    ).json["results"]
    assert [r["status"] for r in results] == [
        "rejected",
        "created",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert "visited_at" in results[0]["reason"]
    assert "outcome" in results[2]["reason"]
    assert "999999" in results[3]["reason"]
    assert "UUID" in results[4]["reason"]
    assert "object" in results[5]["reason"]
    assert visit_count(session) == 1


def test_a_visit_time_without_utc_offset_is_rejected(client, world):
    result = one(client, world, visit_item(home(world), visited_at="2026-11-20T10:00:00"))
    assert result["status"] == "rejected"
    assert result["errors"]["visited_at"]


@pytest.mark.parametrize("offset", ["+08:00:30", "-03:30:15", "+08:00:00.5"])
def test_a_utc_offset_with_seconds_is_rejected_alone(client, world, session, offset):
    """Offsets are kept in whole minutes: `+08:00:30` was stored 30 s off (the row's writer
    rounds the offset) and read back in another offset than it came with."""
    lon, lat = centre(A1)
    at_home = visit_item(home(world, A1, 1), visited_at=f"2026-11-20T10:05:00{offset}")
    premises = visit_item(None, lon=lon, lat=lat, premises={"building": "7"})
    premises["visited_at"] = at_home["visited_at"]
    response = sync(client, world, [visit_item(home(world)), at_home, premises])
    results = response.json["results"]
    assert [r["status"] for r in results] == ["created", "rejected", "rejected"]
    for result in results[1:]:
        assert result["reason"] == "visited_at: The UTC offset must be a whole number of minutes."
    assert visit_count(session) == 1


def test_a_visit_is_stored_at_its_instant_and_read_back_in_its_own_offset(client, world, session):
    item = visit_item(home(world), visited_at="2026-11-20T10:05:00+05:45")
    created = one(client, world, item)
    stored = session.get(Visit, uuid.UUID(item["id"]))
    assert stored.visited_at == datetime(2026, 11, 20, 4, 20, tzinfo=UTC)
    assert stored.utc_offset_minutes == 345
    read = client.get(f"/api/v1/visits/{item['id']}", headers=world.auth("worker_a1")).json
    assert read["visited_at"] == created["visit"]["visited_at"] == "2026-11-20T10:05:00+05:45"


def test_household_and_premises_together_are_rejected(client, world):
    item = visit_item(home(world), premises={"building": "7"})
    result = one(client, world, item)
    assert result["status"] == "rejected"
    assert "exactly one" in result["reason"]


def test_a_follow_up_needs_a_description(client, world):
    result = one(client, world, visit_item(home(world), follow_up=True))
    assert result["status"] == "rejected"
    assert "follow_up_note" in result["reason"]


def test_follow_up_and_observations_are_stored(client, world, session):
    item = visit_item(
        home(world),
        follow_up=True,
        follow_up_note="Stairwell light broken",
        observations={"elderly_80": {"health": "good", "needs": ["groceries"]}},
    )
    visit = one(client, world, item)["visit"]
    assert visit["follow_up"] is True
    assert visit["follow_up_note"] == "Stairwell light broken"
    assert visit["observations"] == {"elderly_80": {"health": "good", "needs": ["groceries"]}}


def test_a_follow_up_task_is_not_updated_before_it_was_created(client, world, session):
    """Created at the visit's receipt and dispatched in the same instant: its dispatch used to
    be stamped with the transaction's start, a few ms before its creation."""
    item = visit_item(home(world), follow_up=True, follow_up_note="Stairwell light broken")
    assert one(client, world, item)["status"] == "created"
    task = session.execute(
        text("SELECT status, created_at, updated_at FROM tasks WHERE visit_id = :v"),
        {"v": uuid.UUID(item["id"])},
    ).one()
    assert task.status == "dispatched"
    assert task.updated_at >= task.created_at


def test_observations_are_keyed_by_care_tag(client, world):
    result = one(client, world, visit_item(home(world), observations={"mood": "fine"}))
    assert result["status"] == "rejected"
    assert "observations" in result["reason"]


def test_a_batch_over_500_visits_is_refused_whole(client, world, session):
    items = [visit_item(home(world)) for _ in range(501)]
    response = sync(client, world, items)
    assert response.status_code == 422
    assert visit_count(session) == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{x", 400), (b'{"visits": [', 400), (b"{}", 422), (b'{"visits": []}', 422)],
)
def test_a_batch_that_is_not_json_is_400_one_without_visits_422(client, world, body, status):
    """As docs/visits.md says (it said 422 for a body that is not JSON)."""
    response = client.post(
        BATCH, data=body, content_type="application/json", headers=world.auth("worker_a1")
    )
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


def test_unregistered_premises_are_placed_in_their_grid(client, world, session):
    lon, lat = centre(A1, dy=0.001)
    item = visit_item(None, lon=lon, lat=lat, premises={"building": "Shop 3", "kind": "business"})
    visit = one(client, world, item)["visit"]
    assert visit["household_id"] is None
    assert visit["grid_code"] == A1
    assert visit["premises"] == {"building": "Shop 3", "kind": "business"}


def test_a_follow_up_at_premises_goes_to_the_premises_grid_and_cannot_sink_the_batch(
    client, world, session
):
    """The worker's fix lies outside every grid; the shop's own point is in A1. Its follow-up
    task used to be located again by the fix: a 422 for the whole batch, on every retry."""
    from api.models import Task

    shop = centre(A1)
    item = visit_item(
        None,
        lon=116.300,
        lat=39.800,
        premises={"building": "Shop 5", "lon": shop[0], "lat": shop[1]},
        follow_up=True,
        follow_up_note="店主反映消防通道堵塞",
    )
    other = visit_item(home(world))
    results = sync(client, world, [item, other]).json["results"]
    assert [r["status"] for r in results] == ["created", "created"]
    task = session.scalar(select(Task).where(Task.visit_id == uuid.UUID(item["id"])))
    assert task.grid_id == world.grids[A1].id


def test_a_position_converted_beyond_the_wgs84_range_is_rejected_alone(client, world, session):
    """BD-09 longitude -180 is WGS-84 -180.0065. With a follow-up at premises (placed by their
    own point, in A1) the task's point failed its check: a 422 for the whole batch."""
    from api.models import Task

    shop = centre(A1)
    bad = visit_item(
        None, lon=-180.0, lat=0.0, datum="bd09", follow_up=True, follow_up_note="路灯坏了",
        premises={"building": "7", "lon": shop[0], "lat": shop[1]},
    )  # fmt: skip
    good = visit_item(home(world))
    response = sync(client, world, [good, bad])
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["reason"].startswith("location: longitude -180.006")
    assert "converted from bd09" in results[1]["reason"]
    assert visit_count(session) == 1
    assert session.scalar(select(func.count(Task.id))) == 0


def test_premises_converted_beyond_the_wgs84_range_are_rejected_alone(client, world, session):
    lon, lat = centre(A1)
    bad = visit_item(None, lon=lon, lat=lat, premises={"building": "7", "lon": -180, "lat": 0})
    bad["location"]["datum"] = "bd09"
    results = sync(client, world, [visit_item(home(world)), bad]).json["results"]
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["reason"].startswith("premises: longitude -180.006")


def test_premises_given_in_gcj02_are_placed_at_their_own_wgs84_point(client, world):
    # The phone's SDK speaks GCJ-02 (Amap): the worker's fix (just over the line, in A2) and
    # the shop's own point (in A1) both arrive ~500 m off their true spot; the shop is
    # placed where its converted point lies.
    from geo.datum import wgs84_to_gcj02

    fix = centre(A1, dx=0.0028)
    shop = wgs84_to_gcj02(*centre(A1))
    item = visit_item(
        None,
        lon=wgs84_to_gcj02(*fix)[0],
        lat=wgs84_to_gcj02(*fix)[1],
        datum="gcj02",
        premises={"building": "Shop 4", "lon": shop[0], "lat": shop[1]},
    )
    visit = one(client, world, item)["visit"]
    assert visit["grid_code"] == A1
    assert (visit["location"]["lon"], visit["location"]["lat"]) == pytest.approx(fix, abs=1e-7)


def test_premises_outside_every_grid_are_rejected_naming_the_nearest(client, world):
    item = visit_item(None, lon=116.39, lat=39.95, premises={"building": "Kiosk"})
    result = one(client, world, item)
    assert result["status"] == "rejected"
    assert "nearest" in result["reason"]


def test_visit_week_is_the_iso_week_in_shanghai(client, world, session):
    # Sunday 23:30 in Beijing is Sunday 15:30 UTC: still the week that started on Monday.
    sunday_night = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    visit = one(client, world, visit_item(home(world), at=sunday_night))["visit"]
    assert visit["week"] == "2026-W47"
    assert visit["visited_at"] == "2026-11-22T23:30:00+08:00"


def test_stored_visits_reach_the_hook_once(client, world, monkeypatch):
    seen = []
    monkeypatch.setattr(visit_service, "on_visits_stored", lambda s, v: seen.append(list(v)))
    items = [visit_item(home(world, A1, i)) for i in range(2)]
    sync(client, world, items)
    sync(client, world, items)
    assert [sorted(str(v.id) for v in batch) for batch in seen] == [
        sorted(i["id"] for i in items),
        [],
    ]


# --- datum -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datum", "raw", "wgs84"),
    [
        ("gcj02", REFERENCE_GCJ02, REFERENCE_WGS84),
        ("gcj02", SHANGHAI_GCJ02, SHANGHAI_WGS84),
        ("bd09", SHANGHAI_BD09, SHANGHAI_WGS84),
    ],
    ids=["gcj02-beijing", "gcj02-shanghai", "bd09-shanghai"],
)
def test_positions_are_stored_in_wgs84(client, world, session, datum, raw, wgs84):
    item = visit_item(home(world), lon=raw[0], lat=raw[1], datum=datum)
    visit = one(client, world, item)["visit"]
    # 1e-7 degrees is about 1 cm; the offsets being undone are hundreds of metres.
    assert visit["location"]["lon"] == pytest.approx(wgs84[0], abs=1e-7)
    assert visit["location"]["lat"] == pytest.approx(wgs84[1], abs=1e-7)
    assert visit["location"]["datum"] == datum
    assert (visit["location"]["raw_lon"], visit["location"]["raw_lat"]) == raw
    stored = session.get(Visit, uuid.UUID(item["id"]))
    assert to_shape(stored.location).equals_exact(Point(wgs84), 1e-7)


def test_wgs84_positions_are_stored_unchanged(client, world):
    item = visit_item(home(world), lon=REFERENCE_WGS84[0], lat=REFERENCE_WGS84[1])
    location = one(client, world, item)["visit"]["location"]
    assert (location["lon"], location["lat"]) == REFERENCE_WGS84


def test_an_unknown_datum_is_rejected(client, world):
    result = one(client, world, visit_item(home(world), datum="cgcs2000"))
    assert result["status"] == "rejected"
    assert "datum" in result["reason"]


# --- evidence --------------------------------------------------------------------------------


def evidence(client, world, item, user="worker_a1") -> dict:
    result = one(client, world, item, user)
    assert result["status"] == "created"
    return result["visit"]["evidence"]


def test_a_visit_at_the_door_with_a_good_fix_is_ok(client, world):
    ev = evidence(client, world, visit_item(home(world)))
    assert ev["grade"] == "ok"
    assert ev["reasons"] == []
    assert ev["details"]["distance_to_household_m"] == 0
    assert ev["details"]["distance_to_grid_m"] == 0


def test_a_mock_location_is_suspect(client, world):
    ev = evidence(client, world, visit_item(home(world), mock=True))
    assert (ev["grade"], ev["reasons"]) == ("suspect", ["mock_location"])


def test_poor_accuracy_is_doubtful(client, world):
    ev = evidence(client, world, visit_item(home(world), accuracy_m=150))
    assert (ev["grade"], ev["reasons"]) == ("doubtful", ["poor_accuracy"])


def test_bad_accuracy_is_suspect(client, world):
    ev = evidence(client, world, visit_item(home(world), accuracy_m=900))
    assert (ev["grade"], ev["reasons"]) == ("suspect", ["bad_accuracy"])


def test_missing_accuracy_is_doubtful(client, world):
    ev = evidence(client, world, visit_item(home(world), accuracy_m=None))
    assert (ev["grade"], ev["reasons"]) == ("doubtful", ["no_accuracy"])


def test_a_point_200_m_from_the_household_is_doubtful(client, world):
    lon, lat = centre(A1, dy=0.0018)  # about 200 m north, still inside the grid
    ev = evidence(client, world, visit_item(home(world), lon=lon, lat=lat))
    assert (ev["grade"], ev["reasons"]) == ("doubtful", ["far_from_household"])
    assert ev["details"]["distance_to_household_m"] == pytest.approx(200, abs=3)


def test_a_point_far_outside_the_workers_grids_is_flagged(client, world):
    # 1.1 km south of grid A1: outside every grid of the worker, very far from the household.
    ev = evidence(client, world, visit_item(home(world), lon=116.4025, lat=39.910))
    assert ev["grade"] == "suspect"
    assert ev["reasons"] == ["outside_grid", "very_far_from_household"]
    assert ev["details"]["distance_to_grid_m"] == pytest.approx(1113, abs=5)


def test_a_point_just_over_the_grid_line_is_within_tolerance(client, world, session):
    # The A2 worker's fix lies 30 m west of A2's edge (inside A1): within the 50 m tolerance.
    lon, lat = 116.405 - 0.00035, 39.9225
    item = visit_item(
        None, lon=lon, lat=lat, premises={"building": "9", "lon": 116.4055, "lat": lat}
    )
    ev = evidence(client, world, item, user="worker_a2")
    assert "outside_grid" not in ev["reasons"]
    assert ev["details"]["distance_to_grid_m"] == pytest.approx(30, abs=1)


def test_impossible_speed_against_the_workers_stored_visit(client, world):
    t0 = datetime.now(UTC) - timedelta(hours=1)
    evidence(client, world, visit_item(home(world), at=t0))
    # One minute later, 5.5 km south: 92 m/s.
    later = visit_item(home(world), at=t0 + timedelta(minutes=1), lon=116.4025, lat=39.873)
    ev = evidence(client, world, later)
    assert "impossible_speed" in ev["reasons"]
    assert ev["grade"] == "suspect"
    assert ev["details"]["speed_to_previous_mps"] > 42


def test_impossible_speed_within_one_batch_and_against_the_next_visit(client, world):
    t0 = datetime.now(UTC) - timedelta(hours=1)
    far = visit_item(home(world), at=t0, lon=116.4025, lat=39.873)
    near = visit_item(home(world), at=t0 + timedelta(minutes=1))
    results = sync(client, world, [near, far]).json["results"]
    by_id = {r["id"]: r["visit"]["evidence"] for r in results}
    assert "impossible_speed" in by_id[far["id"]]["reasons"]
    assert by_id[far["id"]]["details"]["seconds_to_next"] == 60
    assert "impossible_speed" in by_id[near["id"]]["reasons"]


def test_walking_speed_between_visits_is_fine(client, world):
    t0 = datetime.now(UTC) - timedelta(hours=1)
    evidence(client, world, visit_item(home(world, A1, 0), at=t0))
    ev = evidence(client, world, visit_item(home(world, A1, 2), at=t0 + timedelta(minutes=5)))
    assert ev["reasons"] == []
    assert ev["details"]["distance_to_previous_m"] == pytest.approx(85, abs=2)


def test_another_workers_visits_do_not_count_for_speed(client, world, session):
    t0 = datetime.now(UTC) - timedelta(hours=1)
    evidence(client, world, visit_item(home(world, A1), at=t0), user="leader_a")
    far = visit_item(home(world), at=t0 + timedelta(minutes=1), lon=116.4025, lat=39.873)
    ev = evidence(client, world, far)
    assert "impossible_speed" not in ev["reasons"]
    assert "distance_to_previous_m" not in ev["details"]


def test_a_visit_in_the_future_is_suspect(client, world):
    ev = evidence(client, world, visit_item(home(world), at=datetime.now(UTC) + timedelta(hours=2)))
    assert (ev["grade"], ev["reasons"]) == ("suspect", ["future_time"])


def test_a_visit_synced_weeks_later_is_doubtful(client, world):
    ev = evidence(client, world, visit_item(home(world), at=datetime.now(UTC) - timedelta(days=20)))
    assert (ev["grade"], ev["reasons"]) == ("doubtful", ["stale"])


@pytest.mark.parametrize("datum", ["wgs84", "gcj02"])
def test_a_created_visits_answer_is_what_reading_it_back_returns(client, world, datum):
    """The batch answers a new visit from the row it stored, not a re-read: the two agree."""
    item = visit_item(
        home(world),
        lon=REFERENCE_GCJ02[0],
        lat=REFERENCE_GCJ02[1],
        datum=datum,
        notes="腿脚不便",
        observations={"elderly_80": {"health": "poor", "needs": ["wheelchair"]}},
        follow_up=True,
        follow_up_note="需要轮椅",
    )
    created = one(client, world, item)
    assert created["status"] == "created"
    read = client.get(f"/api/v1/visits/{item['id']}", headers=world.auth("worker_a1")).json
    assert created["visit"] == read
    replayed = one(client, world, item)
    assert (replayed["status"], replayed["visit"]) == ("duplicate", read)


def test_get_visit_returns_location_and_evidence(client, world):
    item = visit_item(home(world), lon=REFERENCE_GCJ02[0], lat=REFERENCE_GCJ02[1], datum="gcj02")
    one(client, world, item)
    body = client.get(f"/api/v1/visits/{item['id']}", headers=world.auth("leader_a")).json
    assert body["location"]["datum"] == "gcj02"
    assert body["location"]["accuracy_m"] == 10.0
    assert body["location"]["lon"] == pytest.approx(REFERENCE_WGS84[0], abs=1e-7)
    assert body["evidence"]["grade"] == "suspect"
    assert "outside_grid" in body["evidence"]["reasons"]
    assert "distance_to_household_m" in body["evidence"]["details"]


# --- scope -----------------------------------------------------------------------------------


def test_a_worker_cannot_record_visits_outside_their_grids(client, world, session):
    result = one(client, world, visit_item(home(world, A2)))
    assert result["status"] == "rejected"
    assert "not found in your grids" in result["reason"]
    assert visit_count(session) == 0


def test_a_household_out_of_scope_is_answered_as_a_missing_one(client, world, session):
    """Naming the grid of a household outside the worker's grids confirmed that the id
    exists, and where (another community, another district): the answer is the same, word
    for word, as for an id that does not exist."""
    from tests.factories import C1

    missing = 2_000_000_000
    elsewhere = [home(world, A2), home(world, C1)]
    items = [visit_item(home(world), household_id=h) for h in (missing, *(h.id for h in elsewhere))]
    results = sync(client, world, items).json["results"]
    assert [r["status"] for r in results] == ["rejected"] * 3
    assert [r["reason"] for r in results] == [
        f"Household {h} not found in your grids." for h in (missing, *(h.id for h in elsewhere))
    ]
    assert [set(r) for r in results] == [{"id", "status", "code", "reason"}] * 3
    assert {r["code"] for r in results} == {"household-not-found"}
    assert visit_count(session) == 0


def test_premises_outside_your_grids_are_refused_naming_the_grid(client, world):
    """The worker chose the premises' point: its grid tells them nothing they did not know."""
    item = visit_item(None, lon=centre(A2)[0], lat=centre(A2)[1], premises={"building": "9"})
    result = one(client, world, item)
    assert result["status"] == "rejected"
    assert f"Grid {A2} is not one of your grids" in result["reason"]


def test_each_refusal_names_its_code_and_particulars(client, world):
    """The `code` a client words in its user's language (the app: web/src/reasons.js), beside
    the English `reason`; the particulars a sentence needs are fields of their own."""
    shop = centre(A1)
    items = [
        "not an object",
        visit_item(home(world), outcome="chatted"),
        visit_item(home(world), visited_at="1999-12-20T10:00:00+08:00"),
        visit_item(home(world, A2)),
        visit_item(
            None,
            lon=-180.0,
            lat=0.0,
            datum="bd09",
            premises={"building": "7", "lon": shop[0], "lat": shop[1]},
        ),
        visit_item(None, lon=116.39, lat=39.95, premises={"building": "Kiosk"}),
        visit_item(None, lon=centre(A2)[0], lat=centre(A2)[1], premises={"building": "9"}),
    ]
    results = sync(client, world, items).json["results"]
    assert [r["code"] for r in results] == [
        "not-an-object",
        "invalid",
        "invalid",
        "household-not-found",
        "location-invalid",
        "outside-every-grid",
        "not-your-grid",
    ]
    assert set(results[1]["errors"]) == {"outcome"}
    assert set(results[2]["errors"]) == {"visited_at"}
    assert results[5]["nearest_grid"] == A1 and results[5]["distance_m"] > 0
    assert results[6]["grid_code"] == A2


def test_a_repeat_of_a_rejected_item_names_its_code(client, world):
    item = visit_item(home(world, A2))  # not in worker_a1's grids
    results = sync(client, world, [item, dict(item)]).json["results"]
    assert [r["code"] for r in results] == ["household-not-found", "repeats-rejected-item"]


def test_the_named_reliever_records_visits_in_the_grid_they_cover(client, world, session):
    now = datetime.now(UTC)
    make_relief_shift(
        session,
        world.users["worker_a1"],
        world.grids[A2],
        now.astimezone(LOCAL).date(),
        relief_for=world.users["worker_a2"],
    )
    visit = one(client, world, visit_item(home(world, A2), at=now))["visit"]
    assert visit["relief"] is True
    assert visit["grid_code"] == A2
    assert visit["evidence"]["reasons"] == []


def test_a_relief_shift_on_another_day_does_not_open_the_grid(client, world, session):
    now = datetime.now(UTC)
    make_relief_shift(
        session,
        world.users["worker_a1"],
        world.grids[A2],
        now.astimezone(LOCAL).date() - timedelta(days=1),
        relief_for=world.users["worker_a2"],
    )
    assert one(client, world, visit_item(home(world, A2), at=now))["status"] == "rejected"


def test_a_relief_shift_on_a_day_of_the_relievers_approved_leave_does_not_open_the_grid(
    client, world, session
):
    """The leave approved after the roster was published, the shift not yet handed on: the
    worker is not at work, and the grid (its residents) is not theirs that day."""
    from api.models import Leave

    now = datetime.now(UTC)
    today = now.astimezone(LOCAL).date()
    make_relief_shift(
        session,
        world.users["worker_a1"],
        world.grids[A2],
        today,
        relief_for=world.users["worker_a2"],
    )
    session.add(
        Leave(
            worker_id=world.users["worker_a1"].id,
            start_date=today,
            end_date=today,
            status="approved",
        )
    )
    session.flush()
    assert one(client, world, visit_item(home(world, A2), at=now))["status"] == "rejected"


def test_a_relief_shift_of_a_draft_roster_does_not_open_the_grid(client, world, session):
    """Workers never see drafts: a draft names nobody's reliever yet."""
    now = datetime.now(UTC)
    shift = make_relief_shift(
        session,
        world.users["worker_a1"],
        world.grids[A2],
        now.astimezone(LOCAL).date(),
        relief_for=world.users["worker_a2"],
    )
    shift.roster.status = "draft"
    session.flush()
    assert one(client, world, visit_item(home(world, A2), at=now))["status"] == "rejected"
    plan = client.get("/api/v1/visits/plan", headers=world.auth("worker_a1")).json
    assert {h["grid_code"] for h in plan["households"]} == {A1}
    assert visit_count(session) == 0


def test_admins_and_viewers_do_not_record_visits(client, world):
    for user in ("admin_a", "viewer_110101"):
        assert sync(client, world, [visit_item(home(world))], user=user).status_code == 403


def test_a_uuid_used_by_another_worker_is_rejected_without_showing_the_visit(client, world):
    item = visit_item(home(world, A1))
    one(client, world, item, user="leader_a")
    result = one(client, world, item)
    assert result["status"] == "rejected"
    assert result["code"] == "id-taken"
    assert "visit" not in result


@pytest.mark.parametrize(
    ("user", "status"),
    [
        ("worker_a1", 200),
        ("leader_a", 200),
        ("admin_a", 200),
        ("viewer_110101", 200),
        ("worker_a2", 404),
        ("worker_b1", 404),
        ("admin_b", 404),
        ("viewer_110102", 404),
    ],
)
def test_who_reads_a_visit(client, world, user, status):
    item = visit_item(home(world, A1))
    one(client, world, item)
    assert (
        client.get(f"/api/v1/visits/{item['id']}", headers=world.auth(user)).status_code == status
    )


# --- reads -----------------------------------------------------------------------------------


def test_household_history_is_newest_first(client, world):
    now = datetime.now(UTC)
    items = [visit_item(home(world), at=now - timedelta(days=d)) for d in (3, 1, 2)]
    sync(client, world, items)
    response = client.get(
        f"/api/v1/households/{home(world).id}/visits", headers=world.auth("leader_a")
    )
    assert [v["id"] for v in response.json] == [items[1]["id"], items[2]["id"], items[0]["id"]]


def test_household_history_outside_scope_is_404(client, world):
    one(client, world, visit_item(home(world)))
    url = f"/api/v1/households/{home(world).id}/visits"
    assert client.get(url, headers=world.auth("worker_a2")).status_code == 404


def move_into_a2(client, world, household) -> None:
    """The office moves the household into grid A2 (a correction of its place)."""
    lon, lat = centre(A2, dy=0.001)
    moved = client.patch(
        f"/api/v1/households/{household.id}",
        json={"lon": lon, "lat": lat},
        headers=world.auth("admin_a"),
    )
    assert moved.status_code == 200 and moved.json["grid_code"] == A2


def test_a_households_history_keeps_its_visits_from_before_it_moved_grid(client, session, world):
    """A household placed in the wrong grid and corrected (or a grid redrawn under it) keeps
    its visits, recorded under its earlier grid: whoever serves it now reads its history in
    full, as the map's last-visit date and the plan already count those visits."""
    from api.models import AuditEntry

    household = home(world)
    item = visit_item(household, notes="独居老人，腿脚不便")
    assert one(client, world, item)["status"] == "created"
    move_into_a2(client, world, household)
    url = f"/api/v1/households/{household.id}/visits"
    response = client.get(url, headers=world.auth("worker_a2"))
    assert [v["id"] for v in response.json] == [item["id"]]
    assert response.json[0]["notes"] == "独居老人，腿脚不便"
    assert '"total": 1' in response.headers["X-Pagination"]
    entry = session.scalars(
        select(AuditEntry).where(
            AuditEntry.resource == "visit",
            AuditEntry.user_id == world.users["worker_a2"].id,
        )
    ).one()
    assert "notes" in entry.fields
    assert client.get(url, headers=world.auth("worker_a1")).status_code == 404
    by_id = client.get(f"/api/v1/visits/{item['id']}", headers=world.auth("worker_a2"))
    assert by_id.json["notes"] == "独居老人，腿脚不便"
    other = client.get(f"/api/v1/visits/{item['id']}", headers=world.auth("worker_b1"))
    assert other.status_code == 404


def test_a_visit_made_offline_before_its_household_moved_grid_is_stored_in_the_grid_it_was_in(
    client, session, world
):
    """The worker visits a household of their grid offline; before the phone syncs, the office
    moves it to the next grid (a correction, or a redraw). The visit was refused as of a
    household not theirs, sent again every few hours and refused each time: a visit made where
    the worker served, lost. It is stored in the grid the household was in at the visit."""
    from api.models import HouseholdHistory

    household = home(world)
    registered = datetime.now(UTC) - timedelta(days=30)
    session.execute(
        update(HouseholdHistory)
        .where(HouseholdHistory.household_id == household.id)
        .values(valid_from=registered)
    )
    item = visit_item(household, at=datetime.now(UTC) - timedelta(hours=3))
    move_into_a2(client, world, household)

    result = one(client, world, item)

    assert result["status"] == "created", result
    assert session.get(Visit, uuid.UUID(item["id"])).grid_id == world.grids[A1].id


def test_a_visit_made_after_its_household_moved_to_another_grid_is_refused(client, session, world):
    household = home(world)
    move_into_a2(client, world, household)
    item = visit_item(household, at=datetime.now(UTC))

    result = one(client, world, item)

    assert (result["status"], result["code"]) == ("rejected", "household-not-found")


def redraw_border(client, world, lon: float) -> None:
    """The office redraws the border between A1 and A2 at `lon` (A1 west of it)."""
    west, south, east, north = BOXES[A1][0], BOXES[A1][1], BOXES[A2][2], BOXES[A1][3]
    layer = {
        "type": "FeatureCollection",
        "features": [
            grid_feature(A1, box(west, south, lon, north)),
            grid_feature(A2, box(lon, south, east, north)),
        ],
    }
    r = client.post("/api/v1/grids/import", json=layer, headers=world.auth("admin_a"))
    assert r.status_code == 200 and sorted(r.json["redrawn"]) == [A1, A2], r.json


def since(session, days: int, household) -> None:
    """The grids and the household as registered `days` ago (the world is made just now)."""
    from api.models import GridVersion, HouseholdHistory

    then = datetime.now(UTC) - timedelta(days=days)
    session.execute(update(GridVersion).values(valid_from=then))
    session.execute(
        update(HouseholdHistory)
        .where(HouseholdHistory.household_id == household.id)
        .values(valid_from=then)
    )


def test_a_visit_made_before_a_redraw_is_graded_against_the_outline_of_its_time(
    client, session, world
):
    """The worker visits a door of A1 offline; before the phone syncs, the office moves the
    border 85 m west of that door (the household goes to A2). The visit stands where A1 was
    at the time: graded against today's outline it read `outside_grid`, a suspect visit for
    an honest worker."""
    household = home(world)
    since(session, 30, household)
    item = visit_item(household, at=datetime.now(UTC) - timedelta(hours=3))
    redraw_border(client, world, 116.4015)

    result = one(client, world, item)

    assert result["status"] == "created", result
    evidence = result["visit"]["evidence"]
    assert (evidence["grade"], evidence["reasons"]) == ("ok", [])
    assert evidence["details"]["distance_to_grid_m"] == 0


def test_premises_visited_before_a_redraw_are_stored_in_the_grid_they_were_in(
    client, session, world
):
    """Unregistered premises visited offline in A1; the border then moves west of them, into
    what is A2 today. They were refused as premises of a grid not the worker's, sent again and
    refused for good: a visit made where the worker served, lost. They are placed as the map
    stood at the visit (the premises, once registered, go where the map stands then)."""
    since(session, 30, home(world))
    lon, lat = centre(A1)
    item = visit_item(
        None,
        lon=lon,
        lat=lat,
        premises={"building": "9"},
        at=datetime.now(UTC) - timedelta(hours=3),
    )
    redraw_border(client, world, 116.4015)

    result = one(client, world, item)

    assert result["status"] == "created", result
    assert result["visit"]["grid_code"] == A1
    assert result["visit"]["evidence"]["grade"] == "ok"


def test_premises_visited_after_a_redraw_in_the_next_grid_are_refused(client, session, world):
    since(session, 30, home(world))
    redraw_border(client, world, 116.4015)
    lon, lat = centre(A1)
    item = visit_item(None, lon=lon, lat=lat, premises={"building": "9"})

    result = one(client, world, item)

    assert (result["status"], result["code"], result["grid_code"]) == (
        "rejected",
        "not-your-grid",
        A2,
    )


def test_a_visit_made_after_a_redraw_is_graded_against_the_new_outline(client, session, world):
    """The same door visited by A1's worker once the border has moved: outside their grid."""
    household = home(world, A1, 0)
    since(session, 30, household)
    redraw_border(client, world, 116.4015)
    lon, lat = centre(A1)  # where the door was, now 85 m into A2
    item = visit_item(
        None, lon=lon, lat=lat, premises={"building": "9", "lon": 116.4010, "lat": lat}
    )

    evidence = one(client, world, item)["visit"]["evidence"]

    assert "outside_grid" in evidence["reasons"]
    assert evidence["details"]["distance_to_grid_m"] == pytest.approx(85, abs=3)


def test_the_photos_of_a_visit_from_before_its_household_moved_grid_are_its_holders(
    client, session, world, app, tmp_path
):
    import io

    from tests.factories import image_bytes

    app.config["PHOTO_DIR"] = str(tmp_path / "photos")
    household = home(world)
    item = visit_item(household)
    one(client, world, item)
    photo = client.post(
        f"/api/v1/visits/{item['id']}/photos",
        data={"file": (io.BytesIO(image_bytes("PNG")), "photo.png")},
        headers=world.auth("worker_a1"),
        content_type="multipart/form-data",
    )
    assert photo.status_code == 201, photo.json
    move_into_a2(client, world, household)
    history = client.get(
        f"/api/v1/households/{household.id}/visits", headers=world.auth("worker_a2")
    ).json
    (shown,) = history[0]["photos"]
    url = f"/api/v1/visits/{item['id']}/photos/{shown['id']}"
    assert client.get(url, headers=world.auth("worker_a2")).status_code == 200
    assert client.get(url, headers=world.auth("worker_b1")).status_code == 404


def test_visits_by_grid_and_week_are_paginated(client, world):
    this_week = datetime.now(UTC)
    last_week = this_week - timedelta(days=7)
    sync(client, world, [visit_item(home(world, A1, i), at=this_week) for i in range(3)])
    sync(client, world, [visit_item(home(world, A1, 0), at=last_week)])
    sync(client, world, [visit_item(home(world, A2, 0), at=this_week)], user="worker_a2")
    week = week_of(this_week)
    response = client.get(
        f"/api/v1/visits?grid={A1}&week={week}&page_size=2", headers=world.auth("leader_a")
    )
    assert response.status_code == 200
    assert len(response.json) == 2
    assert {v["week"] for v in response.json} == {week}
    assert {v["grid_code"] for v in response.json} == {A1}
    assert '"total": 3' in response.headers["X-Pagination"]


def test_a_leader_lists_one_workers_visits(client, world):
    """A leader reviewing a worker's week read every visit of the grid and sorted them by hand
    (`worker`: an id, or `me`)."""
    sync(client, world, [visit_item(home(world, A1, i)) for i in range(2)])
    sync(client, world, [visit_item(home(world, A2, 0))], user="worker_a2")
    a1 = world.users["worker_a1"].id
    theirs = client.get(f"/api/v1/visits?worker={a1}", headers=world.auth("leader_a"))
    assert theirs.status_code == 200, theirs.json
    assert [v["worker_id"] for v in theirs.json] == [a1, a1]
    mine = client.get("/api/v1/visits?worker=me", headers=world.auth("worker_a2")).json
    assert [v["worker_id"] for v in mine] == [world.users["worker_a2"].id]
    # Within what the caller may read: another grid's worker's visits are not theirs.
    other = client.get(f"/api/v1/visits?worker={a1}", headers=world.auth("worker_b1"))
    assert other.json == []


@pytest.mark.parametrize("worker", ["you", "1.5", "9" * 30])
def test_a_visits_worker_that_is_not_me_or_an_id_is_422(client, world, worker):
    r = client.get(f"/api/v1/visits?worker={worker}", headers=world.auth("leader_a"))
    assert r.status_code == 422 and "worker" in str(r.json["errors"])


def test_visit_lists_respect_scope(client, world):
    sync(client, world, [visit_item(home(world, A1))])
    response = client.get(f"/api/v1/visits?grid={A1}", headers=world.auth("worker_b1"))
    assert response.json == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/visits/plan?worker=99999999999999999999999",
        "/api/v1/visits/plan?worker=9223372036854775808",
        "/api/v1/visits/plan?worker=-1",
        "/api/v1/visits/plan?week=2026-W53",
        "/api/v1/visits/plan?week=2999-W52",
        "/api/v1/visits/plan?week=2000-W01",
        "/api/v1/visits?page=99999999999999999999",
        "/api/v1/visits?page=9223372036854775807",
        "/api/v1/visits?page_size=0",
        "/api/v1/visits?week=2999-W53",
        f"/api/v1/visits?grid={A1}&week=2000-W01",
        "/api/v1/households/2147483648/visits",
        "/api/v1/visits/00000000-0000-0000-0000-000000000000/photos/2147483648",
        "/api/v1/communities/x/visit-cadence",
        "/api/v1/communities/%00/visit-cadence",
    ],
)
def test_odd_reads_are_answered_never_a_500(client, world, url):
    for user in ("worker_a1", "leader_a", "admin_a", "viewer_110101"):
        response = client.get(url, headers=world.auth(user))
        assert response.status_code < 500, (user, response.get_data(as_text=True)[:200])


def test_a_bad_week_is_422(client, world):
    response = client.get("/api/v1/visits?week=2026-47", headers=world.auth("leader_a"))
    assert response.status_code == 422


def test_premises_visits_keep_their_date(client, world, session):
    day = date(2026, 11, 18)
    at = datetime(2026, 11, 18, 9, 0, tzinfo=LOCAL)
    lon, lat = centre(A1, dy=0.001)
    one(client, world, visit_item(None, lon=lon, lat=lat, at=at, premises={"building": "5"}))
    stored = session.scalar(select(Visit))
    assert stored.visited_at.astimezone(LOCAL).date() == day
    assert stored.utc_offset_minutes == 480


def test_a_follow_up_becomes_a_task_for_the_households_grid(client, world, session):
    from api.models import Task

    item = visit_item(home(world), follow_up=True, follow_up_note="楼道灯坏了")
    assert one(client, world, item)["status"] == "created"
    task = session.scalar(select(Task).where(Task.visit_id == uuid.UUID(item["id"])))
    assert (task.source, task.grid_id, task.description) == (
        "visit",
        home(world).grid_id,
        "楼道灯坏了",
    )


def test_replaying_a_follow_up_visit_makes_no_second_task(client, world, session):
    from api.models import Task

    item = visit_item(home(world), follow_up=True, follow_up_note="漏水")
    one(client, world, item)
    one(client, world, item)
    count = session.scalar(
        select(func.count(Task.id)).where(Task.visit_id == uuid.UUID(item["id"]))
    )
    assert count == 1
