"""上报问题（巡查发现）in the workers' app: a problem found on the rounds opened as a task before
anyone calls 12345 (未诉先办). The API took such tasks (source `proactive`); the app offered no
way to open one, so a problem seen outside a visit waited for a resident's call."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tests.e2e.conftest import (
    DEMO_COMMUNITY,
    DEMO_GRID,
    lose_the_first_answer,
    screenshot,
    sign_out_declined,
)
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
    assert task.list_kind == "problem"  # found on the rounds: the problem list unless told
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
    card.locator("select[name=list]").select_option("need")  # a resident's wish, not a fault
    card.locator("button[type=submit]").click()
    assert said(page).startswith("已上报任务")
    (task,) = reported()
    assert (task.household_id, task.list_kind) == (household, "need")
    assert card.locator("select[name=list]").input_value() == "problem"  # the next one's default


def test_a_problem_outside_every_grid_is_refused_in_the_servers_words(context, page, reported):
    open_app(context, page)  # HERE: outside every grid
    page.fill("#report-problem input[name=title]", TITLE)
    page.click("#report-problem button[type=submit]")
    assert said(page) == "未上报：The location lies outside every grid."
    assert reported() == []
    # Refused, not lost: the form keeps what was written, to place it at a household instead.
    assert page.input_value("#report-problem input[name=title]") == TITLE


def urgency_labels(page) -> list[str]:
    return page.locator("#report-problem select[name=urgency] option").all_inner_texts()


def test_each_urgency_says_the_deadline_the_community_gives_a_report(
    context, page, reported, inside, community_deadlines
):
    """The urgencies said only their names (一般, 危及生命财产): a worker choosing one did not
    see that it gave the task 1.5 hours or 3 days. Each says the community's own deadline now
    (a report is a help request), kept on the phone for the rounds without a signal."""
    open_app(context, page)
    page.wait_for_selector(f"#report-problem form[data-deadlines='{DEMO_COMMUNITY}']")
    assert urgency_labels(page) == [
        "一般（3天）",
        "水电气热（24小时）",
        "危及生命财产（1.5小时内反馈）",
        "疑难复杂（15天）",
    ]
    context.set_geolocation(inside)
    page.fill("#report-problem input[name=title]", TITLE + " 时限")
    page.click("#report-problem button[type=submit]")
    assert said(page).startswith("已上报任务")
    (task,) = reported()
    assert (task.due_at - task.created_at).total_seconds() == 72 * 3600  # as the label said

    context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert urgency_labels(page)[2] == "危及生命财产（1.5小时内反馈）"


def test_the_urgencies_say_beijing_practice_until_the_community_is_read(context, page):
    """Before the community's deadlines are read (the first sign-in with no signal), the labels
    say what a community that set none gives: Beijing 12345 practice, in either language."""
    page.route("**/task-settings", lambda route: route.abort("internetdisconnected"))
    open_app(context, page)
    assert urgency_labels(page) == [
        "一般（7天）",
        "水电气热（24小时）",
        "危及生命财产（2小时内反馈）",
        "疑难复杂（15天）",
    ]
    page.goto("/app?lang=en")
    page.wait_for_selector("body[data-ready='1']")
    assert urgency_labels(page) == [
        "General (7 days)",
        "Water, power, gas, heating (24 h)",
        "Danger to life or property (2 h)",
        "Complex (15 days)",
    ]


def test_a_problem_needs_saying_and_nothing_is_sent_without(context, page, reported):
    open_app(context, page)
    sent: list[str] = []
    page.on(
        "request", lambda r: sent.append(r.url) if r.method == "POST" and "/tasks" in r.url else 0
    )
    page.click("#report-problem button[type=submit]")
    assert page.inner_text("#report-problem .status") == "请写明问题。"
    assert sent == [] and reported() == []


def kept(page) -> list[dict]:
    """The reports kept on the phone to send (IndexedDB)."""
    return page.evaluate(
        "async () => (await (await import('/web/idb.js')).getMeta('reports')) || []"
    )


def keys_sent(page) -> list[str | None]:
    """The Idempotency-Keys of the POSTs to /api/v1/tasks that reach the network, in order."""
    keys: list[str | None] = []

    def route_it(route):
        if route.request.method == "POST":
            keys.append(route.request.headers.get("idempotency-key"))
        return route.continue_()

    page.route("**/api/v1/tasks", route_it)
    return keys


def reported_later(page) -> str:
    """What the card says once a kept report has gone out."""
    page.wait_for_function(
        """() => document.querySelector('#report-problem .status')
                       .textContent.startsWith('已上报任务')"""
    )
    return page.inner_text("#report-problem .status")


def test_a_report_whose_answer_was_lost_is_kept_and_sent_again_with_its_key(
    context, page, reported, inside
):
    """Lost on the way, the report waits on the phone (待发送), not in the worker's memory: the
    app's next sync (立即同步 here) sends it with its key and place, and one task is opened."""
    open_app(context, page)
    context.set_geolocation(inside)
    keys = lose_the_first_answer(page, "**/api/v1/tasks")
    card = page.locator("#report-problem")
    card.locator("input[name=title]").fill(TITLE + " 重试")
    card.locator("button[type=submit]").click()
    assert said(page) == "没有收到服务器的答复：已保存在本机，待发送，会自动再发（不会重复上报）。"
    assert card.locator("input[name=title]").input_value() == ""  # kept below, not twice
    assert "待发送" in card.locator(".report-outbox li").inner_text()
    context.set_geolocation({**inside, "longitude": inside["longitude"] + 0.0001})  # walked on
    page.click("#sync")
    assert reported_later(page).startswith("已上报任务")
    assert len(keys) == 2 and keys[0] == keys[1]
    (task,) = reported()  # one task, where it was first reported
    assert task.lonlat[0] == pytest.approx(inside["longitude"], abs=1e-6)
    assert kept(page) == []
    expect(card.locator(".report-outbox li")).to_have_count(0)  # redrawn after the status


