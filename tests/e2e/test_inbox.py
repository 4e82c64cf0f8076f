"""The inbox in the workers' app ("消息"): what the server told the worker, without push.

Every notice lands in the inbox (`GET /notifications`), and push only mirrors it; in mainland
China FCM reaches few phones. The app never read the inbox: a worker whose phone got no push
never saw a leave decision, a swap request, nor that a task was about to be late.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tests.e2e.conftest import app_service_worker, screenshot, wait_kept
from tests.e2e.test_account import own_account
from tests.e2e.test_account_devices import another_phone

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def worker(context, page, e2e_engine):
    """A fresh worker of the demo grid (nothing in their inbox), the app open; their id."""
    from api.models import User

    username = own_account(context, page)
    with Session(e2e_engine) as session:
        return session.scalar(select(User.id).where(User.username == username))


@pytest.fixture
def tell(e2e_engine):
    """Notify a user through `notify()`, committed as the change that causes it would be."""
    from api.models import Notification
    from api.services.notifications import notify

    made: list[int] = []

    def told(user_id: int, kind: str, title: str, body: str = "", **data) -> int:
        with Session(e2e_engine) as session:
            (row,) = notify(session, [user_id], kind, title, body, data=data)
            session.commit()
            made.append(row.id)
            return row.id

    yield told
    with Session(e2e_engine) as session:
        session.execute(delete(Notification).where(Notification.id.in_(made)))
        session.commit()


@pytest.fixture
def task_of(e2e_engine):
    """A task dispatched to the user in their grid (removed after)."""
    from api.models import Task, TaskEvent, User

    made: list[int] = []

    def task(user_id: int, title: str) -> int:
        with Session(e2e_engine) as session:
            user = session.get(User, user_id)
            row = Task(
                source="window",
                type="help",
                title=title,
                grid_id=user.grids[0].id,
                status="dispatched",
                assignee_id=user_id,
                due_at=datetime.now(UTC) + timedelta(hours=3),
            )
            session.add(row)
            session.commit()
            made.append(row.id)
            return row.id

    yield task
    with Session(e2e_engine) as session:
        session.execute(delete(TaskEvent).where(TaskEvent.task_id.in_(made)))
        session.execute(delete(Task).where(Task.id.in_(made)))
        session.commit()


def read_at(e2e_engine, notification_id: int):
    from api.models import Notification

    with Session(e2e_engine) as session:
        return session.scalar(
            select(Notification.read_at).where(Notification.id == notification_id)
        )


def created_at(e2e_engine, notification_id: int) -> datetime:
    from api.models import Notification

    with Session(e2e_engine) as session:
        return session.scalar(
            select(Notification.created_at).where(Notification.id == notification_id)
        )


def beijing(at: datetime) -> str:
    local = at.astimezone(UTC) + timedelta(hours=8)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def fail_reads_after_marking(page) -> None:
    """全部标为已读 goes through; every read of the inbox after it fails (503)."""
    marked: list[str] = []

    def after_marking(route):
        if route.request.method == "POST" and route.request.url.endswith("/ack-all"):
            marked.append(route.request.url)
            return route.continue_()
        if marked and route.request.method == "GET":
            return route.fulfill(status=503, json={"title": "Service unavailable"})
        return route.continue_()

    page.route("**/api/v1/notifications**", after_marking)


def reopened(page) -> None:
    page.reload()
    page.wait_for_selector("body[data-ready='1']")


def back_to_the_app(page) -> None:
    """What the browser fires when the worker returns to the app (a push read elsewhere)."""
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")


def notice(page, notification_id: int):
    return page.locator(f"#inbox-list li.notice[data-id='{notification_id}']")


def test_the_header_badge_counts_a_notice_that_arrives_while_the_app_is_open(page, worker, tell):
    badge = page.locator("#inbox-badge")
    expect(page.locator("#inbox-link")).to_be_visible()
    expect(badge).to_be_hidden()  # nothing unread
    expect(page.locator("#inbox-list")).to_contain_text("暂无消息")

    tell(worker, "leave_decided", "请假已批准", "12月8日至12月9日")
    back_to_the_app(page)
    expect(badge).to_have_text("1")
    expect(page.locator("#inbox-list li.notice.unread")).to_have_count(1)


def test_the_inbox_lists_notices_newest_first_in_chinese_unread_marked(
    page, worker, tell, e2e_engine
):
    older = tell(worker, "roster_published", "2026-W50 排班已发布", "12月7日至12月13日的班次已排好")
    newer = tell(worker, "task_deadline_warning", "任务即将超期", "楼道堆放杂物", task_id=1)
    reopened(page)
    items = page.locator("#inbox-list li.notice")
    expect(items).to_have_count(2)
    assert [int(i) for i in items.evaluate_all("(li) => li.map((x) => x.dataset.id)")] == [
        newer,
        older,
    ]
    first = notice(page, newer)
    expect(first).to_have_class("notice unread")
    expect(first.locator(".notice-kind")).to_have_text("即将超期")
    expect(first.locator(".notice-title")).to_have_text("任务即将超期")
    expect(first.locator(".notice-body")).to_have_text("楼道堆放杂物")
    expect(first.locator(".notice-time")).to_have_text(beijing(created_at(e2e_engine, newer)))
    expect(notice(page, older).locator(".notice-kind")).to_have_text("排班")
    expect(page.locator("#inbox-badge")).to_have_text("2")
    expect(page.locator("#inbox h2")).to_have_text("消息")


def test_tapping_a_task_notice_reads_it_and_opens_the_task(page, worker, tell, task_of, e2e_engine):
    task = task_of(worker, "井盖松动")
    told = tell(worker, "task_dispatched", "新任务", "井盖松动", task_id=task)
    reopened(page)
    expect(page.locator("#inbox-badge")).to_have_text("1")
    assert read_at(e2e_engine, told) is None

    notice(page, told).click()
    expect(notice(page, told)).to_have_class("notice")  # read
    expect(page.locator("#inbox-badge")).to_be_hidden()
    assert read_at(e2e_engine, told) is not None
    card = page.locator(f"#tasks li.task[data-id='{task}']")
    expect(card).to_have_class("task focus")
    expect(card).to_be_in_viewport()
    # And its own page opens over the list: what the notice is about, to act on it.
    expect(page.locator(f"#task-detail[data-task='{task}'] h2")).to_have_text("井盖松动")


def test_a_task_notice_arriving_with_its_task_opens_it_though_the_list_was_older(
    page, worker, tell, task_of
):
    """The task list was read before the task existed: tapping its notice reads it again."""
    task = task_of(worker, "路灯不亮")
    told = tell(worker, "task_dispatched", "新任务", "路灯不亮", task_id=task)
    back_to_the_app(page)
    notice(page, told).click()
    expect(page.locator(f"#tasks li.task[data-id='{task}']")).to_have_class("task focus")


def test_tapping_a_leave_notice_opens_the_leave(context, page, worker, tell, e2e_engine):
    from api.models import Leave
    from api.services.weeks import LOCAL

    start = datetime.now(UTC).astimezone(LOCAL).date() + timedelta(days=20)
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    answer = context.request.post(
        "/api/v1/leaves",
        data={"start_date": str(start), "end_date": str(start), "reason": "家中有事"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status == 201, answer.text()
    leave = answer.json()["id"]
    try:
        told = tell(worker, "leave_decided", "请假已批准", str(start), leave_id=leave)
        back_to_the_app(page)
        notice(page, told).click()
        item = page.locator(f"#leave li.leave[data-id='{leave}']")
        expect(item).to_have_class("leave focus")
        expect(item).to_be_in_viewport()
    finally:
        with Session(e2e_engine) as session:
            session.execute(delete(Leave).where(Leave.id == leave))
            session.commit()


def test_tapping_a_retired_device_notice_opens_it_in_the_device_list(context, page, worker, tell):
    phone = another_phone(context, page)
    told = tell(worker, "device_retired", "有一台设备收不到推送了", "安卓手机", device_id=phone)
    back_to_the_app(page)
    expect(notice(page, told).locator(".notice-kind")).to_have_text("设备")
    notice(page, told).click()
    expect(page.locator(f"#devices li[data-id='{phone}']")).to_have_class("device focus")


def test_tapping_a_moved_device_notice_opens_the_device_card(page, worker, tell):
    """The device went to another account: not on the list any more, the card is opened (no
    "已不在列表中" for a device the notice never named by id)."""
    told = tell(worker, "device_moved", "有一台设备不再接收您的推送", "安卓手机")
    back_to_the_app(page)
    expect(notice(page, told).locator(".notice-kind")).to_have_text("设备")
    notice(page, told).click()
    expect(page.locator("#devices-card")).to_have_class("focus")


def test_tapping_a_roster_notice_opens_the_week(page, worker, tell):
    told = tell(worker, "roster_published", "排班已发布", "", week="2026-W50")
    back_to_the_app(page)
    notice(page, told).click()
    expect(page.locator("#week-card")).to_have_class("card focus")


def test_mark_all_read_leaves_a_notice_that_arrived_after_the_poll_unread(
    page, worker, tell, e2e_engine
):
    """The poll's cursor goes with "全部标为已读": a notice that arrived after it stays unread.
    (One the list showed is marked even when a transaction running elsewhere in the database
    held the cursor back: the app acknowledges those it showed one by one.)"""
    seen = tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    expect(notice(page, seen)).to_be_visible()
    unseen = tell(worker, "shift_swap_requested", "换班申请", "周三 B岗")  # after the poll
    page.click("#inbox-ack-all")
    expect(notice(page, seen)).to_have_class("notice")
    assert read_at(e2e_engine, seen) is not None
    assert read_at(e2e_engine, unseen) is None
    # Read again after marking: the one that arrived meanwhile is shown, unread.
    expect(notice(page, unseen)).to_have_class("notice unread")
    expect(page.locator("#inbox-badge")).to_have_text("1")


def test_mark_all_read_marks_what_it_showed_though_a_long_transaction_held_the_cursor_back(
    page, worker, tell, e2e_engine
):
    """A transaction running elsewhere holds the cursor below the notices the list shows: the
    server's ack-all leaves them unread ("poll and acknowledge again"), and the badge stayed."""
    from sqlalchemy import text

    with e2e_engine.connect() as long_running:
        long_running.execute(text("SELECT pg_current_xact_id()"))  # holds an xid, open
        seen = tell(worker, "leave_decided", "请假已批准")
        reopened(page)
        expect(notice(page, seen)).to_be_visible()
        unseen = tell(worker, "shift_swap_requested", "换班申请")
        page.click("#inbox-ack-all")
        expect(notice(page, unseen)).to_have_class("notice unread")
        expect(notice(page, seen)).to_have_class("notice")
        assert read_at(e2e_engine, seen) is not None
        assert read_at(e2e_engine, unseen) is None
        expect(page.locator("#inbox-badge")).to_have_text("1")
        long_running.rollback()


