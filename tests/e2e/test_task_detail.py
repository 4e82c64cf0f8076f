"""A task's own page in the workers' app (任务详情): the lists showed a title, a state and a
deadline, so the worker never read what the resident asked, nor their number (first contact is
due within hours), nor the door; and the leader told "任务已办结，待回访" could neither record
the return call nor close the task. A tap on the title opens the task, its history and the steps
the caller may take."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import (
    DEMO_GRID,
    lose_the_first_answer,
    poll,
    screenshot,
    sign_in,
    sign_out_declined,
    wait_kept,
)


def open_app(page, username: str, lang: str = "zh"):
    page.goto(f"/app?lang={lang}")
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    return page


NEXT_GRID = DEMO_GRID[:-1] + "2"  # the demo community's second grid, leader01's too
ASKED = "三楼到五楼的楼道灯坏了一个月，老人晚上看不见。"


@pytest.fixture()
def make_task(e2e_engine):
    """A 12345 complaint at the demo grid's (or `grid_code`'s) first household, held by
    worker01."""
    from api.models import Grid, Household, Notification, Task, TaskEvent, User

    made: list[int] = []

    def make(
        status: str = "dispatched", grid_code: str = DEMO_GRID, **fields
    ) -> tuple[int, tuple[str, str, str]]:
        from api.services.weeks import current_week, week_bounds

        now = datetime.now(UTC)
        # Two hours ago, but this week: the ledger lists this week's tasks, and two hours
        # before 02:00 on a Monday (Beijing) was last week.
        opened = max(now - timedelta(hours=2), week_bounds(current_week(now))[0])
        with Session(e2e_engine) as session:
            grid = session.scalar(select(Grid.id).where(Grid.code == grid_code))
            worker = session.scalar(select(User.id).where(User.username == "worker01"))
            household = session.scalar(
                select(Household)
                .where(Household.grid_id == grid, Household.removed_at.is_(None))
                .order_by(Household.id)
                .limit(1)
            )
            task = Task(
                source="hotline", type="complaint", urgency="general", grid_id=grid,
                title="楼道灯不亮",
                description=fields.pop("description", ASKED),
                complainant=fields.pop("complainant", {"name": "王秀英", "phone": "139 1234 5678"}),
                external_id=f"E2E{now:%H%M%S%f}", household_id=household.id,
                location=household.location, status=status,
                assignee_id=fields.pop("assignee_id", worker),
                created_at=opened, due_at=now + timedelta(days=5),
                first_contact_due_at=now + timedelta(hours=22),
                resolved_at=now if status == "resolved" else None, **fields,
            )  # fmt: skip
            session.add(task)
            session.flush()
            session.add(
                TaskEvent(
                    task_id=task.id, action="dispatch", from_status="new",
                    to_status="dispatched", note="12345 派单", at=opened,
                )
            )  # fmt: skip
            session.commit()
            made.append(task.id)
            address = (household.building, household.unit, household.room)
            return task.id, address

    yield make
    with Session(e2e_engine) as session:
        session.execute(TaskEvent.__table__.delete().where(TaskEvent.task_id.in_(made)))
        for task_id in made:
            session.execute(
                Notification.__table__.delete().where(
                    Notification.data["task_id"].as_integer() == task_id
                )
            )
        session.execute(Task.__table__.delete().where(Task.id.in_(made)))
        session.commit()


def task_row(e2e_engine, task_id: int):
    from api.models import Task

    with Session(e2e_engine) as session:
        task = session.get(Task, task_id)
        return task.status, task.satisfaction, [(e.action, e.note) for e in task.events]


def open_task(page, task_id: int, list_id: str = "tasks"):
    page.click(f"#{list_id} li[data-id='{task_id}'] button.open-task")
    page.wait_for_selector(f"#task-detail[data-task='{task_id}'] h2")
    return page.locator("#task-detail")


def test_a_worker_reads_what_the_resident_asked_and_calls_them_from_the_task(
    page, e2e_engine, make_task
):
    task_id, (building, unit, room) = make_task()
    open_app(page, "worker01")
    detail = open_task(page, task_id)
    text = detail.inner_text()
    assert "楼道灯不亮" in text
    assert "三楼到五楼的楼道灯坏了一个月" in text  # what the resident said
    assert "王秀英" in text
    assert detail.locator("a.phone").get_attribute("href") == "tel:13912345678"
    assert detail.locator("tr.ticket td").inner_text().startswith("E2E")
    assert (
        "-".join(p for p in (building, unit, room) if p) in detail.locator("tr.where").inner_text()
    )
    assert detail.locator("tr.where a.on-map").get_attribute("href").startswith("/map?at=")
    assert detail.locator("tr.contact-due").count() == 1  # not yet contacted: when it is due
    assert detail.locator("ol.events li .event-note").all_inner_texts() == ["12345 派单"]
    # Its steps: the assignee's from dispatched.
    steps = detail.locator("form.task-steps .actions button").all_inner_texts()
    assert steps == ["接单", "退回", "上报"]
    screenshot(page, "app-task-detail")


def test_a_step_taken_from_the_task_is_recorded_with_its_note(page, e2e_engine, make_task):
    task_id, _ = make_task()
    open_app(page, "worker01")
    detail = open_task(page, task_id)
    detail.locator("textarea[name=note]").fill("已电话联系王阿姨，明天上门查看")
    detail.locator("button[data-step=accept]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已接单。'"
    )
    assert task_row(e2e_engine, task_id)[0] == "accepted"
    assert ("accept", "已电话联系王阿姨，明天上门查看") in task_row(e2e_engine, task_id)[2]
    # The page read again: its state, its history, and the next step.
    assert detail.locator(".state").inner_text() == "已接单"
    assert detail.locator("tr.contact-due").count() == 0  # contacted now
    assert detail.locator("form.task-steps .actions button").all_inner_texts() == [
        "开始处理",
        "办结",
        "退回",
        "上报",
    ]
    # The list behind it was read again too.
    page.wait_for_function(
        f"""() => document.querySelector("#tasks li[data-id='{task_id}'] .state")
                  ?.textContent === '已接单'"""
    )


def test_a_return_from_the_task_needs_its_reason_and_sends_nothing_without(
    page, e2e_engine, make_task
):
    task_id, _ = make_task()
    open_app(page, "worker01")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/transitions" in r.url else None)
    detail = open_task(page, task_id)
    detail.locator("button[data-step=return]").click()
    assert detail.locator(".task-status").inner_text() == "退回必须写明原因。"
    assert sent == []
    detail.locator("textarea[name=note]").fill("不在本网格，应派给二网格")
    detail.locator("button[data-step=return]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已退回。'"
    )
    assert task_row(e2e_engine, task_id)[0] == "returned"


def test_a_step_whose_answer_was_lost_is_taken_once_when_pressed_again(page, e2e_engine, make_task):
    task_id, _ = make_task()
    open_app(page, "worker01")
    keys = lose_the_first_answer(page, f"**/api/v1/tasks/{task_id}/transitions")
    detail = open_task(page, task_id)
    detail.locator("button[data-step=accept]").click()
    status = detail.locator(".task-status")
    said = "() => document.querySelector('#task-detail .task-status')?.textContent"
    page.wait_for_function(f"{said}.includes('不会重复')")
    assert "请联网后再按一次" in status.inner_text()
    detail.locator("button[data-step=accept]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已接单。'"
    )
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert [a for a, _ in task_row(e2e_engine, task_id)[2]].count("accept") == 1


def test_a_leader_records_the_return_call_and_closes_a_resolved_task(page, e2e_engine, make_task):
    task_id, _ = make_task(status="resolved")
    open_app(page, "leader01")
    item = page.locator(f"#grid-task-list li[data-id='{task_id}']")
    item.wait_for()
    assert item.locator(".task-state").inner_text() == "已办结"  # awaiting the callback
    detail = open_task(page, task_id, "grid-task-list")
    assert detail.locator("form.task-steps .actions button").all_inner_texts() == [
        "记录回访",
        "关闭任务",
        "重启",
    ]
    detail.locator("button[data-step=callback]").click()
    assert detail.locator(".task-status").inner_text() == "回访需选择居民的满意度。"
    detail.locator("select[name=satisfaction]").select_option("satisfied")
    detail.locator("textarea[name=note]").fill("回访王阿姨：灯已修好")
    detail.locator("button[data-step=callback]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已记录回访。'"
    )
    assert task_row(e2e_engine, task_id)[:2] == ("callback", "satisfied")
    detail.locator("button[data-step=close]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已关闭任务。'"
    )
    assert task_row(e2e_engine, task_id)[0] == "closed"
    assert detail.locator("form.task-steps .actions button").all_inner_texts() == ["重启"]
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#task-detail').open")
    # Closed, it leaves the leader's list.
    page.wait_for_selector(f"#grid-task-list li[data-id='{task_id}']", state="detached")


def test_offline_a_task_of_mine_opens_as_last_read_and_a_step_on_it_is_kept(
    context, page, e2e_engine, make_task
):
    """In a basement with no signal, the worker tapped the task to read what the resident
    asked, their number and the door, or to press 办结: "离线：任务详情需要联网". Their open tasks'
    pages are kept as the list is read, and open offline as last read, steps and all."""
    task_id, (building, unit, room) = make_task(status="accepted")
    open_app(page, "worker01")
    wait_kept(page, task_id)
    go_offline(context, page)
    detail = open_task(page, task_id)
    assert detail.locator(".kept-copy").inner_text().startswith("离线：这是 ")
    text = detail.inner_text()
    assert "楼道灯不亮" in text and ASKED in text and "王秀英" in text
    assert detail.locator("a.phone").get_attribute("href") == "tel:13912345678"
    assert f"{building}-{unit}-{room}" in text
    assert "12345 派单" in text  # its history as read
    screenshot(page, "app-task-detail-offline")
    detail.locator("textarea[name=note]").fill(NOTE)
    detail.locator("button[data-step=resolve]").click()
    status_says(page, "待发送")
    assert task_row(e2e_engine, task_id)[0] == "accepted"
    context.set_offline(False)
    sent(page, task_id)
    assert task_row(e2e_engine, task_id)[0] == "resolved"
    # Resolved, it left the worker's open tasks: its page leaves the phone.
    wait_kept(page, task_id, kept=False)


def test_reopened_offline_the_task_list_says_its_steps_are_kept_not_that_they_need_a_network(
    context, page, make_task
):
    """The saved list said 联网后才能办理 (act once online): its steps, and its pages, are kept on
    the phone and sent once online."""
    task_id, _ = make_task()
    open_app(page, "worker01")
    wait_kept(page, task_id)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    go_offline(context, page)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    note = page.locator("#tasks li.saved-copy").inner_text()
    assert note.startswith("离线：显示 ") and note.endswith(
        "保存的任务列表；所做的步骤保存在本机，联网后发送"
    )
    context.set_offline(False)


def test_a_kept_page_whose_deadline_passed_since_it_was_read_says_it_is_overdue(
    context, page, make_task
):
    task_id, _ = make_task()
    open_app(page, "worker01")
    wait_kept(page, task_id)
    # Read an hour before its deadline; the worker opens it offline after.
    page.evaluate(
        """async (id) => {
          const idb = await import('/web/idb.js');
          const kept = await idb.getMeta('taskPages');
          kept.pages[id].task.due_at = new Date(Date.now() - 3600e3).toISOString();
          kept.pages[id].task.overdue = false;
          await idb.setMeta('taskPages', kept);
        }""",
        task_id,
    )
    go_offline(context, page)
    detail = open_task(page, task_id)
    assert detail.locator("b.overdue").inner_text() == "已超期"


def test_a_kept_page_holds_the_door_of_the_household_and_none_of_its_residents(page, make_task):
    task_id, (building, unit, room) = make_task()
    open_app(page, "worker01")
    kept = wait_kept(page, task_id)[str(task_id)]
    household = kept["household"]
    assert set(household) == {"building", "unit", "floor", "room"}  # no name, no phone
    assert (household["building"], household["unit"], household["room"]) == (building, unit, room)
    assert kept["task"]["id"] == task_id and kept["readAt"]


def test_a_task_given_to_another_worker_leaves_the_phone(page, e2e_engine, make_task):
    from api.models import Task, User

    task_id, _ = make_task()
    open_app(page, "worker01")
    wait_kept(page, task_id)
    with Session(e2e_engine) as session:
        other = session.scalar(select(User.id).where(User.username == "worker02"))
        session.get(Task, task_id).assignee_id = other
        session.commit()
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    wait_kept(page, task_id, kept=False)


def test_offline_a_task_never_read_says_it_needs_a_connection(context, page, make_task):
    task_id, _ = make_task()
    page.route(f"**/api/v1/tasks/{task_id}", lambda route: route.abort())  # never read whole
    open_app(page, "worker01")
    page.wait_for_selector(f"#tasks li[data-id='{task_id}']")
    go_offline(context, page)
    page.click(f"#tasks li[data-id='{task_id}'] button.open-task")
    # The page opens at once; its words come once the phone has looked for a kept copy.
    expect(page.locator("#task-detail")).to_contain_text("离线：任务详情需要联网，联网后再打开。")


def test_a_task_speaks_english_too(page, make_task):
    task_id, _ = make_task()
    open_app(page, "worker01", "en")
    detail = open_task(page, task_id)
    assert detail.locator("form.task-steps .actions button").all_inner_texts() == [
        "Accept",
        "Return",
        "Escalate",
    ]
    text = detail.inner_text()
    assert "12345 hotline · Complaint" in text and "Contact" in text and "History" in text


def test_the_office_opens_a_recurring_places_task_from_the_reports_page(page, make_task):
    """What recurs named its tasks by number and nothing opened them: the office had no page
    of a task. Each number opens the task's page; the community admin may close a resolved one."""
    from tests.e2e.test_reports import CANNED, COMMUNITY, recurring_loaded, serve_canned

    task_id, _ = make_task(status="resolved")
    place = {**CANNED["places"][0], "task_ids": [task_id]}
    serve_canned(page, {**CANNED, "places": [place]})
    page.goto("/reports")
    sign_in(page, "admin01", DEMO_PASSWORD)
    recurring_loaded(page, f"{COMMUNITY}:4")
    page.click(f"#recurring-section td.ids button[data-open='{task_id}']")
    page.wait_for_selector(f"#task-detail[data-task='{task_id}'] h2")
    detail = page.locator("#task-detail")
    assert detail.locator("h2").inner_text() == "楼道灯不亮"
    assert "三楼到五楼的楼道灯坏了一个月" in detail.inner_text()
    assert "关闭任务" in detail.locator("form.task-steps").inner_text()
    screenshot(page, "reports-task-detail")


