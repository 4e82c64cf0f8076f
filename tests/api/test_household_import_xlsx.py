"""Household import of XLSX registers as Excel and WPS make them: merged cells and formulas."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from openpyxl import Workbook
from openpyxl.utils.cell import get_column_letter
from sqlalchemy import func, select

from api.models import Household
from api.services import household_files
from api.services.household_files import HouseholdReader
from tests.factories import A1, centre

HEADER = ["楼栋", "单元", "楼层", "房号", "经度", "纬度"]


def workbook(rows, *, merges=(), header=HEADER) -> Workbook:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    for cells in merges:
        sheet.merge_cells(cells)
    return book


def saved(book: Workbook, rewrite=lambda xml: xml) -> bytes:
    """The workbook's bytes, its sheet's XML passed through `rewrite`."""
    made = io.BytesIO()
    book.save(made)
    out = io.BytesIO()
    with zipfile.ZipFile(made) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for part in src.infolist():
            data = src.read(part.filename)
            if part.filename == "xl/worksheets/sheet1.xml":
                data = rewrite(data)
            dst.writestr(part.filename, data)
    return out.getvalue()


def households(rooms, building="7号楼"):
    """Rows of one building, one household a room, all at A1's centre."""
    lon, lat = centre(A1)
    return [[building if n == 0 else None, "1", "3", r, lon, lat] for n, r in enumerate(rooms)]


def read(data: bytes) -> tuple[list[tuple[int, dict]], list[tuple[int, str | None, str]]]:
    reader = HouseholdReader(io.BytesIO(data), "register.xlsx")
    rows = list(reader)
    return rows, [(e.row, e.column, e.detail) for e in reader.errors]


def upload(client, world, data: bytes, name: str = "登记表.xlsx"):
    return client.post(
        "/api/v1/households/import",
        data={"file": (io.BytesIO(data), name)},
        headers=world.auth("admin_a"),
        content_type="multipart/form-data",
    )


def household_count(session) -> int:
    return session.scalar(select(func.count(Household.id)))


# --- merged cells ----------------------------------------------------------------------------


def test_a_building_merged_over_several_households_is_each_households_building(
    client, session, world
):
    rooms = ["M301", "M302", "M303", "M304"]
    response = upload(client, world, saved(workbook(households(rooms), merges=["A2:A5"])))
    assert response.status_code == 201, response.json
    assert response.json["created"] == 4
    buildings = session.scalars(select(Household.building).where(Household.room.in_(rooms))).all()
    assert buildings == ["7号楼"] * 4


def test_a_merge_in_any_column_fills_every_row_it_spans():
    lon, lat = centre(A1)
    rows = [["7号楼", "2", "5", "501", lon, lat], ["7号楼", None, None, "502", None, None]]
    parsed, problems = read(saved(workbook(rows, merges=["B2:B3", "C2:C3", "E2:E3", "F2:F3"])))
    assert problems == []
    second = parsed[1][1]
    assert (second["unit"], second["floor"], second["lon"], second["lat"]) == ("2", "5", lon, lat)


def test_a_merge_across_columns_gives_its_value_to_its_first_column_only():
    """Unit and floor merged into one block over two rows: the unit is read in each row, the
    floor stays empty (no column takes another column's value)."""
    lon, lat = centre(A1)
    rows = [["7号楼", "2单元", None, "501", lon, lat], ["7号楼", None, None, "502", lon, lat]]
    parsed, problems = read(saved(workbook(rows, merges=["B2:C3"])))
    assert problems == []
    assert [(v["unit"], v["floor"]) for _, v in parsed] == [("2单元", ""), ("2单元", "")]


def test_a_header_merged_across_columns_names_its_first_column_only():
    lon, lat = centre(A1)
    header = ["楼栋", None, "房号", "经度", "纬度"]  # 楼栋 over A1:B1 (building and its suffix)
    rows = [["7", "号楼", "501", lon, lat]]
    parsed, problems = read(saved(workbook(rows, merges=["A1:B1"], header=header)))
    assert problems == []
    assert parsed[0][1]["building"] == "7"


