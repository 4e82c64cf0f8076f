"""The community office's accounts page (/accounts) in headless Chromium, on the demo district."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_GRID, lose_the_first_answer, screenshot, sign_in

BACK_ON_PASSWORD = "back-on-password-1"  # an account switched on again is given a new one

COMMUNITY = DEMO_GRID[:12]
NEW_PASSWORD = "a-new-password-1"


def open_accounts(page, username: str = "admin01") -> None:
    page.goto("/accounts")
    sign_in(page, username, DEMO_PASSWORD)


def ready(page) -> None:
    page.wait_for_selector("body[data-ready='1']")


def shown_usernames(page) -> list[str]:
    return page.locator("#accounts tbody tr[data-username]").evaluate_all(
        "rows => rows.map(r => r.dataset.username)"
    )


def wait_cell(page, username: str, cell: str, text: str) -> None:
    """Wait until the account's row (redrawn when the list reloads) shows `text` in `cell`."""
    page.wait_for_function(
        "([username, cell, text]) => document.querySelector("
        "`#accounts tr[data-username='${username}'] td.${cell}`)?.textContent === text",
        arg=[username, cell, text],
    )


def row(page, username: str):
    return page.locator(f"#accounts tbody tr[data-username='{username}']")


@pytest.fixture()
def made(e2e_engine):
    """Accounts and tasks a test makes; afterwards its accounts hold no grid and are switched
    off (dispatch never picks them for later tests) and its tasks are gone."""
    from api.models import Grid, GridVersion, Notification, Roster, Task, User, user_grids

    things: dict[str, list] = {"users": [], "tasks": [], "grids": [], "rosters": []}
    yield things
    with Session(e2e_engine) as session:
        session.execute(delete(Roster).where(Roster.id.in_(things["rosters"])))  # and its shifts
        now = datetime.now(UTC)
        grids = select(Grid.id).where(Grid.code.in_(things["grids"]))
        session.execute(
            update(GridVersion)
            .where(GridVersion.grid_id.in_(grids), GridVersion.valid_to.is_(None))
            .values(valid_to=now)
        )
        session.execute(update(Grid).where(Grid.id.in_(grids)).values(retired_at=now))
        ids = session.scalars(select(User.id).where(User.username.in_(things["users"]))).all()
        session.execute(delete(user_grids).where(user_grids.c.user_id.in_(ids)))
        session.execute(update(User).where(User.id.in_(ids)).values(active=False))
        tasks = [str(task) for task in things["tasks"]]
        session.execute(delete(Notification).where(Notification.data["task_id"].astext.in_(tasks)))
        session.execute(delete(Task).where(Task.id.in_(things["tasks"])))
        session.commit()


def api_as_admin(page, method: str, path: str, body: dict | None = None):
    """Call the API with the page's token (the admin signed in on the page)."""
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    return page.request.fetch(
        path, method=method, data=body, headers={"Authorization": f"Bearer {token}"}
    )


def open_account_by_api(
    page, made, display_name: str, role: str = "worker", grids: tuple[str, ...] = (DEMO_GRID,)
) -> str:
    """An account opened through the API (a grid leader opened with grids leads them)."""
    username = f"e2e_{uuid.uuid4().hex[:8]}"
    r = api_as_admin(
        page,
        "POST",
        "/api/v1/users",
        {
            "username": username,
            "password": DEMO_PASSWORD,
            "role": role,
            "display_name": display_name,
            "grid_codes": list(grids),
        },
    )
    assert r.status == 201, r.text()
    made["users"].append(username)
    return username


def open_worker_by_api(page, made, display_name: str, grid: str = DEMO_GRID) -> str:
    return open_account_by_api(page, made, display_name, "worker", (grid,))


def new_grid(page, made, e2e_engine, name: str) -> tuple[str, int]:
    """A new grid of the community, away from the others, made through the API (retired after
    the test); its code and id. Its code is one no grid of the community ever had."""
    from api.models import Grid

    with e2e_engine.connect() as conn:
        taken = set(conn.scalars(select(Grid.code).where(Grid.community_code == COMMUNITY)))
    n = next(n for n in range(999, 100, -1) if f"{COMMUNITY}{n}" not in taken)
    code = f"{COMMUNITY}{n}"
    lon, lat = 116.10 + (999 - n) * 0.002, 39.60  # each code its own square
    ring = [[lon, lat], [lon + 0.001, lat], [lon + 0.001, lat + 0.001], [lon, lat + 0.001]]
    r = api_as_admin(
        page,
        "POST",
        "/api/v1/grids",
        {
            "type": "Feature",
            "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
        },
    )
    assert r.status == 201, r.text()
    made["grids"].append(code)
    return code, r.json()["id"]


def leader_of(page, grid_id: int) -> int | None:
    r = api_as_admin(page, "GET", f"/api/v1/grids/{grid_id}")
    assert r.ok, r.text()
    return r.json()["properties"]["leader_id"]


def account(page, username: str) -> dict:
    user_id = row(page, username).get_attribute("data-id")
    return api_as_admin(page, "GET", f"/api/v1/users/{user_id}").json()


def wait_led(page, username: str, code: str, led: bool = True) -> None:
    """Wait until the account's row (redrawn when the list reloads) shows `code` led, or not."""
    page.wait_for_function(
        "([username, code, led]) => { const td = document.querySelector("
        "`#accounts tr[data-username='${username}'] td.led`);"
        " return Boolean(td) && td.textContent.includes(code) === led; }",
        arg=[username, code, led],
    )


def test_an_admin_lists_the_communitys_accounts_and_filters_them(page, e2e_engine):
    from api.models import User

    open_accounts(page)
    ready(page)
    with e2e_engine.connect() as conn:
        community = conn.scalars(
            select(User.username)
            .where(User.community_code == COMMUNITY, User.active)
            .order_by(User.username)
        ).all()
    assert shown_usernames(page) == list(community)  # those in use, at first
    worker01 = row(page, "worker01")
    assert DEMO_GRID in worker01.locator("td.grids").inner_text()
    assert worker01.locator("td.role").inner_text() == "网格员"
    assert DEMO_GRID in row(page, "leader01").locator("td.led").inner_text()
    page.select_option("#filter-role", "worker")
    page.wait_for_function(
        "() => { const roles = [...document.querySelectorAll('#accounts tbody td.role')];"
        " return roles.length > 0 && roles.every(td => td.textContent === '网格员'); }"
    )
    assert "leader01" not in shown_usernames(page) and "worker01" in shown_usernames(page)
    assert "共" in page.inner_text("#page-info")
    assert page.get_attribute("#to-map", "href") == "/map"
    screenshot(page, "accounts-list")


