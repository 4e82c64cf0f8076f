"""The fixture CLIs: files, exact headers, row counts, and progress on stderr."""

from __future__ import annotations

import csv
import json

import pytest
from openpyxl import load_workbook

from fixtures import demo, generate
from fixtures.export import CSV_HEADERS

ENGLISH_HEADERS = [
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
CHINESE_HEADERS = [
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


def read_csv(path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def read_xlsx(path) -> list[tuple]:
    wb = load_workbook(path, read_only=True)
    try:
        return list(wb.active.iter_rows(values_only=True))
    finally:
        wb.close()


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """The demo CLI's default output, written once for the tests that only read it."""
    out = tmp_path_factory.mktemp("demo")
    assert demo.main(["--out", str(out)]) == 0
    return out


def test_csv_headers_are_the_documented_english_ones():
    assert list(CSV_HEADERS) == ENGLISH_HEADERS


def test_generate_cli_writes_grids_and_households(tmp_path):
    assert generate.main(["--households", "1000", "--seed", "2", "--out", str(tmp_path)]) == 0
    grids = json.loads((tmp_path / "grids.geojson").read_text(encoding="utf-8"))
    rows = read_csv(tmp_path / "households.csv")
    assert len(grids["features"]) == 4
    assert rows[0] == ENGLISH_HEADERS
    assert len(rows) == 1 + 1000


def test_generate_cli_reports_progress_on_stderr(tmp_path, capsys):
    generate.main(["--households", "25000", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "10,000/25,000" in captured.err
    assert "25,000/25,000 (100%)" in captured.err


def test_generate_cli_csv_joins_tags_with_semicolons(tmp_path):
    generate.main(["--households", "3000", "--out", str(tmp_path)])
    rows = read_csv(tmp_path / "households.csv")[1:]
    multi = [r[9] for r in rows if ";" in r[9]]
    assert multi
    assert all(t for r in multi for t in r.split(";"))


def test_demo_cli_writes_the_three_import_files(demo_out):
    expected = len(demo.demo_district()["households"])
    assert len(json.loads((demo_out / "grids.geojson").read_text("utf-8"))["features"]) == 14
    assert len(read_csv(demo_out / "households.csv")) == 1 + expected
    assert len(read_xlsx(demo_out / "households.xlsx")) == 1 + expected


def test_demo_cli_prints_the_demo_password(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "write_demo", lambda out, seed, labels: demo.demo_district(seed))
    demo.main(["--out", str(tmp_path)])
    assert "demo-pass-1234" in capsys.readouterr().out


def test_demo_xlsx_has_the_chinese_headers_in_order(demo_out):
    assert list(read_xlsx(demo_out / "households.xlsx")[0]) == CHINESE_HEADERS


def test_demo_xlsx_uses_chinese_labels_by_default(demo_out):
    rows = read_xlsx(demo_out / "households.xlsx")[1:]
    assert {r[6] for r in rows} == {"住宅", "商铺"}
    assert {r[7] for r in rows} == {"自住", "出租", "空置"}
    assert all(isinstance(r[10], str) and len(r[10]) == 11 for r in rows)


def test_demo_xlsx_can_keep_the_english_codes(tmp_path):
    demo.main(["--out", str(tmp_path), "--xlsx-labels", "codes"])
    rows = read_xlsx(tmp_path / "households.xlsx")[1:]
    assert {r[6] for r in rows} == {"residence", "business"}


def test_demo_csv_matches_the_demo_rows(demo_out):
    first = demo.demo_district()["households"][0]
    row = dict(zip(ENGLISH_HEADERS, read_csv(demo_out / "households.csv")[1], strict=True))
    assert row["room"] == first["room"]
    assert float(row["lon"]) == first["lon"] and float(row["lat"]) == first["lat"]
    assert row["tags"] == ";".join(first["tags"])
