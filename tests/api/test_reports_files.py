"""Coverage report formats read back (CSV, XLSX, PDF), the CLI, and the stored Monday reports."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select, text

from api.cli import main
from api.models import Notification, Report
from api.services import report_store
from tests import pdf_glyphs
from tests.api import test_reports as base
from tests.api.test_reports import COVERAGE, R1, R2, RC, RC2

history = base.history  # the fixture of test_reports: three past weeks lived through

WEEK = {"week": "2026-W47", "community": RC}
# Monday 2026-11-23 08:30 Asia/Shanghai: last week's reports are due.
MONDAY_0830 = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)


def gridwork(app, *args: str):
    """Run `gridwork ...` inside the test's app (and its rolled-back transaction)."""
    with app.app_context():
        return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _get(client, history, **extra):
    headers = {**history.auth("admin"), **extra.pop("headers", {})}
    return client.get(COVERAGE, query_string={**WEEK, **extra}, headers=headers)


# --- formats ---------------------------------------------------------------------------------
def test_csv_has_chinese_headers_a_row_per_grid_and_totals(client, history):
    r = _get(client, history, format="csv")
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["网格编码", "网格名称", "户数"]
    table = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert set(table) == {R1, R2, "合计"}
    assert (table[R1]["户数"], table[R1]["本周走访户数"], table[R1]["覆盖率%"]) == (
        "4",
        "3",
        "75.0",
    )
    assert table["合计"]["两周以上未走访"] == "1"


def test_every_visit_figure_of_the_json_is_a_column_of_the_csv_and_the_xlsx(client, history):
    """Found by a review: `unregistered_visits` (visits to premises not yet registered) was
    in the JSON report only: the CSV and XLSX a community office opens left it out."""
    document = json.loads(_get(client, history).data)
    csv_rows = list(
        csv.reader(io.StringIO(_get(client, history, format="csv").data.decode("utf-8-sig")))
    )
    sheet = load_workbook(io.BytesIO(_get(client, history, format="xlsx").data))["网格"]
    xlsx_rows = [[c.value for c in row] for row in sheet.iter_rows()]
    for rows, as_read in ((csv_rows, str), (xlsx_rows, lambda v: v)):
        table = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
        for grid in document["grids"]:
            assert table[grid["code"]]["未登记走访"] == as_read(grid["unregistered_visits"])
    csv_totals = dict(zip(csv_rows[0], csv_rows[-1], strict=True))
    assert csv_totals["未登记走访"] == str(document["totals"]["unregistered_visits"])


def test_the_need_and_problem_lists_are_columns_of_the_csv_and_the_xlsx(client, session, history):
    """The lists visits produce (`lists` of the JSON: raised, done and open), per grid and in
    total in the CSV and the XLSX, and the open ones per community."""
    from tests.api.test_reports import at
    from tests.factories import make_task_at

    for kind, created in (("need", at(17)), ("problem", at(10)), ("problem", at(18))):
        make_task_at(session, history.h["h1"], at(25), created_at=created, source="visit",
                     type="help", list_kind=kind)  # fmt: skip
    document = json.loads(_get(client, history).data)
    columns = {
        f"{word}{figure}": (kind, key)
        for kind, word in (("need", "需求"), ("problem", "问题"))
        for figure, key in (("新增", "raised"), ("办结", "done"), ("待办", "open"))
    }
    csv_rows = list(
        csv.reader(io.StringIO(_get(client, history, format="csv").data.decode("utf-8-sig")))
    )
    workbook = load_workbook(io.BytesIO(_get(client, history, format="xlsx").data))
    xlsx_rows = [[c.value for c in row] for row in workbook["网格"].iter_rows()]
    grids = [(g["code"], g["lists"]) for g in document["grids"]]
    for rows, as_read, rows_read in (
        (csv_rows, str, [*grids, ("合计", document["totals"]["lists"])]),
        (xlsx_rows, lambda v: v, grids),
    ):
        table = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
        for code, lists in rows_read:
            for column, (kind, key) in columns.items():
                assert table[code][column] == as_read(lists[kind][key]), (code, column)
    assert document["totals"]["lists"]["problem"] == {"raised": 1, "done": 0, "open": 2}
    communities = [[c.value for c in row] for row in workbook["社区"].iter_rows()]
    community = dict(zip(communities[0], communities[1], strict=True))
    assert (community["需求待办"], community["问题待办"]) == (1, 2)


def test_the_hotlines_own_three_rates_are_in_every_download(client, history):
    """A community is judged by its 12345 tickets' three rates: the CSV and XLSX give them per
    grid and in total (`tasks.hotline` of the JSON), the PDF in its heading beside every
    source's."""
    document = json.loads(_get(client, history).data)
    columns = {
        "12345工单": "opened",
        "12345响应率%": "response_rate",
        "12345解决率%": "resolution_rate",
        "12345满意率%": "satisfaction_rate",
    }
    csv_rows = list(
        csv.reader(io.StringIO(_get(client, history, format="csv").data.decode("utf-8-sig")))
    )
    sheet = load_workbook(io.BytesIO(_get(client, history, format="xlsx").data))["网格"]
    xlsx_rows = [[c.value for c in row] for row in sheet.iter_rows()]
    grids = [(g["code"], g["tasks"]) for g in document["grids"]]
    total = [("合计", document["totals"]["tasks"])]  # the CSV's last row (the XLSX: a sheet)
    for rows, as_read, rows_read in (
        (csv_rows, lambda v: "" if v is None else str(v), grids + total),
        (xlsx_rows, None, grids),
    ):
        table = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
        for code, figures in rows_read:
            for column, key in columns.items():
                value = figures["hotline"][key]
                assert table[code][column] == (as_read(value) if as_read else value)
    words = _pdf_words(_get(client, history, format="pdf").data)
    assert "12345 三率: 响应率 50.0%, 解决率 50.0%, 满意率 100.0% (12345工单 2 件)" in words


def test_the_accept_header_chooses_the_format(client, history):
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    r = _get(client, history, headers={"Accept": xlsx})
    assert r.status_code == 200 and r.mimetype == xlsx
    r = _get(client, history, headers={"Accept": "text/csv;q=0.5, application/pdf"})
    assert r.mimetype == "application/pdf"
    r = _get(client, history, headers={"Accept": "*/*"})
    assert r.mimetype == "application/json"


