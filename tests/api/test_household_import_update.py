"""A changed register imported again with `mode=update`: matched households edited as a PATCH
edits them, new rows created, unchanged rows left alone, all or nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from api.models import AuditEntry, Household, HouseholdHistory
from api.services.household_files import VACANT_MEMBERS
from tests.api.test_households import csv_file, household_count, xlsx_file
from tests.factories import A1, A2, B1, centre, make_household

# Points a few tens of metres either side of a border: A1 | A2 at lon 116.405, A2 | B1 at 116.410.
NEAR_A2_IN_A1 = (116.4048, 39.9225)
NEAR_A1_IN_A2 = (116.4052, 39.9225)  # 34 m east of NEAR_A2_IN_A1
NEAR_B1_IN_A2 = (116.4098, 39.9225)
NEAR_A2_IN_B1 = (116.4102, 39.9225)

# The answer also says where the header was and which columns were not read: here, the first
# row, and none.
HEADER_ON_ROW_1 = {"header_row": 1, "ignored_columns": [], "note_rows": []}


def reimport(client, world, data: bytes, user="admin_a", mode="update", **headers):
    query = f"?mode={mode}" if mode else ""
    return client.post(
        f"/api/v1/households/import{query}",
        data={"file": (io.BytesIO(data), "register.csv")},
        headers={**world.auth(user), **headers},
        content_type="multipart/form-data",
    )


def row_of(client, world, household, reader="admin_a", **changes) -> list:
    """The register row of a stored household (as the API shows it), with `changes`."""
    body = client.get(f"/api/v1/households/{household.id}", headers=world.auth(reader)).json
    row = {
        "building": body["building"],
        "unit": body["unit"],
        "floor": body["floor"],
        "room": body["room"],
        "lon": body["lon"],
        "lat": body["lat"],
        "kind": body["kind"],
        "occupancy": body["occupancy"],
        "members": body["members"],
        "tags": ";".join(body["tags"]),
        "phone": body["phone"] or "",
        **changes,
    }
    return list(row.values())


def stored(session, household) -> Household:
    session.expire_all()
    return session.get(Household, household.id)


def history(session, household) -> list[tuple]:
    rows = session.scalars(
        select(HouseholdHistory)
        .where(HouseholdHistory.household_id == household.id)
        .order_by(HouseholdHistory.id)
    )
    return [(h.grid_id, h.kind, h.tags, h.valid_to is None) for h in rows]


def updates_audited(session) -> list[int]:
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "household", AuditEntry.action == "update")
    )
    return sorted(i for e in entries for i in e.resource_ids)


def two_alike(session, world) -> tuple[Household, Household]:
    first = make_household(session, *centre(A1, dy=0.0015), building="9", room="101")
    second = make_household(session, *centre(A1, dy=0.0015), building="9", room="102")
    session.flush()
    return first, second


# --- what an update applies ---------------------------------------------------------------------
def test_a_changed_care_tag_is_applied_as_a_patch_applies_it(client, session, world):
    """A resident living alone now: the re-import's household gets the history row, the visit
    cadence and the report counts a PATCH of the same change gives its twin."""
    from api.services import ledger, report_verify

    patched, imported = two_alike(session, world)
    response = client.patch(
        f"/api/v1/households/{patched.id}",
        json={"tags": ["living_alone"]},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 200
    data = csv_file([row_of(client, world, imported, tags="独居")])
    response = reimport(client, world, data)
    assert response.status_code == 201, response.json
    assert response.json == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
        "by_grid": {},
        **HEADER_ON_ROW_1,
    }
    assert stored(session, imported).tags == ["living_alone"]
    assert history(session, imported) == history(session, patched)
    assert [h[2] for h in history(session, imported)] == [[], ["living_alone"]]
    standing = {
        row.household_id: row
        for row in ledger.household_ledger(
            session, grid_ids=[world.grids[A1].id], as_of=datetime.now(UTC)
        )
    }
    for household in (patched, imported):
        assert standing[household.id].must_visit
        assert standing[household.id].visits_per_week == 2
    assert report_verify.check(session).equal
    assert imported.id in updates_audited(session)


def test_a_changed_occupancy_and_members_are_applied(client, session, world):
    home = world.households[A1][1]
    data = csv_file([row_of(client, world, home, occupancy="出租", members=4)])
    response = reimport(client, world, data)
    assert response.status_code == 201, response.json
    assert (response.json["updated"], response.json["unchanged"]) == (1, 0)
    household = stored(session, home)
    assert (household.occupancy, household.members) == ("tenant", 4)


def test_a_changed_phone_is_stored_encrypted(client, session, world):
    home = world.households[A1][1]
    data = csv_file([row_of(client, world, home, phone="13812345678")])
    assert reimport(client, world, data).status_code == 201
    assert stored(session, home).phone == "13812345678"
    ciphertext = session.scalar(
        text("SELECT phone FROM households WHERE id = :id"), {"id": home.id}
    )
    assert ciphertext and "13812345678" not in ciphertext


def test_a_moved_point_is_re_placed_in_the_grid_that_holds_it(client, session, world):
    home = make_household(session, *NEAR_A2_IN_A1, building="12", room="1")
    session.flush()
    data = csv_file([row_of(client, world, home, lon=NEAR_A1_IN_A2[0], lat=NEAR_A1_IN_A2[1])])
    response = reimport(client, world, data)
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["updated"]) == (0, 1)
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    assert (body["grid_code"], body["lon"], body["lat"]) == (A2, *NEAR_A1_IN_A2)
    assert [h[0] for h in history(session, home)] == [world.grids[A1].id, world.grids[A2].id]


def test_unchanged_rows_are_counted_and_write_no_history_nor_audit(client, session, world):
    homes = world.households[A1]
    before = [history(session, h) for h in homes]
    updated_at = [stored(session, h).updated_at for h in homes]
    data = csv_file([row_of(client, world, h) for h in homes])
    response = reimport(client, world, data)
    assert response.status_code == 201, response.json
    assert response.json == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "by_grid": {},
        **HEADER_ON_ROW_1,
    }
    assert [history(session, h) for h in homes] == before
    assert [stored(session, h).updated_at for h in homes] == updated_at
    assert updates_audited(session) == []


def test_tags_listed_in_another_order_are_unchanged(client, session, world):
    home = make_household(session, *centre(A1), building="13", tags=["low_income", "disability"])
    session.flush()
    data = csv_file([row_of(client, world, home, tags="disability;low_income")])
    assert reimport(client, world, data).json["unchanged"] == 1


def test_a_row_matching_no_household_is_created(client, session, world):
    home = world.households[A1][1]
    new = ["40", "1", "1", "101", *centre(A2), "", "", "", "", ""]
    response = reimport(client, world, csv_file([row_of(client, world, home, members=3), new]))
    assert response.status_code == 201, response.json
    assert response.json == {
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "by_grid": {A2: 1},
        **HEADER_ON_ROW_1,
    }
    assert session.scalar(select(func.count()).where(Household.building == "40")) == 1


def test_two_households_of_one_address_near_each_other_are_told_apart_by_their_points(
    client, session, world
):
    """The create mode registers the same address at two points (two compounds numbered
    alike): re-imported where they stand, each row is its own household's."""
    west = make_household(session, *centre(A1, dy=-0.001), building="17", members=2)
    east = make_household(session, *centre(A1, dx=0.0005, dy=-0.001), building="17", members=3)
    session.flush()
    rows = [row_of(client, world, west), row_of(client, world, east, members=4)]
    response = reimport(client, world, csv_file(rows))
    assert response.status_code == 201, response.json
    assert (response.json["updated"], response.json["unchanged"]) == (1, 1)
    assert (stored(session, west).members, stored(session, east).members) == (2, 4)