def test_a_leader_finds_a_task_they_resolved_themself_to_call_back(page, e2e_engine, make_task):
    """A task held by the leader, resolved: it leaves "my tasks" (open ones only), and the
    grid's list left out the caller's own tasks, so it was in no list and the leader could
    neither record the callback nor close it. Awaiting the callback, it is in the grid's list."""
    from api.models import User

    with Session(e2e_engine) as session:
        leader = session.scalar(select(User.id).where(User.username == "leader01"))
    task_id, _ = make_task(status="resolved", assignee_id=leader)
    open_app(page, "leader01")
    page.locator(f"#grid-task-list li[data-id='{task_id}']").wait_for()
    detail = open_task(page, task_id, "grid-task-list")
    assert "记录回访" in detail.locator("form.task-steps").inner_text()


def test_a_step_on_a_task_changed_meanwhile_reads_the_task_again(page, e2e_engine, make_task):
    """Accepted meanwhile (on another phone of theirs, say): the step is refused (409) and the
    page shows the task as it is now, with the steps it has now, beside the server's words;
    the steps of before stayed, each refused in turn."""
    from api.models import Task

    task_id, _ = make_task()
    open_app(page, "worker01")
    detail = open_task(page, task_id)
    with Session(e2e_engine) as session:
        session.get(Task, task_id).status = "accepted"
        session.commit()
    detail.locator("textarea[name=note]").fill("已电话联系王阿姨")
    detail.locator("button[data-step=accept]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .state')?.textContent === '已接单'"
    )
    assert detail.locator("form.task-steps .actions button").all_inner_texts() == [
        "开始处理",
        "办结",
        "退回",
        "上报",
    ]
    # The server's words are said once the task is read again (after its state is drawn).
    status = detail.locator(".task-status")
    expect(status).to_have_class(re.compile(r"\berror\b"))
    expect(status).not_to_be_empty()
    # What the worker wrote is kept for the step they take now.
    assert detail.locator("textarea[name=note]").input_value() == "已电话联系王阿姨"