def test_xlsx_has_a_sheet_per_level_frozen_chinese_headers_and_plain_numbers(client, history):
    r = _get(client, history, format="xlsx")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["汇总", "社区", "网格", "网格员", "必访", "趋势"]
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2"
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula"
    grids = wb["网格"]
    headers = [c.value for c in grids[1]]
    assert headers[:7] == [
        "网格编码",
        "网格名称",
        "户数",
        "住户",
        "商户",
        "本周走访户数",
        "覆盖率%",
    ]
    rows = {
        row[0]: dict(zip(headers, row, strict=True)) for row in grids.iter_rows(2, values_only=True)
    }
    assert rows[R1]["户数"] == 4 and rows[R1]["覆盖率%"] == 75.0
    assert rows[R2]["本周走访户数"] == 1
    summary = dict(
        zip([c.value for c in wb["汇总"][1]], [c.value for c in wb["汇总"][2]], strict=True)
    )
    assert (summary["户数"], summary["本周走访户数"], summary["覆盖率%"]) == (7, 4, 57.1)
    workers = {r[1]: r for r in wb["网格员"].iter_rows(2, values_only=True)}
    assert workers["rp_w1"][2:] == (4, 3, 1, 2)
    assert [r[0] for r in wb["趋势"].iter_rows(2, values_only=True)][-1] == "2026-W47"
    tags = list(wb["必访"].iter_rows(2, values_only=True))
    assert (R1, "一网格", "80岁以上老人", 1, 1, 100.0) in tags


def test_pdf_is_a4_with_chinese_text_charts_and_tables(client, history):
    r = _get(client, history, format="pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    pdf = PdfReader(io.BytesIO(r.data))
    width, height = pdf.pages[0].mediabox.width, pdf.pages[0].mediabox.height
    assert (round(float(width)), round(float(height))) == (595, 842)
    text = "\n".join(page.extract_text() for page in pdf.pages)
    for expected in (
        "网格走访覆盖率周报 2026-W47",
        "向阳社区",
        "各网格覆盖率",
        "近8周覆盖率趋势",
        "网格覆盖率地图",
        R1,
        "一网格",
        "覆盖率 57.1%",
    ):
        assert expected in text


def _pdf_words(pdf: bytes) -> str:
    """The PDF's text as one line, words and table cells one space apart."""
    return " ".join(
        " ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages
    )


def test_the_pdf_gives_the_three_rates_in_total_and_per_grid_as_the_page_does(client, history):
    """Found walking the reports page: it heads the week with the response, resolution and
    satisfaction rates (三率, what a community is ranked by), and the CSV and XLSX have them
    per grid, but the PDF the office hands on had neither: only tasks opened, resolved and
    overdue."""
    document = json.loads(_get(client, history).data)
    words = _pdf_words(_get(client, history, format="pdf").data)
    totals = {
        "opened": 2,
        "resolved": 1,
        "overdue": 1,
        "response_rate": 50.0,
        "resolution_rate": 50.0,
        "satisfaction_rate": 100.0,
        "rated": 1,
    }
    assert document["totals"]["tasks"] == {**totals, "hotline": totals}  # two 12345 tickets
    assert "响应率 50.0%, 解决率 50.0%, 满意率 100.0%" in words
    # A grid table of the tasks and the rates; R2's one task was never rated (blank, as in
    # the CSV).
    assert (
        "网格编码 网格名称 新增工单 已办结 超期 响应率% 解决率% 满意率% "
        f"{R1} 一网格 1 1 0 100.0 100.0 100.0 "
        f"{R2} 二网格 1 0 1 0.0 0.0 "
        "合计 2 1 1 50.0 50.0 100.0"
    ) in words


def test_the_pdf_of_the_week_under_way_says_its_figures_are_so_far_as_the_page_does(
    client, history
):
    """Found walking the reports page: for the week under way it says 本周尚未结束：数字截至目前,
    but its PDF, downloaded on a Sunday morning and passed on, read as the whole week's
    report (本周走访 N 户) with no word that the week had not ended, nor when it was read."""
    from api.services.weeks import LOCAL, current_week

    before = datetime.now(LOCAL).replace(second=0, microsecond=0)
    words = _pdf_words(
        _get(client, history, week=current_week(datetime.now(UTC)), format="pdf").data
    )
    after = datetime.now(LOCAL)
    said = re.search(r"本周尚未结束：数字截至 (\S+ \S+)（北京时间）", words)
    assert said, words[:200]
    assert before <= datetime.strptime(said[1], "%Y-%m-%d %H:%M").replace(tzinfo=LOCAL) <= after
    # A week that has ended is the whole week's report.
    assert "尚未结束" not in _pdf_words(_get(client, history, format="pdf").data)


def test_the_sheets_of_the_week_under_way_say_their_figures_are_so_far_too(client, history):
    """The PDF says so now; the spreadsheet and the CSV of the week under way still read as the
    week's, under the week's own file name: a CSV taken on a Sunday morning and a Monday's
    stood side by side as two of one week. The file name says so far, and as of when; the
    spreadsheet's summary too. A week that has ended keeps its name and says 全周."""
    from api.services.weeks import LOCAL, current_week

    week = current_week(datetime.now(UTC))
    before = datetime.now(LOCAL).replace(second=0, microsecond=0)
    sheet = _get(client, history, week=week, format="xlsx")
    csv_file = _get(client, history, week=week, format="csv")
    after = datetime.now(LOCAL)
    named = re.search(
        rf'filename="coverage-{RC}-{week}-so-far-(\d{{8}}T\d{{4}})\.xlsx"',
        sheet.headers["Content-Disposition"],
    )
    assert named, sheet.headers["Content-Disposition"]
    at = datetime.strptime(named[1], "%Y%m%dT%H%M").replace(tzinfo=LOCAL)
    assert before <= at <= after
    assert f"{week}-so-far-" in csv_file.headers["Content-Disposition"]
    summary = load_workbook(io.BytesIO(sheet.data))["汇总"]
    column = [c.value for c in summary[1]].index("数据截至")
    assert summary[2][column].value == f"本周尚未结束：数字截至 {at:%Y-%m-%d %H:%M}（北京时间）"

    ended = _get(client, history, format="xlsx")
    assert re.search(
        rf'filename="coverage-{RC}-\d{{4}}-W\d{{2}}\.xlsx"', ended.headers["Content-Disposition"]
    )
    summary = load_workbook(io.BytesIO(ended.data))["汇总"]
    assert summary[2][column].value == "全周"


def _name_badly(
    session,
    *,
    grid: str | None = None,
    community: str | None = None,
    worker: str | None = None,
) -> None:
    """Store names as they are, past input's checks (as input accepted them before it refused
    control characters): R1's grid, RC's community, the worker rp_w1."""
    if grid is not None:
        session.execute(text("UPDATE grids SET name = :n WHERE code = :c"), {"n": grid, "c": R1})
    if community is not None:
        session.execute(
            text("UPDATE communities SET name = :n WHERE code = :c"), {"n": community, "c": RC}
        )
    if worker is not None:
        session.execute(
            text("UPDATE users SET display_name = :n WHERE username = 'rp_w1'"), {"n": worker}
        )
    session.commit()


def test_xlsx_renders_a_stored_name_holding_a_control_character(client, session, history):
    _name_badly(session, grid="一\x07网格", community="向阳\x1b社区")
    r = _get(client, history, format="xlsx")
    assert r.status_code == 200, r.data[:300]
    wb = load_workbook(io.BytesIO(r.data))
    assert wb["汇总"]["D2"].value == "向阳社区"
    assert (R1, "一网格") in [row[:2] for row in wb["网格"].iter_rows(2, values_only=True)]


def test_pdf_renders_a_stored_name_holding_markup(client, session, history):
    _name_badly(session, grid="一<b>网格", community="A<B&社区")
    r = _get(client, history, format="pdf")
    assert r.status_code == 200, r.data[:300]
    text_ = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(r.data)).pages)
    assert "A<B&社区" in text_ and "一<b>网格" in text_