def test_two_new_rows_of_one_address_within_the_radius_are_refused(client, session, world):
    """In a later chunk the second would match the household the first creates: in the same
    chunk it is refused alike."""
    lon, lat = centre(A2, dy=0.001)
    rows = [
        ["44", "1", "1", "101", lon, lat, "", "", "", "", ""],
        ["44", "1", "1", "101", lon + 0.0003, lat, "", "", "", "", ""],
    ]
    before = household_count(session)
    response = reimport(client, world, csv_file(rows))
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert error["row"] == 3 and "repeats row 2" in error["detail"]
    assert household_count(session) == before


def test_columns_the_file_lacks_keep_their_stored_values(client, session, world):
    """A register of addresses and tags alone updates the tags, not every phone to none."""
    home = make_household(session, *centre(A1), building="14", phone="13700000000", members=5)
    session.flush()
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    header = ["building", "unit", "floor", "room", "lon", "lat", "tags"]
    data = csv_file([["14", "1", "1", "101", body["lon"], body["lat"], "migrant"]], header=header)
    assert reimport(client, world, data).json["updated"] == 1
    household = stored(session, home)
    assert (household.tags, household.phone, household.members) == (["migrant"], "13700000000", 5)


def test_blank_kind_occupancy_and_members_cells_keep_the_stored_facts(client, session, world):
    """A clerk filled in the phone only: the blank cells took the defaults of a household
    registered by the row, and a tenants' shop of four became a family of one owning a home."""
    home = make_household(
        session, *centre(A1), building="15", kind="business", occupancy="tenant", members=4
    )
    session.flush()
    row = row_of(client, world, home, kind="", occupancy="", members="", phone="13700000001")
    assert reimport(client, world, csv_file([row])).json["updated"] == 1
    household = stored(session, home)
    assert (household.kind, household.occupancy, household.members) == ("business", "tenant", 4)
    assert household.phone == "13700000001"


