"""Where a register's header is: below a title, over two rows, and what the import leaves unread.

Registers exported from the street office's systems open with a title (幸福社区住户登记表), a line
of 填报单位 and 日期, a blank line; some have two header rows, a group heading such as 房屋信息
over 楼栋, 单元 and 房号 with the other headings merged down over both rows. Templates handed out
to be filled in put notes under the header: how to fill each column in (必填, 选填, 例：7号楼)
and a sample household marked 示例.
"""

from __future__ import annotations

import csv
import io

from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import select

from api.cli import main
from api.models import Household
from tests.api.test_household_import_xlsx import household_count, read, saved, upload
from tests.factories import A1, centre

HEADER = ["楼栋", "单元", "楼层", "房号", "经度", "纬度"]
PREAMBLE = [
    ["幸福社区住户信息登记表"],
    ["填报单位：幸福社区居委会", None, None, "填报日期：2026年11月"],
    [],
]


def sheet(rows, merges=()) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    for cells in merges:
        book.active.merge_cells(cells)
    return saved(book)


def csv_bytes(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def upload_csv(client, world, data: bytes):
    return upload(client, world, data, "登记表.csv")


def rooms(session, *names) -> list[tuple[str, str | None, str]]:
    found = session.execute(
        select(Household.building, Household.unit, Household.room, Household.kind)
        .where(Household.room.in_(names))
        .order_by(Household.room)
    )
    return [tuple(r) for r in found]


# --- a title above the header ------------------------------------------------------------------


def test_a_title_merged_across_the_columns_above_the_header_is_skipped(client, session, world):
    data = sheet(
        [["幸福社区住户登记表"], HEADER, ["7号楼", "1", "3", "T301", *centre(A1)]],
        merges=["A1:F1"],
    )
    response = upload(client, world, data)
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["header_row"]) == (1, 2)
    assert rooms(session, "T301") == [("7号楼", "1", "T301", "residence")]


def test_a_title_a_line_of_who_filled_it_in_and_a_blank_line_are_skipped(client, session, world):
    rows = [*PREAMBLE, HEADER, ["7号楼", "1", "3", "T302", *centre(A1)]]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["header_row"]) == (1, 4)
    assert response.json["ignored_columns"] == []


def test_a_rows_problem_is_named_by_its_row_in_the_sheet_under_a_title(client, session, world):
    before = household_count(session)
    rows = [*PREAMBLE, HEADER, ["7号楼", "1", "3", "T303", *centre(A1)], ["", "1", "3", "T304"]]
    response = upload(client, world, sheet(rows))
    assert response.status_code == 422
    assert [(e["row"], e["column"]) for e in response.json["errors"]][0] == (6, "building")
    assert household_count(session) == before


def test_a_header_merged_down_into_the_households_under_a_title_fills_nothing():
    """A range anchored in the header row reaching into the rows below fills nothing, wherever
    the header is; a range anchored in a household's row still fills the rows it spans."""
    lon, lat = centre(A1)
    rows = [
        ["幸福社区住户登记表"],
        [*HEADER, "类型"],
        ["7号楼", "1", "3", "301", lon, lat, None],
        [None, "1", "3", "302", lon, lat, None],
    ]
    parsed, problems = read(sheet(rows, merges=["A1:G1", "G2:G3", "A3:A4"]))
    assert problems == []
    assert [(n, v["building"], v["kind"]) for n, v in parsed] == [
        (3, "7号楼", "residence"),
        (4, "7号楼", "residence"),
    ]


def test_no_header_in_the_first_ten_rows_is_422_saying_where_it_was_looked_for(client, world):
    rows = [["幸福社区住户登记表"]] + [[]] * 9 + [HEADER, ["7号楼", "1", "3", "T305", *centre(A1)]]
    response = upload(client, world, sheet(rows))
    assert response.status_code == 422
    detail = response.json["detail"]
    assert detail.startswith("Missing column(s): building, lon, lat.")
    assert "in one of the first 10 rows" in detail


# --- two header rows ---------------------------------------------------------------------------


def two_row_register(households) -> bytes:
    """序号 and 类型 merged down over both header rows; 房屋地址 over 楼栋 … 房号, 位置 over
    经度 and 纬度; the building merged down over its households."""
    return sheet(
        [
            ["幸福社区住户登记表"],
            ["序号", "房屋地址", None, None, None, "位置", None, "类型"],
            [None, "楼栋", "单元", "楼层", "房号", "经度", "纬度", None],
            *households,
        ],
        merges=["A1:H1", "A2:A3", "B2:E2", "F2:G2", "H2:H3", "B4:B5"],
    )