def fill_new_account(
    page, made, display_name: str | None = None, grid: str = DEMO_GRID, role: str | None = None
):
    """The 开账号 form filled as the office fills it for a new account (a fresh username, the
    demo password, `role` if not a worker's, its grid ticked), not sent: (the form, the
    username)."""
    page.click("#open-account")
    form = page.locator("#account-form")
    username = f"e2e_{uuid.uuid4().hex[:8]}"
    made["users"].append(username)
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(DEMO_PASSWORD)
    if role:
        form.locator("select[name=role]").select_option(role)
    if display_name:
        form.locator("input[name=display_name]").fill(display_name)
    form.locator(f"input[name=grid_codes][value='{grid}']").check()
    return form, username


def switched_off_by_api(page, made, display_name: str) -> str:
    """A worker's account of the demo grid opened, then switched off, through the API."""
    username = f"e2e_{uuid.uuid4().hex[:8]}"
    made["users"].append(username)
    body = {
        "username": username,
        "password": DEMO_PASSWORD,
        "role": "worker",
        "display_name": display_name,
        "grid_codes": [DEMO_GRID],
    }
    opened = api_as_admin(page, "POST", "/api/v1/users", body)
    assert opened.status == 201, opened.text()
    off = api_as_admin(page, "PATCH", f"/api/v1/users/{opened.json()['id']}", {"active": False})
    assert off.ok, off.text()
    return username


def test_the_list_shows_the_accounts_in_use_and_the_switched_off_ones_when_asked(page, made):
    """The list mixed the switched-off (已停用) accounts in with those in use: the office, which
    works with the accounts in use, read past the departed ones. 在用 is chosen at first; 全部 and
    已停用 are still offered."""
    open_accounts(page)
    ready(page)
    gone = switched_off_by_api(page, made, "已离职")
    page.reload()
    ready(page)
    state = page.locator("#filter-active")
    assert state.locator("option").all_inner_texts() == ["全部", "在用", "已停用"]
    assert state.evaluate("(s) => s.selectedOptions[0].textContent") == "在用"
    assert "worker01" in shown_usernames(page) and gone not in shown_usernames(page)
    assert set(page.locator("#accounts tbody td.state").all_inner_texts()) == {"在用"}
    page.select_option("#filter-active", "false")
    row(page, gone).wait_for()
    assert set(page.locator("#accounts tbody td.state").all_inner_texts()) == {"已停用"}
    page.select_option("#filter-active", "")
    row(page, "worker01").wait_for()
    assert gone in shown_usernames(page)


def test_an_account_switched_off_leaves_the_list_in_use_saying_where_it_is_found(
    page, made, e2e_engine
):
    """Switched off under 在用, the account leaves the list, and the page says where it went
    (已停用) rather than leaving the admin to wonder. The page it stood on alone emptied, the one
    before is shown."""
    open_accounts(page)
    ready(page)
    code, _ = new_grid(page, made, e2e_engine, "两人网格")
    pair = [open_worker_by_api(page, made, name, grid=code) for name in ("甲同事", "乙同事")]
    page.goto("/accounts?page_size=1")
    ready(page)
    with page.expect_response(lambda r: f"grid={code}" in r.url):
        page.select_option("#filter-grid", code)
    page.click("#next")
    page.wait_for_function(
        "() => document.querySelector('#page-info').textContent.startsWith('第 2/2 页')"
    )
    [second] = shown_usernames(page)
    [first] = [u for u in pair if u != second]
    row(page, second).locator("button[data-action=switch-off]").click()
    page.click("#confirm-yes")
    outcome = page.locator("#outcome")
    outcome.locator(".left-list").wait_for()
    said = outcome.inner_text()
    assert "账号已停用" in said
    assert "已不在“在用”列表中" in outcome.locator(".left-list").inner_text()
    assert "已停用" in outcome.locator(".left-list").inner_text()
    page.wait_for_function(
        "() => document.querySelector('#page-info').textContent.startsWith('第 1/1 页')"
    )
    assert shown_usernames(page) == [first]
    # The last one too: the list says it is empty.
    row(page, first).locator("button[data-action=switch-off]").click()
    page.click("#confirm-yes")
    page.wait_for_selector("#accounts tbody tr:not([data-username]) >> text=没有符合条件的账号。")
    assert shown_usernames(page) == []
    # Both are found under 已停用.
    page.select_option("#filter-active", "false")
    row(page, first).wait_for()
    assert "共 2 个账号" in page.inner_text("#page-info")


def test_the_list_pages_through_the_accounts(page):
    page.goto("/accounts?page_size=4")
    sign_in(page, "admin01", DEMO_PASSWORD)
    ready(page)
    first = shown_usernames(page)
    assert len(first) == 4 and page.is_disabled("#prev")
    pages = int(page.inner_text("#page-info").split("/")[1].split()[0])
    seen = list(first)
    for n in range(2, pages + 1):
        page.click("#next")
        page.wait_for_function(
            "(n) => document.querySelector('#page-info').textContent.startsWith(`第 ${n}/`)"
            " && document.querySelector('#accounts tr[data-username]')",
            arg=n,
        )
        seen += shown_usernames(page)
    assert page.is_disabled("#next")
    total = int(page.inner_text("#page-info").split("共")[1].split()[0])
    assert len(seen) == len(set(seen)) == total  # every account once
    assert {"admin01", "leader01", "worker01"} <= set(seen)


def test_the_page_speaks_english_when_asked(page):
    page.goto("/accounts?lang=en")
    sign_in(page, "admin01", DEMO_PASSWORD)
    ready(page)
    assert page.inner_text("#toolbar strong") == "Accounts"
    assert row(page, "worker01").locator("td.role").inner_text() == "Grid worker"
    assert page.inner_text("#open-account") == "Open an account"


