"""The app's account card lists the devices that receive notifications ("接收通知的设备").

The API listed them (`GET /devices`, with `active`, `retired` and the send history), but the app
did not: a worker could not see which of their phones get pushes, remove an old one, nor see that
this one gets nothing (the push worker retired it, the browser blocks notifications).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_account import own_account
from tests.e2e.test_app import FAKE_PUSH

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def push_configured(context, live_app):
    """Web Push configured on the server, this browser's subscription faked (headless Chromium
    has no push service), notifications allowed."""
    context.add_init_script(FAKE_PUSH)
    context.grant_permissions(["notifications"])
    live_app.config["GRIDWORK_VAPID_PUBLIC_KEY"] = "B" + "A" * 86
    yield
    live_app.config["GRIDWORK_VAPID_PUBLIC_KEY"] = None


def _token(page) -> str:
    return page.evaluate("() => localStorage.getItem('gridwork.token')")


def another_phone(context, page, token: str = "fcm-e2e", label: str | None = "华为 Mate 40") -> int:
    """An Android phone of the same worker, registered through the API with their token."""
    body = {"platform": "android", "token": f"{token}-{_token(page)[-12:]}"}
    if label:
        body["label"] = label
    answer = context.request.post(
        "/api/v1/devices", data=body, headers={"Authorization": f"Bearer {_token(page)}"}
    )
    assert answer.status == 201, answer.text()
    return answer.json()["id"]


def this_browser_registered(page) -> int:
    page.click("#push")
    expect(page.locator("#push-status")).to_have_text("推送已开启")
    return int(page.evaluate("() => localStorage.getItem('gridwork.device')"))


def retire(e2e_engine, device_id: int, *, days: int = 8, failures: int = 12) -> None:
    """What the push worker's mark writes when it retires a device as unreachable."""
    from api.models import Device

    now = datetime.now(UTC)
    with Session(e2e_engine) as session:
        session.execute(
            update(Device)
            .where(Device.id == device_id)
            .values(
                active=False,
                deactivated_at=now,
                deactivation_reason="unreachable: no push went since ..., 12 sends failed",
                failing_since=now - timedelta(days=days),
                consecutive_failures=failures,
            )
        )
        session.commit()


def test_the_card_lists_the_workers_devices_this_one_marked(context, page, push_configured):
    own_account(context, page)
    phone = another_phone(context, page)
    here = this_browser_registered(page)
    devices = page.locator("#devices li.device")
    expect(devices).to_have_count(2)
    mine = page.locator(f"#devices li[data-id='{here}']")
    expect(mine.locator(".this-one")).to_have_text("本机")
    expect(mine).to_contain_text("浏览器「Chrome · Linux」")
    expect(mine).to_contain_text("正在接收推送")
    other = page.locator(f"#devices li[data-id='{phone}']")
    expect(other).to_contain_text("安卓手机「华为 Mate 40」")
    expect(other).to_contain_text("尚未收到过推送")
    assert other.locator(".this-one").count() == 0
    expect(page.locator("#this-device")).to_have_text("本机：正在接收推送。")
    assert page.locator("#device-register").is_hidden()


