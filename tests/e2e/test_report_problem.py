"""上报问题（巡查发现）in the workers' app: a problem found on the rounds opened as a task before
anyone calls 12345 (未诉先办). The API took such tasks (source `proactive`); the app offered no
way to open one, so a problem seen outside a visit waited for a resident's call."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tests.e2e.conftest import DEMO_GRID, lose_the_first_answer, screenshot
from tests.e2e.test_app import open_app

TITLE = "雨水井堵塞（巡查）"


@pytest.fixture()
def reported(e2e_engine):
    """The tasks this test opened (by title), removed after."""
    from api.models import Notification, Task, TaskEvent

    def found() -> list[Task]:
        with Session(e2e_engine) as session:
            tasks = session.scalars(select(Task).where(Task.title.startswith(TITLE))).all()
            for task in tasks:
                task.grid_code = task.grid.code
                task.lonlat = session.execute(
                    select(func.ST_X(Task.location), func.ST_Y(Task.location)).where(
                        Task.id == task.id
                    )
                ).one()
            session.expunge_all()
            return tasks

    yield found
    with Session(e2e_engine) as session:
        ids = session.scalars(select(Task.id).where(Task.title.startswith(TITLE))).all()
        session.execute(delete(TaskEvent).where(TaskEvent.task_id.in_(ids)))
        for task_id in ids:
            session.execute(
                delete(Notification).where(Notification.data["task_id"].as_integer() == task_id)
            )
        session.execute(delete(Task).where(Task.id.in_(ids)))
        session.commit()


@pytest.fixture()
def inside(context, e2e_engine) -> dict:
    """The phone stands inside the demo grid (the app's usual HERE lies outside every grid)."""
    from api.models import Grid

    with Session(e2e_engine) as session:
        lon, lat = session.execute(
            select(
                func.ST_X(func.ST_PointOnSurface(Grid.boundary)),
                func.ST_Y(func.ST_PointOnSurface(Grid.boundary)),
            ).where(Grid.code == DEMO_GRID)
        ).one()
    here = {"longitude": lon, "latitude": lat, "accuracy": 8}
    context.set_geolocation(here)
    return here


def said(page) -> str:
    page.wait_for_function(
        """() => { const s = document.querySelector('#report-problem .status').textContent;
                   return s && !['正在定位…', '正在上报…'].includes(s); }"""
    )
    return page.inner_text("#report-problem .status")


def test_a_worker_reports_a_problem_where_they_stand(context, page, reported, inside):
    open_app(context, page)
    context.set_geolocation(inside)
    card = page.locator("#report-problem")
    assert card.is_visible()
    card.locator("input[name=title]").fill(TITLE)
    card.locator("textarea[name=description]").fill("雨后积水，井盖下有垃圾")
    card.locator("select[name=urgency]").select_option("utility")
    card.locator("button[type=submit]").click()
    text = said(page)
    (task,) = reported()
    assert text.startswith(f"已上报任务 #{task.id}，派给 ")
    assert (task.source, task.urgency, task.grid_code) == ("proactive", "utility", DEMO_GRID)
    assert task.description == "雨后积水，井盖下有垃圾"
    assert task.lonlat == pytest.approx((inside["longitude"], inside["latitude"]), abs=1e-6)
    assert task.created_by_id is not None and task.household_id is None
    assert card.locator("input[name=title]").input_value() == ""  # ready for the next one
    screenshot(page, "app-report-problem")


def test_a_problem_at_a_household_is_placed_there(context, page, reported):
    open_app(context, page)
    card = page.locator("#report-problem")
    card.locator("input[name=title]").fill(TITLE + " 楼道")
    card.locator("input[name=where][value=household]").check()
    choice = card.locator("select[name=household_id]")
    choice.wait_for()
    household = int(choice.locator("option").nth(1).get_attribute("value"))
    choice.select_option(str(household))
    card.locator("button[type=submit]").click()
    assert said(page).startswith("已上报任务")
    (task,) = reported()
    assert task.household_id == household


def test_a_problem_outside_every_grid_is_refused_in_the_servers_words(context, page, reported):
    open_app(context, page)  # HERE: outside every grid
    page.fill("#report-problem input[name=title]", TITLE)
    page.click("#report-problem button[type=submit]")
    assert said(page) == "未上报：The location lies outside every grid."
    assert reported() == []
    # Refused, not lost: the form keeps what was written, to place it at a household instead.
    assert page.input_value("#report-problem input[name=title]") == TITLE


def test_a_problem_needs_saying_and_nothing_is_sent_without(context, page, reported):
    open_app(context, page)
    sent: list[str] = []
    page.on(
        "request", lambda r: sent.append(r.url) if r.method == "POST" and "/tasks" in r.url else 0
    )
    page.click("#report-problem button[type=submit]")
    assert page.inner_text("#report-problem .status") == "请写明问题。"
    assert sent == [] and reported() == []


def test_a_report_whose_answer_was_lost_opens_one_task_when_sent_again(
    context, page, reported, inside
):
    open_app(context, page)
    context.set_geolocation(inside)
    keys = lose_the_first_answer(page, "**/api/v1/tasks")
    card = page.locator("#report-problem")
    card.locator("input[name=title]").fill(TITLE + " 重试")
    card.locator("button[type=submit]").click()
    assert said(page) == "没有收到服务器的答复：请联网后再按一次（不会重复上报）。"
    context.set_geolocation({**inside, "longitude": inside["longitude"] + 0.0001})  # walked on
    card.locator("button[type=submit]").click()
    assert said(page).startswith("已上报任务")
    assert len(keys) == 2 and keys[0] == keys[1]
    (task,) = reported()  # one task, where it was first reported
    assert task.lonlat[0] == pytest.approx(inside["longitude"], abs=1e-6)


def test_the_community_admin_has_no_such_card(context, page):
    """The office opens tasks at the window or from the hotline; rounds are the grid's people's."""
    open_app(context, page, "admin01")
    assert page.is_hidden("#report-problem")
