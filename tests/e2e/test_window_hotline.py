"""The community office registers the 12345 hotline's tickets on the window's page (/window), and
changes a ticket's time limit when the hotline extends it (延期) on the ticket's page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.e2e.conftest import poll
from tests.e2e.test_window import (
    BEIJING,
    OTHER_GRID,
    click_map,
    grid_pixel,
    open_task,
    open_window,
    register_request,
    tasks_titled,
    window_day,  # noqa: F401 (a fixture)
)

# Today's roster: worker01 at the window, worker02 out in OTHER_GRID (who gets its tasks).
pytestmark = pytest.mark.usefixtures("window_day")


def ticket_number() -> str:
    return f"BJ12345-{datetime.now(UTC):%H%M%S%f}"


def tomorrow_at_six_pm() -> datetime:
    day = datetime.now(BEIJING).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 18, 0, tzinfo=BEIJING)


def worker(e2e_engine, user_id: int) -> str:
    from api.models import User

    with Session(e2e_engine) as session:
        return session.get(User, user_id).username


def fill_ticket(page, number: str, title: str, due: datetime | None = None) -> None:
    page.check("input[name=source][value=hotline]")
    page.fill("input[name=external_id]", number)
    if due is not None:
        page.fill("input[name=due_at]", due.strftime("%Y-%m-%dT%H:%M"))
    page.check("input[name=type][value=complaint]")
    page.fill("input[name=title]", title)
    page.fill("input[name=name]", "李建国")
    page.fill("input[name=phone]", "13800001111")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])


def test_the_office_registers_a_12345_ticket_with_the_time_limit_the_hotline_gave(page, e2e_engine):
    open_window(page, "admin01")
    assert page.is_visible("#source-choice")
    assert page.is_hidden("#ticket-fields")  # a walk-in by default
    number, due = ticket_number(), tomorrow_at_six_pm()
    fill_ticket(page, number, "小区门口占道经营（12345）", due)
    assert page.is_visible("#ticket-fields")
    assert page.inner_text("#submit") == "登记工单并派单"
    # The day's list is the tickets registered today, not the walk-ins.
    assert page.inner_text("#today-title") == "今日登记的12345工单"
    page.click("#submit")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, "小区门口占道经营（12345）")
    assert (task.source, task.type, task.external_id) == ("hotline", "complaint", number)
    # The hotline's time limit is the task's deadline (and the ticket's), not the urgency's.
    assert task.ticket_due_at == due and task.due_at == due
    assert worker(e2e_engine, task.assignee_id) == "worker02"  # out in that grid today
    assert task.complainant == {"name": "李建国", "phone": "13800001111"}
    row = page.locator(f"#today-tasks tr[data-id='{task.id}']")
    row.wait_for()
    assert row.locator(".due").inner_text() == due.strftime("%Y/%m/%d %H:%M")
    # The form is cleared for the next ticket, and stays on the hotline's.
    assert page.is_checked("input[name=source][value=hotline]")
    assert page.input_value("input[name=external_id]") == ""
    assert page.input_value("input[name=due_at]") == ""
    # Back on the walk-ins, their own list.
    page.check("input[name=source][value=window]")
    assert page.is_hidden("#ticket-fields")
    page.wait_for_function(
        "() => document.querySelector('#today-title').textContent === '今日窗口受理'"
    )
    assert page.locator(f"#today-tasks tr[data-id='{task.id}']").count() == 0


def test_a_ticket_without_its_number_is_not_sent(page, e2e_engine):
    open_window(page, "admin01")
    fill_ticket(page, "", "没有编号的工单")
    page.click("#submit")
    assert page.inner_text(".field-error[data-field=external_id]") == "请填写工单编号"
    assert page.evaluate("() => document.activeElement.name") == "external_id"
    assert tasks_titled(e2e_engine, "没有编号的工单") == []


def test_a_ticket_registered_twice_names_its_task_and_makes_no_second(page, e2e_engine):
    open_window(page, "admin01")
    number = ticket_number()
    fill_ticket(page, number, "噪音扰民（第一次登记）")
    page.click("#submit")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, "噪音扰民（第一次登记）")
    # A colleague types the same ticket again.
    fill_ticket(page, number, "噪音扰民（又登记一次）")
    page.click("#submit")
    box = page.locator("#form-error")
    box.wait_for()
    assert f"工单 {number} 已登记为任务 #{task.id}，这次没有重复登记。" in box.inner_text()
    assert tasks_titled(e2e_engine, "噪音扰民（又登记一次）") == []
    # The refusal opens the task the ticket is.
    box.locator(f"button[data-open='{task.id}']").click()
    detail = page.locator(f"#task-detail[data-task='{task.id}']")
    detail.locator("h2").wait_for()
    assert detail.locator("h2").inner_text() == "噪音扰民（第一次登记）"


def test_the_worker_at_the_window_registers_walk_ins_only(page):
    """The tickets are the office's: the A-post worker's page has no source to choose."""
    open_window(page, "worker01")
    assert page.is_hidden("#source-choice")
    assert page.is_hidden("#ticket-fields")


def test_the_office_enters_the_hotline_s_extension_on_the_ticket_s_page(page, e2e_engine):
    from api.models import Task, TaskEvent

    open_window(page, "admin01")
    fill_ticket(page, ticket_number(), "楼顶漏水（待延期）", tomorrow_at_six_pm())
    page.click("#submit")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, "楼顶漏水（待延期）")
    detail = open_task(page, task.id)
    detail.locator("details.ticket-deadline summary").click()
    field = detail.locator("input[name=due_at]")
    # The form starts at the deadline as it stands, in Beijing time.
    assert field.input_value() == tomorrow_at_six_pm().strftime("%Y-%m-%dT%H:%M")
    later = tomorrow_at_six_pm() + timedelta(days=3)
    field.fill(later.strftime("%Y-%m-%dT%H:%M"))
    detail.locator("form.ticket-deadline input[name=note]").fill("热线批准延期3天")
    detail.locator("form.ticket-deadline button").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent"
        " === '办理时限已调整，承办人已收到通知。'"
    )
    with Session(e2e_engine) as session:
        stored = session.get(Task, task.id)
        assert stored.due_at == later and stored.ticket_due_at == later
        [step] = session.scalars(
            select(TaskEvent).where(TaskEvent.task_id == task.id, TaskEvent.action == "deadline")
        )
        assert step.note.endswith("热线批准延期3天")
    assert "调整时限" in detail.locator("ol.events").inner_text()
    # Today's list follows.
    page.keyboard.press("Escape")
    page.wait_for_function(
        f"""() => document.querySelector("#today-tasks tr[data-id='{task.id}'] .due")
                  ?.textContent === '{later.strftime("%Y/%m/%d %H:%M")}'"""
    )


def test_a_time_limit_already_past_is_refused_with_the_server_s_words(page, e2e_engine):
    open_window(page, "admin01")
    fill_ticket(page, ticket_number(), "已过期的时限", datetime.now(BEIJING) - timedelta(hours=1))
    page.click("#submit")
    page.locator("#form-error").wait_for()
    error = page.inner_text(".field-error[data-field=due_at]")
    assert error == "办理时限须晚于现在，且在90天之内。"
    assert tasks_titled(e2e_engine, "已过期的时限") == []


def test_a_walk_in_s_page_offers_no_time_limit_to_change(page, e2e_engine):
    """Only a 12345 ticket's deadline is the hotline's: a walk-in's follows its urgency."""
    open_window(page, "admin01")
    task = register_request(page, e2e_engine, "窗口求助（无时限可调）")
    assert open_task(page, task.id).locator("details.ticket-deadline").count() == 0


