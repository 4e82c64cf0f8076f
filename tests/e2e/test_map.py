"""The grid-leader map in headless Chromium: it signs in, draws the demo grids, shows coverage."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import (
    DEMO_GRID,
    _visit_some,
    claims,
    expire_access_token,
    screenshot,
    sign_in,
)

RENDERED_GRIDS = """() => {
  const map = window.gridworkMap;
  if (!map || !map.loaded() || !map.areTilesLoaded()) return null;
  const codes = map.queryRenderedFeatures({layers: ['grids-fill']}).map(f => f.properties.code);
  return [...new Set(codes)].sort();
}"""


def wait_for_grids(page) -> list[str]:
    page.wait_for_function(f"() => {{ const c = ({RENDERED_GRIDS})(); return c && c.length > 0; }}")
    return page.evaluate(RENDERED_GRIDS)


def test_map_shows_the_leaders_demo_grids(page):
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    codes = wait_for_grids(page)
    assert DEMO_GRID in codes
    assert all(code.startswith("110101001001") for code in codes)  # leader01's community only
    screenshot(page, "map-grids")


def visited_this_week(e2e_engine, code: str) -> int:
    """The grid's households visited this week, as stored: conftest's ten, and any an earlier
    test's visit (an app test's, synced) added."""
    from sqlalchemy import func, select

    from api.models import Grid, Visit
    from api.services.weeks import current_week

    with e2e_engine.connect() as conn:
        return conn.scalar(
            select(func.count(func.distinct(Visit.household_id)))
            .join(Grid, Grid.id == Visit.grid_id)
            .where(Grid.code == code, Visit.week == current_week(), Visit.outcome == "met")
        )


def test_clicking_a_grid_shows_its_coverage(page, e2e_engine):
    if visited_this_week(e2e_engine, DEMO_GRID) < 10:  # the week turned since the session seeded
        with Session(e2e_engine) as session:
            _visit_some(session, datetime.now(UTC))
            session.commit()
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    wait_for_grids(page)
    point = page.evaluate(
        """(code) => {
          const map = window.gridworkMap;
          const f = map.querySourceFeatures('grids', {sourceLayer: 'grids'})
            .find(f => f.properties.code === code);
          const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0]
                                                       : f.geometry.coordinates[0][0];
          // A point well inside: the rendered pixel of the ring's vertex average.
          const lon = ring.reduce((s, c) => s + c[0], 0) / ring.length;
          const lat = ring.reduce((s, c) => s + c[1], 0) / ring.length;
          const p = map.project([lon, lat]);
          const hit = map.queryRenderedFeatures(p, {layers: ['grids-fill']})[0];
          return {x: p.x, y: p.y, code: hit && hit.properties.code};
        }""",
        DEMO_GRID,
    )
    assert point["code"] == DEMO_GRID
    page.mouse.click(point["x"], point["y"])
    popup = page.locator(".grid-popup")
    popup.wait_for()
    assert DEMO_GRID in popup.inner_text()
    households = int(popup.locator(".households").inner_text())
    visited = visited_this_week(e2e_engine, DEMO_GRID)
    assert visited >= 10  # conftest's `_visit_some`
    assert int(popup.locator(".visited").inner_text()) == visited
    assert popup.locator(".coverage").inner_text() == f"{round(1000 * visited / households) / 10}%"
    assert "本周走访覆盖率" in popup.inner_text()
    screenshot(page, "map-grid-popup")


def test_map_speaks_english_when_asked(page):
    page.goto("/map?lang=en")
    sign_in(page, "leader01", DEMO_PASSWORD)
    wait_for_grids(page)
    assert "Grid coverage" in page.locator("#legend").inner_text()


@pytest.fixture()
def basemap(live_app):
    """A raster basemap on another origin (another port), set as the app's BASEMAP_URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    tile = (
        Path(__file__).resolve().parents[2] / "web" / "dist" / "icons" / "icon-192.png"
    ).read_bytes()
    asked: list[str] = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(tile)))
            self.end_headers()
            self.wfile.write(tile)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    live_app.config["BASEMAP_URL"] = f"http://127.0.0.1:{server.server_port}/{{z}}/{{x}}/{{y}}.png"
    yield asked
    live_app.config["BASEMAP_URL"] = None
    server.shutdown()
    server.server_close()


def test_the_map_draws_a_basemap_from_another_host_under_its_csp(page, basemap):
    # The page fixture fails the test on any CSP violation (a refused tile is one).
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    wait_for_grids(page)
    page.wait_for_function(
        "() => window.gridworkMap.isSourceLoaded('basemap') && window.gridworkMap.areTilesLoaded()"
    )
    assert basemap, "no basemap tile was asked for"


def test_the_map_refreshes_an_expired_token_and_draws_its_tiles_again(page, live_app):
    """A leader's map left open past the access token's hour keeps drawing."""
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    wait_for_grids(page)
    expired = expire_access_token(live_app, page)

    def redrawn(response) -> bool:
        sent = response.request.headers.get("authorization")
        grids = "/api/v1/tiles/grids/" in response.url
        return grids and response.ok and sent != f"Bearer {expired}"

    with page.expect_response(redrawn):  # the tiles asked for again, with the new token
        page.dispatch_event("#week", "change")
    assert wait_for_grids(page)
    assert page.evaluate("() => localStorage.getItem('gridwork.token')") != expired
    assert page.is_hidden("#signin")


def test_a_map_whose_session_ended_asks_to_sign_in_again_and_says_why(page, live_app, e2e_engine):
    """A leader's map left open while the session was ended (the account switched off, the
    password changed or signed out everywhere on another device): its tiles were refused, the
    refresh too, and the page reloaded to a bare sign-in form, with no word of why: it looked
    like a fault of the map. It now says the sign-in has ended, in Chinese."""
    from api.services import sessions

    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    wait_for_grids(page)
    sid = claims(expire_access_token(live_app, page))["sid"]
    with Session(e2e_engine) as session:
        sessions.revoke(session, sid, "e2e", datetime.now(UTC))
        session.commit()
    page.dispatch_event("#week", "change")  # the tiles asked for again: 401, the refresh refused
    page.wait_for_selector("#signin:not([hidden])")
    assert page.inner_text("#signin-error") == "登录已失效，请重新登录。"
    sign_in(page, "leader01", DEMO_PASSWORD)
    wait_for_grids(page)
    page.reload()  # said once: a later visit to the page does not say it again
    wait_for_grids(page)
    page.evaluate("() => localStorage.removeItem('gridwork.token')")
    page.reload()
    page.wait_for_selector("#signin:not([hidden])")
    assert page.inner_text("#signin-error") == ""


# --- zoomed to the user's grids ------------------------------------------------------------------
def grids_extent(e2e_engine, community: str = "110101001001") -> list[float]:
    from api.models import Grid

    with e2e_engine.connect() as conn:
        box = conn.execute(
            select(
                func.ST_XMin(func.ST_Extent(Grid.boundary)),
                func.ST_YMin(func.ST_Extent(Grid.boundary)),
                func.ST_XMax(func.ST_Extent(Grid.boundary)),
                func.ST_YMax(func.ST_Extent(Grid.boundary)),
            ).where(Grid.code.startswith(community), Grid.retired_at.is_(None))
        ).one()
    return list(box)