def test_a_worker_removes_another_device_after_confirming(
    context, page, push_configured, e2e_engine
):
    from api.models import Device

    own_account(context, page)
    phone = another_phone(context, page)
    this_browser_registered(page)
    other = page.locator(f"#devices li[data-id='{phone}']")
    expect(other).to_be_visible()
    sent: list[str] = []
    page.on("request", lambda r: r.method == "DELETE" and sent.append(r.url))

    page.once("dialog", lambda dialog: dialog.dismiss())
    other.locator("button.remove").click()
    assert sent == [] and other.is_visible()  # declined: nothing removed

    messages: list[str] = []

    def accept(dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    other.locator("button.remove").click()
    expect(other).to_have_count(0)
    assert "安卓手机「华为 Mate 40」" in messages[0]
    expect(page.locator("#devices-status")).to_have_text("已移除安卓手机「华为 Mate 40」。")
    expect(page.locator("#devices li.device")).to_have_count(1)
    with e2e_engine.connect() as conn:
        assert conn.scalar(select(Device.active).where(Device.id == phone)) is False


def test_a_retired_phone_is_shown_as_getting_nothing_with_what_to_do(context, page, e2e_engine):
    own_account(context, page)
    phone = another_phone(context, page)
    retire(e2e_engine, phone)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    item = page.locator(f"#devices li[data-id='{phone}']")
    expect(item).to_have_class("device retired")
    expect(item).to_contain_text("已停止推送")
    expect(item).to_contain_text("连续 12 次发送失败")
    expect(item).to_contain_text("在这台设备上打开网格员应用并重新登录")
    counted = "有 1 台设备已停止接收推送，见下面的说明。"
    expect(page.locator("#devices-status")).to_have_text(counted)


def test_this_browser_retired_is_registered_again_as_the_app_opens(
    context, page, push_configured, e2e_engine
):
    """The app registers this browser's subscription at every opening: retired (its push service
    failing for days), it is back on the list as receiving, its history fresh."""
    own_account(context, page)
    here = this_browser_registered(page)
    retire(e2e_engine, here)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    mine = page.locator(f"#devices li[data-id='{here}']")
    expect(mine).to_contain_text("正在接收推送")
    expect(page.locator("#this-device")).to_have_text("本机：正在接收推送。")


def drop_unregistered(e2e_engine, device_id: int) -> None:
    """What the push worker's mark writes when the push service answers 410 Gone."""
    from api.models import Device

    with Session(e2e_engine) as session:
        session.execute(
            update(Device)
            .where(Device.id == device_id)
            .values(
                active=False,
                deactivated_at=datetime.now(UTC),
                deactivation_reason="unregistered: 410: push subscription has unsubscribed",
            )
        )
        session.commit()


# A push service's new subscription after the browser lets its old one go: a new endpoint (the
# shared fake hands the same one back within a page).
FRESH_AFTER_UNSUBSCRIBE = """(() => {
  const subscribe = PushManager.prototype.subscribe;
  PushManager.prototype.subscribe = async function (...args) {
    const made = await subscribe.apply(this, args);
    if (sessionStorage.getItem("e2e.unsubscribed") === made.endpoint) {
      made.endpoint = "https://push.example.test/e2e/" + crypto.randomUUID();
      localStorage.setItem("e2e.endpoint", made.endpoint);
    }
    return made;
  };
})();"""


def test_a_phone_dropped_by_its_push_service_is_shown_with_what_to_do(context, page, e2e_engine):
    own_account(context, page)
    phone = another_phone(context, page)
    drop_unregistered(e2e_engine, phone)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    item = page.locator(f"#devices li[data-id='{phone}']")
    expect(item).to_have_class("device retired")
    expect(item).to_contain_text("推送登记已失效")
    expect(item).to_contain_text("在这台设备上打开网格员应用")
    assert "连续" not in item.inner_text()


def test_this_browser_dropped_by_its_push_service_subscribes_afresh_as_the_app_opens(
    context, page, push_configured, e2e_engine
):
    """Its subscription gone (a 410), registering it again at the opening (as the app did)
    sent to nothing: the next push failed, the device was dropped again, its worker told again.
    The app takes a new subscription, registers it, and the dead one goes from the list."""
    context.add_init_script(FRESH_AFTER_UNSUBSCRIBE)
    own_account(context, page)
    here = this_browser_registered(page)
    old_endpoint = page.evaluate("() => localStorage.getItem('e2e.endpoint')")
    drop_unregistered(e2e_engine, here)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#this-device")).to_have_text("本机：正在接收推送。")
    now_here = int(page.evaluate("() => localStorage.getItem('gridwork.device')"))
    assert now_here != here
    assert page.evaluate("() => localStorage.getItem('e2e.endpoint')") != old_endpoint
    expect(page.locator(f"#devices li[data-id='{now_here}']")).to_contain_text("正在接收推送")
    expect(page.locator(f"#devices li[data-id='{here}']")).to_have_count(0)


def test_this_browser_dropped_by_its_push_service_is_enabled_again_afresh(
    context, page, push_configured, e2e_engine
):
    """Shown as dropped (the list read before the opening registered it), "重新开启推送" takes a
    new subscription, not the dead one again."""
    context.add_init_script(FRESH_AFTER_UNSUBSCRIBE)
    own_account(context, page)
    here = this_browser_registered(page)
    drop_unregistered(e2e_engine, here)
    page.route(
        "**/api/v1/devices",
        lambda route: route.abort() if route.request.method == "POST" else route.continue_(),
    )
    page.reload()  # the opening's registration does not get through
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#this-device")).to_have_text(
        "本机：推送登记已失效，已停止推送。点下方按钮重新开启。"
    )
    page.unroute("**/api/v1/devices")
    page.click("#device-register")
    expect(page.locator("#this-device")).to_have_text("本机：正在接收推送。")
    assert int(page.evaluate("() => localStorage.getItem('gridwork.device')")) != here
    expect(page.locator(f"#devices li[data-id='{here}']")).to_have_count(0)


def test_this_browser_not_registered_offers_to_register_it(context, page, push_configured):
    own_account(context, page)
    expect(page.locator("#this-device")).to_have_text("本机：尚未开启推送，收不到任务通知。")
    expect(page.locator("#devices-status")).to_contain_text("还没有设备登记接收推送")
    page.click("#device-register")
    expect(page.locator("#this-device")).to_have_text("本机：正在接收推送。")
    expect(page.locator("#devices li.device .this-one")).to_have_count(1)
    assert page.locator("#device-register").is_hidden()


def test_notifications_blocked_in_the_browser_are_said(context, page, live_app):
    context.add_init_script(FAKE_PUSH)
    context.add_init_script(
        "Object.defineProperty(Notification, 'permission', { get: () => 'denied' });"
    )
    live_app.config["GRIDWORK_VAPID_PUBLIC_KEY"] = "B" + "A" * 86
    try:
        own_account(context, page)
        expect(page.locator("#this-device")).to_contain_text("浏览器已禁止本网站的通知")
        assert page.locator("#device-register").is_hidden()
    finally:
        live_app.config["GRIDWORK_VAPID_PUBLIC_KEY"] = None


