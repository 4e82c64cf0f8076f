"""The app's account card: a worker changes their own password and signs out everywhere.

Both were in the API only (`POST /auth/password`, `POST /auth/logout-all`): a worker whose phone
was lost or whose password was seen had to ask the office.
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import sign_in
from tests.e2e.test_own_password import (
    OFFICE_PASSWORD,
    OWN_PASSWORD,
    opened_by_the_office,
    set_own_password,
)

NEWER_PASSWORD = "newer-one-2027"


def signed_in_device(browser, live_server, username: str, password: str):
    """One phone of the worker: its own browser, the app open and signed in."""
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/app")
    sign_in(page, username, password)
    page.wait_for_selector("body[data-ready='1']")
    return context, page


def own_account(context, page) -> str:
    """A worker opened by the office who has set their own password, the app open."""
    username = opened_by_the_office(context)
    page.goto("/app")
    sign_in(page, username, OFFICE_PASSWORD)
    set_own_password(page)
    page.wait_for_selector("body[data-ready='1']")
    return username


def test_a_worker_signs_out_everywhere_from_the_app(browser, live_server, context, page):
    username = own_account(context, page)
    other, tablet = signed_in_device(browser, live_server, username, OWN_PASSWORD)
    sent: list[str] = []
    page.on("request", lambda r: "/auth/logout-all" in r.url and sent.append(r.url))

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#signout-all")
    assert sent == [] and page.locator("#home").is_visible()  # declined: nothing sent

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#signout-all")
    page.locator("#signin").wait_for(state="visible")
    assert "所有设备" in page.inner_text("#signin-error")
    assert len(sent) == 1

    # The other phone's sign-in has ended too: its next read asks it to sign in again.
    tablet.reload()
    tablet.locator("#signin").wait_for(state="visible")
    assert tablet.locator("#home").is_hidden()
    other.close()


def test_a_worker_changes_their_own_password_from_the_app(browser, live_server, context, page):
    username = own_account(context, page)
    other, tablet = signed_in_device(browser, live_server, username, OWN_PASSWORD)

    page.click("#change-password")
    form = page.locator("#account #own-password")
    form.wait_for(state="visible")
    assert form.locator("input[name=current]").is_visible()  # asked: nothing was just typed
    form.locator("input[name=current]").fill("not-my-password")
    form.locator("input[name=next]").fill(NEWER_PASSWORD)
    form.locator("input[name=again]").fill(NEWER_PASSWORD)
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_contain_text("当前密码不正确")
    form.locator("input[name=current]").fill(OWN_PASSWORD)
    form.locator("button[type=submit]").click()
    form.wait_for(state="hidden")
    assert "已修改" in page.inner_text("#account-status")
    assert page.locator("#home").is_visible()  # this phone stays signed in

    signed_in = context.request.post(
        "/api/v1/auth/token", data={"username": username, "password": NEWER_PASSWORD}
    )
    assert signed_in.ok
    tablet.reload()  # the other phone's session ended with the change
    tablet.locator("#signin").wait_for(state="visible")
    other.close()


def test_the_account_card_fits_a_phone(context, page):
    """Two buttons of the phone's width, at least 40 px tall (as every control of the app)."""
    page.set_viewport_size({"width": 390, "height": 844})
    own_account(context, page)
    for button in ("#change-password", "#signout-all"):
        box = page.locator(button).bounding_box()
        assert box["height"] >= 40 and box["x"] >= 0 and box["x"] + box["width"] <= 390