def test_a_row_making_a_household_vacant_leaves_no_members(client, session, world):
    """As a PATCH of `occupancy: vacant`: its members cell blank, or the file without one."""
    home = make_household(session, *centre(A1), building="16", occupancy="owner", members=3)
    session.flush()
    row = row_of(client, world, home, occupancy="空置", members="")
    assert reimport(client, world, csv_file([row])).json["updated"] == 1
    assert (stored(session, home).occupancy, stored(session, home).members) == ("vacant", 0)
    home.occupancy, home.members = "owner", 3
    session.flush()
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    header = ["building", "unit", "floor", "room", "lon", "lat", "occupancy"]
    data = csv_file([["16", "1", "1", "101", body["lon"], body["lat"], "空置"]], header=header)
    assert reimport(client, world, data).json["updated"] == 1
    assert (stored(session, home).occupancy, stored(session, home).members) == ("vacant", 0)


def test_members_for_a_household_left_vacant_are_refused_naming_the_row(client, session, world):
    """A file of members only: the stored vacant household given two is refused, as a PATCH."""
    home = make_household(session, *centre(A1), building="17", occupancy="vacant")
    session.flush()
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    header = ["building", "unit", "floor", "room", "lon", "lat", "members"]
    data = csv_file([["17", "1", "1", "101", body["lon"], body["lat"], "2"]], header=header)
    response = reimport(client, world, data)
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"], error["detail"]) == (2, "members", VACANT_MEMBERS)
    assert (stored(session, home).occupancy, stored(session, home).members) == ("vacant", 0)


def test_a_household_stored_vacant_with_members_before_the_rule_imports_unchanged(
    client, session, world
):
    """The register exported and imported again: its row as it was is unchanged, not refused."""
    home = make_household(session, *centre(A1), building="18")
    home.occupancy, home.members = "vacant", 3
    session.flush()
    response = reimport(client, world, csv_file([row_of(client, world, home)]))
    assert response.status_code == 201, response.json
    assert (response.json["updated"], response.json["unchanged"]) == (0, 1)


def test_the_update_mode_answer_is_documented(app):
    from tests.api.test_openapi_fuzz import api_schema_for

    spec = api_schema_for(app).raw_schema
    post = spec["paths"]["/api/v1/households/import"]["post"]
    [mode] = [p for p in post["parameters"] if p["name"] == "mode"]
    assert (mode["in"], mode["schema"]["enum"]) == ("query", ["create", "update"])
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"] if p["in"] == "header"]
    result = post["responses"]["201"]["content"]["application/json"]["schema"]
    assert "$ref" in result
    name = result["$ref"].rsplit("/", 1)[-1]
    assert {"created", "updated", "unchanged", "by_grid"} <= set(
        spec["components"]["schemas"][name]["properties"]
    )


