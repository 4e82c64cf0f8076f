"""Household import of the cells a clerk's register holds once Excel or WPS has saved it: phones
shown as numbers, digits typed full-width."""

from __future__ import annotations

import csv
import io

from tests.api.test_household_import_xlsx import household_count, upload
from tests.factories import A1, centre

HEADER = ["楼栋", "单元", "楼层", "房号", "经度", "纬度", "电话"]


def csv_bytes(rows, header=HEADER, encoding="utf-8-sig") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode(encoding)


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