# Rare characters (生僻字) of real names, each drawn by another font of the chain: 䶮 (U+4DAE,
# Extension A, as in 刘䶮), 𠮷 (U+20BB7, Extension B), 𤭢 (U+24B62, Extension B, in HanaMinB
# only), 𫖯 (U+2B5AF, Extension C, as in 赵孟𫖯), 𰻞 (U+30EDE, Extension G, biáng), 〇 (U+3007).
RARE_NAMES = {"grid": "䶮𠮷𤭢〇一网格", "community": "𠮷祥𰻞社区", "worker": "赵孟𫖯"}


def test_pdf_draws_rare_name_characters_with_fonts_it_embeds(client, session, history):
    """Found by a review: the PDF named its font (STSong-Light) without embedding it, so a
    viewer drew 䶮 and 𠮷 with its own fonts, or as boxes, or not at all."""
    _name_badly(session, **RARE_NAMES)
    r = _get(client, history, format="pdf")
    assert r.status_code == 200, r.data[:300]
    for char in "䶮𠮷𤭢𫖯𰻞〇":
        shown = pdf_glyphs.fonts_of(r.data, char)
        assert shown, f"{char} is not drawn"
        assert all(d.embedded and d.outlined for d in shown), (char, set(shown))


def test_pdf_text_of_rare_names_reads_back(client, session, history):
    """Copy, search and screen readers read the ToUnicode map: reportlab wrote a character
    beyond U+FFFF as 5 hex digits, not UTF-16, so 𠮷 read back as nothing (pypdf) or ₻."""
    _name_badly(session, **RARE_NAMES)
    pdf = PdfReader(io.BytesIO(_get(client, history, format="pdf").data))
    text_ = "\n".join(page.extract_text() for page in pdf.pages)
    for name in RARE_NAMES.values():
        assert name in text_


def test_pdf_embeds_every_font_it_draws_with(client, history):
    """No character depends on the reader's fonts (no STSong-Light, no Helvetica)."""
    shown = pdf_glyphs.drawn(_get(client, history, format="pdf").data)
    assert {d.char for d in shown} >= set("网格走访覆盖率周报2026W47")
    assert [d for d in shown if not d.embedded] == []
    assert [d for d in shown if not d.outlined and not d.char.isspace()] == []


@pytest.fixture()
def fonts_missing(monkeypatch, tmp_path):
    """The PDF's fonts as on a server without fonts-hanazono; `fonts_missing.installed()`."""
    from api import pdf_fonts

    fonts = pdf_fonts.REPORT_FONTS

    class Missing:
        @staticmethod
        def installed():
            monkeypatch.setattr(pdf_fonts, "REPORT_FONTS", fonts)

    gone = [replace(f, path=str(tmp_path / Path(f.path).name)) for f in fonts]
    monkeypatch.setattr(
        pdf_fonts,
        "REPORT_FONTS",
        tuple(g if "hanazono" in f.path else f for f, g in zip(fonts, gone, strict=True)),
    )
    return Missing


def test_pdf_without_its_fonts_is_a_503_and_the_log_names_the_package(
    client, history, fonts_missing, caplog
):
    """Refused, not drawn with boxes for rare characters (api/pdf_fonts.py says why)."""
    r = _get(client, history, format="pdf")
    assert r.status_code == 503 and r.mimetype == "application/problem+json"
    assert "font" in r.json["detail"] and "HanaMin" not in r.json["detail"]  # paths: the log's
    assert "HanaMinA.ttf (Debian package fonts-hanazono)" in caplog.text
    assert _get(client, history, format="csv").status_code == 200


def test_monday_reports_wait_for_missing_pdf_fonts_and_are_stored_once_installed(
    session, history, fonts_missing
):
    result = report_store.generate_due_reports(session, MONDAY_0830)
    assert (result.created, sorted(result.failed)) == ([], sorted([RC, RC2]))
    assert _failure(session)[1] == "api.pdf_fonts.FontMissing"
    fonts_missing.installed()
    again = report_store.generate_due_reports(session, MONDAY_0830 + timedelta(minutes=1))
    assert sorted(r.code for r in again.created) == sorted([RC, RC2])


def _drawn_x(pdf: bytes) -> list[tuple[str, float, float]]:
    """(text, where it starts on the page, the page's width) of each piece of text drawn."""
    drawn = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        width = float(page.mediabox.width)

        def seen(text_, cm, tm, _font, _size, width=width):
            if text_.strip():
                drawn.append((text_.strip(), cm[0] * tm[4] + cm[4], width))

        page.extract_text(visitor_text=seen)
    return drawn


def test_pdf_tables_fit_the_page_with_the_longest_names_wrapped(client, session, history):
    """Found by a review: a grid named with its 100 characters (as long as a name may be)
    made the grid table 1.5 pages wide, drawn centred off both edges: the name's start and the
    columns from 两周以上未走访 on were cut off the page; a worker's long name alike."""
    grid, worker = "幸福里小区东区" * 14 + "一号", "欧阳" * 50
    _name_badly(session, grid=grid, worker=worker)
    r = _get(client, history, format="pdf")
    assert r.status_code == 200, r.data[:300]
    drawn = _drawn_x(r.data)
    off = [(t[:12], round(x)) for t, x, width in drawn if not 0 <= x < width - 30]
    assert off == []
    text_ = "".join(t for t, _, _ in drawn)
    assert grid in text_ and worker in text_
    assert {"超期", "覆盖户数"} <= {t for t, _, _ in drawn}