def test_a_task_closed_while_its_step_is_on_its_way_stays_closed(page, e2e_engine, make_task):
    """The worker pressed 接单 and closed the page before the answer came: the answer read the
    task again and opened the page anew over whatever they had turned to."""
    task_id, _ = make_task()
    open_app(page, "worker01")
    held = []
    page.route(
        f"**/api/v1/tasks/{task_id}/transitions",
        lambda route: held.append(route) if route.request.method == "POST" else route.continue_(),
    )
    detail = open_task(page, task_id)
    with page.expect_request(lambda r: r.method == "POST" and "/transitions" in r.url):
        detail.locator("button[data-step=accept]").click()
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#task-detail').open")
    (route,) = held
    route.continue_()
    # The lists are read again once the answer is in (the page, had it opened, before them).
    page.wait_for_function(
        f"""() => document.querySelector("#tasks li[data-id='{task_id}'] .state")
                  ?.textContent === '已接单'"""
    )
    assert not page.evaluate("document.querySelector('#task-detail').open")
    assert task_row(e2e_engine, task_id)[0] == "accepted"


@pytest.mark.parametrize(
    ("phone", "dials"),
    [
        ("１３９ １２３４ ５６７８", "tel:13912345678"),  # an input method in full-width mode
        ("010-6512 3456 转 8001", "tel:01065123456"),  # the extension is said, not dialled
        ("13912345678 / 13800001111", "tel:13912345678"),  # two numbers: the first
        ("+86 139 1234 5678", "tel:+8613912345678"),
        ("无", None),  # no number: no link to nowhere
        ("139****5678", None),  # masked (as a district viewer reads it): not a number to dial
    ],
)
def test_the_residents_number_dials_what_it_says(page, make_task, phone, dials):
    """The tel: link kept every digit and dropped the rest: full-width digits dialled nothing,
    an extension's digits or a second number ran on into one long wrong number."""
    task_id, _ = make_task(complainant={"name": "王秀英", "phone": phone})
    open_app(page, "worker01")
    detail = open_task(page, task_id)
    assert phone in detail.locator("tr.resident td").inner_text()  # said as written
    link = detail.locator("tr.resident a.phone")
    if dials is None:
        assert link.count() == 0
    else:
        assert link.get_attribute("href") == dials


