"""Reports under real concurrency: two Monday workers, two ingests of one household.

These need committed data other connections can see, so they do not use the rolled-back world:
`live` commits a small community of its own (district 110108, far from every other test's grids)
and deletes every row it made at the end.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from api.services import report_store
from tests.factories import box, build_app, make_grid, make_household, make_user

DISTRICT = "110108"
COMMUNITY = DISTRICT + "008008"
GRID = COMMUNITY + "001"
MONDAY_0830 = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
SH = ZoneInfo("Asia/Shanghai")


@dataclass
class Live:
    engine: object
    app: object
    grid_id: int
    household_id: int
    worker_id: int


@pytest.fixture()
def live(database_url):
    from api.extensions import db

    app = build_app(database_url)
    engine = db.engine
    tag = uuid.uuid4().hex[:6]
    with app.app_context(), db.begin() as session:
        grid = make_grid(
            session, GRID, box(116.300, 39.700, 116.305, 39.705), community_name="竞赛社区"
        )
        session.execute(
            text("UPDATE grid_versions SET valid_from = '2026-10-01' WHERE grid_id = :g"),
            {"g": grid.id},
        )
        worker = make_user(session, f"rc_w_{tag}", "worker", grids=[GRID])
        make_user(session, f"rc_l_{tag}", "grid_leader", grids=[GRID])
        make_user(session, f"rc_a_{tag}", "community_admin", community=COMMUNITY)
        home = make_household(session, 116.302, 39.702, created_at=datetime(2026, 10, 1, tzinfo=SH))
        ids = Live(engine, app, grid.id, home.id, worker.id)
    try:
        yield ids
    finally:
        with engine.begin() as conn:
            p = {"g": ids.grid_id, "c": COMMUNITY}
            for sql in (
                "DELETE FROM deliveries WHERE notification_id IN (SELECT id FROM notifications "
                "WHERE user_id IN (SELECT id FROM users WHERE community_code = :c))",
                "DELETE FROM notifications WHERE user_id IN "
                "(SELECT id FROM users WHERE community_code = :c)",
                "DELETE FROM reports WHERE code = :c",
                "DELETE FROM visits WHERE grid_id = :g",
                "DELETE FROM households WHERE grid_id = :g",
                "DELETE FROM household_history WHERE grid_id = :g",
                "DELETE FROM user_grids WHERE grid_id = :g",
                "UPDATE grids SET leader_id = NULL WHERE id = :g",
                "DELETE FROM users WHERE community_code = :c",
                "DELETE FROM grid_versions WHERE grid_id = :g",
                "DELETE FROM grids WHERE id = :g",
                "DELETE FROM communities WHERE code = :c",
                "DELETE FROM streets WHERE code = left(:c, 9)",
                "DELETE FROM districts WHERE code = left(:c, 6)",
            ):
                conn.execute(text(sql), p)
            for table in (
                "report_household_deltas",
                "report_household_weeks",
                "report_grid_weeks",
                "report_grid_week_tags",
                "report_worker_weeks",
                "report_worker_households",
            ):
                conn.execute(text(f"DELETE FROM {table} WHERE grid_id = :g"), p)
        engine.dispose()


def wait_for_lock_wait(engine, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    with engine.connect() as conn:
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
            time.sleep(0.02)
    raise AssertionError("the second transaction never waited on the first one")


def test_two_monday_workers_store_and_announce_each_report_once(live, monkeypatch):
    from sqlalchemy.orm import Session

    hold, first_in = threading.Event(), threading.Event()
    real_announce = report_store.announce

    def announce(session, report, community, now):
        real_announce(session, report, community, now)
        if not first_in.is_set():
            first_in.set()
            assert hold.wait(30)  # the first claimant pauses before its commit

    monkeypatch.setattr(report_store, "announce", announce)

    def run():
        with live.app.app_context(), Session(live.engine) as session:
            result = report_store.generate_due_reports(session, MONDAY_0830)
            session.commit()
            return len(result.created), result.skipped

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(run)
        assert first_in.wait(30)
        b = pool.submit(run)
        wait_for_lock_wait(live.engine)  # B waits on A's claimed (week, level, code) row
        hold.set()
        outcomes = sorted([a.result(timeout=60), b.result(timeout=60)])
    assert outcomes == [(0, 1), (1, 0)]
    with live.engine.connect() as conn:
        assert (
            conn.scalar(
                text("SELECT count(*) FROM reports WHERE code = :c AND week = '2026-W47'"),
                {"c": COMMUNITY},
            )
            == 1
        )
        assert (
            conn.scalar(
                text(
                    "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id "
                    "WHERE u.community_code = :c AND n.kind = 'report_ready'"
                ),
                {"c": COMMUNITY},
            )
            == 2
        )


def _insert_visit(conn, live: Live, at: datetime) -> None:
    conn.execute(
        text(
            "INSERT INTO visits (id, worker_id, household_id, grid_id, visited_at, "
            "utc_offset_minutes, week, location, datum, raw_lon, raw_lat, outcome, grade) "
            "SELECT :id, :w, h.id, h.grid_id, :at, 480, gw_week_of(:at), h.location, 'wgs84', "
            "ST_X(h.location), ST_Y(h.location), 'met', 'ok' FROM households h WHERE h.id = :h "
            "ON CONFLICT (id) DO NOTHING"
        ),
        {"id": uuid.uuid4(), "w": live.worker_id, "h": live.household_id, "at": at},
    )


def test_concurrent_ingests_of_adjacent_weeks_count_a_household_once(live):
    """A holds W46's visit uncommitted; B's W47 visit waits on the grid's lock, then sees it."""
    a = live.engine.connect()
    try:
        _insert_visit(a, live, datetime(2026, 11, 10, 10, tzinfo=SH))  # W46, not committed
        with ThreadPoolExecutor(1) as pool:

            def b_insert():
                with live.engine.begin() as b:
                    _insert_visit(b, live, datetime(2026, 11, 17, 10, tzinfo=SH))  # W47

            b = pool.submit(b_insert)
            wait_for_lock_wait(live.engine)
            a.commit()
            b.result(timeout=30)
    finally:
        a.close()
    with live.engine.connect() as conn:
        rows = dict(
            conn.execute(
                text("SELECT week, visited_2w FROM report_grid_weeks WHERE grid_id = :g"),
                {"g": live.grid_id},
            ).all()
        )
    # Visited in W46 or W47: one household, in each of W46, W47 and W48.
    assert rows == {"2026-W46": 1, "2026-W47": 1, "2026-W48": 1}


