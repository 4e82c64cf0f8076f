"""A visit recorded indoors (a stairwell, concrete walls), where a fresh satellite fix often never
comes: the app takes the network's position, or one of the last few minutes, widened by how far
a worker walks since, and says so; the visit was refused and lost before."""

from __future__ import annotations

import pytest

from tests.e2e.test_app import HERE, open_app

# navigator.geolocation as a phone indoors gives it: the fresh satellite fix (high accuracy,
# maximumAge 0) fails as `window.geo.fresh` says; the coarse one answers `window.geo.coarse`.
# Every call's options are kept in `window.geo.calls`.
INDOORS = """
window.geo = { fresh: 3, coarse: { accuracy: 40, ageS: 120 }, calls: [] };
Object.defineProperty(navigator, "geolocation", { configurable: true, value: {
  getCurrentPosition(ok, fail, options) {
    window.geo.calls.push(options);
    const failing = options.enableHighAccuracy ? window.geo.fresh : window.geo.coarse.code;
    if (failing) {
      setTimeout(() => fail({ code: failing, message: "browser words" }), 10);
      return;
    }
    const { accuracy, ageS } = window.geo.coarse;
    setTimeout(() => ok({ coords: { longitude: LON, latitude: LAT, accuracy },
                          timestamp: Date.now() - ageS * 1000 }), 10);
  },
} });
""".replace("LON", str(HERE["longitude"])).replace("LAT", str(HERE["latitude"]))


@pytest.fixture()
def indoors(context, page):
    page.add_init_script(INDOORS)
    return open_app(context, page)


def record(page) -> None:
    page.select_option("#outcome", "met")
    page.click("#record")


def queued_visits(page) -> list[dict]:
    return page.evaluate(
        "async () => (await import('/web/queue.js')).listQueued().then(r => r.map(x => x.visit))"
    )


def test_without_a_fresh_fix_the_visit_takes_a_coarse_one_and_says_so(context, indoors):
    context.set_offline(True)
    record(indoors)
    indoors.wait_for_function("() => document.querySelector('#queue-count').textContent === '1'")
    [visit] = queued_visits(indoors)
    assert visit["location"]["lon"] == pytest.approx(HERE["longitude"])
    # Two minutes old: 40 m, and as far as a worker walks in two minutes (1.5 m/s), 220 m.
    assert visit["location"]["accuracy_m"] == pytest.approx(220, abs=3)
    status = indoors.locator("#visit-status")
    assert "室内卫星信号弱，用的是网络定位或几分钟内的定位" in status.inner_text()
    assert "warn" in status.get_attribute("class")
    calls = indoors.evaluate("() => window.geo.calls")
    assert [c["enableHighAccuracy"] for c in calls] == [True, False]
    assert calls[1]["maximumAge"] == 300_000


def test_with_no_position_at_all_nothing_is_saved_and_the_worker_is_told_where_to_try(
    context, indoors
):
    indoors.evaluate("() => { window.geo.coarse.code = 2; }")
    context.set_offline(True)
    record(indoors)
    status = indoors.locator("#visit-status")
    indoors.wait_for_function(
        "() => document.querySelector('#visit-status').textContent.startsWith('无法定位')"
    )
    assert status.inner_text() == "无法定位：手机暂时无法获取位置：请到窗边、楼道口或楼外再试。"
    assert queued_visits(indoors) == []


def test_location_refused_is_not_tried_again_and_says_how_to_allow_it(context, indoors):
    indoors.evaluate("() => { window.geo.fresh = 1; }")
    record(indoors)
    indoors.wait_for_function(
        "() => document.querySelector('#visit-status').textContent.startsWith('无法定位')"
    )
    assert "请在浏览器的网站设置中允许定位" in indoors.inner_text("#visit-status")
    assert len(indoors.evaluate("() => window.geo.calls")) == 1
    assert queued_visits(indoors) == []


def test_a_fresh_fix_is_taken_as_it_is(context, indoors):
    indoors.evaluate("() => { window.geo.fresh = 0; window.geo.coarse.ageS = 0; }")
    context.set_offline(True)
    record(indoors)
    indoors.wait_for_function("() => document.querySelector('#queue-count').textContent === '1'")
    [visit] = queued_visits(indoors)
    assert visit["location"]["accuracy_m"] == 40
    assert indoors.inner_text("#visit-status") == "已保存，联网后自动同步"