FITTED = """([w, s, e, n]) => {
  const map = window.gridworkMap;
  if (!map || !map.loaded()) return false;
  const b = map.getBounds();
  const inside = b.getWest() <= w && b.getSouth() <= s && b.getEast() >= e && b.getNorth() >= n;
  // Zoomed to them: the grids fill most of the view's width or height.
  const wide = (e - w) / (b.getEast() - b.getWest());
  const high = (n - s) / (b.getNorth() - b.getSouth());
  const filled = Math.max(wide, high);
  return inside && filled > 0.6;
}"""


def test_the_map_zooms_to_the_users_grids(page, e2e_engine):
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/v1/grids" in r.url else None)
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_function(FITTED, arg=grids_extent(e2e_engine))
    assert asked and all("page_size=100&" in url for url in asked)  # within any server's max
    assert page.is_hidden("#map-status")


def test_the_map_says_when_it_cannot_read_the_users_grids(page):
    """Said in Chinese (until 2026-12-05 the server's words alone), the server's words after."""
    problem = '{"title": "Service Unavailable", "status": 503, "detail": "维护中"}'
    page.route(
        "**/api/v1/grids?*",
        lambda route: route.fulfill(
            status=503, body=problem, content_type="application/problem+json"
        ),
    )
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_selector("#map-status:not([hidden])")
    said = (
        "无法读取您的网格范围，地图未缩放到网格：服务器暂时不可用，请稍后再试。（服务器：维护中）"
    )
    assert page.inner_text("#map-status") == said


# --- popups: every household and task under the click ---------------------------------------------
@pytest.fixture()
def add_task(e2e_engine):
    from api.models import Task, TaskEvent

    made: list[int] = []

    def add(household_id: int | None = None, lonlat: tuple[float, float] | None = None, **kw):
        from api.models import Grid

        with Session(e2e_engine) as session:
            grid = session.scalar(select(Grid.id).where(Grid.code == DEMO_GRID))
            task = Task(
                source="window",
                type="help",
                title=kw.pop("title", "楼道堆物"),
                grid_id=grid,
                status="dispatched",
                household_id=household_id,
                location=None if lonlat is None else f"SRID=4326;POINT({lonlat[0]} {lonlat[1]})",
                due_at=datetime.now(UTC) + timedelta(days=3),
                **kw,
            )
            session.add(task)
            session.commit()
            made.append(task.id)
            return task.id

    yield add
    with Session(e2e_engine) as session:
        session.execute(TaskEvent.__table__.delete().where(TaskEvent.task_id.in_(made)))
        session.execute(Task.__table__.delete().where(Task.id.in_(made)))
        session.commit()


def shared_point(e2e_engine) -> tuple[float, float, list[int]]:
    """A point of the demo grid where several flats (of one kind) stand: a stair entrance."""
    with e2e_engine.connect() as conn:
        row = conn.execute(
            text(
                """SELECT ST_X(h.location), ST_Y(h.location), array_agg(h.id ORDER BY h.id)
                   FROM households h JOIN grids g ON g.id = h.grid_id
                   WHERE g.code = :grid
                   GROUP BY h.location, h.kind HAVING count(*) BETWEEN 3 AND 12
                   ORDER BY min(h.id) LIMIT 1"""
            ),
            {"grid": DEMO_GRID},
        ).one()
    return row[0], row[1], list(row[2])


def click_at(page, lon: float, lat: float, zoom: float) -> None:
    page.evaluate(
        "([lon, lat, zoom]) => window.gridworkMap.jumpTo({center: [lon, lat], zoom})",
        [lon, lat, zoom],
    )
    page.wait_for_function(
        """() => { const m = window.gridworkMap;
                   return m.loaded() && m.areTilesLoaded() &&
                     m.queryRenderedFeatures({layers: ['households']}).length > 0; }"""
    )
    x, y = page.evaluate(
        "([lon, lat]) => { const p = window.gridworkMap.project([lon, lat]); return [p.x, p.y]; }",
        [lon, lat],
    )
    page.mouse.click(x, y)


def open_map(page) -> None:
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    wait_for_grids(page)


def test_a_click_lists_every_household_and_task_at_the_point(page, e2e_engine, add_task):
    lon, lat, households = shared_point(e2e_engine)
    task = add_task(household_id=households[0], title="楼门口堆物")
    open_map(page)
    click_at(page, lon, lat, 16.5)
    listed = page.locator(".hit-list button.hit")
    listed.first.wait_for()
    labels = listed.all_inner_texts()
    assert len(labels) == len(households) + 1
    assert labels[0].startswith("任务: 楼门口堆物")
    assert sorted(int(label.split()[0][1:]) for label in labels[1:]) == households
    screenshot(page, "map-hit-list")

    listed.nth(2).click()  # the second household: its own history
    page.locator(".household-popup h4").wait_for()
    assert page.inner_text(".household-popup h4").startswith(f"#{households[1]} ")
    page.locator(".household-popup .history").wait_for()
    page.click("button.back")
    page.click(".hit-list button.hit >> nth=0")
    assert page.inner_text(".task-popup h4") == "楼门口堆物"
    assert task


def test_a_households_popup_tells_an_attempt_that_found_nobody_apart(page, e2e_engine):
    """A nobody_home attempt is not a visit (the report's rule): the popup names it apart."""
    import uuid

    from geoalchemy2.shape import to_shape

    from api.models import Household, User, Visit
    from api.services.weeks import week_of

    lon, lat, households = shared_point(e2e_engine)
    tried = households[-1]
    now = datetime.now(UTC) - timedelta(seconds=30)
    with Session(e2e_engine) as session:
        household = session.get(Household, tried)
        worker = session.scalar(select(User.id).where(User.username == "worker01"))
        point = to_shape(household.location)
        attempt = Visit(
            id=uuid.uuid4(), worker_id=worker, household_id=tried, grid_id=household.grid_id,
            visited_at=now, utc_offset_minutes=480, week=week_of(now),
            location=household.location, datum="wgs84", raw_lon=point.x, raw_lat=point.y,
            outcome="nobody_home", grade="ok",
        )  # fmt: skip
        session.add(attempt)
        session.commit()
        attempt_id = attempt.id
    try:
        open_map(page)
        click_at(page, lon, lat, 16.5)
        page.locator(f".hit-list button.hit:has-text('#{tried} ')").click()
        line = page.locator(".household-popup .last-attempt")
        line.wait_for()
        assert line.inner_text().startswith("上次上门未遇: ")
    finally:
        with Session(e2e_engine) as session:
            session.execute(Visit.__table__.delete().where(Visit.id == attempt_id))
            session.commit()


def test_a_households_popup_says_in_chinese_why_its_history_could_not_be_read(page, e2e_engine):
    """The history a household's popup reads was refused (the household moved out of the
    leader's grids since the tile was drawn: 404; the server busy: 503): the popup showed the
    server's English ("Household 12 not found."). It is said in Chinese, the server's words
    after it."""
    lon, lat, households = shared_point(e2e_engine)
    problem = '{"title": "Not Found", "status": 404, "detail": "Household not found."}'
    page.route(
        "**/api/v1/households/*/visits?*",
        lambda route: route.fulfill(
            status=404, body=problem, content_type="application/problem+json"
        ),
    )
    open_map(page)
    click_at(page, lon, lat, 16.5)
    page.locator(f".hit-list button.hit:has-text('#{households[0]} ')").click()
    error = page.locator(".household-popup .error")
    error.wait_for()
    said = "找不到这条记录，它可能已不在您的网格中。（服务器：Household not found.）"
    assert error.inner_text() == said


