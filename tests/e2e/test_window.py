"""The hall window's page (/window) in headless Chromium: the A-post worker registers a walk-in
resident's request for any grid of the community by clicking its place on the map."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_COMMUNITY as COMMUNITY
from tests.e2e.conftest import DEMO_GRID, lose_the_first_answer, screenshot, sign_in

OTHER_GRID = COMMUNITY + "002"  # worker02's grid; worker01 (at the window) holds DEMO_GRID
BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def window_day(e2e_engine):
    """Today's published roster of the demo community: worker01 at the window (A-post),
    worker02 out in their grid (B-post); the roster, shifts and tasks made here go after."""
    from api.models import Grid, Notification, Roster, Shift, Task, TaskEvent, User
    from api.services.weeks import current_week

    now = datetime.now(UTC)
    today = now.astimezone(BEIJING).date()
    with Session(e2e_engine, expire_on_commit=False) as session:
        users = {u.username: u for u in session.scalars(select(User))}
        other = session.scalar(select(Grid).where(Grid.code == OTHER_GRID))
        week = current_week(now)
        roster = session.scalar(
            select(Roster).where(Roster.community_code == COMMUNITY, Roster.week == week)
        )
        made_roster = roster is None
        if made_roster:
            roster = Roster(community_code=COMMUNITY, week=week, status="published")
            session.add(roster)
            session.flush()
        was = roster.status
        roster.status = "published"
        shifts = [
            Shift(roster_id=roster.id, date=today, post="A", worker_id=users["worker01"].id),
            Shift(
                roster_id=roster.id,
                date=today,
                post="B",
                worker_id=users["worker02"].id,
                grid_id=other.id,
            ),
        ]
        session.add_all(shifts)
        before = session.scalar(select(func.max(Task.id))) or 0
        session.commit()
        ids, roster_id = [s.id for s in shifts], roster.id
        info = {"worker02": users["worker02"], "other": other, "before": before}
    yield info
    with Session(e2e_engine) as session:
        made = select(Task.id).where(Task.id > before)
        session.execute(
            delete(Notification).where(Notification.data["task_id"].as_integer().in_(made))
        )
        session.execute(delete(TaskEvent).where(TaskEvent.task_id.in_(made)))
        session.execute(delete(Task).where(Task.id > before))
        session.execute(delete(Shift).where(Shift.id.in_(ids)))
        if made_roster:
            session.execute(delete(Roster).where(Roster.id == roster_id))
        else:
            session.get(Roster, roster_id).status = was
        session.commit()


def open_window(page, username: str):
    page.goto("/window")
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => window.gridworkWindowMap && window.gridworkWindowMap.loaded()")
    return page


def grid_pixel(page, code: str) -> dict:
    """A pixel of the map well inside the grid `code`, with the grid drawn there."""
    return page.evaluate(
        """(code) => {
          const map = window.gridworkWindowMap;
          const f = map.querySourceFeatures('grids').find(f => f.properties.code === code);
          const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0]
                                                       : f.geometry.coordinates[0][0];
          const lon = ring.reduce((s, c) => s + c[0], 0) / ring.length;
          const lat = ring.reduce((s, c) => s + c[1], 0) / ring.length;
          const p = map.project([lon, lat]);
          const hit = map.queryRenderedFeatures(p, {layers: ['grids-fill']})[0];
          return {x: p.x, y: p.y, code: hit && hit.properties.code};
        }""",
        code,
    )


def click_map(page, x: float, y: float) -> None:
    page.locator("#map canvas").click(position={"x": x, "y": y})


def fill_request(page, title: str) -> None:
    page.check("input[name=type][value=complaint]")
    page.fill("input[name=title]", title)
    page.fill("textarea[name=description]", "3号楼门口的路灯坏了一周")
    page.select_option("select[name=urgency]", "utility")
    page.fill("input[name=name]", "王秀英")
    page.fill("input[name=phone]", "13912345678")


def fail_the_next_list(page) -> None:
    """The next read of today's list fails too (the network still down): the page cannot tell
    from it whether a request whose answer was lost was registered."""
    failed = []

    def route_it(route):
        if route.request.method == "GET" and not failed:
            failed.append(route.request.url)
            return route.abort("connectionreset")
        return route.continue_()

    page.route("**/api/v1/tasks?*", route_it)


def tasks_titled(e2e_engine, title: str):
    from api.models import Task

    with Session(e2e_engine) as session:
        return list(session.scalars(select(Task).where(Task.title == title)))


def register_request(page, e2e_engine, title: str):
    """A request registered at a place in OTHER_GRID, titled `title`: its task as stored."""
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, title)
    page.click("#submit")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, title)
    return task


def open_task(page, task_id: int):
    """The page of a request listed today, opened from its number: its dialog, once drawn."""
    page.locator(f"#today-tasks tr[data-id='{task_id}'] button[data-open]").click()
    detail = page.locator(f"#task-detail[data-task='{task_id}']")
    detail.locator("h2").wait_for()
    return detail


def test_the_window_worker_registers_a_request_for_another_grid_of_the_community(
    page, e2e_engine, window_day
):
    open_window(page, "worker01")
    assert "您今天在窗口岗（A岗）" in page.inner_text("#post-notice")
    # Every grid of the community is drawn, named, though worker01 holds only the first.
    drawn = page.evaluate(
        "() => [...new Set(window.gridworkWindowMap.querySourceFeatures('grids')"
        ".map(f => f.properties.code))].sort()"
    )
    assert DEMO_GRID in drawn and OTHER_GRID in drawn
    assert all(code.startswith(COMMUNITY) for code in drawn)
    assert page.locator(".grid-label").count() == len(drawn)
    point = grid_pixel(page, OTHER_GRID)
    assert point["code"] == OTHER_GRID
    click_map(page, point["x"], point["y"])
    other = window_day["other"]
    assert page.inner_text("#place").startswith(f"{other.name}（{OTHER_GRID}）")
    assert page.is_hidden("#household-choice")  # another grid's households are not theirs
    fill_request(page, "路灯不亮（窗口登记）")
    page.select_option("select[name=list]", "problem")  # the office's problem list
    page.click("#submit")
    created = page.locator("#created")
    created.wait_for()
    [task] = tasks_titled(e2e_engine, "路灯不亮（窗口登记）")
    assert task.list_kind == "problem"
    assert (task.source, task.type, task.urgency, task.status) == (
        "window",
        "complaint",
        "utility",
        "dispatched",
    )
    assert task.grid_id == other.id
    assert task.assignee_id == window_day["worker02"].id  # out in that grid today
    assert task.complainant == {"name": "王秀英", "phone": "13912345678"}
    # The task as dispatch made it: its number, grid, assignee and deadline in Beijing time.
    assert created.get_attribute("data-id") == str(task.id)
    assert f"#{task.id}" in created.inner_text()
    assert created.locator(".grid").inner_text() == f"{other.name}（{OTHER_GRID}）"
    assert created.locator(".assignee").inner_text() == window_day["worker02"].display_name
    assert created.locator(".due").inner_text() == task.due_at.astimezone(BEIJING).strftime(
        "%Y/%m/%d %H:%M"
    )
    # The form is cleared for the next resident.
    assert page.input_value("input[name=title]") == ""
    assert page.input_value("input[name=phone]") == ""
    assert page.input_value("select[name=list]") == ""  # on no list unless told
    assert page.inner_text("#place") == "请在地图上点选居民诉求的位置"
    # Listed under today's requests, to answer the resident who comes back.
    row = page.locator(f"#today-tasks tr[data-id='{task.id}']")
    row.wait_for()
    assert row.locator(".status").inner_text() == "已派单"
    assert row.locator(".assignee").inner_text() == window_day["worker02"].display_name
    screenshot(page, "window-created")
    # Its number opens its page: who holds it and what was done so far, for the resident who
    # comes back; the window worker takes no step of another's task.
    row.locator("button[data-open]").click()
    detail = page.locator(f"#task-detail[data-task='{task.id}']")
    detail.locator("h2").wait_for()
    assert detail.locator("h2").inner_text() == "路灯不亮（窗口登记）"
    assert window_day["worker02"].display_name in detail.inner_text()
    assert detail.locator("a.phone").get_attribute("href") == "tel:13912345678"
    assert detail.locator("form.task-steps").count() == 0


def test_a_double_click_on_register_makes_one_task(page, e2e_engine, window_day):
    open_window(page, "worker01")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "双击只登记一次")
    page.dblclick("#submit")
    page.locator("#created").wait_for()
    page.wait_for_timeout(500)
    assert len(tasks_titled(e2e_engine, "双击只登记一次")) == 1


def test_a_retry_after_a_lost_answer_makes_no_second_task(page, e2e_engine, window_day):
    """The server made the task but its answer never arrived (nor today's list, read again):
    sent again, the same Idempotency-Key gets the first task back."""
    open_window(page, "worker01")
    keys = lose_the_first_answer(page, "**/api/v1/tasks")
    fail_the_next_list(page)
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "答复丢失后重试")
    page.click("#submit")
    page.wait_for_function(
        "() => document.querySelector('#form-error').textContent.startsWith('连接中断')"
    )
    assert page.is_hidden("#created")
    page.click("#submit")
    page.locator("#created").wait_for()
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    [task] = tasks_titled(e2e_engine, "答复丢失后重试")
    assert page.locator("#created").get_attribute("data-id") == str(task.id)


def test_a_worker_out_on_the_b_post_is_told_they_are_not_at_the_window(
    page, e2e_engine, window_day
):
    open_window(page, "worker02")
    assert page.inner_text("#post-notice") == "今天您不在窗口岗（A岗），只能为自己的网格登记任务。"
    drawn = page.evaluate(
        "() => [...new Set(window.gridworkWindowMap.querySourceFeatures('grids')"
        ".map(f => f.properties.code))]"
    )
    assert drawn == [OTHER_GRID]  # their own grid only
    # worker01's grid is not drawn for them: a click there is refused, saying why.
    page.evaluate(
        "(b) => window.gridworkWindowMap.fitBounds(b, {animate: false})",
        [[116.390, 39.930], [116.4125, 39.940]],
    )
    page.wait_for_function("() => window.gridworkWindowMap.loaded()")
    x, y = page.evaluate(
        "() => { const p = window.gridworkWindowMap.project([116.392, 39.938]);"
        " return [p.x, p.y]; }"
    )
    click_map(page, x, y)
    assert "今天您不在窗口岗（A岗）" in page.inner_text(".field-error[data-field=location]")
    fill_request(page, "B岗不能为别的网格登记")
    page.click("#submit")
    assert page.inner_text(".field-error[data-field=location]") == "请在地图上点选位置"
    assert tasks_titled(e2e_engine, "B岗不能为别的网格登记") == []
    # Their own grid they register for, with its households near the place offered.
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    assert page.inner_text(".field-error[data-field=location]") == ""


def test_a_click_outside_every_grid_is_refused_in_chinese(page, e2e_engine, window_day):
    open_window(page, "worker01")
    click_map(page, 5, 5)  # the corner: beyond every grid the map was fitted to
    assert (
        page.inner_text(".field-error[data-field=location]")
        == "此处不在本社区任何网格内，请点选网格范围内的位置。"
    )
    assert page.inner_text("#place") == "请在地图上点选居民诉求的位置"
    fill_request(page, "网格外的地点")
    page.click("#submit")
    assert page.inner_text(".field-error[data-field=location]") == "请在地图上点选位置"
    assert tasks_titled(e2e_engine, "网格外的地点") == []


def test_the_server_s_refusal_is_said_in_chinese_with_its_detail(page, e2e_engine, window_day):
    """The roster changed while the page was open: the worker is no longer at the window."""
    from api.models import Shift, User

    open_window(page, "worker01")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "窗口岗已换人")
    with Session(e2e_engine) as session:
        worker01 = select(User.id).where(User.username == "worker01")
        session.execute(delete(Shift).where(Shift.post == "A", Shift.worker_id.in_(worker01)))
        session.commit()
    page.click("#submit")
    error = page.locator("#form-error")
    error.wait_for()
    why = error.locator(".why").inner_text()
    assert why == "今天您不在窗口岗（A岗），只能为自己的网格登记任务。"
    assert OTHER_GRID in error.locator(".detail").inner_text()  # the server's own words
    assert tasks_titled(e2e_engine, "窗口岗已换人") == []


def test_the_window_page_fits_a_tablet(browser, live_server, window_day):
    context = browser.new_context(
        base_url=live_server, viewport={"width": 768, "height": 1024}, has_touch=True
    )
    try:
        page = context.new_page()
        open_window(page, "worker01")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 768
        box = page.locator("#map").bounding_box()
        assert box["width"] > 600 and box["height"] >= 300
        submit = page.locator("#submit").bounding_box()
        assert submit["height"] >= 40  # a finger, not a mouse
        screenshot(page, "window-tablet")
    finally:
        context.close()


def test_the_app_links_the_window_page_for_whoever_is_at_the_window(page, window_day):
    page.goto("/app")
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    link = page.locator("#post a#window-link")
    link.wait_for()
    assert link.inner_text() == "窗口受理" and link.get_attribute("href") == "/window"


def test_the_community_admin_registers_for_every_grid_without_a_window_post(page, window_day):
    open_window(page, "admin01")
    assert page.inner_text("#post-notice") == "社区管理员可为本社区任何网格登记居民诉求。"
    point = grid_pixel(page, OTHER_GRID)
    assert point["code"] == OTHER_GRID
    click_map(page, point["x"], point["y"])
    assert page.inner_text(".field-error[data-field=location]") == ""


def test_the_window_page_speaks_english_too(page, window_day):
    page.goto("/window?lang=en")
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#post-notice").startswith("You are at the window (A-post) today")
    assert page.inner_text("#submit") == "Register and dispatch"
    assert page.inner_text(".today h2") == "Today at the window"
    # Every labelled element found its text: none shows its bare key.
    bare = page.evaluate(
        "() => [...document.querySelectorAll('[data-t]')]"
        ".filter(el => el.textContent === el.dataset.t).map(el => el.dataset.t)"
    )
    assert bare == []


def test_a_place_the_server_finds_in_no_grid_is_refused_in_chinese(page, e2e_engine, window_day):
    """The grid was retired while the page was open: the server's 422, said in Chinese."""
    from api.models import Grid

    open_window(page, "worker01")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "网格已撤销")
    with Session(e2e_engine) as session:
        session.get(Grid, window_day["other"].id).retired_at = datetime.now(UTC)
        session.commit()
    try:
        page.click("#submit")
        error = page.locator("#form-error")
        error.wait_for()
        assert error.locator(".why").inner_text() == "所选位置不在任何网格内，任务未登记。"
        assert "outside every grid" in error.locator(".detail").inner_text()
        assert tasks_titled(e2e_engine, "网格已撤销") == []
    finally:
        with Session(e2e_engine) as session:
            session.get(Grid, window_day["other"].id).retired_at = None
            session.commit()


