"""Render a coverage report (the dict of services.reports) as JSON, CSV, XLSX or PDF bytes."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from api import errors
from api.services.weeks import LOCAL
from api.sheets import csv_text, xlsx_row

CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
EXTENSIONS = {"json": "json", "csv": "csv", "xlsx": "xlsx", "pdf": "pdf"}


def _hotline(row: dict, key: str):
    """A figure of the row's 12345 tickets (a report stored before 2026-12-06 has none)."""
    return row["tasks"].get("hotline", {}).get(key)


def _list(row: dict, kind: str, key: str):
    """A figure of the row's need or problem list (a report stored before 2026-12-06 has none)."""
    return row.get("lists", {}).get(kind, {}).get(key)


# The need and problem lists (需求清单 / 问题清单), raised, done and open: columns of the grids.
LIST_COLUMNS = [
    (f"{word}{figure}", kind, key)
    for kind, word in (("need", "需求"), ("problem", "问题"))
    for figure, key in (("新增", "raised"), ("办结", "done"), ("待办", "open"))
]

TAG_NAMES = {
    "elderly_80": "80岁以上老人",
    "living_alone": "独居",
    "low_income": "低保",
    "disability": "残疾",
    "migrant": "流动人口",
    "child_in_difficulty": "困境儿童",
    "woman_in_difficulty": "困境妇女",
    "special_care": "特殊人群",
}
LEVEL_NAMES = {"grids": "网格", "community": "社区", "street": "街道", "district": "区"}

# (header, value of a grid or totals row); one list drives CSV, XLSX and the PDF table.
GRID_COLUMNS: list[tuple[str, Any]] = [
    ("网格编码", lambda r: r.get("code", "合计")),
    ("网格名称", lambda r: r.get("name", "")),
    ("户数", lambda r: r["households"]),
    ("住户", lambda r: r["households_by_kind"]["residence"]),
    ("商户", lambda r: r["households_by_kind"]["business"]),
    ("本周走访户数", lambda r: r["visited"]),
    ("覆盖率%", lambda r: r["coverage"]),
    ("走访次数", lambda r: r["visits"]),
    ("证据可靠", lambda r: r["visits_by_grade"]["ok"]),
    ("证据存疑", lambda r: r["visits_by_grade"]["doubtful"]),
    ("证据可疑", lambda r: r["visits_by_grade"]["suspect"]),
    ("顶岗走访", lambda r: r["relief_visits"]),
    ("未登记走访", lambda r: r["unregistered_visits"]),
    ("两周以上未走访", lambda r: r["not_visited_2w"]),
    ("必访应访", lambda r: sum(t["due"] for t in r["must_visit"])),
    ("必访已访", lambda r: sum(t["done"] for t in r["must_visit"])),
    ("新增工单", lambda r: r["tasks"]["opened"]),
    ("已办结", lambda r: r["tasks"]["resolved"]),
    ("超期", lambda r: r["tasks"]["overdue"]),
    ("响应率%", lambda r: r["tasks"]["response_rate"]),
    ("解决率%", lambda r: r["tasks"]["resolution_rate"]),
    ("满意率%", lambda r: r["tasks"]["satisfaction_rate"]),
    # The 12345 tickets' own (`tasks.hotline`): the three rates a community is judged by.
    ("12345工单", lambda r: _hotline(r, "opened")),
    ("12345响应率%", lambda r: _hotline(r, "response_rate")),
    ("12345解决率%", lambda r: _hotline(r, "resolution_rate")),
    ("12345满意率%", lambda r: _hotline(r, "satisfaction_rate")),
    *(
        (header, lambda r, kind=kind, key=key: _list(r, kind, key))
        for header, kind, key in LIST_COLUMNS
    ),
]
# The PDF's two grid tables, each of columns its page has room for: coverage, then tasks and
# the three rates (三率) a community is ranked by, as the page and the CSV give them.
PDF_GRID_COLUMNS = [
    "网格编码",
    "网格名称",
    "户数",
    "本周走访户数",
    "覆盖率%",
    "走访次数",
    "两周以上未走访",
    "必访应访",
    "必访已访",
]
PDF_TASK_COLUMNS = [
    "网格编码",
    "网格名称",
    "新增工单",
    "已办结",
    "超期",
    "响应率%",
    "解决率%",
    "满意率%",
]
WORKER_COLUMNS = [
    ("网格员", "name"),
    ("账号", "username"),
    ("走访次数", "visits"),
    ("覆盖户数", "households"),
    ("A岗天数", "a_days"),
    ("B岗天数", "b_days"),
]
COMMUNITY_COLUMNS = [
    ("社区编码", "code"),
    ("网格数", "grids"),
    ("户数", "households"),
    ("本周走访户数", "visited"),
    ("覆盖率%", "coverage"),
    ("走访次数", "visits"),
    ("两周以上未走访", "not_visited_2w"),
    ("新增工单", "tasks_opened"),
    ("已办结", "tasks_resolved"),
    ("超期", "tasks_overdue"),
    ("需求待办", "needs_open"),
    ("问题待办", "problems_open"),
]
TAG_COLUMNS = ["网格编码", "网格名称", "必访类别", "应访户数", "已访户数", "完成率%"]
TREND_COLUMNS = [
    ("周", "week"),
    ("户数", "households"),
    ("走访户数", "visited"),
    ("覆盖率%", "coverage"),
]