def test_the_ledger_leads_the_office_to_where_tickets_are_registered(page):
    from tests.e2e.test_tasks_ledger import open_ledger

    open_ledger(page, "admin01")
    link = page.locator("#to-window")
    assert link.is_visible() and link.inner_text() == "登记诉求和12345工单"
    link.click()
    page.wait_for_selector("body[data-ready='1']")
    assert page.is_visible("#source-choice")


def test_a_grid_leader_s_ledger_has_no_such_link(page):
    from tests.e2e.test_tasks_ledger import open_ledger

    open_ledger(page, "leader01")
    assert page.is_hidden("#to-window")


def test_a_conflict_asking_to_send_again_is_not_said_registered(page, e2e_engine):
    """A 409 that is no repeat (the grid retired meanwhile, the ticket received elsewhere at
    the same moment) says to send it again: said as "registered before", the ticket was never
    registered."""

    def retired_meanwhile(route):
        if route.request.method != "POST":
            return route.continue_()
        return route.fulfill(
            status=409,
            content_type="application/problem+json",
            json={
                "type": "https://gridwork.example/problems/conflict",
                "title": "Conflict",
                "status": 409,
                "detail": "Grid 110101001001002 was retired while this request was under way;"
                " send it again.",
            },
        )

    open_window(page, "admin01")
    page.route("**/api/v1/tasks", retired_meanwhile)
    fill_ticket(page, ticket_number(), "网格撤销时登记的工单")
    page.click("#submit")
    box = page.locator("#form-error")
    box.wait_for()
    assert box.locator(".why").inner_text() == "任务未能登记："
    assert "send it again" in box.locator(".detail").inner_text()
    assert box.locator("button[data-open]").count() == 0