def test_a_task_without_words_says_so_under_its_request(page, make_task):
    """A task opened with no description (a title says it all) showed the heading 诉求内容 over
    nothing, as if the words had failed to load."""
    task_id, _ = make_task(description="")
    open_app(page, "worker01")
    detail = open_task(page, task_id)
    assert detail.locator(".description").inner_text() == "（未填写）"


def test_on_a_phone_every_control_of_a_task_is_tall_enough_and_nothing_runs_off(
    page, e2e_engine, make_task
):
    """The task's page is a dialog outside <main>, which the app's check of its controls does
    not reach: on a 390-px phone each of its controls is 40 px tall or more (the photo picker
    too: it was 21 px), and a long word (a link pasted into the request) wraps instead of
    widening the page past the screen."""
    from tests.e2e.test_app import PHONE, TAP

    long = "https://example.org/" + "x" * 120
    task_id, _ = make_task(status="resolved", description=f"见 {long}")
    page.set_viewport_size(PHONE)
    open_app(page, "leader01")
    open_task(page, task_id, "grid-task-list")
    small = page.evaluate(
        """(least) => [...document.querySelectorAll(
             '#task-detail :is(a, button, select, textarea, input)')]
           .filter((el) => el.getClientRects().length)
           .map((el) => ({el, box: el.getBoundingClientRect()}))
           .filter(({box}) => box.height < least)
           .map(({el, box}) => `${el.tagName} ${el.className} ${Math.round(box.height)}px`)""",
        TAP,
    )
    assert small == []
    dialog = page.locator("#task-detail")
    assert dialog.evaluate("(d) => d.scrollWidth <= d.clientWidth")
    screenshot(page, "app-task-detail-phone")


def test_from_the_keyboard_the_page_closed_gives_the_focus_back_to_its_task(
    page, e2e_engine, make_task
):
    """Opened with Enter on a task's title, a step taken, Escape: the lists, read again after
    the step, had drawn the title anew and the focus fell to the page's top, the worker's
    place in the list lost. It comes back to the task's title."""
    task_id, _ = make_task()
    open_app(page, "worker01")
    opener = f"#tasks li[data-id='{task_id}'] button.open-task"
    page.focus(opener)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#task-detail[data-task='{task_id}'] h2")
    page.locator("#task-detail button[data-step=accept]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已接单。'"
    )
    page.wait_for_function(
        f"""() => document.querySelector("#tasks li[data-id='{task_id}'] .state")
                  ?.textContent === '已接单'"""
    )
    page.keyboard.press("Escape")
    # The dialog's `close` event, which gives the focus back, comes in a task after `open` is
    # false: asked at once, a loaded machine (CI) read the focus before it came.
    page.wait_for_function(
        f"""() => !document.querySelector('#task-detail').open
                  && document.activeElement === document.querySelector("{opener}")"""
    )


def test_a_resolved_task_awaiting_its_callback_is_listed_past_many_open_ones(
    page, e2e_engine, make_task
):
    """The grid's list shows its first tasks, the open ones first: with many open tasks (a
    community admin's grids), every task awaiting its callback fell under "more not shown",
    out of reach. Each kind shows its own first."""
    for _ in range(11):
        make_task()
    task_id, _ = make_task(status="resolved")
    open_app(page, "leader01")
    page.locator(f"#grid-task-list li[data-id='{task_id}']").wait_for()
    # Past the 10 open ones shown (other tests' open tasks of the grid among them: at least one
    # more), the rest wait behind a button; the resolved task is listed all the same.
    assert re.search(r"另有 \d+ 项，显示更多", page.inner_text("#grid-task-list"))


def test_a_leaders_grid_tasks_come_a_few_at_a_time_for_the_grid_chosen(page, make_task):
    """A leader's list held 50 cards at once, each alike (a visit's follow-ups are all titled
    入户走访跟进), metres of page on a phone. Now: a count of each kind, a grid to choose (kept
    on the phone), the first 10 and 20 more a tap, each card with its door."""
    made = [make_task() for _ in range(35)]
    make_task(grid_code=NEXT_GRID)  # leader01's too
    open_app(page, "leader01")
    page.select_option("#grid-task-grid", DEMO_GRID)
    first_more = """() => [...document.querySelector('#grid-task-list').children]
                      .findIndex((li) => li.classList.contains('more'))"""
    page.wait_for_function(
        f"() => [...document.querySelectorAll('#grid-task-list li.grid-task .muted')]"
        f".every((line) => line.textContent.startsWith('{DEMO_GRID}'))"
    )
    assert page.evaluate(first_more) == 10
    assert page.inner_text("#grid-task-summary").startswith("未办结 ")
    codes = page.locator("#grid-task-list li.grid-task .muted").all_inner_texts()
    assert all(code.startswith(DEMO_GRID) for code in codes)
    page.click("#grid-task-list button[data-more=open]")
    page.wait_for_function(f"() => ({first_more})() === 30")
    assert page.evaluate("() => document.activeElement.closest('li').dataset.id") == str(
        page.locator("#grid-task-list li.grid-task").nth(10).get_attribute("data-id")
    )
    task_id, address = made[0]
    page.wait_for_function(
        f"""() => document.querySelector("#grid-task-list li[data-id='{task_id}'] .door")
                  ?.textContent === {"-".join(filter(None, address))!r}"""
    )
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function(
        f"() => document.querySelector('#grid-task-grid').value === '{DEMO_GRID}'"
    )
    page.select_option("#grid-task-grid", "")
    assert page.evaluate("() => localStorage.getItem('gridwork.gridTasksGrid')") is None