def negotiate(fmt: str | None, accept: str | None) -> str:
    """`format=` wins; else the best of the Accept header; nothing asked: JSON. Else a 406."""
    if fmt:
        fmt = fmt.lower()
        if fmt not in CONTENT_TYPES:
            raise errors.NotAcceptable(
                f"Format {fmt!r} is not offered; one of {', '.join(CONTENT_TYPES)}.",
                errors={"format": [f"One of {', '.join(CONTENT_TYPES)}."]},
            )
        return fmt
    if not accept:
        return "json"
    from werkzeug.datastructures import MIMEAccept
    from werkzeug.http import parse_accept_header

    offers = {ct.split(";")[0]: f for f, ct in CONTENT_TYPES.items()}
    best = parse_accept_header(accept, MIMEAccept).best_match(list(offers))
    if best is None:
        raise errors.NotAcceptable(f"None of {accept!r} is offered; one of {', '.join(offers)}.")
    return offers[best]


def render(report: dict[str, Any], fmt: str, shapes: dict[str, Any] | None = None) -> bytes:
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False).encode()
    if fmt == "csv":
        return to_csv(report)
    if fmt == "xlsx":
        return to_xlsx(report)
    if fmt == "pdf":
        return to_pdf(report, shapes or {})
    raise errors.NotAcceptable(f"Format {fmt!r} is not offered.")


def _made(report: dict[str, Any]) -> datetime | None:
    """When the figures of the week under way were read; None for a week that has ended."""
    made = datetime.fromisoformat(report["generated_at"])
    return None if made >= datetime.fromisoformat(report["period"]["end"]) else made


def so_far(report: dict[str, Any]) -> str | None:
    """For the week under way, the words saying its figures are so far, and as of when (Beijing
    time), as the page says; None for a week that has ended (every stored Monday report)."""
    made = _made(report)
    return made and f"本周尚未结束：数字截至 {made.astimezone(LOCAL):%Y-%m-%d %H:%M}（北京时间）"


def filename(report: dict[str, Any], fmt: str) -> str:
    """coverage-<code>-<week>.<ext>; for the week under way, -so-far-<Beijing time> before the
    extension: a copy taken on Sunday and the week's are not two files of one name."""
    made = _made(report)
    tail = f"-so-far-{made.astimezone(LOCAL):%Y%m%dT%H%M}" if made else ""
    return f"coverage-{report['code']}-{report['week']}{tail}.{EXTENSIONS[fmt]}"


def grid_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = [[f(g) for _, f in GRID_COLUMNS] for g in report["grids"]]
    rows.append([f(report["totals"]) for _, f in GRID_COLUMNS])
    return rows


