"""The office pages (/window, /reports, /rosters, /register, /audit, /tasks) boot alike
(`bootPage` in web/src/password.js): the sign-in form's language link, the page once signed
in, 退出 ending the session on the server, letting go of the browser's push subscription (/map
and /accounts too) and showing the form again, a session ended elsewhere sending the page back
to the form."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import sign_in
from tests.e2e.test_app import STORED, fake_push, status_of  # noqa: F401 (a fixture)

PAGES = ["/window", "/reports", "/rosters", "/register", "/audit", "/tasks"]


@pytest.mark.parametrize("path", PAGES)
def test_an_office_page_signs_in_in_either_language_and_out_again(page, live_server, path):
    page.goto(path)
    page.wait_for_selector("#signin:not([hidden])")
    assert page.inner_text("#signin-lang") == "English"
    page.click("#signin-lang")
    page.wait_for_selector("#signin:not([hidden])")
    assert "lang=en" in page.url and page.inner_text("#signin-lang") == "中文"
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    assert page.is_hidden("#signin")
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    assert status_of(live_server, token) == 200
    with page.expect_navigation():
        page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("() => localStorage.getItem('gridwork.token')") is None
    assert status_of(live_server, token) == 401


# This browser's push subscription, as the page finds it (the app's service worker holds it).
SUBSCRIPTION = """async () => {
  const registration = await navigator.serviceWorker.getRegistration('/app');
  const held = await registration?.pushManager.getSubscription();
  return held ? held.endpoint : null;
}"""


def push_on_in_the_app(page) -> int:
    """admin01 signed in on /app, push turned on there: this browser's device id."""
    page.goto("/app")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    page.click("#push")
    page.wait_for_function("() => document.querySelector('#push-status').textContent !== ''")
    assert page.evaluate(SUBSCRIPTION)
    return int(page.evaluate(STORED)["device"])


def device_signed_out(e2e_engine, device_id: int) -> bool:
    from api.models import Device

    with e2e_engine.connect() as conn:
        device = conn.execute(select(Device).where(Device.id == device_id)).one()
    return not device.active and device.deactivation_reason == "signed out"


@pytest.mark.parametrize("path", [*PAGES, "/map", "/accounts"])
def test_signing_out_of_an_office_page_lets_go_of_the_browsers_push_subscription(
    page,
    fake_push,  # noqa: F811
    e2e_engine,
    path,
):
    """The token is the origin's: signed out on an office page, the app is signed out too. Only
    the app's 退出 let go of the browser's push subscription and named the device to the
    server: signed out on /map, the browser stayed subscribed and registered, and the next
    pushes (a task's title, a resident's address) came to a browser nobody was signed in on."""
    device_id = push_on_in_the_app(page)
    page.goto(path)
    page.wait_for_selector("#signout:not([hidden])")
    with page.expect_navigation():
        page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate(SUBSCRIPTION) is None
    assert page.evaluate("() => localStorage.getItem('gridwork.token')") is None
    assert device_signed_out(e2e_engine, device_id)


def test_signed_out_of_an_office_page_with_no_answer_the_browser_lets_go_of_its_subscription(
    context,
    page,
    fake_push,  # noqa: F811
    e2e_engine,
):
    """No signal for the sign-out (the server heard nothing): the subscription is let go of all
    the same, which needs no server; the sign-out, naming the device, is sent once back."""
    device_id = push_on_in_the_app(page)
    page.goto("/map")
    page.wait_for_selector("#signout:not([hidden])")
    context.route("**/api/v1/auth/logout", lambda route: route.abort("internetdisconnected"))
    with page.expect_navigation():
        page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate(SUBSCRIPTION) is None
    assert page.evaluate("() => localStorage.getItem('gridwork.signOuts')")  # kept to send

    context.unroute("**/api/v1/auth/logout")
    page.reload()  # back: the sign-out kept is sent as a page opens
    page.wait_for_function("() => localStorage.getItem('gridwork.signOuts') === null")
    assert device_signed_out(e2e_engine, device_id)


def test_signed_out_everywhere_from_the_app_the_browser_lets_go_of_its_subscription(
    page,
    fake_push,  # noqa: F811
):
    """退出所有设备 ended every sign-in but kept the browser's subscription: the next one to sign
    in on it with notifications allowed had it registered for them again, unasked."""
    push_on_in_the_app(page)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#signout-all")
    page.locator("#signin").wait_for(state="visible")
    assert page.evaluate(SUBSCRIPTION) is None


@pytest.mark.parametrize("path", PAGES)
def test_an_office_page_whose_session_ended_elsewhere_shows_the_sign_in_form(page, path):
    page.goto(path)
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    ended = """() => { localStorage.clear();
                       dispatchEvent(new Event('gridwork:session-ended')); }"""
    if path == "/window":  # not reloaded: the request being typed is kept (test_window.py)
        page.evaluate(ended)
        page.wait_for_selector("#main", state="hidden")
    else:
        with page.expect_navigation():
            page.evaluate(ended)
    page.wait_for_selector("#signin:not([hidden])")


@pytest.mark.parametrize("path", [*PAGES, "/app", "/map", "/accounts"])
def test_the_password_typed_is_not_left_in_the_sign_in_form_once_signed_in(page, path):
    """The form stays in the page, hidden: with the password in it, a sign-in ended later (a
    reset by the office) showed the form filled in, and 登录 sent the old password."""
    page.goto(path)
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("#signin[hidden]", state="attached")
    page.wait_for_function(
        "() => document.querySelector('#signin input[name=password]').value === ''"
    )