def _insert_received_visit(live: Live, at: datetime, received_at: datetime) -> None:
    """A sync on a connection of its own, committed (its request began at `received_at`)."""
    with live.engine.begin() as conn:
        _insert_visit(conn, live, at)
        conn.execute(
            text("UPDATE visits SET received_at = :r WHERE grid_id = :g AND visited_at = :at"),
            {"r": received_at, "g": live.grid_id, "at": at},
        )


@pytest.mark.parametrize(
    ("committed", "request_began", "stored", "late"),
    [
        # Its request began after the run did; it committed before the run read the figures.
        ("before the figures", timedelta(seconds=1), 1, 0),
        # Its request began before the run did; it committed after the run read the figures.
        ("after the figures", timedelta(seconds=-1), 0, 1),
    ],
)
def test_a_visit_committed_while_the_monday_run_is_under_way_is_stored_or_late_once(
    live, monkeypatch, committed, request_began, stored, late
):
    """Found by a review: `late_visits` compared when a visit's sync request began with when
    the run began, not what the run's figures read: a batch committed between the run's start
    and its figures was in the stored report and late too; one whose request began before the
    run but committed after its figures was in neither. Now exactly one of the two."""
    from sqlalchemy.orm import Session

    saturday = datetime(2026, 11, 21, 11, tzinfo=SH)  # W47
    real_store_files = report_store.store_files

    def store_files(session, report, now):
        if committed == "before the figures":
            _insert_received_visit(live, saturday, now + request_began)
        real_store_files(session, report, now)
        if committed == "after the figures":
            _insert_received_visit(live, saturday, now + request_began)

    monkeypatch.setattr(report_store, "store_files", store_files)
    with live.app.app_context(), Session(live.engine) as session:
        [report] = report_store.generate_due_reports(session, MONDAY_0830).created
        session.commit()
        assert (report.created_at, report.visits_seen) == (MONDAY_0830, stored)
        [counted] = report_store.count_late_visits(session, [report])
        assert counted.late_visits == late