# --- refused, whole -----------------------------------------------------------------------------
def test_a_bad_row_refuses_the_whole_update_and_changes_nothing(client, session, world):
    home = world.households[A1][1]
    data = csv_file(
        [
            row_of(client, world, home, tags="low_income", members=6),
            ["41", "1", "1", "101", *centre(A2), "", "", "", "", ""],
            ["42", "1", "1", "101", *centre(A2), "", "", "lots", "", ""],
        ]
    )
    before = household_count(session)
    history_before = history(session, home)
    response = reimport(client, world, data)
    assert response.status_code == 422
    assert [(e["row"], e["column"]) for e in response.json["errors"]] == [(4, "members")]
    assert "nothing was imported" in response.json["detail"]
    household = stored(session, home)
    assert (household.tags, household.members) == ([], 1)
    assert history(session, home) == history_before
    assert household_count(session) == before
    assert updates_audited(session) == []


def test_two_rows_matching_one_household_are_refused_naming_both(client, session, world):
    """The same flat listed twice with different facts: which is true? Neither is applied."""
    home = world.households[A1][1]
    first = row_of(client, world, home, members=2)
    second = row_of(client, world, home, members=3)
    other = row_of(client, world, world.households[A1][2], members=4)
    response = reimport(client, world, csv_file([first, other, second]))
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert error["row"] == 4 and "row 2" in error["detail"]
    assert stored(session, home).members == 1


def test_two_rows_matching_one_household_in_different_chunks_are_refused(
    session, world, monkeypatch
):
    from api import errors
    from api.services import households as household_service

    monkeypatch.setattr(household_service, "IMPORT_CHUNK", 2)
    homes = world.households[A1]
    rows = []
    for home, members in ((homes[0], 2), (homes[1], 3), (homes[2], 4), (homes[0], 5)):
        lon, lat = household_service.household_lonlat(home)
        address = [home.building, home.unit, home.floor, home.room]
        rows.append([*address, lon, lat, "", "", members, "", ""])
    with pytest.raises(errors.Unprocessable) as caught:
        household_service.import_households(session, None, csv_file(rows), mode="update")
    [error] = caught.value.errors
    assert error["row"] == 5 and "row 2" in error["detail"]
    assert stored(session, homes[1]).members == 1


def test_a_row_matching_a_household_of_another_community_is_refused(client, session, world):
    """Community A's office cannot edit community B's household by naming its flat near the
    border; the refusal names the row, not the household."""
    home = make_household(session, *NEAR_A2_IN_B1, building="15", room="1")
    session.flush()
    lon, lat = NEAR_B1_IN_A2
    data = csv_file([row_of(client, world, home, reader="admin_b", lon=lon, lat=lat)])
    before = household_count(session)
    response = reimport(client, world, data)
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert error["row"] == 2
    assert "may not edit" in error["detail"]
    assert str(home.id) not in response.json["detail"] + error["detail"]
    assert B1 not in error["detail"]
    assert household_count(session) == before
    assert stored(session, home).grid_id == world.grids[B1].id


def test_a_row_matching_a_household_of_a_grid_not_yours_is_refused(client, session, world):
    home = make_household(session, *NEAR_A1_IN_A2, building="16", room="1")
    session.flush()
    data = csv_file([row_of(client, world, home, lon=NEAR_A2_IN_A1[0], lat=NEAR_A2_IN_A1[1])])
    response = reimport(client, world, data, user="worker_a1")
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert error["row"] == 2 and "may not edit" in error["detail"]
    assert stored(session, home).grid_id == world.grids[A2].id


def test_the_default_mode_still_refuses_a_registered_households_row(client, session, world):
    home = world.households[A1][1]
    data = csv_file([row_of(client, world, home, members=4)])
    for mode in (None, "create"):
        response = reimport(client, world, data, mode=mode)
        assert response.status_code == 422
        assert f"household {home.id}" in response.json["errors"][0]["detail"]
    assert stored(session, home).members == 1


def test_an_unknown_mode_is_422_naming_it(client, world):
    response = reimport(client, world, csv_file([]), mode="upsert")
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "mode" in response.json["errors"]["query"]


