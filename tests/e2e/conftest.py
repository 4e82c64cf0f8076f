"""A live gridwork server on 127.0.0.1 over its own committed database, and headless Chromium.

The rest of the suite runs each test in a rolled-back transaction, which a server thread's own
connections cannot see. So these tests get a separate database (`<test db>_e2e`), migrated and
seeded with the demo district, committed, and dropped at the end of the run.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from tests.databases import create_database, drop_database, sibling_url
from tests.midnight import sleep_past_a_beijing_midnight

CHROMIUM = os.environ.get("GRIDWORK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
DEMO_GRID = "110101001001001"
DEMO_COMMUNITY = DEMO_GRID[:12]

# `context.set_default_timeout` does not reach `expect(...)`, whose own default is 5 s: too short
# on a loaded CI machine.
expect.set_options(timeout=20_000)


def poll(page, check, timeout_s: float = 20, interval_ms: int = 100):
    """Call `check()` until it returns something truthy (and return that), waiting `interval_ms`
    on the page between calls; after `timeout_s` its last (falsy) answer, for the caller to
    assert on."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        page.wait_for_timeout(interval_ms)


@pytest.fixture(autouse=True)
def _not_across_a_beijing_midnight():
    """A test taking its "today" or "this week" from the wall clock (the window's roster, the
    map's visits) while the app reads it again per request: not started just before the day
    turns."""
    sleep_past_a_beijing_midnight()


@pytest.fixture(scope="session")
def e2e_database_url(database_url):
    from api.cli import seed_demo
    from api.services.report_store import backdate_register
    from fixtures.demo import demo_district

    url = create_database(sibling_url(database_url, "_e2e"))
    engine = create_engine(url)
    district = demo_district()
    with Session(engine) as session:
        seed_demo(session, district)
        # As `gridwork seed demo` does: the district has existed for a month, so past weeks'
        # maps and reports have its grids and households.
        codes = [f["properties"]["code"] for f in district["grids"]["features"]]
        backdate_register(session, codes, datetime.now(UTC) - timedelta(days=28))
        session.commit()
        _visit_some(session)
        session.commit()
    engine.dispose()
    yield url
    drop_database(url)


def _visit_some(session: Session, now: datetime | None = None) -> None:
    """Ten visits this week in the first demo grid, so its coverage is not zero."""
    from geoalchemy2.shape import to_shape

    from api.models import Grid, Household, User, Visit
    from api.services.weeks import week_of

    grid = session.scalar(select(Grid).where(Grid.code == DEMO_GRID))
    worker = session.scalar(select(User).where(User.username == "worker01"))
    now = now or datetime.now(UTC) - timedelta(minutes=1)
    for household in session.scalars(
        select(Household).where(Household.grid_id == grid.id).order_by(Household.id).limit(10)
    ):
        point = to_shape(household.location)
        session.add(
            Visit(
                id=uuid.uuid4(),
                worker_id=worker.id,
                household_id=household.id,
                grid_id=grid.id,
                visited_at=now,
                utc_offset_minutes=480,
                week=week_of(now),
                location=household.location,
                datum="wgs84",
                raw_lon=point.x,
                raw_lat=point.y,
                outcome="met",
                grade="ok",
            )
        )


@pytest.fixture(scope="session")
def e2e_engine(e2e_database_url):
    engine = create_engine(e2e_database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def live_app(e2e_database_url):
    """The real app on the e2e database (a test may change its config while it serves)."""
    from api import create_app

    return create_app(
        {
            "DATABASE_URL": e2e_database_url,
            "SECRET_KEY": "e2e-secret-key-with-enough-length-for-hs256",
            "LOG_LEVEL": "WARNING",
            "GRIDWORK_ENV": "development",
        }
    )


class InFlight:
    """The app's requests under way. werkzeug does not join its request threads on shutdown:
    a request a page left running (a read in the background as the test ended) went on after
    the server's pool was closed, returned its connection to that closed pool, and the pool
    was collected later with a ResourceWarning (CI: `psycopg.Connection [IDLE]` to the e2e
    database "deleted while still open", failing an unrelated test)."""

    def __init__(self, app):
        self.app, self.running, self.done = app, 0, threading.Condition()

    def __call__(self, environ, start_response):
        with self.done:
            self.running += 1
        try:
            # Flask ends the request (its session closed, its connection back in the pool)
            # before it hands back the body.
            return self.app(environ, start_response)
        finally:
            with self.done:
                self.running -= 1
                self.done.notify_all()

    def wait(self, timeout_s: float = 10.0) -> None:
        with self.done:
            self.done.wait_for(lambda: self.running == 0, timeout_s)


@pytest.fixture(scope="module")
def live_server(live_app):
    """The real app, served by werkzeug in a thread on a free loopback port."""
    in_flight = InFlight(live_app)
    server = make_server("127.0.0.1", 0, in_flight, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    in_flight.wait()  # the pool is closed once no request holds a connection of it
    server.server_close()
    thread.join(timeout=10)
    from api.extensions import db

    db.engine.dispose()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def context(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 1100, "height": 800})
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture()
def page(context):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The pages run under a Content-Security-Policy: what it refuses is reported on the console.
    page.on("console", lambda message: _csp_violation(message) and errors.append(message.text))
    yield page
    assert errors == [], f"JavaScript errors or CSP violations on the page: {errors}"


def _csp_violation(message) -> bool:
    return message.type == "error" and "Content Security Policy" in message.text


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def sign_in(page, username: str, password: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def claims(token: str) -> dict:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})


