"""Exporting the register: the file a community edits and imports again with mode=update.

`GET /api/v1/households/export` gives the households one may register, in the import's columns
with Chinese headers and words, points to the full precision stored and phones in full. The
round trip is the contract: imported again the file changes nothing; an edited row edits its
household, and no other.
"""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from api.models import AuditEntry, Household
from tests.api.test_household_import_update import reimport
from tests.api.test_households import CHINESE
from tests.factories import A1, A2, B1, A, centre, make_household

HEADER = CHINESE  # the import's Chinese headers, in its order


def export(client, world, user="admin_a", **query):
    return client.get("/api/v1/households/export", query_string=query, headers=world.auth(user))


def rows_of(response) -> list[list]:
    if response.mimetype == "text/csv":
        return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    sheet = load_workbook(io.BytesIO(response.data), read_only=True).worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def grid_rooms(session, *codes) -> int:
    from api.models import Grid

    return session.scalar(
        select(func.count(Household.id))
        .join(Grid, Grid.id == Household.grid_id)
        .where(Grid.code.in_(codes))
    )


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_an_exported_register_imported_again_changes_nothing(client, session, world, fmt):
    make_household(
        session,
        *centre(A1, dy=0.0007),
        building="=1+1",  # a formula in a spreadsheet program: text here, both ways
        floor="-1",
        room="B1-2",
        kind="business",
        occupancy="tenant",
        members=4,
        tags=["living_alone", "low_income"],
        phone="+86 139 0000 1111",
    )
    response = export(client, world, format=fmt)
    assert response.status_code == 200, response.json
    total = grid_rooms(session, A1, A2)
    again = reimport(client, world, response.data)
    assert again.status_code == 201, again.json
    assert (again.json["created"], again.json["updated"]) == (0, 0)
    assert again.json["unchanged"] == total == len(rows_of(response)) - 1
    assert again.json["ignored_columns"] == []


def test_the_register_is_the_imports_columns_in_chinese_words(client, session, world):
    home = make_household(
        session,
        *centre(A2, dy=0.0011),
        building="9号楼",
        unit="2",
        floor="5",
        room="502",
        kind="business",
        occupancy="vacant",
        members=0,
        tags=["elderly_80", "disability"],
        phone="13911112222",
    )
    rows = rows_of(export(client, world))
    assert rows[0] == HEADER
    mine = next(r for r in rows if r[:4] == ["9号楼", "2", "5", "502"])
    point = select(func.ST_X(Household.location), func.ST_Y(Household.location))
    stored = session.execute(point.where(Household.id == home.id)).one()
    assert mine[4:6] == pytest.approx(list(stored), abs=1e-12)  # 15-16 digits of the double
    assert mine[6:] == ["商铺", "空置", 0, "高龄、残疾", "13911112222"]


def test_an_edited_row_edits_its_household_and_no_other(client, session, world):
    response = export(client, world, format="csv")
    rows = rows_of(response)
    edited = rows[1]
    edited[9] = "独居"  # its care tags
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    again = reimport(client, world, out.getvalue().encode("utf-8-sig"))
    assert again.status_code == 201, again.json
    assert (again.json["updated"], again.json["unchanged"]) == (1, len(rows) - 2)
    # The first row is grid A1's room 101 (the register is in grid and address order).
    assert (edited[3], edited[9]) == ("101", "独居")
    first = world.households[A1][0]
    assert session.scalar(select(Household.tags).where(Household.id == first.id)) == [
        "living_alone"
    ]
    others = select(Household.tags).where(
        Household.id.in_([h.id for h in world.households[A1] + world.households[A2]]),
        Household.id != first.id,
    )
    assert sorted(map(tuple, session.scalars(others))) == [()] * 4 + [("elderly_80",)]