@pytest.fixture()
def photo_dir(live_app, tmp_path):
    """The live app's photos in a directory of the test's own."""
    before = live_app.config.get("PHOTO_DIR")
    live_app.config["PHOTO_DIR"] = str(tmp_path / "photos")
    live_app.extensions.pop("gridwork_photo_storage", None)
    yield tmp_path / "photos"
    live_app.config["PHOTO_DIR"] = before
    live_app.extensions.pop("gridwork_photo_storage", None)


def step_photos(e2e_engine, task_id: int) -> list[tuple[str, int]]:
    """(the step's action, the photo's size) of each photo of the task sent with a step."""
    from api.models import TaskEvent, TaskPhoto

    with Session(e2e_engine) as session:
        return session.execute(
            select(TaskEvent.action, TaskPhoto.size_bytes)
            .join(TaskPhoto, TaskPhoto.event_id == TaskEvent.id)
            .where(TaskPhoto.task_id == task_id)
            .order_by(TaskPhoto.id)
        ).all()


def test_a_step_goes_with_the_photos_taken_and_the_history_shows_them(
    page, e2e_engine, make_task, photo_dir
):
    """办结 with its before and after photos: each shot of the camera adds a photo, uploaded
    first, then the step is sent naming them; the history shows them, read with the token."""
    from tests.factories import image_bytes

    task_id, _ = make_task()
    open_app(page, "worker01")
    detail = open_task(page, task_id)
    camera = detail.locator("input[name=photo]")
    assert (camera.get_attribute("accept"), camera.get_attribute("capture")) == (
        "image/*",
        "environment",
    )
    for size in (8, 9):  # two shots
        camera.set_input_files(
            {"name": f"shot{size}.png", "mimeType": "image/png", "buffer": image_bytes("PNG", size)}
        )
    assert detail.locator(".chosen").inner_text() == "已选 2 张照片，随本步骤提交"
    detail.locator("textarea[name=note]").fill("到场查看，灯泡已坏")
    detail.locator("button[data-step=accept]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已接单。'"
    )
    assert [action for action, _ in step_photos(e2e_engine, task_id)] == ["accept", "accept"]
    page.wait_for_function(
        """() => [...document.querySelectorAll("#task-detail li[data-action='accept'] img")]
                 .filter((img) => img.src.startsWith('blob:') && img.naturalWidth > 0)
                 .length === 2"""
    )
    assert detail.locator(".chosen").is_hidden()  # sent: none chosen for the next step
    screenshot(page, "app-task-detail-photos")


def test_a_photo_that_cannot_be_uploaded_says_so_and_sends_no_step(
    page, e2e_engine, make_task, photo_dir
):
    task_id, _ = make_task()
    open_app(page, "worker01")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/transitions" in r.url else None)
    detail = open_task(page, task_id)
    detail.locator("input[name=photo]").set_input_files(
        {"name": "scan.jpg", "mimeType": "image/jpeg", "buffer": b"%PDF-1.7 not a photo"}
    )
    detail.locator("button[data-step=accept]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent"
        ".startsWith('照片上传失败，步骤未提交：')"
    )
    assert "JPEG, PNG or WebP" in detail.locator(".task-status").inner_text()
    assert sent == []
    assert task_row(e2e_engine, task_id)[0] == "dispatched"
    assert detail.locator("button[data-step=accept]").is_enabled()  # to try again


def test_the_same_step_asked_again_of_the_task_changed_since_is_a_new_step(
    page, e2e_engine, make_task
):
    """A step's key is kept until an answer comes, for the task as read: accepted with its
    answer lost, then passed back (returned and dispatched to them again), the task accepted
    again went with the first key and the server answered the first accept, doing nothing."""
    from api.models import Task

    task_id, _ = make_task()
    open_app(page, "worker01")
    keys = lose_the_first_answer(page, f"**/api/v1/tasks/{task_id}/transitions")
    detail = open_task(page, task_id)
    detail.locator("button[data-step=accept]").click()
    said = "() => document.querySelector('#task-detail .task-status')?.textContent"
    page.wait_for_function(f"{said}.includes('不会重复')")
    with Session(e2e_engine) as session:  # returned, and dispatched to them again
        task = session.get(Task, task_id)
        task.status, task.updated_at = "dispatched", datetime.now(UTC)
        session.commit()
    page.keyboard.press("Escape")
    detail = open_task(page, task_id)
    detail.locator("button[data-step=accept]").click()
    page.wait_for_function(f"{said} === '已接单。'")
    assert len(keys) == 2 and keys[0] != keys[1]
    assert [a for a, _ in task_row(e2e_engine, task_id)[2]].count("accept") == 2


# --- a step kept on the phone until answered -------------------------------------------------
# A task's step taken with no signal (a B-post worker at the door pressing 办结): sent online
# only, it failed and the note typed was lost. Kept on the phone with its Idempotency-Key, the
# task's `updated_at` it was taken on and its note, shown as 待发送 on the task's card and page,
# and sent with the app's sync, once; a refusal is shown with the step kept, never dropped.

NOTE = "门口没有信号：灯泡已换好，王阿姨确认"


def status_says(page, words: str):
    """Wait until the task page's status holds `words`."""
    page.wait_for_function(
        "(words) => document.querySelector('#task-detail .task-status')?.textContent"
        ".includes(words)",
        arg=words,
    )