def test_an_update_replayed_by_its_idempotency_key_changes_nothing_more(client, session, world):
    home = world.households[A1][1]
    data = csv_file([row_of(client, world, home, members=7)])
    first = reimport(client, world, data, **{"Idempotency-Key": "register-2026-12"})
    again = reimport(client, world, data, **{"Idempotency-Key": "register-2026-12"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert (
        again.json
        == first.json
        == {"created": 0, "updated": 1, "unchanged": 0, "by_grid": {}, **HEADER_ON_ROW_1}
    )
    assert updates_audited(session) == [home.id]


# --- a spreadsheet's rounding ------------------------------------------------------------------
# Excel keeps 15 significant digits: a point stored as 116.40250000000002 comes back 116.4025
# from a register saved in it. Points within SAME_POINT_DEG (~1 cm) are one point.


def excel_rounded(value: float) -> float:
    return float(f"{value:.15g}")


def test_a_point_a_spreadsheet_rounded_is_the_stored_point_and_is_kept(client, session, world):
    lon, lat = centre(A1, dx=0.00021, dy=0.0013)
    home = make_household(session, lon + 1e-14, lat + 1e-14, building="12", room="101")
    before = session.execute(
        select(func.ST_X(Household.location), func.ST_Y(Household.location)).where(
            Household.id == home.id
        )
    ).one()
    assert excel_rounded(before[0]) != before[0]  # the case: 17 digits stored
    row = row_of(client, world, home, lon=excel_rounded(before[0]), lat=excel_rounded(before[1]))
    response = reimport(client, world, csv_file([row]))
    assert response.status_code == 201, response.json
    assert (response.json["updated"], response.json["unchanged"]) == (0, 1)
    members = reimport(client, world, csv_file([[*row[:8], 6, *row[9:]]]))
    assert (members.json["updated"], members.json["unchanged"]) == (1, 0)
    after = session.execute(
        select(func.ST_X(Household.location), func.ST_Y(Household.location)).where(
            Household.id == home.id
        )
    ).one()
    assert tuple(after) == tuple(before)  # not moved by 1e-14 with the members' edit


def test_a_point_two_centimetres_off_is_a_move(client, session, world):
    home = make_household(session, *centre(A1, dx=0.00023, dy=0.0013), building="12", room="102")
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    row = row_of(client, world, home, lon=body["lon"] + 2e-7)
    response = reimport(client, world, csv_file([row]))
    assert (response.json["updated"], response.json["unchanged"]) == (1, 0)


# Saved as CSV, Excel writes each number as its column shows it: a General column too narrow
# for 116.40251234 writes 116.4025. A coordinate of 4 decimals or more that is the stored one
# rounded so is the stored one (4 decimals: ~5 m, within what a phone places a home to).


def test_a_point_a_narrow_column_showed_with_fewer_decimals_is_the_stored_point(
    client, session, world
):
    home = make_household(
        session, *centre(A1, dx=0.000213456, dy=0.001312345), building="12", room="103"
    )
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    for decimals in (6, 5, 4):
        shown = row_of(
            client,
            world,
            home,
            lon=float(f"{body['lon']:.{decimals}f}"),
            lat=float(f"{body['lat']:.{decimals}f}"),
        )
        response = reimport(client, world, csv_file([shown]))
        assert response.status_code == 201, response.json
        assert (response.json["updated"], response.json["unchanged"]) == (0, 1), decimals
    moved = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    assert (moved["lon"], moved["lat"]) == (body["lon"], body["lat"])


def test_a_point_of_few_decimals_that_is_not_the_stored_point_rounded_is_a_move(
    client, session, world
):
    """Three decimals (~50 m) can be the next building: a move, as is a point of four
    decimals other than the stored one rounded (a pin set again by hand)."""
    home = make_household(
        session, *centre(A1, dx=0.000213456, dy=0.001312345), building="12", room="104"
    )
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    three = row_of(client, world, home, lon=round(body["lon"], 3), lat=round(body["lat"], 3))
    assert (reimport(client, world, csv_file([three])).json["updated"]) == 1
    home_again = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    other = row_of(
        client, world, home, lon=round(home_again["lon"] + 0.0001, 4), lat=home_again["lat"]
    )
    assert (reimport(client, world, csv_file([other])).json["updated"]) == 1


def test_a_registered_household_at_its_rounded_point_is_refused_as_a_repeat(client, session, world):
    """The create mode's duplicate check: the register saved in Excel and imported again
    without mode=update adds nobody."""
    lon, lat = centre(A1, dx=0.00025, dy=0.0013)
    home = make_household(session, lon + 1e-14, lat + 1e-14, building="12", room="103")
    body = client.get(f"/api/v1/households/{home.id}", headers=world.auth("admin_a")).json
    row = row_of(
        client, world, home, lon=excel_rounded(body["lon"]), lat=excel_rounded(body["lat"])
    )
    before = household_count(session)
    response = reimport(client, world, csv_file([row]), mode=None)
    assert response.status_code == 422
    assert f"already registered as household {home.id}" in response.json["detail"]
    assert household_count(session) == before


# --- an address as Excel and clerks spell it ----------------------------------------------------
# Excel opens a CSV's 0502 as the number 502 and saves it so; clerks type 3 号楼 or 3号楼. The
# same flat, spelled so, was not found: an update import registered it a second time.


def spelled(row: list, **address) -> list:
    """A register row with its building, unit, floor or room spelled otherwise."""
    columns = dict(zip(("building", "unit", "floor", "room"), row[:4], strict=True))
    return [*{**columns, **address}.values(), *row[4:]]


def test_a_room_excel_saved_without_its_leading_zero_updates_its_household(client, session, world):
    home = make_household(session, *centre(A1, dy=0.002), building="3", unit="01", room="0502")
    session.flush()
    row = spelled(row_of(client, world, home, members=4), unit="1", room="502")
    before = household_count(session)
    response = reimport(client, world, csv_file([row]))
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["updated"]) == (0, 1)
    assert household_count(session) == before
    household = stored(session, home)
    assert (household.unit, household.room, household.members) == ("01", "0502", 4)


def test_a_room_written_with_a_leading_zero_updates_the_household_stored_without(
    client, session, world
):
    home = make_household(session, *centre(A1, dy=0.002), building="3", unit="1", room="503")
    session.flush()
    row = spelled(row_of(client, world, home, members=5), building="03", room="0503")
    response = reimport(client, world, csv_file([row]))
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["updated"]) == (0, 1)
    assert (stored(session, home).room, stored(session, home).members) == ("503", 5)


