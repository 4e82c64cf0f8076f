"""Household import of the cells a clerk's register holds once Excel or WPS has saved it: phones
shown as numbers, digits typed full-width."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from api.models import Household
from tests.api.test_household_import_xlsx import household_count, upload
from tests.factories import A1, centre

HEADER = ["楼栋", "单元", "楼层", "房号", "经度", "纬度", "电话"]


def csv_bytes(rows, header=HEADER, encoding="utf-8-sig") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode(encoding)


ADDRESS = (Household.building, Household.unit, Household.floor, Household.room)


def stored(session, where, *columns) -> list[tuple]:
    """`columns` of the households `where` selects, as stored, by room."""
    query = select(*columns).where(where).order_by(Household.room)
    return [tuple(row) for row in session.execute(query).all()]


def test_a_phone_excel_saved_in_scientific_notation_is_named_not_stored(client, session, world):
    """Excel shows an 11-digit phone as 1.38E+10 and a CSV saved from it keeps only that: it was
    stored as the phone "1.38E+10" (and an update re-import wrote it over the real one)."""
    lon, lat = centre(A1)
    before = household_count(session)
    data = csv_bytes([["7号楼", "1", "3", "E301", lon, lat, "1.38E+10"]], encoding="gb18030")
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "phone")
    assert "1.38E+10" in error["detail"] and "text" in error["detail"]
    assert household_count(session) == before


@pytest.mark.parametrize(
    ("phone", "with_zero"),
    [("1065123456", "01065123456"), ("2087654321", "02087654321"), ("57187654321", "057187654321")],
)
def test_a_landline_a_spreadsheet_saved_without_its_leading_zero_is_named_not_stored(
    client, session, world, phone, with_zero
):
    """Excel reads 01065123456 as the number 1065123456, and a CSV saved from it keeps that: it
    was stored as the phone, a number no one can dial."""
    lon, lat = centre(A1)
    before = household_count(session)
    data = csv_bytes([["7号楼", "1", "3", "E302", lon, lat, phone]])
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "phone")
    assert f"'{with_zero}'" in error["detail"] and "text" in error["detail"]
    assert household_count(session) == before


def test_phones_that_are_no_landline_without_its_zero_are_stored_as_written(client, session, world):
    """Mobiles (11 digits, 1 first), service and local numbers, 400 numbers and any number
    written with a space, a dash or +86 are not a landline a spreadsheet shortened."""
    phones = [
        "13812345678",
        "95588",
        "12345",
        "65123456",
        "4008123123",
        "010-65123456",
        "0571 87654321",
        "+86 10 6512 3456",
        "01065123456",
    ]
    flats(client, world, "6号楼", [(phone, "") for phone in phones])
    stored_phones = [p for (p,) in stored(session, Household.building == "6号楼", Household.phone)]
    assert stored_phones == phones


def test_international_phones_that_cannot_be_a_landline_without_its_zero_are_stored_as_written(
    client, session, world
):
    """Written with 00, or all digits where no Chinese landline could be: a local number never
    begins with 0 or 1 (France's 33 6…, Japan's 81 3 1…), and after 010 or 02x it has at most
    8 digits (South Africa's 27 82…, 11 digits). They were refused as a landline that had lost
    its 0, and the clerk told to write '033612345678', a number no one can dial."""
    phones = ["0085291234567", "00442071234567", "33612345678", "81312345678", "27821234567"]
    flats(client, world, "5号楼", [(phone, "") for phone in phones])
    stored_phones = [p for (p,) in stored(session, Household.building == "5号楼", Household.phone)]
    assert stored_phones == phones


def test_an_international_phone_that_may_be_a_landline_is_refused_saying_how_to_write_it(
    client, session, world
):
    """85291234567 is a Hong Kong mobile, or Zunyi's 0852 9123 4567 with its 0 lost: not the
    import's guess. The refusal says how to write each: with its 0, or with + and its country
    code."""
    lon, lat = centre(A1)
    data = csv_bytes([["7号楼", "1", "3", "E305", lon, lat, "85291234567"]])
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "phone")
    assert "'085291234567'" in error["detail"]
    assert "'+85291234567'" in error["detail"] and "country code" in error["detail"]


def test_digits_typed_full_width_are_read_as_digits(client, session, world):
    """An input method left in full-width mode types ７号楼, ５０２ and １３８…: they were stored
    as typed, another building and room than 7号楼 502 (the repeat of a registered household
    not found, an update re-import creating a second one) and a phone no phone dials."""
    lon, lat = centre(A1)
    row = [
        "７号楼",
        "１",
        "３",
        "Ｆ５０２",
        f"{lon}".replace(".", "．"),
        lat,
        "１３８ ０００　０００００",
    ]
    response = upload(client, world, csv_bytes([row]), "登记表.csv")
    assert response.status_code == 201, response.json
    assert stored(session, Household.room == "F502", *ADDRESS) == [("7号楼", "1", "3", "F502")]
    phone = client.get(f"/api/v1/households?grid={A1}", headers=world.auth("admin_a")).json
    assert [h["phone"] for h in phone if h["room"] == "F502"] == ["138 000 00000"]


def test_an_address_typed_full_width_repeats_the_registered_one(client, session, world):
    lon, lat = centre(A1)
    first = upload(client, world, csv_bytes([["7号楼", "1", "3", "F503", lon, lat, ""]]), "a.csv")
    assert first.status_code == 201, first.json
    again = csv_bytes([["７号楼", "１", "３", "Ｆ５０３", lon, lat, ""]])
    response = upload(client, world, again, "b.csv")
    assert response.status_code == 422, response.json
    assert [e["row"] for e in response.json["errors"]] == [2]


def test_a_forms_address_typed_full_width_is_stored_as_an_import_stores_it(client, world):
    lon, lat = centre(A1, dy=0.001)
    body = {"building": "７号楼", "unit": "１", "room": "Ｆ５０４", "lon": lon, "lat": lat}
    response = client.post("/api/v1/households", json=body, headers=world.auth("admin_a"))
    assert response.status_code == 201, response.json
    assert (response.json["building"], response.json["unit"], response.json["room"]) == (
        "7号楼",
        "1",
        "F504",
    )


TAGGED = [*HEADER, "标签"]


def flats(client, world, building: str, phones_and_tags: list[tuple[str, str]]) -> None:
    """Import rooms 101, 102 … of `building` in grid A1 with these phones and tags: all taken."""
    lon, lat = centre(A1)
    rows = [
        [building, "1", "1", f"{101 + i}", lon, lat, phone, tags]
        for i, (phone, tags) in enumerate(phones_and_tags)
    ]
    response = upload(client, world, csv_bytes(rows, TAGGED), "登记表.csv")
    assert response.status_code == 201, response.json


def test_care_tags_as_registers_word_them_are_read(client, session, world):
    """Registers name the groups by the person: 低保户, 残疾人, 独居老人, 空巢老人, 高龄老人. They
    were refused row by row as unknown tags, though 低保, 残疾, 独居 were read."""
    tagged = [("", "低保户、残疾人"), ("", "独居老人，高龄老人"), ("", "空巢老人")]
    flats(client, world, "8号楼", tagged)
    tags = dict(stored(session, Household.building == "8号楼", Household.room, Household.tags))
    assert tags == {
        "101": ["low_income", "disability"],
        "102": ["living_alone", "elderly_80"],
        "103": ["living_alone"],
    }


def test_a_cell_saying_none_is_empty(client, session, world):
    """A clerk writes 无 (none), 暂无 or a dash where a household has no phone or no care tag: the
    phone 无 was stored as the phone (a worker dialled it), the tag refused the row."""
    flats(client, world, "9号楼", [("无", "无"), ("暂无", "/"), ("-", "—")])
    nine = stored(session, Household.building == "9号楼", Household.phone, Household.tags)
    assert nine == [(None, [])] * 3


def test_whole_numbers_a_program_wrote_as_decimals_are_read_as_written_in_a_workbook(
    client, session, world
):
    """A CSV from a database or pandas export writes 502 as 502.0 and a phone as
    13800000000.0: they were stored with the .0 (room 502.0, a phone no one can dial), where
    the same numbers in an XLSX are read as 502."""
    lon, lat = centre(A1)
    rows = [["10.0", "1.0", "3.0", "502.0", lon, lat, "13800000000.0"]]
    response = upload(client, world, csv_bytes(rows), "登记表.csv")
    assert response.status_code == 201, response.json
    assert stored(session, Household.building == "10", *ADDRESS) == [("10", "1", "3", "502")]
    listed = client.get(f"/api/v1/households?grid={A1}", headers=world.auth("admin_a")).json
    assert "13800000000" in [h["phone"] for h in listed]


def test_spaces_inside_an_address_part_are_stored_as_one_spelling(client, session, world):
    """3 号楼, 3　号楼 (the ideographic space) and 3号楼 were three buildings. A space beside a
    Chinese character is dropped; elsewhere (Block A) a run of spaces is one space."""
    lon, lat = centre(A1, dy=0.0005)
    rows = [
        ["3 号楼", "1\u3000单元", "5", "W501", lon, lat, ""],
        ["Block  A", "2 单元", "5", "W502", lon, lat, ""],
        ["幸福里 B 座", "1", "5", "W503", lon, lat, ""],
    ]
    response = upload(client, world, csv_bytes(rows), "登记表.csv")
    assert response.status_code == 201, response.json
    assert stored(session, Household.room.like("W50%"), *ADDRESS) == [
        ("3号楼", "1单元", "5", "W501"),
        ("Block A", "2单元", "5", "W502"),
        ("幸福里B座", "1", "5", "W503"),
    ]


def test_a_forms_address_with_spaces_is_stored_as_an_import_stores_it(client, world):
    lon, lat = centre(A1, dy=0.0015)
    body = {"building": "3 号\u3000楼", "unit": "1  单元", "room": "W504", "lon": lon, "lat": lat}
    response = client.post("/api/v1/households", json=body, headers=world.auth("admin_a"))
    assert response.status_code == 201, response.json
    assert (response.json["building"], response.json["unit"]) == ("3号楼", "1单元")
    patched = client.patch(
        f"/api/v1/households/{response.json['id']}",
        json={"building": "Block\u00a0\u00a0A"},
        headers=world.auth("admin_a"),
    )
    assert patched.status_code == 200, patched.json
    assert patched.json["building"] == "Block A"


def test_invisible_characters_in_an_address_cell_are_dropped(client, session, world):
    """A zero-width space pasted from a web page or a chat, a BOM at a cell's start, a word
    joiner: the clerk sees 7号楼 and cannot see what to correct, so they are dropped (as a
    form's are), not refused."""
    lon, lat = centre(A1, dy=0.0007)
    rows = [["\ufeff7号楼\u200b", "1\u2060", "3", "Z\u200c50\u200d1", lon, lat, ""]]
    response = upload(client, world, csv_bytes(rows), "登记表.csv")
    assert response.status_code == 201, response.json
    assert stored(session, Household.room == "Z501", *ADDRESS) == [("7号楼", "1", "3", "Z501")]


def test_a_building_of_invisible_characters_only_is_named_as_a_blank_one(client, session, world):
    lon, lat = centre(A1, dy=0.0007)
    before = household_count(session)
    rows = [["\u200b\ufeff", "1", "3", "Z502", lon, lat, ""]]
    response = upload(client, world, csv_bytes(rows), "登记表.csv")
    assert response.status_code == 422, response.json
    assert [(e["row"], e["column"]) for e in response.json["errors"]] == [(2, "building")]
    assert household_count(session) == before


def test_an_address_in_other_letter_case_or_with_invisible_characters_repeats_the_registered(
    client, session, world
):
    """f503 on the form, F503 on the door and in the register: one flat."""
    lon, lat = centre(A1, dy=0.0009)
    first = upload(client, world, csv_bytes([["A座", "1", "3", "F503", lon, lat, ""]]), "a.csv")
    assert first.status_code == 201, first.json
    before = household_count(session)
    again = csv_bytes(
        [["a座", "1", "3", "f503", lon, lat, ""], ["A座\u200b", "1", "3", "F503", lon, lat, ""]]
    )
    response = upload(client, world, again, "b.csv")
    assert response.status_code == 422, response.json
    assert [e["row"] for e in response.json["errors"]] == [2, 3]
    assert household_count(session) == before


def test_a_forms_address_is_stored_as_written_but_for_invisible_characters(client, world):
    lon, lat = centre(A1, dy=0.0019)
    body = {"building": "b座\u200b", "unit": "\ufeff1", "room": "f505", "lon": lon, "lat": lat}
    response = client.post("/api/v1/households", json=body, headers=world.auth("admin_a"))
    assert response.status_code == 201, response.json
    assert [response.json[k] for k in ("building", "unit", "room")] == ["b座", "1", "f505"]


@pytest.mark.parametrize(
    ("column", "cell"),
    [
        ("房号", "1月2日"),  # 1-2 (or 1/2) as Chinese Excel shows and saves the date
        ("房号", "2-Jan"),  # as English Excel does
        ("单元", "Jan-32"),  # 1-32: January 1932
        ("楼层", "2001/2/3"),  # 1-2-3
        ("楼栋", "2023年1月"),  # 2023-1
        ("房号", "1.23457E+11"),  # a room of 12 digits, shown as a number
    ],
)
def test_an_address_part_a_spreadsheet_turned_into_a_date_or_number_is_named_not_stored(
    client, session, world, column, cell
):
    """Excel opens a CSV's room 1-2 as the date 2 January and saves what it shows (1月2日,
    2-Jan); a 12-digit room as 1.23457E+11. It was stored as the room, and an update import
    of an exported register, saved in Excel, registered every such flat again beside itself."""
    lon, lat = centre(A1)
    before = household_count(session)
    row = {"楼栋": "7号楼", "单元": "1", "楼层": "3", "房号": "E303"} | {column: cell}
    data = csv_bytes([[*row.values(), lon, lat, ""]], encoding="gb18030")
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    names = {"楼栋": "building", "单元": "unit", "楼层": "floor", "房号": "room"}
    assert (error["row"], error["column"]) == (2, names[column])
    assert cell in error["detail"] and "text" in error["detail"]
    assert household_count(session) == before


def test_address_parts_that_only_resemble_a_date_are_stored_as_written(client, session, world):
    """What Excel leaves as typed (1-2-301, 3/F, 12E3, B1-2, 1001/2/3) is no date it made; nor
    is 12/3/2001 (building 12, unit 3, room 2001) as a program writes it: only the date as
    Chinese Excel shows it (2001/12/3) is refused."""
    lon, lat = centre(A1)
    rooms = ["1-2-301", "3/F", "12E3", "B1-2", "1单元2室", "5月楼", "12/3/2001", "1001/2/3"]
    data = csv_bytes([["7号楼", "1", "3", room, lon, lat, ""] for room in rooms])
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 201, response.json
    where = Household.building == "7号楼"
    assert sorted(r for (r,) in stored(session, where, Household.room)) == sorted(rooms)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("13800138000 ", "13800138000"),  # a phone keyboard's space after a suggestion
        ("１３８００１３８０００", "13800138000"),
        ("  010-65123456", "010-65123456"),
        ("无", None),
        ("-", None),
        ("", None),
    ],
)
def test_a_forms_phone_is_stored_as_an_import_stores_it(client, world, typed, stored):
    """A phone typed in a form was stored as typed, spaces, full-width digits and 无 and all:
    the register's export wrote it so, and imported again (mode=update) every such household
    was "updated" to the phone the import reads from the same cell."""
    lon, lat = centre(A1, dy=0.001)
    body = {"building": "7号楼", "room": "E501", "lon": lon, "lat": lat, "phone": typed}
    response = client.post("/api/v1/households", json=body, headers=world.auth("admin_a"))
    assert response.status_code == 201, response.json
    assert response.json["phone"] == stored
    changed = client.patch(
        f"/api/v1/households/{response.json['id']}",
        json={"phone": typed},
        headers=world.auth("admin_a"),
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["phone"] == stored


def test_a_forms_phone_excel_shortened_is_refused_as_an_imports_is(client, world):
    lon, lat = centre(A1, dy=0.001)
    body = {"building": "7号楼", "room": "E502", "lon": lon, "lat": lat, "phone": "1.38E+10"}
    response = client.post("/api/v1/households", json=body, headers=world.auth("admin_a"))
    assert response.status_code == 422, response.json
    assert "phone" in response.json["errors"]["json"]


def test_a_quote_opened_and_never_closed_is_named_by_its_row(client, session, world):
    """A cell that opens a quote (") and never closes it takes in every line after it; past
    the CSV reader's limit the 422 said only "field larger than field limit (131072)", naming
    no row, in a file of thousands."""
    lon, lat = centre(A1)
    rows = [["7号楼", "1", "3", f"Q{n}", lon, lat, ""] for n in range(1, 10_001)]
    text = io.StringIO()
    csv.writer(text).writerows([HEADER, *rows])
    lines = text.getvalue().splitlines(keepends=True)
    lines[3] = '"阳光花园' + lines[3]  # row 4: a quote the clerk typed, unclosed
    before = household_count(session)
    response = upload(client, world, "".join(lines).encode(), "登记表.csv")
    assert response.status_code == 422, response.json
    assert "row 4" in response.json["detail"].lower()
    assert household_count(session) == before


def test_a_character_a_gbk_csv_could_not_hold_is_named_not_stored_as_a_question_mark(
    client, session, world
):
    """Chinese Excel saves "CSV (逗号分隔)" in GBK, which lacks many rare characters (生僻字:
    the 䶮 of 䶮园小区, the 堃 of names): it writes "?" for each, and the address was stored as
    "?园小区1号楼", a building nobody can find, twice over once the clerk typed it again
    correctly. In a GBK file a "?" in an address part is that loss; it is named, nothing stored."""
    lon, lat = centre(A1)
    before = household_count(session)
    lost = "䶮园小区1号楼".encode("gbk", errors="replace").decode("gbk")
    assert lost == "?园小区1号楼"
    data = csv_bytes([[lost, "1", "3", "E304", lon, lat, ""]], encoding="gbk")
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "building")
    assert "CSV UTF-8" in error["detail"] and "?" in error["detail"]
    assert household_count(session) == before