def test_a_header_of_one_column_is_422_listing_the_missing_columns_not_a_title(client, world):
    book = Workbook()
    book.active.append(["楼栋"])
    book.active.append(["7号楼"])
    response = upload(client, world, saved(book))
    assert response.status_code == 422
    assert response.json["detail"].startswith("Missing column(s): lon, lat.")


def test_rows_a_merge_spans_past_the_last_household_stay_blank(client, world):
    rows = households(["301", "302"]) + [[None] * 6, [None] * 6]
    response = upload(client, world, saved(workbook(rows, merges=["A2:A5"])))
    assert response.status_code == 201, response.json
    assert response.json["created"] == 2


def test_merged_ranges_are_found_once_whatever_the_read_block(monkeypatch):
    monkeypatch.setattr(household_files, "SCAN_BLOCK", 97)
    merges = [f"A{2 + 3 * n}:A{4 + 3 * n}" for n in range(40)]
    rows = []
    for n in range(40):
        rows += households([f"{n}01", f"{n}02", f"{n}03"], building=f"{n}号楼")
    data = saved(workbook(rows, merges=merges))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        part = archive.open("xl/worksheets/sheet1.xml")
        found, formulas = household_files._scan_merges(part)
    assert found == [(2 + 3 * n, 4 + 3 * n, 0) for n in range(40)]
    assert not formulas
    parsed, problems = read(data)
    assert problems == []
    assert [v["building"] for _, v in parsed] == [f"{n // 3}号楼" for n in range(120)]


def test_a_sheet_declaring_too_many_merged_ranges_is_422_and_writes_nothing(
    client, session, world, monkeypatch
):
    monkeypatch.setattr(household_files, "MAX_MERGED_RANGES", 3)
    before = household_count(session)
    rows = households(["301", "302", "303", "304", "305", "306", "307", "308"])
    data = saved(workbook(rows, merges=["A2:A3", "A4:A5", "A6:A7", "A8:A9"]))
    response = upload(client, world, data)
    assert response.status_code == 422
    assert "more than 3 merged ranges" in response.json["detail"]
    assert household_count(session) == before


# --- sheets as other programs write them ------------------------------------------------------


@pytest.mark.parametrize("declared", [b"A1", b"A1:F3"])
def test_every_row_is_read_whatever_size_the_sheet_declares(declared):
    """Some exporters write the sheet's <dimension> as A1, or as it was before rows were added;
    openpyxl's read-only mode stops at the declared size: the header lost its columns ("Missing
    column(s)") or the households under the declared last row were dropped without a word."""
    lon, lat = centre(A1)
    rows = [["7号楼", "1", "3", room, lon, lat] for room in ("D301", "D302", "D303", "D304")]
    rows.append(["7号楼", "1", "3", "D305", lon, "x"])
    sized = saved(
        workbook(rows),
        lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="' + declared + b'"', xml),
    )
    parsed, problems = read(sized)
    assert [values["room"] for _, values in parsed] == ["D301", "D302", "D303", "D304"]
    assert problems == [(6, "lat", "lat 'x' is not a number")]


def _with_row(row: bytes) -> bytes:
    """A one-household register whose sheet ends with `row` (a few KB in all)."""
    return saved(
        workbook(households(["301"])),
        lambda xml: xml.replace(b"</sheetData>", row + b"</sheetData>"),
    )


@pytest.mark.parametrize(
    ("row", "said"),
    [
        # openpyxl yields an empty row for each row number missing up to the last <row r=…>:
        # a 5 KB workbook declaring row 999,999,999 kept a worker reading ~30 minutes (here,
        # one row past Excel's last, read to its end and refused only for its missing point).
        (b'<row r="1048577"><c r="A1048577" t="inlineStr"><is><t>Z</t></is></c></row>',
         ("row 1048577", "1,048,576")),
        # openpyxl makes a row as wide as its last cell's column: a cell in column XFE (one
        # past Excel's last, XFD) was refused only as a row of more than 200 columns, and one
        # in column ZZZZZZ would have made a row of 321 million cells.
        (b'<row r="3"><c r="XFE3" t="inlineStr"><is><t>Z</t></is></c></row>', ("XFE3", "XFD")),
    ],
    ids=["row-beyond-excels-last", "column-beyond-excels-last"],
)  # fmt: skip
def test_a_cell_beyond_excels_last_row_or_column_is_422_saying_so(
    client, session, world, row, said
):
    """Found by the byte scan, before openpyxl reads up to it."""
    before = household_count(session)
    response = upload(client, world, _with_row(row))
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    for words in said:
        assert words in response.json["detail"]
    assert household_count(session) == before