def test_a_csv_exported_address_starting_with_a_quote_and_a_formula_comes_back_as_it_was(
    client, session, world
):
    """Found by a review: a building stored as '=1 (a quote, then what starts a formula) was
    written as it is, and the import, which takes a leading quote for the export's formula
    guard, read it back as =1: no longer the registered household, so an update import
    registered it again."""
    make_household(session, *centre(A1, dy=0.0011), building="'=1", floor="'-2")
    response = export(client, world, format="csv")
    again = reimport(client, world, response.data)
    assert again.status_code == 201, again.json
    assert (again.json["created"], again.json["updated"]) == (0, 0)


def test_a_cell_that_starts_like_a_formula_is_text_in_either_format(client, session, world):
    make_household(session, *centre(A1, dy=0.0009), building='=HYPERLINK("x")', floor="-1")
    sheet = load_workbook(io.BytesIO(export(client, world).data)).worksheets[0]
    cells = [row for row in sheet.iter_rows() if row[0].value == '=HYPERLINK("x")']
    assert [(c.data_type, c.value) for c in cells[0][:3]] == [
        ("s", '=HYPERLINK("x")'),
        ("s", "1"),
        ("s", "-1"),
    ]
    text = export(client, world, format="csv").data.decode("utf-8-sig")
    assert '\'=HYPERLINK(""x"")' in text and ",'-1," in text


def test_a_landline_excel_saved_without_its_zero_comes_back_unchanged(client, session, world):
    """The CSV writes 01065123456; Excel opens the column as numbers and saves 1065123456 (no
    standard CSV cell keeps it text without a formula). Imported again it is the stored phone."""
    home = make_household(session, *centre(A1, dy=0.0013), building="21", phone="01065123456")
    text = export(client, world, format="csv").data.decode("utf-8-sig")
    assert ",01065123456\r\n" in text
    excel_saved = text.replace(",01065123456\r\n", ",1065123456\r\n")
    again = reimport(client, world, excel_saved.encode("utf-8-sig"))
    assert again.status_code == 201, again.json
    assert (again.json["created"], again.json["updated"]) == (0, 0)
    session.expire_all()
    assert session.get(Household, home.id).phone == "01065123456"


def test_the_workbooks_text_cells_are_formatted_as_text(client, session, world):
    """A phone typed over the exported one in Excel stays text (its 0 kept), as in a cell
    formatted 文本 / "@"; numbers (the point, members) stay numbers."""
    make_household(session, *centre(A1, dy=0.0013), building="22", phone="01065123456")
    sheet = load_workbook(io.BytesIO(export(client, world).data)).worksheets[0]
    [row] = [row for row in sheet.iter_rows() if row[0].value == "22"]
    assert (row[10].value, row[10].number_format) == ("01065123456", "@")
    assert row[3].number_format == "@"  # the room: 0502 typed stays 0502
    assert (row[4].data_type, row[4].number_format) == ("n", "General")


def test_a_text_that_reads_as_an_xlsx_escape_is_written_escaped_and_comes_back_as_it_was(
    client, session, world
):
    """XLSX text encodes characters as _xHHHH_ (ECMA-376 ST_Xstring): a building typed
    "_x0041_" was written as it is, which Excel shows as "A". It is written "_x005F_x0041_"
    (how Excel itself saves that text), and the import reads any _xHHHH_ back, so the register
    round-trips and a workbook Excel saved reads as Excel shows it."""
    make_household(session, *centre(A1, dy=0.0015), building="_x0041_号楼", floor="a_x000D_b")
    response = export(client, world)
    cells = [row[:3] for row in rows_of(response) if str(row[0]).endswith("号楼")]
    assert cells == [["_x005F_x0041_号楼", "1", "a_x005F_x000D_b"]]
    again = reimport(client, world, response.data)
    assert again.status_code == 201, again.json
    assert (again.json["created"], again.json["updated"]) == (0, 0)


