"""Concurrent submission of the same visits over real, separate database connections.

These tests need committed data that other connections can see, so they do not use the
rolled-back `world`: the `live` fixture commits a small world of its own (district 110109,
far from every other test's grids) and deletes every row it made at the end.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, text

from api.models import (
    Community,
    District,
    Grid,
    GridVersion,
    Household,
    Street,
    User,
    Visit,
    user_grids,
)
from api.services import visits as visit_service
from tests.factories import bearer, box, build_app, make_grid, make_household, make_user, visit_item

DISTRICT = "110109"
COMMUNITY = DISTRICT + "009009"
GRID = COMMUNITY + "001"


@dataclass
class Live:
    app: Flask
    headers: dict[str, str]
    households: list[Household]


@pytest.fixture()
def live(database_url):
    """An app on the real engine (its commits are real) with a committed world of its own."""
    from api.extensions import db

    app = build_app(database_url)
    engine = db.engine
    with app.app_context(), db.begin() as session:
        make_grid(session, GRID, box(116.200, 39.800, 116.205, 39.805))
        worker = make_user(session, f"race_{uuid.uuid4().hex[:8]}", "worker", grids=[GRID])
        homes = [make_household(session, 116.2010 + 0.0005 * i, 39.8025) for i in range(5)]
        headers = bearer(worker)
        worker_id = worker.id
    try:
        yield Live(app, headers, homes)
    finally:
        with engine.begin() as conn:
            conn.execute(delete(Visit).where(Visit.worker_id == worker_id))
            conn.execute(delete(Household).where(Household.id.in_([h.id for h in homes])))
            conn.execute(delete(user_grids).where(user_grids.c.user_id == worker_id))
            conn.execute(delete(User).where(User.id == worker_id))
            grid_ids = select(Grid.id).where(Grid.code == GRID).scalar_subquery()
            conn.execute(delete(GridVersion).where(GridVersion.grid_id == grid_ids))
            conn.execute(delete(Grid).where(Grid.code == GRID))
            conn.execute(delete(Community).where(Community.code == COMMUNITY))
            conn.execute(delete(Street).where(Street.code == COMMUNITY[:9]))
            conn.execute(delete(District).where(District.code == DISTRICT))
            # Visits are never deleted by the product, so no trigger takes them out of the
            # report's aggregates: rebuild those, or later tests read this world's weeks.
            conn.execute(text("SELECT gw_report_rebuild()"))
        engine.dispose()


def post(live: Live, items: list[dict]):
    with live.app.test_client() as client:
        return client.post("/api/v1/visits/batch", json={"visits": items}, headers=live.headers)


def stored(live: Live, ids) -> int:
    from api.extensions import db

    with db.engine.connect() as conn:
        return conn.scalar(
            select(func.count(Visit.id)).where(Visit.id.in_([uuid.UUID(i) for i in ids]))
        )


def wait_for_lock_wait(live: Live, timeout_s: float = 20.0) -> None:
    """Return once some backend of this database waits on a lock (polls, bounded)."""
    from api.extensions import db

    deadline = time.monotonic() + timeout_s
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
            conn.rollback()
            if waiting:
                return
    raise AssertionError("the second submission never waited on the first one's row lock")


def test_a_submission_racing_an_uncommitted_twin_gets_duplicate(live, monkeypatch):
    """B's INSERT blocks on A's uncommitted row; once A commits, B answers `duplicate`."""
    item = visit_item(live.households[0])
    hold = threading.Event()
    first_in = threading.Event()
    real_hook = visit_service.on_visits_stored

    def hook(session, visits):
        # The first transaction to store the visit pauses before its commit.
        if visits and not first_in.is_set():
            first_in.set()
            assert hold.wait(30)
        real_hook(session, visits)

    monkeypatch.setattr(visit_service, "on_visits_stored", hook)
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(post, live, [item])
        assert first_in.wait(30)
        b = pool.submit(post, live, [item])
        wait_for_lock_wait(live)
        hold.set()
        answers = [a.result(timeout=30), b.result(timeout=30)]
    assert [r.status_code for r in answers] == [200, 200]
    statuses = [r.json["results"][0]["status"] for r in answers]
    assert statuses == ["created", "duplicate"]
    assert answers[1].json["results"][0]["visit"]["id"] == item["id"]
    assert stored(live, [item["id"]]) == 1


def test_concurrent_replays_of_one_batch_store_each_visit_once(live):
    """Four phones' worth of the same 25 visits, in different orders, at once: no 500s."""
    items = [visit_item(live.households[i % 5]) for i in range(25)]
    orders = [random.Random(seed).sample(items, len(items)) for seed in range(4)]
    barrier = threading.Barrier(4)

    def go(batch):
        barrier.wait(30)
        return post(live, batch)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(go, orders))
    assert [r.status_code for r in answers] == [200] * 4
    by_id: dict[str, list[str]] = {}
    for response in answers:
        for result in response.json["results"]:
            by_id.setdefault(result["id"], []).append(result["status"])
    assert len(by_id) == 25
    for statuses in by_id.values():
        assert sorted(statuses) == ["created", "duplicate", "duplicate", "duplicate"]
    assert stored(live, by_id) == 25


def test_a_connection_lost_while_the_batch_stores_is_a_503_and_the_retry_stores_it(live):
    """The rows go by COPY, on the driver directly: a connection lost under it still reaches
    the error handlers as the engine's own error, a 503 the phone retries (never a 500), and
    nothing of the batch is kept until the retry stores it whole."""
    from api.extensions import db

    items = [visit_item(live.households[i]) for i in range(3)]
    with db.engine.connect() as blocker:
        # The COPY's statement trigger writes the week's report rows: held here, the COPY
        # cannot end, and its connection is cut while it waits.
        blocker.execute(text("LOCK TABLE report_grid_weeks IN EXCLUSIVE MODE"))
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(post, live, items)
            wait_for_lock_wait(live)
            blocker.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            blocker.rollback()
            response = answer.result(timeout=30)
    assert response.status_code == 503, response.json
    assert stored(live, [i["id"] for i in items]) == 0
    retry = post(live, items)
    assert retry.status_code == 200
    assert [r["status"] for r in retry.json["results"]] == ["created"] * 3
    assert stored(live, [i["id"] for i in items]) == 3
