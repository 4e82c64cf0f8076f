"""The grids' tasks in the workers' app, for a grid leader: a task escalated at its deadline
stays with its assignee and its leader is told; the leader reassigns it from the app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_GRID, screenshot, sign_in
from tests.e2e.test_task_detail import make_task  # noqa: F401 (a fixture)


def open_app(page, username: str):
    page.goto("/app")
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    return page


@pytest.fixture
def escalated_task(e2e_engine):
    """An overdue task of the demo grid, escalated, still held by worker01."""
    from api.models import Grid, Notification, Task, TaskEvent, User

    now = datetime.now(UTC)
    with Session(e2e_engine) as session:
        grid = session.scalar(select(Grid.id).where(Grid.code == DEMO_GRID))
        worker = session.scalar(select(User.id).where(User.username == "worker01"))
        task = Task(
            source="hotline", type="complaint", title="楼道灯不亮（已超期）", grid_id=grid,
            status="escalated", assignee_id=worker, urgency="general",
            created_at=now - timedelta(days=8), due_at=now - timedelta(hours=5),
            escalated_at=now - timedelta(hours=5),
        )  # fmt: skip
        session.add(task)
        session.commit()
        made = task.id
    yield made
    with Session(e2e_engine) as session:
        session.execute(TaskEvent.__table__.delete().where(TaskEvent.task_id == made))
        session.execute(
            Notification.__table__.delete().where(Notification.data["task_id"].as_integer() == made)
        )
        session.execute(Task.__table__.delete().where(Task.id == made))
        session.commit()


def test_a_leader_reassigns_an_escalated_task_from_the_app(page, e2e_engine, escalated_task):
    from api.models import Task, User

    open_app(page, "leader01")
    assert page.inner_text("#title") == "网格长"  # the role signed in, not "网格员"
    item = page.locator(f"#grid-task-list li[data-id='{escalated_task}']")
    item.wait_for()
    assert page.locator("#grid-task-list li.grid-task").first.get_attribute("data-id") == str(
        escalated_task
    )  # escalated first
    with Session(e2e_engine) as session:
        worker01 = session.scalar(select(User).where(User.username == "worker01"))
        assert item.locator(".assignee").inner_text() == worker01.display_name
    choice = item.locator("select option").nth(1)
    to = int(choice.get_attribute("value"))
    item.locator("select").select_option(str(to))
    item.locator("button[data-reassign]").click()
    page.wait_for_function(
        "() => document.querySelector('#grid-task-status').textContent.startsWith('已将')"
    )
    with Session(e2e_engine) as session:
        assert session.get(Task, escalated_task).assignee_id == to
        name = session.get(User, to).display_name
    assert page.inner_text("#grid-task-status") == f"已将“楼道灯不亮（已超期）”改派给{name}。"
    # Offered the grid's own workers first: still listed, under its new assignee.
    assert item.locator(".assignee").inner_text() == name
    screenshot(page, "app-grid-tasks")


def test_a_worker_is_offered_no_grid_tasks(page, escalated_task):
    open_app(page, "worker01")
    assert page.locator("#grid-tasks").is_hidden()
    assert page.inner_text("#title") == "网格员"


@pytest.fixture
def worker02_away(e2e_engine):
    """worker02 on approved leave from yesterday to the day after tomorrow: their display name
    and the leave's last day."""
    from api.models import Leave, User
    from api.services.weeks import LOCAL

    today = datetime.now(UTC).astimezone(LOCAL).date()
    with Session(e2e_engine) as session:
        worker = session.scalar(select(User).where(User.username == "worker02"))
        leader = session.scalar(select(User.id).where(User.username == "leader01"))
        leave = Leave(
            worker_id=worker.id, start_date=today - timedelta(days=1),
            end_date=today + timedelta(days=2), reason="", status="approved",
            decided_by_id=leader, decided_at=datetime.now(UTC) - timedelta(days=3),
        )  # fmt: skip
        session.add(leave)
        session.commit()
        made, name, last = leave.id, worker.display_name, leave.end_date
    yield worker.id, name, last
    with Session(e2e_engine) as session:
        session.execute(Leave.__table__.delete().where(Leave.id == made))
        session.commit()


def reassign_refused(page, task_id: int, to: int) -> str:
    item = page.locator(f"#grid-task-list li[data-id='{task_id}']")
    item.wait_for()
    item.locator("select").select_option(str(to))
    item.locator("button[data-reassign]").click()
    page.wait_for_function("() => document.querySelector('#grid-task-status').textContent !== ''")
    return page.inner_text("#grid-task-status .why")