def test_a_name_that_looks_like_a_formula_stays_text(client, session, history):
    """Opening the report must not run what someone typed as a grid name (CSV injection)."""
    name = '=HYPERLINK("http://example.com/x","点我")'
    _name_badly(session, grid=name)
    wb = load_workbook(io.BytesIO(_get(client, history, format="xlsx").data))
    [cell] = [row[1] for row in wb["网格"].iter_rows(2) if row[0].value == R1]
    assert (cell.value, cell.data_type) == (name, "s")
    rows = list(
        csv.reader(io.StringIO(_get(client, history, format="csv").data.decode("utf-8-sig")))
    )
    assert "'" + name in [row[1] for row in rows]


def test_json_is_the_default(client, history):
    r = _get(client, history)
    assert r.mimetype == "application/json"
    assert json.loads(r.data)["totals"]["households"] == 7


def test_the_cli_writes_every_format(app, history, tmp_path):
    for fmt in ("json", "csv", "xlsx", "pdf"):
        out = tmp_path / f"r.{fmt}"
        result = gridwork(
            app,
            "report",
            "weekly",
            "--week",
            "2026-W47",
            "--community",
            RC,
            "--format",
            fmt,
            "--out",
            str(out),
        )
        assert result.exit_code == 0, result.output
        assert "4/7 households visited" in result.output
        assert out.stat().st_size > 0
    assert json.loads((tmp_path / "r.json").read_text())["totals"]["visited"] == 4
    assert load_workbook(tmp_path / "r.xlsx").sheetnames[0] == "汇总"
    assert "向阳社区" in PdfReader(tmp_path / "r.pdf").pages[0].extract_text()


def test_the_cli_writes_the_format_its_files_suffix_names(app, history, tmp_path):
    """Found by an operator's review: `--out r.pdf` without --format wrote JSON into r.pdf."""
    for name, starts in (("r.pdf", b"%PDF"), ("r.csv", "网格".encode()), ("r.out", b"{")):
        out = tmp_path / name
        args = ("report", "weekly", "--week", "2026-W47", "--community", RC, "--out", str(out))
        result = gridwork(app, *args)
        assert result.exit_code == 0, result.output
        assert starts in out.read_bytes()[:200], name


def test_the_cli_names_a_report_file_it_cannot_write_in_one_line(app, history):
    """Found by a review: a place the operator may not write to (a read-only mount, another
    account's directory, a full disk) ended `report weekly` with an OSError's traceback."""
    with app.app_context():
        result = CliRunner().invoke(
            main,
            ["report", "weekly", *("--week", "2026-W47", "--community", RC)]
            + ["--out", "/proc/r.pdf"],
        )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "cannot write /proc/r.pdf" in result.output


def test_the_cli_says_a_week_with_nothing_to_cover_has_no_coverage(app, history, tmp_path):
    """Found by a review: a week before the community's grids existed printed "(None%)"."""
    out = tmp_path / "r.csv"
    result = gridwork(
        app, "report", "weekly", "--week", "2026-W01", "--community", RC, "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "0 grids, 0/0 households visited (coverage -)" in result.output
    assert "None" not in result.output


def test_the_monday_run_refuses_to_act_as_of_a_time_to_come(app, history):
    """A report stored as of next Monday would be of a week not over yet, and the real run
    would then take it for already stored."""
    result = gridwork(app, "report", "tick", "--now", "2999-01-04T00:30:00Z")
    assert result.exit_code == 2 and "--now" in result.output
    assert "after the current time" in result.output


def test_the_cli_refuses_a_bad_week(app, history, tmp_path):
    result = gridwork(
        app,
        "report",
        "weekly",
        "--week",
        "2026-W99",
        "--community",
        RC,
        "--out",
        str(tmp_path / "x.json"),
    )
    assert result.exit_code == 1
    assert "not an ISO week" in result.output


# --- the Monday run --------------------------------------------------------------------------
def test_monday_0800_stores_last_weeks_report_per_community_in_every_format(session, history):
    result = report_store.generate_due_reports(session, MONDAY_0830)
    assert result.week == "2026-W47"
    assert sorted(r.code for r in result.created) == [RC, RC2]
    stored = next(r for r in result.created if r.code == RC)
    assert (stored.households, stored.visited) == (7, 4)
    assert sorted(f.format for f in stored.files) == ["csv", "json", "pdf", "xlsx"]


def test_before_monday_0800_the_week_before_is_the_one_due(session, history):
    early = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)  # Monday 07:30 in Shanghai
    assert report_store.generate_due_reports(session, early).week == "2026-W46"


def test_the_monday_run_is_idempotent(session, history):
    report_store.generate_due_reports(session, MONDAY_0830)
    again = report_store.generate_due_reports(session, MONDAY_0830)
    assert (again.created, again.skipped) == ([], 2)
    assert session.scalar(select(func.count(Report.id)).where(Report.week == "2026-W47")) == 2
    notes = session.scalar(
        select(func.count(Notification.id)).where(Notification.kind == "report_ready")
    )
    assert notes == 3  # leader + admin of RC, admin of RC2; once each


def test_a_tick_that_finds_the_reports_stored_draws_no_report_ids(session, history):
    """The push worker ticks every minute all week: each tick tried to claim every
    community's report again, and `INSERT ... ON CONFLICT DO NOTHING` draws the id before it
    meets the conflict. The integer sequence ran down by one a community a minute (a district
    of 1,000 communities: 1.44 M ids a day, exhausted in about four years; then every claim
    fails and no report is stored)."""
    seq = "SELECT last_value FROM reports_id_seq"
    report_store.generate_due_reports(session, MONDAY_0830)
    drawn = session.scalar(text(seq))
    for minute in range(1, 4):
        again = report_store.generate_due_reports(session, MONDAY_0830 + timedelta(minutes=minute))
        assert (again.created, again.skipped, again.failed) == ([], 2, [])
    assert session.scalar(text(seq)) == drawn