def test_a_question_mark_typed_into_a_utf8_register_is_stored_as_written(client, session, world):
    """UTF-8 holds every character: a "?" there was typed, and is kept."""
    lon, lat = centre(A1)
    data = csv_bytes([["䶮园小区1号楼", "1", "3", "E305?", lon, lat, ""]])
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 201, response.json
    where = Household.building == "䶮园小区1号楼"
    assert stored(session, where, Household.room) == [("E305?",)]


def test_a_coordinate_with_an_underscore_is_not_a_number(client, session, world):
    """float() reads Python's digit separators: a longitude typed 1_16.4 was stored as 116.4."""
    _, lat = centre(A1)
    before = household_count(session)
    data = csv_bytes([["7号楼", "1", "3", "E301", "1_16.4", lat, ""]])
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "lon")
    assert error["detail"] == "lon '1_16.4' is not a number"
    assert household_count(session) == before


def test_members_written_with_an_exponent_is_not_a_whole_number(client, session, world):
    """float() reads an exponent: members written 1e2 were stored as 100."""
    lon, lat = centre(A1)
    before = household_count(session)
    header = [*HEADER, "人数"]
    data = csv_bytes([["7号楼", "1", "3", "E301", lon, lat, "", "1e2"]], header=header)
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "members")
    assert error["detail"] == "members '1e2' is not a whole number 0-100"
    assert household_count(session) == before