def kept(page) -> list[dict]:
    """The steps kept on the phone to send (IndexedDB)."""
    return page.evaluate(
        """async () => ((await (await import('/web/idb.js')).getMeta('taskSteps')) || [])
              .map(({ photos, ...r }) => ({ ...r, photoCount: (photos || []).length }))"""
    )


def keys_sent(page, task_id: int) -> list[str | None]:
    """The Idempotency-Keys of the steps on the task that reach the network, in order."""
    keys: list[str | None] = []

    def route_it(route):
        if route.request.method == "POST":
            keys.append(route.request.headers.get("idempotency-key"))
        return route.continue_()

    page.route(f"**/api/v1/tasks/{task_id}/transitions", route_it)
    return keys


def actions(e2e_engine, task_id: int) -> list[str]:
    return [a for a, _ in task_row(e2e_engine, task_id)[2]]


def go_offline(context, page):
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")


def card_says(page, task_id: int) -> str:
    item = page.locator(f"#tasks li[data-id='{task_id}'] .kept-step")
    item.wait_for()
    return item.inner_text()


def sent(page, task_id: int):
    """Wait until the task's card no longer shows a kept step."""
    page.wait_for_function(
        f"""() => !document.querySelector("#tasks li[data-id='{task_id}'] .kept-step")
                  && !document.querySelector('#task-detail[open] .kept-step')"""
    )


def test_a_resolve_pressed_offline_is_kept_and_sent_once_back_online(
    context, page, e2e_engine, make_task
):
    task_id, _ = make_task(status="accepted")
    open_app(page, "worker01")
    keys = keys_sent(page, task_id)
    detail = resolve_kept_offline(context, page, task_id)
    box = detail.locator(".kept-step")
    assert "待发送" in box.inner_text() and NOTE in box.inner_text() and "办结" in box.inner_text()
    assert "待发送" in card_says(page, task_id)
    (record,) = kept(page)
    assert record["key"] and record["once"] and record["state"] == "pending"
    assert record["task_id"] == task_id
    assert record["body"] == {"action": "resolve", "note": NOTE}
    assert task_row(e2e_engine, task_id)[0] == "accepted"
    screenshot(page, "app-task-step-waiting")
    context.set_offline(False)
    sent(page, task_id)
    status, _, events = task_row(e2e_engine, task_id)
    assert status == "resolved"
    assert ("resolve", NOTE) in events and actions(e2e_engine, task_id).count("resolve") == 1
    assert keys == [record["key"]]  # sent once, with the key it was kept with
    assert kept(page) == []


def test_a_step_whose_answer_was_lost_is_kept_and_the_sync_takes_it_once(
    page, e2e_engine, make_task
):
    task_id, _ = make_task(status="accepted")
    open_app(page, "worker01")
    keys = lose_the_first_answer(page, f"**/api/v1/tasks/{task_id}/transitions")
    detail = open_task(page, task_id)
    detail.locator("textarea[name=note]").fill(NOTE)
    detail.locator("button[data-step=resolve]").click()
    status_says(page, "不会重复")
    assert "待发送" in detail.locator(".task-status").inner_text()
    assert "待发送" in detail.locator(".kept-step").inner_text()
    assert len(kept(page)) == 1
    page.keyboard.press("Escape")
    page.click("#sync")  # 立即同步
    sent(page, task_id)
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert actions(e2e_engine, task_id).count("resolve") == 1  # one transition, one event
    assert kept(page) == []


def test_a_kept_step_goes_after_a_reload_with_its_key(page, e2e_engine, make_task):
    task_id, _ = make_task(status="accepted")
    open_app(page, "worker01")
    keys: list[str | None] = []

    def no_network(route):
        if route.request.method != "POST":
            return route.continue_()
        keys.append(route.request.headers.get("idempotency-key"))
        return route.abort("internetdisconnected")

    page.route(f"**/api/v1/tasks/{task_id}/transitions", no_network)
    detail = open_task(page, task_id)
    detail.locator("textarea[name=note]").fill(NOTE)
    detail.locator("button[data-step=resolve]").click()
    status_says(page, "待发送")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert "待发送" in card_says(page, task_id)
    detail = open_task(page, task_id)
    assert NOTE in detail.locator(".kept-step").inner_text()
    page.keyboard.press("Escape")
    page.unroute(f"**/api/v1/tasks/{task_id}/transitions")
    keys_after = keys_sent(page, task_id)
    page.click("#sync")
    sent(page, task_id)
    assert len(set(keys + keys_after)) == 1 and keys_after  # the one key throughout
    assert actions(e2e_engine, task_id).count("resolve") == 1
    assert task_row(e2e_engine, task_id)[0] == "resolved"


def resolve_kept_offline(context, page, task_id: int, photos: list[dict] | None = None):
    """On the open app, the task's page opened, the phone offline, 办结 pressed with the note
    NOTE (and `photos` chosen, one at a time): the step kept, 待发送. The task's page."""
    detail = open_task(page, task_id)
    go_offline(context, page)
    for photo in photos or []:
        detail.locator("input[name=photo]").set_input_files(photo)
    detail.locator("textarea[name=note]").fill(NOTE)
    detail.locator("button[data-step=resolve]").click()
    status_says(page, "待发送")
    return detail


def refused_while_kept(context, page, e2e_engine, task_id: int, photo: bytes | None = None):
    """worker01 resolves the accepted task offline (its note NOTE, and `photo`), the leader
    sends the task back to dispatched meanwhile, and back online the kept step is refused
    (409; its photo uploaded first): the task's page and its box of the refused step."""
    from api.models import Task

    open_app(page, "worker01")
    photos = [{"name": "door.png", "mimeType": "image/png", "buffer": photo}] if photo else []
    detail = resolve_kept_offline(context, page, task_id, photos)
    with Session(e2e_engine) as session:
        task = session.get(Task, task_id)
        task.status, task.updated_at = "dispatched", datetime.now(UTC)
        session.commit()
    context.set_offline(False)
    box = detail.locator(".kept-step.refused")
    box.wait_for()
    return detail, box