def test_a_report_carried_out_whose_answer_the_server_never_kept_is_done_not_sent_again(
    context, page, reported, inside, e2e_engine
):
    """The server opened the task and went down before keeping its answer (or a twin of the
    request was still answering): its key answers 409 "carried out". The report kept on the
    phone went on waiting and was sent again until the key was forgotten, 24 hours later,
    when it opened a second task. The 409 says it is done: it leaves the phone, said so."""
    from sqlalchemy import update

    from api.models import IdempotencyKey

    open_app(context, page)
    context.set_geolocation(inside)

    crashed: list[str] = []

    def crash_before_the_answer(route):
        if route.request.method != "POST" or crashed:
            return route.continue_()
        crashed.append(route.request.headers["idempotency-key"])
        route.fetch()  # the server carries it out...
        with Session(e2e_engine) as session:  # ...and goes down before keeping its answer
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == crashed[0])
                .values(status=None, body=None)
            )
            session.commit()
        return route.abort("connectionreset")

    page.route("**/api/v1/tasks", crash_before_the_answer)
    card = page.locator("#report-problem")
    card.locator("input[name=title]").fill(TITLE + " 崩溃")
    card.locator("button[type=submit]").click()
    assert said(page).startswith("没有收到服务器的答复")
    page.click("#sync")
    page.wait_for_function(
        """() => document.querySelector('#report-problem .status')
                       .textContent.startsWith('已上报：服务器已开立任务')"""
    )
    assert kept(page) == []
    expect(card.locator(".report-outbox li")).to_have_count(0)  # redrawn after the status
    assert len(reported()) == 1


def test_a_report_made_offline_is_kept_and_sent_once_back_online(context, page, reported, inside):
    open_app(context, page)
    context.set_geolocation(inside)
    keys = keys_sent(page)
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    card = page.locator("#report-problem")
    card.locator("input[name=title]").fill(TITLE + " 离线")
    card.locator("button[type=submit]").click()
    assert said(page) == "离线：已保存在本机，待发送，联网后自动上报。"
    waiting = card.locator(".report-outbox li")
    assert "待发送" in waiting.inner_text() and TITLE in waiting.inner_text()
    (record,) = kept(page)
    assert record["key"] and record["capturedAt"] and record["state"] == "pending"
    assert record["body"]["location"]["lon"] == pytest.approx(inside["longitude"])
    assert reported() == []
    screenshot(page, "app-report-problem-waiting")
    context.set_offline(False)
    assert reported_later(page).startswith("已上报任务")
    (task,) = reported()
    assert task.source == "proactive" and task.grid_code == DEMO_GRID
    assert task.lonlat[0] == pytest.approx(inside["longitude"], abs=1e-6)
    assert keys == [record["key"]]  # sent once, with the key it was kept with
    assert kept(page) == [] and waiting.count() == 0


