"""Leave in the workers' app, in headless Chromium: a worker asks, a leader decides, the worker
sees the decision; a refusal is said with the server's words; leave needs the network."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from api.services.weeks import LOCAL
from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import _csp_violation, lose_the_first_answer, screenshot, sign_in


def open_app(context, username: str, path: str = "/app"):
    """A page of `context` signed in to the app as `username`, failing the test on any script
    error or CSP violation (as the `page` fixture does)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: _csp_violation(message) and errors.append(message.text))
    page.errors = errors
    page.goto(path)
    sign_in(page, username, DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    return page


@pytest.fixture()
def worker(context):
    page = open_app(context, "worker01")
    yield page
    assert page.errors == []


@pytest.fixture()
def leader(browser, live_server):
    """leader01, on a phone of their own (another browser context)."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1100, "height": 800})
    context.set_default_timeout(20_000)
    page = open_app(context, "leader01")
    yield page
    assert page.errors == []
    context.close()


@pytest.fixture(autouse=True)
def no_leave_left(e2e_engine):
    """Each test starts and ends with no leave of the accounts these tests sign in as, nor its
    notices (the demo district seeds none; the other e2e tests roster it)."""
    from api.models import Leave, Notification, User

    def clear():
        with e2e_engine.begin() as conn:
            ours = select(User.id).where(User.username.in_(("worker01", "leader01")))
            leaves = select(Leave.id).where(Leave.worker_id.in_(ours))
            conn.execute(
                delete(Notification).where(
                    Notification.kind.like("leave_%"),
                    Notification.data["leave_id"].as_integer().in_(leaves),
                )
            )
            conn.execute(delete(Leave).where(Leave.worker_id.in_(ours)))

    clear()
    yield
    clear()


def shot(page, name: str) -> None:
    """A screenshot of the leave card (below the tasks)."""
    page.locator("#leave").scroll_into_view_if_needed()
    screenshot(page, name)


def days_ahead(n: int) -> str:
    return str(datetime.now(UTC).astimezone(LOCAL).date() + timedelta(days=n))


def request_leave(page, first: str, last: str, reason: str = "") -> str:
    """Fill and send the leave form; the status line said after it."""
    page.fill("#leave-start", first)
    page.fill("#leave-end", last)
    page.fill("#leave-reason", reason)
    page.evaluate("() => { document.querySelector('#leave-status').textContent = ''; }")
    page.click("#leave-submit")
    page.wait_for_function("() => document.querySelector('#leave-status').textContent !== ''")
    return page.inner_text("#leave-status")


def my_leave(page) -> list[tuple[str, str]]:
    return [
        (li.locator("b").inner_text(), li.locator(".leave-state").inner_text())
        for li in page.locator("#leave-list li.leave").all()
    ]


def leave_rows(e2e_engine) -> list[tuple[date, date, str, str]]:
    from api.models import Leave

    with e2e_engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(Leave.start_date, Leave.end_date, Leave.status, Leave.reason).order_by(
                    Leave.id
                )
            )
        ]


def answer_dialogs(page, asked: list[str], answers: list[bool | str]) -> None:
    """Answer the page's confirm and prompt dialogs with `answers` in turn (a prompt's text, or
    whether to accept), noting what each asked."""

    def handle(dialog):
        asked.append(dialog.message)
        answer = answers.pop(0)
        if answer is False:
            dialog.dismiss()
        elif isinstance(answer, str):
            dialog.accept(answer)
        else:
            dialog.accept()

    page.on("dialog", handle)


def test_a_worker_asks_for_leave_a_leader_approves_it_and_the_worker_sees_it_approved(
    worker, leader, e2e_engine
):
    first, last = days_ahead(10), days_ahead(12)
    said = request_leave(worker, first, last, "家中有事")
    assert said == "请假申请已提交，等待网格长或社区管理员审批。"
    assert my_leave(worker) == [(f"{first} 至 {last}（3 天）", "待审批")]
    assert worker.inner_text("#leave-list li.leave .leave-reason") == "事由：家中有事"
    assert worker.inner_text("#leave-list li.leave button") == "撤回申请"
    assert leave_rows(e2e_engine) == [
        (date.fromisoformat(first), date.fromisoformat(last), "requested", "家中有事")
    ]
    shot(worker, "app-leave-requested")

    # The leader sees it waiting, named by its worker, and approves it.
    leader.reload()
    leader.wait_for_selector("body[data-ready='1']")
    assert leader.is_visible("#leave-decide")
    (item,) = leader.locator("#leave-pending li.leave").all()
    from api.models import User

    with e2e_engine.connect() as conn:
        name = conn.scalar(select(User.display_name).where(User.username == "worker01"))
    assert item.locator("b").inner_text() == name
    assert f"{first} 至 {last}（3 天）" in item.inner_text()
    assert "事由：家中有事" in item.inner_text()
    shot(leader, "app-leave-to-decide")
    item.locator("button[data-decision='approve']").click()
    leader.wait_for_function(
        "() => document.querySelector('#leave-decide-status').textContent !== ''"
    )
    assert leader.inner_text("#leave-decide-status").startswith(f"已批准{name}的请假。")
    assert leader.inner_text("#leave-pending") == "暂无待审批的请假"
    assert leave_rows(e2e_engine)[0][2] == "approved"

    # Back in the app, the worker reads the decision; approved leave not begun can be cancelled.
    worker.reload()
    worker.wait_for_selector("body[data-ready='1']")
    assert my_leave(worker) == [(f"{first} 至 {last}（3 天）", "已批准")]
    assert "审批于" in worker.inner_text("#leave-list li.leave .muted")
    assert worker.inner_text("#leave-list li.leave button") == "取消请假"
    shot(worker, "app-leave-approved")


def test_a_refused_request_shows_the_servers_words_and_keeps_the_form(worker, e2e_engine):
    """Days overlapping the worker's own request: the server's 409, said in Chinese with its
    `detail` beneath; nothing stored, the form as typed."""
    request_leave(worker, days_ahead(20), days_ahead(22))
    said = request_leave(worker, days_ahead(21), days_ahead(25), "又一次")
    assert said.startswith("这段时间与您已有的请假（待审批或已批准）重叠，没有提交")
    server = worker.inner_text("#leave-status .server-reason")
    assert "already covers part of this period" in server
    assert worker.locator("#leave-status").get_attribute("class") == "status error"
    assert worker.input_value("#leave-start") == days_ahead(21)
    assert worker.input_value("#leave-reason") == "又一次"
    assert len(leave_rows(e2e_engine)) == 1
    shot(worker, "app-leave-refused")


def test_a_request_the_server_finds_invalid_names_the_field(worker, e2e_engine):
    said = request_leave(worker, days_ahead(30), days_ahead(28))
    assert said.startswith("请假申请不符合要求，没有提交。请检查最后一天。")
    assert "end_date is before start_date" in worker.inner_text("#leave-status .server-reason")
    assert leave_rows(e2e_engine) == []


def test_a_worker_withdraws_a_request_once_they_confirm(worker, e2e_engine):
    day = days_ahead(40)
    request_leave(worker, day, day)
    asked: list[str] = []
    answer_dialogs(worker, asked, [False, True])
    worker.click("#leave-list button.cancel")
    assert asked == [f"撤回 {day}（1 天） 的请假申请？"]
    assert leave_rows(e2e_engine)[0][2] == "requested"  # declined: nothing sent
    worker.click("#leave-list button.cancel")
    worker.wait_for_function(
        "() => document.querySelector('#leave-status').textContent === '请假申请已撤回。'"
    )
    assert leave_rows(e2e_engine)[0][2] == "cancelled"
    assert my_leave(worker) == [(f"{day}（1 天）", "已取消")]
    assert worker.locator("#leave-list button").count() == 0


def test_a_leader_rejects_saying_why_and_never_decides_their_own(worker, leader, e2e_engine):
    request_leave(worker, days_ahead(50), days_ahead(51))
    request_leave(leader, days_ahead(50), days_ahead(50))  # their own: someone else decides
    leader.reload()
    leader.wait_for_selector("body[data-ready='1']")
    assert leader.locator("#leave-pending li.leave").count() == 1  # worker01's only
    assert my_leave(leader) == [(f"{days_ahead(50)}（1 天）", "待审批")]
    asked: list[str] = []
    answer_dialogs(leader, asked, ["周三有防汛检查，请改期"])
    leader.click("#leave-pending button[data-decision='reject']")
    leader.wait_for_function(
        "() => document.querySelector('#leave-decide-status').textContent !== ''"
    )
    assert len(asked) == 1 and asked[0].startswith("不批准")
    assert [row[2] for row in leave_rows(e2e_engine)] == ["rejected", "requested"]
    worker.reload()
    worker.wait_for_selector("body[data-ready='1']")
    assert my_leave(worker)[0][1] == "未批准"
    assert worker.inner_text("#leave-list .leave-note") == "审批意见：周三有防汛检查，请改期"
    assert worker.locator("#leave-list button").count() == 0  # nothing left to withdraw


def test_a_request_sent_again_after_a_lost_answer_asks_for_the_leave_once(worker, e2e_engine):
    """The leave was stored but its answer never came: pressed again, the request was a second
    one, refused as overlapping the first (这段时间与您已有的请假重叠). It goes with the first's
    Idempotency-Key and gets the first answer: sent, once."""
    keys = lose_the_first_answer(worker, "**/api/v1/leaves")
    first, last = days_ahead(70), days_ahead(71)
    # Not said as nothing sent: it was (未能连接服务器，没有提交, before).
    assert request_leave(worker, first, last, "看病").startswith("连接中断，不能确定服务器是否收到")
    assert my_leave(worker) == [(f"{first} 至 {last}（2 天）", "待审批")]  # read again
    said = request_leave(worker, first, last, "看病")
    assert said == "请假申请已提交，等待网格长或社区管理员审批。"
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert len(leave_rows(e2e_engine)) == 1


def test_a_request_sent_again_after_a_lost_answer_and_a_reload_asks_for_the_leave_once(
    worker, e2e_engine
):
    """The key waited in the page only: reloaded after the lost answer (the worker thought the
    app stuck), the same request went with a new key and was refused as overlapping the first.
    The key waits on the phone (apiOnce's pending keys) until an answer comes."""
    keys = lose_the_first_answer(worker, "**/api/v1/leaves")
    first, last = days_ahead(74), days_ahead(75)
    assert request_leave(worker, first, last, "复诊").startswith("连接中断")
    worker.reload()
    worker.wait_for_selector("body[data-ready='1']")
    said = request_leave(worker, first, last, "复诊")
    assert said == "请假申请已提交，等待网格长或社区管理员审批。"
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert len(leave_rows(e2e_engine)) == 1
    # Answered, the key is forgotten: nothing of the action is left on the phone.
    assert worker.evaluate("() => localStorage.getItem('gridwork.pendingKeys')") in (None, "{}")


def test_a_new_request_after_an_answered_one_goes_with_a_new_key(worker, e2e_engine):
    """Withdrawn, the same days asked for again are a new request: a new key, not the first
    request's answer replayed."""
    sent: list[str | None] = []
    worker.on(
        "request",
        lambda r: (
            r.method == "POST"
            and r.url.endswith("/api/v1/leaves")
            and sent.append(r.headers.get("idempotency-key"))
        ),
    )
    day = days_ahead(80)
    request_leave(worker, day, day)
    answer_dialogs(worker, [], [True])
    worker.click("#leave-list button.cancel")
    worker.wait_for_function(
        "() => document.querySelector('#leave-status').textContent === '请假申请已撤回。'"
    )
    assert request_leave(worker, day, day).startswith("请假申请已提交")
    assert len(sent) == 2 and sent[0] and sent[0] != sent[1]
    assert [row[2] for row in leave_rows(e2e_engine)] == ["cancelled", "requested"]


def test_offline_the_leave_card_says_it_needs_the_network(context, worker, e2e_engine):
    context.set_offline(True)
    worker.wait_for_function("() => !navigator.onLine")
    worker.wait_for_selector("#leave-offline:not([hidden])")
    assert worker.inner_text("#leave-offline").startswith("离线：请假需要联网")
    assert not worker.is_visible("#leave-form")
    context.set_offline(False)
    worker.wait_for_selector("#leave-form", state="visible")


def test_a_community_admin_decides_but_asks_no_leave(context, worker, browser, live_server):
    request_leave(worker, days_ahead(60), days_ahead(60))
    admin_context = browser.new_context(base_url=live_server)
    try:
        admin = open_app(admin_context, "admin01")
        assert admin.is_visible("#leave-decide")
        assert not admin.is_visible("#leave-mine")
        assert admin.locator("#leave-pending li.leave").count() == 1
        assert admin.errors == []
    finally:
        admin_context.close()


def test_in_english_a_refusal_is_said_in_the_servers_words(context, e2e_engine):
    page = open_app(context, "worker01", "/app?lang=en")
    assert page.inner_text("#leave h2") == "Leave"
    request_leave(page, days_ahead(70), days_ahead(71))
    assert my_leave(page) == [
        (f"{days_ahead(70)} to {days_ahead(71)} (2 days)", "waiting for a decision")
    ]
    said = request_leave(page, days_ahead(71), days_ahead(72))
    assert said.startswith("Leave ") and said.endswith("already covers part of this period.")
    assert page.locator("#leave-status .server-reason").count() == 0
    assert page.errors == []


def test_a_worker_back_early_ends_leave_under_way_from_today(context, e2e_engine):
    """Leave approved and begun (its first days a record, so not cancelled): today's post says
    the worker is on leave; back at work, they end it early, its last day yesterday, once they
    confirm, and today's post is the roster's again."""
    from api.models import Leave, User

    with e2e_engine.begin() as conn:
        worker_id = conn.scalar(select(User.id).where(User.username == "worker01"))
        leader_id = conn.scalar(select(User.id).where(User.username == "leader01"))
        conn.execute(
            Leave.__table__.insert().values(
                worker_id=worker_id, start_date=days_ahead(-2), end_date=days_ahead(3),
                reason="病假", status="approved", decided_by_id=leader_id,
                decided_at=datetime.now(UTC) - timedelta(days=3),
            )
        )  # fmt: skip
    page = open_app(context, "worker01")
    page.wait_for_function("() => document.querySelector('#post .on-leave') !== null")
    assert page.inner_text("#post .on-leave") == f"今天请假（已批准，至 {days_ahead(3)}）"
    asked: list[str] = []
    answer_dialogs(page, asked, [True])
    page.locator("#leave-list button.end").click()
    said = "已提前销假：今天起照常到岗。"
    page.wait_for_function(
        f"() => document.querySelector('#leave-status').textContent === '{said}'"
    )
    days = f"{days_ahead(-2)} 至 {days_ahead(3)}（6 天）"
    assert asked == [f"提前结束 {days} 的请假？今天起照常到岗，昨天及以前的假期保留。"]
    assert leave_rows(e2e_engine) == [
        (date.fromisoformat(days_ahead(-2)), date.fromisoformat(days_ahead(-1)), "approved", "病假")
    ]
    assert my_leave(page) == [(f"{days_ahead(-2)} 至 {days_ahead(-1)}（2 天）", "已批准")]
    assert page.locator("#leave-list button").count() == 0  # over: nothing left to do
    page.wait_for_function("() => document.querySelector('#post .on-leave') === null")
    assert page.errors == []


def approved_leave(e2e_engine, username: str, first: int, last: int, reason: str = "") -> int:
    """Approved leave of `username` from `first` to `last` days from today (leader01 decided)."""
    from api.models import Leave, User

    with e2e_engine.begin() as conn:
        worker_id = conn.scalar(select(User.id).where(User.username == username))
        leader_id = conn.scalar(select(User.id).where(User.username == "leader01"))
        return conn.scalar(
            Leave.__table__.insert()
            .values(
                worker_id=worker_id, start_date=days_ahead(first), end_date=days_ahead(last),
                reason=reason, status="approved", decided_by_id=leader_id,
                decided_at=datetime.now(UTC) - timedelta(days=5),
            )
            .returning(Leave.id)
        )  # fmt: skip


def current_leave(page) -> list[tuple[str, str, str]]:
    """The leader's list of leave under way or upcoming: name, days, state."""
    return [
        (
            li.locator("b").inner_text(),
            li.locator(".leave-days").inner_text(),
            li.locator(".leave-state").inner_text(),
        )
        for li in page.locator("#leave-current li.leave").all()
    ]


def test_a_leader_ends_a_workers_leave_under_way_early_and_cancels_leave_not_begun(
    leader, e2e_engine
):
    """The leader could end a worker's leave early only through the API: the leave card listed
    the requests to decide, nothing of the leave under way. It now lists the community's
    approved leave under way or to come: leave under way is ended early (its last day
    yesterday) and leave not begun cancelled, each once the leader confirms."""
    from api.models import User

    with e2e_engine.connect() as conn:
        name = conn.scalar(select(User.display_name).where(User.username == "worker01"))
    approved_leave(e2e_engine, "worker01", -2, 3, "病假")
    approved_leave(e2e_engine, "worker01", 10, 12)
    approved_leave(e2e_engine, "leader01", 20, 20)  # the leader's own: in "my leave"
    leader.reload()
    leader.wait_for_selector("body[data-ready='1']")
    under_way = f"{days_ahead(-2)} 至 {days_ahead(3)}（6 天）"
    to_come = f"{days_ahead(10)} 至 {days_ahead(12)}（3 天）"
    assert current_leave(leader) == [(name, under_way, "休假中"), (name, to_come, "未开始")]
    buttons = leader.locator("#leave-current li.leave button")
    assert buttons.all_inner_texts() == ["提前结束", "取消请假"]
    shot(leader, "app-leave-under-way-leader")

    asked: list[str] = []
    answer_dialogs(leader, asked, [False, True, True])
    leader.click("#leave-current button.end")
    assert asked == [f"提前结束{name} {under_way} 的请假？今天起照常到岗，昨天及以前的假期保留。"]
    assert leave_rows(e2e_engine)[0][1] == date.fromisoformat(days_ahead(3))  # declined
    leader.click("#leave-current button.end")
    leader.wait_for_function(
        "() => document.querySelector('#leave-current-status').textContent !== ''"
    )
    assert leader.inner_text("#leave-current-status") == f"已提前结束{name}的请假：今天起照常到岗。"
    assert leave_rows(e2e_engine)[0] == (
        date.fromisoformat(days_ahead(-2)), date.fromisoformat(days_ahead(-1)), "approved", "病假"
    )  # fmt: skip
    assert current_leave(leader) == [(name, to_come, "未开始")]  # over: no longer listed

    leader.evaluate("() => { document.querySelector('#leave-current-status').textContent = ''; }")
    leader.click("#leave-current button.cancel")
    leader.wait_for_function(
        "() => document.querySelector('#leave-current-status').textContent !== ''"
    )
    assert asked[2] == f"取消{name} {to_come} 的请假？取消后这些天须照常到岗。"
    assert leader.inner_text("#leave-current-status") == f"已取消{name}的请假。"
    assert leave_rows(e2e_engine)[1][2] == "cancelled"
    assert leader.inner_text("#leave-current") == "暂无休假中或即将开始的请假"


def test_a_leaders_end_refused_is_said_in_chinese_with_the_servers_words(leader, e2e_engine):
    """The worker came back and ended the leave themself while the leader's list stood open:
    the leader's end is refused (409), said in Chinese with the server's words beneath."""
    from api.models import Leave

    leave = approved_leave(e2e_engine, "worker01", -3, 2)
    leader.reload()
    leader.wait_for_selector("body[data-ready='1']")
    with e2e_engine.begin() as conn:
        conn.execute(
            Leave.__table__.update()
            .where(Leave.id == leave)
            .values(end_date=days_ahead(-1), approved_end_date=days_ahead(2))
        )
    answer_dialogs(leader, [], [True])
    leader.click("#leave-current button.end")
    leader.wait_for_function(
        "() => document.querySelector('#leave-current-status').textContent !== ''"
    )
    said = leader.inner_text("#leave-current-status .why")
    assert said == "这条请假已不能提前结束：未获批准、已取消或已经休完。"
    assert "is over" in leader.inner_text("#leave-current-status .server-reason")
    assert leader.locator("#leave-current-status").get_attribute("class") == "status error"
    assert current_leave(leader) == []  # the list shows what the server now holds


def test_an_admin_ends_a_workers_leave_under_way_early(context, browser, live_server, e2e_engine):
    approved_leave(e2e_engine, "worker01", -1, 4)
    admin_context = browser.new_context(base_url=live_server)
    try:
        admin = open_app(admin_context, "admin01")
        assert admin.locator("#leave-current li.leave").count() == 1
        answer_dialogs(admin, [], [True])
        admin.click("#leave-current button.end")
        admin.wait_for_function(
            "() => document.querySelector('#leave-current-status').textContent !== ''"
        )
        assert leave_rows(e2e_engine)[0][1] == date.fromisoformat(days_ahead(-1))
        assert admin.errors == []
    finally:
        admin_context.close()


def test_at_start_the_app_reads_the_workers_leave_once(context, e2e_engine):
    """Today's post (on leave today?) and the leave card each read the worker's leave: two
    requests at every start where one answers both."""
    approved_leave(e2e_engine, "worker01", -1, 1)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/v1/leaves" in r.url else None)
    page.goto("/app")
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    assert [url.split("/api/v1", 1)[1] for url in asked] == ["/leaves?worker=me"]
    # The one read says both: on leave today, and the leave in the card.
    assert page.inner_text("#post .on-leave") == f"今天请假（已批准，至 {days_ahead(1)}）"
    assert my_leave(page) == [(f"{days_ahead(-1)} 至 {days_ahead(1)}（3 天）", "已批准")]


def test_at_start_a_leader_reads_each_list_of_leave_once(leader):
    asked: list[str] = []
    leader.on("request", lambda r: asked.append(r.url) if "/api/v1/leaves" in r.url else None)
    leader.reload()
    leader.wait_for_selector("body[data-ready='1']")
    paths = sorted(url.split("/api/v1", 1)[1] for url in asked)
    # The approved leave asked for is that under way or to come, not every year's.
    assert [re.sub(r"ends_from=\d{4}-\d{2}-\d{2}", "ends_from=DAY", p) for p in paths] == [
        "/leaves?status=approved&ends_from=DAY",
        "/leaves?status=requested",
        "/leaves?worker=me",
    ]


def test_leave_a_leader_approves_is_listed_at_once_under_leave_to_come(worker, leader, e2e_engine):
    """Approved, a request left the requests to decide but "leave under way or to come" was not
    read again: it said 暂无 until a reload, the leave just approved nowhere to be cancelled."""
    from api.models import User

    with e2e_engine.connect() as conn:
        name = conn.scalar(select(User.display_name).where(User.username == "worker01"))
    first, last = days_ahead(10), days_ahead(11)
    request_leave(worker, first, last, "家中有事")
    leader.reload()
    leader.wait_for_selector("body[data-ready='1']")
    assert leader.inner_text("#leave-current") == "暂无休假中或即将开始的请假"
    leader.click("#leave-pending button[data-decision='approve']")
    leader.wait_for_function(
        "() => document.querySelector('#leave-decide-status').textContent !== ''"
    )
    assert leader.inner_text("#leave-pending") == "暂无待审批的请假"
    assert current_leave(leader) == [(name, f"{first} 至 {last}（2 天）", "未开始")]


def test_from_the_keyboard_a_leave_decided_leaves_the_focus_on_what_came_of_it(worker, leader):
    """The decision's buttons are switched off while it is sent, and its request leaves the
    list: the focus fell to the page's top, the keyboard's (a screen reader's) place lost."""
    first, last = days_ahead(12), days_ahead(12)
    request_leave(worker, first, last, "体检")
    leader.reload()
    leader.wait_for_selector("body[data-ready='1']")
    leader.focus("#leave-pending button[data-decision='approve']")
    leader.keyboard.press("Enter")
    leader.wait_for_function(
        "() => document.querySelector('#leave-decide-status').textContent !== ''"
    )
    assert leader.evaluate("() => document.activeElement.id") == "leave-decide-status"