@pytest.fixture
def quiet_database(page, e2e_engine):
    """Each inbox answer's cursor as a database with nothing else running gives it: past every
    transaction begun so far. (On the test machine other databases' transactions hold the real
    one back, and a poll answers again the notices it had shown, read state and all.)"""
    from sqlalchemy import text

    def answer(route):
        response = route.fetch()
        headers = dict(response.headers)
        if "x-inbox-cursor" in headers:
            with e2e_engine.connect() as connection:
                xmax = connection.scalar(text("SELECT pg_snapshot_xmax(pg_current_snapshot())"))
            headers["x-inbox-cursor"] = str(xmax)
        route.fulfill(response=response, headers=headers)

    page.route("**/api/v1/notifications?*", answer)


def read_elsewhere(context, page, notification_id: int) -> None:
    """The worker reads the notice on their other phone (the same account, its token)."""
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    answer = context.request.post(
        f"/api/v1/notifications/{notification_id}/ack",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.ok, answer.text()


def test_a_notice_read_on_another_phone_shows_read_once_the_inbox_is_read_again(
    context, page, worker, tell, quiet_database
):
    """A poll answers what arrived since its cursor: a notice read elsewhere stayed 未读 here
    for good (and kept "全部标为已读" showing), under a badge that no longer counted it."""
    elsewhere = tell(worker, "leave_decided", "请假已批准")
    here = tell(worker, "shift_swap_requested", "换班申请")
    reopened(page)
    expect(page.locator("#inbox-badge")).to_have_text("2")
    read_elsewhere(context, page, elsewhere)
    back_to_the_app(page)
    expect(page.locator("#inbox-badge")).to_have_text("1")
    expect(notice(page, elsewhere)).to_have_class("notice")
    expect(notice(page, here)).to_have_class("notice unread")
    read_elsewhere(context, page, here)
    back_to_the_app(page)
    expect(page.locator("#inbox-badge")).to_be_hidden()
    expect(notice(page, here)).to_have_class("notice")
    expect(page.locator("#inbox-ack-all")).to_be_hidden()


def test_tapping_a_notice_already_read_on_another_phone_keeps_the_badge_counting_the_rest(
    context, page, worker, tell, quiet_database
):
    """Its acknowledgement changes nothing on the server, yet the badge took one off: with a
    notice arrived meanwhile, it said 1 of the 2 unread."""
    elsewhere = tell(worker, "leave_decided", "请假已批准")
    waiting = tell(worker, "shift_swap_requested", "换班申请")
    reopened(page)
    expect(page.locator("#inbox-badge")).to_have_text("2")
    read_elsewhere(context, page, elsewhere)
    arrived = tell(worker, "roster_published", "排班已发布")  # no poll since
    notice(page, elsewhere).click()
    expect(notice(page, elsewhere)).to_have_class("notice")
    expect(page.locator("#inbox-badge")).to_have_text("2")  # waiting and arrived
    expect(notice(page, waiting)).to_have_class("notice unread")
    expect(notice(page, arrived)).to_have_class("notice unread")


def test_mark_all_read_done_is_said_though_the_list_could_not_be_read_after(
    page, worker, tell, e2e_engine, quiet_database
):
    """The server marked them; reading them again after failed: the card said 消息暂不可用 and
    kept them all 未读 under the badge, and the worker pressed again."""
    seen = tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    expect(notice(page, seen)).to_have_class("notice unread")
    fail_reads_after_marking(page)
    page.click("#inbox-ack-all")
    expect(page.locator("#inbox-status")).to_have_text("已将 1 条消息标为已读。")
    expect(notice(page, seen)).to_have_class("notice")
    expect(page.locator("#inbox-badge")).to_be_hidden()
    assert read_at(e2e_engine, seen) is not None


def test_more_pages_on_through_older_notices(page, worker, tell):
    ids = [tell(worker, "task_updated", f"任务有更新 {n:02d}") for n in range(23)]
    reopened(page)
    items = page.locator("#inbox-list li.notice")
    expect(items).to_have_count(20)
    more = page.locator("#inbox-more")
    expect(more).to_have_text("更多")
    more.click()
    expect(items).to_have_count(23)
    expect(more).to_be_hidden()
    shown = [int(i) for i in items.evaluate_all("(li) => li.map((x) => x.dataset.id)")]
    assert shown == ids[::-1]


def test_offline_the_inbox_says_so_and_keeps_the_list(context, page, worker, tell):
    told = tell(worker, "leave_requested", "新的请假申请")
    reopened(page)
    expect(notice(page, told)).to_be_visible()
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    back_to_the_app(page)
    expect(page.locator("#inbox-status")).to_contain_text("离线")
    expect(notice(page, told)).to_be_visible()
    page.click("#inbox-ack-all")
    expect(page.locator("#inbox-status")).to_contain_text("需要联网")


def test_a_notice_read_offline_is_read_on_the_phone_and_the_server_told_once_online(
    context, page, worker, tell, e2e_engine
):
    """Tapped with no signal, a notice stayed unread (标为已读需要联网): read at the door, it was
    counted unread until the worker found it and tapped it again online."""
    told = tell(worker, "leave_requested", "新的请假申请")
    reopened(page)
    expect(page.locator("#inbox-badge")).to_have_text("1")
    reopened_offline(context, page)
    notice(page, told).click()
    expect(notice(page, told)).to_have_class("notice")  # read here
    expect(page.locator("#inbox-badge")).to_be_hidden()
    expect(page.locator("#inbox-status")).to_have_text("离线：已在本机标为已读，联网后告知服务器。")
    assert read_at(e2e_engine, told) is None  # nothing reached the server
    # Opened again with no signal, it is still read.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(notice(page, told)).to_have_class("notice")
    expect(page.locator("#inbox-badge")).to_be_hidden()
    context.set_offline(False)
    for _ in range(100):
        if read_at(e2e_engine, told) is not None:
            break
        page.wait_for_timeout(100)
    assert read_at(e2e_engine, told) is not None
    expect(notice(page, told)).to_have_class("notice")
    expect(page.locator("#inbox-badge")).to_be_hidden()


def test_a_notice_gone_from_the_server_is_said_in_chinese_with_its_detail(
    page, worker, tell, e2e_engine
):
    from api.models import Notification

    told = tell(worker, "report_ready", "2026-W49 走访覆盖率周报")
    reopened(page)
    with Session(e2e_engine) as session:
        session.execute(delete(Notification).where(Notification.id == told))
        session.commit()
    notice(page, told).click()
    status = page.locator("#inbox-status")
    expect(status.locator(".why")).to_have_text("这条消息已不在服务器上。")
    expect(status.locator(".server-reason")).to_contain_text(f"Notification {told} not found")


def test_a_push_relayed_by_the_service_worker_reads_the_inbox_again(page, worker, tell):
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    tell(worker, "task_escalated", "任务已超期")
    page.evaluate(
        """() => navigator.serviceWorker.dispatchEvent(
            new MessageEvent('message', { data: 'inbox-changed' }))"""
    )
    expect(page.locator("#inbox-badge")).to_have_text("1")


def test_the_service_worker_tells_the_page_of_a_push(context, page, worker):
    """The worker's `push` handler relays it to the open pages ("inbox-changed")."""
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.evaluate(
        """() => { window.relayed = [];
          navigator.serviceWorker.addEventListener(
            'message', (e) => window.relayed.push(e.data)); }"""
    )
    cdp, registration, origin = app_service_worker(context, page)
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": registration, "data": '{"title": "新任务"}'},
    )
    page.wait_for_function("() => window.relayed.includes('inbox-changed')")


