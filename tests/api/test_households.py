"""Households: placed in their grid by PostGIS, filtered, edited, imported all or nothing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from api.models import AuditEntry, Household
from api.services.household_files import VACANT_MEMBERS
from tests.factories import A1, A2, B1, A, centre, make_household

CHINESE = [
    "楼栋",
    "单元",
    "楼层",
    "房号",
    "经度",
    "纬度",
    "类型",
    "居住性质",
    "人数",
    "标签",
    "电话",
]
ENGLISH = [
    "building",
    "unit",
    "floor",
    "room",
    "lon",
    "lat",
    "kind",
    "occupancy",
    "members",
    "tags",
    "phone",
]


def household_count(session) -> int:
    return session.scalar(select(func.count(Household.id)))


def csv_file(rows, header=ENGLISH) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def xlsx_file(rows, header=CHINESE) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, world, data: bytes, name: str, user="admin_a"):
    return client.post(
        "/api/v1/households/import",
        data={"file": (io.BytesIO(data), name)},
        headers=world.auth(user),
        content_type="multipart/form-data",
    )


def test_create_computes_the_grid(client, world):
    lon, lat = centre(A2)
    body = client.post(
        "/api/v1/households",
        json={"building": "9", "lon": lon, "lat": lat},
        headers=world.auth("admin_a"),
    ).json
    assert body["grid_code"] == A2
    assert (body["lon"], body["lat"]) == (lon, lat)


def test_create_carries_the_register_fields(client, world):
    lon, lat = centre(A1)
    payload = {
        "building": "3",
        "unit": "2",
        "floor": "5",
        "room": "502",
        "lon": lon,
        "lat": lat,
        "kind": "business",
        "occupancy": "tenant",
        "members": 4,
        "tags": ["migrant", "low_income"],
        "phone": "13800000000",
    }
    body = client.post("/api/v1/households", json=payload, headers=world.auth("admin_a")).json
    for key, value in payload.items():
        assert body[key] == value


def test_point_outside_every_grid_is_422_naming_the_nearest_grid_and_distance(client, world):
    lon, lat = 116.4025, 39.9300  # about 555 m north of A1
    response = client.post(
        "/api/v1/households",
        json={"building": "1", "lon": lon, "lat": lat},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 422
    assert response.json["nearest_grid"] == A1
    assert 540 < response.json["distance_m"] < 570


def test_point_on_a_shared_border_goes_to_the_lowest_code(client, world):
    body = client.post(
        "/api/v1/households",
        json={"building": "1", "lon": 116.405, "lat": 39.9221},
        headers=world.auth("admin_a"),
    ).json
    assert body["grid_code"] == A1


def test_unknown_tag_is_422(client, world):
    lon, lat = centre(A1)
    response = client.post(
        "/api/v1/households",
        json={"building": "1", "lon": lon, "lat": lat, "tags": ["rich"]},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 422
    assert "tags" in response.json["errors"]["json"]


def test_swapped_point_is_422(client, world):
    lon, lat = centre(A1)
    response = client.post(
        "/api/v1/households",
        json={"building": "1", "lon": lat, "lat": lon},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 422


def test_list_filters_by_grid(client, world):
    body = client.get(f"/api/v1/households?grid={A2}", headers=world.auth("admin_a")).json
    assert {h["grid_code"] for h in body} == {A2}
    assert len(body) == 3


def test_list_filters_by_tags(client, world):
    body = client.get("/api/v1/households?tags=elderly_80", headers=world.auth("admin_a")).json
    assert len(body) == 2
    assert all("elderly_80" in h["tags"] for h in body)


def test_list_filters_by_kind(client, world):
    assert client.get("/api/v1/households?kind=business", headers=world.auth("admin_a")).json == []


def test_list_is_paginated(client, world):
    response = client.get("/api/v1/households?page=2&page_size=4", headers=world.auth("admin_a"))
    assert len(response.json) == 2
    assert '"total": 6' in response.headers["X-Pagination"]


def test_patch_changes_facts(client, world):
    household = world.households[A1][0]
    body = client.patch(
        f"/api/v1/households/{household.id}",
        json={"members": 5, "tags": []},
        headers=world.auth("worker_a1"),
    ).json
    assert body["members"] == 5
    assert body["tags"] == []


def test_a_household_found_vacant_has_no_members_left(client, world):
    """Registered vacant, a household has 0 members; made vacant by a PATCH (the door's
    correction too), it kept the family that left."""
    household = world.households[A1][0]
    _patch(client, world, household, {"occupancy": "owner", "members": 3}, user="admin_a")
    body = _patch(client, world, household, {"occupancy": "vacant"}).json
    assert (body["occupancy"], body["members"]) == ("vacant", 0)


@pytest.mark.parametrize(
    ("registered", "sent", "named"),
    [
        ({"occupancy": "owner", "members": 3}, {"occupancy": "vacant", "members": 3}, 2),
        ({"occupancy": "vacant", "members": 0}, {"members": 2}, 1),  # the door's count alone
        ({"occupancy": "owner", "members": 0}, {"occupancy": "vacant", "members": 1}, 2),
    ],
)
def test_a_vacant_household_with_members_is_refused_and_nothing_changes(
    client, world, registered, sent, named
):
    """Vacant and lived in at once is a slip in one of the two: which one is not the server's
    to guess, so neither is taken (422 naming the fields sent) and the household is as it was.
    Vacant with 0, or lived in again with a count, is taken."""
    household = world.households[A1][0]
    _patch(client, world, household, {**registered, "tags": []}, user="admin_a")
    refused = _patch(client, world, household, {**sent, "tags": ["low_income"]})
    assert refused.status_code == 422
    assert refused.json["detail"] == VACANT_MEMBERS
    assert sorted(refused.json["errors"]) == sorted(sent)[:named]
    stored = client.get(f"/api/v1/households/{household.id}", headers=world.auth("admin_a")).json
    assert {k: stored[k] for k in (*registered, "tags")} == {**registered, "tags": []}
    lived_in = _patch(client, world, household, {"occupancy": "tenant", "members": 2})
    assert (lived_in.json["occupancy"], lived_in.json["members"]) == ("tenant", 2)


def test_a_household_stored_vacant_with_members_before_the_rule_still_takes_other_facts(
    client, session, world
):
    """Stored so before the rule: its phone or tags (the door's tag correction) still go; only
    a PATCH sending occupancy or members must leave it consistent."""
    household = world.households[A1][0]
    household.occupancy, household.members = "vacant", 3
    session.flush()
    assert _patch(client, world, household, {"add_tags": ["low_income"]}).status_code == 200
    assert _patch(client, world, household, {"members": 2}).status_code == 422


def test_a_vacant_household_registered_with_members_is_refused(client, world):
    lon, lat = centre(A1, dy=0.001)
    response = client.post(
        "/api/v1/households",
        json={"building": "9", "occupancy": "vacant", "members": 2, "lon": lon, "lat": lat},
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"occupancy", "members"}
    assert response.json["detail"] == VACANT_MEMBERS


def test_a_correction_of_facts_changed_meanwhile_is_refused_naming_them(client, world):
    """The door's correction says what it read (`expected`): the office set 4 members after
    the phone read 3; the worker's 2 went as a value and undid it without a word. Refused
    (409 with the facts as they are now), nothing changed; the same value both ways is no
    conflict, nor a fact not expected."""
    household = world.households[A1][0]
    _patch(client, world, household, {"occupancy": "owner", "members": 3}, user="admin_a")
    _patch(client, world, household, {"members": 4}, user="admin_a")  # the office, meanwhile
    body = {"members": 2, "occupancy": "tenant", "expected": {"members": 3, "occupancy": "owner"}}
    refused = _patch(client, world, household, body)
    assert refused.status_code == 409, refused.json
    assert refused.json["changed"] == {"members": 4}
    stored = client.get(f"/api/v1/households/{household.id}", headers=world.auth("admin_a")).json
    assert (stored["occupancy"], stored["members"]) == ("owner", 4)
    same = _patch(client, world, household, {"members": 4, "expected": {"members": 3}})
    assert same.status_code == 200 and same.json["members"] == 4
    other = _patch(
        client, world, household, {"occupancy": "tenant", "expected": {"occupancy": "owner"}}
    )
    assert (other.status_code, other.json["occupancy"], other.json["members"]) == (200, "tenant", 4)


def test_a_correction_refused_as_changed_meanwhile_is_audited_as_a_read_of_what_it_names(
    client, world, session
):
    """The 409 tells the facts as they are now (`changed`): a read of the household, which the
    audit log did not have (only a successful edit was written, and the refusal's transaction
    is rolled back)."""
    household = world.households[A1][0]
    _patch(client, world, household, {"members": 4}, user="admin_a")  # the office, meanwhile
    before = session.scalar(select(func.max(AuditEntry.id)))

    refused = _patch(client, world, household, {"members": 2, "expected": {"members": 3}})

    assert refused.status_code == 409, refused.json
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.id > before)).all()
    assert (entry.action, entry.resource, entry.resource_ids) == (
        "read",
        "household",
        [household.id],
    )
    assert (entry.user_id, entry.fields) == (world.users["worker_a1"].id, ["members"])


def _patch(client, world, household, body, user="worker_a1"):
    return client.patch(f"/api/v1/households/{household.id}", json=body, headers=world.auth(user))


def test_patch_adds_and_removes_care_tags_leaving_the_others(client, world):
    """The worker at the door changes the tags they saw: a tag the office added meanwhile
    stays (a whole list from the door, read before it, took it off again)."""
    household = world.households[A1][0]  # elderly_80
    _patch(client, world, household, {"tags": ["elderly_80", "low_income"]}, user="admin_a")
    body = _patch(
        client, world, household, {"add_tags": ["living_alone"], "remove_tags": ["elderly_80"]}
    ).json
    assert body["tags"] == ["low_income", "living_alone"]


def test_patch_tag_changes_sent_twice_change_nothing_more(client, world):
    household = world.households[A1][0]
    change = {"add_tags": ["living_alone"], "remove_tags": ["elderly_80", "disability"]}
    first = _patch(client, world, household, change).json
    again = _patch(client, world, household, change).json
    assert first["tags"] == again["tags"] == ["living_alone"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"tags": [], "add_tags": ["living_alone"]}, {"tags", "add_tags"}),
        ({"tags": [], "remove_tags": ["elderly_80"]}, {"tags", "remove_tags"}),
        ({"add_tags": ["disability"], "remove_tags": ["disability"]}, {"add_tags", "remove_tags"}),
        ({"add_tags": ["rich"]}, {"add_tags"}),
    ],
)
def test_patch_tag_changes_that_contradict_are_refused_and_change_nothing(
    client, world, session, body, fields
):
    household = world.households[A1][0]
    response = _patch(client, world, household, {"members": 7, **body})
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert set(response.json["errors"]["json"]) == fields
    session.expire_all()
    stored = session.get(Household, household.id)
    assert (list(stored.tags), stored.members) == (["elderly_80"], household.members)


def test_patch_moving_the_point_recomputes_the_grid(client, world):
    household = world.households[A1][0]
    lon, lat = centre(A2, dy=0.001)  # not onto A2's household of the same address
    body = client.patch(
        f"/api/v1/households/{household.id}",
        json={"lon": lon, "lat": lat},
        headers=world.auth("admin_a"),
    ).json
    assert body["grid_code"] == A2


def test_patch_moving_the_point_out_of_your_grids_is_403(client, world):
    household = world.households[A1][0]
    lon, lat = centre(A2)
    response = client.patch(
        f"/api/v1/households/{household.id}",
        json={"lon": lon, "lat": lat},
        headers=world.auth("worker_a1"),
    )
    assert response.status_code == 403


def test_import_csv_with_english_headers(client, session, world):
    lon, lat = centre(A1)
    data = csv_file(
        [
            [
                "7",
                "1",
                "3",
                "301",
                lon,
                lat,
                "residence",
                "owner",
                "2",
                "elderly_80;living_alone",
                "13900000000",
            ],
            ["7", "1", "3", "302", *centre(A2), "business", "tenant", "1", "", ""],
        ]
    )
    response = upload(client, world, data, "register.csv")
    assert response.status_code == 201
    assert response.json == {
        "created": 2,
        "by_grid": {A1: 1, A2: 1},
        "updated": 0,  # only an import with mode=update edits (test_household_import_update.py)
        "unchanged": 0,
        "header_row": 1,
        "ignored_columns": [],
        "note_rows": [],
    }


def test_an_import_is_audited_as_the_creation_of_each_household(client, session, world):
    """Creating a household is audited (who, which, when): an import creates many at once, with
    phones and care tags, and wrote no entry at all."""
    from api.models import AuditEntry

    data = csv_file(
        [["7", "1", "3", str(301 + n), *centre(A1), "", "", "", "", ""] for n in range(3)]
    )
    assert upload(client, world, data, "register.csv").status_code == 201
    created = session.scalars(
        select(Household.id).where(Household.building == "7").order_by(Household.id)
    ).all()
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "household", AuditEntry.action == "create")
    ).all()
    assert len(created) == 3
    assert sorted(i for e in entries for i in e.resource_ids) == created
    assert {e.user_id for e in entries} == {world.users["admin_a"].id}
    assert all(e.path.startswith("/api/v1/households/import") for e in entries)


def test_import_xlsx_with_chinese_headers_and_values(client, world):
    lon, lat = centre(A1)
    data = xlsx_file(
        [["8", "2", 4, "402", lon, lat, "住宅", "出租", 3, "独居;低保", "13700000000"]]
    )
    response = upload(client, world, data, "登记表.xlsx")
    assert response.status_code == 201
    row = client.get(
        f"/api/v1/households?grid={A1}&tags=low_income", headers=world.auth("admin_a")
    ).json[0]
    assert (row["occupancy"], row["tags"]) == ("tenant", ["living_alone", "low_income"])


def test_import_errors_name_row_and_column_and_write_nothing(client, session, world):
    before = household_count(session)
    lon, lat = centre(A1)
    data = csv_file(
        [
            ["2", "1", "1", "101", lon, lat, "", "", "", "", ""],
            ["2", "1", "1", "102", "east", lat, "", "", "", "", ""],
            ["2", "1", "1", "103", lon, lat, "castle", "", "", "", ""],
        ]
    )
    response = upload(client, world, data, "bad.csv")
    assert response.status_code == 422
    assert [(e["row"], e["column"]) for e in response.json["errors"]] == [(3, "lon"), (4, "kind")]
    assert household_count(session) == before


@pytest.mark.parametrize("members", ["inf", "-inf", "1e400", "nan", "2.5", "101"])
def test_import_members_that_are_not_a_whole_number_0_to_100_name_row_and_column(
    client, session, world, members
):
    before = household_count(session)
    lon, lat = centre(A1)
    data = csv_file([["1", "1", "1", "101", lon, lat, "", "", members, "", ""]])
    response = upload(client, world, data, "members.csv")
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "members")
    assert "not a whole number 0-100" in error["detail"]
    assert household_count(session) == before


def test_import_row_outside_every_grid_names_the_row_and_nearest_grid(client, world):
    data = csv_file([["1", "1", "1", "101", 116.4025, 39.93, "", "", "", "", ""]])
    response = upload(client, world, data, "far.csv")
    assert response.status_code == 422
    error = response.json["errors"][0]
    assert error["row"] == 2
    assert A1 in error["detail"]


def test_import_missing_columns_is_422_listing_them(client, world):
    response = upload(client, world, b"building,unit\n1,1\n", "short.csv")
    assert response.status_code == 422
    assert "lon" in response.json["detail"]


def test_import_mislabelled_file_is_422(client, world):
    response = upload(client, world, b"\x00\x01garbage" * 10, "register.xlsx")
    assert response.status_code == 422


def test_import_by_a_worker_outside_their_grid_is_refused_by_row(client, world):
    data = csv_file([["1", "1", "1", "101", *centre(B1), "", "", "", "", ""]])
    response = upload(client, world, data, "other.csv", user="worker_a1")
    assert response.status_code == 422
    assert response.json["errors"][0]["row"] == 2


@pytest.mark.parametrize("viewer", ["viewer_110101", "viewer_110102"])
@pytest.mark.parametrize("mode", [None, "update"])
def test_a_district_viewer_importing_a_register_is_refused_outright(
    client, session, world, viewer, mode
):
    """A district viewer writes nothing, as POST /households and the export tell them (403).
    The import read their file and answered 422, each row refused under column lon/lat with
    "A district viewer has read-only access." (found playing the demo)."""
    before = session.scalar(select(func.count()).select_from(Household))
    data = csv_file([["7", "1", "3", "301", *centre(A1), "", "", "", "", ""]])
    response = client.post(
        "/api/v1/households/import" + (f"?mode={mode}" if mode else ""),
        data={"file": (io.BytesIO(data), "register.csv")},
        headers=world.auth(viewer),
        content_type="multipart/form-data",
    )
    assert response.status_code == 403, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["detail"] == "A district viewer has read-only access."
    assert "errors" not in response.json
    assert session.scalar(select(func.count()).select_from(Household)) == before


def test_import_without_a_file_is_422(client, world):
    response = client.post(
        "/api/v1/households/import",
        data={},
        headers=world.auth("admin_a"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 422


def test_household_of_community(world):
    assert world.grids[A1].community_code == A


# --- the same household twice: in one file, or a file imported again ----------------------------
def test_a_second_import_of_the_same_file_is_refused_naming_the_households_and_adds_nothing(
    client, session, world
):
    """A register uploaded again (a lost answer, a second click) doubled every household: each
    would be visited and counted twice. The same address at the same point is the same
    household; the second import is refused whole, each row naming the household it repeats."""
    data = csv_file(
        [
            ["5", "1", "2", "201", *centre(A1), "", "", "", "", ""],
            ["5", "1", "2", "202", *centre(A1), "", "", "", "", ""],
        ]
    )
    assert upload(client, world, data, "register.csv").status_code == 201
    stored = session.scalars(
        select(Household.id).where(Household.building == "5").order_by(Household.room)
    ).all()
    again = upload(client, world, data, "register.csv")
    assert again.status_code == 422
    assert [(e["row"], e["column"]) for e in again.json["errors"]] == [
        (2, "building/unit/floor/room"),
        (3, "building/unit/floor/room"),
    ]
    for error, household_id in zip(again.json["errors"], stored, strict=True):
        assert f"household {household_id}" in error["detail"]
    assert "nothing was imported" in again.json["detail"]
    assert len(stored) == 2
    assert household_count(session) == len(world.households) * 3 + 2


def test_a_row_repeating_an_earlier_row_of_the_file_is_named_with_it_and_nothing_is_imported(
    client, session, world
):
    before = household_count(session)
    row = ["5", "1", "2", "201", *centre(A1), "", "", "", "", ""]
    other = ["5", "1", "2", "202", *centre(A1), "", "", "", "", ""]
    response = upload(client, world, csv_file([row, other, row]), "register.csv")
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (4, "building/unit/floor/room")
    assert "repeats row 2" in error["detail"]
    assert household_count(session) == before


def test_a_row_repeating_an_earlier_row_within_a_centimetre_is_named_with_it(
    client, session, world
):
    """A point typed 116.4025 beside one exported 116.40250005: the same point to the database's
    check and a form's, but the file's own rows were told apart by exact coordinates."""
    before = household_count(session)
    lon, lat = centre(A1, dy=0.001)
    row = ["9", "1", "1", "502", lon, lat, "", "", "", "", ""]
    near = ["9", "1", "1", "0502", lon + 5e-8, lat, "", "", "", "", ""]
    response = upload(client, world, csv_file([row, near]), "register.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (3, "building/unit/floor/room")
    assert "repeats row 2" in error["detail"]
    assert household_count(session) == before


def test_a_registered_address_at_the_same_point_in_an_import_is_refused(client, session, world):
    """A household registered one by one (POST) and then listed in the register file."""
    home = world.households[A1][1]
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    lon, lat = body["lon"], body["lat"]
    data = csv_file([[home.building, home.unit, home.floor, home.room, lon, lat, *[""] * 5]])
    response = upload(client, world, data, "register.csv")
    assert response.status_code == 422
    assert f"household {home.id}" in response.json["errors"][0]["detail"]


def test_an_import_row_repeating_a_household_outside_ones_scope_does_not_name_it(
    client, session, world
):
    """A point within a centimetre of another community's household across the grids' border
    (the repeat check's tolerance) is the same flat: the row is refused, as a form of it is,
    but the refusal named that household's id to a caller who may not read it (a way to find
    another community's homes by probing). It says only that the flat is registered, in a
    grid outside the caller's, as the form's 409 does."""
    from tests.factories import make_household

    lat = centre(B1)[1]
    theirs = make_household(session, 116.41000004, lat, building="9", unit="", floor="", room="")
    assert theirs.grid_id == world.grids[B1].id
    before = household_count(session)
    data = csv_file([["9", "", "", "", 116.40999997, lat, *[""] * 5]])
    response = upload(client, world, data, "register.csv", user="admin_a")
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "building/unit/floor/room")
    assert "outside your" in error["detail"]
    assert str(theirs.id) not in response.get_data(as_text=True)
    assert household_count(session) == before
    form = client.post(
        "/api/v1/households",
        json={"building": "9", "lon": 116.40999997, "lat": lat},
        headers=world.auth("admin_a"),
    )
    assert form.status_code == 409 and "household_id" not in form.json


def test_the_same_address_at_another_point_or_another_room_at_the_point_is_imported(client, world):
    """Rooms of one building share a point; the same room number in another building's point
    is another household."""
    home = world.households[A1][0]
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    data = csv_file(
        [
            [home.building, home.unit, home.floor, "999", body["lon"], body["lat"], *[""] * 5],
            [home.building, home.unit, home.floor, home.room, *centre(A1, dy=0.001), *[""] * 5],
        ]
    )
    assert upload(client, world, data, "register.csv").status_code == 201


def test_duplicates_across_chunks_of_a_long_file_are_found(session, world, monkeypatch):
    from api import errors
    from api.services import households as household_service

    monkeypatch.setattr(household_service, "IMPORT_CHUNK", 2)
    before = household_count(session)
    rows = [["6", "1", "1", str(100 + n), *centre(A1), "", "", "", "", ""] for n in range(5)]
    with pytest.raises(errors.Unprocessable) as caught:
        household_service.import_households(session, None, csv_file([*rows, rows[0]]))
    [error] = caught.value.errors
    assert error["row"] == 7 and "repeats row 2" in error["detail"]
    assert household_count(session) == before


# --- the file's header: one column per fact -----------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        ["building", "lon", "lat", "room", "room"],
        ["building", "lon", "lat", "room", "房号"],
        ["building", "lon", "lat", "Room ", "room"],
    ],
)
def test_a_column_named_twice_in_the_header_is_422_naming_it(client, session, world, header):
    """Which of two `room` columns is the room? The later one silently won."""
    before = household_count(session)
    data = csv_file([["5", *centre(A1), "101", "102"]], header=header)
    response = upload(client, world, data, "register.csv")
    assert response.status_code == 422
    assert "room" in response.json["detail"] and "more than once" in response.json["detail"]
    assert household_count(session) == before


# --- XLSX cells that are not what they were typed as ---------------------------------------------
def test_an_xlsx_address_cell_turned_into_a_date_is_named_not_stored_as_a_timestamp(
    client, session, world
):
    """Excel turns a typed room "1-2" into the date 2 January: the room was stored as
    "2026-01-02 00:00:00"."""
    import datetime

    before = household_count(session)
    data = xlsx_file([["6", "1", 3, datetime.datetime(2026, 1, 2), *centre(A1), "", "", 1, "", ""]])
    response = upload(client, world, data, "register.xlsx")
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "room")
    assert "date" in error["detail"]
    assert household_count(session) == before


# --- register facts as a form sends them -------------------------------------------------------
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_blank_building_is_422_naming_it_as_an_import_row_would_be(client, world, method):
    """ "   " passed `Length(min=1)` and was stored: a household at no building."""
    home = world.households[A1][0]
    lon, lat = centre(A1, dy=0.001)
    path = "/api/v1/households" + ("" if method == "POST" else f"/{home.id}")
    response = client.open(
        path,
        method=method,
        json={"building": "   ", "lon": lon, "lat": lat},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 422
    assert "building" in response.json["errors"]["json"]


def test_address_parts_are_stored_trimmed_as_an_import_stores_them(client, world):
    lon, lat = centre(A1, dy=0.001)
    body = client.post(
        "/api/v1/households",
        json={
            "building": " 3号楼 ",
            "unit": "2 ",
            "floor": " 5",
            "room": " 502 ",
            "lon": lon,
            "lat": lat,
        },
        headers=world.auth("admin_a"),
    ).json
    assert (body["building"], body["unit"], body["floor"], body["room"]) == (
        "3号楼",
        "2",
        "5",
        "502",
    )


def test_an_address_part_with_a_control_character_is_422_naming_it(client, world):
    """A NUL was refused by the database as "a value is out of range or malformed", naming no
    field; a tab or a newline was stored."""
    home = world.households[A1][0]
    for value in ("3\x00", "3\n号楼"):
        response = client.patch(
            f"/api/v1/households/{home.id}",
            json={"room": value},
            headers=world.auth("admin_a"),
        )
        assert response.status_code == 422
        assert "room" in response.json["errors"]["json"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "\x00"),
        ("phone", "138\n0013 8000"),
        ("phone", "\x1b[2J13800138000"),
        ("phone", "\u202e00083100831"),
        ("building", "\u202e1"),
        ("unit", "2\u202d"),
        ("floor", "\u20663\u2069"),
        ("room", "\u202a101"),
    ],
)
def test_a_control_character_or_bidi_override_in_a_one_line_field_is_422_naming_it(
    client, world, session, field, value
):
    """A phone took NUL and any control character; the address took U+202E and the other bidi
    overrides and isolates, which make it read, in a list or an export, as another address."""
    home = world.households[A1][0]
    before = (home.building, home.unit, home.floor, home.room, home.phone)
    response = client.patch(
        f"/api/v1/households/{home.id}", json={field: value}, headers=world.auth("admin_a")
    )
    assert response.status_code == 422, response.json
    assert response.json["errors"]["json"] == {
        field: ["Must not contain control characters or bidirectional overrides."]
    }
    session.expire_all()
    assert (home.building, home.unit, home.floor, home.room, home.phone) == before
    lon, lat = centre(A1, dy=0.001)
    created = client.post(
        "/api/v1/households",
        json={"building": "1", "lon": lon, "lat": lat, field: value},
        headers=world.auth("admin_a"),
    )
    assert created.status_code == 422
    assert list(created.json["errors"]["json"]) == [field]


def test_a_phone_or_address_in_a_right_to_left_script_is_kept(client, world):
    """Letters written right to left, and the marks that order them, are not overrides."""
    home = world.households[A1][0]
    body = {"room": "\u05d3\u05d9\u05e8\u05d4 3", "phone": "+972 3\u200e-555"}
    response = client.patch(
        f"/api/v1/households/{home.id}", json=body, headers=world.auth("admin_a")
    )
    assert response.status_code == 200, response.json
    assert response.json["room"] == body["room"]


def test_a_care_tag_given_twice_is_kept_once(client, world):
    home = world.households[A1][0]
    body = client.patch(
        f"/api/v1/households/{home.id}",
        json={"tags": ["migrant", "low_income", "migrant"]},
        headers=world.auth("worker_a1"),
    ).json
    assert body["tags"] == ["migrant", "low_income"]


def test_an_import_row_whose_address_holds_a_control_character_is_named(client, session, world):
    before = household_count(session)
    data = csv_file([["5", "1", "1", "1\n01", *centre(A1), "", "", "", "", ""]])
    response = upload(client, world, data, "register.csv")
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "room")
    assert household_count(session) == before


@pytest.mark.parametrize(
    ("column", "row"),
    [
        ("building", ["\u202e5", "1", "1", "101"]),
        ("room", ["5", "1", "1", "10\u20671"]),
        ("phone", ["5", "1", "1", "101"]),
    ],
)
def test_an_import_row_whose_phone_or_address_holds_a_control_or_bidi_character_is_named(
    client, session, world, column, row
):
    before = household_count(session)
    phone = "138\x0700138000" if column == "phone" else ""
    data = csv_file([[*row, *centre(A1), "", "", "", "", phone]])
    response = upload(client, world, data, "register.csv")
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, column)
    assert household_count(session) == before


def test_an_import_row_vacant_with_members_is_named_and_nothing_is_imported(client, session, world):
    before = household_count(session)
    data = csv_file([["5", "1", "1", "101", *centre(A1), "住宅", "空置", "3", "", ""]])
    response = upload(client, world, data, "register.csv")
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert (error["row"], error["column"], error["detail"]) == (2, "members", VACANT_MEMBERS)
    assert household_count(session) == before


# --- registers as Chinese offices save them -----------------------------------------------------
def test_care_tags_listed_with_chinese_enumeration_commas_are_read(client, world):
    """ "高龄、独居" (、 or ，) is how a Chinese register lists tags: it was one unknown tag."""
    data = csv_file(
        [["5", "1", "1", "101", *centre(A1, dy=0.001), "", "", "", "高龄、独居，低保", ""]]
    )
    assert upload(client, world, data, "register.csv").status_code == 201
    row = client.get(
        f"/api/v1/households?grid={A1}&tags=low_income", headers=world.auth("admin_a")
    ).json
    assert [h["tags"] for h in row] == [["elderly_80", "living_alone", "low_income"]]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_utf16_register_is_422_saying_how_to_save_it(client, session, world, encoding):
    """Excel's "Unicode Text" is UTF-16: it was refused as "binary, not CSV text"."""
    text = "\ufeff" + ",".join(ENGLISH) + "\n5,1,1,101,116.4025,39.9225,,,,,\n"
    response = upload(client, world, text.encode(encoding), "register.csv")
    assert response.status_code == 422
    assert "UTF-16" in response.json["detail"] and "UTF-8" in response.json["detail"]


def test_a_vacant_home_registered_without_members_has_none_as_an_imported_one(client, world):
    """A vacant home registered by POST had 1 member (the column default); imported, 0."""
    lon, lat = centre(A1, dy=0.001)
    body = client.post(
        "/api/v1/households",
        json={"building": "5", "occupancy": "vacant", "lon": lon, "lat": lat},
        headers=world.auth("admin_a"),
    ).json
    assert body["members"] == 0


# --- the households at a point (a stair entrance), by grid id, with their visit state ------------
def entrance(session, code=A1, n=3):
    """`n` flats of a stair entrance in grid `code`: one point, away from the world's others."""
    from tests.factories import make_household

    lon, lat = centre(code, dy=0.001)
    flats = [
        make_household(session, lon, lat, building="7", unit="2", room=f"{i + 1}01")
        for i in range(n)
    ]
    session.flush()
    return flats, lon, lat


def at(lon: float, lat: float, **query) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"/api/v1/households?lon={lon}&lat={lat}{extra}"


def test_list_filters_by_grid_id(client, world):
    url = f"/api/v1/households?grid_id={world.grids[A2].id}"
    body = client.get(url, headers=world.auth("admin_a")).json
    assert {h["grid_code"] for h in body} == {A2}
    assert len(body) == 3


def test_list_at_a_point_gives_the_households_there_and_no_neighbours(client, session, world):
    from tests.factories import make_household

    flats, lon, lat = entrance(session)
    make_household(session, lon + 0.0001, lat, building="7", unit="3")  # the next door, ~9 m
    session.flush()
    body = client.get(at(lon, lat), headers=world.auth("worker_a1")).json
    assert sorted(h["id"] for h in body) == sorted(f.id for f in flats)


def test_a_point_rounded_as_a_map_tile_rounds_it_still_finds_them(client, session, world):
    """A z15 tile keeps points to ~0.3 m: the map asks with the point it drew."""
    flats, lon, lat = entrance(session)
    body = client.get(at(lon + 0.000002, lat - 0.000002), headers=world.auth("worker_a1")).json
    assert len(body) == len(flats)


def test_within_m_widens_the_reach_in_metres(client, session, world):
    from tests.factories import make_household

    flats, lon, lat = entrance(session)
    next_door = make_household(session, lon + 0.0001, lat, building="7", unit="3")  # ~8.5 m
    session.flush()
    near = client.get(at(lon, lat, within_m=8), headers=world.auth("worker_a1")).json
    assert next_door.id not in {h["id"] for h in near}
    wider = client.get(at(lon, lat, within_m=9), headers=world.auth("worker_a1")).json
    assert {h["id"] for h in wider} == {f.id for f in flats} | {next_door.id}


def test_the_filters_combine_with_grid_id_and_kind(client, session, world):
    from tests.factories import make_household

    flats, lon, lat = entrance(session)
    shop = make_household(session, lon, lat, building="7", kind="business")
    session.flush()
    grid_id = world.grids[A1].id
    homes = client.get(
        at(lon, lat, grid_id=grid_id, kind="residence"), headers=world.auth("admin_a")
    ).json
    assert sorted(h["id"] for h in homes) == sorted(f.id for f in flats)
    shops = client.get(at(lon, lat, kind="business"), headers=world.auth("admin_a")).json
    assert [h["id"] for h in shops] == [shop.id]
    elsewhere = client.get(
        at(lon, lat, grid_id=world.grids[A2].id), headers=world.auth("admin_a")
    ).json
    assert elsewhere == []


@pytest.mark.parametrize(
    ("user", "sees"),
    [
        ("worker_a1", True),
        ("leader_a", True),
        ("admin_a", True),
        ("viewer_110101", True),
        ("worker_a2", False),
        ("worker_b1", False),
        ("admin_b", False),
        ("viewer_110102", False),
    ],
)
def test_the_households_at_a_point_are_seen_only_within_ones_scope(
    client, session, world, user, sees
):
    flats, lon, lat = entrance(session)
    for url in (at(lon, lat), at(lon, lat, grid_id=world.grids[A1].id)):
        body = client.get(url, headers=world.auth(user)).json
        assert sorted(h["id"] for h in body) == (sorted(f.id for f in flats) if sees else [])


def test_a_read_of_the_households_at_a_point_is_audited(client, session, world):
    from api.models import AuditEntry

    flats, lon, lat = entrance(session)
    url = at(lon, lat, grid_id=world.grids[A1].id)
    client.get(url, headers=world.auth("worker_b1"))  # sees nothing: nothing to log
    client.get(url, headers=world.auth("worker_a1"))
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "household").order_by(AuditEntry.id)
    ).all()
    (entry,) = entries
    assert entry.user_id == world.users["worker_a1"].id
    assert entry.action == "read"
    assert sorted(entry.resource_ids) == sorted(f.id for f in flats)
    assert entry.path == "/api/v1/households"  # not the point asked for (the query string)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("lon=116.4", "lon"),
        ("lat=39.92", "lon"),
        ("within_m=5", "within_m"),
        ("lon=116.4&lat=39.92&within_m=0", "within_m"),
        ("lon=116.4&lat=39.92&within_m=-1", "within_m"),
        ("lon=116.4&lat=39.92&within_m=501", "within_m"),
        ("lon=116.4&lat=39.92&within_m=nan", "within_m"),
        ("lon=200&lat=39.92", "lon"),
        ("lon=116.4&lat=-91", "lat"),
        ("lon=nan&lat=39.92", "lon"),
        ("lon=east&lat=39.92", "lon"),
        ("grid_id=0", "grid_id"),
        ("grid_id=1.5", "grid_id"),
        ("grid_id=abc", "grid_id"),
        ("grid_id=99999999999", "grid_id"),
        ("week=soon", "week"),
        ("week=2026-W60", "week"),
        ("week=1999-W10", "week"),
    ],
)
def test_a_bad_filter_is_a_422_problem_naming_it(client, world, query, named):
    response = client.get(f"/api/v1/households?{query}", headers=world.auth("worker_a1"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.json
    value = query.rpartition("=")[2]
    # Named in the field errors, or (a week the pattern lets through) with its value.
    assert named in (body.get("errors") or {}).get("query", {}) or value in body["detail"]


def test_with_a_week_each_household_carries_its_visit_state(client, session, world):
    from api.services.weeks import current_week
    from tests.factories import make_visit

    flats, lon, lat = entrance(session)
    make_visit(session, world.users["worker_a1"], flats[0], datetime.now(UTC))
    week = current_week()
    body = client.get(at(lon, lat, week=week), headers=world.auth("worker_a1")).json
    states = {h["id"]: h["visit_status"] for h in body}
    assert states[flats[0].id]["status"] == "visited"
    assert states[flats[0].id]["days_since_visit"] == 0
    assert states[flats[0].id]["week"] == week
    assert states[flats[1].id] == {
        "week": week,
        "status": "overdue",
        "days_since_visit": None,
        "last_visited": None,
        "last_attempt": None,
    }
    plain = client.get(at(lon, lat), headers=world.auth("worker_a1")).json
    assert all("visit_status" not in h for h in plain)


def test_a_list_with_a_week_audits_the_visit_times_it_discloses(client, session, world):
    """Each household's last visit and last attempt (`visit_status`) are what the households
    layer's audit entry names too (when a lone elderly resident was last found at home): the
    list that carries them names them; one without `week` does not."""
    from api.models import AuditEntry
    from api.services.weeks import current_week
    from tests.factories import make_visit

    flats, lon, lat = entrance(session)
    make_visit(session, world.users["worker_a1"], flats[0], datetime.now(UTC))
    client.get(at(lon, lat), headers=world.auth("worker_a1"))
    client.get(at(lon, lat, week=current_week()), headers=world.auth("worker_a1"))
    plain, with_week = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "household").order_by(AuditEntry.id)
    ).all()
    assert "last_visited" not in plain.fields
    assert {"last_visited", "last_attempt"} <= set(with_week.fields)
    assert sorted(with_week.resource_ids) == sorted(f.id for f in flats)


