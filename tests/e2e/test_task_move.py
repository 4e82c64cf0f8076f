"""A task opened for the wrong grid (a neighbouring address given) is moved to the right one from
its page, by the office or the grid's leader: before, only the API could, and the wrong grid's
rates carried it."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.e2e.conftest import DEMO_GRID
from tests.e2e.test_window import (
    OTHER_GRID,
    open_task,
    open_window,
    register_request,
    tasks_titled,
    window_day,  # noqa: F401 (a fixture)
)

pytestmark = pytest.mark.usefixtures("window_day")


def register_in_other_grid(page, e2e_engine, title: str):
    """A request registered in OTHER_GRID, its page open at the move's form."""
    task = register_request(page, e2e_engine, title)
    detail = open_task(page, task.id)
    detail.locator("details.task-move summary").click()
    detail.locator(f"select[name=grid_code] option[value='{DEMO_GRID}']").wait_for(state="attached")
    return task, detail


def a_household_of(e2e_engine, code: str):
    from api.models import Grid, Household

    with Session(e2e_engine) as session:
        return session.scalar(
            select(Household)
            .join(Grid, Grid.id == Household.grid_id)
            .where(
                Grid.code == code,
                Household.removed_at.is_(None),
                Household.building.is_not(None),
                Household.unit.is_not(None),
                Household.room.is_not(None),
            )
            .order_by(Household.id)
            .limit(1)
        )


def test_the_office_moves_a_task_to_the_right_grid_at_the_right_door(page, e2e_engine):
    open_window(page, "admin01")
    task, detail = register_in_other_grid(page, e2e_engine, "地址有误的投诉（待移交）")
    door = a_household_of(e2e_engine, DEMO_GRID)
    # The task's own grid is not offered.
    assert detail.locator(f"select[name=grid_code] option[value='{OTHER_GRID}']").count() == 0
    detail.locator("select[name=grid_code]").select_option(DEMO_GRID)
    address = f"{door.building}号楼{door.unit}单元{door.room}"  # as the resident says it
    detail.locator("form.task-move input[name=address]").fill(address)
    detail.locator("form.task-move input[name=reason]").fill("居民报错了楼号")
    detail.locator("form.task-move button").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent"
        ".startsWith('已移交到')"
    )
    [moved] = tasks_titled(e2e_engine, "地址有误的投诉（待移交）")
    assert moved.id == task.id and moved.household_id == door.id
    from api.models import Grid

    with Session(e2e_engine) as session:
        assert session.get(Grid, moved.grid_id).code == DEMO_GRID
    assert "移交网格" in detail.locator("ol.events").inner_text()


def test_a_move_without_the_right_place_is_refused_in_the_server_s_words(page, e2e_engine):
    """The task still stands in its old grid: moved as it is, the map showed it there."""
    open_window(page, "admin01")
    task, detail = register_in_other_grid(page, e2e_engine, "未给地址的移交")
    detail.locator("select[name=grid_code]").select_option(DEMO_GRID)
    detail.locator("form.task-move input[name=reason]").fill("网格有误")
    detail.locator("form.task-move button").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent"
        ".startsWith('未能移交')"
    )
    [stored] = tasks_titled(e2e_engine, "未给地址的移交")
    assert stored.grid_id == task.grid_id


def test_an_address_with_no_household_in_that_grid_sends_nothing(page, e2e_engine):
    open_window(page, "admin01")
    task, detail = register_in_other_grid(page, e2e_engine, "地址查无此户")
    detail.locator("select[name=grid_code]").select_option(DEMO_GRID)
    detail.locator("form.task-move input[name=address]").fill("999号楼 9单元 9999")
    detail.locator("form.task-move input[name=reason]").fill("地址有误")
    detail.locator("form.task-move button").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent"
        " === '该网格没有这个地址的住户：请核对地址，或不填地址。'"
    )
    [stored] = tasks_titled(e2e_engine, "地址查无此户")
    assert stored.grid_id == task.grid_id


def test_the_window_worker_moves_nothing(page, e2e_engine):
    """Moving is the grid leader's and the office's: the A-post worker's page has no such form."""
    open_window(page, "worker01")
    task = register_request(page, e2e_engine, "窗口登记（不可移交）")
    assert open_task(page, task.id).locator("details.task-move").count() == 0