def urgency_labels(page) -> list[str]:
    return page.locator("select[name=urgency] option").all_inner_texts()


def test_each_urgency_says_the_deadline_the_community_gives_for_the_type_chosen(
    page, e2e_engine, window_day, community_deadlines
):
    """The labels said Beijing's practice (一般（7天）) whatever the community had set; now its
    own, and a request type's own where it has one."""
    open_window(page, "worker01")
    page.wait_for_selector(f"#task-form[data-deadlines='{COMMUNITY}']")
    assert urgency_labels(page) == [
        "危及生命财产（1.5小时内反馈）",
        "水电气热（24小时）",
        "一般（3天）",
        "疑难复杂（15天）",
    ]
    page.check("input[name=type][value=complaint]")
    assert urgency_labels(page)[2] == "一般（2天）"
    page.check("input[name=type][value=help]")
    assert urgency_labels(page)[2] == "一般（3天）"


def test_the_deadlines_speak_english_too(page, window_day, community_deadlines):
    page.goto("/window?lang=en")
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector(f"#task-form[data-deadlines='{COMMUNITY}']")
    assert urgency_labels(page) == [
        "Danger to life or property (1.5 h)",
        "Water, power, gas, heating (24 h)",
        "General (3 days)",
        "Complex (15 days)",
    ]