def test_the_open_app_reads_the_inbox_again_every_three_minutes(context, page, worker, tell):
    """A phone left open on the app, no push reaching it: a notice shows within the timer."""
    page.clock.install()
    reopened(page)
    told = tell(worker, "task_deadline_warning", "任务即将超期")
    page.clock.run_for(60_000)
    expect(notice(page, told)).to_have_count(0)  # not yet: read every three minutes
    page.clock.run_for(2 * 60_000 + 1_000)
    expect(page.locator("#inbox-badge")).to_have_text("1")
    expect(notice(page, told)).to_be_visible()


def ended_elsewhere(context, page) -> None:
    """The worker's sessions ended from another device (logout-all with the page's token), then
    the app opened again: it asks to sign in."""
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    answer = context.request.post(
        "/api/v1/auth/logout-all", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.ok, answer.text()
    back_to_the_app(page)
    page.locator("#signin").wait_for(state="visible")


def test_a_session_ended_elsewhere_clears_the_inbox(context, page, worker, tell):
    tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    expect(page.locator("#inbox-badge")).to_have_text("1")
    ended_elsewhere(context, page)
    expect(page.locator("#inbox-link")).to_be_hidden()
    expect(page.locator("#inbox-list li.notice")).to_have_count(0)


def test_in_english_the_inbox_speaks_english(page, worker, tell):
    tell(worker, "leave_decided", "请假已批准")
    page.goto("/app?lang=en")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#inbox h2")).to_have_text("Messages")
    expect(page.locator("#inbox-ack-all")).to_have_text("Mark all read")
    expect(page.locator("#inbox-list li.notice .notice-kind")).to_have_text("Leave")


def test_on_a_phone_the_inbox_fits_and_its_controls_are_tall_enough(page, worker, tell):
    page.set_viewport_size(PHONE)
    for n in range(22):
        tell(worker, "task_updated", f"任务有更新 {n:02d}", "一段较长的说明文字" * 6)
    reopened(page)
    expect(page.locator("#inbox-badge")).to_have_text("22")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    for control in ("#inbox-link", "#inbox-ack-all", "#inbox-more", "#inbox-list li.notice"):
        box = page.locator(control).first.bounding_box()
        assert box["height"] >= 40, control
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control
    page.click("#inbox-link")
    expect(page.locator("#inbox")).to_be_in_viewport()
    screenshot(page, "app-inbox")


# --- kept on the phone ------------------------------------------------------------------------
# The app is offline-first: a worker in a basement who opened it (or reloaded it) saw
# "离线：消息需要联网" and none of the notices already received. The notices last read are kept
# in IndexedDB, tagged with their worker, and forgotten at sign-out and when someone else signs in.


def kept_inbox(page):
    """The inbox kept on this phone (IndexedDB), or None."""
    return page.evaluate("async () => (await import('/web/queue.js')).getMeta('inbox')")


def kept_ids(page) -> list[int]:
    kept = kept_inbox(page)
    return [n["id"] for n in kept["items"]] if kept else []


def reopened_offline(context, page) -> None:
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")


def test_reopened_offline_the_inbox_shows_the_notices_last_received(context, page, worker, tell):
    read = tell(worker, "roster_published", "排班已发布")
    unread = tell(worker, "leave_decided", "请假已批准", "12月8日")
    reopened(page)
    notice(page, read).click()
    expect(notice(page, read)).to_have_class("notice")
    expect(page.locator("#inbox-badge")).to_have_text("1")
    # The list is kept on the phone once shown: reopened before, the copy was the one before.
    assert page.evaluate(
        """async (id) => {
          const { getMeta } = await import('/web/queue.js');
          for (let n = 0; n < 200; n++) {
            if ((await getMeta('inbox'))?.items.find((x) => x.id === id)?.read_at) return true;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          return false;
        }""",
        read,
    )

    reopened_offline(context, page)
    expect(page.locator("#inbox-status")).to_have_text("离线：消息需要联网，下面是上次收到的消息。")
    items = page.locator("#inbox-list li.notice")
    assert [int(i) for i in items.evaluate_all("(li) => li.map((x) => x.dataset.id)")] == [
        unread,
        read,
    ]
    expect(notice(page, unread)).to_have_class("notice unread")
    expect(notice(page, unread).locator(".notice-body")).to_have_text("12月8日")
    expect(notice(page, read)).to_have_class("notice")
    expect(page.locator("#inbox-badge")).to_have_text("1")
    context.set_offline(False)


def kept_count(page, count: int) -> None:
    """Wait (10 s at most) until the phone keeps `count` notices."""
    assert page.evaluate(
        """async (count) => {
          const { getMeta } = await import('/web/queue.js');
          for (let n = 0; n < 200; n++) {
            if ((await getMeta('inbox'))?.items.length === count) return true;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          return false;
        }""",
        count,
    )


def test_the_phone_keeps_only_the_newest_hundred_notices(page, worker, tell):
    ids = [tell(worker, "task_updated", f"任务有更新 {n:03d}") for n in range(125)]
    reopened(page)
    items = page.locator("#inbox-list li.notice")
    for shown in (40, 60, 80, 100, 120, 125):
        page.click("#inbox-more")
        expect(items).to_have_count(shown)
    kept_count(page, 100)
    assert kept_ids(page) == ids[::-1][:100]


def test_signing_out_forgets_the_notices_kept(page, worker, tell):
    tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    assert kept_ids(page)
    page.click("#signout")
    page.locator("#signin").wait_for(state="visible")
    assert kept_inbox(page) is None


def test_signing_out_everywhere_forgets_the_notices_kept(page, worker, tell):
    tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    assert kept_ids(page)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#signout-all")
    page.locator("#signin").wait_for(state="visible")
    assert kept_inbox(page) is None


def test_a_session_ended_elsewhere_forgets_the_notices_kept(context, page, worker, tell):
    tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    assert kept_ids(page)
    ended_elsewhere(context, page)
    assert kept_inbox(page) is None


def test_another_worker_signing_in_on_the_phone_never_sees_the_notices_kept(
    context, page, worker, tell
):
    """The notices of the worker before are left on the phone (a sign-in on another page, the
    tokens replaced): the next one's app neither shows them nor keeps them, offline either."""
    from fixtures.people import DEMO_PASSWORD

    told = tell(worker, "task_dispatched", "新任务", "3号楼2单元 王某家漏水")
    reopened(page)
    assert told in kept_ids(page)
    # Another worker signs in on another page of this phone: the app's tokens are theirs.
    page.evaluate(
        """async ([username, password]) => {
          const { signIn } = await import('/web/common.js');
          await signIn(username, password);
        }""",
        ["worker02", DEMO_PASSWORD],
    )
    reopened(page)
    expect(notice(page, told)).to_have_count(0)
    assert told not in kept_ids(page)
    reopened_offline(context, page)
    expect(notice(page, told)).to_have_count(0)
    context.set_offline(False)


# --- back after a long absence ----------------------------------------------------------------
@pytest.fixture
def flood(e2e_engine):
    """`count` notices for a user in one change (a week's deadline warnings of a busy grid);
    removed after. Their ids, oldest first."""
    from api.models import Notification
    from api.services.notifications import notify

    users: list[int] = []

    def flooded(user_id: int, count: int) -> list[int]:
        users.append(user_id)
        with Session(e2e_engine) as session:
            rows = [
                notify(session, [user_id], "task_deadline_warning", f"任务即将超期 {n:04d}")[0]
                for n in range(count)
            ]
            session.commit()
            return [row.id for row in rows]

    yield flooded
    with Session(e2e_engine) as session:
        session.execute(delete(Notification).where(Notification.user_id.in_(users)))
        session.commit()


def shown_ids(page) -> list[int]:
    items = page.locator("#inbox-list li.notice")
    return [int(i) for i in items.evaluate_all("(li) => li.map((x) => x.dataset.id)")]


def test_back_after_a_long_absence_the_list_has_no_hole_and_stays_short(page, worker, tell, flood):
    """The open app polls what arrived since its cursor, 20 pages of 50 at most: with more, it
    merged the newest 1,000 above the notices it held, and the rest (older than those, newer
    than the held ones) were nowhere, "更多" paging on from where the list began (and 1,000
    notices were drawn in the card)."""
    held = tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    expect(notice(page, held)).to_be_visible()
    arrived = flood(worker, 1010)
    back_to_the_app(page)
    expect(page.locator("#inbox-badge")).to_have_text("99+")
    newest_first = [*arrived[::-1], held]
    expect(notice(page, arrived[-1])).to_be_visible()
    shown = shown_ids(page)
    assert shown == newest_first[: len(shown)]  # the newest, without a hole
    assert len(shown) <= 100
    more = page.locator("#inbox-more")
    more.click()
    expect(page.locator("#inbox-list li.notice")).to_have_count(len(shown) + 20)
    assert shown_ids(page) == newest_first[: len(shown) + 20]


def test_mark_all_read_with_a_flood_arrived_meanwhile_leaves_the_list_without_a_hole(
    page, worker, tell, flood, e2e_engine
):
    """After marking, the app reads again from its cursor: it merged the newest 1,000 of what
    had arrived meanwhile above the notices it held, the rest a hole nothing read."""
    held = tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    expect(notice(page, held)).to_have_class("notice unread")
    arrived = flood(worker, 1010)  # after the poll: they stay unread
    page.click("#inbox-ack-all")
    expect(page.locator("#inbox-status")).to_have_text("已将 1 条消息标为已读。")
    assert read_at(e2e_engine, held) is not None
    assert read_at(e2e_engine, arrived[0]) is None
    expect(page.locator("#inbox-badge")).to_have_text("99+")
    shown = shown_ids(page)
    assert shown == [*arrived[::-1], held][: len(shown)]
    assert len(shown) <= 100


def test_mark_all_read_with_a_flood_meanwhile_marks_what_it_showed_behind_a_held_cursor(
    page, worker, tell, flood, e2e_engine
):
    """A transaction running elsewhere holds the cursor behind the notice shown: the server's
    ack-all leaves it unread, and the app finds it in what it reads again, past the flood."""
    from sqlalchemy import text

    with e2e_engine.connect() as long_running:
        long_running.execute(text("SELECT pg_current_xact_id()"))  # holds an xid, open
        held = tell(worker, "leave_decided", "请假已批准")
        reopened(page)
        expect(notice(page, held)).to_have_class("notice unread")
        arrived = flood(worker, 1010)
        page.click("#inbox-ack-all")
        expect(page.locator("#inbox-status")).to_have_text("已将 1 条消息标为已读。")
        assert read_at(e2e_engine, held) is not None
        assert read_at(e2e_engine, arrived[0]) is None
        long_running.rollback()


def test_reopened_offline_mark_all_read_says_it_needs_the_network(context, page, worker, tell):
    """The notices kept are shown with "全部标为已读": pressed offline it did nothing at all
    (the app had no cursor yet, and looked no further)."""
    told = tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    expect(notice(page, told)).to_be_visible()
    reopened_offline(context, page)
    page.click("#inbox-ack-all")
    expect(page.locator("#inbox-status")).to_have_text("离线：标为已读需要联网，联网后再试。")
    expect(notice(page, told)).to_have_class("notice unread")
    context.set_offline(False)


def test_offline_a_task_notice_not_in_the_saved_task_list_is_not_said_to_be_gone(
    context, page, worker, tell, task_of
):
    """The task list saved on the phone predates the task: offline, tapping its notice said the
    task had left the worker's lists (resolved, reassigned or moved?), which nothing knew."""
    task = task_of(worker, "井盖松动")
    told = tell(worker, "task_dispatched", "新任务", "井盖松动", task_id=task)
    back_to_the_app(page)  # the inbox is read again, not the task list
    expect(notice(page, told)).to_be_visible()
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    notice(page, told).click()
    expect(page.locator("#inbox-status")).to_have_text(
        "离线：本机保存的任务列表里没有这项任务，联网后再看。"
    )
    context.set_offline(False)


def test_offline_a_task_notice_opens_the_tasks_page_kept_on_the_phone(
    context, page, worker, tell, task_of
):
    """The worker's open tasks' pages are kept on the phone (web/src/task_pages.js): tapped
    offline, its notice opens the page as last read, to act on at the door."""
    task = task_of(worker, "井盖松动")
    told = tell(worker, "task_dispatched", "新任务", "井盖松动", task_id=task)
    reopened(page)
    wait_kept(page, task)
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    notice(page, told).click()
    detail = page.locator(f"#task-detail[data-task='{task}']")
    expect(detail.locator("h2")).to_have_text("井盖松动")
    expect(detail.locator(".kept-copy")).to_contain_text("离线：这是 ")
    context.set_offline(False)


def test_a_notice_gone_from_the_server_is_no_longer_counted_unread(page, worker, tell, e2e_engine):
    """The list took it off, the badge went on counting it (1, with nothing unread)."""
    from api.models import Notification

    told = tell(worker, "report_ready", "2026-W49 走访覆盖率周报")
    reopened(page)
    expect(page.locator("#inbox-badge")).to_have_text("1")
    with Session(e2e_engine) as session:
        session.execute(delete(Notification).where(Notification.id == told))
        session.commit()
    notice(page, told).click()
    expect(page.locator("#inbox-status .why")).to_have_text("这条消息已不在服务器上。")
    expect(notice(page, told)).to_have_count(0)
    expect(page.locator("#inbox-badge")).to_be_hidden()
    expect(page.locator("#inbox-ack-all")).to_be_hidden()


def test_the_server_unreachable_at_start_the_notices_kept_are_said_to_be_the_last_received(
    page, worker, tell
):
    """Online, the inbox could not be read (a 503 while the server restarts): the card showed
    the notices kept on the phone under 消息暂不可用, as if they were the server's now."""
    told = tell(worker, "leave_decided", "请假已批准")
    reopened(page)
    expect(notice(page, told)).to_be_visible()
    page.route(
        "**/api/v1/notifications?*",
        lambda route: route.fulfill(status=503, json={"title": "Service unavailable"}),
    )
    reopened(page)
    expect(page.locator("#inbox-status .why")).to_have_text("消息暂不可用，下面是上次收到的消息。")
    expect(notice(page, told)).to_be_visible()


def test_mark_all_read_marking_nothing_and_the_list_unreadable_after_says_not_marked(
    page, worker, tell, e2e_engine
):
    """A transaction running elsewhere held the cursor behind the notice shown: the server
    marked none, and the read after (to acknowledge it one by one) failed. The card said
    没有未读消息。 and showed it read, the server holding it unread."""
    from sqlalchemy import text

    with e2e_engine.connect() as long_running:
        long_running.execute(text("SELECT pg_current_xact_id()"))  # holds an xid, open
        seen = tell(worker, "leave_decided", "请假已批准")
        reopened(page)
        expect(notice(page, seen)).to_have_class("notice unread")
        fail_reads_after_marking(page)
        page.click("#inbox-ack-all")
        expect(page.locator("#inbox-status .why")).to_have_text("没有标为已读，请稍后再试。")
        expect(notice(page, seen)).to_have_class("notice unread")
        expect(page.locator("#inbox-badge")).to_have_text("1")
        assert read_at(e2e_engine, seen) is None
        long_running.rollback()


def test_tapping_a_moved_out_notice_asks_the_households_removal_on_the_register(
    page, tell, e2e_engine
):
    """住户可能已搬离 says to take the household out of the register: the notice opens the
    register's page (/register) with that household's removal asked."""
    from api.models import Grid, Household, User
    from fixtures.people import DEMO_PASSWORD
    from tests.e2e.conftest import DEMO_GRID, sign_in

    with Session(e2e_engine) as session:
        leader = session.scalar(select(User.id).where(User.username == "leader01"))
        household = session.scalar(
            select(Household.id)
            .join(Grid, Grid.id == Household.grid_id)
            .where(Grid.code == DEMO_GRID, Household.removed_at.is_(None))
            .order_by(Household.id.desc())
        )
    page.goto("/app")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    told = tell(leader, "household_moved_out", "住户可能已搬离", "", household_id=household)
    back_to_the_app(page)
    expect(notice(page, told).locator(".notice-kind")).to_have_text("搬离")
    notice(page, told).click()

    page.wait_for_url(f"**/register?household={household}")
    expect(page.locator("#removal-dialog")).to_be_visible()
    expect(page.locator("#removal-title")).to_contain_text("移出登记册")
