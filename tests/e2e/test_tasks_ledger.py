"""The tasks' ledger (/tasks, 工单台账): the office reads every task of a week whatever its
state, and finds a 12345 ticket's task in any week. Before it, a task closed left every page:
the app lists open tasks, the reports page gives counts, and the office asked about a ticket
by the hotline had nowhere to look."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import update
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_task_detail import make_task  # noqa: F401 (a fixture)


def open_ledger(page, username: str = "admin01", query: str = ""):
    page.goto(f"/tasks{query}")
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")


def listed(page) -> list[int]:
    return [int(i) for i in page.locator("#tasks tbody tr").evaluate_all(
        "(rows) => rows.map((r) => r.dataset.id)"
    )]  # fmt: skip


def settled(page):
    """Wait until the list asked for last is drawn."""
    page.wait_for_selector("#tasks[data-loaded='1']", state="attached")


@pytest.fixture()
def closed_and_open(page, make_task):  # noqa: F811
    """A closed task and an open one of this week, the ledger read by admin01."""
    closed, _ = make_task(status="closed")
    open_, _ = make_task(status="dispatched")
    open_ledger(page)
    settled(page)
    return closed, open_


def test_the_office_reads_the_weeks_tasks_closed_ones_too_and_opens_one(page, closed_and_open):
    closed, open_ = closed_and_open
    assert {closed, open_} <= set(listed(page))
    row = page.locator(f"#tasks tr[data-id='{closed}']")
    assert row.locator(".col-state").inner_text() == "已关闭"
    assert "12345热线 E2E" in row.locator(".col-task").inner_text()
    screenshot(page, "tasks-ledger")

    page.select_option("#filter-state", "open")
    settled(page)
    assert open_ in listed(page)
    assert "state=open" in page.url  # the address keeps the list: a link opens it again

    page.locator(f"#tasks tr[data-id='{open_}'] button.open-task").click()
    page.wait_for_selector(f"#task-detail[data-task='{open_}'] h2")
    assert "楼道灯不亮" in page.inner_text("#task-detail h2")


def test_a_ticket_number_finds_its_task_in_an_earlier_week(
    page,
    e2e_engine,
    make_task,  # noqa: F811
):
    from api.models import Task

    old, _ = make_task(status="closed")
    with Session(e2e_engine) as session:
        session.execute(
            update(Task)
            .where(Task.id == old)
            .values(created_at=datetime.now(UTC) - timedelta(weeks=5))
        )
        session.commit()
        ticket = session.get(Task, old).external_id
    open_ledger(page)
    settled(page)
    assert old not in listed(page)  # not this week's
    page.fill("#filter-ticket", ticket)
    page.wait_for_selector(f"#tasks tr[data-id='{old}']")
    settled(page)
    assert listed(page) == [old]
    assert page.locator("#week").is_disabled()
    page.fill("#filter-ticket", "NO-SUCH-TICKET")
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('NO-SUCH-TICKET')"
    )
    assert listed(page) == []


def test_the_office_downloads_the_ledger_as_its_filters_find_it(page, closed_and_open):
    """Every task the filters find, not the page shown: the file the office files or sends up."""
    closed, open_ = closed_and_open
    page.select_option("#filter-state", "closed")
    settled(page)
    week = page.input_value("#week")
    with page.expect_download() as info:
        page.click("#download-xlsx")
    assert info.value.suggested_filename == f"工单台账-{week}.xlsx"
    book = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()), read_only=True)
    header, *rows = book.active.iter_rows(values_only=True)
    assert header[:3] == ("编号", "登记时间", "来源")
    assert closed in {row[0] for row in rows} and open_ not in {row[0] for row in rows}
    assert {row[header.index("状态")] for row in rows} == {"已关闭"}
    with page.expect_download() as info:
        page.click("#download-csv")
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    assert str(closed) in {row[0] for row in csv.reader(io.StringIO(text))}
    assert page.inner_text("#download-status") == ""


def test_the_office_reads_the_weeks_problem_list(
    page,
    make_task,  # noqa: F811
):
    """The need and problem lists are ledgers the office keeps: the week's tasks on one."""
    on_list, _ = make_task(status="dispatched", list_kind="problem")
    off_list, _ = make_task(status="dispatched")
    open_ledger(page)
    settled(page)
    page.select_option("#filter-list", "problem")
    settled(page)
    assert on_list in listed(page) and off_list not in listed(page)
    row = page.locator(f"#tasks tr[data-id='{on_list}']")
    assert "问题清单" in row.locator(".col-task").inner_text()
    assert "list=problem" in page.url


def test_the_weekly_report_links_to_its_weeks_tasks(page):
    page.goto("/reports")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    link = page.locator("#week-tasks")
    href = link.get_attribute("href")
    assert href.startswith("/tasks?week=") and "community=" in href
    link.click()
    page.wait_for_selector("body[data-ready='1']")
    week = href.split("week=")[1].split("&")[0]
    assert page.input_value("#week") == week
    assert "只显示社区 110101001001 的工单" in page.inner_text("#community-chosen")
    page.click("#community-clear")
    page.wait_for_selector("#community-chosen", state="hidden")
    assert "community=" not in page.url