def test_a_refused_request_hides_the_last_one_registered(page, e2e_engine, window_day):
    """The box of the request registered before stayed beside the refusal of the next one:
    "已登记任务 #N" over a form that registered nothing, for the worker to read out."""
    from api.models import Shift, User

    open_window(page, "worker01")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "第一位居民的诉求")
    page.click("#submit")
    page.locator("#created").wait_for()
    click_map(page, point["x"], point["y"])
    fill_request(page, "第二位居民的诉求")
    with Session(e2e_engine) as session:
        worker01 = select(User.id).where(User.username == "worker01")
        session.execute(delete(Shift).where(Shift.post == "A", Shift.worker_id.in_(worker01)))
        session.commit()
    page.click("#submit")
    page.locator("#form-error").wait_for()
    assert page.is_hidden("#created")
    assert tasks_titled(e2e_engine, "第二位居民的诉求") == []


def test_today_s_requests_name_their_grids_though_listed_before_the_map_came(
    page, e2e_engine, window_day
):
    """Today's list is read beside the grids: answered first, its rows named a grid by its
    15-digit code alone, and kept it until the next request was registered."""
    open_window(page, "worker01")
    task = register_request(page, e2e_engine, "先列出后有地图")
    held = []
    page.route("**/api/v1/grids/window", lambda route: held.append(route))
    page.reload()
    row = page.locator(f"#today-tasks tr[data-id='{task.id}']")
    row.wait_for()
    assert held  # the grids are still on their way
    held[0].continue_()
    page.wait_for_selector("body[data-ready='1']")
    other = window_day["other"]
    assert row.locator(".grid").inner_text() == f"{other.name}（{OTHER_GRID}）"


def test_a_request_still_being_handled_lists_what_was_registered(page, e2e_engine, window_day):
    """The answer lost, the retry found the first still being handled (409): the page said to
    look at today's requests, which it never read again: the task registered was not there.
    (The list read just after the loss fails too: the page cannot tell from it.)"""
    posts: list[str] = []

    def first_lost_then_pending(route):
        if route.request.method != "POST":
            return route.continue_()
        posts.append(route.request.headers.get("idempotency-key"))
        if len(posts) == 1:
            route.fetch()  # the server opens the task...
            return route.abort("connectionreset")  # ...and its answer is lost
        return route.fulfill(
            status=409,
            content_type="application/problem+json",
            json={
                "type": "https://gridwork.example/problems/conflict",
                "title": "Conflict",
                "status": 409,
                "detail": "A request with this Idempotency-Key was carried out but its answer "
                "is not (yet) kept; look the record up instead of sending it again.",
                "idempotency_key": "carried_out",
            },
        )

    open_window(page, "worker01")
    page.route("**/api/v1/tasks", first_lost_then_pending)
    fail_the_next_list(page)
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "答复未存好")
    page.click("#submit")
    page.wait_for_function(
        "() => document.querySelector('#form-error').textContent.startsWith('连接中断')"
    )
    page.click("#submit")
    page.wait_for_function(
        "() => document.querySelector('#form-error').textContent.startsWith('上次提交仍在处理中')"
    )
    [task] = tasks_titled(e2e_engine, "答复未存好")
    page.locator(f"#today-tasks tr[data-id='{task.id}']").wait_for()