# --- formulas ----------------------------------------------------------------------------------


def test_a_formula_with_no_computed_value_refuses_its_row_naming_the_cell(client, session, world):
    """openpyxl writes a formula without its result: `data_only` read it as an empty cell, so
    the row was "building is required", or took a default, without saying why."""
    before = household_count(session)
    rows = households(["301", "302"])
    rows[0][0] = "7号楼"
    rows[1][0] = "=A2"
    response = upload(client, world, saved(workbook(rows)))
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert (error["row"], error["column"]) == (3, "building")
    assert error["detail"].startswith("A3 holds a formula with no computed value")
    assert "open and save the file in Excel or WPS" in error["detail"]
    assert household_count(session) == before


def test_a_formula_with_a_computed_value_is_read_as_its_value():
    """Excel and WPS store a formula's last result beside it (`<v>`): that is the value."""
    rows = households(["301", "302"])
    rows[1][0] = "=A2"
    cached = b'<c r="A3" t="str"><f>A2</f><v>7\xe5\x8f\xb7\xe6\xa5\xbc</v></c>'

    def computed(xml: bytes) -> bytes:
        assert b'<c r="A3"><f>A2</f><v /></c>' in xml
        return xml.replace(b'<c r="A3"><f>A2</f><v /></c>', cached)

    parsed, problems = read(saved(workbook(rows), computed))
    assert problems == []
    assert [v["building"] for _, v in parsed] == ["7号楼", "7号楼"]


def test_a_formula_whose_computed_value_is_empty_reads_as_empty():
    rows = households(["301"])
    rows[0][1] = '=IF(1,"","x")'

    def computed(xml: bytes) -> bytes:
        old = b'<c r="B2"><f>IF(1,"","x")</f><v /></c>'.replace(b'"', b"&quot;")
        if old not in xml:
            old = b'<c r="B2"><f>IF(1,"","x")</f><v /></c>'
        assert old in xml
        return xml.replace(old, b'<c r="B2" t="str"><f>IF(1,"","x")</f><v></v></c>')

    parsed, problems = read(saved(workbook(rows), computed))
    assert problems == []
    assert parsed[0][1]["unit"] == ""


def test_a_formula_with_no_computed_value_in_a_column_the_import_does_not_read_is_ignored():
    lon, lat = centre(A1)
    header = [*HEADER, "备注"]
    rows = [["7号楼", "1", "3", "301", lon, lat, '=D2&"室"']]
    parsed, problems = read(saved(workbook(rows, header=header)))
    assert problems == []
    assert parsed[0][1]["room"] == "301"


def test_a_formula_with_no_computed_value_under_a_merge_names_the_merged_cell():
    rows = households(["301", "302"], building='="7号楼"')
    parsed, problems = read(saved(workbook(rows, merges=["A2:A3"])))
    assert parsed == []
    assert [(row, column) for row, column, _ in problems] == [(2, "building"), (3, "building")]
    assert all(detail.startswith("A2 holds a formula") for _, _, detail in problems)


NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