def test_one_communitys_failing_report_leaves_the_others_stored_and_is_retried(
    session, history, monkeypatch, caplog
):
    from api.services import report_render

    render = report_render.render

    def failing_for_rc(data, fmt, shapes=None):
        if data["code"] == RC and fmt == "pdf":
            raise ValueError("the renderer broke")
        return render(data, fmt, shapes)

    monkeypatch.setattr(report_render, "render", failing_for_rc)
    result = report_store.generate_due_reports(session, MONDAY_0830)
    assert [r.code for r in result.created] == [RC2]
    assert result.failed == [RC]
    assert f"community {RC} failed" in caplog.text and "the renderer broke" in caplog.text
    stored = session.scalars(select(Report.code).where(Report.week == "2026-W47")).all()
    assert stored == [RC2]  # RC's claim was rolled back with its files and notices
    notes = session.scalars(
        select(Notification.user_id).where(Notification.kind == "report_ready")
    ).all()
    assert notes == [history.users["admin2"].id]
    monkeypatch.setattr(report_render, "render", render)
    again = report_store.generate_due_reports(session, MONDAY_0830 + timedelta(minutes=1))
    assert ([r.code for r in again.created], again.skipped, again.failed) == ([RC], 1, [])


# --- retrying a failing community's report, with backoff -------------------------------------
@pytest.fixture()
def broken(monkeypatch):
    """RC's report fails to render (a ValueError whose message must not be stored); counts
    the attempts; `broken.fixed()` restores the renderer."""
    from api.services import report_render

    render = report_render.render

    class Broken:
        attempts = 0

        @staticmethod
        def fixed():
            monkeypatch.setattr(report_render, "render", render)

    def failing_for_rc(data, fmt, shapes=None):
        if data["code"] == RC and fmt == "json":
            Broken.attempts += 1
            raise ValueError("the renderer broke on 13800138000")
        return render(data, fmt, shapes)

    monkeypatch.setattr(report_render, "render", failing_for_rc)
    return Broken


def _failure(session):
    return session.execute(
        text(
            "SELECT attempts, error_class, first_failed_at, last_failed_at, next_attempt_at "
            "FROM report_failures WHERE week = '2026-W47' AND community_code = :c"
        ),
        {"c": RC},
    ).one_or_none()


def test_a_failed_report_is_recorded_with_its_attempts_and_error_class_only(
    session, history, broken
):
    report_store.generate_due_reports(session, MONDAY_0830)
    attempts, error_class, first, last, next_at = _failure(session)
    assert (attempts, error_class) == (1, "ValueError")
    assert first == last == MONDAY_0830
    assert next_at == MONDAY_0830 + timedelta(minutes=1)
    row = session.execute(text("SELECT * FROM report_failures")).one()
    assert not any("13800138000" in str(value) for value in row)  # no message, no personal data


def test_a_failing_community_is_not_retried_on_the_next_tick_within_its_delay(
    session, history, broken
):
    report_store.generate_due_reports(session, MONDAY_0830)
    tick = report_store.generate_due_reports(session, MONDAY_0830 + timedelta(seconds=59))
    assert (tick.failed, tick.deferred, tick.skipped) == ([], [RC], 1)
    assert broken.attempts == 1
    assert _failure(session)[0] == 1