def test_rooms_differing_by_more_than_leading_zeros_are_different_households(
    client, session, world
):
    """502 and 5020, 0 and no room at all, are not one flat."""
    lon, lat = centre(A1, dy=0.002)
    home = make_household(session, lon, lat, building="3", unit="1", room="502")
    bare = make_household(session, lon, lat, building="3", unit="1", room="")
    session.flush()
    rows = [
        spelled(row_of(client, world, home), room="5020"),
        spelled(row_of(client, world, bare), room="0"),
    ]
    response = reimport(client, world, csv_file(rows))
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["unchanged"]) == (2, 0)
    assert (stored(session, home).room, stored(session, bare).room) == ("502", "")


def test_a_registered_flat_without_its_leading_zero_is_refused_as_a_repeat(client, session, world):
    """The create mode's duplicate check: the register saved in Excel and imported again adds
    nobody."""
    home = make_household(session, *centre(A1, dy=0.002), building="3", unit="1", room="0504")
    session.flush()
    before = household_count(session)
    response = reimport(
        client, world, csv_file([spelled(row_of(client, world, home), room="504")]), mode=None
    )
    assert response.status_code == 422
    assert f"already registered as household {home.id}" in response.json["errors"][0]["detail"]
    assert household_count(session) == before


def test_two_rows_of_one_flat_spelled_with_and_without_a_leading_zero_are_refused(
    client, session, world
):
    lon, lat = centre(A2, dy=0.002)
    rows = [
        ["45", "1", "5", "0502", lon, lat, "", "", "", "", ""],
        ["45", "1", "5", "502", lon, lat, "", "", "", "", ""],
    ]
    before = household_count(session)
    for mode in ("update", None):
        response = reimport(client, world, csv_file(rows), mode=mode)
        assert response.status_code == 422, response.json
        [error] = response.json["errors"]
        assert error["row"] == 3 and "repeats row 2" in error["detail"]
    assert household_count(session) == before


def test_spaces_inside_an_address_part_do_not_make_another_household(client, session, world):
    """3 号楼, 3号楼 and 3　号楼 (the ideographic space of a Chinese input method) are one
    building; 1 单元 is 1单元."""
    home = make_household(
        session, *centre(A1, dy=0.002), building="3号楼", unit="1单元", room="601"
    )
    session.flush()
    rows = [
        spelled(row_of(client, world, home, members=3), building="3 号楼", unit="1\u3000单元"),
    ]
    response = reimport(client, world, csv_file(rows))
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["updated"]) == (0, 1)
    assert stored(session, home).members == 3