def test_in_english_the_registered_request_is_written_with_plain_punctuation(
    page, e2e_engine, window_day
):
    """The English page wrote "Task #12 registered：..." and "Grid 2（110101001001002）", with
    the Chinese colon and parentheses."""
    page.goto("/window?lang=en")
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => window.gridworkWindowMap && window.gridworkWindowMap.loaded()")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    other = window_day["other"]
    assert page.inner_text("#place").startswith(f"{other.name} ({OTHER_GRID})")
    fill_request(page, "Streetlight out")
    page.click("#submit")
    created = page.locator("#created")
    created.wait_for()
    [task] = tasks_titled(e2e_engine, "Streetlight out")
    assert created.locator("h3").inner_text() == f"Task #{task.id} registered: Streetlight out"
    assert created.locator(".grid").inner_text() == f"{other.name} ({OTHER_GRID})"
    row = page.locator(f"#today-tasks tr[data-id='{task.id}']")
    row.wait_for()
    assert row.locator(".grid").inner_text() == f"{other.name} ({OTHER_GRID})"


def test_a_lost_answer_is_not_said_as_nothing_registered(page, e2e_engine, window_day):
    """Online, the answer lost: the page said 网络未连接，任务未登记 of a task the server had
    registered; offline, nothing was sent, and that is said. (Today's list, read again, fails
    too here: found there, the task is said registered, as the next test but one shows.)"""

    def lose_the_answer(route):
        if route.request.method != "POST":
            return route.continue_()
        route.fetch()
        return route.abort("connectionreset")

    open_window(page, "worker01")
    page.route("**/api/v1/tasks", lose_the_answer)
    fail_the_next_list(page)
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "答复丢失")
    page.click("#submit")
    why = page.locator("#form-error .why")
    why.wait_for()
    assert why.inner_text() == (
        "连接中断，不能确定是否已登记：请查看“今日窗口受理”，"
        "没有列出的再点“登记并派单”即可（不会重复登记）。"
    )
    assert len(tasks_titled(e2e_engine, "答复丢失")) == 1
    assert page.inner_text("#today-status").startswith("无法读取今日受理")


def test_offline_nothing_registered_is_said(context, page, e2e_engine, window_day):
    open_window(page, "worker01")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "离线登记")
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    page.click("#submit")
    why = page.locator("#form-error .why")
    why.wait_for()
    assert why.inner_text().startswith("网络未连接，任务未登记。")
    context.set_offline(False)
    assert tasks_titled(e2e_engine, "离线登记") == []


def test_an_edit_after_a_lost_answer_does_not_register_the_request_twice(
    page, e2e_engine, window_day
):
    """The answer was lost, the task registered; the worker corrected a word and pressed again.
    A new key registered the request a second time; the first key goes with the edit, and the
    server's answer (the key was used with another request) is said: registered once. (Today's
    list, read again, fails too: the page cannot tell from it the first was registered.)"""
    open_window(page, "worker01")
    keys = lose_the_first_answer(page, "**/api/v1/tasks")
    fail_the_next_list(page)
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "答复丢失后修改")
    page.click("#submit")
    page.wait_for_function(
        "() => document.querySelector('#form-error').textContent.startsWith('连接中断')"
    )
    page.fill("input[name=title]", "答复丢失后修改了一个字")
    page.click("#submit")
    page.wait_for_function(
        "() => document.querySelector('#form-error').textContent.startsWith('上次提交已经登记')"
    )
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert len(tasks_titled(e2e_engine, "答复丢失后修改")) == 1
    assert tasks_titled(e2e_engine, "答复丢失后修改了一个字") == []
    # The form is cleared for the next resident: pressed again, it would register the edit.
    assert page.input_value("input[name=title]") == ""
    assert page.inner_text("#place") == "请在地图上点选居民诉求的位置"


def test_todays_list_holds_the_window_requests_not_the_tasks_opened_elsewhere(
    page, e2e_engine, window_day
):
    """A task worker01 opened on their rounds today (proactive, in the app) is not a walk-in
    request: 今日窗口受理 listed it among them."""
    from api.models import Grid, User
    from api.services import tasks as task_service

    with Session(e2e_engine) as session:
        me = session.scalar(select(User).where(User.username == "worker01"))
        grid = session.scalar(select(Grid).where(Grid.code == DEMO_GRID))
        lon, lat = session.execute(
            select(
                func.ST_X(func.ST_PointOnSurface(Grid.boundary)),
                func.ST_Y(func.ST_PointOnSurface(Grid.boundary)),
            ).where(Grid.id == grid.id)
        ).one()
        rounds = task_service.create_task(
            session,
            None,
            {
                "source": "proactive",
                "type": "report",
                "title": "巡查发现井盖松动",
                "urgency": "general",
                "location": {"lon": lon, "lat": lat},
            },
            actor_id=me.id,
            now=datetime.now(UTC),
        )
        session.commit()
        rounds_id = rounds.id
    open_window(page, "worker01")
    task = register_request(page, e2e_engine, "窗口来访登记")
    page.locator(f"#today-tasks tr[data-id='{task.id}']").wait_for()
    assert page.locator(f"#today-tasks tr[data-id='{rounds_id}']").count() == 0