def test_at_the_entrance_level_the_popup_counts_the_households(page, e2e_engine):
    lon, lat, households = shared_point(e2e_engine)
    open_map(page)
    click_at(page, lon, lat, 15.3)
    popup = page.locator(".entrance-popup")
    popup.wait_for()
    assert popup.locator(".count").inner_text() == f"共 {len(households)} 户"
    assert popup.locator(".status").inner_text() in {"本周已访", "待访", "逾期未访"}
    assert ".history" not in popup.inner_html()  # not one flat's history for the entrance
    screenshot(page, "map-entrance-popup")


STATUS_ZH = {"visited": "本周已访", "due": "待访", "overdue": "逾期未访"}


def drawn_statuses(page, lon: float, lat: float) -> dict[int, str]:
    """The status the map draws for each household at the point, at full zoom (one dot each)."""
    page.evaluate(
        "([lon, lat]) => window.gridworkMap.jumpTo({center: [lon, lat], zoom: 16.5})", [lon, lat]
    )
    page.wait_for_function(
        """() => { const m = window.gridworkMap;
                   return m.loaded() && m.areTilesLoaded() && m.getZoom() >= 16.5; }"""
    )
    features = page.evaluate(
        """([lon, lat]) => { const m = window.gridworkMap;
             return m.queryRenderedFeatures(m.project([lon, lat]), {layers: ['households']})
               .map(f => [f.properties.id, f.properties.status]); }""",
        [lon, lat],
    )
    return {int(i): STATUS_ZH[status] for i, status in features}


def test_an_entrance_popup_lists_its_households_with_status_and_history(page, e2e_engine):
    from api.models import Household

    lon, lat, households = shared_point(e2e_engine)
    with e2e_engine.connect() as conn:
        rooms = dict(
            conn.execute(
                select(Household.id, Household.room).where(Household.id.in_(households))
            ).all()
        )
    open_map(page)
    click_at(page, lon, lat, 15.3)
    popup = page.locator(".entrance-popup")
    rows = popup.locator("ul.entrance-households li[data-id]")
    rows.first.wait_for()
    listed = [int(i) for i in rows.evaluate_all("els => els.map(e => e.dataset.id)")]
    assert sorted(listed) == households
    shown = {}
    for n, household in enumerate(listed):
        row = rows.nth(n)
        assert rooms[household] in row.locator(".room").inner_text()
        shown[household] = row.locator(".flat-status").inner_text()
    screenshot(page, "map-entrance-households")

    rows.nth(1).locator("button.history-link").click()  # the second flat: its own history
    page.locator(".household-popup .history").wait_for()
    assert page.inner_text(".household-popup h4").startswith(f"#{listed[1]} ")
    page.click("button.back-entrance")  # back to the entrance's list
    back = page.locator(".entrance-popup ul.entrance-households li[data-id]")
    back.first.wait_for()
    assert back.count() == len(households)

    # Each flat's status is the one its own dot is drawn with, zoomed in.
    assert shown == drawn_statuses(page, lon, lat)


def test_the_task_popup_speaks_chinese_urgency(page, e2e_engine, add_task):
    lon, lat, _ = shared_point(e2e_engine)
    add_task(lonlat=(lon + 0.0004, lat + 0.0004), title="路灯不亮", urgency="utility")
    open_map(page)
    click_at(page, lon + 0.0004, lat + 0.0004, 16.5)
    popup = page.locator(".task-popup")
    popup.wait_for()
    assert popup.locator("tr").last.inner_text().split() == ["紧急程度", "水电气热"]


# --- small things --------------------------------------------------------------------------------
def test_the_map_has_a_favicon(page):
    page.goto("/map")
    href = page.get_attribute("link[rel=icon]", "href")
    assert href and page.request.get(href).status == 200


def test_the_week_chosen_is_kept_in_the_url_across_a_reload(page):
    from api.services.weeks import week_of

    open_map(page)
    last_week = week_of(datetime.now(UTC) - timedelta(days=7))
    page.fill("#week", last_week)
    page.dispatch_event("#week", "change")
    assert f"week={last_week}" in page.url
    with page.expect_response(lambda r: "/api/v1/tiles/grids/" in r.url) as tile:
        page.reload()
    assert f"week={last_week}" in tile.value.url
    assert page.input_value("#week") == last_week


def test_the_week_steps_back_and_on_but_not_past_the_week_under_way(page):
    """Found by the map's review: the picker took a week to come, which the map drew with every
    grid red at 0 % (no visits yet), and on desktop Firefox and iOS Safari `<input type=week>`
    is a bare text box, so a leader had to type "2026-W48" to look a week back. 上一周 / 下一周
    step the week (kept in the link); 下一周 stops at the week under way, and a week to come
    typed into the box is said and set back to it."""
    from api.services.weeks import shift_week, week_of

    this_week = week_of(datetime.now(UTC))
    open_map(page)
    assert page.get_attribute("#week", "max") == this_week
    assert page.is_disabled("#week-next")
    page.click("#week-prev")
    assert page.input_value("#week") == shift_week(this_week, -1)
    assert f"week={shift_week(this_week, -1)}" in page.url
    assert not page.is_disabled("#week-next")
    page.click("#week-next")
    assert page.input_value("#week") == this_week and page.is_disabled("#week-next")
    page.fill("#week", shift_week(this_week, 2))
    page.dispatch_event("#week", "change")
    assert page.input_value("#week") == this_week
    assert page.inner_text("#map-status") == "未来的周还没有走访记录，已显示本周。"
    for name in ("#week-prev", "#week-next"):
        box = page.locator(name).bounding_box()
        assert box["height"] >= 24 and box["width"] >= 24


GRID_POINT = """(code) => {
  const map = window.gridworkMap;
  const f = map.querySourceFeatures('grids', {sourceLayer: 'grids'})
    .find(f => f.properties.code === code);
  const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0]
                                               : f.geometry.coordinates[0][0];
  const lon = ring.reduce((s, c) => s + c[0], 0) / ring.length;
  const lat = ring.reduce((s, c) => s + c[1], 0) / ring.length;
  const p = map.project([lon, lat]);
  return {x: p.x, y: p.y};
}"""

WEEK_DRAWN = """(week) => {
  const map = window.gridworkMap;
  const weeks = map.querySourceFeatures('grids', {sourceLayer: 'grids'})
    .map(f => f.properties.week);
  return map.loaded() && map.areTilesLoaded() && weeks.length > 0 && weeks.every(w => w === week);
}"""


@pytest.fixture()
def visited_last_week(e2e_engine):
    """Three households of the demo grid visited last week (found at home), one tried in vain."""
    import uuid

    from geoalchemy2.shape import to_shape

    from api.models import Grid, Household, User, Visit
    from api.services.weeks import week_of

    when = datetime.now(UTC) - timedelta(days=7)
    with Session(e2e_engine) as session:
        grid = session.scalar(select(Grid).where(Grid.code == DEMO_GRID))
        worker = session.scalar(select(User).where(User.username == "worker01"))
        households = session.scalars(
            select(Household).where(Household.grid_id == grid.id).order_by(Household.id.desc())
        ).all()[:4]
        outcomes = ["met"] * 3 + ["nobody_home"]
        for household, outcome in zip(households, outcomes, strict=True):
            session.add(
                Visit(
                    id=uuid.uuid4(),
                    worker_id=worker.id,
                    household_id=household.id,
                    grid_id=grid.id,
                    visited_at=when,
                    utc_offset_minutes=480,
                    week=week_of(when),
                    location=household.location,
                    datum="wgs84",
                    outcome=outcome,
                    grade="ok",
                    raw_lon=to_shape(household.location).x,
                    raw_lat=to_shape(household.location).y,
                )
            )
        session.commit()
    return week_of(when)


