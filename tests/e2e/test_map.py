"""The grid-leader map in headless Chromium: it signs in, draws the demo grids, shows coverage."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_GRID, expire_access_token, screenshot, sign_in

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


def test_clicking_a_grid_shows_its_coverage(page):
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
    assert int(popup.locator(".visited").inner_text()) == 10
    assert popup.locator(".coverage").inner_text() == f"{round(1000 * 10 / households) / 10}%"
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
