"""Household import as a stream: chunk after chunk, all or nothing, in the file's encoding."""

from __future__ import annotations

import codecs
import io

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from api import errors
from api.cli import main
from api.models import Household
from api.services import households as household_service
from api.services.household_files import FileProblem, HouseholdReader
from tests.factories import A1, centre

HEADER = "building,unit,floor,room,lon,lat,kind,occupancy,members,tags,phone\n"


def register(rows: int, *, bad_row: int | None = None, phone: str = "") -> bytes:
    lon, lat = centre(A1)
    lines = [HEADER]
    for n in range(rows):
        kind = "castle" if n == bad_row else "residence"
        lines.append(f"9,1,{n % 30 + 1},{n + 1},{lon},{lat},{kind},owner,1,,{phone}\n")
    return "".join(lines).encode()


def count(session) -> int:
    return session.scalar(select(func.count(Household.id)))


def test_a_file_longer_than_a_chunk_is_imported_whole(session, world, monkeypatch):
    monkeypatch.setattr(household_service, "IMPORT_CHUNK", 50)
    before = count(session)
    result = household_service.import_households(session, None, register(175))
    assert (result.created, result.by_grid) == (175, {A1: 175})
    assert count(session) == before + 175


def test_a_bad_row_after_chunks_were_written_leaves_nothing_behind(session, world, monkeypatch):
    monkeypatch.setattr(household_service, "IMPORT_CHUNK", 50)
    before = count(session)
    with pytest.raises(errors.Unprocessable) as caught:
        household_service.import_households(session, None, register(175, bad_row=160))
    assert [(e["row"], e["column"]) for e in caught.value.errors] == [(162, "kind")]
    assert count(session) == before


def test_progress_is_reported_per_chunk_up_to_the_file_size(session, world, monkeypatch):
    monkeypatch.setattr(household_service, "IMPORT_CHUNK", 50)
    data = register(120)
    seen = []
    household_service.import_households(
        session, None, data, progress=lambda done, total: seen.append((done, total))
    )
    assert len(seen) == 3
    assert seen[-1] == (len(data), len(data))


def test_copied_phones_are_encrypted_at_rest_and_read_back(session, world):
    household_service.import_households(session, None, register(2, phone="13900001111"))
    stored = session.execute(
        text("SELECT phone FROM households WHERE phone IS NOT NULL ORDER BY id DESC LIMIT 1")
    ).scalar_one()
    assert stored.startswith("v1:") and "13900001111" not in stored
    newest = session.scalar(select(Household).order_by(Household.id.desc()).limit(1))
    assert newest.phone == "13900001111"


def test_a_gb18030_file_is_read_in_its_encoding():
    data = ("楼栋,经度,纬度\n" + "七号楼,116.4,39.9\n").encode("gb18030")
    rows = list(HouseholdReader(io.BytesIO(data)))
    assert rows[0][1]["building"] == "七号楼"


def test_a_tab_separated_register_as_excel_saves_text_is_read():
    """Found by a review: a register saved by Excel as 文本文件(制表符分隔) (GBK, tabs, a title
    line above the header) was refused as "Missing column(s): building, lon, lat", though
    every column was there."""
    data = (
        "幸福社区住户登记表\t\t\t\n"
        "楼栋\t单元\t房号\t经度\t纬度\t电话\n"
        "七号楼\t1\t502\t116.4\t39.9\t010-6512 3456\n"
        "八号楼,东\t2\t101\t116.4\t39.9\t\n"
    ).encode("gbk")
    reader = HouseholdReader(io.BytesIO(data), "登记表.txt")
    rows = [values for _, values in reader]
    assert reader.errors == []
    assert [(r["building"], r["unit"], r["room"], r["phone"]) for r in rows] == [
        ("七号楼", "1", "502", "010-6512 3456"),
        ("八号楼,东", "2", "101", None),
    ]


def test_a_comma_separated_register_with_a_tab_in_a_cell_is_read_by_its_commas():
    data = "登记表\t2026年,,\n楼栋,经度,纬度\n七号楼,116.4,39.9\t\n".encode()
    [(_, row)] = list(HouseholdReader(io.BytesIO(data)))
    assert (row["building"], row["lat"]) == ("七号楼", 39.9)


def test_utf8_that_turns_invalid_late_in_the_file_is_read_as_gb18030():
    head = "building,lon,lat\n" + "a,116.4,39.9\n" * 20000
    data = head.encode() + "七号楼,116.4,39.9\n".encode("gb18030")
    rows = list(HouseholdReader(io.BytesIO(data)))
    assert rows[-1][1]["building"] == "七号楼"


def test_the_command_streams_a_file_from_disk(app, session, world, tmp_path):
    path = tmp_path / "register.csv"
    path.write_bytes(register(30))
    with app.app_context():
        result = CliRunner().invoke(main, ["import", "households", str(path)])
    assert result.exit_code == 0, result.output
    assert "30 households imported" in result.output
    # Audited as created at the console (an operator, no user), every household once.
    from api.models import AuditEntry

    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "create")).all()
    assert sum(len(e.resource_ids) for e in entries) == 30
    assert {(e.user_id, e.path) for e in entries} == {
        (None, "gridwork import households register.csv")
    }


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8], ids=["no BOM", "BOM"])
def test_utf8_text_with_a_character_cut_in_half_is_refused_naming_its_line(bom):
    """A UTF-8 register with one bad byte (a system that cut a field at a byte limit, halving
    a character) was read whole as GB18030: with English headings every Chinese address was
    stored as mojibake (东区七号 as 涓滃尯涓冨彿), with Chinese ones the file was "missing"
    its columns. UTF-8 text, a BOM or many characters read as such before the bad byte, is not
    taken for GB18030: the 422 names the line."""
    good = "东区七号,116.4,39.9\n".encode()
    data = bom + b"building,lon,lat\n" + good * 50 + "八号楼".encode()[:-1] + b",116.4,39.9\n"
    with pytest.raises(FileProblem) as caught:
        list(HouseholdReader(io.BytesIO(data)))
    assert "UTF-8" in str(caught.value) and "line 52" in str(caught.value)


def test_a_gbk_register_whose_first_bytes_read_as_utf8_is_read_as_gb18030():
    """GBK's bytes for some characters are a valid UTF-8 character for a moment (涓 is E4 B8,
    and B0 after it completes one): a few such characters are no sign of UTF-8."""
    data = ("楼栋,经度,纬度\n" + "七号楼,116.4,39.9\n" * 3).encode("gbk")
    rows = list(HouseholdReader(io.BytesIO(data)))
    assert [values["building"] for _, values in rows] == ["七号楼"] * 3