def test_a_past_weeks_grid_popup_names_its_week_and_reads_that_weeks_report(
    page, visited_last_week
):
    """The grid popup said "本周走访覆盖率" (this week's coverage) whatever week was shown, and a
    popup open when the week was switched stayed, still showing the other week's figures under
    the new week's map. A switch now closes it, and a past week's popup names its week, with the
    figures that week's report gives the leader."""
    last_week = visited_last_week
    open_map(page)
    point = page.evaluate(GRID_POINT, DEMO_GRID)
    page.mouse.click(point["x"], point["y"])
    popup = page.locator(".grid-popup")
    popup.wait_for()
    assert "本周走访覆盖率" in popup.inner_text()
    page.fill("#week", last_week)
    page.dispatch_event("#week", "change")
    page.wait_for_function(WEEK_DRAWN, arg=last_week)
    assert popup.count() == 0  # this week's figures are not left over last week's map
    page.mouse.click(point["x"], point["y"])
    popup.wait_for()
    assert f"{last_week} 走访覆盖率" in popup.inner_text()
    assert "本周" not in popup.inner_text()
    report = page.evaluate(
        """async (week) => {
          const token = localStorage.getItem('gridwork.token');
          const answer = await fetch(`/api/v1/reports/coverage?week=${week}`,
                                     {headers: {Authorization: `Bearer ${token}`}});
          return answer.json();
        }""",
        last_week,
    )
    row = next(g for g in report["grids"] if g["code"] == DEMO_GRID)
    assert int(popup.locator(".households").inner_text()) == row["households"]
    assert int(popup.locator(".visited").inner_text()) == row["visited"]
    assert popup.locator(".coverage").inner_text() == f"{row['coverage']}%"


def test_a_map_left_open_into_a_new_week_moves_on_to_it(page):
    """A leader's map opened on Sunday evening and still open on Monday morning (a computer that
    slept) kept showing the week before, which was no longer the week under way: coverage full,
    every dot "visited", as if the new week's round were done. A map whose week was not chosen
    (none in the link) now moves on to the new week; one chosen stays."""
    from api.services.weeks import shift_week, week_bounds, week_of

    this_week = week_of(datetime.now(UTC))
    monday = week_bounds(shift_week(this_week, 1))[0]  # 00:00 Asia/Shanghai, as UTC
    page.clock.install(time=monday - timedelta(minutes=2))
    open_map(page)
    assert page.input_value("#week") == this_week
    next_week = shift_week(this_week, 1)
    with page.expect_request(lambda r: "/api/v1/tiles/grids/" in r.url and next_week in r.url):
        page.clock.run_for(3 * 60_000)
    assert page.input_value("#week") == next_week
    assert "week=" not in page.url  # still the week under way, whichever it is
    page.fill("#week", this_week)  # chosen: it stays
    page.dispatch_event("#week", "change")
    page.clock.run_for(3 * 60_000)
    assert page.input_value("#week") == this_week


def test_a_week_before_the_grids_were_drawn_says_so(page):
    """A week chosen from before the district's grids were drawn (the system began a month
    ago): the map showed nothing and said nothing, as if it had failed. It now says the week
    has no grids; the week under way, which has them, takes the words away."""
    from api.services.weeks import week_of

    early = week_of(datetime.now(UTC) - timedelta(days=70))  # the e2e register: 28 days old
    open_map(page)
    page.fill("#week", early)
    page.dispatch_event("#week", "change")
    page.wait_for_selector("#map-status:not([hidden])")
    assert (
        page.inner_text("#map-status") == f"所选的周（{early}）没有网格：网格是在这之后才划定的。"
    )
    page.fill("#week", week_of(datetime.now(UTC)))
    page.dispatch_event("#week", "change")
    page.wait_for_selector("#map-status", state="hidden")


def test_a_map_left_open_asks_for_its_layers_again_every_few_minutes(page):
    """A leader watching the map through the day saw the coverage, dots and tasks of the hour
    it was opened until they moved the map: its tiles were read once. The layers are asked for
    again every five minutes while the page is in sight (an unchanged tile costs a 304)."""
    page.clock.install()
    open_map(page)
    page.evaluate(
        """() => {
          window.asked = [];
          window.gridworkMap.on('sourcedataloading', (e) => window.asked.push(e.sourceId));
        }"""
    )
    page.clock.run_for(4 * 60_000)
    assert page.evaluate("() => window.asked") == []
    page.clock.run_for(60_000 + 1000)
    page.wait_for_function("() => ['grids', 'tasks'].every((s) => asked.includes(s))")
    wait_for_grids(page)


PENDING_TILES = """() => Object.values(window.gridworkMap.style.tileManagers)
  .flatMap((manager) => manager._inViewTiles.getAllTiles())
  .filter((tile) => tile.state !== 'loaded' && tile.state !== 'errored').length"""


def test_a_refresh_that_finds_nothing_changed_stops_saying_it_is_loading(page):
    """The five-minute refresh asks for every tile again; one unchanged comes back with its old
    ETag and MapLibre takes it back without a word (no `data` event, so no frame drawn after
    it): when it was the last to come, the map's `idle` never came. "正在读取…" stayed in the
    toolbar until the map was moved, and what is worked out at `idle` (a week without grids)
    went unsaid; the double week change of a test hit the same, now and then."""
    first: dict[str, int] = {}
    page.on("response", lambda r: first.setdefault(r.url, r.status) if "/tiles/" in r.url else None)
    held: list = []
    hold = {"yes": False}

    def route_it(route):
        # In the refresh, one tile that had content (an ETag the map holds) comes last.
        url = route.request.url
        if hold["yes"] and first.get(url) == 200 and (not held or held[0].request.url == url):
            held.append(route)
        else:
            route.continue_()

    page.route("**/api/v1/tiles/**", route_it)
    page.clock.install()
    open_map(page)
    page.wait_for_selector("#map-loading", state="hidden")
    page.evaluate(
        "() => { window.idled = 0; window.gridworkMap.on('idle', () => window.idled++); }"
    )
    hold["yes"] = True
    page.clock.run_for(5 * 60_000 + 1000)  # the refresh
    # Every other tile back and drawn (two frames after), the held one not.
    page.wait_for_function(f"() => ({PENDING_TILES})() <= 1")
    assert held and page.evaluate(PENDING_TILES) == 1
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    hold["yes"] = False
    while held:
        held.pop(0).continue_()
    page.wait_for_function("() => window.gridworkMap.loaded()")  # every tile back
    page.wait_for_function("() => window.idled > 0", timeout=10_000)
    page.wait_for_selector("#map-loading", state="hidden")


# --- tiles the server refuses ---------------------------------------------------------------------
def test_the_map_says_when_the_server_refuses_its_tiles(page):
    """A refused tile (the server busy, a 503) was dropped without a word: the leader looked at
    an empty district, as if no grid were theirs."""
    problem = '{"title": "Service Unavailable", "status": 503, "detail": "维护中"}'
    page.route(
        "**/api/v1/tiles/**",
        lambda route: route.fulfill(
            status=503, body=problem, content_type="application/problem+json"
        ),
    )
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_selector("#map-status:not([hidden])")
    said = "地图图层读取失败：服务器暂时不可用，请稍后再试。（服务器：维护中）"
    assert page.inner_text("#map-status") == said