def test_a_households_visit_state_is_the_one_the_map_draws(session, world):
    """The same statement's columns as the households layer: visited in the week, due (seen
    within seven days, not this week), overdue (never, or longer ago); a past week ignores
    later visits."""
    import mapbox_vector_tile

    from api.scope import Scope
    from api.services import households, tiles
    from tests.api.test_tiles import tile_of
    from tests.factories import make_visit

    thursday = datetime(2026, 10, 1, 4, 0, tzinfo=UTC)  # 2026-W40, Thursday noon in Beijing
    worker = world.users["worker_a1"]
    flats, lon, lat = entrance(session, n=4)
    make_visit(session, worker, flats[0], thursday - timedelta(hours=20))  # this week
    make_visit(session, worker, flats[1], thursday - timedelta(days=4))  # last week: due
    make_visit(session, worker, flats[2], thursday - timedelta(days=9))  # overdue
    make_visit(session, worker, flats[2], thursday + timedelta(days=9))  # later: not counted
    # An attempt that found nobody is not a visit (the report's rule): still overdue.
    make_visit(session, worker, flats[3], thursday - timedelta(hours=2), outcome="nobody_home")
    scope = Scope.for_user(session, worker)
    rows, _ = households.list_households(
        session, scope, near=households.Near(lon, lat), week="2026-W40", now=thursday
    )
    listed = {h.id: h.visit_status for h in rows}
    req = tiles.TileRequest("households", *tile_of(lon, lat, 16), "2026-W40", thursday)
    decoded = mapbox_vector_tile.decode(tiles.render_tile(session, scope, req)[0])
    drawn = {
        f["properties"]["id"]: f["properties"]
        for f in decoded["households"]["features"]
        if f["properties"]["id"] in listed
    }
    assert [listed[f.id]["status"] for f in flats] == ["visited", "due", "overdue", "overdue"]
    assert listed[flats[3].id]["last_attempt"] is not None
    for household_id, state in listed.items():
        for key in ("status", "days_since_visit", "last_visited", "last_attempt"):
            assert state[key] == drawn[household_id].get(key), (household_id, key)