def test_a_report_whose_send_failed_is_sent_with_its_key_after_a_reload(
    context, page, reported, inside
):
    """The phone lost the page (reloaded, killed): the report kept on it goes as the app
    starts, with the key of the send whose answer was lost, and one task is opened."""
    open_app(context, page)
    context.set_geolocation(inside)
    keys = lose_the_first_answer(page, "**/api/v1/tasks")
    page.fill("#report-problem input[name=title]", TITLE + " 重载")
    page.click("#report-problem button[type=submit]")
    assert said(page).startswith("没有收到服务器的答复")
    (first,) = reported()  # the server did open it
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert reported_later(page) == page.inner_text("#report-problem .status")
    assert len(keys) == 2 and keys[0] == keys[1]
    (task,) = reported()
    assert task.id == first.id
    assert kept(page) == []


def test_a_kept_report_the_server_refuses_is_shown_with_why_and_kept_to_fix_or_discard(
    context, page, reported
):
    open_app(context, page)  # HERE: outside every grid
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    card = page.locator("#report-problem")
    for title in (TITLE + " 一", TITLE + " 二"):
        card.locator("input[name=title]").fill(title)
        card.locator("button[type=submit]").click()
        assert said(page).startswith("离线：")
    context.set_offline(False)
    refused = card.locator(".report-outbox li.refused")
    page.wait_for_function(
        "() => document.querySelectorAll('#report-problem .report-outbox li.refused').length === 2"
    )
    for item in refused.all():
        assert "未上报" in item.inner_text()
        assert "The location lies outside every grid." in item.inner_text()
    assert [r["state"] for r in kept(page)] == ["refused", "refused"]
    assert reported() == []
    page.reload()  # kept on the phone, not only on the page
    page.wait_for_selector("body[data-ready='1']")
    assert refused.count() == 2
    # Discarded (once the worker confirms): gone.
    page.once("dialog", lambda dialog: dialog.accept())
    card.locator(".report-outbox li", has_text=TITLE + " 二").locator(
        "button[data-discard]"
    ).click()
    page.wait_for_function(
        "() => document.querySelectorAll('#report-problem .report-outbox li').length === 1"
    )
    # Fixed: back in the form as written, placed at a household, and sent.
    card.locator(".report-outbox li", has_text=TITLE + " 一").locator("button[data-fix]").click()
    expect(card.locator("input[name=title]")).to_have_value(TITLE + " 一")
    card.locator("input[name=where][value=household]").check()
    choice = card.locator("select[name=household_id]")
    choice.wait_for()
    choice.select_option(index=1)
    card.locator("button[type=submit]").click()
    assert said(page).startswith("已上报任务")
    (task,) = reported()
    assert task.title == TITLE + " 一" and task.household_id is not None
    assert kept(page) == []
    expect(card.locator(".report-outbox li")).to_have_count(0)  # redrawn after the status


def test_the_community_admin_has_no_such_card(context, page):
    """The office opens tasks at the window or from the hotline; rounds are the grid's people's."""
    open_app(context, page, "admin01")
    assert page.is_hidden("#report-problem")


def test_signing_out_with_a_report_not_yet_sent_asks_first(context, page, reported, inside):
    """A sign-out deletes what the phone keeps: the report waiting is counted in its question,
    and kept when the worker says no."""
    open_app(context, page)
    context.set_geolocation(inside)
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    page.fill("#report-problem input[name=title]", TITLE + " 退出")
    page.click("#report-problem button[type=submit]")
    assert said(page).startswith("离线：")
    asked = sign_out_declined(page)
    assert asked == [
        "本机还有 1 条上报的问题未发送（待发送或待修改），退出后将被删除。仍要退出吗？"
    ]
    assert [r["state"] for r in kept(page)] == ["pending"]
