"""A B-post worker's phone, from the first sign-in to the last: its sign-in ended by an admin or
on another phone while it is out on the rounds, signing out with no signal, a task's push.

On a phone-sized, touch browser (390 x 844), as the worker holds it.
"""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e import test_inbox
from tests.e2e.conftest import (
    app_service_worker,
    claims,
    expire_access_token,
    screenshot,
    sign_in,
)
from tests.e2e.test_account import NEWER_PASSWORD, own_account
from tests.e2e.test_account_devices import (  # noqa: F401 (a fixture)
    push_configured,
    this_browser_registered,
)
from tests.e2e.test_app import (
    HERE,
    queue_visit,
    queued_visits,
    record_offline,
    visited_household,
)
from tests.e2e.test_own_password import OFFICE_PASSWORD, OWN_PASSWORD, opened_by_the_office

tell, task_of, read_at = test_inbox.tell, test_inbox.task_of, test_inbox.read_at  # fixtures

PHONE = {"width": 390, "height": 844}


@pytest.fixture()
def context(browser, live_server):
    """A phone: its screen, touch, and the place the worker stands."""
    context = browser.new_context(
        base_url=live_server, viewport=PHONE, has_touch=True, is_mobile=True
    )
    context.set_default_timeout(20_000)
    context.grant_permissions(["geolocation"])
    context.set_geolocation(HERE)
    yield context
    context.close()


