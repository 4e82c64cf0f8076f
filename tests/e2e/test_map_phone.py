"""The grid leader's map on a phone (390x844, touch): its controls and popups, tapped."""

from __future__ import annotations

import pytest

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_map import add_task, boxes_overlap, click_at, shared_point, wait_for_grids

__all__ = ["add_task"]  # a fixture, used by name

PHONE = {"width": 390, "height": 844}
TAP = 40  # px: the least height of a control a thumb hits without its neighbour

# Every control in sight over the map (the toolbar, the legend's button, the zoom buttons, a
# popup's) too short for a thumb.
TOO_SHORT = """(least) => [...document.querySelectorAll(
    '#toolbar input:not([type=checkbox]), #toolbar a, #toolbar label, #toolbar button,'
    + ' #legend summary, .maplibregl-ctrl button, .maplibregl-popup button')]
  .filter((el) => el.getClientRects().length && !el.closest('[hidden]'))
  .map((el) => ({el, box: el.getBoundingClientRect()}))
  .filter(({box}) => box.height < least)
  .map(({el, box}) => `${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim()}"`
                      + ` ${Math.round(box.width)}x${Math.round(box.height)}`)"""


@pytest.fixture()
def phone(browser, live_server):
    context = browser.new_context(
        base_url=live_server, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def open_map(page, lang: str = "zh") -> None:
    page.goto("/map?lang=en" if lang == "en" else "/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    wait_for_grids(page)


def test_on_a_phone_a_popups_back_button_is_big_enough_to_tap(phone, e2e_engine, add_task):
    """A tap where a task and households stand lists them; a task or an entrance opened from
    the list has a "← 返回列表" above it: it was 21 px tall on a phone (every other button of
    a popup 40 px), and a thumb hit the title or the map instead. It stood outside the popup's
    own box, which the touch rule sized."""
    page = phone
    lon, lat, households = shared_point(e2e_engine)
    add_task(household_id=households[0], title="楼门口堆物")
    open_map(page)
    click_at(page, lon, lat, 17.5)
    page.locator(".hit-list button.hit").first.tap()  # the task
    page.locator(".task-popup").wait_for()
    assert page.evaluate(TOO_SHORT, TAP) == []
    page.locator("button.back").tap()
    page.locator(".hit-list button.hit").nth(1).tap()  # a household
    page.locator(".household-popup .history").wait_for()
    assert page.evaluate(TOO_SHORT, TAP) == []
    # An entrance (zoomed out): one of its households, then back to the entrance.
    page.locator(".maplibregl-popup-close-button").tap()
    click_at(page, lon, lat, 15.5)
    page.locator(".hit-list button.hit").nth(1).tap()  # the entrance, after the task
    page.locator(".entrance-popup .history-link").first.wait_for()
    assert page.evaluate(TOO_SHORT, TAP) == []
    page.locator(".entrance-popup .history-link").first.click()
    page.locator(".household-popup .history").wait_for()
    assert page.evaluate(TOO_SHORT, TAP) == []


OFF_SCREEN = """() => [...document.querySelectorAll(
    '.maplibregl-popup button, .maplibregl-popup h4')]
  .filter((el) => el.getClientRects().length)
  .map((el) => ({el, box: el.getBoundingClientRect()}))
  .filter(({box}) => box.top < 0 || box.bottom > innerHeight || box.left < 0
                     || box.right > innerWidth)
  .map(({el, box}) => `${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim()}"`
                      + ` at ${Math.round(box.x)},${Math.round(box.y)}`)"""


@pytest.mark.parametrize("where", ["phone", "desktop"])
def test_a_popup_that_grows_as_its_list_comes_stays_on_the_screen(
    phone, page, e2e_engine, add_task, where
):
    """A stair entrance tapped in the middle of a phone's map: its popup opens above the point,
    then grows upwards as its households' list comes (12 flats, the hint, the zoom button): its
    top, the close button, "← 返回列表" and the heading, went off the top of the screen. On a
    desktop too. The map now moves it into sight as it grows."""
    page = phone if where == "phone" else page
    lon, lat, households = shared_point(e2e_engine)
    add_task(household_id=households[0], title="楼门口堆物")
    open_map(page)
    click_at(page, lon, lat, 15.5)
    page.locator(".hit-list button.hit").nth(1).click()  # the entrance, after the task
    page.locator(".entrance-popup .history-link").first.wait_for()
    page.wait_for_function(f"() => ({OFF_SCREEN})().length === 0")
    screenshot(page, f"map-{where}-entrance-popup")
    page.locator(".maplibregl-popup-close-button").click(trial=True)  # nothing over it
    page.locator(".entrance-popup .history-link").last.click()  # a household's history
    page.locator(".household-popup .history").wait_for()
    page.wait_for_function(f"() => ({OFF_SCREEN})().length === 0")


def test_on_a_phone_saying_it_is_loading_does_not_make_the_toolbar_jump(phone):
    """On a phone in Chinese, "正在读取…" took a row of its own in the toolbar: every pan or
    week whose tiles took a moment, the toolbar grew by a row over the map and shrank back."""
    page = phone
    held: list = []
    hold = {"yes": False}
    page.route(
        "**/api/v1/tiles/**",
        lambda route: held.append(route) if hold["yes"] else route.continue_(),
    )
    open_map(page)
    before = page.locator("#toolbar").bounding_box()
    hold["yes"] = True
    page.locator("#week-prev").tap()
    page.wait_for_selector("#map-loading:not([hidden])")
    assert page.locator("#toolbar").bounding_box() == before
    loading = page.locator("#map-loading").bounding_box()
    zoom = page.locator(".maplibregl-ctrl-top-right").bounding_box()
    assert loading["x"] >= 0 and loading["x"] + loading["width"] <= 390
    assert not boxes_overlap(loading, zoom)
    screenshot(page, "map-phone-loading")
    hold["yes"] = False
    while held:
        held.pop().continue_()
    page.wait_for_selector("#map-loading", state="hidden")