def test_a_list_read_before_the_source_changed_does_not_take_its_place(page, e2e_engine):
    """Today's walk-ins still on their way as the office turns to the tickets: drawn under
    今日登记的12345工单, they were taken for tickets (and for a lost answer's ticket)."""
    open_window(page, "admin01")
    walk_in = register_request(page, e2e_engine, "窗口来访（先登记）")
    held = []

    def hold_the_walk_ins(route):
        if "source=window" in route.request.url and not held:
            held.append(route)  # answered late, below
            return None
        return route.continue_()

    page.route("**/api/v1/tasks?*", hold_the_walk_ins)
    page.evaluate("() => document.querySelector('#day').dispatchEvent(new Event('change'))")
    assert poll(page, lambda: held)  # the read went out, and waits
    page.check("input[name=source][value=hotline]")
    page.wait_for_function(
        "() => document.querySelector('#today-status').textContent"
        " === '今天还没有登记的12345工单。'"
    )
    held[0].continue_()
    page.wait_for_timeout(500)
    assert page.inner_text("#today-title") == "今日登记的12345工单"
    assert page.locator(f"#today-tasks tr[data-id='{walk_in.id}']").count() == 0


def test_the_deadline_sent_untouched_changes_nothing(page, e2e_engine):
    """The field holds the deadline to the minute: sent as it stood, a deadline the urgency set
    (with its seconds) was changed, a step "X → X" written and the assignee told."""
    from api.models import TaskEvent

    open_window(page, "admin01")
    fill_ticket(page, ticket_number(), "未改时限的工单")  # no time limit: the urgency's
    page.click("#submit")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, "未改时限的工单")
    detail = open_task(page, task.id)
    detail.locator("details.ticket-deadline summary").click()
    detail.locator("form.ticket-deadline button").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent"
        " === '办理时限与原来相同，没有改动。'"
    )
    [stored] = tasks_titled(e2e_engine, "未改时限的工单")
    assert stored.due_at == task.due_at and stored.ticket_due_at is None
    with Session(e2e_engine) as session:
        steps = session.scalars(select(TaskEvent.action).where(TaskEvent.task_id == task.id))
        assert "deadline" not in list(steps)


def test_a_time_limit_the_server_refuses_is_said_in_chinese(page, e2e_engine):
    """A past time limit typed for a ticket's extension: the page said the server's English
    ("办理时限未调整：due_at 2026-… must be after now"), the window's form its own words."""
    open_window(page, "admin01")
    fill_ticket(page, ticket_number(), "延期填错的工单")
    page.click("#submit")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, "延期填错的工单")
    detail = open_task(page, task.id)
    detail.locator("details.ticket-deadline summary").click()
    detail.locator("form.ticket-deadline input[name=due_at]").fill("2020-01-01T09:00")
    detail.locator("form.ticket-deadline button").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent"
        ".startsWith('办理时限未调整')"
    )
    said = page.inner_text("#task-detail .task-status")
    assert said == "办理时限未调整：办理时限须晚于现在，且在90天之内。"