def test_a_step_taken_on_a_request_s_page_shows_in_today_s_list(page, e2e_engine, window_day):
    """The community admin at the window leads every grid: from a request's page they may
    escalate it on its assignee's behalf. Today's list kept the state of before (已派单) until
    the page was opened again: it is read again after the step."""
    open_window(page, "admin01")
    task = register_request(page, e2e_engine, "路灯不亮（窗口上报）")
    row = page.locator(f"#today-tasks tr[data-id='{task.id}']")
    row.wait_for()
    row.locator("button[data-open]").click()
    detail = page.locator(f"#task-detail[data-task='{task.id}']")
    detail.locator("button[data-step=escalate]").click()
    page.wait_for_function(
        "() => document.querySelector('#task-detail .task-status')?.textContent === '已上报。'"
    )
    page.wait_for_function(
        f"""() => document.querySelector("#today-tasks tr[data-id='{task.id}'] .status")
                  ?.textContent === '已升级'"""
    )


def test_from_the_keyboard_the_next_resident_starts_at_the_first_field_with_the_number_in_view(
    browser, live_server, e2e_engine, window_day
):
    """At a PC of 1280x800, a request typed and sent with Enter: the focus stayed on the
    title typed last (the worker clicked back to the start for the next resident) and the box
    naming the task's number was below the fold, under the form and map."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
    try:
        page = open_window(context.new_page(), "worker01")
        point = grid_pixel(page, OTHER_GRID)
        click_map(page, point["x"], point["y"])
        page.focus("input[name=type][value=help]")
        page.keyboard.press("ArrowRight")  # 投诉
        page.keyboard.press("Tab")
        page.keyboard.type("楼道灯坏了（键盘登记）")
        page.keyboard.press("Enter")
        created = page.locator("#created")
        created.wait_for()
        [task] = tasks_titled(e2e_engine, "楼道灯坏了（键盘登记）")
        assert task.type == "complaint"
        assert page.input_value("input[name=title]") == ""
        # Back at the start: the request type, as it is for the first resident.
        assert page.evaluate(
            "() => document.activeElement === document.querySelector('input[name=type]:checked')"
        )
        assert (
            page.evaluate("() => document.querySelector('input[name=type]:checked').value")
            == "help"
        )
        box = created.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 800, box
        assert f"#{task.id}" in created.inner_text()
        screenshot(page, "window-keyboard-created")
    finally:
        context.close()


def test_the_server_s_field_errors_are_said_in_chinese_under_their_fields(
    page, e2e_engine, window_day
):
    """A title and a phone pasted from a chat message with a tab in them: under the title the
    server's English was shown, under the phone its raw JSON ({"phone":{"value":[...]}})."""
    open_window(page, "worker01")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    page.fill("input[name=title]", "路灯\t不亮")
    page.fill("input[name=phone]", "139\t12345678")
    page.click("#submit")
    page.locator("#form-error .why").wait_for()
    title = page.inner_text(".field-error[data-field=title]")
    contact = page.inner_text(".field-error[data-field=complainant]")
    assert title == "标题只能是一行文字，不能含制表符等控制字符。"
    assert contact == "姓名、电话只能是一行文字，不能含制表符等控制字符。"
    assert tasks_titled(e2e_engine, "路灯\t不亮") == []
    # In English, English.
    page.goto("/window?lang=en")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => window.gridworkWindowMap && window.gridworkWindowMap.loaded()")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    page.fill("input[name=title]", "Lamp\tout")
    page.click("#submit")
    page.locator("#form-error .why").wait_for()
    assert page.inner_text(".field-error[data-field=title]") == (
        "The title must be one line, without tabs or other control characters."
    )


def test_the_place_is_chosen_from_the_keyboard_too(page, e2e_engine, window_day):
    """The place could be given only by a mouse click on the map: a worker typing at the
    window had to reach for the mouse for every request. Tabbed to the map, the arrow keys
    move it and Enter places the request at its centre, the focus then on the submit button."""
    open_window(page, "worker01")
    page.focus("input[name=type][value=help]")
    page.keyboard.press("Tab")
    page.keyboard.type("垃圾桶满了（全键盘）")
    # details, urgency, list, settled here, name, phone, the address to look up and its
    # button, submit, clear: the map
    for _ in range(11):
        page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.classList.contains('maplibregl-canvas')")
    assert page.is_visible("#map.keyboard .crosshair")  # where Enter will place it
    # The worker moved the map with the arrow keys until the centre stood in the grid.
    page.evaluate(
        """(code) => {
          const map = window.gridworkWindowMap;
          const f = map.querySourceFeatures('grids').find(f => f.properties.code === code);
          const ring = f.geometry.coordinates[0];
          const lon = ring.reduce((s, c) => s + c[0], 0) / ring.length;
          const lat = ring.reduce((s, c) => s + c[1], 0) / ring.length;
          map.jumpTo({center: [lon, lat]});
        }""",
        OTHER_GRID,
    )
    page.keyboard.press("Enter")
    assert page.inner_text("#place").startswith(f"{window_day['other'].name}（{OTHER_GRID}）")
    assert page.evaluate("() => document.activeElement.id") == "submit"
    screenshot(page, "window-keyboard-place")
    page.keyboard.press("Enter")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, "垃圾桶满了（全键盘）")
    assert task.grid_id == window_day["other"].id
    assert "Enter" in page.inner_text(".map-hint")


def test_enter_with_a_field_missing_takes_the_focus_to_it(page, e2e_engine, window_day):
    """Enter pressed with no title, or no place: the message showed beside the field, but the
    focus stayed where it was; the worker at the keyboard had to find the field."""
    open_window(page, "worker01")
    page.focus("input[name=title]")
    page.keyboard.press("Enter")
    assert page.inner_text(".field-error[data-field=title]") == "请填写标题"
    assert page.evaluate("() => document.activeElement.name") == "title"
    page.keyboard.type("没有地点")
    page.keyboard.press("Enter")
    assert page.inner_text(".field-error[data-field=location]") == "请在地图上点选位置"
    assert page.evaluate("() => document.activeElement.classList.contains('maplibregl-canvas')")
    assert page.is_visible("#map.keyboard .crosshair")
    assert tasks_titled(e2e_engine, "没有地点") == []