def test_two_header_rows_are_one_header(client, session, world):
    lon, lat = centre(A1)
    data = two_row_register(
        [[1, "9号楼", "2", "5", "T501", lon, lat, "商铺"], [2, None, "2", "5", "T502", lon, lat]]
    )
    response = upload(client, world, data)
    assert response.status_code == 201, response.json
    assert response.json["header_row"] == 3
    assert response.json["ignored_columns"] == ["序号"]
    # 类型 (merged over both header rows) names its column and fills no household's kind.
    assert rooms(session, "T501", "T502") == [
        ("9号楼", "2", "T501", "business"),
        ("9号楼", "2", "T502", "residence"),
    ]


def test_two_header_rows_in_a_csv_name_a_column_in_either_row(client, session, world):
    lon, lat = centre(A1)
    rows = [
        ["房屋地址", "", "", "位置", "", "类型", "人数"],
        ["楼栋", "单元", "房号", "经度", "纬度", "", ""],
        ["9号楼", "3", "T601", lon, lat, "住宅", "4"],
    ]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert (response.json["header_row"], response.json["ignored_columns"]) == (2, [])
    household = session.scalar(select(Household).where(Household.room == "T601"))
    assert (household.building, household.unit, household.members) == ("9号楼", "3", 4)


def test_a_first_household_row_is_not_taken_for_a_second_header_row():
    lon, lat = centre(A1)
    parsed, problems = read(sheet([HEADER, ["7号楼", "1", "3", "301", lon, lat]]))
    assert problems == []
    assert [(n, v["room"]) for n, v in parsed] == [(2, "301")]


# --- what the import leaves unread ------------------------------------------------------------


def test_the_columns_the_import_does_not_read_are_named_in_its_answer(client, world):
    lon, lat = centre(A1)
    rows = [
        ["序号", *HEADER, "户主", "备注"],
        [1, "7号楼", "1", "3", "T701", lon, lat, "王某", "新迁入"],
    ]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert response.json["ignored_columns"] == ["序号", "户主", "备注"]


def test_the_command_says_where_the_header_was_and_which_columns_it_did_not_read(
    app, world, tmp_path
):
    path = tmp_path / "登记表.csv"
    rows = [["幸福社区住户登记表"], [*HEADER, "备注"], ["7号楼", "1", "3", "T801", *centre(A1)]]
    path.write_bytes(csv_bytes(rows))
    with app.app_context():
        result = CliRunner().invoke(main, ["import", "households", str(path)])
    assert result.exit_code == 0, result.output
    assert "header on row 2: the rows above it were skipped" in result.output
    assert "columns not read: 备注" in result.output


# --- a template's notes under the header -------------------------------------------------------


def test_a_templates_row_of_hints_under_the_header_is_skipped(client, session, world):
    rows = [
        ["序号", *HEADER, "备注"],
        ["", "（必填）", "选填", "必填", "必填", "例：116.4025", "如：39.9225", "选填"],
        [1, "7号楼", "1", "3", "N101", *centre(A1), ""],
    ]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["note_rows"]) == (1, [2])
    assert rooms(session, "N101") == [("7号楼", "1", "N101", "residence")]


def test_a_sample_household_marked_in_the_template_is_not_registered(client, session, world):
    """The sample's cells are all valid: read as a household, it was registered as one."""
    lon, lat = centre(A1)
    data = sheet(
        [
            ["序号", *HEADER],
            ["示例", "1号楼", "1", "1", "N000", lon, lat],
            [1, "7号楼", "1", "3", "N102", lon + 0.0002, lat],
        ]
    )
    response = upload(client, world, data)
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["note_rows"]) == (1, [2])
    assert rooms(session, "N000", "N102") == [("7号楼", "1", "N102", "residence")]


def test_a_household_noted_like_a_hint_is_a_household(client, session, world):
    """Only rows of nothing but hints, or marked as a sample, are notes; and only before the
    first household: a household's 备注 may begin 注：, and a later row is read as written."""
    lon, lat = centre(A1)
    rows = [
        [*HEADER, "备注"],
        ["7号楼", "1", "3", "N103", lon, lat, "注：独居老人"],
        ["（必填）", "", "", "", "", "", ""],
    ]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 422
    assert response.json["errors"][0]["row"] == 3
    rows.pop()
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert (response.json["created"], response.json["note_rows"]) == (1, [])