def to_csv(report: dict[str, Any]) -> bytes:
    """The grid table with a totals row; UTF-8 with a BOM so spreadsheet programs read Chinese."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([h for h, _ in GRID_COLUMNS])
    for row in grid_rows(report):
        writer.writerow(["" if v is None else csv_text(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode()


def to_xlsx(report: dict[str, Any]) -> bytes:
    """One sheet per level (totals, communities, grids, workers) plus must-visit and trend;
    frozen header rows, plain values (no formulas), Chinese headers."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    bold = Font(bold=True)

    def sheet(title: str, headers: list[str], rows: list[list[Any]], first: bool = False):
        ws = wb.active if first else wb.create_sheet()
        ws.title = title
        ws.append(headers)
        for cell in ws[1]:
            cell.font = bold
        for row in rows:
            ws.append(xlsx_row(ws, row))  # a name like "=HYPERLINK(...)" is text
        ws.freeze_panes = "A2"
        for i, header in enumerate(headers, start=1):
            ws.column_dimensions[ws.cell(1, i).column_letter].width = max(10, 2 * len(header) + 2)

    t = report["totals"]
    sheet(
        "汇总",
        ["周", "层级", "编码", "名称", *[h for h, _ in GRID_COLUMNS[2:]], "数据截至"],
        [
            [
                report["week"],
                LEVEL_NAMES.get(report["level"], report["level"]),
                report["code"],
                report["name"],
                *[f(t) for _, f in GRID_COLUMNS[2:]],
                so_far(report) or "全周",
            ]
        ],
        first=True,
    )
    sheet(
        "社区",
        [h for h, _ in COMMUNITY_COLUMNS],
        # .get: a report stored before the lists (2026-12-06) has no figures of them.
        [[c.get(k) for _, k in COMMUNITY_COLUMNS] for c in report["communities"]],
    )
    sheet("网格", [h for h, _ in GRID_COLUMNS], grid_rows(report)[:-1])
    sheet(
        "网格员",
        [h for h, _ in WORKER_COLUMNS],
        [[w[k] for _, k in WORKER_COLUMNS] for w in report["workers"]],
    )
    sheet(
        "必访",
        TAG_COLUMNS,
        [
            [
                g["code"],
                g["name"],
                TAG_NAMES.get(m["tag"], m["tag"]),
                m["due"],
                m["done"],
                m["rate"],
            ]
            for g in report["grids"]
            for m in g["must_visit"]
        ],
    )
    sheet(
        "趋势",
        [h for h, _ in TREND_COLUMNS],
        [[w[k] for _, k in TREND_COLUMNS] for w in report["trend"]],
    )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- PDF ------------------------------------------------------------------------------------
def _font() -> str:
    """The report's font, embedded, falling back per character (api/pdf_fonts.py)."""
    from api.pdf_fonts import report_font

    return report_font()


def _shade(coverage: float | None):
    """Red (0 %) through amber to green (100 %); grey when there is nothing to cover."""
    from reportlab.lib import colors

    if coverage is None:
        return colors.HexColor("#cccccc")
    c = max(0.0, min(1.0, coverage / 100))
    return colors.Color(1 - c * 0.8, 0.25 + 0.6 * c, 0.25, alpha=1)


BAR_CHART_GRIDS = 60  # bars that stay legible across the page


def _bar_chart(report: dict[str, Any], font: str):
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing, String

    grids = report["grids"][:BAR_CHART_GRIDS]
    d = Drawing(480, 190, initialFontName=font)
    title = "各网格覆盖率 (%)"
    if len(report["grids"]) > len(grids):  # a street's or district's: say what is left out
        title += f"：前 {len(grids)} 个网格，共 {len(report['grids'])} 个（全部见表格）"
    d.add(String(0, 178, title, fontName=font, fontSize=10))
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 30, 30, 440, 140
    chart.data = [[g["coverage"] or 0 for g in grids] or [0]]
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 100, 20
    # A grid's own number (its code's last 3 digits) within one community; above it, with the
    # community's ("002-005"): a street's or district's grids repeat 001, 002...
    one_community = len({g["code"][:12] for g in grids}) <= 1
    chart.categoryAxis.categoryNames = [
        g["code"][-3:] if one_community else f"{g['code'][-6:-3]}-{g['code'][-3:]}" for g in grids
    ] or [""]
    chart.categoryAxis.labels.fontSize = 6 if len(grids) > 20 else 8
    chart.categoryAxis.labels.angle = 90 if len(grids) > 20 else 0
    chart.categoryAxis.labels.dy = -8
    chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = font
    chart.bars[0].fillColor = _shade(80)
    d.add(chart)
    return d