def test_a_long_unbroken_title_does_not_push_today_s_list_off_the_screen(
    browser, live_server, e2e_engine, window_day
):
    """A title pasted as one long word (a link from a residents' chat group) widened its
    column: at 1024x768 the status, assignee and deadline of every row of today's list lay off
    to the right, behind a sideways scroll."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1024, "height": 768})
    try:
        page = open_window(context.new_page(), "worker01")
        title = "https://example.com/" + "averylongpathwithoutanyspaces" * 5
        point = grid_pixel(page, OTHER_GRID)
        click_map(page, point["x"], point["y"])
        page.fill("input[name=title]", title)
        page.click("#submit")
        page.locator("#created").wait_for()
        [task] = tasks_titled(e2e_engine, title)
        row = page.locator(f"#today-tasks tr[data-id='{task.id}']")
        row.wait_for()
        today = page.evaluate(
            "() => { const s = document.querySelector('.today');"
            " return [s.scrollWidth, s.clientWidth]; }"
        )
        assert today[0] <= today[1], today
        due = row.locator(".due").bounding_box()
        assert due["x"] + due["width"] <= 1024
        # The confirmation box too keeps within the page.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 1024
        screenshot(page, "window-long-title")
    finally:
        context.close()


def test_a_lost_answer_found_in_today_s_list_is_said_registered_and_the_next_resident_goes_on(
    page, e2e_engine, window_day
):
    """The answer lost, today's list read again showed the task: the page still held its key,
    so the next resident's request typed into the form went with it, was refused as an edit
    (上次提交已经登记……这次修改没有另行登记) and the form wiped: that resident's request was
    never registered. The list now answers for the server: registered, with its number."""
    open_window(page, "worker01")
    keys = lose_the_first_answer(page, "**/api/v1/tasks")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "答复丢失但已列出")
    page.click("#submit")
    page.wait_for_function("() => document.querySelector('#today-tasks tbody tr')")
    [task] = tasks_titled(e2e_engine, "答复丢失但已列出")
    created = page.locator(f"#created[data-id='{task.id}']")
    created.wait_for()
    assert f"#{task.id}" in created.inner_text()
    assert page.is_hidden("#form-error")
    assert page.input_value("input[name=title]") == ""
    # The next resident.
    click_map(page, point["x"], point["y"])
    page.fill("input[name=title]", "下一位居民的诉求")
    page.click("#submit")
    page.locator("#created h3", has_text="下一位居民的诉求").wait_for()
    assert len(tasks_titled(e2e_engine, "下一位居民的诉求")) == 1
    assert len(keys) == 2 and keys[0] != keys[1]


def test_a_gateways_error_after_the_server_registered_it_is_not_said_unregistered(
    page, e2e_engine, window_day
):
    """The server registered the request but the proxy in front of it answered 502 (its wait
    for the answer ran out): the page said 未登记 (not registered), and the worker registered
    it again by hand as a new request. A gateway's error page (no problem document of ours)
    says nothing of the request: as a lost answer, today's list tells, and it was registered."""
    open_window(page, "worker01")
    posts = []

    def gateway(route):
        if route.request.method != "POST":
            return route.continue_()
        posts.append(route.request.headers.get("idempotency-key"))
        if len(posts) > 1:
            return route.continue_()
        route.fetch()  # the server carries it out...
        route.fulfill(status=502, content_type="text/html", body="<h1>502 Bad Gateway</h1>")

    page.route("**/api/v1/tasks", gateway)
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "网关超时但已登记")
    page.click("#submit")
    page.locator("#created h3", has_text="网关超时但已登记").wait_for()
    [task] = tasks_titled(e2e_engine, "网关超时但已登记")
    assert page.get_attribute("#created", "data-id") == str(task.id)
    assert page.is_hidden("#form-error")
    assert len(posts) == 1


def test_our_own_server_error_is_said_not_registered(page, e2e_engine, window_day):
    """A 5xx problem document of the API's own: its transaction was rolled back, nothing
    registered; said so, and the form kept to send again."""
    open_window(page, "worker01")
    problem = '{"type": "about:blank", "title": "Internal Server Error", "status": 500}'
    page.route(
        "**/api/v1/tasks",
        lambda route: (
            route.fulfill(status=500, content_type="application/problem+json", body=problem)
            if route.request.method == "POST"
            else route.continue_()
        ),
    )
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "服务器出错未登记")
    page.click("#submit")
    page.wait_for_function("() => document.querySelector('#form-error').textContent")
    assert page.inner_text("#form-error").startswith("任务未能登记")
    assert page.input_value("input[name=title]") == "服务器出错未登记"


def test_an_empty_day_says_so_without_an_empty_table(page, e2e_engine, window_day):
    """No request yet today: under 今天还没有登记的诉求。 stood a table of headings and no rows."""
    open_window(page, "worker01")
    page.wait_for_function("() => document.querySelector('#today-status').textContent")
    assert page.inner_text("#today-status") == "今天还没有登记的诉求。"
    assert page.is_hidden("#today-tasks")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    page.fill("input[name=title]", "第一位居民")
    page.click("#submit")
    page.locator("#today-tasks tbody tr").wait_for()
    assert page.is_visible("#today-tasks")
    assert page.inner_text("#today-status") == ""


def test_a_session_ended_mid_form_keeps_the_request_typed_for_after_signing_in(
    page, live_app, e2e_engine, window_day
):
    """The worker's sign-in ended while a resident stood at the window (the password changed,
    signed out everywhere from the phone): 登记并派单 reloaded the page to a bare sign-in form,
    and the request typed, its place and the resident's phone were gone, with no word of why.
    The form now says the sign-in ended and the request is kept; signed in again, it is there
    to register, once."""
    from api.services import sessions
    from tests.e2e.conftest import claims, expire_access_token

    open_window(page, "worker01")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "登录失效时填写的诉求")
    sid = claims(expire_access_token(live_app, page))["sid"]
    with Session(e2e_engine) as session:
        sessions.revoke(session, sid, "e2e", datetime.now(UTC))
        session.commit()
    page.click("#submit")  # 401, the refresh refused: the session is over
    page.wait_for_selector("#signin:not([hidden])")
    assert page.inner_text("#signin-error") == (
        "登录已失效，请重新登录。正在填写的诉求已保留，登录后可继续登记。"
    )
    assert tasks_titled(e2e_engine, "登录失效时填写的诉求") == []
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector("#main:not([hidden])")
    assert page.is_hidden("#signin")
    assert page.input_value("input[name=title]") == "登录失效时填写的诉求"
    assert page.input_value("input[name=phone]") == "13912345678"
    assert page.inner_text("#place").startswith(f"{window_day['other'].name}（{OTHER_GRID}）")
    page.click("#submit")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, "登录失效时填写的诉求")
    assert task.complainant == {"name": "王秀英", "phone": "13912345678"}
    page.locator(f"#today-tasks tr[data-id='{task.id}']").wait_for()


