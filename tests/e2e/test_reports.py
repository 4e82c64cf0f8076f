"""The weekly report's page (/reports) in headless Chromium: the community office reads last
week's coverage report, steps through the weeks, downloads it as PDF, XLSX and CSV, and finds
the stored Monday reports; a worker is told the reports are not theirs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.services.report_render import TAG_NAMES
from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_GRID, screenshot, sign_in
from tests.e2e.test_accounts import PHONE, TAP, TOO_SMALL, WIDER_THAN_SCREEN

COMMUNITY = DEMO_GRID[:12]


def this_week() -> str:
    from api.services.weeks import current_week

    return current_week(datetime.now(UTC))


def weeks_ago(n: int) -> str:
    from api.services.weeks import shift_week

    return shift_week(this_week(), -n)


def open_reports(page, username: str = "admin01") -> None:
    page.goto("/reports")
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")


def shown_week(page, week: str) -> None:
    page.wait_for_selector(f"#figures[data-week='{week}']")


def api_report(page, week: str, **scope) -> dict:
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    query = "&".join(f"{k}={v}" for k, v in {"week": week, **scope}.items())
    response = page.request.get(
        f"/api/v1/reports/coverage?{query}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.ok, response.text()
    return response.json()


def report_name(page, week: str, community: str) -> str:
    return api_report(page, week, community=community)["name"]


def pct(value) -> str:
    return "—" if value is None else f"{value:.1f}%"


def figure(page, name: str) -> str:
    return page.inner_text(f"[data-figure={name}]").strip()


def must_visit_rows(page) -> list[list[str]]:
    return page.locator("#must-visit-groups tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )


def assert_figures_match(page, report: dict) -> None:
    totals = report["totals"]
    assert figure(page, "coverage") == pct(totals["coverage"])
    assert figure(page, "visited") == f"{totals['visited']} / {totals['households']}"
    assert figure(page, "not-visited") == str(totals["not_visited_2w"])
    due = sum(m["due"] for m in totals["must_visit"])
    done = sum(m["done"] for m in totals["must_visit"])
    assert figure(page, "must-visit") == f"{done} / {due}"
    # and each must-visit group's own figures, as the downloads give them (the sum counts a
    # household with two tags under each).
    assert must_visit_rows(page) == [
        [TAG_NAMES[m["tag"]], f"{m['done']} / {m['due']}", pct(m["rate"])]
        for m in totals["must_visit"]
    ]
    for rate in ("response_rate", "resolution_rate", "satisfaction_rate"):
        assert figure(page, rate.replace("_", "-")) == pct(totals["tasks"][rate])
        # and the 12345 tickets' own, what the community is judged by
        hotline = f"hotline-{rate.replace('_', '-')}"
        assert figure(page, hotline) == pct(totals["tasks"]["hotline"][rate])
    # The need and problem lists visits produce: open as the week closed, raised and done in it.
    for kind in ("need", "problem"):
        listed = totals["lists"][kind]
        assert figure(page, f"{kind}-list") == str(listed["open"])
        assert figure(page, f"{kind}-list-week") == (
            f"本周新增 {listed['raised']}，办结 {listed['done']}"
        )
    # The grids, worst covered first (a grid with no households last).
    codes = page.locator("#grids tbody tr").evaluate_all("rows => rows.map(r => r.dataset.code)")
    worst_first = sorted(
        report["grids"],
        key=lambda g: (g["coverage"] is None, g["coverage"] or 0, g["code"]),
    )
    assert codes == [g["code"] for g in worst_first]
    # each with its lists: needs / problems open, and done this week beneath
    lists = page.locator("#grids tbody td.lists").evaluate_all(
        "cells => cells.map(c => [c.querySelector('span').textContent,"
        " c.querySelector('small').textContent])"
    )
    assert lists == [
        [
            f"{g['lists']['need']['open']} / {g['lists']['problem']['open']}",
            f"办结 {g['lists']['need']['done']} / {g['lists']['problem']['done']}",
        ]
        for g in worst_first
    ]


def test_an_admin_reads_last_weeks_report_as_the_api_gives_it_and_steps_back(page):
    open_reports(page)
    last = weeks_ago(1)
    shown_week(page, last)
    report = api_report(page, last, community=COMMUNITY)
    assert report["grids"], "the demo community has grids"
    assert report["name"] in page.inner_text("#scope-name")
    assert last in page.inner_text("#week-label")
    assert_figures_match(page, report)

    page.click("#week-prev")
    shown_week(page, weeks_ago(2))
    assert_figures_match(page, api_report(page, weeks_ago(2), community=COMMUNITY))

    # Forward to the week under way (its figures so far), and no further.
    page.click("#week-next")
    shown_week(page, last)
    assert page.locator("#week-next").is_enabled()
    page.click("#week-next")
    shown_week(page, this_week())
    assert page.locator("#week-next").is_disabled()
    current = api_report(page, this_week(), community=COMMUNITY)
    assert current["totals"]["visited"] > 0  # the demo's visits of this week
    assert_figures_match(page, current)
    screenshot(page, "reports")


def test_an_admin_downloads_the_report_as_pdf_xlsx_and_csv_named_in_chinese(page):
    open_reports(page)
    last = weeks_ago(1)
    shown_week(page, last)
    name = api_report(page, last, community=COMMUNITY)["name"]
    for fmt, magic in (("pdf", b"%PDF"), ("xlsx", b"PK"), ("csv", "\ufeff网格编码".encode())):
        with page.expect_download() as info:
            page.click(f"#download-{fmt}")
        download = info.value
        assert download.suggested_filename == f"走访覆盖周报-{last}-{name}.{fmt}"
        assert Path(download.path()).read_bytes().startswith(magic), fmt


@pytest.fixture
def stored_report(e2e_engine):
    """A stored Monday report of the demo community, as the Monday run stores it."""
    from api.models import Report, ReportFile
    from api.services import report_store

    week = weeks_ago(3)
    now = datetime.now(UTC)
    with Session(e2e_engine, expire_on_commit=False) as session:
        report = session.scalar(
            select(Report).where(
                Report.week == week, Report.level == "community", Report.code == COMMUNITY
            )
        )
        made = report is None
        if made:
            from api.models import Community

            name = session.scalar(select(Community.name).where(Community.code == COMMUNITY))
            report = Report(week=week, level="community", code=COMMUNITY, name=name, created_at=now)
            session.add(report)
            session.flush()
            report_store.store_files(session, report, now)
        session.commit()
    yield report
    if made:
        with Session(e2e_engine) as session:
            session.execute(delete(ReportFile).where(ReportFile.report_id == report.id))
            session.execute(delete(Report).where(Report.id == report.id))
            session.commit()


def test_a_stored_monday_report_is_listed_and_its_files_download(page, stored_report):
    open_reports(page)
    row = page.locator(f"#stored tbody tr[data-id='{stored_report.id}']")
    row.wait_for()
    assert stored_report.week in row.inner_text()
    assert stored_report.name in row.inner_text()
    for fmt, magic in (("pdf", b"%PDF"), ("xlsx", b"PK")):
        with page.expect_download() as info:
            row.locator(f"button[data-format={fmt}]").click()
        download = info.value
        expected = f"走访覆盖周报-{stored_report.week}-{stored_report.name}.{fmt}"
        assert download.suggested_filename == expected
        assert Path(download.path()).read_bytes().startswith(magic), fmt


def test_a_stored_report_says_the_visits_that_came_after_it_and_opens_the_live_one(
    page, e2e_engine
):
    """A phone kept visits of the week offline and synced them after the report was made: the
    stored report, the week as it stood then, says how many, and opens the week's live report.
    (A report stored just before the last of a week's visits reached the server; no visit is
    written or removed here: the weekly figures' ledger counts what is inserted.)"""
    from sqlalchemy import func

    from api.models import Grid, Report, Visit

    area = Visit.grid_id.in_(select(Grid.id).where(Grid.code.startswith(COMMUNITY)))
    with Session(e2e_engine, expire_on_commit=False) as session:
        stored = select(Report.week).where(Report.code == COMMUNITY)
        week, last = session.execute(
            select(Visit.week, func.max(Visit.received_at))
            .where(area, Visit.week.not_in(stored))
            .group_by(Visit.week)
            .order_by(Visit.week.desc())
            .limit(1)
        ).one()
        made = last - timedelta(seconds=1)
        late = session.scalar(
            select(func.count()).where(area, Visit.week == week, Visit.received_at > made)
        )
        report = Report(
            week=week, level="community", code=COMMUNITY, name="演示社区", created_at=made
        )
        session.add(report)
        session.commit()
    try:
        open_reports(page)
        note = page.locator(f"#stored tbody tr[data-id='{report.id}'] .late-visits")
        note.wait_for()
        assert f"生成后又收到本周走访 {late} 条" in note.inner_text()
        note.locator("button[data-live]").click()
        page.wait_for_function(f"() => document.querySelector('#week').value === '{week}'")
    finally:
        with Session(e2e_engine) as session:
            session.execute(delete(Report).where(Report.id == report.id))
            session.commit()


def test_a_worker_is_told_in_chinese_that_the_reports_are_not_theirs(page):
    page.goto("/reports")
    sign_in(page, "worker01", DEMO_PASSWORD)
    notice = page.locator("#notice")
    notice.wait_for()
    text = notice.inner_text()
    assert "无权查看周报" in text
    # The server's own words beneath.
    assert "Coverage reports are for grid leaders, admins and viewers." in text
    assert page.locator("#report").is_visible() is False
    assert page.locator("#stored-section").is_visible() is False
    assert page.locator("#week-prev").is_visible() is False


def test_a_failure_is_said_in_chinese_with_the_servers_detail_and_a_retry_reads_the_week(page):
    problem = {"title": "Service Unavailable", "status": 503, "detail": "数据库正在升级。"}

    def refuse(route):
        route.fulfill(status=503, content_type="application/problem+json", body=json.dumps(problem))

    page.route("**/api/v1/reports/coverage?*", refuse)
    open_reports(page)
    notice = page.locator("#notice")
    notice.wait_for()
    assert "无法读取周报" in notice.inner_text()
    assert "服务器答复：数据库正在升级。" in notice.inner_text()
    assert page.locator("#report").is_visible() is False

    page.unroute("**/api/v1/reports/coverage?*", refuse)
    page.click("#week-prev")
    shown_week(page, weeks_ago(2))
    assert notice.is_visible() is False
    assert_figures_match(page, api_report(page, weeks_ago(2), community=COMMUNITY))


def test_the_page_speaks_english_too(page):
    page.goto("/reports?lang=en")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    shown_week(page, weeks_ago(1))
    assert page.inner_text("#week-prev") == "‹ Week before"
    assert "Coverage" in page.inner_text("#figures")
    assert "Monday reports" in page.inner_text("#stored-section")
    groups = page.locator("#must-visit-groups")
    assert groups.locator("thead").inner_text().split() == ["Group", "Done", "/", "due", "Rate"]
    assert "living alone" in groups.locator("tbody").inner_text()
    assert "counts under each" in page.inner_text("#must-visit-section")


def test_a_district_viewer_reads_the_district_and_chooses_a_community(page):
    open_reports(page, "viewer")
    last = weeks_ago(1)
    shown_week(page, last)
    district = DEMO_GRID[:6]
    assert_figures_match(page, api_report(page, last, district=district))
    option = page.locator(f"#scope option[value='community:{COMMUNITY}']")
    page.wait_for_function("(o) => !/\\d{12}/.test(o.textContent)", arg=option.element_handle())
    assert option.inner_text() == f"社区 {report_name(page, last, COMMUNITY)}"
    page.select_option("#scope", f"community:{COMMUNITY}")
    page.wait_for_selector(f"#figures[data-scope='community:{COMMUNITY}']")
    assert_figures_match(page, api_report(page, last, community=COMMUNITY))
    page.select_option("#scope", f"street:{COMMUNITY[:9]}")
    page.wait_for_selector(f"#figures[data-scope='street:{COMMUNITY[:9]}']")
    assert_figures_match(page, api_report(page, last, street=COMMUNITY[:9]))
    # The street's tasks one by one: its communities', not the whole district's.
    href = page.locator("#week-tasks").get_attribute("href")
    assert f"street={COMMUNITY[:9]}" in href and "community=" not in href
    page.click("#week-tasks")
    page.wait_for_selector("#tasks[data-loaded='1']", state="attached")
    assert f"只显示街道 {COMMUNITY[:9]} 的工单" in page.inner_text("#community-chosen")


TABLET = {"width": 768, "height": 1024}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_on_a_tablet_the_grids_and_workers_tables_fit_the_screen_in_either_language(page, lang):
    """Found walking the page on a 768x1024 tablet: in English the grids' table, its headings
    kept on one line each (Not visited 2+ weeks, Must-visit done / due...), was 943 px wide, so
    the page scrolled sideways and Overdue tasks was off the screen; the workers' table too."""
    page.set_viewport_size(TABLET)
    page.goto(f"/reports?lang={lang}")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    shown_week(page, weeks_ago(1))
    assert page.locator("#grids").is_visible() and page.locator("#workers").is_visible()
    assert page.evaluate(WIDER_THAN_SCREEN) == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= TABLET["width"]
    # Still a table there (the cards are for a phone), every heading shown.
    assert page.locator("#grids thead").is_visible()
    headings = page.locator("#grids thead th").all_inner_texts()
    assert ("Overdue tasks" if lang == "en" else "超期工单") in headings
    screenshot(page, f"reports-tablet-{lang}")


def test_on_a_phone_the_report_fits_and_its_controls_are_big_enough_to_tap(page, stored_report):
    page.set_viewport_size(PHONE)
    open_reports(page)
    shown_week(page, weeks_ago(1))
    page.locator(f"#stored tbody tr[data-id='{stored_report.id}']").wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(WIDER_THAN_SCREEN) == []
    assert page.evaluate(TOO_SMALL, ["body", TAP]) == []
    fonts = page.locator("select, input").evaluate_all(
        "els => els.filter((e) => e.getClientRects().length)"
        ".map((e) => getComputedStyle(e).fontSize)"
    )
    assert set(fonts) <= {"16px"}
    screenshot(page, "reports-phone")
    # The trend's four narrow columns stay a table (eight cards of four lines were a long scroll).
    page.click("#trend-section summary")
    assert page.locator("#trend-table thead").is_visible()
    assert (
        page.locator("#trend-table tbody tr").evaluate_all(
            "rows => rows.map((r) => getComputedStyle(r).display)"
        )
        == ["table-row"] * page.locator("#trend-table tbody tr").count()
    )
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(WIDER_THAN_SCREEN) == []


@pytest.mark.parametrize("username", ["admin01", "leader01", "viewer"])
def test_the_maps_toolbar_links_to_the_reports_page_for_who_may_read_them(page, username):
    """Everyone the map serves may read reports (leaders their grids, viewers their district)."""
    page.goto("/map")
    sign_in(page, username, DEMO_PASSWORD)
    page.locator("#toolbar").wait_for()
    page.click("#reports-link")
    page.wait_for_selector("body[data-ready='1']")
    assert page.url.endswith("/reports")


def test_the_accounts_page_links_to_the_reports_page(page):
    page.goto("/accounts")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    page.click("#reports-link")
    page.wait_for_selector("body[data-ready='1'] #figures[data-week]")
    assert page.url.endswith("/reports")


def trend_bars(page) -> list[dict]:
    return page.locator("#trend-chart [data-week]").evaluate_all(
        """gs => gs.map((g) => ({
          week: g.dataset.week,
          text: g.textContent.replace(/\\s+/g, " ").trim(),
          height: Number(g.querySelector('rect.bar').getAttribute('height')),
          selected: g.classList.contains('selected'),
        }))"""
    )


def test_the_trend_draws_each_weeks_coverage_labelled_with_the_chosen_week_highlighted(page):
    """The report's trend (the weeks ending with the chosen one): a bar per week in an SVG
    chart, each labelled with its week and its coverage in text, the chosen week marked; the
    same figures in a table beneath (for a screen reader, or to read exactly)."""
    open_reports(page)
    last = weeks_ago(1)
    shown_week(page, last)
    page.click("#week-next")
    shown_week(page, this_week())
    trend = api_report(page, this_week(), community=COMMUNITY)["trend"]
    assert len(trend) >= 7 and trend[-1]["week"] == this_week()

    chart = page.locator("#trend-chart")
    assert chart.get_attribute("role") == "img"
    label = chart.get_attribute("aria-label")
    bars = trend_bars(page)
    assert [b["week"] for b in bars] == [p["week"] for p in trend]
    for bar, point in zip(bars, trend, strict=True):
        assert point["week"].split("-")[1] in bar["text"]
        assert pct(point["coverage"]) in bar["text"]
        assert f"{point['week']} {pct(point['coverage'])}" in label
    # Heights follow coverage: the higher a week's coverage, the taller its bar.
    assert bars[-1]["height"] > 0  # this week's visits
    coverage = [p["coverage"] or 0 for p in trend]
    for a, b in [(a, b) for a in range(len(bars)) for b in range(len(bars))]:
        assert (coverage[a] > coverage[b]) == (bars[a]["height"] > bars[b]["height"])
    assert [b["week"] for b in bars if b["selected"]] == [this_week()]
    screenshot(page, "reports-trend")

    # The table is folded under the chart until asked for.
    assert page.locator("#trend-table").is_visible() is False
    page.click("#trend-section summary")
    rows = page.locator("#trend-table tbody tr").evaluate_all(
        "rows => rows.map((r) => [...r.cells].map((c) => c.textContent.trim()))"
    )
    assert rows == [
        [p["week"], str(p["households"]), str(p["visited"]), pct(p["coverage"])] for p in trend
    ]
    current = page.locator("#trend-table tbody tr[aria-current='true']")
    assert current.count() == 1 and this_week() in current.inner_text()

    # A week back: the trend ends with that week, and it is the one marked.
    page.click("#week-prev")
    shown_week(page, last)
    trend = api_report(page, last, community=COMMUNITY)["trend"]
    bars = trend_bars(page)
    assert [b["week"] for b in bars] == [p["week"] for p in trend]
    assert [b["week"] for b in bars if b["selected"]] == [last]
    assert "走访覆盖率趋势" in page.inner_text("#trend-section")


def test_the_trend_speaks_english_too(page):
    page.goto("/reports?lang=en")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    last = weeks_ago(1)
    shown_week(page, last)
    assert "Coverage trend" in page.inner_text("#trend-section")
    assert page.locator("#trend-chart").get_attribute("aria-label").startswith("Coverage by week")
    page.click("#trend-section summary")
    assert page.inner_text("#trend-section summary") == "Show as a table"
    assert "Week" in page.inner_text("#trend-table thead")


WORKER_COLUMNS = ["name", "visits", "households", "a_days", "b_days"]


def worker_rows(page) -> list[dict]:
    return page.locator("#workers tbody tr").evaluate_all(
        """rows => rows.map((r) => ({
          id: Number(r.dataset.id),
          cells: [...r.cells].map((c) => c.textContent.replace(/\\s+/g, " ").trim()),
        }))"""
    )


def sorted_by(page) -> dict:
    return page.locator("#workers thead th").evaluate_all(
        "ths => Object.fromEntries(ths.map((th) =>"
        " [th.dataset.sort, th.getAttribute('aria-sort')]))"
    )


def test_the_workers_figures_are_a_table_worst_first_sorted_by_any_column(page):
    """The report's per-worker figures (visits, households found, A- and B-post days): a row
    per worker, fewest households first; a click on a heading sorts by it, again the other way."""
    open_reports(page)
    shown_week(page, weeks_ago(1))
    page.click("#week-next")
    shown_week(page, this_week())
    workers = api_report(page, this_week(), community=COMMUNITY)["workers"]
    assert len(workers) > 1 and any(w["visits"] for w in workers)
    by_id = {w["id"]: w for w in workers}

    rows = worker_rows(page)
    assert sorted(r["id"] for r in rows) == sorted(by_id)
    for row in rows:
        w = by_id[row["id"]]
        assert w["name"] in row["cells"][0] and w["username"] in row["cells"][0]
        assert row["cells"][1:] == [str(w[k]) for k in WORKER_COLUMNS[1:]]
    # Worst first: fewest households found, then fewest visits.
    keys = [(by_id[r["id"]]["households"], by_id[r["id"]]["visits"]) for r in rows]
    assert keys == sorted(keys)
    assert sorted_by(page) == {
        "name": "none",
        "visits": "none",
        "households": "ascending",
        "a_days": "none",
        "b_days": "none",
    }

    page.click("#workers th[data-sort=visits] button")
    visits = [by_id[r["id"]]["visits"] for r in worker_rows(page)]
    assert visits == sorted(visits)
    assert sorted_by(page)["visits"] == "ascending"
    assert sorted_by(page)["households"] == "none"
    page.click("#workers th[data-sort=visits] button")
    visits = [by_id[r["id"]]["visits"] for r in worker_rows(page)]
    assert visits == sorted(visits, reverse=True) and visits[0] > visits[-1]
    assert sorted_by(page)["visits"] == "descending"

    # By name, as the page's language orders names (pinyin for Chinese).
    page.click("#workers th[data-sort=name] button")
    names = [by_id[r["id"]]["name"] for r in worker_rows(page)]
    assert names == page.evaluate(
        "(names) => [...names].sort(new Intl.Collator('zh-CN').compare)", names
    )
    assert sorted_by(page)["name"] == "ascending"
    assert "网格员" in page.inner_text("#workers-section h3")

    # Another week keeps the order chosen.
    page.click("#week-prev")
    shown_week(page, weeks_ago(1))
    assert sorted_by(page)["name"] == "ascending"
    assert sorted(r["id"] for r in worker_rows(page)) == sorted(
        w["id"] for w in api_report(page, weeks_ago(1), community=COMMUNITY)["workers"]
    )


def test_the_workers_table_speaks_english_too(page):
    page.goto("/reports?lang=en")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    shown_week(page, weeks_ago(1))
    heads = page.inner_text("#workers thead")
    for word in ("Worker", "Visits", "Households visited", "A-post days", "B-post days"):
        assert word in heads


def test_a_district_viewers_streets_and_communities_are_named_from_the_report(page):
    """The streets were offered by their 9-digit codes (no API named them); the report's
    communities now carry their names and their street's, so both are named, with no other
    read (the grids, which named the communities before, are refused here)."""
    page.route("**/api/v1/grids*", lambda route: route.abort())
    open_reports(page, "viewer")
    last = weeks_ago(1)
    shown_week(page, last)
    communities = api_report(page, last, district=DEMO_GRID[:6])["communities"]
    street = page.locator(f"#scope option[value='street:{COMMUNITY[:9]}']")
    assert street.inner_text() == f"街道 {communities[0]['street_name']}"
    options = page.locator("#scope option[value^='community:']").evaluate_all(
        "os => os.map((o) => [o.value, o.textContent])"
    )
    assert options == [[f"community:{c['code']}", f"社区 {c['name']}"] for c in communities]
    page.select_option("#scope", f"street:{COMMUNITY[:9]}")
    page.wait_for_selector(f"#figures[data-scope='street:{COMMUNITY[:9]}']")
    assert communities[0]["street_name"] in page.inner_text("#scope-name")


def test_a_district_viewers_areas_are_named_in_english_too(page):
    page.goto("/reports?lang=en")
    sign_in(page, "viewer", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    shown_week(page, weeks_ago(1))
    street = page.locator(f"#scope option[value='street:{COMMUNITY[:9]}']")
    assert street.inner_text() == "Street 景山街道"


# --- what keeps coming back (未诉先办) ----------------------------------------------------------


def api_recurring(page, **query) -> dict:
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    response = page.request.get(
        "/api/v1/tasks/recurring",
        params=query,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.ok, response.text()
    return response.json()


def recurring_loaded(page, key: str) -> None:
    page.wait_for_selector(f"#recurring-section[data-loaded='{key}']")


def test_what_keeps_coming_back_to_the_community_is_shown_as_the_api_reads_it(page):
    open_reports(page)
    recurring_loaded(page, f"{COMMUNITY}:4")
    answer = api_recurring(page, community=COMMUNITY, weeks=4)
    section = page.locator("#recurring-section")
    assert "反复出现的问题（未诉先办）" in section.inner_text()
    status = section.locator(".status").inner_text()
    assert status == f"本期工单 {answer['tasks']} 件，前期 {answer['previous_tasks']} 件。"
    assert section.locator("table.places tbody tr").count() == len(answer["places"])
    assert section.locator("ul.words li").count() == len(answer["words"])
    if not answer["places"] and not answer["words"]:
        none = section.locator(".none").inner_text()
        assert none == "近4周没有反复出现的问题（同一说法至少3件工单）。"


CANNED = {
    "grid": None,
    "community": COMMUNITY,
    "weeks": 4,
    "start": "2026-11-07T02:00:00+00:00",
    "end": "2026-12-05T02:00:00+00:00",
    "previous_start": "2026-10-10T02:00:00+00:00",
    "tasks": 17,
    "previous_tasks": 9,
    "places": [
        {
            "phrase": "楼道灯",
            "grid_code": DEMO_GRID,
            "lon": 116.39,
            "lat": 39.92,
            "radius_m": 12.4,
            "building": "3",
            "unit": "2",
            "tasks": 3,
            "previous": 1,
            "sources": {"window": 1, "hotline": 2},
            "task_ids": [12, 11, 10],
        }
    ],
    "words": [
        {"phrase": "楼道灯", "tasks": 3, "previous": 1, "task_ids": [12, 11, 10]},
        {"phrase": "wifi", "tasks": 4, "previous": 4, "task_ids": [9, 8, 7, 6]},
    ],
}


def serve_canned(page, answer=CANNED) -> list[str]:
    """The recurring reading answered with `answer`; the URLs asked, in order."""
    asked: list[str] = []

    def fulfil(route):
        asked.append(route.request.url)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))

    page.route("**/api/v1/tasks/recurring*", fulfil)
    return asked


def test_a_recurring_place_and_its_phrases_are_drawn_with_the_grid_named_and_the_rise(page):
    asked = serve_canned(page)
    open_reports(page)
    recurring_loaded(page, f"{COMMUNITY}:4")
    grid_name = next(
        g["name"] for g in api_report(page, weeks_ago(1))["grids"] if g["code"] == DEMO_GRID
    )
    row = page.locator("#recurring-section table.places tbody tr")
    assert row.get_attribute("data-phrase") == "楼道灯"
    cells = row.locator("td").all_inner_texts()
    assert cells[:2] == ["楼道灯", grid_name]
    # Where: the registered entrance nearest the place, and how far its tasks spread.
    assert cells[2:5] == ["3 ↑2", "1", "3号楼2单元附近，约12米内"]
    assert cells[5:] == ["12345热线 2 · 窗口 1", "#12 #11 #10", "地图上查看"]
    words = page.locator("#recurring-section ul.words li").all_inner_texts()
    assert [" ".join(w.split()) for w in words] == ["楼道灯 3 ↑2 前期 1", "wifi 4 持平 前期 4"]
    assert "community=" + COMMUNITY in asked[0] and "weeks=4" in asked[0]
    # Another span reads again; another week of the report does not.
    page.select_option("#recurring-section select", "8")
    recurring_loaded(page, f"{COMMUNITY}:8")
    assert "weeks=8" in asked[-1]
    page.click("#week-prev")
    shown_week(page, weeks_ago(2))
    assert len(asked) == 2


def test_what_keeps_coming_back_speaks_english_too(page):
    """A place with no registered entrance within reach says how far its tasks spread only."""
    place = {**CANNED["places"][0], "building": None, "unit": None}
    serve_canned(page, {**CANNED, "places": [place]})
    page.goto("/reports?lang=en")
    sign_in(page, "admin01", DEMO_PASSWORD)
    recurring_loaded(page, f"{COMMUNITY}:4")
    section = page.locator("#recurring-section")
    assert "Problems that keep coming back" in section.inner_text()
    assert section.locator(".status").inner_text() == "17 tasks in this span, 9 in the span before."
    cells = section.locator("table.places tbody td").all_inner_texts()
    assert cells[2:6] == ["3 ↑2", "1", "within 12 m", "12345 hotline 2 · window 1"]


def test_a_district_viewer_is_asked_for_a_community_then_reads_what_recurs_there(page):
    open_reports(page, "viewer")
    recurring_loaded(page, "none")
    assert page.locator("#recurring-section .status").inner_text() == (
        "请在上方选择一个社区，查看其中反复出现的问题。"
    )
    page.select_option("#scope", f"community:{COMMUNITY}")
    recurring_loaded(page, f"{COMMUNITY}:4")
    answer = api_recurring(page, community=COMMUNITY, weeks=4)
    status = page.locator("#recurring-section .status").inner_text()
    assert status == f"本期工单 {answer['tasks']} 件，前期 {answer['previous_tasks']} 件。"


def test_what_recurs_is_read_again_with_the_next_week_after_a_failed_read(page):
    """The first read fails (the server or the network): the section says so, and the report's
    next week reads it again (before, it kept the failure until the span was changed or the
    page reloaded: the same community was not asked twice)."""
    asked: list[str] = []

    def fulfil(route):
        asked.append(route.request.url)
        if len(asked) == 1:
            route.fulfill(
                status=503,
                content_type="application/problem+json",
                body=json.dumps({"title": "Service Unavailable", "status": 503, "detail": "busy"}),
            )
        else:
            route.fulfill(status=200, content_type="application/json", body=json.dumps(CANNED))

    page.route("**/api/v1/tasks/recurring*", fulfil)
    open_reports(page)
    status = page.locator("#recurring-section .status")
    page.wait_for_function(
        "() => document.querySelector('#recurring-section .status').textContent.includes('busy')"
    )
    assert status.inner_text() == "无法读取反复出现的问题。 busy"
    page.click("#week-prev")
    shown_week(page, weeks_ago(2))
    recurring_loaded(page, f"{COMMUNITY}:4")
    assert len(asked) == 2
    assert page.locator("#recurring-section table.places tbody tr").count() == 1
    # Read once it is read: the week after asks nothing more.
    page.click("#week-next")
    shown_week(page, weeks_ago(1))
    assert len(asked) == 2


def test_a_recurring_place_opens_on_the_map_where_it_is(page):
    """The place was a grid and a radius: the office could not see where. Its link opens the
    map there, at z17 where households are drawn, pinned."""
    place = CANNED["places"][0]
    serve_canned(page)
    open_reports(page)
    recurring_loaded(page, f"{COMMUNITY}:4")
    link = page.locator("#recurring-section a.on-map")
    assert link.get_attribute("href") == f"/map?at={place['lon']:.6f},{place['lat']:.6f}"
    link.click()
    page.wait_for_selector(".asked-place")
    center = page.evaluate("() => window.gridworkMap.getCenter().toArray()")
    assert center == pytest.approx([place["lon"], place["lat"]], abs=1e-6)
    assert page.evaluate("() => window.gridworkMap.getZoom()") == 17


@pytest.mark.parametrize("at", ["200,40", "116.4", "abc,def", "116.4,39.9;alert(1)"])
def test_a_map_link_to_no_place_opens_the_map_over_the_grids(page, at):
    page.goto(f"/map?at={at}")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_function("() => window.gridworkMap && window.gridworkMap.getZoom() !== 13")
    assert page.locator(".asked-place").count() == 0


def test_a_rise_is_red_a_fall_green_and_the_same_grey(page):
    serve_canned(page)
    open_reports(page)
    recurring_loaded(page, f"{COMMUNITY}:4")
    colour = "(el) => getComputedStyle(el).color"
    words = page.locator("#recurring-section ul.words li .rise")
    assert words.nth(0).evaluate(colour) == "rgb(176, 0, 32)"  # 楼道灯 3, 1 before: ↑2
    assert words.nth(1).evaluate(colour) == "rgb(107, 119, 128)"  # wifi 4, 4 before: 持平