def _trend_chart(report: dict[str, Any], font: str):
    from reportlab.graphics.charts.linecharts import HorizontalLineChart
    from reportlab.graphics.shapes import Drawing, String

    d = Drawing(480, 170, initialFontName=font)
    d.add(String(0, 158, "近8周覆盖率趋势 (%)", fontName=font, fontSize=10))
    chart = HorizontalLineChart()
    chart.x, chart.y, chart.width, chart.height = 30, 25, 440, 120
    # A week with nothing to cover (no grid yet) is a gap in the line, not a fall to 0 %.
    chart.data = [[w["coverage"] for w in report["trend"]]]
    if all(v is None for v in chart.data[0]):
        d.add(String(30, 80, "无数据", fontName=font, fontSize=9))
        return d
    chart.categoryAxis.categoryNames = [w["week"][-3:] for w in report["trend"]]
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 100, 20
    chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = font
    chart.lines[0].strokeWidth = 2
    d.add(chart)
    return d


def _map(report: dict[str, Any], shapes: dict[str, Any], font: str):
    """The grids as they stood that week, shaded by coverage, fitted into a small box."""
    from reportlab.graphics.shapes import Drawing, Polygon, String

    d = Drawing(480, 260, initialFontName=font)
    d.add(String(0, 248, "网格覆盖率地图", fontName=font, fontSize=10))
    rings = []
    coverage = {g["code"]: g["coverage"] for g in report["grids"]}
    for code, geom in shapes.items():
        polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        rings.extend((code, poly[0]) for poly in polys if poly)
    if not rings:
        return d
    xs = [x for _, ring in rings for x, _ in ring]
    ys = [y for _, ring in rings for _, y in ring]
    # A degree of longitude is cos(latitude) of a degree of latitude on the ground: unscaled,
    # Beijing's grids were drawn 1.3x as wide as they are.
    kx = math.cos(math.radians((max(ys) + min(ys)) / 2))
    w, h = ((max(xs) - min(xs)) * kx) or 1e-9, (max(ys) - min(ys)) or 1e-9
    scale = min(470 / w, 235 / h)
    for code, ring in rings:
        points = []
        for x, y in ring:
            points += [5 + (x - min(xs)) * kx * scale, 5 + (y - min(ys)) * scale]
        d.add(
            Polygon(
                points,
                fillColor=_shade(coverage.get(code)),
                strokeColor=None if len(rings) > 400 else _shade(100),
                strokeWidth=0.3,
            )
        )
    return d


TABLE_FONT_SIZE = 6
CELL_PADDING = 12  # points: a table cell's left and right padding (reportlab's 6 each)


def _fitted_table(rows: list[list[str]], name_column: int, width: float, style, font: str):
    """A table as wide as its cells, but never wider than `width`: a name (a grid's or a
    worker's, up to 100 characters) too long for what the other columns leave is wrapped in
    its column. Left to size itself, a table of such a name was drawn wider than the page,
    centred, its first and last columns cut off."""
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import Paragraph, Table

    natural = [
        max(stringWidth(row[i], font, TABLE_FONT_SIZE) for row in rows) + CELL_PADDING
        for i in range(len(rows[0]))
    ]
    if sum(natural) <= width:
        return Table(rows, colWidths=natural, repeatRows=1, style=style)
    others = sum(natural) - natural[name_column]
    natural[name_column] = max(width - others, 4 * TABLE_FONT_SIZE + CELL_PADDING)
    # A Paragraph parses markup (the name is escaped) and, as CJK, breaks between any two
    # characters: a Chinese name has no spaces to break at.
    cell = ParagraphStyle(
        "cell", fontName=font, fontSize=TABLE_FONT_SIZE, leading=TABLE_FONT_SIZE * 1.25
    )
    cell.wordWrap = "CJK"
    wrapped = [
        [Paragraph(escape(v), cell) if i == name_column and n else v for i, v in enumerate(row)]
        for n, row in enumerate(rows)
    ]
    return Table(wrapped, colWidths=natural, repeatRows=1, style=style)