def expire_access_token(live_app, page) -> str:
    """Swap the page's access token for the same one expired a minute ago (both stores)."""
    from flask_jwt_extended import create_access_token

    now = claims(page.evaluate("() => localStorage.getItem('gridwork.token')"))
    with live_app.app_context():
        expired = create_access_token(
            now["sub"],
            additional_claims={k: now[k] for k in ("role", "ver", "sid")},
            expires_delta=timedelta(seconds=-60),
        )
    page.evaluate(
        """async (token) => {
          localStorage.setItem('gridwork.token', token);
          await (await import('/web/queue.js')).setMeta('token', token);
        }""",
        expired,
    )
    return expired


def sign_out_declined(page) -> list[str]:
    """Press the app's sign-out and say no to its question: the questions asked (none when it
    signed out without asking)."""
    asked: list[str] = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", answer)
    page.click("#signout")
    # The question comes once the queue and what else is kept are read.
    poll(page, lambda: asked)
    return asked


def lose_the_first_answer(page, pattern: str, method: str = "POST") -> list[str | None]:
    """The server carries out the first `method` request to `pattern` but its answer is lost
    (the connection reset); later ones go through. The Idempotency-Keys sent, in order."""
    keys: list[str | None] = []

    def route_it(route):
        if route.request.method != method:
            return route.continue_()
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()  # the server carries it out...
            return route.abort("connectionreset")  # ...and its answer is lost
        return route.continue_()

    page.route(pattern, route_it)
    return keys


@pytest.fixture
def community_deadlines(e2e_engine):
    """The demo community's task deadlines: general requests 3 days, danger 1.5 hours, a
    complaint's general 2 days (set as its admin would); the settings as they were afterwards."""
    from api.models import Community

    with Session(e2e_engine) as session:
        community = session.get(Community, DEMO_COMMUNITY)
        was = community.settings
        community.settings = {
            **(was or {}),
            "tasks": {
                "deadline_hours": {"general": 72, "danger": 1.5},
                "by_type": {"complaint": {"deadline_hours": {"general": 48}}},
            },
        }
        session.commit()
    yield
    with Session(e2e_engine) as session:
        session.get(Community, DEMO_COMMUNITY).settings = was
        session.commit()


def kept_pages(page) -> dict:
    """The task pages kept on the phone for the signed-in user, by task id (IndexedDB)."""
    return page.evaluate(
        """async () => ((await (await import('/web/idb.js')).getMeta('taskPages')) || {}).pages
                       || {}"""
    )


def wait_kept(page, task_id: int, kept: bool = True) -> dict:
    """Wait until the phone keeps (or no longer keeps) the task's page: read in the background
    as the task list is read."""
    for _ in range(100):
        pages = kept_pages(page)
        if (str(task_id) in pages) == kept:
            return pages
        page.wait_for_timeout(100)
    raise AssertionError(f"task {task_id} {'never' if kept else 'still'} kept: {sorted(pages)}")


def app_service_worker(context, page) -> tuple:
    """(a CDP session, the app's service worker registration id, the origin): to deliver a push
    to it (`ServiceWorker.deliverPushMessage`) as the browser's push service would."""
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    cdp = context.new_cdp_session(page)
    registrations: list[str] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(
            r["registrationId"] for r in event["registrations"] if "/app" in r["scopeURL"]
        ),
    )
    cdp.send("ServiceWorker.enable")
    assert poll(page, lambda: registrations), "the app's service worker registration never seen"
    return cdp, registrations[0], page.evaluate("() => location.origin")
