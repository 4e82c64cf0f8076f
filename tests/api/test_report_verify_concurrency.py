"""`gridwork report verify` on a live database: visits keep coming in while it checks.

The check runs in its own database (`own_database_url`) on committed data. It is paused at
its seam between computing the rebuild and comparing (`report_verify.on_computed`); meanwhile
a visit batch is posted from another connection: it must commit without waiting on the check,
and the check, comparing both sides as of its one snapshot, must still find them equal.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from sqlalchemy import event, text

from api.cli import main
from api.services import report_verify
from tests.factories import bearer, box, build_app, make_grid, make_household, make_user, visit_item

COMMUNITY = "110109009002"
# The locks a backend holds on the database's own tables beyond a reader's (ACCESS SHARE).
LOCKS_HELD = text(
    "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
    "WHERE l.pid = :pid AND l.granted AND c.relpersistence <> 't' "
    "AND l.mode <> 'AccessShareLock'"
)


def settles_without_waiting(engine, future: Future, timeout_s: float = 20.0) -> None:
    """Return once `future` is done; fail as soon as a backend of this database waits on a
    lock instead (the request is queued behind the check), or after `timeout_s`."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout_s
    with engine.connect() as conn:
        while not future.done():
            waiting = conn.scalar(query)
            conn.rollback()
            assert not waiting, "the visit batch waited on a lock the check holds"
            assert time.monotonic() < deadline, "the visit batch never finished"
            time.sleep(0.01)


def test_a_visit_batch_commits_while_verify_checks_and_verify_still_finds_them_equal(
    own_database_url, monkeypatch
):
    from api.extensions import db

    app = build_app(own_database_url)
    with app.app_context(), db.begin() as session:
        make_grid(session, COMMUNITY + "001", box(116.30, 39.70, 116.31, 39.71))
        worker = make_user(
            session, f"vf_{uuid.uuid4().hex[:8]}", "worker", grids=[COMMUNITY + "001"]
        )
        homes = [make_household(session, 116.301 + 0.001 * i, 39.702) for i in range(4)]
        headers = bearer(worker)

    def post(items):
        with app.test_client() as client:
            return client.post("/api/v1/visits/batch", json={"visits": items}, headers=headers)

    assert post([visit_item(h) for h in homes[:2]]).status_code == 200

    computed, go_on = threading.Event(), threading.Event()
    checker = {}

    def pause(session):
        checker["pid"] = session.scalar(text("SELECT pg_backend_pid()"))
        computed.set()
        assert go_on.wait(30)

    monkeypatch.setattr(report_verify, "on_computed", pause)

    def verify():
        with app.app_context():
            return CliRunner().invoke(main, ["report", "verify"], catch_exceptions=False)

    try:
        with ThreadPoolExecutor(2) as pool:
            checking = pool.submit(verify)
            assert computed.wait(30)
            with app.app_context(), db.engine.connect() as conn:
                held = conn.execute(LOCKS_HELD, checker).all()
            assert held == []  # nothing but a reader's lock, and its own temporary tables'
            batch = pool.submit(post, [visit_item(h) for h in homes[2:]])
            try:
                with app.app_context():
                    settles_without_waiting(db.engine, batch)
            finally:
                go_on.set()
            assert batch.result(timeout=30).status_code == 200
            result = checking.result(timeout=60)
        assert result.exit_code == 0, result.output
        assert "the kept aggregates equal a rebuild (every week)" in result.stdout
        with app.app_context(), db.begin() as session:
            visits = session.scalar(
                text(
                    "SELECT sum(visits) FROM report_grid_weeks "
                    "WHERE grid_id = (SELECT id FROM grids WHERE code = :code)"
                ),
                {"code": COMMUNITY + "001"},
            )
        assert visits == 4  # the batch's visits were kept, after the check's snapshot
        with app.app_context():
            assert CliRunner().invoke(main, ["report", "verify"]).exit_code == 0
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_repair_refuses_a_repeatable_read_transaction(own_database_url):
    """Its snapshot may predate the repair's lock: a rebuild from it would overwrite the rows
    committed in between."""
    from api.extensions import db

    app = build_app(own_database_url)
    try:
        with (
            app.app_context(),
            db.begin(isolation_level="REPEATABLE READ") as session,
            pytest.raises(RuntimeError, match="READ COMMITTED"),
        ):
            report_verify.repair_differences(session)
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_committed_wrong_row_is_found_and_repaired_on_a_live_database(own_database_url):
    """The CLI's own transactions (the check's snapshot, then the repair's), not a test's."""
    from api.extensions import db

    app = build_app(own_database_url)
    code = COMMUNITY[:-1] + "3001"
    with app.app_context(), db.begin() as session:
        make_grid(session, code, box(116.32, 39.70, 116.33, 39.71))
        worker = make_user(session, f"vf_{uuid.uuid4().hex[:8]}", "worker", grids=[code])
        home = make_household(session, 116.321, 39.702)
        headers = bearer(worker)
    with app.test_client() as client:
        answer = client.post(
            "/api/v1/visits/batch", json={"visits": [visit_item(home)]}, headers=headers
        )
    assert answer.status_code == 200

    def verify(*args):
        with app.app_context():
            return CliRunner().invoke(main, ["report", "verify", *args], catch_exceptions=False)

    try:
        with app.app_context(), db.begin() as session:
            spoiled = session.execute(
                text(
                    "UPDATE report_grid_weeks SET visits = visits + 1 "
                    "WHERE grid_id = (SELECT id FROM grids WHERE code = :code) AND visits > 0"
                ),
                {"code": code},
            )
            assert spoiled.rowcount == 1  # the visit's week
        found = verify()
        assert found.exit_code == 1
        assert "report_grid_weeks: 1 kept rows not in the rebuild, 1 rebuilt rows not kept" in (
            found.stdout
        )
        repaired = verify("--repair")
        assert repaired.exit_code == 0, repaired.output
        assert "repaired" in repaired.stdout
        assert verify().exit_code == 0
    finally:
        with app.app_context():
            db.engine.dispose()