def test_a_kept_step_the_server_refuses_is_shown_with_why_and_kept(
    context, page, e2e_engine, make_task
):
    """The task changed while the step waited (passed back, re-dispatched): the step is
    refused (409). The worker reads the server's words beside the step and its note, on the
    task's card and page, to discard or take again; it is not dropped."""
    task_id, _ = make_task(status="accepted")
    detail, box = refused_while_kept(context, page, e2e_engine, task_id)
    assert "未发送" in box.inner_text() and NOTE in box.inner_text()
    # Why, in the worker's words: the task's state now and the steps left to them (the server
    # words it in English: "Cannot resolve a task that is dispatched; you may: accept, ...").
    assert "任务现为“已派单”，您可做的是：接单、退回、上报。" in box.inner_text()
    assert "未发送" in card_says(page, task_id)
    (record,) = kept(page)
    assert record["state"] == "refused" and record["refusal"]
    assert "resolve" not in actions(e2e_engine, task_id)
    screenshot(page, "app-task-step-refused")
    page.reload()  # kept on the phone, not only on the page
    page.wait_for_selector("body[data-ready='1']")
    assert "未发送" in card_says(page, task_id)
    detail = open_task(page, task_id)
    box = detail.locator(".kept-step.refused")
    # Taken again: the note back in the form, for the step the task has now.
    box.locator("button[data-retake]").click()
    expect(detail.locator("textarea[name=note]")).to_have_value(NOTE)
    detail.locator("button[data-step=accept]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已接单。'"
    )
    assert ("accept", NOTE) in task_row(e2e_engine, task_id)[2]
    assert kept(page) == [] and detail.locator(".kept-step").count() == 0


def test_a_refused_step_may_be_discarded_with_the_photos_it_uploaded(
    context, page, e2e_engine, make_task, photo_dir
):
    """Its photo, uploaded before the step was refused, stayed on the task until retention,
    months later (a resident's face, the wrong door): discarded, the step takes it along."""
    from api.models import TaskPhoto
    from tests.factories import image_bytes

    task_id, _ = make_task(status="accepted")
    _, box = refused_while_kept(context, page, e2e_engine, task_id, image_bytes("PNG", 8))
    uploaded = page.evaluate(
        """async () => ((await (await import('/web/idb.js')).getMeta('taskSteps')) || [])
              .flatMap((r) => r.photos.map((p) => Boolean(p.id)))"""
    )
    assert uploaded == [True]  # uploaded, then the step refused
    page.once("dialog", lambda dialog: dialog.accept())
    box.locator("button[data-discard]").click()
    sent(page, task_id)
    assert kept(page) == []

    def photos_left() -> int:
        with Session(e2e_engine) as session:
            return session.scalar(
                select(func.count()).select_from(TaskPhoto).where(TaskPhoto.task_id == task_id)
            )

    # The deletion goes once the step has left the phone.
    poll(page, lambda: photos_left() == 0)
    assert photos_left() == 0


def test_photos_chosen_for_a_step_offline_are_kept_with_it_and_uploaded_when_it_is_sent(
    context, page, e2e_engine, make_task, photo_dir
):
    from tests.factories import image_bytes

    task_id, _ = make_task(status="accepted")
    open_app(page, "worker01")
    photos = [  # before and after
        {"name": f"door{size}.png", "mimeType": "image/png", "buffer": image_bytes("PNG", size)}
        for size in (8, 9)
    ]
    detail = resolve_kept_offline(context, page, task_id, photos)
    assert "2 张照片" in detail.locator(".kept-step").inner_text()
    (record,) = kept(page)
    assert record["photoCount"] == 2
    assert detail.locator(".chosen").is_hidden()  # kept with the step, not chosen twice
    context.set_offline(False)
    sent(page, task_id)
    assert [action for action, _ in step_photos(e2e_engine, task_id)] == ["resolve", "resolve"]
    assert actions(e2e_engine, task_id).count("resolve") == 1


def test_signing_out_with_a_step_not_yet_sent_asks_first(context, page, make_task):
    task_id, _ = make_task(status="accepted")
    open_app(page, "worker01")
    resolve_kept_offline(context, page, task_id)
    page.keyboard.press("Escape")
    asked = sign_out_declined(page)
    assert asked == ["本机还有 1 项任务办理未发送（待发送或被拒绝），退出后将被删除。仍要退出吗？"]
    assert [r["state"] for r in kept(page)] == ["pending"]


def test_a_step_pressed_on_the_card_offline_is_kept_and_sent_once_back_online(
    context, page, e2e_engine, make_task
):
    """The card's own 接单 went online only too: offline, an alert of a failed fetch, and the
    worker had to remember to press it again."""
    task_id, _ = make_task()
    open_app(page, "worker01")
    keys = keys_sent(page, task_id)
    go_offline(context, page)
    page.click(f"#tasks li[data-id='{task_id}'] button[data-action=accept]")
    assert "待发送" in card_says(page, task_id) and "接单" in card_says(page, task_id)
    (record,) = kept(page)
    assert record["body"] == {"action": "accept", "note": ""}
    context.set_offline(False)
    sent(page, task_id)
    assert task_row(e2e_engine, task_id)[0] == "accepted"
    assert keys == [record["key"]] and actions(e2e_engine, task_id).count("accept") == 1


def test_another_step_pressed_while_one_waits_asks_before_replacing_it(context, page, make_task):
    """Offline, the page keeps the steps of the task as read: a second step pressed there (上报
    by a slip of the thumb after 办结) replaced the one waiting, its note gone without a word."""
    task_id, _ = make_task(status="accepted")
    open_app(page, "worker01")
    detail = resolve_kept_offline(context, page, task_id)
    asked: list[str] = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", answer)
    detail.locator("button[data-step=escalate]").click()
    poll(page, lambda: asked)
    assert asked == ["本机已有这项任务待发送的“办结”（含其说明）。用这次的“上报”替换它吗？"]
    (record,) = kept(page)
    assert record["body"] == {"action": "resolve", "note": NOTE}
    assert detail.locator("button[data-step=escalate]").is_enabled()