def test_a_reassign_to_a_worker_on_leave_is_refused_in_chinese_naming_them(
    page, e2e_engine, escalated_task, worker02_away
):
    """The server's refusal was shown as it came, in English and naming the account
    (`worker02 is on approved leave until …`), in the Chinese app."""
    from api.models import Task, User

    to, name, last = worker02_away
    open_app(page, "leader01")
    said = reassign_refused(page, escalated_task, to)
    assert said == f"{name}正在休假（至 {last.isoformat()}），没有改派：请改派给在岗的人员。"
    assert "on approved leave" in page.inner_text("#grid-task-status .server-reason")
    assert page.locator("#grid-task-status").get_attribute("class") == "status error"
    with Session(e2e_engine) as session:
        assert session.get(Task, escalated_task).assignee_id == session.scalar(
            select(User.id).where(User.username == "worker01")
        )
    screenshot(page, "app-grid-task-reassign-on-leave")


def test_in_english_a_reassign_to_a_worker_on_leave_names_them(page, escalated_task, worker02_away):
    to, name, last = worker02_away
    page.goto("/app?lang=en")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    said = reassign_refused(page, escalated_task, to)
    assert (
        said
        == f"{name} is on leave until {last.isoformat()}: not reassigned; choose someone at work."
    )


def test_reassign_pressed_before_choosing_whom_says_to_choose_first(page, escalated_task):
    """改派 pressed with "改派给…" still showing did nothing at all: no word, no request, as if
    the tap was lost. It asks whom, at the list of whom."""
    open_app(page, "leader01")
    item = page.locator(f"#grid-task-list li[data-id='{escalated_task}']")
    item.wait_for()
    item.locator("button[data-reassign]").click()
    assert page.inner_text("#grid-task-status") == "请先选择改派给谁。"
    assert page.evaluate("() => document.activeElement.dataset.task") == str(escalated_task)


def test_on_a_phone_a_reassign_refused_is_said_at_its_task(
    page,
    escalated_task,
    worker02_away,
    make_task,  # noqa: F811
):
    """What came of 改派 was said under the whole list: on a phone, with a few tasks below the
    one pressed, a refusal was out of sight and the task unchanged, as if nothing happened."""
    from tests.e2e.test_app import PHONE

    for _ in range(5):
        make_task()
    page.set_viewport_size(PHONE)
    open_app(page, "leader01")
    to, name, _ = worker02_away
    said = reassign_refused(page, escalated_task, to)
    assert said.startswith(f"{name}正在休假")
    status = page.locator("#grid-task-status")
    expect(status).to_be_in_viewport()
    assert page.locator(f"#grid-task-list li[data-id='{escalated_task}'] #grid-task-status").count()
    screenshot(page, "app-grid-task-refused-phone")
    # Drawn anew (the app shown again reads the list), it stays at its task, not under the list.
    page.evaluate(
        "() => document.querySelectorAll('#grid-task-list li').forEach((x) => (x.dataset.old = 1))"
    )
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_function("() => !document.querySelector('#grid-task-list li[data-old]')")
    assert page.locator(f"#grid-task-list li[data-id='{escalated_task}'] #grid-task-status").count()


def test_from_the_keyboard_a_reassign_leaves_the_focus_on_what_came_of_it(page, escalated_task):
    """The list is drawn anew after a reassign: the button pressed was gone, and the focus fell
    to the page's top, the keyboard's (a screen reader's) place lost."""
    open_app(page, "leader01")
    item = page.locator(f"#grid-task-list li[data-id='{escalated_task}']")
    item.wait_for()
    item.locator("select").select_option(
        item.locator("select option").nth(1).get_attribute("value")
    )
    item.locator("button[data-reassign]").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('#grid-task-status').textContent.startsWith('已将')"
    )
    assert page.evaluate("() => document.activeElement.id") == "grid-task-status"


def test_a_worker_on_leave_today_is_offered_last_and_marked_so(page, escalated_task, worker02_away):
    """改派给… offered a worker on leave as any other: the leader chose them and was refused."""
    to, name, last = worker02_away
    open_app(page, "leader01")
    page.wait_for_selector("#leave-current li.leave")  # the leave under way is read
    item = page.locator(f"#grid-task-list li[data-id='{escalated_task}']")
    option = item.locator(f"select option[value='{to}']")
    expect(option).to_have_text(f"{name}（休假至 {last.isoformat()}）")
    assert item.locator("select option").all_inner_texts()[-1] == option.inner_text()


def test_reopened_offline_a_leader_reads_the_grid_tasks_as_last_read(
    context, page, e2e_engine, escalated_task
):
    """On the rounds without a signal the leader's grid tasks said only 离线：网格任务需要联网:
    which were escalated or overdue, and who held them, was nowhere. The list as last read is
    kept (what it shows: no resident's words), said so; reassigning waits for the network."""
    from api.models import User

    open_app(page, "leader01")
    item = page.locator(f"#grid-task-list li[data-id='{escalated_task}']")
    item.wait_for()
    with Session(e2e_engine) as session:
        holder = session.scalar(select(User.display_name).where(User.username == "worker01"))
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    item.wait_for()
    summary = page.inner_text("#grid-task-summary")
    assert summary.startswith("离线：显示 ") and "保存的网格任务，改派需要联网。" in summary
    assert item.locator(".assignee").inner_text() == holder
    assert item.locator("select, button[data-reassign]").count() == 0
    context.set_offline(False)