def test_another_user_signing_in_after_the_session_ended_gets_the_page_afresh(
    page, e2e_engine, window_day
):
    """The request kept is the signed-out worker's: a colleague who signs in at the window
    gets the page for their own grids and posts, the form empty."""
    open_window(page, "worker01")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    fill_request(page, "换人登录")
    page.evaluate(
        """() => { localStorage.clear();
                   dispatchEvent(new Event('gridwork:session-ended')); }"""
    )
    page.wait_for_selector("#signin:not([hidden])")
    with page.expect_navigation():
        sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#post-notice") == "社区管理员可为本社区任何网格登记居民诉求。"
    assert page.input_value("input[name=title]") == ""
    assert page.inner_text("#signin-error") == ""


def test_a_request_s_history_says_why_it_went_to_its_assignee_in_chinese(
    page, e2e_engine, window_day
):
    """The resident came back asking who has their request and why: under 派单 the request's
    page said the server's English ("grid worker on duty") on the Chinese page."""
    open_window(page, "worker01")
    task = register_request(page, e2e_engine, "派单依据")
    row = page.locator(f"#today-tasks tr[data-id='{task.id}']")
    row.wait_for()
    row.locator("button[data-open]").click()
    dispatched = page.locator("#task-detail ol.events li[data-action=dispatch]")
    dispatched.wait_for()
    assert dispatched.locator(".event-note").inner_text() == "派给本网格当班的网格员"


def test_a_request_of_an_earlier_day_is_found_for_the_resident_who_comes_back(
    page, e2e_engine, window_day
):
    """A resident came back three days after registering a complaint, asking how it stands: the
    page listed today's requests only, and the window worker saw those they registered for
    another grid nowhere else. An earlier day is chosen above the list; registering the next
    resident's request shows today's again, with it."""
    from datetime import timedelta

    from api.models import Grid, User
    from api.services import tasks as task_service

    then = datetime.now(UTC) - timedelta(days=3)
    with Session(e2e_engine) as session:
        me = session.scalar(select(User).where(User.username == "worker01"))
        lon, lat = session.execute(
            select(
                func.ST_X(func.ST_PointOnSurface(Grid.boundary)),
                func.ST_Y(func.ST_PointOnSurface(Grid.boundary)),
            ).where(Grid.code == OTHER_GRID)
        ).one()
        earlier = task_service.create_task(
            session,
            None,
            {
                "source": "window",
                "type": "complaint",
                "title": "三天前登记的投诉",
                "urgency": "general",
                "location": {"lon": lon, "lat": lat},
            },
            actor_id=me.id,
            now=then,
        )
        session.commit()
        earlier_id = earlier.id
    open_window(page, "worker01")
    page.wait_for_function("() => document.querySelector('#today-status').textContent")
    assert page.locator(f"#today-tasks tr[data-id='{earlier_id}']").count() == 0
    today = datetime.now(BEIJING).date()
    assert page.input_value("#day") == today.isoformat()
    page.fill("#day", then.astimezone(BEIJING).date().isoformat())
    row = page.locator(f"#today-tasks tr[data-id='{earlier_id}']")
    row.wait_for()
    assert row.locator(".title").inner_text() == "三天前登记的投诉"
    row.locator("button[data-open]").click()
    page.locator(f"#task-detail[data-task='{earlier_id}'] h2").wait_for()
    page.keyboard.press("Escape")
    point = grid_pixel(page, OTHER_GRID)
    click_map(page, point["x"], point["y"])
    page.fill("input[name=title]", "今天的下一位居民")
    page.click("#submit")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, "今天的下一位居民")
    page.locator(f"#today-tasks tr[data-id='{task.id}']").wait_for()
    assert page.input_value("#day") == today.isoformat()
    assert page.locator(f"#today-tasks tr[data-id='{earlier_id}']").count() == 0