def test_a_household_stored_spelled_otherwise_before_is_found_by_its_address(
    client, session, world
):
    """Households registered before full-width digits and spaces were normalised (７号楼,
    3 号楼 stored as typed) are the flats a register now spells 7号楼 and 3号楼."""
    lon, lat = centre(A1, dy=0.0025)
    full_width = make_household(session, lon, lat, building="７号楼", unit="１", room="７０１")
    spaced = make_household(session, lon, lat, building="3 号楼", unit="2\u3000单元", room="702")
    session.flush()
    rows = [
        spelled(
            row_of(client, world, full_width, members=2), building="7号楼", unit="1", room="701"
        ),
        spelled(row_of(client, world, spaced, members=2), building="3号楼", unit="2单元"),
    ]
    response = reimport(client, world, csv_file(rows))
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["updated"]) == (0, 2)
    assert (
        stored(session, full_width).building == "７号楼"
    )  # its spelling is not the import's to change


# --- phones a spreadsheet read as numbers -------------------------------------------------------
# A landline is written 01065123456 in the exported CSV; Excel opens the column as numbers and
# saves 1065123456, as it does with a phone typed as a number in a workbook. An update re-import
# of that file changed every landline to the number without its area code's 0.
def landline(session, building: str, phone: str = "01065123456") -> Household:
    home = make_household(session, *centre(A1, dy=0.0018), building=building, phone=phone)
    session.flush()
    return home


def test_a_landline_a_spreadsheet_saved_without_its_leading_zero_is_unchanged(
    client, session, world
):
    home = landline(session, "51")
    response = reimport(client, world, csv_file([row_of(client, world, home, phone="1065123456")]))
    assert response.status_code == 201, response.json
    assert (response.json["updated"], response.json["unchanged"]) == (0, 1)
    assert stored(session, home).phone == "01065123456"
    assert updates_audited(session) == []


def test_a_landline_typed_as_a_number_in_a_workbook_is_unchanged(client, session, world):
    """A 4-digit area code (0571) without its 0: 11 digits, not a mobile's 1 first."""
    home = landline(session, "52", phone="057187654321")
    row = row_of(client, world, home, phone=57187654321)
    response = reimport(client, world, xlsx_file([row]))
    assert response.status_code == 201, response.json
    assert (response.json["updated"], response.json["unchanged"]) == (0, 1)
    assert stored(session, home).phone == "057187654321"


def test_a_row_changing_other_columns_keeps_the_landline_a_spreadsheet_shortened(
    client, session, world
):
    home = landline(session, "53")
    row = row_of(client, world, home, phone="1065123456", members=4)
    response = reimport(client, world, csv_file([row]))
    assert response.status_code == 201, response.json
    assert response.json["updated"] == 1
    household = stored(session, home)
    assert (household.members, household.phone) == (4, "01065123456")


def test_another_landline_without_its_leading_zero_is_refused(client, session, world):
    """Not the stored phone: the 0 a spreadsheet dropped is not ours to guess."""
    home = landline(session, "54")
    response = reimport(client, world, csv_file([row_of(client, world, home, phone="1087654321")]))
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "phone")
    assert "'01087654321'" in error["detail"] and "text" in error["detail"]
    assert stored(session, home).phone == "01065123456"


def test_a_new_row_of_a_landline_without_its_leading_zero_is_refused(client, session, world):
    new = ["55", "1", "1", "101", *centre(A2), "", "", "", "", "2087654321"]
    before = household_count(session)
    response = reimport(client, world, csv_file([new]))
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "phone")
    assert "'02087654321'" in error["detail"]
    assert household_count(session) == before


@pytest.mark.parametrize("phone", ["13812345678", "95588", "65123456", "010-87654321"])
def test_a_phone_that_is_no_landline_without_its_zero_is_a_change(client, session, world, phone):
    """A mobile, a service number, a local number, a number written with its dashes: taken."""
    home = landline(session, "56")
    response = reimport(client, world, csv_file([row_of(client, world, home, phone=phone)]))
    assert response.status_code == 201, response.json
    assert response.json["updated"] == 1
    assert stored(session, home).phone == phone