def call(live_server: str, method: str, path: str, token: str, body: dict | None = None):
    """The API called from elsewhere than the phone (the office's PC, the worker's other
    phone), whatever the phone's network; (status, JSON answer)."""
    import urllib.error

    request = urllib.request.Request(
        live_server + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")


def token_of(live_server: str, username: str, password: str = DEMO_PASSWORD) -> str:
    request = urllib.request.Request(
        live_server + "/api/v1/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())["access_token"]


def user_id(e2e_engine, username: str) -> int:
    from api.models import User

    with Session(e2e_engine) as session:
        return session.scalar(select(User.id).where(User.username == username))


def out_on_the_rounds(context, page, e2e_engine) -> tuple[str, str]:
    """A worker who set their own password, a visit recorded with no signal and waiting on the
    phone; (username, the queued visit's id)."""
    username = own_account(context, page)
    record_offline(context, page, visited_household(e2e_engine))
    (queued,) = queued_visits(page)
    return username, queued["id"]


def back_in_signal(context, page) -> str:
    """The phone finds the network again and syncs: what its sign-in form then says."""
    context.set_offline(False)
    page.locator("#signin").wait_for(state="visible")
    return page.inner_text("#signin-error")


# --- a sign-in ended while out on the rounds ---------------------------------------------------
def test_a_password_reset_by_the_admin_is_said_and_the_new_one_signs_in_and_syncs(
    context, page, live_server, e2e_engine
):
    """Told "登录已过期" (expired), the worker signed in with the password they knew, read that
    it was wrong, and tried again until the sign-in throttle locked them out."""
    from api.models import Visit

    username, visit = out_on_the_rounds(context, page, e2e_engine)
    admin = token_of(live_server, "admin01")
    worker = user_id(e2e_engine, username)
    status, _ = call(
        live_server,
        "POST",
        f"/api/v1/users/{worker}/password",
        admin,
        {"new_password": "office-chose-2"},
    )
    assert status == 204

    said = back_in_signal(context, page)
    screenshot(page, "phone-password-reset-by-admin")
    assert said == (
        "管理员重置了您的密码，本机已退出登录。请用管理员告诉您的新密码登录。"
        "未同步的走访记录仍保存在本机，登录后自动同步。"
    )
    assert [r["id"] for r in queued_visits(page)] == [visit]

    page.evaluate("() => { document.body.dataset.ready = ''; }")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "office-chose-2")
    page.click("#signin button[type=submit]")
    form = page.locator("#own-password")
    form.wait_for(state="visible")
    form.locator("input[name=next]").fill(NEWER_PASSWORD)
    form.locator("input[name=again]").fill(NEWER_PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#queue-count")).to_have_text("0")
    with Session(e2e_engine) as session:
        assert session.scalar(select(Visit.worker_id).where(Visit.id == uuid.UUID(visit))) == worker


def test_an_account_switched_off_says_so_and_how_the_visits_on_the_phone_get_sent(
    context, page, live_server, e2e_engine
):
    """Told "登录已过期" and that the visits stay on the phone to sync once signed in again, a
    worker who had left could never sign in, nor learn why; the visit waited for them."""
    username, visit = out_on_the_rounds(context, page, e2e_engine)
    admin = token_of(live_server, "admin01")
    worker = user_id(e2e_engine, username)
    status, _ = call(live_server, "PATCH", f"/api/v1/users/{worker}", admin, {"active": False})
    assert status == 200

    back_in_signal(context, page)
    # The visits left are counted on the phone (IndexedDB) after the first words are said.
    expect(page.locator("#signin-error")).to_have_text(
        "您的账号已被管理员停用，本机已退出登录，不能再用这个账号登录。"
        "本机还有 1 条您未同步的走访记录：请不要清除应用数据，把手机交给社区管理员或网格长，"
        "由其在本机登录后代为提交。"
    )
    screenshot(page, "phone-switched-off")
    assert [r["id"] for r in queued_visits(page)] == [visit]


def test_a_password_changed_on_the_other_phone_is_said_on_this_one(
    context, page, live_server, e2e_engine
):
    username, visit = out_on_the_rounds(context, page, e2e_engine)
    other = token_of(live_server, username, OWN_PASSWORD)
    status, _ = call(
        live_server,
        "POST",
        "/api/v1/auth/password",
        other,
        {"current_password": OWN_PASSWORD, "new_password": NEWER_PASSWORD},
    )
    assert status == 200

    assert back_in_signal(context, page) == (
        "您的密码已在另一台设备上修改，本机已退出登录。请用新密码登录。"
        "未同步的走访记录仍保存在本机，登录后自动同步。"
    )
    assert [r["id"] for r in queued_visits(page)] == [visit]


def test_a_sign_in_ended_while_the_service_worker_synced_is_said_as_it_ended(
    context, page, live_server, e2e_engine
):
    """The service worker syncs with the app in the background (Background Sync): it was told
    why the sign-in ended and forgot the tokens; the page, finding none, said it had expired."""
    username = own_account(context, page)
    queue_visit(page, visited_household(e2e_engine))
    admin = token_of(live_server, "admin01")
    worker = user_id(e2e_engine, username)
    status, _ = call(live_server, "PATCH", f"/api/v1/users/{worker}", admin, {"active": False})
    assert status == 200

    cdp, registration, origin = app_service_worker(context, page)
    cdp.send(
        "ServiceWorker.dispatchSyncEvent",
        {"origin": origin, "registrationId": registration, "tag": "visits", "lastChance": False},
    )
    page.wait_for_function(
        "async () => (await (await import('/web/queue.js')).getMeta('token')) === null"
    )
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    page.locator("#signin").wait_for(state="visible")
    assert page.inner_text("#signin-error").startswith("您的账号已被管理员停用")


# --- signing out with no signal --------------------------------------------------------------
def wait_until(check, tries: int = 100, page=None) -> None:
    for _ in range(tries):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError("never came true")


def session_ended_as(e2e_engine, sid: str) -> str | None:
    from api.models import AuthSession

    with Session(e2e_engine) as session:
        return session.scalar(select(AuthSession.revoked_reason).where(AuthSession.id == sid))


@pytest.mark.parametrize("expired", [False, True], ids=["token live", "token expired meanwhile"])
def test_signed_out_with_no_signal_the_phone_is_signed_out_on_the_server_once_back(
    context,
    page,
    push_configured,  # noqa: F811
    live_app,
    e2e_engine,
    expired,
):
    """Signed out in a basement, the phone forgot its tokens but the server never heard: the
    sign-in stayed live for its 30 days and the phone kept getting the worker's pushes (a task's
    title on the lock screen of a phone handed on), listed on their other phone as getting them.
    An access token that expired meanwhile (an hour's life) is exchanged for one to sign out."""
    from api.models import Delivery, Device
    from api.services.notifications import notify

    username = own_account(context, page)
    device = this_browser_registered(page)
    sid = claims(page.evaluate("() => localStorage.getItem('gridwork.token')"))["sid"]
    if expired:
        expire_access_token(live_app, page)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    page.click("#signout")
    page.locator("#signin").wait_for(state="visible")
    assert page.evaluate("() => localStorage.getItem('gridwork.token')") is None
    assert session_ended_as(e2e_engine, sid) is None  # the server has not heard yet

    context.set_offline(False)  # back in signal, the sign-out goes
    wait_until(lambda: session_ended_as(e2e_engine, sid) == "logout", page=page)
    with Session(e2e_engine) as session:
        row = session.get(Device, device)
        assert not row.active and row.deactivation_reason == "signed out"
        (told,) = notify(session, [user_id(e2e_engine, username)], "task_dispatched", "新任务")
        session.commit()
        pushed = select(Delivery).where(Delivery.notification_id == told.id)
        assert session.scalars(pushed).all() == []
    # Sent once: nothing is left to send at the next opening.
    sent: list[str] = []
    page.on("request", lambda r: "/auth/" in r.url and sent.append(r.url))
    page.reload()
    page.locator("#signin").wait_for(state="visible")
    page.wait_for_timeout(500)
    assert sent == []
    assert page.evaluate("() => localStorage.getItem('gridwork.signOuts')") is None


# A task's push as the push worker sends it: its title names the household, and a resident.
ADDRESS = "幸福里3号楼2单元：独居老人摔倒，请上门查看"


def app_worker(context):
    """The app's service worker, watched: what it shows (`self.shown`: each notification's title,
    body and data, as it asked the browser) and whether it let go of the browser's push
    subscription (`self.letGo`; the subscription faked in it: headless Chromium has none)."""
    (worker,) = [w for w in context.service_workers if "/app/sw.js" in w.url]
    worker.evaluate(
        """() => {
          self.shown = [];
          const show = ServiceWorkerRegistration.prototype.showNotification;
          ServiceWorkerRegistration.prototype.showNotification = function (title, options = {}) {
            self.shown.push({ title, body: options.body ?? null, data: options.data ?? null });
            return show.call(this, title, options);
          };
          self.letGo = false;
          const held = { endpoint: "https://push.example.test/e2e/sw",
                         async unsubscribe() { self.letGo = true; return true; } };
          PushManager.prototype.getSubscription = async () => (self.letGo ? null : held);
        }"""
    )
    return worker


def shown_by(worker, page) -> list[dict]:
    """The notifications the worker showed, once it has shown one."""
    wait_until(lambda: worker.evaluate("() => self.shown.length > 0"), page=page)
    return worker.evaluate("() => self.shown")


def test_a_push_before_the_server_heard_the_sign_out_shows_nothing_of_the_worker(
    context,
    page,
    push_configured,  # noqa: F811
):
    """Signed out with no signal, the phone stays registered on the server until it is back: a
    task's push sent meanwhile put its title, a resident's address and plight, on the screen of
    a phone nobody is signed in on (handed back, lent). It only says there is something to sign
    in for, and the browser's subscription is let go of: the page lets go of it as it signs out,
    and the service worker of whatever subscription the browser still holds."""
    own_account(context, page)
    this_browser_registered(page)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    with page.expect_navigation():  # the app reloads once signed out
        page.click("#signout")
    page.locator("#signin").wait_for(state="visible")
    assert page.evaluate("() => sessionStorage.getItem('e2e.unsubscribed')")

    worker = app_worker(context)
    delivered(context, page, 41, 42, "新任务", ADDRESS)
    assert shown_by(worker, page) == [{"title": "网格员", "body": "请登录后查看", "data": None}]
    wait_until(lambda: worker.evaluate("() => self.letGo"), page=page)


def test_a_push_for_the_worker_signed_in_shows_its_words(
    context,
    page,
    push_configured,  # noqa: F811
):
    own_account(context, page)
    this_browser_registered(page)
    worker = app_worker(context)
    delivered(context, page, 43, 44, "新任务", ADDRESS)
    (shown,) = shown_by(worker, page)
    assert (shown["title"], shown["body"]) == ("新任务", ADDRESS)
    assert shown["data"]["data"]["task_id"] == "44"
    assert not worker.evaluate("() => self.letGo")


# --- a task's push tapped ----------------------------------------------------------------------
def delivered(context, page, told: int, task: int, title: str, body: str) -> None:
    """The push of notice `told` (about `task`) as the push worker sends it to this browser,
    delivered to the app's service worker."""
    from api.services.delivery import message_id
    from push.message import Message
    from push.webpush import payload

    message = Message(
        message_id=message_id(told),
        target={"endpoint": "https://push.example.test/e2e", "keys": {}},
        platform="web",
        title=title,
        body=body,
        data={"task_id": str(task), "notification_id": str(told)},
        personal=True,
    )
    cdp, registration, origin = app_service_worker(context, page)
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": registration, "data": payload(message)},
    )


def pushed(context, page, told: int, task: int, title: str, body: str) -> None:
    """The push of notice `told` delivered to the app's service worker, which shows it."""
    delivered(context, page, told, task, title, body)
    page.wait_for_function(
        "async () => (await (await navigator.serviceWorker.ready).getNotifications()).length > 0"
    )


def tap_the_notification(context, push_again) -> None:
    """The worker taps the notification the service worker shows (its `notificationclick`).

    Chromium keeps shown notifications in a store it reconciles with the ones on screen; on a
    loaded machine (a CI run, 2 cores) the reconciling once dropped the one `pushed` had just
    seen, and the service worker found none to tap for 5 s. The push is then delivered again
    (its tag replaces it, as a push resent does) and tapped, up to three times."""
    (worker,) = [w for w in context.service_workers if "/app/sw.js" in w.url]
    for _ in range(3):
        tapped = worker.evaluate(
            """async () => {
              let shown = [];
              for (let i = 0; i < 200 && !shown.length; i++) {
                shown = await self.registration.getNotifications();
                if (!shown.length) await new Promise((done) => setTimeout(done, 100));
              }
              if (!shown.length) return false;
              const tap = new NotificationEvent('notificationclick', { notification: shown[0] });
              self.dispatchEvent(tap);
              return true;
            }"""
        )
        if tapped:
            return
        push_again()
    raise AssertionError("the service worker showed no notification to tap")


def test_tapping_a_tasks_push_opens_the_task_in_the_open_app_and_reads_its_notice(
    context, page, tell, task_of, e2e_engine
):
    """Tapped, the push only brought the app forward, at whatever it showed: the worker had to
    find the inbox, find the notice and tap it again to see the task, the notice unread."""
    context.grant_permissions(["notifications"])
    worker = user_id(e2e_engine, own_account(context, page))
    task = task_of(worker, "井盖松动")
    told = tell(worker, "task_dispatched", "新任务", "井盖松动", task_id=task)
    pushed(context, page, told, task, "新任务", "井盖松动")

    tap_the_notification(context, lambda: pushed(context, page, told, task, "新任务", "井盖松动"))
    expect(page.locator(f"#task-detail[data-task='{task}'] h2")).to_have_text("井盖松动")
    expect(page.locator("#inbox-badge")).to_be_hidden()
    assert read_at(e2e_engine, told) is not None
    screenshot(page, "phone-push-tapped")


def test_a_tasks_push_tapped_with_the_app_closed_opens_the_task(
    context, page, tell, task_of, e2e_engine
):
    """The service worker opens the app at the notice (`/app?notice=ID`): it opens its task."""
    worker = user_id(e2e_engine, own_account(context, page))
    task = task_of(worker, "路灯不亮")
    told = tell(worker, "task_dispatched", "新任务", "路灯不亮", task_id=task)
    page.goto(f"/app?notice={told}")
    expect(page.locator(f"#task-detail[data-task='{task}'] h2")).to_have_text("路灯不亮")
    assert read_at(e2e_engine, told) is not None
    # Opened once: the address no longer names it (a reload opens the app as it is).
    page.wait_for_function("() => !location.search.includes('notice')")


# --- the first sign-in -------------------------------------------------------------------------
def test_a_worker_signed_in_to_the_wrong_account_signs_out_of_the_password_form(
    context, page, e2e_engine
):
    """The office opens its new accounts with one password: a worker who typed a colleague's
    username was asked to set that account's password and had no way back (the form, and a
    reload brought it again), but to set it and lock its owner out."""
    from api.models import AuthSession

    username = opened_by_the_office(context)
    page.goto("/app")
    sign_in(page, username, OFFICE_PASSWORD)
    page.locator("#own-password").wait_for(state="visible")
    sid = claims(page.evaluate("() => localStorage.getItem('gridwork.token')"))["sid"]
    signout = page.locator("#signout")
    expect(signout).to_be_visible()
    box = signout.bounding_box()
    assert box["height"] >= 40 and box["x"] + box["width"] <= PHONE["width"]

    signout.tap()
    page.locator("#signin").wait_for(state="visible")
    expect(page.locator("#own-password")).to_have_count(0)
    assert page.evaluate("() => localStorage.getItem('gridwork.token')") is None
    with Session(e2e_engine) as session:
        assert session.get(AuthSession, sid).revoked_reason == "logout"
    # Its owner signs in later and sets it: the password the office chose is still theirs to set.
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", OFFICE_PASSWORD)
    page.click("#signin button[type=submit]")
    page.locator("#own-password").wait_for(state="visible")