# --- the snapshot begins after the lock ----------------------------------------------------------
def visited_grid(app, code: str, lon: float) -> None:
    """A grid of one household visited once, committed: its aggregates are not empty."""
    from api.extensions import db

    with app.app_context(), db.begin() as session:
        make_grid(session, code, box(lon, 39.70, lon + 0.01, 39.71))
        worker = make_user(session, f"vf_{uuid.uuid4().hex[:8]}", "worker", grids=[code])
        home = make_household(session, lon + 0.001, 39.702)
        headers = bearer(worker)
    with app.test_client() as client:
        answer = client.post(
            "/api/v1/visits/batch", json={"visits": [visit_item(home)]}, headers=headers
        )
    assert answer.status_code == 200


@contextmanager
def a_rebuild_just_before_the_lock(engine) -> Iterator[list[str]]:
    """`gw_report_rebuild()` (TRUNCATE, then the rows again) committed from another connection
    just before the check's ACCESS SHARE lock on the aggregates; yields the statements run."""
    statements: list[str] = []

    def rebuild_first(conn, cursor, statement, *args):
        statements.append(statement)
        if statement.startswith("LOCK TABLE report_") and "rebuilt" not in statements:
            statements.append("rebuilt")
            with engine.connect() as other:
                other.execute(text("SET lock_timeout = '10s'"))  # never a silent hang
                other.execute(text("SELECT gw_report_rebuild()"))
                other.commit()

    event.listen(engine, "before_cursor_execute", rebuild_first)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", rebuild_first)


@pytest.mark.parametrize("guard_reads", [False, True], ids=["guard-idle", "guard-reads-keys"])
def test_a_rebuild_committed_just_before_the_checks_lock_is_read_whole(
    own_database_url, guard_reads
):
    """The check's snapshot is taken after its lock: the TRUNCATE of a rebuild committed just
    before reads as the rows rebuilt, not as emptied aggregates (a false difference). Also
    when the data key guard reads its table first (due once a minute): in a transaction of
    its own, ended before the check's begins."""
    from api.extensions import db

    app = build_app(own_database_url)
    visited_grid(app, COMMUNITY[:-1] + ("4001" if guard_reads else "5001"), 116.34 + guard_reads)
    try:
        with app.app_context():
            if guard_reads:
                app.extensions["gridwork_keyguard"].read_at = float("-inf")  # due now
            with a_rebuild_just_before_the_lock(db.engine) as statements:
                result = CliRunner().invoke(main, ["report", "verify"], catch_exceptions=False)
        assert "rebuilt" in statements
        assert any("FROM data_keys" in s for s in statements) is guard_reads
        assert result.exit_code == 0, result.output
        assert "the kept aggregates equal a rebuild (every week)" in result.stdout
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_check_whose_snapshot_would_predate_its_lock_refuses_to_compare(own_database_url):
    """Something reading first in the check's REPEATABLE READ transaction (here a hook at its
    beginning) would fix the snapshot before the lock: a rebuild committed in between would
    leave the kept aggregates empty in it, every row a false difference (exit 1, and with
    --repair a second check holding visit ingest for nothing). The check refuses instead."""
    from api.extensions import db

    app = build_app(own_database_url)
    visited_grid(app, COMMUNITY[:-1] + "6001", 116.36)

    def read_first(session, transaction, connection):
        connection.execute(text("SELECT count(*) FROM visits"))

    try:
        with app.app_context():
            db.listen("after_begin", read_first)
            with (
                a_rebuild_just_before_the_lock(db.engine),
                pytest.raises(RuntimeError, match=r"first in its repeatable read transaction"),
            ):
                CliRunner().invoke(main, ["report", "verify", "--repair"], catch_exceptions=False)
    finally:
        with app.app_context():
            db.engine.dispose()