def test_opening_an_account_shows_the_servers_errors_beside_their_fields(page, made):
    open_accounts(page, "admin01")
    ready(page)
    page.click("#open-account")
    form = page.locator("#account-form")
    form.locator("input[name=username]").fill("worker01")  # taken
    form.locator("input[name=password]").fill("short")
    form.locator("input[name=display_name]").fill("新同事")
    form.locator(f"input[name=grid_codes][value='{DEMO_GRID}']").check()
    form.locator("button[type=submit]").click()
    password_error = form.locator(".field-error[data-field=password]")
    password_error.wait_for(state="visible")
    page.wait_for_function(
        "() => document.querySelector('.field-error[data-field=password]').textContent !== ''"
    )
    assert "8" in password_error.inner_text()  # the schema's least length
    form.locator("input[name=password]").fill(DEMO_PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_function(
        "() => document.querySelector('.field-error[data-field=username]').textContent !== ''"
    )
    assert "worker01" in form.locator(".field-error[data-field=username]").inner_text()
    assert form.locator(".field-error[data-field=password]").inner_text() == ""
    username = f"e2e_{uuid.uuid4().hex[:8]}"
    made["users"].append(username)
    form.locator("input[name=username]").fill(username)
    form.locator("button[type=submit]").click()
    opened = row(page, username)
    opened.wait_for()
    assert page.locator("#account-dialog").is_visible() is False
    assert opened.locator("td.name").inner_text() == "新同事"
    assert DEMO_GRID in opened.locator("td.grids").inner_text()
    assert opened.locator("td.state").inner_text() == "在用"


def tick_another_grid_for_the_demo_grid(form) -> str:
    """In the account form, the demo grid unticked and another grid of the community ticked;
    that grid's code."""
    other = form.locator("input[name=grid_codes]").evaluate_all(
        f"inputs => inputs.map(i => i.value).filter(v => v !== '{DEMO_GRID}')"
    )[0]
    form.locator(f"input[name=grid_codes][value='{DEMO_GRID}']").uncheck()
    form.locator(f"input[name=grid_codes][value='{other}']").check()
    return other


def test_an_admin_edits_an_accounts_name_phone_and_grids(page, made, e2e_engine):
    from api.models import User

    open_accounts(page)
    ready(page)
    username = open_worker_by_api(page, made, "改名前")
    page.select_option("#filter-active", "true")  # reloads the list
    row(page, username).wait_for()
    row(page, username).locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    assert form.locator("input[name=username]").is_visible() is False  # only when opening
    form.locator("input[name=display_name]").fill("改名后")
    form.locator("input[name=phone]").fill("13900001111")
    other = tick_another_grid_for_the_demo_grid(form)
    form.locator("button[type=submit]").click()
    wait_cell(page, username, "name", "改名后")
    assert other in row(page, username).locator("td.grids").inner_text()
    assert DEMO_GRID not in row(page, username).locator("td.grids").inner_text()
    with e2e_engine.connect() as conn:
        assert conn.scalar(select(User.phone).where(User.username == username)) == "13900001111"


def test_moving_a_worker_to_another_grid_shows_the_b_posts_left_in_the_old_one(
    page, made, e2e_engine
):
    """Saved, the move said nothing of the roster still sending the worker to the grid they
    left (the answer's `shifts_ahead`): the office learnt it when the grid went unvisited."""
    open_accounts(page)
    ready(page)
    username = open_worker_by_api(page, made, "换网格")
    shift_day = rostered(e2e_engine, made, username)
    page.select_option("#filter-active", "true")  # reloads the list
    row(page, username).locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    tick_another_grid_for_the_demo_grid(form)
    form.locator("button[type=submit]").click()
    outcome = page.locator("#outcome")
    outcome.wait_for()
    assert "换网格" in outcome.locator("h3").inner_text()
    assert outcome.locator(".shifts-ahead li").all_inner_texts() == [shift_day]
    assert outcome.locator(".handed-on, .no-tasks").count() == 0  # nothing was handed on


def test_switching_a_worker_off_shows_the_task_handed_on_and_to_whom(page, made, e2e_engine):
    from api.models import Task, User

    open_accounts(page)
    ready(page)
    username = open_worker_by_api(page, made, "要离职")
    task_id = hold_task(e2e_engine, made, username, DEMO_GRID, "楼道堆物清理")
    shift_day = rostered(e2e_engine, made, username)
    page.reload()
    ready(page)
    row(page, username).locator("button[data-action=switch-off]").click()
    confirm = page.locator("#confirm-dialog")
    confirm.wait_for()
    said = confirm.inner_text()
    assert "无法再登录" in said and "日历" in said and "推送" in said and "任务" in said
    screenshot(page, "accounts-switch-off-confirm")
    page.click("#confirm-yes")
    handed = page.locator(f"#outcome li[data-task='{task_id}']")
    handed.wait_for()
    with e2e_engine.connect() as conn:
        assignee = conn.execute(
            select(User.id, User.display_name, User.username)
            .join(Task, Task.assignee_id == User.id)
            .where(Task.id == task_id)
        ).one()
    assert assignee.username != username
    assert "楼道堆物清理" in handed.inner_text()
    assert handed.locator(".assignee").inner_text() == (assignee.display_name or assignee.username)
    assert "要离职" in page.inner_text("#outcome h3")
    assert page.locator("#outcome .shifts-ahead li").all_inner_texts() == [shift_day]
    row(page, username).wait_for(state="detached")  # gone from the accounts in use
    page.select_option("#filter-active", "")
    wait_cell(page, username, "state", "已停用")
    screenshot(page, "accounts-switched-off")
    # ...and on again with a new password (once confirmed): the row says so, and the worker
    # signs in with it; the old one, which may have been guessed while it was off, is wrong.
    row(page, username).locator("button[data-action=switch-on]").click()
    page.fill("#confirm-form [name=new_password]", BACK_ON_PASSWORD)
    page.click("#confirm-yes")
    wait_cell(page, username, "state", "在用")
    for password, status in ((DEMO_PASSWORD, 401), (BACK_ON_PASSWORD, 200)):
        r = page.request.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert r.status == status


def test_switching_an_account_on_again_asks_first(page, made, e2e_engine):
    from api.models import User

    open_accounts(page)
    ready(page)
    username = open_worker_by_api(page, made, "回来了")
    page.reload()
    ready(page)
    user_id = row(page, username).get_attribute("data-id")
    assert api_as_admin(page, "PATCH", f"/api/v1/users/{user_id}", {"active": False}).ok
    page.reload()
    ready(page)
    page.select_option("#filter-active", "")  # the accounts in use are shown at first
    row(page, username).locator("button[data-action=switch-on]").click()
    confirm = page.locator("#confirm-dialog")
    confirm.wait_for()
    assert "新密码" in confirm.inner_text()
    assert "danger" not in (page.get_attribute("#confirm-yes", "class") or "")  # lighter
    confirm.locator("button.cancel").click()
    assert confirm.is_visible() is False
    with e2e_engine.connect() as conn:
        assert conn.scalar(select(User.active).where(User.username == username)) is False
    assert row(page, username).locator("td.state").inner_text() == "已停用"
    row(page, username).locator("button[data-action=switch-on]").click()
    page.fill("#confirm-form [name=new_password]", BACK_ON_PASSWORD)
    page.click("#confirm-yes")
    wait_cell(page, username, "state", "在用")
    assert "重新启用" in page.inner_text("#status")


def test_switching_on_pressed_again_after_a_lost_answer_says_it_is_on(page, made):
    """The account was on once the first answer was lost: pressed again, the same change was
    refused (a new password goes with switching an account on), for what was done."""
    open_accounts(page)
    ready(page)
    username = switched_off_by_api(page, made, "回来了")
    page.select_option("#filter-active", "")
    keys = lose_the_first_answer(page, "**/api/v1/users/*", method="PATCH")
    row(page, username).locator("button[data-action=switch-on]").click()
    page.fill("#confirm-form [name=new_password]", BACK_ON_PASSWORD)
    page.click("#confirm-yes")
    page.wait_for_function("() => document.querySelector('#confirm-form .form-error')?.textContent")
    page.click("#confirm-yes")  # the dialog kept open, the password in it: pressed again
    wait_cell(page, username, "state", "在用")
    assert "重新启用" in page.inner_text("#status")
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_fellow_admins_account_is_not_offered_to_switch_on(page, made):
    """Switching an account on sets its password, a fellow admin's the district's: the server
    refuses it (403), after the admin had typed a new password for it."""
    open_accounts(page)
    ready(page)
    username = open_account_by_api(page, made, "另一位管理员", "community_admin", ())
    r = page.request.fetch("/api/v1/users?page_size=100", headers=_token(page))
    user_id = next(u["id"] for u in r.json() if u["username"] == username)
    assert api_as_admin(page, "PATCH", f"/api/v1/users/{user_id}", {"active": False}).ok
    page.reload()
    ready(page)
    page.select_option("#filter-active", "false")
    row(page, username).wait_for()
    assert row(page, username).locator("button[data-action=switch-on]").count() == 0


def _token(page) -> dict:
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    return {"Authorization": f"Bearer {token}"}


def test_an_account_switched_on_from_the_switched_off_list_says_where_it_went(page, made):
    """Under 已停用 the account switched on left the list without a word, as if lost."""
    open_accounts(page)
    ready(page)
    username = switched_off_by_api(page, made, "回来了")
    page.select_option("#filter-active", "false")
    row(page, username).locator("button[data-action=switch-on]").click()
    page.fill("#confirm-form [name=new_password]", BACK_ON_PASSWORD)
    page.click("#confirm-yes")
    row(page, username).wait_for(state="detached")
    assert "已回到“在用”列表" in page.inner_text("#status")


def test_an_admin_makes_a_worker_an_admin_after_confirming_and_sees_what_was_handed_on(
    page, made, e2e_engine
):
    open_accounts(page)
    ready(page)
    username = open_worker_by_api(page, made, "调任者")
    task_id = hold_task(e2e_engine, made, username, DEMO_GRID, "调任前的任务")
    shift_day = rostered(e2e_engine, made, username)
    signed_in = page.request.post(
        "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
    )
    their_token = signed_in.json()["access_token"]
    page.reload()
    ready(page)
    user_id = row(page, username).get_attribute("data-id")
    row(page, username).locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    form.locator("select[name=role]").select_option("community_admin")
    assert form.locator("#grid-options").is_visible() is False  # an admin holds no grids
    form.locator("button[type=submit]").click()
    confirm = page.locator("#confirm-dialog")
    confirm.wait_for()
    said = confirm.inner_text()
    assert "网格员" in said and "社区管理员" in said
    assert "登录" in said and "任务" in said and "排班" in said
    screenshot(page, "accounts-role-confirm")
    page.click("#confirm-yes")
    handed = page.locator(f"#outcome li[data-task='{task_id}']")
    handed.wait_for()
    assert "调任前的任务" in handed.inner_text()
    assert "社区管理员" in page.inner_text("#outcome h3")
    assert page.locator("#outcome .shifts-ahead li").all_inner_texts() == [shift_day]
    wait_cell(page, username, "role", "社区管理员")
    assert page.locator("#account-dialog").is_visible() is False
    assert page.locator("#confirm-dialog").is_visible() is False
    screenshot(page, "accounts-role-changed")
    account = api_as_admin(page, "GET", f"/api/v1/users/{user_id}").json()
    assert (account["role"], account["grid_codes"]) == ("community_admin", [])
    # Their sign-in ended: the token they held is refused.
    me = page.request.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {their_token}"})
    assert me.status == 401


def test_a_leader_still_leading_grids_is_refused_a_new_role_with_the_servers_reason(
    page, e2e_engine
):
    from api.models import User

    open_accounts(page)
    ready(page)
    row(page, "leader01").locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    form.locator("select[name=role]").select_option("worker")
    assert DEMO_GRID in form.locator("#role-hint").inner_text()  # said before saving
    form.locator("button[type=submit]").click()
    page.locator("#confirm-dialog").wait_for()
    page.click("#confirm-yes")
    error = page.locator("#confirm-form .form-error")
    page.wait_for_function(
        "() => document.querySelector('#confirm-form .form-error').textContent.trim() !== ''"
    )
    said = error.inner_text()
    # The page's words (where to name the new leader), then the server's detail naming the grid.
    assert "网格长" in said and "name their new leader first" in said
    assert "带领网格" in error.locator(".why").inner_text()
    assert error.locator(".detail").inner_text().count(DEMO_GRID) == 1
    assert page.locator("#confirm-dialog").is_visible()
    screenshot(page, "accounts-role-refused")
    page.locator("#confirm-form button.cancel").click()
    assert page.locator("#account-dialog").is_visible()  # the edit is kept, to cancel or change
    form.locator("button.cancel").click()
    with e2e_engine.connect() as conn:
        assert conn.scalar(select(User.role).where(User.username == "leader01")) == "grid_leader"
    assert row(page, "leader01").locator("td.role").inner_text() == "网格长"


def test_an_admin_hands_a_grid_to_another_leader_then_makes_the_old_one_a_worker(
    page, made, e2e_engine
):
    open_accounts(page)
    ready(page)
    code, grid_id = new_grid(page, made, e2e_engine, "交接网格")
    old = open_account_by_api(page, made, "老网格长", "grid_leader", (code,))
    new = open_account_by_api(page, made, "新网格长", "grid_leader", ())
    page.reload()
    ready(page)
    row(page, new).locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    line = form.locator(f"#led-options label[data-code='{code}']")
    assert form.locator("#led-choice").is_visible()
    assert "老网格长" in line.inner_text()  # checking it takes it from them
    assert line.locator("input").is_checked() is False
    line.locator("input").check()
    assert form.locator("#led-warning").is_visible() is False  # no grid is left leaderless
    screenshot(page, "accounts-grids-led")
    form.locator("button[type=submit]").click()
    wait_led(page, new, code)
    wait_led(page, old, code, led=False)
    assert page.locator("#account-dialog").is_visible() is False
    assert leader_of(page, grid_id) == int(row(page, new).get_attribute("data-id"))
    assert account(page, old)["led_grid_codes"] == []
    # Leading nothing now, the old leader is made a worker through the page.
    row(page, old).locator("button[data-action=edit]").click()
    form.locator("select[name=role]").select_option("worker")
    assert form.locator("#role-hint").is_visible() is False
    assert form.locator("#led-choice").is_visible() is False
    form.locator("button[type=submit]").click()
    page.click("#confirm-yes")
    wait_cell(page, old, "role", "网格员")
    assert account(page, old)["role"] == "worker"


def test_unticking_a_grid_led_leaves_it_without_a_leader_after_a_warning(page, made, e2e_engine):
    open_accounts(page)
    ready(page)
    code, grid_id = new_grid(page, made, e2e_engine, "放手网格")
    leader = open_account_by_api(page, made, "放手者", "grid_leader", (code,))
    page.reload()
    ready(page)
    row(page, leader).locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    tick = form.locator(f"#led-options input[value='{code}']")
    assert tick.is_checked()
    assert form.locator("#led-warning").is_visible() is False
    tick.uncheck()
    warning = form.locator("#led-warning")
    assert warning.is_visible()
    assert code in warning.inner_text() and "没有网格长" in warning.inner_text()
    screenshot(page, "accounts-grid-left-leaderless")
    form.locator("button[type=submit]").click()
    wait_led(page, leader, code, led=False)
    assert leader_of(page, grid_id) is None
    assert account(page, leader)["role"] == "grid_leader"  # only the grid changed


def test_a_worker_made_a_grid_leader_leads_the_grid_ticked_the_role_changed_first(
    page, made, e2e_engine
):
    open_accounts(page)
    ready(page)
    code, grid_id = new_grid(page, made, e2e_engine, "升任网格")
    worker = open_account_by_api(page, made, "升任者", "worker", (code,))
    page.reload()
    ready(page)
    patches = []
    page.on("request", lambda r: r.method == "PATCH" and patches.append(r.url.split("/api/v1/")[1]))
    row(page, worker).locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    form.locator("input[name=display_name]").wait_for()
    assert form.locator("#led-choice").is_visible() is False  # a worker leads nothing here
    form.locator("select[name=role]").select_option("grid_leader")
    assert form.locator("#led-choice").is_visible()
    form.locator(f"#led-options input[value='{code}']").check()
    form.locator("button[type=submit]").click()
    page.click("#confirm-yes")
    wait_cell(page, worker, "role", "网格长")
    wait_led(page, worker, code)
    user = account(page, worker)
    assert (user["role"], user["led_grid_codes"]) == ("grid_leader", [code])
    assert leader_of(page, grid_id) == user["id"]
    assert patches == [f"users/{user['id']}", f"grids/{grid_id}"]


def test_a_leader_opened_on_the_page_is_named_leader_of_their_grids_in_other_forms(
    page, made, e2e_engine
):
    """A grid leader opened with grids leads them: the page kept the grids' leaders as read
    at its start, so another leader's form still offered the grid as having "no leader", and
    ticking it there took it from the leader just opened, unwarned."""
    open_accounts(page)
    ready(page)
    code, grid_id = new_grid(page, made, e2e_engine, "新开网格")
    other = open_account_by_api(page, made, "另一网格长", "grid_leader", ())
    page.reload()
    ready(page)
    form, username = fill_new_account(page, made, "新开网格长", code, "grid_leader")
    form.locator("button[type=submit]").click()
    wait_led(page, username, code)
    assert leader_of(page, grid_id) == int(row(page, username).get_attribute("data-id"))
    row(page, other).locator("button[data-action=edit]").click()
    line = form.locator(f"#led-options label[data-code='{code}']")
    assert "新开网格长" in line.inner_text()
    assert line.locator(".leader.none").count() == 0
    form.locator("button.cancel").click()


def test_a_grid_refused_its_new_leader_is_named_with_the_servers_reason(page, made, e2e_engine):
    open_accounts(page)
    ready(page)
    code, grid_id = new_grid(page, made, e2e_engine, "将撤网格")
    leader = open_account_by_api(page, made, "接任者", "grid_leader", ())
    page.reload()
    ready(page)
    row(page, leader).locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    form.locator("input[name=phone]").fill("13900002222")
    form.locator(f"#led-options input[value='{code}']").check()
    # Meanwhile the grid is retired (by another admin, say).
    assert api_as_admin(page, "DELETE", f"/api/v1/grids/{grid_id}").status == 204
    form.locator("button[type=submit]").click()
    failed = form.locator(f"#led-errors li[data-code='{code}']")
    failed.wait_for()
    assert f"Grid {grid_id} not found" in failed.inner_text()
    assert "未能修改" in form.locator("#led-errors").inner_text()
    screenshot(page, "accounts-grid-led-refused")
    # The form stays, redrawn as the server holds it: the phone saved, the grid gone.
    assert page.locator("#account-dialog").is_visible()
    assert form.locator("input[name=phone]").input_value() == "13900002222"
    assert form.locator(f"#led-options input[value='{code}']").count() == 0
    assert account(page, leader)["led_grid_codes"] == []
    form.locator("button.cancel").click()


# Notes in `window.__read` each URL whose JSON body the page has read, once the page's code
# awaiting it has run on (a task after: its awaits are microtasks).
NOTE_BODIES_READ = """
  window.__read = [];
  const fetchFirst = window.fetch;
  window.fetch = async (...args) => {
    const response = await fetchFirst(...args);
    const json = response.json.bind(response);
    response.json = async () => {
      const body = await json();
      setTimeout(() => window.__read.push(String(args[0])));
      return body;
    };
    return response;
  };
"""


def test_a_list_answered_late_does_not_replace_the_one_asked_for_since(page):
    """The filters changed twice, and the first answer came last: the list showed the workers
    under "grid leaders" (or page 2's accounts as page 3), and its buttons acted on them."""
    page.add_init_script(NOTE_BODIES_READ)
    open_accounts(page)
    ready(page)
    held = []
    page.route("**/api/v1/users?role=worker*", lambda route: held.append(route))
    with page.expect_request(lambda r: "role=worker" in r.url):
        page.select_option("#filter-role", "worker")
    page.select_option("#filter-role", "grid_leader")
    leaders = (
        "() => { const roles = [...document.querySelectorAll('#accounts tbody td.role')];"
        " return roles.length > 0 && roles.every(td => td.textContent === '网格长'); }"
    )
    page.wait_for_function(leaders)
    assert len(held) == 1
    held[0].continue_()  # the workers, answered late
    page.wait_for_function("() => window.__read.some(url => url.includes('role=worker'))")
    assert page.evaluate(leaders)
    assert "leader01" in shown_usernames(page) and "worker01" not in shown_usernames(page)


def test_an_admin_is_not_offered_their_own_role(page):
    open_accounts(page)
    ready(page)
    row(page, "admin01").locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    form.locator("input[name=display_name]").wait_for()
    assert form.locator("select[name=role]").is_visible() is False
    form.locator("button.cancel").click()
    row(page, "worker01").locator("button[data-action=edit]").click()
    assert form.locator("select[name=role]").is_visible()
    assert form.locator("select[name=role]").input_value() == "worker"


def test_an_admin_is_not_offered_a_fellow_admins_role(page, made):
    """A fellow admin's role is the district's to change (403): the form offered it, and the
    admin learned so only after confirming. Their name stays theirs to correct."""
    open_accounts(page)
    ready(page)
    username = open_account_by_api(page, made, "另一位管理员", "community_admin", ())
    page.reload()
    ready(page)
    row(page, username).locator("button[data-action=edit]").click()
    form = page.locator("#account-form")
    form.locator("input[name=display_name]").wait_for()
    assert form.locator("select[name=role]").is_visible() is False
    form.locator("input[name=display_name]").fill("管理员改名")
    form.locator("button[type=submit]").click()
    wait_cell(page, username, "name", "管理员改名")
    assert page.locator("#account-dialog").is_visible() is False
    assert account(page, username)["role"] == "community_admin"


def test_the_grid_filter_lists_the_accounts_holding_the_grid(page, e2e_engine):
    from api.models import Grid, User, user_grids

    open_accounts(page)
    ready(page)
    assert "admin01" in shown_usernames(page)
    with page.expect_request(lambda r: "/api/v1/users?" in r.url and f"grid={DEMO_GRID}" in r.url):
        page.select_option("#filter-grid", DEMO_GRID)
    page.wait_for_function(
        "(code) => { const rows = [...document.querySelectorAll('#accounts tr[data-username]')];"
        " return rows.length > 0"
        " && rows.every(r => r.querySelector('td.grids').textContent.includes(code)); }",
        arg=DEMO_GRID,
    )
    with e2e_engine.connect() as conn:
        holders = conn.scalars(
            select(User.username)
            .join(user_grids, user_grids.c.user_id == User.id)
            .join(Grid, Grid.id == user_grids.c.grid_id)
            .where(Grid.code == DEMO_GRID, User.active)  # those in use: the state's default
            .order_by(User.username)
        ).all()
    assert shown_usernames(page) == list(holders)
    assert "worker01" in holders and "admin01" not in holders
    page.select_option("#filter-grid", "")
    row(page, "admin01").wait_for()


def hold_task(e2e_engine, made, username: str, grid_code: str, title: str) -> int:
    """A task of grid `grid_code` held by `username`, dispatched to them."""
    from api.models import Grid, Task, User

    with Session(e2e_engine) as session:
        task = Task(
            source="window",
            type="help",
            title=title,
            grid_id=session.scalar(select(Grid.id).where(Grid.code == grid_code)),
            status="dispatched",
            assignee_id=session.scalar(select(User.id).where(User.username == username)),
            due_at=datetime.now(UTC) + timedelta(days=1),
        )
        session.add(task)
        session.commit()
        made["tasks"].append(task.id)
        return task.id


def rostered(e2e_engine, made, username: str, weeks_ahead: int = 3) -> str:
    """A B-post shift for `username` in DEMO_GRID on a day `weeks_ahead` weeks from now, in a
    draft roster of its own (dispatch reads only published ones); the day, ISO."""
    from api.models import Grid, Roster, Shift, User
    from api.services.weeks import LOCAL, week_of

    day = (datetime.now(UTC) + timedelta(weeks=weeks_ahead)).astimezone(LOCAL).date()
    with Session(e2e_engine) as session:
        roster = Roster(community_code=COMMUNITY, week=week_of(day))
        session.add(roster)
        session.flush()
        session.add(
            Shift(
                roster_id=roster.id,
                date=day,
                post="B",
                worker_id=session.scalar(select(User.id).where(User.username == username)),
                grid_id=session.scalar(select(Grid.id).where(Grid.code == DEMO_GRID)),
            )
        )
        session.commit()
        made["rosters"].append(roster.id)
    return day.isoformat()


def test_a_task_nobody_can_take_is_shown_waiting_unassigned(page, made, e2e_engine):
    """A new grid, no leader, its only worker switched off: dispatch finds nobody."""
    open_accounts(page)
    ready(page)
    code, _ = new_grid(page, made, e2e_engine, "无人网格")
    username = open_worker_by_api(page, made, "唯一网格员", grid=code)
    task_id = hold_task(e2e_engine, made, username, code, "无人可接")
    page.reload()
    ready(page)
    row(page, username).locator("button[data-action=switch-off]").click()
    page.click("#confirm-yes")
    handed = page.locator(f"#outcome li[data-task='{task_id}']")
    handed.wait_for()
    assert handed.locator(".waiting").inner_text() == "待分派（无人接手）"
    assert handed.locator(".assignee").count() == 0


def test_an_admin_resets_a_password_after_confirming(page, made):
    open_accounts(page)
    ready(page)
    username = open_worker_by_api(page, made, "忘密码")
    page.reload()
    ready(page)
    row(page, username).locator("button[data-action=reset-password]").click()
    confirm = page.locator("#confirm-form")
    confirm.locator("input[name=new_password]").fill("short")
    page.click("#confirm-yes")
    page.wait_for_function(
        "() => document.querySelector('.field-error[data-field=new_password]').textContent !== ''"
    )
    confirm.locator("input[name=new_password]").fill(NEW_PASSWORD)
    page.click("#confirm-yes")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('新密码')")
    assert page.locator("#confirm-dialog").is_visible() is False
    token = page.request.post
    assert token("/api/v1/auth/token", data={"username": username, "password": NEW_PASSWORD}).ok
    old = token("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert old.status == 401


def test_a_worker_is_told_the_accounts_page_is_not_for_them(page):
    open_accounts(page, "worker01")
    notice = page.locator("#notice")
    notice.wait_for()
    assert "社区办公室" in notice.inner_text()
    assert page.locator("#accounts-section").is_visible() is False
    assert page.locator("#open-account").is_visible() is False
    screenshot(page, "accounts-not-for-workers")


def test_a_grid_leader_reads_their_grids_accounts_without_changing_them(page):
    open_accounts(page, "leader01")
    ready(page)
    assert "只读" in page.inner_text("#notice")
    assert "worker01" in shown_usernames(page)
    assert "admin01" not in shown_usernames(page)
    assert page.locator("#accounts button[data-action]").count() == 0
    assert page.locator("#open-account").is_visible() is False


@pytest.mark.parametrize(("username", "shown"), [("admin01", True), ("leader01", False)])
def test_the_maps_toolbar_links_to_the_accounts_page_for_community_admins(page, username, shown):
    page.goto("/map")
    sign_in(page, username, DEMO_PASSWORD)
    page.locator("#toolbar").wait_for()
    assert page.locator("#accounts-link").is_visible() is shown
    if shown:
        page.click("#accounts-link")
        ready(page)
        assert page.url.endswith("/accounts")


@pytest.mark.parametrize("width", [1280, 768], ids=["desktop", "tablet"])
def test_short_words_of_the_list_are_not_broken_a_character_a_line(page, made, width):
    """The table squeezed its narrow columns, the more so beside a long name, until "状态",
    "在用" and "网格员" stood one character a line."""
    page.set_viewport_size({"width": width, "height": 900})
    open_accounts(page)
    ready(page)
    open_worker_by_api(page, made, "欧阳长长长长长长长长名字很长很长的网格员同志")
    page.reload()
    ready(page)
    one_line = page.evaluate(
        """() => {
          const line = (el) => parseFloat(getComputedStyle(el).lineHeight) || 20;
          const cells = [...document.querySelectorAll(
            '#accounts th, #accounts td.role, #accounts td.state')];
          const textHeight = (el) => {
            const range = document.createRange();
            range.selectNodeContents(el);
            return range.getBoundingClientRect().height;
          };
          return cells.filter((el) => textHeight(el) > 1.5 * line(el))
            .map((el) => el.textContent.trim());
        }"""
    )
    assert one_line == []


def test_on_the_chinese_page_a_fields_refusal_is_said_in_chinese(page):
    """The schema's refusals stood in English beside the Chinese labels ("Length must be
    between 8 and 200.")."""
    open_accounts(page, "admin01")
    ready(page)
    page.click("#open-account")
    form = page.locator("#account-form")
    form.locator("input[name=password]").fill("short")
    form.locator("button[type=submit]").click()
    page.wait_for_function(
        "() => document.querySelector('.field-error[data-field=password]').textContent !== ''"
    )
    said = {
        field: form.locator(f".field-error[data-field={field}]").inner_text()
        for field in ("password", "username")
    }
    assert said == {"password": "须为 8 至 200 个字符。", "username": "须为 1 至 64 个字符。"}


# --- on a phone ----------------------------------------------------------------------------------
PHONE = {"width": 390, "height": 844}
TAP = 40  # px, as the app's controls (tests/e2e/test_app.py)

TOO_SMALL = """([scope, least]) => [...document.querySelectorAll(
    `${scope} button, ${scope} select, ${scope} input:not([type=checkbox]), ${scope} a,`
    + ` ${scope} label.grid-option`)]
  .filter((el) => el.getClientRects().length && !el.closest('[hidden]'))
  .map((el) => ({el, box: el.getBoundingClientRect()}))
  .filter(({box}) => box.height < least)
  .map(({el, box}) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.className}`
                      + ` "${el.textContent.trim().slice(0, 12)}" ${Math.round(box.height)}px`)"""

WIDER_THAN_SCREEN = """() => [...document.querySelectorAll('body *')]
  .filter((el) => el.getClientRects().length && !el.closest('[hidden]'))
  .filter((el) => { const b = el.getBoundingClientRect(); return b.right > innerWidth + 0.5
                    || b.left < -0.5; })
  .map((el) => `${el.tagName.toLowerCase()}.${el.className} ${Math.round(
    el.getBoundingClientRect().right)}`)"""


def test_on_a_phone_the_accounts_are_cards_without_overflow_and_big_enough_to_tap(page, made):
    """On a phone (390x844) the seven-column table ran off the screen's right edge (the actions
    out of reach but by scrolling sideways), and its buttons, selects and links were 20-26 px
    tall. Each account is now a card of labelled lines, the filters stacked, and every control
    at least 40 px tall, the account form's too."""
    page.set_viewport_size(PHONE)
    open_accounts(page)
    ready(page)
    open_worker_by_api(page, made, "欧阳长长长长长长长长名字很长很长的网格员同志")
    page.reload()
    ready(page)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(WIDER_THAN_SCREEN) == []
    assert page.evaluate(TOO_SMALL, ["body", TAP]) == []
    # A card: its lines stacked, each named (the table's heading is out of sight).
    first = row(page, "worker01")
    name, role = first.locator("td.name").bounding_box(), first.locator("td.role").bounding_box()
    assert role["y"] >= name["y"] + name["height"] - 1
    named = first.locator("td.role").evaluate("(td) => getComputedStyle(td, '::before').content")
    assert named == '"角色"'
    # Every line of a cell beside its name, a leader's second grid too.
    under_the_name = page.evaluate(
        """() => [...document.querySelectorAll('#accounts td[data-label] > *')]
          .filter((el) => el.getBoundingClientRect().left
                          < el.closest('td').getBoundingClientRect().left + 40)
          .map((el) => el.textContent)"""
    )
    assert under_the_name == []
    screenshot(page, "accounts-phone")

    first.locator("button[data-action=edit]").click()
    dialog = page.locator("#account-dialog")
    dialog.wait_for()
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate(TOO_SMALL, ["#account-dialog", TAP]) == []
    ticks = page.locator("#account-dialog input[type=checkbox]").evaluate_all(
        "cs => cs.filter((c) => c.getClientRects().length)"
        ".map((c) => Math.min(c.getBoundingClientRect().width, c.getBoundingClientRect().height))"
    )
    assert ticks and min(ticks) >= 20
    screenshot(page, "accounts-phone-edit")


def test_opening_an_account_refused_by_the_services_rules_is_said_in_chinese(page):
    """Beside the Chinese labels the server's own refusals stood in English: a username taken
    ("User 'worker01' already exists."), one with a space ("Must not contain spaces or
    invisible characters.") and a password long enough only by its spaces ("Too short (spaces
    do not count).")."""
    open_accounts(page, "admin01")
    ready(page)
    page.click("#open-account")
    form = page.locator("#account-form")

    def refused(field: str) -> str:
        slot = f".field-error[data-field={field}]"
        page.wait_for_function(f"() => document.querySelector('{slot}').textContent !== ''")
        return form.locator(slot).inner_text()

    form.locator("input[name=username]").fill("new worker")
    form.locator("input[name=password]").fill(DEMO_PASSWORD)
    form.locator("button[type=submit]").click()
    assert refused("username") == "不能含有空格或不可见字符。"
    form.locator("input[name=username]").fill(f"e2e_{uuid.uuid4().hex[:8]}")
    form.locator("input[name=password]").fill("ab  cd  ef")
    form.locator("button[type=submit]").click()
    assert refused("password") == "至少 8 个字符（空格不计）。"
    form.locator("input[name=username]").fill("worker01")
    form.locator("input[name=password]").fill(DEMO_PASSWORD)
    form.locator("button[type=submit]").click()
    assert refused("username") == "用户名 worker01 已被占用，请换一个。"
    form.locator("input[name=username]").fill("WORKER01")
    form.locator("button[type=submit]").click()
    page.wait_for_function(
        "() => document.querySelector('.field-error[data-field=username]').textContent"
        ".includes('WORKER01')"
    )
    assert refused("username") == "用户名 WORKER01 与已有的 worker01 视为同一个，请换一个。"
    assert page.locator("#account-dialog").is_visible()


@pytest.mark.parametrize("width, lang", [(1024, "zh"), (1024, "en"), (768, "zh"), (768, "en")])
def test_the_list_fits_the_office_screen_and_names_are_not_broken(page, made, width, lang):
    """At 1024 px in English the row's three buttons (Edit, Switch on again, Reset password,
    kept on one line) pushed the table past the screen: the page scrolled sideways. And the
    name column was squeezed until 欧阳明华 and 司马静怡 stood broken over two lines (欧阳明 /
    华), admin01（本人） too."""
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"/accounts?lang={lang}")
    sign_in(page, "admin01", DEMO_PASSWORD)
    ready(page)
    # Switched off, their rows carry the longest buttons (重新启用, Switch on again).
    for name in ("欧阳明华", "司马静怡"):
        switched_off_by_api(page, made, name)
    page.select_option("#filter-active", "")  # all states: the switched-off ones too
    page.select_option("#filter-grid", DEMO_GRID)
    page.wait_for_selector(f"#accounts tr.off[data-username='{made['users'][-1]}']")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    broken = page.evaluate(
        """() => {
          const line = (el) => parseFloat(getComputedStyle(el).lineHeight) || 20;
          const textHeight = (el) => {
            const range = document.createRange();
            range.selectNodeContents(el);
            return range.getBoundingClientRect().height;
          };
          return [...document.querySelectorAll('#accounts td.name, #accounts td.username')]
            .filter((el) => el.textContent.trim().length <= 12)
            .filter((el) => textHeight(el) > 1.5 * line(el))
            .map((el) => el.textContent.trim());
        }"""
    )
    assert broken == []
    screenshot(page, f"accounts-{width}-{lang}")


def test_an_account_opened_whose_answer_was_lost_is_said_opened_not_taken(page, made, e2e_engine):
    """The account was opened but the answer never came (the connection dropped): the form
    said only that the fetch failed, and 保存 pressed again was refused as 用户名已被占用 — the
    admin, told the name was someone else's, opened the same worker a second time under
    another. The page looks the username up among the community's accounts and says it opened."""
    from api.models import User

    open_accounts(page)
    ready(page)
    keys = lose_the_first_answer(page, "**/api/v1/users")
    form, username = fill_new_account(page, made, "断线新同事")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#account-dialog", state="hidden")
    assert username in page.inner_text("#status")
    assert "已开设" in page.inner_text("#status")
    assert len(keys) == 1
    with Session(e2e_engine) as session:
        assert session.scalar(select(User).where(User.username == username)) is not None


def test_an_account_pressed_again_after_a_lost_answer_the_list_unread_is_opened_once(
    page, made, e2e_engine
):
    """The answer lost and the list unreadable too (the connection still weak), the page
    cannot tell whether the account opened; 保存 pressed again goes with the same key and is
    answered with the first account, not refused as 用户名已被占用."""
    from sqlalchemy import func

    from api.models import User

    open_accounts(page)
    ready(page)
    keys = lose_the_first_answer(page, "**/api/v1/users")
    page.route(
        "**/api/v1/users?*",
        lambda route: (
            route.abort("connectionreset") if route.request.method == "GET" else route.continue_()
        ),
    )
    form, username = fill_new_account(page, made)
    form.locator("button[type=submit]").click()
    page.wait_for_function(
        "() => !document.querySelector('#account-form button[type=submit]').disabled"
    )
    page.unroute("**/api/v1/users?*")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#account-dialog", state="hidden")
    assert "已开设" in page.inner_text("#status")
    assert len(keys) == 2 and keys[0] == keys[1]
    with Session(e2e_engine) as session:
        assert session.scalar(select(func.count()).where(User.username == username)) == 1


def test_on_a_phone_who_is_signed_in_reads_on_one_line(page):
    """On a phone the toolbar's links squeezed the name and role signed in to a column of
    two characters a line (赵静 / · 网 / 格长)."""
    page.set_viewport_size(PHONE)
    open_accounts(page, "leader01")
    ready(page)
    lines = page.evaluate(
        """() => { const range = document.createRange();
          range.selectNodeContents(document.getElementById('who'));
          return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size; }"""
    )
    assert lines == 1
