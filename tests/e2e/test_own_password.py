"""A password the community office chose is replaced by its owner's own at the first sign-in,
in the workers' app and on the map alike: the server answers nothing else until then."""

from __future__ import annotations

import uuid

import pytest

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


def test_the_accounts_page_asks_for_ones_own_password_first(context, page):
    username = opened_by_the_office(context)
    page.goto("/accounts")
    sign_in(page, username, OFFICE_PASSWORD)
    set_own_password(page)
    page.locator("#notice").wait_for(state="visible")  # a worker: the page is the office's