def test_a_link_with_a_week_the_server_refuses_says_why(page):
    """A shared or hand-edited link with a week that is none (2026-W99): the week box shows
    nothing (the browser drops the value), every tile was refused (422) and the map stayed
    empty without saying why. Then it was said in the server's English alone; now in Chinese,
    with what to do, the server's words after it."""
    page.goto("/map?week=2026-W99")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_selector("#map-status:not([hidden])")
    said = (
        "地图图层读取失败：所选的周无效，请在“周”中重新选择。"
        "（服务器：'2026-W99' is not an ISO week like 2026-W47.）"
    )
    assert page.inner_text("#map-status") == said


def test_the_map_says_when_it_cannot_reach_the_server_for_its_tiles(page):
    """A tile that never got an answer (the network down, the server or its proxy unreachable:
    MapLibre's error has status 0) was dropped without a word, as a refusal once was: the
    leader watched an empty map. It is said, in Chinese, and goes once a tile is drawn again."""
    reachable = {"yes": True}
    page.route(
        "**/api/v1/tiles/**",
        lambda route: (
            route.continue_() if reachable["yes"] else route.abort("internetdisconnected")
        ),
    )
    open_map(page)
    reachable["yes"] = False
    page.evaluate("() => window.gridworkMap.jumpTo({zoom: window.gridworkMap.getZoom() - 2})")
    page.wait_for_selector("#map-status:not([hidden])")
    assert page.inner_text("#map-status") == "地图图层读取失败：无法连接服务器，请检查网络后再试"
    reachable["yes"] = True
    page.evaluate("() => window.gridworkMap.jumpTo({zoom: window.gridworkMap.getZoom() + 3})")
    page.wait_for_selector("#map-status", state="hidden")


@pytest.fixture
def suspect_visit(e2e_engine):
    """A visit this week recorded ~130 m from its household's door, graded suspect."""
    import uuid

    from geoalchemy2.shape import from_shape, to_shape
    from shapely.geometry import Point

    from api.models import Grid, Household, User, Visit
    from api.services.weeks import week_of

    now = datetime.now(UTC) - timedelta(seconds=30)
    with Session(e2e_engine) as session:
        household = session.scalars(
            select(Household)
            .join(Grid, Grid.id == Household.grid_id)
            .where(Grid.code == DEMO_GRID)
            .order_by(Household.id)
        ).first()
        worker = session.scalar(select(User).where(User.username == "worker01"))
        home = to_shape(household.location)
        stood = Point(home.x + 0.0015, home.y)
        visit = Visit(
            id=uuid.uuid4(), worker_id=worker.id, household_id=household.id,
            grid_id=household.grid_id, visited_at=now, utc_offset_minutes=480,
            week=week_of(now), location=from_shape(stood, srid=4326), datum="wgs84",
            raw_lon=stood.x, raw_lat=stood.y, outcome="met", grade="suspect",
            reasons=["very_far_from_household"], evidence={"distance_to_household_m": 128.0},
        )  # fmt: skip
        session.add(visit)
        session.commit()
        made = (str(visit.id), stood.x, stood.y, worker.display_name)
    yield made
    with Session(e2e_engine) as session:
        session.execute(Visit.__table__.delete().where(Visit.id == uuid.UUID(made[0])))
        session.commit()


def test_the_leader_shows_where_visits_were_recorded_and_opens_a_suspect_one(page, suspect_visit):
    """The visits layer is drawn when the leader asks for it (each of its tiles is an audited
    read of the visits it holds): a ring where the worker stood, coloured by its location
    evidence; its popup tells why it is suspect, who recorded it and how far from the door."""
    visit_id, lon, lat, worker_name = suspect_visit
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/tiles/visits/" in r.url else None)
    open_map(page)
    click_at(page, lon, lat, 16.5)  # households drawn here; the visits layer is off
    page.keyboard.press("Escape")
    assert asked == []

    page.check("#show-visits")
    point = page.wait_for_function(
        """(id) => { const m = window.gridworkMap;
             if (!m.loaded() || !m.areTilesLoaded()) return null;
             const f = m.queryRenderedFeatures({layers: ['visits']})
               .find(f => f.properties.visit_id === id);
             if (!f) return null;
             const p = m.project(f.geometry.coordinates); return [p.x, p.y]; }""",
        arg=visit_id,
    ).json_value()
    assert asked and page.locator("#legend .legend-visits").is_visible()
    page.mouse.click(*point)
    listed = page.locator(".hit-list button.hit:has-text('走访')")
    popup = page.locator(".visit-popup")
    popup.or_(listed).first.wait_for()
    if listed.count():
        listed.first.click()
    popup.locator(".worker").wait_for()
    assert popup.locator(".grade").inner_text() == "可疑: 离住户很远"
    assert popup.locator(".worker").inner_text() == worker_name
    assert popup.locator(".to-household").inner_text() == "128 米"
    screenshot(page, "map-visit-popup")


def boxes_overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


@pytest.mark.parametrize("viewport", [(1280, 800), (768, 1024)], ids=["desktop", "tablet"])
def test_the_legend_leaves_the_scale_in_sight(page, viewport):
    """The legend sat over the scale bar (both at the bottom left): "100 m" was hidden."""
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    open_map(page)
    legend = page.locator("#legend").bounding_box()
    scale = page.locator(".maplibregl-ctrl-scale").bounding_box()
    assert not boxes_overlap(legend, scale)


def test_on_a_tablet_the_toolbar_leaves_the_zoom_buttons_free(page):
    """An admin's toolbar (the accounts link too) with a refusal said in it ran under the zoom
    buttons at the top right of a tablet: "+" could not be tapped."""
    page.set_viewport_size({"width": 768, "height": 1024})
    page.goto("/map?lang=en&week=2026-W99")
    sign_in(page, "admin01", DEMO_PASSWORD)
    page.wait_for_selector("#map-status:not([hidden])")
    page.wait_for_selector("#accounts-link:not([hidden])")
    toolbar = page.locator("#toolbar").bounding_box()
    zoom = page.locator(".maplibregl-ctrl-top-right").bounding_box()
    assert not boxes_overlap(toolbar, zoom)
    page.locator(".maplibregl-ctrl-zoom-in").click(trial=True)


def test_a_popup_opened_near_the_top_is_not_hidden_under_the_toolbar(page):
    """A popup opens above the point clicked: near the top of the map its heading and its
    close button went under the toolbar, which stood over every popup."""
    open_map(page)
    toolbar = page.locator("#toolbar").bounding_box()
    x = toolbar["x"] + toolbar["width"] / 2

    def open_grid_popup(y: float) -> dict:
        # The demo grid's middle brought under the point (the map fits the grids clear of the
        # toolbar: none need be under it).
        page.evaluate(
            """([x, y, point]) => {
              const map = window.gridworkMap;
              map.panBy([point.x - x, point.y - y], {animate: false});
            }""",
            [x, y, page.evaluate(GRID_POINT, DEMO_GRID)],
        )
        page.wait_for_function("() => window.gridworkMap.loaded()")
        assert page.evaluate(
            "([x, y]) => window.gridworkMap.queryRenderedFeatures([x, y], {layers: ['grids-fill']})"
            ".length > 0",
            [x, y],
        )
        page.mouse.click(x, y)
        popup = page.locator(".maplibregl-popup")
        popup.wait_for()
        return popup.bounding_box()

    # Measured where it fits, then opened where its top meets the toolbar (still above the point).
    height = open_grid_popup(400)["height"]
    page.locator(".maplibregl-popup-close-button").click()
    box = open_grid_popup(toolbar["y"] + height + 4)
    assert box["y"] < toolbar["y"] + toolbar["height"]  # the toolbar's rows and the popup's meet
    covered = page.evaluate(
        """() => ['.maplibregl-popup-close-button', '.grid-popup h4'].filter((selector) => {
          const box = document.querySelector(selector).getBoundingClientRect();
          const top = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
          return !top?.closest('.maplibregl-popup');
        })"""
    )
    assert covered == []