def test_a_failing_community_is_retried_after_its_delay_which_doubles_up_to_an_hour(
    session, history, broken
):
    now, delays = MONDAY_0830, []
    for _ in range(9):
        result = report_store.generate_due_reports(session, now)
        assert result.failed == [RC]
        attempts, _, _, last, next_at = _failure(session)
        delays.append(int((next_at - last).total_seconds() // 60))
        now = next_at
    assert broken.attempts == attempts == 9
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_each_attempt_is_logged_once_not_each_tick(session, history, broken, caplog):
    for seconds in range(0, 60, 10):  # the push worker's tick, every 10 s, for a minute
        report_store.generate_due_reports(session, MONDAY_0830 + timedelta(seconds=seconds))
    failures = [r for r in caplog.records if f"community {RC} failed" in r.getMessage()]
    assert len(failures) == 1
    report_store.generate_due_reports(session, MONDAY_0830 + timedelta(minutes=1))
    failures = [r for r in caplog.records if f"community {RC} failed" in r.getMessage()]
    assert len(failures) == 2
    assert "attempt 2" in failures[-1].getMessage()


def test_a_report_stored_after_failing_clears_the_record(session, history, broken):
    report_store.generate_due_reports(session, MONDAY_0830)
    broken.fixed()
    result = report_store.generate_due_reports(session, MONDAY_0830 + timedelta(minutes=1))
    assert [r.code for r in result.created] == [RC]
    assert _failure(session) is None


def test_the_report_tick_command_retries_a_deferred_community_only_with_retry_now(
    app, history, broken
):
    at = ["--now", (MONDAY_0830 + timedelta(seconds=30)).isoformat()]
    gridwork(app, "report", "tick", "--now", MONDAY_0830.isoformat())
    waiting = gridwork(app, "report", "tick", *at)
    assert broken.attempts == 1
    assert f"1 waiting to retry: {RC} (attempt 2 at " in waiting.output
    assert "--retry-now" in waiting.output
    broken.fixed()
    forced = gridwork(app, "report", "tick", "--retry-now", *at)
    assert "2026-W47: 1 stored, 1 already stored" in forced.output


def test_the_report_tick_command_exits_1_when_a_community_failed_and_keeps_the_record(
    app, session, history, broken
):
    """Found by a review: a tick whose report failed printed it in red and exited 0, so
    cron and a deploy script took the Monday run for a success."""
    failed = gridwork(app, "report", "tick", "--now", MONDAY_0830.isoformat())
    assert failed.exit_code == 1
    assert f"1 failed (see the log), retried later: {RC} (attempt 2 at " in failed.output
    assert "2026-W47: 1 stored, 0 already stored" in failed.output
    assert _failure(session).attempts == 1  # recorded all the same, and the other stored
    assert session.scalars(select(Report.code).where(Report.week == "2026-W47")).all() == [RC2]
    at = (MONDAY_0830 + timedelta(seconds=30)).isoformat()
    waiting = gridwork(app, "report", "tick", "--now", at)
    assert waiting.exit_code == 0  # nothing failed in this run: RC waits for its delay


def test_leaders_and_admins_are_announced_by_push(session, history):
    from tests.factories import make_device

    make_device(session, history.users["leader"], "tok-leader", now=MONDAY_0830)
    report_store.generate_due_reports(session, MONDAY_0830)
    rows = session.scalars(
        select(Notification).where(Notification.kind == "report_ready").order_by(Notification.id)
    ).all()
    assert {n.user_id for n in rows} == {history.users[u].id for u in ("leader", "admin", "admin2")}
    leader_note = next(n for n in rows if n.user_id == history.users["leader"].id)
    assert leader_note.data["week"] == "2026-W47"
    assert "57.1%" in leader_note.body
    from api.models import Delivery

    assert (
        session.scalar(
            select(func.count(Delivery.id)).where(Delivery.notification_id == leader_note.id)
        )
        == 1
    )


def test_the_report_tick_command_stores_once(app, history):
    args = ["report", "tick", "--now", MONDAY_0830.isoformat()]
    assert "2026-W47: 2 stored, 0 already stored" in gridwork(app, *args).output
    assert "2026-W47: 0 stored, 2 already stored" in gridwork(app, *args).output


def test_the_push_workers_tick_stores_the_reports_when_the_task_deadline_tick_fails(
    app, session, history, monkeypatch, caplog
):
    """The reports rode the task deadline tick's job: a task tick that failed (one task it
    cannot handle, every minute) ended the job before the reports, so no Monday report was
    stored for as long as it failed (nor swaps expired, nor sessions purged)."""
    import logging

    from api import cli
    from api.services import tasks as task_service

    def broken_tick(session, now, **kw):
        raise RuntimeError("a task the tick cannot handle")

    monkeypatch.setattr(task_service, "tick", broken_tick)
    monkeypatch.setattr(cli, "database_now", lambda session: MONDAY_0830)
    session.commit()
    with app.app_context(), pytest.raises(RuntimeError, match="cannot handle"):
        cli._worker_tick(logging.getLogger("test"))
    session.expire_all()
    stored = session.scalars(select(Report.code).where(Report.week == "2026-W47")).all()
    assert sorted(stored) == [RC, RC2]


# --- listing and download -------------------------------------------------------------------
def test_stored_reports_are_listed_in_scope_and_downloaded(client, session, history):
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    mine = client.get("/api/v1/reports", headers=history.auth("admin"))
    assert mine.status_code == 200
    assert [r["code"] for r in mine.json] == [RC]
    assert json.loads(mine.headers["X-Pagination"])["total"] == 1
    item = mine.json[0]
    assert item["coverage"] == 57.1
    assert {f["format"] for f in item["files"]} == {"json", "csv", "xlsx", "pdf"}
    url = next(f["url"] for f in item["files"] if f["format"] == "xlsx")
    r = client.get(url, headers=history.auth("admin"))
    assert r.status_code == 200
    assert load_workbook(io.BytesIO(r.data)).sheetnames[0] == "汇总"
    viewer = client.get("/api/v1/reports", headers=history.auth("viewer"))
    assert sorted(r["code"] for r in viewer.json) == [RC, RC2]
    leader = client.get("/api/v1/reports", headers=history.auth("leader"))
    assert [r["code"] for r in leader.json] == [RC]
    r = client.get(f"/api/v1/reports/{item['id']}/files/pdf", headers=history.auth("admin2"))
    assert r.status_code == 404
    assert client.get("/api/v1/reports", headers=history.auth("w1")).status_code == 403
    r = client.get(f"/api/v1/reports/{item['id']}/files/docx", headers=history.auth("admin"))
    assert r.status_code == 404
    r = client.get(
        "/api/v1/reports", query_string={"week": "2026-W99"}, headers=history.auth("admin")
    )
    assert r.status_code == 422


def _stored_file(client, history, who: str, fmt: str, week: str = "2026-W47"):
    listed = client.get("/api/v1/reports", query_string={"week": week}, headers=history.auth(who))
    item = next(r for r in listed.json if r["code"] == RC)
    url = next(f["url"] for f in item["files"] if f["format"] == fmt)
    return client.get(url, headers=history.auth(who))


def _live(client, history, who: str, week: str = "2026-W47") -> dict:
    got = client.get(COVERAGE, query_string={"week": week}, headers=history.auth(who))
    assert got.status_code == 200, got.json
    return got.json


def test_a_grid_leaders_copy_of_a_stored_report_holds_their_grids_only(client, session, history):
    """Found by a review: the live report narrows a grid leader to their own grids, but the
    stored Monday report of their community was served whole to every grid leader of it: every
    grid's figures and every worker's (the workers' personal data), in every format. A leader's
    copy is their live leader report of the week, from the stored figures: their grids, the
    workers of those grids, totals and communities summed over those grids alone."""
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    got = _stored_file(client, history, "leader", "json")
    assert got.status_code == 200
    mine = json.loads(got.data)
    live = _live(client, history, "leader")  # nothing synced since the run: the same figures
    assert [g["code"] for g in mine["grids"]] == [R1]
    assert (mine["level"], mine["code"], mine["name"]) == ("grids", RC, live["name"])
    for section in ("grids", "totals", "communities", "workers"):
        assert mine[section] == live[section], section
    whole = json.loads(_stored_file(client, history, "admin", "json").data)
    assert mine["totals"] != whole["totals"]
    assert mine["trend"][-1] == {
        k: mine["totals"][k] for k in ("households", "visited", "coverage")
    } | {"week": "2026-W47"}


def test_a_leader_of_every_grid_reads_the_stored_totals_summed_as_the_report_sums_them(
    client, session, history
):
    """A leader's totals and communities are summed from the grids kept, rates from the sums,
    as REPORT_SQL sums them: a leader holding every grid of the community reads the stored
    report's own figures."""
    from tests.factories import bearer, make_user

    both = make_user(session, "rp_leader2", "grid_leader", grids=[R1, R2], display_name="戊")
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    whole = json.loads(_stored_file(client, history, "admin", "json").data)
    with history.app.app_context():
        headers = bearer(both)
    url = f"/api/v1/reports/{whole_id(session)}/files/json"
    mine = json.loads(client.get(url, headers=headers).data)
    assert [g["code"] for g in mine["grids"]] == [R1, R2]
    assert whole["totals"]["tasks"]["opened"] and whole["totals"]["must_visit"]
    for section in ("grids", "totals", "communities", "trend"):
        assert mine[section] == whole[section], section
    assert mine["level"] == "grids" and whole["level"] == "community"


def whole_id(session) -> int:
    return session.scalar(select(Report.id).where(Report.code == RC, Report.week == "2026-W47"))


def test_a_grid_leaders_copy_renders_their_grids_only_in_every_format(client, session, history):
    """The CSV, the spreadsheet and the PDF of a leader's copy are rendered from it: no other
    grid's row, no other grid's worker."""
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    rows = list(
        csv.reader(
            io.StringIO(_stored_file(client, history, "leader", "csv").data.decode("utf-8-sig"))
        )
    )
    assert [r[0] for r in rows[1:]] == [R1, "合计"]
    book = load_workbook(io.BytesIO(_stored_file(client, history, "leader", "xlsx").data))
    grid_codes = [r[0] for r in book["网格"].iter_rows(min_row=2, values_only=True)]
    assert R2 not in grid_codes and R1 in grid_codes
    names = [r[0] for r in book["网格员"].iter_rows(min_row=2, values_only=True)]
    assert "乙" not in names and "甲" in names  # w2 holds R2 only, w1 R1
    pdf = _pdf_words(_stored_file(client, history, "leader", "pdf").data)
    assert "二网格" not in pdf and "一网格" in pdf
    # The admin's and the viewer's are the stored files as they are.
    for who in ("admin", "viewer"):
        body = _stored_file(client, history, who, "csv").data
        assert [r[0] for r in csv.reader(io.StringIO(body.decode("utf-8-sig")))][1:] == [
            R1,
            R2,
            "合计",
        ]


def test_a_grid_leaders_trend_sums_their_grids_in_each_weeks_stored_report(
    client, session, history
):
    """Each point of a leader's trend is their grids' figures in that week's stored report; a
    week with no stored report (before the first Monday run) is their live report's point."""
    report_store.generate_due_reports(session, MONDAY_0830 - timedelta(days=7))  # W46's
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    mine = json.loads(_stored_file(client, history, "leader", "json").data)
    live = _live(client, history, "leader")
    trend = {p["week"]: p for p in mine["trend"]}
    assert list(trend) == [p["week"] for p in live["trend"]]
    w46 = json.loads(_stored_file(client, history, "leader", "json", "2026-W46").data)
    assert w46["grids"] == [
        g
        for g in json.loads(_stored_file(client, history, "admin", "json", "2026-W46").data)[
            "grids"
        ]
        if g["code"] == R1
    ]
    t = w46["totals"]
    assert trend["2026-W46"] == {
        "week": "2026-W46",
        "households": t["households"],
        "visited": t["visited"],
        "coverage": t["coverage"],
    }
    earlier = [w for w in trend if w < "2026-W46"]
    assert [trend[w] for w in earlier] == [p for p in live["trend"] if p["week"] in earlier]


def test_the_list_gives_a_grid_leader_no_other_grids_figures(client, session, history):
    """The list and one report carry the community's totals (the push that announced the report
    said them to every leader of it): no grid's figures, no worker's."""
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    leader = client.get("/api/v1/reports", headers=history.auth("leader")).json
    admin = client.get("/api/v1/reports", headers=history.auth("admin")).json
    assert leader == admin
    assert set(leader[0]) == {
        "id",
        "week",
        "level",
        "code",
        "name",
        "households",
        "visited",
        "coverage",
        "created_at",
        "late_visits",
        "files",
    }


def test_a_stored_report_says_how_many_of_its_weeks_visits_reached_the_server_after_it(
    client, session, history
):
    """The Monday report is the week as it stood at 08:00: a phone that kept Saturday's visits
    until Tuesday changed the live report, not the stored one, and the office reading the
    stored one was not told. Counted by when each visit reached the server."""
    from tests.factories import make_visit

    session.execute(text("UPDATE visits SET received_at = visited_at"))  # synced as made
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    listed = client.get("/api/v1/reports", headers=history.auth("admin")).json
    assert [(r["week"], r["late_visits"]) for r in listed] == [("2026-W47", 0)]
    saturday = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # 11:00 Beijing, W47
    tuesday = MONDAY_0830 + timedelta(days=1)
    for name in ("h1", "h2"):
        make_visit(session, history.users["w1"], history.h[name], saturday, received_at=tuesday)
    # One of the next week, synced on Tuesday too: not the stored week's.
    make_visit(session, history.users["w1"], history.h["h1"], tuesday, received_at=tuesday)
    session.commit()
    listed = client.get("/api/v1/reports", headers=history.auth("admin")).json
    assert [r["late_visits"] for r in listed] == [2]
    one = client.get(f"/api/v1/reports/{listed[0]['id']}", headers=history.auth("admin")).json
    assert one["late_visits"] == 2


def _late(client, history) -> list[int]:
    listed = client.get("/api/v1/reports", headers=history.auth("admin")).json
    return [r["late_visits"] for r in listed]


def _visits_in_stored_json(client, history) -> int:
    listed = client.get("/api/v1/reports", headers=history.auth("admin")).json
    url = next(f["url"] for f in listed[0]["files"] if f["format"] == "json")
    return json.loads(client.get(url, headers=history.auth("admin")).data)["totals"]["visits"]


def _visits_in_live_report(client, history) -> int:
    return _get(client, history).json["totals"]["visits"]


def test_a_visit_in_the_stored_figures_is_not_late_though_its_request_began_after_the_run(
    client, session, history
):
    """Found by a review: the run stamps its reports with the `now` it read as it began, and
    a visit is stamped `received_at` as its sync request begins. A batch whose request began
    a moment after the run did, but committed before the run read its community's figures, is
    in the stored report, and was counted late as well (stored visited 5, late 1, the same
    visit): the office was sent to the live report for a visit it already had."""
    from tests.factories import make_visit

    session.execute(text("UPDATE visits SET received_at = visited_at"))  # synced as made
    saturday = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # 11:00 Beijing, W47
    make_visit(
        session,
        history.users["w1"],
        history.h["h1"],
        saturday,
        received_at=MONDAY_0830 + timedelta(seconds=1),
    )
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    assert _visits_in_stored_json(client, history) == _visits_in_live_report(client, history)
    assert _late(client, history) == [0]


def test_a_visit_stored_after_the_run_read_the_figures_is_late_though_its_request_began_before(
    client, session, history
):
    """Found by a review: the other side of the same race. A batch whose request began before
    the run (`received_at` earlier than the report's `created_at`) but committed after the run
    read its community's figures is in the live report and not in the stored one, and was
    not counted late either: in neither."""
    from tests.factories import make_visit

    session.execute(text("UPDATE visits SET received_at = visited_at"))
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    saturday = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    make_visit(
        session,
        history.users["w1"],
        history.h["h2"],
        saturday,
        received_at=MONDAY_0830 - timedelta(seconds=1),
    )
    # An attempt with nobody home is a visit the report counts too.
    make_visit(
        session,
        history.users["w2"],
        history.h["h5"],
        saturday,
        outcome="nobody_home",
        received_at=MONDAY_0830 - timedelta(minutes=5),
    )
    session.commit()
    assert _visits_in_live_report(client, history) == _visits_in_stored_json(client, history) + 2
    assert _late(client, history) == [2]


def test_a_late_visit_in_a_grid_drawn_after_the_week_is_not_late_for_its_report(
    client, session, history
):
    """The live report of a week counts the grids that existed during it: a visit of the week
    synced later into a grid drawn since (its household now lies there) is in neither report,
    so it is no visit the stored report missed."""
    from tests.factories import box, make_grid, make_household, make_visit

    session.execute(text("UPDATE visits SET received_at = visited_at"))
    report_store.generate_due_reports(session, MONDAY_0830)
    session.commit()
    live_before = _visits_in_live_report(client, history)
    make_grid(session, RC + "009", box(116.640, 39.900, 116.650, 39.910), name="新网格")
    home = make_household(session, 116.645, 39.905)
    saturday = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    make_visit(
        session, history.users["w1"], home, saturday, received_at=MONDAY_0830 + timedelta(days=1)
    )
    session.commit()
    assert _visits_in_live_report(client, history) == live_before
    assert _late(client, history) == [0]


def test_a_report_stored_before_it_recorded_the_visits_it_saw_counts_late_by_arrival(
    client, session, history
):
    """Reports stored before migration 0062 did not record the visits their figures counted
    (`visits_seen` NULL): theirs are the visits that reached the server after they were
    stored, as before."""
    from tests.factories import make_visit

    session.execute(text("UPDATE visits SET received_at = visited_at"))
    report_store.generate_due_reports(session, MONDAY_0830)
    session.execute(text("UPDATE reports SET visits_seen = NULL"))
    saturday = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    for name, received in (("h1", timedelta(seconds=-1)), ("h2", timedelta(days=1))):
        make_visit(
            session,
            history.users["w1"],
            history.h[name],
            saturday,
            received_at=MONDAY_0830 + received,
        )
    session.commit()
    assert _late(client, history) == [1]


def test_a_stored_reports_coverage_is_rounded_as_its_files_round_it(client, session, history):
    """1 household of 16 is 6.25 %: the report's files (PostgreSQL's `gw_pct`) say 6.3, the
    list of stored reports said 6.2 (Python's float `round`, half to even), and so did the
    push announcing it."""
    session.add(Report(week="2026-W40", level="community", code=RC, households=16, visited=1))
    session.commit()
    assert float(session.scalar(text("SELECT gw_pct(1, 16)"))) == 6.3
    listed = client.get(
        "/api/v1/reports", query_string={"week": "2026-W40"}, headers=history.auth("admin")
    ).json
    assert [r["coverage"] for r in listed] == [6.3]
    from api.services.rates import percent

    assert [percent(p, w) for p, w in ((1, 16), (3, 16), (5, 16), (1, 3), (2, 3))] == [
        6.3,
        18.8,
        31.3,
        33.3,
        66.7,
    ]
    assert (percent(0, 0), percent(0, 7), percent(7, 7)) == (None, 0.0, 100.0)


def test_the_pdfs_map_keeps_the_grids_shape_and_its_charts_name_grids_across_communities():
    """Found by a review: a square grid (on the ground) was drawn 1.3x as wide as high at
    Beijing's latitude; a street's grids were all labelled 001, 002... in the bar chart; a week
    with nothing to cover was drawn as a fall to 0 %."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.linecharts import HorizontalLineChart
    from reportlab.graphics.shapes import Polygon

    from api.services import report_render

    font = report_render._font()
    lat = 39.9
    side = 0.01  # degrees of latitude; the same ground distance east is side / cos(lat)
    east = side / math.cos(math.radians(lat))
    ring = [[116.4, lat], [116.4 + east, lat], [116.4 + east, lat + side], [116.4, lat + side]]
    shapes = {"110105001001001": {"type": "Polygon", "coordinates": [ring + [ring[0]]]}}
    report = {"grids": [{"code": "110105001001001", "coverage": 50.0}]}
    [polygon] = [
        s for s in report_render._map(report, shapes, font).contents if isinstance(s, Polygon)
    ]
    xs, ys = polygon.points[0::2], polygon.points[1::2]
    assert (max(xs) - min(xs)) / (max(ys) - min(ys)) == pytest.approx(1.0, rel=0.01)

    grids = [{"code": f"11010500100{c}00{g}", "coverage": 50.0} for c in (1, 2) for g in (1, 2)]
    [bars] = [
        s
        for s in report_render._bar_chart({"grids": grids}, font).contents
        if isinstance(s, VerticalBarChart)
    ]
    assert bars.categoryAxis.categoryNames == ["001-001", "001-002", "002-001", "002-002"]

    trend = [{"week": "2026-W40", "coverage": None}, {"week": "2026-W41", "coverage": 60.0}]
    [line] = [
        s
        for s in report_render._trend_chart({"trend": trend}, font).contents
        if isinstance(s, HorizontalLineChart)
    ]
    assert line.data == [[None, 60.0]]


def test_the_pdfs_bar_chart_says_when_it_shows_only_some_of_the_grids():
    """Found by a review: a street's or district's report of more than 60 grids drew the first
    60 bars under the title 各网格覆盖率, the others left out without a word."""
    from reportlab.graphics.shapes import String

    from api.services import report_render

    font = report_render._font()

    def title(count: int) -> str:
        grids = [
            {"code": f"110105001{c:03}{g:03}", "coverage": 50.0}
            for c, g in [(1 + n // 20, 1 + n % 20) for n in range(count)]
        ]
        chart = report_render._bar_chart({"grids": grids}, font)
        return next(s.text for s in chart.contents if isinstance(s, String))

    assert title(60) == "各网格覆盖率 (%)"
    assert title(75) == "各网格覆盖率 (%)：前 60 个网格，共 75 个（全部见表格）"


@pytest.mark.parametrize("start", ["＝", "＋", "－", "＠"])
def test_a_name_starting_like_a_formula_in_full_width_is_quoted_in_the_csv(
    client, session, history, start
):
    """Excel with a Chinese (or Japanese) input method reads ＝ (U+FF1D) as =: a grid named
    ＝HYPERLINK(…) was written as it is, a formula once the CSV opened (OWASP lists the
    full-width forms beside = + - @)."""
    name = start + 'HYPERLINK("http://example.com/x","点我")'
    _name_badly(session, grid=name)
    rows = list(
        csv.reader(io.StringIO(_get(client, history, format="csv").data.decode("utf-8-sig")))
    )
    assert "'" + name in [row[1] for row in rows]
