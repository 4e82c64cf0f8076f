"""A password the community office chose is replaced by its owner's own at the first sign-in,
in the workers' app and on the map alike: the server answers nothing else until then."""

from __future__ import annotations

import sys
import uuid

import pytest

from api.services.users import password_length
from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_GRID, claims, screenshot, sign_in

OFFICE_PASSWORD = "office-chose-1"
OWN_PASSWORD = "only-mine-2026"


def opened_by_the_office(context) -> str:
    """A worker of the demo grid the community's admin opens through the API: its password is
    the admin's choice."""
    token = context.request.post(
        "/api/v1/auth/token", data={"username": "admin01", "password": DEMO_PASSWORD}
    ).json()["access_token"]
    username = f"new_worker_{uuid.uuid4().hex[:6]}"
    answer = context.request.post(
        "/api/v1/users",
        data={
            "username": username,
            "password": OFFICE_PASSWORD,
            "role": "worker",
            "grid_codes": [DEMO_GRID],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status == 201, answer.text()
    assert answer.json()["password_change_required"] is True
    return username


def set_own_password(page, *, current: str | None = None) -> None:
    form = page.locator("#own-password")
    form.wait_for(state="visible")
    current_field = form.locator("input[name=current]")
    if current is None:
        assert not current_field.is_visible()  # the password just typed is not asked again
    else:
        current_field.fill(current)
    form.locator("input[name=next]").fill(OWN_PASSWORD)
    form.locator("input[name=again]").fill("only-mine-2025")
    form.locator("button[type=submit]").click()
    assert "不一致" in form.locator(".error").inner_text()  # the two differ: nothing sent
    form.locator("input[name=again]").fill(OWN_PASSWORD)
    form.locator("button[type=submit]").click()
    form.wait_for(state="hidden")


def test_the_app_asks_a_new_worker_for_their_own_password_then_opens(context, page):
    username = opened_by_the_office(context)
    context.grant_permissions(["geolocation"])
    context.set_geolocation({"longitude": 116.3975, "latitude": 39.9087, "accuracy": 8})
    page.goto("/app")
    sign_in(page, username, OFFICE_PASSWORD)
    page.locator("#own-password").wait_for(state="visible")
    assert page.locator("#home").is_hidden()
    screenshot(page, "app-own-password")
    set_own_password(page)
    page.wait_for_selector("body[data-ready='1']")
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    assert "pwc" not in claims(token)
    signed_in = context.request.post(
        "/api/v1/auth/token", data={"username": username, "password": OWN_PASSWORD}
    )
    assert signed_in.ok and signed_in.json()["password_change_required"] is False


@pytest.mark.parametrize("reload_first", [False, True])
def test_the_map_asks_for_their_own_password_before_any_tile(context, page, reload_first):
    """Reloaded before setting it, the page asks again, with the current password this time.
    (A worker of the demo grid: opening a grid leader would take the grid from leader01.)"""
    username = opened_by_the_office(context)
    page.goto("/map")
    sign_in(page, username, OFFICE_PASSWORD)
    page.locator("#own-password").wait_for(state="visible")
    assert page.locator("#toolbar").is_hidden()
    if reload_first:
        page.reload()
        set_own_password(page, current=OFFICE_PASSWORD)
    else:
        set_own_password(page)
    page.locator("#toolbar").wait_for(state="visible")
    page.wait_for_function(
        "() => window.gridworkMap && window.gridworkMap.loaded() && "
        "window.gridworkMap.querySourceFeatures('grids', {sourceLayer: 'grids'}).length > 0"
    )


@pytest.mark.parametrize("path", ["/map", "/window", "/register"])
def test_who_signed_in_with_anothers_username_signs_out_of_the_form_without_setting_it(
    context, page, live_server, path
):
    """The office opens new accounts with one password: who typed a colleague's username was
    asked only to set that account's password (the page's 退出 is hidden until then), and
    setting it locked its owner out. The form offers 退出, which ends the session on the
    server and leaves the office's password as it was."""
    from tests.e2e.test_app import status_of

    username = opened_by_the_office(context)
    page.goto(path)
    sign_in(page, username, OFFICE_PASSWORD)
    form = page.locator("#own-password")
    form.wait_for(state="visible")
    token = page.evaluate("() => localStorage.getItem('gridwork.token')")
    leave = form.locator("button.own-password-signout")
    assert leave.inner_text() == "退出（不是我的账号）"
    with page.expect_navigation():
        leave.click()
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("() => localStorage.getItem('gridwork.token')") is None
    assert status_of(live_server, token) == 401
    again = context.request.post(
        "/api/v1/auth/token", data={"username": username, "password": OFFICE_PASSWORD}
    )
    assert again.status == 200 and claims(again.json()["access_token"])["pwc"] is True


def test_the_accounts_page_asks_for_ones_own_password_first(context, page):
    username = opened_by_the_office(context)
    page.goto("/accounts")
    sign_in(page, username, OFFICE_PASSWORD)
    set_own_password(page)
    page.locator("#notice").wait_for(state="visible")  # a worker: the page is the office's


# What the server counts (api/services/users.py): characters (code points), spaces not counted.
FOUR_EMOJI = "\U0001f600\U0001f680\U0001f331\U0001f30f"  # 8 UTF-16 units, 4 characters


@pytest.mark.parametrize(
    "short",
    [FOUR_EMOJI, "a b c d e f g ", "\u3000" * 6 + "ab"],
    ids=["four emoji", "seven letters spaced", "ideographic spaces"],
)
def test_the_form_counts_a_new_password_as_the_server_does(context, page, short):
    """Four emoji are eight UTF-16 units: the form let them through and the server refused
    them (four characters). Spaces, which the server does not count, counted too."""
    username = opened_by_the_office(context)
    sent: list[str] = []
    page.on("request", lambda r: "/auth/password" in r.url and sent.append(r.url))
    page.goto("/accounts")
    sign_in(page, username, OFFICE_PASSWORD)
    form = page.locator("#own-password")
    form.wait_for(state="visible")
    form.locator("input[name=next]").fill(short)
    form.locator("input[name=again]").fill(short)
    form.locator("button[type=submit]").click()
    assert form.locator(".error").inner_text() == "新密码至少8个字符（空格不计）"
    assert sent == []  # refused by the form, nothing sent
    # Eight emoji are eight characters: the form and the server both take them.
    form.locator("input[name=next]").fill(FOUR_EMOJI * 2)
    form.locator("input[name=again]").fill(FOUR_EMOJI * 2)
    form.locator("button[type=submit]").click()
    form.wait_for(state="hidden")
    signed_in = context.request.post(
        "/api/v1/auth/token", data={"username": username, "password": FOUR_EMOJI * 2}
    )
    assert signed_in.ok and signed_in.json()["password_change_required"] is False


def test_the_forms_password_length_is_the_servers_for_every_space_and_astral_character(
    context, page
):
    """Every character Python counts as a space (the server's rule), and no other, is left out
    of the form's count; a character beyond the BMP counts once."""
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    samples = [spaces, "\ufeff\u200b\u180e", FOUR_EMOJI, "密码" + spaces[:5] + "abc", "a\U0010ffff"]
    page.goto("/accounts")
    counted = page.evaluate(
        "async (samples) => { const { passwordLength } = await import('/web/password.js');"
        " return samples.map(passwordLength); }",
        samples,
    )
    assert counted == [password_length(s) for s in samples]
