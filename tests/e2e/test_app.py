"""The workers' app in headless Chromium: a visit recorded offline, queued, synced when online."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fixtures.people import DEMO_PASSWORD
from tests.e2e.conftest import DEMO_GRID, screenshot, sign_in

# 110101001001001's first demo household sits about here; the exact point does not matter.
HERE = {"longitude": 116.3975, "latitude": 39.9087, "accuracy": 8}


@pytest.fixture()
def worker_page(context, page):
    context.grant_permissions(["geolocation"])
    context.set_geolocation(HERE)
    page.goto("/app")
    sign_in(page, "worker01", DEMO_PASSWORD)
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null || true")
    return page


def record_offline(context, page) -> str:
    context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    household = page.locator("#household").input_value()
    page.select_option("#outcome", "met")
    page.fill("textarea[name=notes]", "楼道灯坏了")
    page.click("#record")
    page.wait_for_function("() => document.querySelector('#queue-count').textContent === '1'")
    return household


def test_app_queues_a_visit_recorded_offline(context, worker_page):
    household = record_offline(context, worker_page)
    assert household
    queued = worker_page.evaluate("""async () => (await import('/web/queue.js')).listQueued()""")
    (record,) = queued
    assert record["state"] == "pending"
    visit = record["visit"]
    assert uuid.UUID(visit["id"])
    assert visit["location"]["datum"] == "wgs84"
    assert visit["location"]["lon"] == pytest.approx(HERE["longitude"])
    assert visit["location"]["lat"] == pytest.approx(HERE["latitude"])
    assert visit["household_id"] == int(household)
    screenshot(worker_page, "app-offline-queued")


def test_app_syncs_the_offline_visit_when_online(context, worker_page, live_server, e2e_engine):
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(f"{live_server}/api/v1/visits/batch", b"{}"))
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 404:
            pytest.skip("POST /api/v1/visits/batch (issue #4) is not merged into this branch yet")
    from api.models import Visit

    record_offline(context, worker_page)
    (queued,) = worker_page.evaluate("async () => (await import('/web/queue.js')).listQueued()")
    context.set_offline(False)
    worker_page.wait_for_function(
        "() => document.querySelector('#queue-count').textContent === '0'"
    )
    with e2e_engine.connect() as conn:
        stored = conn.execute(select(Visit).where(Visit.id == uuid.UUID(queued["id"]))).one()
    assert stored.datum == "wgs84"
    assert stored.notes == "楼道灯坏了"
    screenshot(worker_page, "app-synced")


def test_app_is_an_installable_pwa(context, worker_page):
    manifest = worker_page.evaluate(
        "async () => (await fetch(document.querySelector('link[rel=manifest]').href)).json()"
    )
    assert manifest["start_url"] == "/app"
    assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
    scope = worker_page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert scope.endswith("/app")


def test_a_reopened_task_is_accepted_first(worker_page, e2e_engine):
    from api.models import Grid, Task, User

    with e2e_engine.begin() as conn:
        grid = conn.scalar(select(Grid.id).where(Grid.code == DEMO_GRID))
        worker = conn.scalar(select(User.id).where(User.username == "worker01"))
    with Session(e2e_engine) as session:
        task = Task(
            source="window",
            type="help",
            title="楼道灯又坏了",
            grid_id=grid,
            status="reopened",
            assignee_id=worker,
            due_at=datetime.now(UTC) + timedelta(days=1),
        )
        session.add(task)
        session.commit()
        task_id = task.id
    worker_page.reload()
    worker_page.wait_for_selector("body[data-ready='1']")
    buttons = worker_page.locator(f"li.task[data-id='{task_id}'] button[data-action]")
    assert [b.get_attribute("data-action") for b in buttons.all()] == ["accept"]
    buttons.first.click()
    worker_page.wait_for_selector(f"li.task[data-id='{task_id}'] button[data-action='start']")
    with e2e_engine.connect() as conn:
        assert conn.scalar(select(Task.status).where(Task.id == task_id)) == "accepted"