def test_the_legend_says_the_black_ring_is_a_must_visit_household_not_yet_visited(page):
    """The black ring is drawn round a must-visit household not visited in the week shown
    (`must_visit_due`), and the legend called it "必访对象" (a must-visit household): a leader
    read a visited 80-year-old's dot, without its ring, as off the must-visit list."""
    from api.services.weeks import week_of

    open_map(page)
    ring = page.evaluate(
        "() => JSON.stringify(window.gridworkMap.getPaintProperty('households',"
        " 'circle-stroke-width'))"
    )
    assert "must_visit_due" in ring
    assert "必访对象（本周未访）" in page.inner_text("#legend")
    page.fill("#week", week_of(datetime.now(UTC) - timedelta(days=7)))
    page.dispatch_event("#week", "change")
    page.wait_for_function(
        "() => document.querySelector('#legend').innerText.includes('必访对象（该周未访）')"
    )


@pytest.fixture()
def tablet(browser, live_server):
    """A touch tablet (768x1024, a coarse pointer: a finger)."""
    context = browser.new_context(
        base_url=live_server, viewport={"width": 768, "height": 1024}, has_touch=True
    )
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def test_on_a_touch_tablet_the_maps_controls_are_big_enough_to_tap(tablet):
    """On a tablet the toolbar's week box was 21 px tall, its links 16 px, its tick box 13 px,
    the zoom buttons and a popup's close button 29 px and less: a finger hit the neighbour."""
    page = tablet
    open_map(page)
    page.mouse.click(384, 600)  # a grid: its popup
    page.locator(".grid-popup").wait_for()
    small = page.evaluate(
        """() => [...document.querySelectorAll(
            '#toolbar input:not([type=checkbox]), #toolbar a, #toolbar label,'
            + ' .maplibregl-ctrl button, .maplibregl-popup button')]
          .filter((el) => el.getClientRects().length && !el.closest('[hidden]'))
          .map((el) => [el, el.getBoundingClientRect()])
          .filter(([, box]) => box.height < 40)
          .map(([el, box]) => `${el.tagName} ${el.className} "${el.textContent.trim()}"`
                              + ` ${Math.round(box.width)}x${Math.round(box.height)}`)"""
    )
    assert small == []
    box = page.locator("#show-visits").bounding_box()
    assert box["width"] >= 20 and box["height"] >= 20
    # The bigger close button leaves the popup's heading in sight.
    close = page.locator(".maplibregl-popup-close-button").bounding_box()
    heading = page.evaluate(
        """() => { const range = document.createRange();
                   range.selectNodeContents(document.querySelector('.grid-popup h4'));
                   const r = range.getBoundingClientRect();
                   return {x: r.x, y: r.y, width: r.width, height: r.height}; }"""
    )
    assert not boxes_overlap(close, heading)
    screenshot(page, "map-touch-tablet")


@pytest.mark.parametrize("path", ["/map", "/accounts"])
def test_the_sign_in_form_offers_the_other_language(page, path):
    """The map's and the accounts page's language link is in the toolbar, shown once signed
    in: an English-speaking leader met a Chinese sign-in form with no way to switch."""
    page.goto(path)
    link = page.locator("#signin:not([hidden]) #signin-lang")
    assert link.inner_text() == "English"
    link.click()
    page.wait_for_url("**lang=en**")
    assert page.locator("#signin button[type=submit]").inner_text() == "Sign in"
    assert page.locator("#signin-lang").inner_text() == "中文"