# --- finding a household by its address ----------------------------------------------------------
def test_address_finds_the_households_whose_parts_are_its_words_as_a_clerk_writes_them(
    client, session, world
):
    """`address=7号楼 2单元 502`: every word one of the household's parts, compared as the import
    compares them (full-width, leading zeros, a letter's case) and without the words a clerk
    adds (号楼, 栋, 单元, 层, 室): 7号楼 is building 7, 0502 is 502."""
    lon, lat = centre(A1, dx=0.002)
    found = [
        make_household(session, lon, lat, building="7", unit="2", floor="5", room="502"),
        make_household(session, lon, lat + 0.0001, building="7号楼", unit="2单元", room="0502"),
    ]
    others = [
        make_household(session, lon, lat + 0.0002, building="17", unit="2", room="502"),
        make_household(session, lon, lat + 0.0003, building="7", unit="2", room="5020"),
        make_household(session, lon, lat + 0.0004, building="7", unit="3", room="502"),
    ]
    session.flush()
    ids = {h.id for h in found}
    for words in (
        "7号楼 2单元 502",
        "７栋 2 0502室",
        "502 2 7",
        " 7号楼  2单元 502 ",
        "7号楼2单元502",
        "7，2，502",
    ):
        body = client.get(
            "/api/v1/households", query_string={"address": words}, headers=world.auth("admin_a")
        ).json
        assert {h["id"] for h in body} == ids, words
    assert not {h.id for h in others} & ids