def test_the_weekly_reports_list_figures_open_the_tasks_raised_on_them(
    page,
    make_task,  # noqa: F811
):
    """The report counts the week's new problems; its link opens them one by one."""
    task, _ = make_task(status="dispatched", list_kind="problem")
    page.goto("/reports")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    page.click("#week-next")  # the week under way, the task's
    link = page.locator("[data-list-link='problem']")
    link.wait_for()
    href = link.get_attribute("href")
    assert "list=problem" in href and "community=110101001001" in href
    link.click()
    page.wait_for_selector("body[data-ready='1']")
    settled(page)
    assert page.input_value("#filter-list") == "problem"
    assert task in listed(page)


def test_a_worker_is_told_the_ledger_is_the_offices(page):
    open_ledger(page, "worker01")
    assert page.is_visible("#notice") and "网格员应用" in page.inner_text("#notice")
    assert page.is_hidden("#tasks-section")


def test_the_ledger_speaks_english_too(page, make_task):  # noqa: F811
    task, _ = make_task(status="resolved")
    open_ledger(page, query="?lang=en")
    settled(page)
    row = page.locator(f"#tasks tr[data-id='{task}']")
    assert row.locator(".col-state").inner_text() == "resolved"
    assert page.inner_text("#toolbar strong") == "Task ledger"


def test_on_a_phone_each_task_is_a_card_nothing_runs_off_and_its_title_is_tall_enough(
    page,
    make_task,  # noqa: F811
):
    task, _ = make_task(status="dispatched")
    phone = page
    phone.set_viewport_size({"width": 390, "height": 844})
    open_ledger(phone)
    settled(phone)
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    title = phone.locator(f"#tasks tr[data-id='{task}'] button.open-task").bounding_box()
    assert title["height"] >= 40
    assert phone.locator("#tasks thead").is_hidden()  # each cell says its heading instead


def test_a_leader_opens_a_check_in_every_grid_they_lead_and_reads_its_tasks(page, e2e_engine):
    """未诉先办: before the rains every grid clears its drains, opened at once for all the
    grids the caller leads, each task dispatched there; the ledger lists them."""
    from api.models import Task

    open_ledger(page, "leader01")
    settled(page)
    page.click("#campaign summary")
    form = page.locator("#campaign-form")
    form.locator("button[type=submit]").click()
    assert page.inner_text("#campaign-status") == "请填写任务名称。"
    title = f"汛期前清理雨水口 {datetime.now(UTC):%H%M%S%f}"
    form.locator("input[name=title]").fill(title)
    form.locator("select[name=urgency]").select_option("utility")
    form.locator("button[type=submit]").click()
    page.wait_for_function(
        "() => document.querySelector('#campaign-status').textContent.startsWith('已在')"
    )
    settled(page)
    with Session(e2e_engine) as session:
        opened = session.query(Task).filter(Task.title == title).all()
        assert opened and {t.source for t in opened} == {"proactive"}
        assert all(t.urgency == "utility" and t.assignee_id for t in opened)
        ids = [t.id for t in opened]
        grids = {t.grid_id for t in opened}
    assert len(grids) == len(ids)  # one a grid
    assert f"已在 {len(ids)} 个网格发起" in page.inner_text("#campaign-status")
    assert set(ids) <= set(listed(page))
    with Session(e2e_engine) as session:  # leave the shared demo as it was
        session.query(Task).filter(Task.id.in_(ids)).delete(synchronize_session=False)
        session.commit()


def test_a_district_viewer_is_offered_no_campaign(page):
    open_ledger(page, "viewer")
    settled(page)
    assert page.is_hidden("#campaign")


def test_a_check_goes_to_the_grids_chosen_only(page, e2e_engine):
    """A windy day threatens the high-rise grids, not the bungalows: the admin picks the grids
    the check goes to; all of them are ticked until some are unticked."""
    from api.models import Grid, Task

    open_ledger(page, "admin01")
    settled(page)
    page.click("#campaign summary")
    page.wait_for_selector("#campaign-grids:not([hidden])")
    boxes = page.locator("#campaign-grid-list input[name=grid]")
    codes = boxes.evaluate_all("(boxes) => boxes.map((b) => b.value)")
    assert len(codes) >= 3 and all(boxes.nth(i).is_checked() for i in range(len(codes)))
    page.uncheck("#campaign-all")
    form = page.locator("#campaign-form")
    title = f"大风天排查高空坠物 {datetime.now(UTC):%H%M%S%f}"
    form.locator("input[name=title]").fill(title)
    form.locator("button[type=submit]").click()
    assert page.inner_text("#campaign-status") == "请至少选择一个网格。"
    chosen = codes[:2]
    for code in chosen:
        page.check(f"#campaign-grid-list input[value='{code}']")
    assert not page.is_checked("#campaign-all")
    form.locator("button[type=submit]").click()
    page.wait_for_function(
        "() => document.querySelector('#campaign-status').textContent.startsWith('已在')"
    )
    assert "已在 2 个网格发起" in page.inner_text("#campaign-status")
    with Session(e2e_engine) as session:
        opened = session.query(Task.id, Grid.code).join(Grid, Grid.id == Task.grid_id)
        opened = opened.filter(Task.title == title).all()
        assert sorted(code for _, code in opened) == sorted(chosen)
        session.query(Task).filter(Task.id.in_([i for i, _ in opened])).delete(
            synchronize_session=False
        )  # leave the shared demo as it was
        session.commit()
    assert page.is_checked("#campaign-all")  # the form is ready for the next, every grid