@pytest.fixture()
def phone(browser, live_server):
    """A phone (375x667 CSS px, touch: a coarse pointer)."""
    context = browser.new_context(
        base_url=live_server,
        viewport={"width": 375, "height": 667},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


DRAWN_GRIDS_BOX = """() => {
  const map = window.gridworkMap;
  let box = null;
  for (const f of map.queryRenderedFeatures({layers: ['grids-fill']})) {
    const rings = f.geometry.type === 'Polygon' ? [f.geometry.coordinates[0]]
                                                : f.geometry.coordinates.map((p) => p[0]);
    for (const ring of rings) for (const c of ring) {
      const p = map.project(c);
      box = box ? {x0: Math.min(box.x0, p.x), y0: Math.min(box.y0, p.y),
                   x1: Math.max(box.x1, p.x), y1: Math.max(box.y1, p.y)}
                : {x0: p.x, y0: p.y, x1: p.x, y1: p.y};
    }
  }
  return box && {x: box.x0, y: box.y0, width: box.x1 - box.x0, height: box.y1 - box.y0};
}"""


def test_on_a_phone_the_legend_and_toolbar_leave_the_leaders_grids_in_sight(phone, e2e_engine):
    """On a phone the legend (always open, 330 px of a 667 px screen) and the toolbar stood over
    half of the leader's grids, which the map had zoomed to as if nothing covered them. The
    legend is folded on a phone (a 40 px "图例" button opens it) and the grids are fitted in
    the part of the map left free."""
    page = phone
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_function(FITTED, arg=grids_extent(e2e_engine))
    wait_for_grids(page)
    grids = page.evaluate(DRAWN_GRIDS_BOX)
    legend = page.locator("#legend").bounding_box()
    toolbar = page.locator("#toolbar").bounding_box()
    assert not boxes_overlap(grids, legend), (grids, legend)
    assert not boxes_overlap(grids, toolbar), (grids, toolbar)
    assert "0%" not in page.inner_text("#legend")  # folded
    toggle = page.locator("#legend summary")
    assert toggle.bounding_box()["height"] >= 40
    toggle.tap()
    assert "网格覆盖率" in page.inner_text("#legend")
    assert page.locator("#legend").bounding_box()["height"] > 200
    screenshot(page, "map-phone")


@pytest.mark.parametrize("path", ["/map", "/accounts", "/window"])
def test_on_a_phone_the_sign_in_form_is_big_enough_to_tap(phone, path):
    """The map's sign-in form on a phone: its boxes and button 21 px tall, its language link
    16 px (the app's are 40 px): a thumb hit the neighbour, and the phone zoomed the page on
    typing into a box of 13 px text. The accounts page's (15 px text) and the window page's
    (boxes 21 px tall) likewise, until the lead's fix of the same day."""
    page = phone
    page.goto(path)
    page.wait_for_selector("#signin:not([hidden])")
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('#signin input, #signin button, #signin a')]
          .map((el) => [el.name || el.textContent, el.getBoundingClientRect().height,
                        parseFloat(getComputedStyle(el).fontSize)])"""
    )
    assert [name for name, height, _ in sizes if height < 40] == []
    assert [name for name, _, font in sizes if font < 16] == []
    if path == "/map":
        sign_in(page, "leader01", DEMO_PASSWORD)
        wait_for_grids(page)


# --- loading and failing: said, with a retry ------------------------------------------------------
def test_the_map_says_it_is_loading_while_its_tiles_are_on_the_way(page):
    """While the layers' tiles were on their way nothing showed: a slow network looked like an
    empty district. A discreet "正在读取…" shows in the toolbar until they have come."""
    held: list = []
    hold = {"yes": False}
    page.route(
        "**/api/v1/tiles/**",
        lambda route: held.append(route) if hold["yes"] else route.continue_(),
    )
    open_map(page)
    assert page.is_hidden("#map-loading")
    hold["yes"] = True
    page.click("#week-prev")  # the week before: every layer's tiles asked for again
    page.wait_for_selector("#map-loading:not([hidden])")
    assert page.inner_text("#map-loading") == "正在读取…"
    hold["yes"] = False
    while held:
        held.pop().continue_()
    page.wait_for_selector("#map-loading", state="hidden")


def test_a_failed_load_is_said_with_a_retry_that_loads_it_again(page):
    """A refused tile was said, but the leader could only pan the map to try again: a retry
    button stands beside what is said, and loads the layers again."""
    failing = {"yes": False}
    problem = '{"title": "Service Unavailable", "status": 503}'
    page.route(
        "**/api/v1/tiles/**",
        lambda route: (
            route.fulfill(status=503, body=problem, content_type="application/problem+json")
            if failing["yes"]
            else route.continue_()
        ),
    )
    open_map(page)
    assert page.is_hidden("#map-retry")
    failing["yes"] = True
    page.click("#week-prev")
    page.wait_for_selector("#map-retry:not([hidden])")
    assert page.inner_text("#map-status").startswith("地图图层读取失败：服务器暂时不可用")
    assert page.inner_text("#map-retry") == "重试"
    failing["yes"] = False
    with page.expect_response(lambda r: "/api/v1/tiles/grids/" in r.url and r.ok):
        page.click("#map-retry")
    page.wait_for_selector("#map-status", state="hidden")
    assert page.is_hidden("#map-retry")
    assert wait_for_grids(page)


def test_a_tile_refused_with_401_while_offline_is_said_in_english_with_a_retry(page):
    """A tile refused with 401 (the token expired) whose refresh got no answer (offline) was
    dropped without a word. It is said (here in English) and the retry refreshes and loads."""
    offline = {"yes": False}

    def tiles(route):
        if offline["yes"]:
            route.fulfill(status=401, body='{"status": 401}', content_type="application/json")
        else:
            route.continue_()

    page.route("**/api/v1/tiles/**", tiles)
    page.route(
        "**/api/v1/auth/refresh",
        lambda route: route.abort("internetdisconnected") if offline["yes"] else route.continue_(),
    )
    page.goto("/map?lang=en")
    sign_in(page, "leader01", DEMO_PASSWORD)
    wait_for_grids(page)
    offline["yes"] = True
    page.click("#week-prev")
    page.wait_for_selector("#map-retry:not([hidden])")
    assert page.inner_text("#map-status") == (
        "The map's layers could not be read: "
        "the server cannot be reached; check the network and try again"
    )
    assert page.inner_text("#map-retry") == "Retry"
    offline["yes"] = False
    page.click("#map-retry")
    page.wait_for_selector("#map-status", state="hidden")
    assert wait_for_grids(page)


def test_the_retry_reads_the_users_grids_again_when_that_failed(page, e2e_engine):
    failing = {"yes": True}
    problem = '{"title": "Service Unavailable", "status": 503}'
    page.route(
        "**/api/v1/grids?*",
        lambda route: (
            route.fulfill(status=503, body=problem, content_type="application/problem+json")
            if failing["yes"]
            else route.continue_()
        ),
    )
    page.goto("/map")
    sign_in(page, "leader01", DEMO_PASSWORD)
    page.wait_for_selector("#map-retry:not([hidden])")
    failing["yes"] = False
    page.click("#map-retry")
    page.wait_for_function(FITTED, arg=grids_extent(e2e_engine))
    page.wait_for_selector("#map-status", state="hidden")


# --- the keyboard ---------------------------------------------------------------------------------
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return 'body';
  if (el.classList.contains('maplibregl-canvas')) return 'canvas';
  if (el.closest('.maplibregl-popup')) return 'popup:' + el.className;
  if (el.closest('.maplibregl-ctrl')) return 'control:' + el.className;
  if (el.closest('#legend')) return 'legend';
  return '#' + el.id;
}"""

FOCUS_RING = """() => {
  const style = getComputedStyle(document.activeElement);
  return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
}"""


def tab_to(page, wanted: str, limit: int = 25) -> list[str]:
    """Press Tab until `wanted` (as FOCUSED names it) has the focus: the names on the way."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(FOCUSED))
        if seen[-1] == wanted:
            return seen
    raise AssertionError(f"{wanted} never took the focus: {seen}")


def test_the_keyboard_reaches_the_toolbar_first_and_steps_the_week(page):
    """The map came first in the page: a keyboard user tabbed through the map and its zoom
    buttons before the week stepper and the layer toggle. The toolbar and the legend come
    first, each control showing a clear focus ring; Enter steps the week, Space toggles the
    visits layer."""
    from api.services.weeks import shift_week, week_of

    open_map(page)
    page.reload()  # signed in: the focus starts at the top of the page
    wait_for_grids(page)
    order = tab_to(page, "control:maplibregl-ctrl-zoom-in")
    assert order[0] == "#week-prev"
    zoom_in = "control:maplibregl-ctrl-zoom-in"
    pairs = [("#week-prev", "#show-visits"), ("#show-visits", "legend"), ("legend", "canvas")]
    for earlier, later in [*pairs, ("canvas", zoom_in)]:
        assert order.index(earlier) < order.index(later), order
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) == "canvas"
    assert page.evaluate(FOCUS_RING)
    assert page.locator(".keyboard-crosshair").is_visible()  # where Enter looks

    page.reload()
    wait_for_grids(page)
    tab_to(page, "#week-prev")
    assert page.evaluate(FOCUS_RING)
    page.keyboard.press("Enter")
    assert page.input_value("#week") == shift_week(week_of(datetime.now(UTC)), -1)
    tab_to(page, "#show-visits")
    page.keyboard.press("Space")
    assert page.is_checked("#show-visits")
    page.keyboard.press("Space")
    assert not page.is_checked("#show-visits")


def test_a_popup_opens_from_the_keyboard_and_escape_closes_it(page, e2e_engine):
    """A popup opened only to a mouse click, and Escape did not close it. With the map
    focused, Enter opens what is under its centre (the crosshair): the focus goes into the
    popup, each button shows its focus, Enter on one opens it (the focus following), and
    Escape or the close button closes the popup, the focus back on the map."""
    lon, lat, households = shared_point(e2e_engine)
    open_map(page)
    page.evaluate(
        "([lon, lat]) => window.gridworkMap.jumpTo({center: [lon, lat], zoom: 16.5})", [lon, lat]
    )
    page.wait_for_function(
        """() => { const m = window.gridworkMap;
                   return m.loaded() && m.areTilesLoaded() &&
                     m.queryRenderedFeatures({layers: ['households']}).length > 0; }"""
    )
    tab_to(page, "canvas")
    page.keyboard.press("Enter")
    page.locator(".hit-list button.hit").first.wait_for()
    assert page.locator(".hit-list button.hit").count() == len(households)
    assert page.evaluate(FOCUSED) == "popup:hit"
    assert page.evaluate(FOCUS_RING)
    page.keyboard.press("Tab")  # the second household
    page.keyboard.press("Enter")
    page.locator(".household-popup .history").wait_for()
    assert page.inner_text(".household-popup h4").startswith(f"#{households[1]} ")
    assert page.evaluate(FOCUSED) == "popup:back"
    page.keyboard.press("Enter")  # back to the list
    page.locator(".hit-list button.hit").first.wait_for()
    assert page.evaluate(FOCUSED) == "popup:hit"
    page.keyboard.press("Escape")
    page.wait_for_selector(".maplibregl-popup", state="detached")
    assert page.evaluate(FOCUSED) == "canvas"

    page.keyboard.press("Enter")  # again, closed by its close button this time
    page.locator(".hit-list button.hit").first.wait_for()
    assert page.get_attribute(".maplibregl-popup-close-button", "aria-label") == "关闭"
    page.focus(".maplibregl-popup-close-button")
    page.keyboard.press("Enter")
    page.wait_for_selector(".maplibregl-popup", state="detached")
    assert page.evaluate(FOCUSED) == "canvas"


# --- a household's older visits -----------------------------------------------------------------
@pytest.fixture()
def long_history(e2e_engine):
    """A household of a stair entrance visited 13 more times over the last two weeks: its
    history runs past the popup's first ten. Yields (lon, lat, household id, visits in all)."""
    import uuid

    from geoalchemy2.shape import to_shape

    from api.models import Household, User, Visit
    from api.services.weeks import week_of

    lon, lat, households = shared_point(e2e_engine)
    chosen = households[1]
    made = []
    with Session(e2e_engine) as session:
        household = session.get(Household, chosen)
        worker = session.scalar(select(User.id).where(User.username == "worker01"))
        point = to_shape(household.location)
        for n in range(13):
            when = datetime.now(UTC) - timedelta(hours=2 + 24 * n)
            visit = Visit(
                id=uuid.uuid4(), worker_id=worker, household_id=chosen,
                grid_id=household.grid_id, visited_at=when, utc_offset_minutes=480,
                week=week_of(when), location=household.location, datum="wgs84",
                raw_lon=point.x, raw_lat=point.y, outcome="met", grade="ok",
            )  # fmt: skip
            session.add(visit)
            made.append(visit.id)
        session.commit()
        total = session.scalar(
            select(func.count()).select_from(Visit).where(Visit.household_id == chosen)
        )
    yield lon, lat, chosen, total
    with Session(e2e_engine) as session:
        session.execute(Visit.__table__.delete().where(Visit.id.in_(made)))
        session.commit()