def test_address_combines_with_the_other_filters_and_the_callers_scope(client, session, world):
    lon, lat = centre(A1, dx=0.002)
    mine = make_household(session, lon, lat, building="9", unit="1", room="101")
    theirs = make_household(session, *centre(B1, dx=0.002), building="9", unit="1", room="101")
    session.flush()
    body = client.get(
        "/api/v1/households", query_string={"address": "9 101"}, headers=world.auth("admin_a")
    ).json
    assert [h["id"] for h in body] == [mine.id]
    body = client.get(
        "/api/v1/households",
        query_string={"address": "9 101", "grid": A2},
        headers=world.auth("admin_a"),
    ).json
    assert body == []
    assert theirs.id  # in community B: not admin_a's


@pytest.mark.parametrize("words", ["", "   ", "1 2 3 4 5 6 7 8 9", "x" * 101])
def test_an_address_of_no_word_too_many_or_too_long_is_a_422(client, world, words):
    response = client.get(
        "/api/v1/households", query_string={"address": words}, headers=world.auth("admin_a")
    )
    assert response.status_code == 422
    assert "address" in response.json["errors"]["query"]


def test_a_part_named_by_its_suffix_is_that_part_and_a_word_given_twice_two_parts(
    client, session, world
):
    """8号楼 1单元 101 is building 8, unit 1: not building 8, unit 2, floor 1, room 101."""
    lon, lat = centre(A1, dx=-0.002)
    flat = make_household(session, lon, lat, building="8", unit="1", floor="1", room="101")
    make_household(session, lon, lat + 0.0001, building="8", unit="2", floor="1", room="101")
    make_household(session, lon, lat + 0.0002, building="9", unit="1", floor="1", room="101")
    session.flush()
    for words in ("8号楼 1单元 101", "8栋 1单元 101室", "8 1 1 101"):
        body = client.get(
            "/api/v1/households",
            query_string={"address": words, "grid": A1},
            headers=world.auth("admin_a"),
        ).json
        assert [h["id"] for h in body] == [flat.id], words