def test_the_list_says_a_request_s_status_as_its_page_read_it(page, e2e_engine, window_day):
    """worker02 accepted the request out in their grid; the resident came back and the window
    worker opened it: its page said 已接单, and, closed, the list beside it still said 已派单
    (read only when the worker registered something). Closed, the list is read again, the
    keyboard's place kept on the request's number."""
    open_window(page, "worker01")
    task = register_request(page, e2e_engine, "已被接单的诉求")
    row = page.locator(f"#today-tasks tr[data-id='{task.id}']")
    row.wait_for()
    assert row.locator(".status").inner_text() == "已派单"
    token = page.request.post(
        "/api/v1/auth/token", data={"username": "worker02", "password": DEMO_PASSWORD}
    ).json()["access_token"]
    accepted = page.request.post(
        f"/api/v1/tasks/{task.id}/transitions",
        data={"action": "accept", "note": ""},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert accepted.ok, accepted.text()
    row.locator("button[data-open]").click()
    detail = page.locator(f"#task-detail[data-task='{task.id}']")
    detail.locator("h2").wait_for()
    assert "已接单" in detail.inner_text()
    page.keyboard.press("Escape")
    page.wait_for_function(
        """(id) => document.querySelector(`#today-tasks tr[data-id='${id}'] .status`)
                     .textContent === '已接单'""",
        arg=task.id,
    )
    focused = page.evaluate("() => document.activeElement.dataset.open")
    assert focused == str(task.id)


# --- the household found by the address the resident gives ------------------------------------
def household_at(e2e_engine, grid_code: str, building: str, unit: str, room: str):
    from api.models import Grid, Household

    with Session(e2e_engine) as session:
        return session.scalar(
            select(Household)
            .join(Grid, Grid.id == Household.grid_id)
            .where(
                Grid.code == grid_code,
                Household.building == building,
                Household.unit == unit,
                Household.room == room,
            )
        )


def test_the_resident_s_household_is_found_by_the_address_they_say_from_the_keyboard(
    page, e2e_engine, window_day
):
    """A blank map (no base map) does not show where building 3 stands: the address the
    resident says, typed as said, finds their household, in whichever grid of the community
    they live (until 2026-12-06 only worker01's own grid's were looked up: a resident of grid
    002 was placed by a guessed click); picked, the request is placed there."""
    household = household_at(e2e_engine, OTHER_GRID, "3", "2", "502")
    open_window(page, "worker01")
    fill_request(page, "楼道灯不亮（按地址登记）")
    page.fill("#address", "3号楼2单元502")
    page.press("#address", "Enter")  # looks it up; the form is not sent
    results = page.locator("#address-results button")
    result = page.locator(f"#address-results button[data-household='{household.id}']")
    result.wait_for()
    assert tasks_titled(e2e_engine, "楼道灯不亮（按地址登记）") == []
    assert results.count() > 1  # one household of that address in each grid of the community
    assert "3号楼 2单元" in result.inner_text() and "502" in result.inner_text()
    assert OTHER_GRID in result.inner_text()
    screenshot(page, "window-address-found")
    page.press("#address", "ArrowDown")
    for _ in range(results.count()):
        if page.evaluate("() => document.activeElement.dataset.household") == str(household.id):
            break
        page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.dataset.household") == str(household.id)
    page.keyboard.press("Enter")
    # Placed at the household: the marker, the grid named, the household attached.
    lon, lat = household_point(e2e_engine, household.id)
    assert page.inner_text("#place").endswith(
        f"（{OTHER_GRID}） · {round(lon, 6)}, {round(lat, 6)}"
    )
    assert page.get_attribute("#place", "data-grid") == OTHER_GRID
    assert page.input_value("select[name=household_id]") == str(household.id)
    assert page.is_visible("#household-choice")
    assert page.locator(".maplibregl-marker svg").count() == 1
    assert page.evaluate("() => document.activeElement.id") == "submit"
    page.keyboard.press("Enter")
    page.locator("#created").wait_for()
    [task] = tasks_titled(e2e_engine, "楼道灯不亮（按地址登记）")
    assert task.household_id == household.id
    assert task.grid_id == household.grid_id
    screenshot(page, "window-address")


def household_point(e2e_engine, household_id: int) -> tuple[float, float]:
    from geoalchemy2.shape import to_shape

    from api.models import Household

    with Session(e2e_engine) as session:
        point = to_shape(session.get(Household, household_id).location)
        return point.x, point.y


def test_an_address_found_nowhere_too_long_or_looked_up_offline_is_said_in_chinese(
    context, page, e2e_engine, window_day
):
    open_window(page, "worker01")
    status = page.locator("#address-status")
    page.fill("#address", "9号楼 9单元 999")
    page.click("#address-find")
    page.wait_for_function(
        "() => document.querySelector('#address-status').textContent.includes('没有找到')"
    )
    assert "9号楼 9单元 999" in status.inner_text()
    assert "本社区各网格" in status.inner_text()  # at the window every grid's are looked up
    assert page.is_hidden("#address-results")
    page.fill("#address", "3号楼 2单元 5层 502 东")
    page.press("#address", "Enter")
    assert status.inner_text() == "地址最多四个词（楼栋、单元、楼层、房号）。"
    page.fill("#address", "3号楼 2单元 502")
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    page.press("#address", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#address-status').textContent.startsWith('网络未连接')"
    )
    context.set_offline(False)
    assert page.inner_text("#place") == "请在地图上点选居民诉求的位置"


def test_the_community_admin_finds_an_address_in_every_grid_each_named_in_english(
    page, e2e_engine, window_day
):
    household = household_at(e2e_engine, OTHER_GRID, "3", "2", "502")
    page.goto("/window?lang=en")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#address", "3 2 502")
    page.click("#address-find")
    result = page.locator(f"#address-results button[data-household='{household.id}']")
    result.wait_for()
    assert page.locator("#address-results button").count() > 1  # one in each grid
    assert OTHER_GRID in result.inner_text()
    assert page.inner_text("#address-status").endswith("pick one to place the request there.")
    result.click()
    assert page.get_attribute("#place", "data-grid") == OTHER_GRID
    assert page.input_value("select[name=household_id]") == str(household.id)
    page.fill("#address", "99 99 999")
    page.click("#address-find")
    page.wait_for_function(
        "() => document.querySelector('#address-status').textContent.startsWith('No household')"
    )
    assert "other grids" not in page.inner_text("#address-status")  # the admin sees them all


# --- a request nobody could take ---------------------------------------------------------------
THIRD_GRID = COMMUNITY + "003"  # worker03's grid: nobody of it is rostered today


@pytest.fixture
def leader_away(e2e_engine):
    """leader01, who leads every grid of the demo community, on approved leave today."""
    from datetime import timedelta

    from api.models import Leave, User

    today = datetime.now(UTC).astimezone(BEIJING).date()
    with Session(e2e_engine) as session:
        leader = session.scalar(select(User).where(User.username == "leader01"))
        admin = session.scalar(select(User.id).where(User.username == "admin01"))
        leave = Leave(
            worker_id=leader.id, start_date=today, end_date=today + timedelta(days=1),
            reason="", status="approved", decided_by_id=admin,
            decided_at=datetime.now(UTC) - timedelta(days=1),
        )  # fmt: skip
        session.add(leave)
        session.commit()
        made = leave.id
    yield
    with Session(e2e_engine) as session:
        session.execute(Leave.__table__.delete().where(Leave.id == made))
        session.commit()


def test_a_request_nobody_could_take_says_the_leader_is_away_and_the_admins_were_told(
    page, e2e_engine, window_day, leader_away
):
    """No worker on duty and the grid leader away: the task waits unassigned and the
    community's admins are told (dispatch, tasks.overseers). It said "已交网格长分派": the
    leader, away, had been handed nothing."""
    from api.models import Notification, User

    open_window(page, "worker01")
    point = grid_pixel(page, THIRD_GRID)
    assert point["code"] == THIRD_GRID
    click_map(page, point["x"], point["y"])
    fill_request(page, "无人当班时登记")
    page.click("#submit")
    created = page.locator("#created")
    created.wait_for()
    [task] = tasks_titled(e2e_engine, "无人当班时登记")
    assert task.assignee_id is None
    with Session(e2e_engine) as session:
        told = session.scalars(
            select(User.username)
            .join(Notification, Notification.user_id == User.id)
            .where(Notification.data["task_id"].as_integer() == task.id)
        ).all()
    assert told == ["admin01"]
    assert created.locator(".assignee").inner_text() == (
        "当班网格员和网格长都不在岗：任务待分派，已通知社区管理员"
    )
    assert "网格长分派" not in created.inner_text()