def test_a_households_popup_loads_its_older_visits_on_asking(page, long_history):
    """The popup showed a household's ten latest visits and no more: a leader could not see
    what came before. "更早的走访记录" reads the next ten (the API's pages), until none is left."""
    lon, lat, household, total = long_history
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if f"/households/{household}/" in r.url else 0)
    open_map(page)
    click_at(page, lon, lat, 16.5)
    page.locator(f".hit-list button.hit:has-text('#{household} ')").click()
    history = page.locator(".household-popup ul.history li")
    history.first.wait_for()
    assert history.count() == 10
    older = page.locator(".household-popup button.older")
    assert older.inner_text() == "更早的走访记录"
    older.click()
    page.wait_for_function(
        "(n) => document.querySelectorAll('.household-popup ul.history li').length === n",
        arg=total,
    )
    assert older.count() == 0  # none left to read
    assert len(set(history.all_inner_texts())) == total  # each once: none read twice
    assert any("page=2" in url for url in asked)


# --- a task at a household ------------------------------------------------------------------------
TASK_PIXELS = """([lon, lat, id]) => {
  const map = window.gridworkMap;
  const at = map.project([lon, lat]);
  const pixels = [];
  for (let dx = -24; dx <= 24; dx += 2) for (let dy = -24; dy <= 24; dy += 2) {
    const hit = map.queryRenderedFeatures([at.x + dx, at.y + dy], {layers: ['tasks']});
    if (hit.some((f) => f.properties.id === id)) pixels.push([at.x + dx, at.y + dy]);
  }
  const dot = map.queryRenderedFeatures(
    [[at.x - 4, at.y - 4], [at.x + 4, at.y + 4]], {layers: ['households', 'tasks']});
  return {at: [at.x, at.y], pixels, dot: dot.map((f) => f.layer.id)};
}"""


def test_a_task_at_a_household_leaves_its_dot_in_sight_and_either_lists_both(
    page, e2e_engine, add_task
):
    """A task at a household was drawn over the household's dot (a bigger circle on the same
    point): the dot, its colour and its must-visit ring were hidden. The task stands beside
    the dot where households are drawn; a click on either lists both."""
    lon, lat, households = shared_point(e2e_engine)
    task = add_task(household_id=households[0], title="门口堆物")
    open_map(page)
    page.evaluate(
        "([lon, lat]) => window.gridworkMap.jumpTo({center: [lon, lat], zoom: 16.5})", [lon, lat]
    )
    page.wait_for_function(
        """(id) => { const m = window.gridworkMap;
                   return m.loaded() && m.areTilesLoaded() && m.queryRenderedFeatures(
                     {layers: ['tasks']}).some((f) => f.properties.id === id); }""",
        arg=task,
    )
    drawn = page.evaluate(TASK_PIXELS, [lon, lat, task])
    assert "households" in drawn["dot"] and "tasks" not in drawn["dot"]  # the dot in sight
    assert drawn["pixels"], "the task is drawn nowhere near its household"
    screenshot(page, "map-task-beside-household")
    x = sum(p[0] for p in drawn["pixels"]) / len(drawn["pixels"])
    y = sum(p[1] for p in drawn["pixels"]) / len(drawn["pixels"])
    page.mouse.click(x, y)  # the task: it and the households at its place
    listed = page.locator(".hit-list button.hit")
    listed.first.wait_for()
    labels = listed.all_inner_texts()
    assert labels[0].startswith("任务: 门口堆物")
    assert sorted(int(label.split()[0][1:]) for label in labels[1:]) == households
    page.keyboard.press("Escape")
    page.wait_for_selector(".maplibregl-popup", state="detached")
    page.mouse.click(*drawn["at"])  # the dot: the households and the task at them
    listed.first.wait_for()
    assert listed.all_inner_texts() == labels


def test_a_task_not_at_a_household_is_drawn_where_it_is(page, e2e_engine, add_task):
    """Only a task at a household stands beside it: a pothole in the street, 35 m from the
    door, was drawn 12 px up and right of where it is (~15 m at z16.5)."""
    lon, lat, _ = shared_point(e2e_engine)
    here = (lon + 0.0004, lat)
    task = add_task(lonlat=here, title="路面坑洼")
    open_map(page)
    page.evaluate(
        "([lon, lat]) => window.gridworkMap.jumpTo({center: [lon, lat], zoom: 16.5})", list(here)
    )
    page.wait_for_function(
        """(id) => { const m = window.gridworkMap;
                   return m.loaded() && m.areTilesLoaded() && m.queryRenderedFeatures(
                     {layers: ['tasks-away']}).some((f) => f.properties.id === id); }""",
        arg=task,
    )
    layers = "['tasks', 'tasks-away']"
    drawn = page.evaluate(TASK_PIXELS.replace("['tasks']", layers), [*here, task])
    x = sum(p[0] for p in drawn["pixels"]) / len(drawn["pixels"])
    y = sum(p[1] for p in drawn["pixels"]) / len(drawn["pixels"])
    at = drawn["at"]
    assert abs(x - at[0]) <= 2 and abs(y - at[1]) <= 2  # centred on its point
    page.mouse.click(*at)
    page.locator(".maplibregl-popup").wait_for()
    assert "路面坑洼" in page.locator(".maplibregl-popup").inner_text()
    # The popup opens the task's own page: its history and the leader's steps.
    page.click(".maplibregl-popup button.open-task")
    page.wait_for_selector(f"#task-detail[data-task='{task}'] h2")
    assert page.inner_text("#task-detail h2") == "路面坑洼"
    assert page.locator(".maplibregl-popup").count() == 0