def test_quiet_hours_are_set_and_cleared_from_the_card(context, page):
    own_account(context, page)
    expect(page.locator("#quiet-status")).to_have_text("未设免打扰时段。")
    page.fill("#quiet-start", "22:00")
    page.fill("#quiet-end", "07:00")
    page.click("#quiet-save")
    expect(page.locator("#quiet-status")).to_have_text(
        "已保存：每天 22:00 至 07:00 普通通知暂缓推送。"
    )
    headers = {"Authorization": f"Bearer {_token(page)}"}
    stored = page.request.get("/api/v1/devices/quiet-hours", headers=headers).json()
    assert (stored["quiet_start"], stored["quiet_end"]) == ("22:00:00", "07:00:00")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#quiet-start")).to_have_value("22:00")

    page.click("#quiet-clear")
    expect(page.locator("#quiet-status")).to_have_text("已取消免打扰时段。")
    stored = page.request.get("/api/v1/devices/quiet-hours", headers=headers).json()
    assert stored["quiet_start"] is None


def test_quiet_hours_refused_by_the_server_are_said_in_chinese_with_its_detail(context, page):
    own_account(context, page)
    page.fill("#quiet-start", "22:00")
    page.fill("#quiet-end", "22:00")
    page.click("#quiet-save")
    status = page.locator("#quiet-status")
    expect(status.locator(".why")).to_have_text("开始和结束不能是同一时间。")
    expect(status.locator(".server-reason")).to_contain_text("Quiet hours end when they start")


def test_the_device_card_fits_a_phone(context, page, push_configured, e2e_engine):
    """Every control at least 40 px tall and within the phone's width."""
    page.set_viewport_size(PHONE)
    own_account(context, page)
    retire(e2e_engine, another_phone(context, page))
    page.click("#device-register")
    expect(page.locator("#devices li.device")).to_have_count(2)
    retire_button = page.locator("#devices button.remove").first
    for control in [
        retire_button,
        *map(page.locator, ("#quiet-start", "#quiet-end", "#quiet-save", "#quiet-clear")),
    ]:
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        assert box["height"] >= 40 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.locator("#account").scroll_into_view_if_needed()
    screenshot(page, "app-account-devices")


def test_the_next_worker_signing_in_on_this_phone_never_sees_the_last_ones_devices(context, page):
    """The sign-in ended elsewhere and another worker signs in on the page left open: the card
    kept the last worker's phones, named, until the list was read again, and for good when
    that read failed."""
    from fixtures.people import DEMO_PASSWORD

    own_account(context, page)
    phone = another_phone(context, page)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(f"#devices li[data-id='{phone}']")).to_be_visible()
    answer = context.request.post(
        "/api/v1/auth/logout-all", headers={"Authorization": f"Bearer {_token(page)}"}
    )
    assert answer.ok, answer.text()
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    page.locator("#signin").wait_for(state="visible")
    page.route(
        "**/api/v1/devices",
        lambda route: (
            route.fulfill(status=503, json={"title": "Service unavailable"})
            if route.request.method == "GET"
            else route.continue_()
        ),
    )
    sign_in(page, "worker02", DEMO_PASSWORD)
    page.wait_for_selector("#home:not([hidden])")
    expect(page.locator("#devices-status")).to_contain_text("设备列表暂不可用")
    expect(page.locator("#devices")).not_to_contain_text("华为 Mate 40")
    expect(page.locator("#devices li.device")).to_have_count(0)


def test_a_list_that_could_not_be_read_online_is_not_said_to_be_offline(context, page):
    """A network failure with the phone online (the server unreachable, a lift) was said as
    "离线：需要联网": the worker checked a connection that was there."""
    own_account(context, page)
    page.route(
        "**/api/v1/devices",
        lambda route: route.abort() if route.request.method == "GET" else route.continue_(),
    )
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#devices-status .why")).to_have_text("设备列表暂不可用，请稍后再试。")


def test_a_device_removed_goes_from_the_list_though_the_list_cannot_be_read_again(context, page):
    """The removal went through, the list read after it did not: the device stayed listed, with
    its Remove button, under "已移除..." (a second tap said it was gone)."""
    own_account(context, page)
    phone = another_phone(context, page)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    other = page.locator(f"#devices li[data-id='{phone}']")
    expect(other).to_be_visible()
    removed: list[str] = []

    def devices(route):
        if route.request.method == "DELETE":
            removed.append(route.request.url)
            return route.continue_()
        if removed:  # the list read after the removal
            return route.fulfill(status=503, json={"title": "Service unavailable"})
        return route.continue_()

    page.route("**/api/v1/devices**", devices)
    page.once("dialog", lambda dialog: dialog.accept())
    other.locator("button.remove").click()
    expect(page.locator("#devices-status")).to_contain_text("已移除安卓手机「华为 Mate 40」")
    expect(other).to_have_count(0)