def test_the_command_says_which_rows_under_the_header_it_took_for_notes(app, world, tmp_path):
    path = tmp_path / "登记表.csv"
    rows = [
        HEADER,
        ["必填", "选填", "选填", "必填", "必填", "必填"],
        ["7号楼", "1", "3", "N104", *centre(A1)],
    ]
    path.write_bytes(csv_bytes(rows))
    with app.app_context():
        result = CliRunner().invoke(main, ["import", "households", str(path)])
    assert result.exit_code == 0, result.output
    assert "row 2 under the header: notes of the template, not read" in result.output


# --- other usual names of the columns ---------------------------------------------------------


def test_columns_under_their_other_usual_names_are_read(client, session, world):
    lon, lat = centre(A1)
    rows = [
        ["楼号", "单元号", "层", "门牌号", "longitude", "latitude", "手机", "家庭人口", "关怀标签"],
        ["11号楼", "2", "6", "T901", lon, lat, "13911112222", "3", "独居"],
    ]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert response.json["ignored_columns"] == []
    home = session.scalar(select(Household).where(Household.room == "T901"))
    assert (home.building, home.unit, home.floor, home.members) == ("11号楼", "2", "6", 3)
    assert (home.phone, home.tags) == ("13911112222", ["living_alone"])


def test_headings_a_template_marks_required_or_optional_name_their_columns(client, session, world):
    """Templates mark their headings: *楼栋, 楼栋＊, 房号（必填）, 电话(选填), the hint on a second
    line of the cell. Such a file was refused as missing its building or point, and a column
    marked optional was left unread, its phones dropped."""
    lon, lat = centre(A1)
    rows = [
        ["*楼栋", "单元\n（选填）", "楼层", "房号（必填）", "＊经度", "纬度*", "电话(选填)"],
        ["11号楼", "2", "6", "T905", lon, lat, "13911113333"],
    ]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert response.json["ignored_columns"] == []
    home = session.scalar(select(Household).where(Household.room == "T905"))
    assert (home.building, home.unit, home.phone) == ("11号楼", "2", "13911113333")


def test_a_column_of_its_own_name_wins_over_another_of_its_usual_names(client, session, world):
    rows = [[*HEADER, "电话", "手机"], ["7号楼", "1", "3", "T902", *centre(A1), "010-1", "139"]]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert response.json["ignored_columns"] == ["手机"]
    assert session.scalar(select(Household.phone).where(Household.room == "T902")) == "010-1"


def test_two_usual_names_of_one_column_are_422_naming_both(client, session, world):
    before = household_count(session)
    rows = [[*HEADER, "手机", "联系电话"], ["7号楼", "1", "3", "T903", *centre(A1), "1", "2"]]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 422
    assert "phone is named more than once" in response.json["detail"]
    assert "7 (手机) and 8 (联系电话)" in response.json["detail"]
    assert household_count(session) == before


def test_coordinates_headed_with_another_datum_are_not_read_as_wgs84(client, world):
    rows = [["楼栋", "高德经度", "高德纬度"], ["7号楼", *centre(A1)]]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 422
    assert response.json["detail"].startswith("Missing column(s): lon, lat.")


def test_a_room_column_headed_by_two_of_its_names_is_read(client, session, world):
    """Registers head the room column 门牌号/室 or 房号/门牌号: the column was left unread, each
    household stored without its room (all the flats of a stair one address)."""
    lon, lat = centre(A1)
    for heading, room in (("门牌号/室", "T911"), ("房号／门牌号", "T912"), ("房间号、室", "T913")):
        rows = [["楼栋", "单元", heading, "经度", "纬度"], ["11号楼", "2", room, lon, lat]]
        response = upload_csv(client, world, csv_bytes(rows))
        assert response.status_code == 201, (heading, response.json)
        assert response.json["ignored_columns"] == [], heading
        assert rooms(session, room) == [("11号楼", "2", room, "residence")], heading


def test_a_heading_naming_two_different_columns_is_not_read(client, session, world):
    """楼栋/单元 holds which? Neither is guessed: the column is named among those not read."""
    rows = [[*HEADER, "楼栋/单元"], ["7号楼", "1", "3", "T914", *centre(A1), "7-1"]]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert response.json["ignored_columns"] == ["楼栋/单元"]
    assert rooms(session, "T914") == [("7号楼", "1", "T914", "residence")]


def test_a_room_headed_by_two_names_yields_to_the_column_of_its_own_name(client, session, world):
    rows = [[*HEADER, "门牌号/室"], ["7号楼", "1", "3", "T915", *centre(A1), "幸福路12号"]]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert response.json["ignored_columns"] == ["门牌号/室"]
    assert rooms(session, "T915") == [("7号楼", "1", "T915", "residence")]