# --- whose register ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "grids"), [("admin_a", (A1, A2)), ("leader_a", (A1, A2)), ("worker_a1", (A1,))]
)
def test_each_exports_the_households_they_may_register(client, session, world, user, grids):
    rows = rows_of(export(client, world, user=user, format="csv"))
    assert len(rows) - 1 == grid_rooms(session, *grids)


def test_one_grid_of_ones_own_and_a_grid_of_another_community_is_404(client, session, world):
    rows = rows_of(export(client, world, grid=A2, format="csv"))
    assert len(rows) - 1 == grid_rooms(session, A2)
    response = export(client, world, grid=B1)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_a_district_viewer_may_not_export_and_nothing_is_audited(client, session, world):
    before = session.scalar(select(func.count(AuditEntry.id)))
    response = export(client, world, user="viewer_110101")
    assert response.status_code == 403
    assert session.scalar(select(func.count(AuditEntry.id))) == before


def test_an_export_is_an_audit_entry_naming_every_household_it_holds(client, session, world):
    response = export(client, world)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="households-110101001001.xlsx"'
    )
    entry = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.id.desc())
    )
    exported = session.scalars(
        select(Household.id).where(Household.id.in_(entry.resource_ids))
    ).all()
    assert entry.resource == "household" and entry.user_id == world.users["admin_a"].id
    assert len(exported) == len(entry.resource_ids) == grid_rooms(session, A1, A2)
    assert "phone" in entry.fields and entry.path.startswith("/api/v1/households/export")
    listed = client.get("/api/v1/audit?action=export", headers=world.auth("admin_a")).json
    assert [e["action"] for e in listed] == ["export"]


def test_an_unknown_format_is_422(client, world):
    response = export(client, world, format="ods")
    assert response.status_code == 422
    assert "format" in response.json["errors"]["query"]


def test_an_empty_register_is_its_header(client, session, world):
    from sqlalchemy import delete

    session.execute(delete(Household))
    rows = rows_of(export(client, world))
    assert rows == [HEADER]


# --- the command: the same register, at the console ---------------------------------------------


def run(app, *args):
    from click.testing import CliRunner

    from api.cli import main

    with app.app_context():
        return CliRunner().invoke(main, [*args])


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_the_command_writes_the_register_the_update_import_takes_back(
    app, session, world, tmp_path, fmt
):
    out = tmp_path / f"register.{fmt}"
    result = run(app, "export", "households", "--community", A, "--format", fmt, "-o", str(out))
    assert result.exit_code == 0, result.output
    total = grid_rooms(session, A1, A2)
    assert f"{total} households written to {out}" in result.output
    again = run(app, "import", "households", "--update", str(out))
    assert again.exit_code == 0, again.output
    assert f"0 created, 0 updated, {total} unchanged" in again.output


def test_the_commands_export_is_audited_as_the_consoles(app, session, world, tmp_path):
    out = tmp_path / "a1.csv"
    result = run(app, "export", "households", "--community", A, "--grid", A1, "-o", str(out))
    assert result.exit_code == 0, result.output
    entry = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.id.desc())
    )
    assert (entry.user_id, entry.resource) == (None, "household")
    assert (
        len(entry.resource_ids) == grid_rooms(session, A1) == len(out.read_bytes().splitlines()) - 1
    )
    assert "phone" in entry.fields and entry.path.startswith("gridwork export households")


def test_the_commands_file_is_readable_by_its_owner_only(app, session, world, tmp_path):
    """The file holds every phone of the community in clear: not for the host's other
    accounts, whatever the operator's umask (022 makes files world-readable)."""
    import os
    import stat

    out = tmp_path / "register.csv"
    old = os.umask(0o022)
    try:
        result = run(app, "export", "households", "--community", A, "-o", str(out))
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "where",
    [
        ["--community", "110101009999"],
        ["--community", A, "--grid", B1],
        ["--community", A, "-o", "no-such-directory/register.xlsx"],
    ],
)
def test_an_unknown_community_or_a_grid_outside_it_writes_nothing(
    app, session, world, tmp_path, where
):
    out = tmp_path / "register.xlsx"
    before = session.scalar(select(func.count(AuditEntry.id)))
    if "-o" not in where:
        where = [*where, "-o", str(out)]
    result = run(app, "export", "households", *where)
    assert result.exit_code != 0
    assert "not found" in result.output or "No directory no-such-directory" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert session.scalar(select(func.count(AuditEntry.id))) == before