@pytest.mark.parametrize(
    ("cells", "uncomputed"),
    [
        (b'<c r="B2"><f>A2</f><v>3</v></c>', []),
        (b'<c r="B2"><f>A2</f></c>', ["B2"]),
        (b'<c r="B2"><f>A2</f><v></v></c>', ["B2"]),
        (b'<c r="B2" t="str"><f>A2</f><v></v></c>', []),  # computed: an empty string
        (
            b'<c r="B2"><f t="shared" ref="B2:B3" si="0">A2</f><v>1</v></c>'
            b'<c r="B3"><f t="shared" si="0"/></c>',
            ["B3"],
        ),
        (b'<c r="C2"><f>A2</f><v> </v></c><c><f>A2</f></c>', ["C2", "D2"]),
    ],
    ids=["computed", "no value", "empty value", "empty string", "shared", "no reference"],
)
def test_formulas_with_no_computed_value_are_found_in_the_sheet(cells, uncomputed):
    xml = b'<worksheet %s><sheetData><row r="2">%s</row></sheetData></worksheet>' % (NS, cells)
    _, candidate = household_files._scan_merges(io.BytesIO(xml))
    found = household_files._scan_formulas(io.BytesIO(xml)) if candidate else []
    names = [f"{get_column_letter((cell & 0xFFFF) + 1)}{cell >> 16}" for cell in found]
    assert names == uncomputed


def test_a_sheet_of_too_many_formulas_with_no_computed_value_is_422(client, world, monkeypatch):
    monkeypatch.setattr(household_files, "MAX_UNCOMPUTED_FORMULAS", 2)
    rows = households(["301", "302", "303"])
    for row in rows:
        row[1] = "=1+1"
    response = upload(client, world, saved(workbook(rows)))
    assert response.status_code == 422
    assert (
        "more than 2 formulas with no computed value (the first in B2)" in (response.json["detail"])
    )