def worked_through(e2e_engine, task_id: int) -> None:
    """The history of a task its worker accepted, went to, phoned about and resolved."""
    from api.models import TaskEvent

    now = datetime.now(UTC)
    steps = [
        ("accept", "dispatched", "accepted", "已接单"),
        ("start", "accepted", "in_progress", "上门查看：三楼、四楼、五楼的灯都不亮"),
        ("start", "in_progress", "in_progress", "已联系物业电工，约好下午来修"),
        ("resolve", "in_progress", "resolved", "电工已换灯泡和感应开关，三层都亮了"),
    ]
    with Session(e2e_engine) as session:
        for n, (action, was, now_is, note) in enumerate(steps):
            session.add(
                TaskEvent(
                    task_id=task_id, action=action, from_status=was, to_status=now_is,
                    note=note, at=now - timedelta(minutes=90 - 20 * n),
                )
            )  # fmt: skip
        session.commit()


def test_on_a_phone_what_came_of_a_step_is_said_where_the_leader_pressed_it(
    page, e2e_engine, make_task
):
    """The page's status line stood last, under the history: on a phone, 记录回访 pressed
    without the satisfaction said why nowhere in sight (as if the tap did nothing), and the
    page redrawn after the callback showed its top, "已记录回访" out of view. Said under the
    steps, it is in view, and the focus (lost to the page's body) is on it."""
    from tests.e2e.test_app import PHONE

    task_id, _ = make_task(status="resolved")
    worked_through(e2e_engine, task_id)
    page.set_viewport_size(PHONE)
    open_app(page, "leader01")
    detail = open_task(page, task_id, "grid-task-list")
    detail.locator("textarea[name=note]").fill("回访王阿姨：灯已修好")
    detail.locator("button[data-step=callback]").click()
    status = detail.locator(".task-status")
    assert status.inner_text() == "回访需选择居民的满意度。"
    expect(status).to_be_in_viewport()
    assert detail.locator("textarea[name=note]").input_value() == "回访王阿姨：灯已修好"
    detail.locator("select[name=satisfaction]").select_option("satisfied")
    detail.locator("button[data-step=callback]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已记录回访。'"
    )
    expect(status).to_be_in_viewport()
    assert page.evaluate("() => document.activeElement.classList.contains('task-status')")
    screenshot(page, "app-task-callback-phone")


def test_the_english_page_says_the_servers_chinese_notes_in_english(page, e2e_engine, make_task):
    """A task re-dispatched by 12345 and moved off a retired grid: the server writes those
    notes in Chinese, and the English page said them so."""
    from api.models import TaskEvent
    from api.services.tasks import GRID_RETIRED_NOTE, TRANSFERRED_IN_NOTE

    task_id, _ = make_task()
    now = datetime.now(UTC)
    with Session(e2e_engine) as session:
        for action, note in (
            ("transfer", TRANSFERRED_IN_NOTE),
            ("move", f"110101001001009 → {DEMO_GRID}: {GRID_RETIRED_NOTE}"),
        ):
            session.add(
                TaskEvent(
                    task_id=task_id, action=action, from_status="dispatched",
                    to_status="dispatched", note=note, at=now - timedelta(minutes=30),
                )
            )  # fmt: skip
        session.commit()
    open_app(page, "worker01", "en")
    text = open_task(page, task_id).inner_text()
    assert "re-dispatched by 12345 from another community" in text
    assert f"110101001001009 → {DEMO_GRID}: the grid was retired" in text
    assert "改派" not in text and "撤销" not in text


def test_a_resolve_kept_offline_is_dated_when_it_was_pressed_not_when_it_went(
    context, page, e2e_engine, make_task, live_server
):
    """A B-post worker at the door with no signal pressed 办结; the step went at the sync half an
    hour later, and the task was resolved then: late, if its deadline or the week ended
    between. It goes with the time it was pressed, and the history says both."""
    from api.models import Task, TaskEvent
    from api.services.weeks import LOCAL

    task_id, _ = make_task(status="accepted")
    open_app(page, "worker01")
    resolve_kept_offline(context, page, task_id)
    pressed = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    page.evaluate(  # the phone kept it half an hour: no signal in the stairwell
        """async (at) => {
          const idb = await import('/web/idb.js');
          const steps = await idb.getMeta('taskSteps');
          await idb.setMeta('taskSteps', steps.map((r) => ({ ...r, takenAt: at })));
        }""",
        pressed.isoformat(),
    )
    context.set_offline(False)
    sent(page, task_id)
    with Session(e2e_engine) as session:
        task = session.get(Task, task_id)
        event = session.scalars(
            select(TaskEvent).where(TaskEvent.task_id == task_id, TaskEvent.action == "resolve")
        ).one()
        assert task.resolved_at == event.taken_at == pressed
        assert event.at - pressed >= timedelta(minutes=30)
    # The leader, to call the resident back, reads when it was done and when it came.
    leader = context.browser.new_context(base_url=live_server)
    try:
        office = open_app(leader.new_page(), "leader01")
        detail = open_task(office, task_id, "grid-task-list")
        said = detail.locator("ol.events li[data-action=resolve]").inner_text()
        assert f"{pressed.astimezone(LOCAL):%H:%M}" in said and "离线办理" in said
        assert "送达" in said
    finally:
        leader.close()


def test_a_pass_asked_for_while_one_runs_runs_once_more_with_what_it_was_last_given(page):
    """`oneAtATime` (the kept pages, steps, reports): asked for twice while a pass ran, the pass
    after it took what the first of those asks gave. The task list read before a step was
    stored came second, the one read after it third: the resolved task's page was kept again
    (and offered offline as still open) from the older list."""
    page.goto("/app")
    runs = page.evaluate(
        """async () => {
          const { oneAtATime } = await import('/web/common.js');
          const runs = [];
          const pass = oneAtATime(async (list) => {
            runs.push(list);
            await new Promise((resolve) => setTimeout(resolve, 50));
          });
          const all = [pass("first"), pass("older list"), pass("newer list")];
          await Promise.all(all);
          return runs;
        }"""
    )
    assert runs == ["first", "newer list"]