def test_a_refused_value_is_quoted_in_its_first_100_characters(client, session, world):
    """A row's problem quoted its value whole: 100 rows of 131,072-character cells made an
    answer of ~13 MB."""
    lon, lat = centre(A1)
    header = [*HEADER, "类型"]
    data = csv_bytes([["7号楼", "1", "3", "E301", lon, lat, "", "x" * 100_000]], header=header)
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert error["column"] == "kind"
    assert error["detail"].startswith("kind '" + "x" * 100 + "…' is not one of ")


def test_a_phone_cell_a_workbook_holds_as_a_date_is_named_not_stored(client, session, world):
    """A phone column Excel read as dates (a phone typed 2024-1-2, dates pasted over the
    phones): the row was stored with the phone "2024-01-02 00:00:00"."""
    from datetime import datetime

    from openpyxl import Workbook

    lon, lat = centre(A1)
    book = Workbook()
    book.active.append(HEADER)
    book.active.append(["7号楼", "1", "3", "E303", lon, lat, datetime(2024, 1, 2)])
    data = io.BytesIO()
    book.save(data)
    before = household_count(session)
    response = upload(client, world, data.getvalue(), "登记表.xlsx")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "phone")
    assert "date" in error["detail"] and "text" in error["detail"]
    assert household_count(session) == before


def test_a_phone_pasted_with_an_invisible_character_is_named_not_stored(client, session, world):
    """Pasted from a chat, 138<U+200B>1234 5678 was stored as written: dialled by nobody as
    typed, found by no search of its digits."""
    lon, lat = centre(A1)
    before = household_count(session)
    data = csv_bytes([["7号楼", "1", "3", "E304", lon, lat, "138\u200b12345678"]])
    response = upload(client, world, data, "登记表.csv")
    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (2, "phone")
    assert "U+200B" in error["detail"]
    assert household_count(session) == before


def test_a_forms_phone_with_an_invisible_character_is_a_422_naming_it(client, session, world):
    household = world.households[A1][0]
    before = household.phone
    response = client.patch(
        f"/api/v1/households/{household.id}",
        json={"phone": "\ufeff13812345678"},
        headers=world.auth("admin_a"),
    )
    assert response.status_code == 422, response.json
    assert "U+FEFF" in response.json["errors"]["json"]["phone"][0]
    session.refresh(household)
    assert household.phone == before