def test_a_file_the_command_cannot_write_is_one_line_and_audits_nothing(app, session, world):
    """Found by a review: a place the operator may not write to (a read-only mount, another
    account's directory, a full disk) ended the command with an OSError's traceback."""
    before = session.scalar(select(func.count(AuditEntry.id)))
    result = run(app, "export", "households", "--community", A, "-o", "/proc/register.csv")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "cannot write /proc/register.csv" in result.output
    assert session.scalar(select(func.count(AuditEntry.id))) == before


def test_a_room_excel_saved_as_a_date_refuses_its_row_and_registers_nothing(client, session, world):
    """Excel opens the exported CSV's room 1-2 as the date 2 January and saves it as 1月2日:
    imported again with mode=update, the row matched no household and registered the flat a
    second time, beside itself. Now the row is refused, naming the room."""
    make_household(session, *centre(A1, dy=0.0013), building="23", room="1-2")
    text = export(client, world, format="csv").data.decode("utf-8-sig")
    assert ",1-2," in text
    excel_saved = text.replace(",1-2,", ",1月2日,")
    before = grid_rooms(session, A1, A2)
    again = reimport(client, world, excel_saved.encode("gb18030"))
    assert again.status_code == 422, again.json
    [error] = again.json["errors"]
    assert error["column"] == "room" and "1月2日" in error["detail"]
    assert grid_rooms(session, A1, A2) == before


def test_a_household_registered_by_a_form_comes_back_unchanged(client, session, world):
    """A phone typed with a trailing space (a phone keyboard adds one after a suggestion) was
    stored so and exported so; the import reads the cell trimmed, so the untouched register
    imported again "updated" the household: its history, audit and visit figures said it
    changed."""
    lon, lat = centre(A1, dy=0.0017)
    body = {"building": "24", "room": "1", "lon": lon, "lat": lat, "phone": "13800138000 "}
    created = client.post("/api/v1/households", json=body, headers=world.auth("admin_a"))
    assert created.status_code == 201, created.json
    for fmt in ("csv", "xlsx"):
        again = reimport(client, world, export(client, world, format=fmt).data)
        assert again.status_code == 201, again.json
        assert (again.json["created"], again.json["updated"]) == (0, 0)


def excel_opened(text: str) -> bytes:
    """The workbook Excel saves of a CSV it opened (File › Save As › Excel Workbook): a cell
    that reads as a number is a number, any other text as it was shown, a leading ' and all
    (Excel takes a ' for a text prefix only when typed)."""
    from openpyxl import Workbook

    book = Workbook()
    for row in csv.reader(io.StringIO(text)):
        cells = []
        for cell in row:
            try:
                cells.append(float(cell) if cell.strip() else None)
            except ValueError:
                cells.append(cell)
        book.active.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_csv_saved_by_excel_as_a_workbook_comes_back_unchanged(client, session, world):
    """The CSV writes the floor -1 as '-1 and a phone +86 … as '+86 … (or Excel would run them
    as formulas); Excel shows that quote, and a workbook saved from it keeps it. The import took
    the quote off a CSV's cells only: the workbook's '-1 was another floor, and an update
    import registered the shop again beside itself."""
    lon, lat = centre(A1, dy=0.0019)
    make_household(session, lon, lat, building="25", floor="-1", phone="+86 139 0000 2222")
    text = export(client, world, format="csv").data.decode("utf-8-sig")
    assert ",'-1," in text and ",'+86 139 0000 2222\r\n" in text
    again = reimport(client, world, excel_opened(text))
    assert again.status_code == 201, again.json
    assert (again.json["created"], again.json["updated"]) == (0, 0)


