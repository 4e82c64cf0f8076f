"""One window, one visit, done (一窗受理、一次办结) on the window's page: the A-post worker
registers a request they settled there and then, and nobody out in the grid is handed it."""

from __future__ import annotations

import pytest

from tests.e2e.test_window import (
    OTHER_GRID,
    click_map,
    grid_pixel,
    open_task,
    open_window,
    tasks_titled,
    window_day,  # noqa: F401 (a fixture)
)
from tests.e2e.test_window_hotline import worker

pytestmark = pytest.mark.usefixtures("window_day")


def test_the_window_worker_registers_a_request_settled_at_the_window(page, e2e_engine):
    open_window(page, "worker01")
    choice = page.locator("#resolved-here-choice")
    assert choice.is_visible() and choice.inner_text() == "已在窗口当场办结（不派单）"
    page.check("input[name=type][value=consultation]")
    page.fill("input[name=title]", "开具居住证明（当场办结）")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    page.check("input[name=resolved_here]")
    assert page.inner_text("#submit") == "登记为当场办结"
    page.click("#submit")
    created = page.locator("#created")
    created.wait_for()
    [task] = tasks_titled(e2e_engine, "开具居住证明（当场办结）")
    assert task.status == "resolved" and task.resolved_at is not None
    assert worker(e2e_engine, task.assignee_id) == "worker01"  # not worker02, out in that grid
    assert created.locator(".status").inner_text() == "已办结"
    # The next resident's request is dispatched unless the worker says otherwise.
    assert not page.is_checked("input[name=resolved_here]")
    assert page.inner_text("#submit") == "登记并派单"
    page.locator(f"#today-tasks tr[data-id='{task.id}']").wait_for()
    history = open_task(page, task.id).locator("ol.events").inner_text()
    assert "窗口受理人当场办结" in history and "窗口当场办结" in history


def test_the_office_and_the_tickets_are_not_settled_at_the_window(page):
    """The community admin holds no task; a 12345 ticket is not a walk-in."""
    open_window(page, "admin01")
    assert page.is_hidden("#resolved-here-choice")
    page.check("input[name=source][value=hotline]")
    assert page.is_hidden("#resolved-here-choice")