def merged_register(rows: int) -> bytes:
    """`rows` households of ten to a building, the building column merged over each ten (the
    ranges written into the sheet's XML), and a formula nobody computed in a column the import
    does not read."""
    lon, lat = centre(A1)
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append([*HEADER, "备注"])
    for n in range(rows):
        sheet.append([f"{n // 10}号楼" if n % 10 == 0 else None, "1", "3", str(n), lon, lat, "=1"])
    ranges = b"".join(
        b'<mergeCell ref="A%d:A%d"/>' % (2 + 10 * n, 11 + 10 * n) for n in range(rows // 10)
    )
    tail = b'<mergeCells count="%d">%s</mergeCells>' % (rows // 10, ranges)
    return saved(book, lambda xml: xml.replace(b"</sheetData>", b"</sheetData>" + tail))


def peak_reading(data: bytes) -> tuple[int, int]:
    """Rows read and the peak of memory allocated while reading them."""
    import tracemalloc

    tracemalloc.start()
    try:
        count = sum(1 for _ in HouseholdReader(io.BytesIO(data), "register.xlsx"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def plain_register(rows: int) -> bytes:
    """The same households, the building in every row: no merge, no formula."""
    lon, lat = centre(A1)
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append([*HEADER, "备注"])
    for n in range(rows):
        sheet.append([f"{n // 10}号楼", "1", "3", str(n), lon, lat, None])
    return saved(book)


def test_merges_and_formulas_add_little_memory_to_reading_a_register():
    """The sheet is scanned as a stream (its XML of 8,000 rows would be ~10 MB as a tree);
    what the scans keep is 800 ranges and 8,000 formulas' positions, 8 bytes each."""
    peak_reading(plain_register(10))  # openpyxl's lazy imports, outside the measure
    plain, plain_peak = peak_reading(plain_register(8_000))
    merged, merged_peak = peak_reading(merged_register(8_000))
    assert plain == merged == 8_000
    assert merged_peak - plain_peak < 1_000_000, (plain_peak, merged_peak)


def test_the_demo_districts_chinese_register_is_read_without_a_problem(tmp_path):
    """fixtures/export.py writes the demo's XLSX with its own Chinese words: one of them (重点关注,
    special care, ~1% of households) was not a word the import knew, so the demo's own register
    was refused."""
    from fixtures import demo

    demo.write_demo(tmp_path, 7, "zh")
    with (tmp_path / "households.xlsx").open("rb") as stream:
        reader = HouseholdReader(stream, "households.xlsx")
        rows = list(reader)
    assert reader.errors == []
    assert any("special_care" in values["tags"] for _, values in rows)


# An OLE2 compound file: what Excel 97-2003 (.xls) and WPS (.et) save, and what Excel wraps a
# password-protected .xlsx in.
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)


@pytest.mark.parametrize("name", ["登记表.xls", "登记表.xlsx", "登记表.csv"])
def test_an_excel_97_2003_or_password_protected_workbook_is_422_saying_how_to_save_it(
    client, session, world, name
):
    """Found by a review: an .xls register (Excel 97-2003, still common in offices) was
    refused as "The file is binary, not CSV text.", which says nothing of what to do."""
    before = household_count(session)
    response = upload(client, world, OLE2, name)
    assert response.status_code == 422
    assert "Excel 97-2003" in response.json["detail"]
    assert "password" in response.json["detail"]
    assert household_count(session) == before


# --- XLSX escapes (_xHHHH_) ------------------------------------------------------------------


def test_an_escaped_character_beyond_the_basic_plane_reads_as_that_character(
    client, session, world
):
    """_xHHHH_ escapes a UTF-16 code unit (ECMA-376 ST_Xstring): a character beyond the basic
    plane is escaped as its two surrogates, which read together as the character. Read one by
    one they were two lone surrogates, which no text column can store (a 500)."""
    lon, lat = centre(A1)
    book = workbook([["_xD842__xDFB7_号楼", "1", "3", "301", lon, lat]])
    response = upload(client, world, saved(book))
    assert response.status_code == 201, response.json
    stored = session.scalar(select(Household.building).order_by(Household.id.desc()).limit(1))
    assert stored == "\U00020bb7号楼"


def test_a_lone_escaped_surrogate_is_kept_as_the_text_it_is(client, session, world):
    """A surrogate escaped without its other half is no character: it is kept as the text it
    is, as an escape of no character (read as a lone surrogate, no text column could store it:
    a 500)."""
    lon, lat = centre(A1)
    response = upload(client, world, saved(workbook([["_xD842_号楼", "1", "3", "301", lon, lat]])))
    assert response.status_code == 201, response.json
    stored = session.scalar(select(Household.building).order_by(Household.id.desc()).limit(1))
    assert stored == "_xD842_号楼"


# --- which sheet -------------------------------------------------------------------------------


def sheets(*named: tuple[str, list[list], str]) -> bytes:
    """A workbook of these sheets (title, rows, state), in this order."""
    book = Workbook()
    book.remove(book.active)
    for title, rows, state in named:
        sheet = book.create_sheet(title)
        sheet.sheet_state = state
        for row in rows:
            sheet.append(row)
    if all(state != "visible" for _, _, state in named[:1]):
        book.active = next(i for i, (_, _, s) in enumerate(named) if s == "visible")
    made = io.BytesIO()
    book.save(made)
    return made.getvalue()


NOTES = [["填表说明"], ["1. 楼栋必填"], ["2. 经度、纬度为WGS-84坐标"]]


def test_the_register_is_read_from_its_sheet_behind_a_sheet_of_notes(client, session, world):
    """A street office's template opens with a sheet of instructions (填表说明), or hides one of
    the drop-down lists (字典) in front: the first sheet was read, and the file refused as
    missing its columns."""
    before = household_count(session)
    data = sheets(
        ("字典", [["楼栋", "经度", "纬度"], ["类型", "住宅", "商铺"]], "hidden"),
        ("填表说明", NOTES, "visible"),
        ("住户信息", [HEADER, *households(["S101"]), *households(["S102"])], "visible"),
    )
    response = upload(client, world, data)
    assert response.status_code == 201, response.json
    assert response.json["created"] == 2
    assert household_count(session) == before + 2


def test_registers_on_several_sheets_are_refused_naming_them_and_nothing_is_imported(
    client, session, world
):
    """A register kept a sheet per building (1号楼, 2号楼 …) imported the first sheet's
    households and said nothing of the others': a 201, and the rest of the register missing."""
    before = household_count(session)
    data = sheets(
        ("1号楼", [HEADER, *households(["S201"], building="1号楼")], "visible"),
        ("2号楼", [HEADER, *households(["S202"], building="2号楼")], "visible"),
    )
    response = upload(client, world, data)
    assert response.status_code == 422, response.json
    assert "1号楼" in response.json["detail"] and "2号楼" in response.json["detail"]
    assert household_count(session) == before