def test_a_room_headed_by_two_names_yields_to_another_of_the_rooms_usual_names(
    client, session, world
):
    """室号 beside 门牌号/室 imported before (门牌号/室 unread): it is not refused as a room
    named twice now."""
    rows = [
        [*HEADER[:3], "室号", *HEADER[4:], "门牌号/室"],
        ["7号楼", "1", "3", "T916", *centre(A1), "12号"],
    ]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert response.json["ignored_columns"] == ["门牌号/室"]
    assert rooms(session, "T916") == [("7号楼", "1", "T916", "residence")]


def test_a_column_headed_by_a_word_that_names_the_room_only_when_joined_stays_unread(
    client, session, world
):
    """门牌号 (the street number, in some registers) beside 室: 室 alone is not read as the
    room, so the file imports as it did, not refused for naming the room twice."""
    rows = [
        [*HEADER[:3], "门牌号", *HEADER[4:], "室"],
        ["7号楼", "1", "3", "T917", *centre(A1), "5"],
    ]
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 201, response.json
    assert response.json["ignored_columns"] == ["室"]
    assert rooms(session, "T917") == [("7号楼", "1", "T917", "residence")]


# --- rows holding nothing but their serial number ----------------------------------------------


def test_rows_holding_only_their_serial_number_are_empty_rows(client, session, world):
    """A template numbers its rows in advance (序号 1 … 50) and the clerk fills in some: the
    numbered empty rows under them refused the file, each 'building is required'."""
    lon, lat = centre(A1)
    for make, send, first, second in (
        (csv_bytes, upload_csv, "S101", "S102"),
        (sheet, upload, "S111", "S112"),
    ):
        rows = [
            ["序号", *HEADER, "备注"],
            [1, "7号楼", "1", "3", first, lon, lat, ""],
            [2, "", "", "", "", "", "", ""],
            [3, "7号楼", "1", "3", second, lon, lat, ""],
            *[[n, "", "", "", "", "", "", ""] for n in range(4, 51)],
        ]
        before = household_count(session)
        response = send(client, world, make(rows))
        assert response.status_code == 201, response.json
        assert (response.json["created"], response.json["note_rows"]) == (2, [])
        assert household_count(session) == before + 2


def test_a_building_merged_down_over_numbered_empty_rows_adds_no_household(client, session, world):
    """A merge drawn past the last household fills no blank row; nor one holding only its
    serial number."""
    lon, lat = centre(A1)
    rows = [
        ["序号", *HEADER],
        [1, "7号楼", "1", "3", "S121", lon, lat],
        [2, None, "1", "3", "S122", lon, lat],
        *[[n, None, None, None, None, None, None] for n in range(3, 6)],
    ]
    response = upload(client, world, sheet(rows, merges=["B2:B6"]))
    assert response.status_code == 201, response.json
    assert response.json["created"] == 2
    assert rooms(session, "S121", "S122") == [
        ("7号楼", "1", "S121", "residence"),
        ("7号楼", "1", "S122", "residence"),
    ]


def test_a_row_with_its_serial_number_and_some_data_still_names_what_it_lacks(
    client, session, world
):
    rows = [
        ["序号", *HEADER],
        [1, "7号楼", "1", "3", "S103", *centre(A1)],
        [2, "", "1", "4", "S104", "", ""],
    ]
    before = household_count(session)
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert [(e["row"], e["column"]) for e in response.json["errors"]] == [
        (3, "building"),
        (3, "lon"),
        (3, "lat"),
    ]
    assert household_count(session) == before


def test_a_file_of_numbered_empty_rows_holds_no_households(client, session, world):
    rows = [["序号", *HEADER], *[[n, "", "", "", "", "", ""] for n in range(1, 6)]]
    before = household_count(session)
    response = upload_csv(client, world, csv_bytes(rows))
    assert response.status_code == 422
    assert response.json["detail"] == "The file holds no household rows."
    assert household_count(session) == before


def test_buildings_headed_幢_are_read(client, session, world):
    """Registers of Zhejiang and Jiangsu number buildings by 幢 (幢号, 楼幢号): such a file was
    refused as missing its building."""
    lon, lat = centre(A1)
    for building, room in (("幢号", "T911"), ("楼幢", "T912"), ("幢", "T913")):
        rows = [[building, "房号", "经度", "纬度", "电话"], ["3幢", room, lon, lat, "13911114444"]]
        response = upload_csv(client, world, csv_bytes(rows))
        assert response.status_code == 201, response.json
        assert response.json["ignored_columns"] == []
        home = session.scalar(select(Household).where(Household.room == room))
        assert (home.building, home.phone) == ("3幢", "13911114444")