def test_a_workbook_exported_address_starting_with_a_quote_and_a_formula_comes_back_as_it_was(
    client, session, world
):
    make_household(session, *centre(A1, dy=0.0011), building="'=1", floor="'-2")
    again = reimport(client, world, export(client, world, format="xlsx").data)
    assert again.status_code == 201, again.json
    assert (again.json["created"], again.json["updated"]) == (0, 0)


def test_a_household_registered_with_a_room_excel_made_comes_back_unchanged(client, session, world):
    """A room stored as 1月2日 before such cells were refused (or by a form): its own register
    row finds it, and imported again changes nothing; only a row that would register a flat
    of such an address is refused."""
    make_household(session, *centre(A1, dy=0.0021), building="26", room="1月2日")
    for fmt in ("csv", "xlsx"):
        again = reimport(client, world, export(client, world, format=fmt).data)
        assert again.status_code == 201, again.json
        assert (again.json["created"], again.json["updated"]) == (0, 0)


def test_mobiles_excel_saved_as_1_38e10_come_back_unchanged(client, session, world):
    """Excel opens the CSV's phone column as numbers and, the column too narrow, shows and saves
    a mobile as 1.38E+10: the export's CSV saved in Excel came back with every row refused.
    Where the stored phone is what Excel shortened, the row's phone is the stored one, kept."""
    home = make_household(session, *centre(A1, dy=0.0023), building="27", phone="13812345678")
    text = export(client, world, format="csv").data.decode("utf-8-sig")
    excel_saved = text.replace(",13812345678\r\n", ",1.38E+10\r\n")
    assert excel_saved != text
    again = reimport(client, world, excel_saved.encode("gb18030"))
    assert again.status_code == 201, again.json
    assert (again.json["created"], again.json["updated"]) == (0, 0)
    session.expire_all()
    assert session.get(Household, home.id).phone == "13812345678"


def test_a_shortened_phone_that_is_not_the_stored_one_refuses_its_row(client, session, world):
    """A phone changed in Excel is shortened too: which digits it had, nobody can tell."""
    make_household(session, *centre(A1, dy=0.0025), building="28", phone="13812345678")
    text = export(client, world, format="csv").data.decode("utf-8-sig")
    excel_saved = text.replace(",13812345678\r\n", ",1.39E+10\r\n")
    again = reimport(client, world, excel_saved.encode("utf-8-sig"))
    assert again.status_code == 422, again.json
    [error] = again.json["errors"]
    assert error["column"] == "phone" and "1.39E+10" in error["detail"]


def test_the_register_lists_a_buildings_flats_in_number_order_as_a_clerk_reads_them(
    client, session, world
):
    """Floor 2 before floor 10, room 201 before 1001, building 2 before 10 (sorted as text,
    1, 10, 1001 came before 2 and 201); a part with no number after those with one."""
    lon, lat = centre(A2, dx=0.001)
    for i, (building, floor, room) in enumerate(
        [
            ("10", "1", "101"),
            ("2", "10", "1001"),
            ("2", "2", "201"),
            ("2", "1", "101"),
            ("2", "1", "99"),
            ("2", "1", "A1"),
            ("商铺", "1", "1"),
        ]
    ):
        make_household(
            session, lon, lat + i * 0.0001, building=building, unit="7", floor=floor, room=room
        )
    session.flush()
    rows = rows_of(export(client, world, grid=A2))[1:]
    ours = [(r[0], r[2], r[3]) for r in rows if r[1] == "7"]
    assert ours == [
        ("2", "1", "99"),
        ("2", "1", "101"),
        ("2", "1", "A1"),
        ("2", "2", "201"),
        ("2", "10", "1001"),
        ("10", "1", "101"),
        ("商铺", "1", "1"),
    ]