def _so_far(report: dict[str, Any], style) -> list:
    """For the week under way, a line saying its figures are so far (`so_far`)."""
    from reportlab.platypus import Paragraph

    words = so_far(report)
    return [Paragraph(f"{words}。", style)] if words else []


def _hotline_rates(totals: dict[str, Any], rate, style) -> list:
    """The 12345 tickets' three rates, what a community is judged by, beside every source's."""
    from reportlab.platypus import Paragraph

    hotline = totals["tasks"].get("hotline")
    if hotline is None:  # a report stored before 2026-12-06
        return []
    return [
        Paragraph(
            f"12345 三率: 响应率 {rate(hotline['response_rate'])}, "
            f"解决率 {rate(hotline['resolution_rate'])}, "
            f"满意率 {rate(hotline['satisfaction_rate'])} (12345工单 {hotline['opened']} 件).",
            style,
        )
    ]


def to_pdf(report: dict[str, Any], shapes: dict[str, Any]) -> bytes:
    """A4: headline figures, coverage by grid, the 8-week trend, the map, then the tables."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )

    font = _font()
    title = ParagraphStyle("t", fontName=font, fontSize=15, leading=20)
    body = ParagraphStyle("b", fontName=font, fontSize=9, leading=13)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"网格走访覆盖率周报 {report['week']}",
        initialFontName=font,  # else each page sets Helvetica, a font the PDF does not carry
    )
    t = report["totals"]
    level = LEVEL_NAMES.get(report["level"], report["level"])

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value}%"

    story = [
        Paragraph(f"网格走访覆盖率周报 {report['week']}", title),
        # A Paragraph parses markup: a name is text ("A<B社区" would be an unclosed tag).
        Paragraph(escape(f"{level}: {report['name']} ({report['code']})"), body),
        Paragraph(
            f"网格 {t['grids']} 个, 户数 {t['households']}, 本周走访 {t['visited']} 户, "
            f"覆盖率 {rate(t['coverage'])}, "
            f"两周以上未走访 {t['not_visited_2w']} 户, 新增工单 {t['tasks']['opened']}, "
            f"已办结 {t['tasks']['resolved']}, 超期 {t['tasks']['overdue']}.",
            body,
        ),
        *_so_far(report, body),
        Paragraph(
            f"三率: 响应率 {rate(t['tasks']['response_rate'])}, "
            f"解决率 {rate(t['tasks']['resolution_rate'])}, "
            f"满意率 {rate(t['tasks']['satisfaction_rate'])}.",
            body,
        ),
        *_hotline_rates(t, rate, body),
        Spacer(1, 4 * mm),
        _bar_chart(report, font),
        _trend_chart(report, font),
        _map(report, shapes, font),
        PageBreak(),
    ]
    style = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), font, TABLE_FONT_SIZE),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ]
    )
    every = grid_rows(report)

    def grid_table(headers: list[str]):
        columns = [[h for h, _ in GRID_COLUMNS].index(h) for h in headers]
        rows = [[("" if row[i] is None else str(row[i])) for i in columns] for row in every]
        return _fitted_table([headers, *rows], 1, doc.width, style, font)

    story += [
        Paragraph("各网格", body),
        grid_table(PDF_GRID_COLUMNS),
        Spacer(1, 4 * mm),
        Paragraph("各网格工单与三率", body),
        grid_table(PDF_TASK_COLUMNS),
    ]
    if report["workers"]:
        story += [
            Spacer(1, 4 * mm),
            Paragraph("网格员", body),
            _fitted_table(
                [
                    [h for h, _ in WORKER_COLUMNS],
                    *[[str(w[k]) for _, k in WORKER_COLUMNS] for w in report["workers"]],
                ],
                0,
                doc.width,
                style,
                font,
            ),
        ]
    doc.build(story)
    return out.getvalue()
