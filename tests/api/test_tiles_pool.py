"""Tiles are served from a pool of their own: autocommit connections opened with the tile
settings. A tile then costs its token check and its statement, two round trips (on the app's
main pool it paid six: ping, BEGIN, token check, SET LOCAL, the tile, COMMIT).

These requests really commit: a database of this module's own, and an app not bound to a test's
connection."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select, text

from api.extensions import db
from api.models import AuditEntry
from api.services import tiles
from tests.api.test_tiles import tile_of
from tests.factories import bearer, box, build_app, make_grid, make_household, make_user

COMMUNITY = "110109010001"
LON, LAT = 116.402, 39.702
TILE = "/api/v1/tiles/households/{}/{}/{}.mvt".format(*tile_of(LON, LAT, 17))
APP_NAME = "gridwork-tile-pool-test"


@pytest.fixture(scope="module")
def live(own_database_url):
    """An app on real pooled connections, a household in its grid, and its admin's token."""
    app = build_app(own_database_url, DATABASE_APPLICATION_NAME=APP_NAME)
    with app.app_context(), db.begin() as session:
        make_grid(session, f"{COMMUNITY}001", box(116.40, 39.70, 116.41, 39.71))
        name = f"tp_{uuid.uuid4().hex[:8]}"
        admin = make_user(session, name, "community_admin", community=COMMUNITY)
        home = make_household(session, LON, LAT)
        headers, home_id = bearer(admin), home.id
    engines = (db.engine, db.autocommit_engine)  # this app's: a later test builds others
    yield app, headers, home_id
    for engine in engines:
        engine.dispose()


def statements_on(engine) -> list[str]:
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: sent.append(stmt))
    return sent


def test_a_tile_costs_its_token_check_and_its_statement_on_the_tile_pool(live):
    app, headers, home_id = live
    with app.app_context():
        on_pool, on_main = statements_on(db.autocommit_engine), statements_on(db.engine)
    response = app.test_client().get(TILE, headers=headers)
    assert response.status_code == 200
    assert on_main == []
    assert len(on_pool) == 2 and "ST_AsMVT" in on_pool[1]
    assert not any("set_config" in s for s in on_pool)


def test_the_next_tiles_of_a_token_cost_their_statement_only(live):
    """The token is checked inside the tile's statement once its user was checked before."""
    app, headers, home_id = live
    client = app.test_client()
    assert client.get(TILE, headers=headers).status_code == 200
    with app.app_context():
        on_pool, on_main = statements_on(db.autocommit_engine), statements_on(db.engine)
    response = client.get(TILE, headers=headers)
    assert response.status_code == 200
    assert on_main == []
    assert len(on_pool) == 1 and "ST_AsMVT" in on_pool[0] and "revoked_tokens" in on_pool[0]


def test_the_tile_pools_connections_carry_the_tile_settings_and_commit_each_statement(live):
    app, headers, home_id = live
    with app.app_context():
        with db.autocommit_engine.connect() as conn:
            shown = {
                name: conn.execute(text(f"SHOW {name}")).scalar()
                for name in tiles.tile_settings(True)
            }
            assert conn.connection.driver_connection.autocommit
        with db.engine.connect() as conn:
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
    assert shown == tiles.tile_settings(True)


def test_a_tiles_audit_entry_is_committed_by_its_statement(live):
    app, headers, home_id = live
    before = datetime.now(UTC)
    assert app.test_client().get(TILE, headers=headers).status_code == 200
    with app.app_context(), db.new_session() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.at >= before, AuditEntry.resource == "household")
        ).all()
    assert [e.resource_ids for e in entries] == [[home_id]]


def test_a_revoked_token_gets_no_tile_from_the_pool(own_database_url, live):
    """The token check runs on the tile pool too: revoking every token of a user (their
    token version moved) refuses the next tile, and writes no audit entry."""
    app, _, _ = live
    with app.app_context(), db.begin() as session:
        user = make_user(
            session, f"tp_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        headers, user_id = bearer(user), user.id
    client = app.test_client()
    assert client.get(TILE, headers=headers).status_code == 200
    with app.app_context(), db.begin() as session:
        session.execute(
            text("UPDATE users SET token_version = token_version + 1 WHERE id = :id"),
            {"id": user_id},
        )
        entries = session.scalar(
            text("SELECT count(*) FROM audit_log WHERE user_id = :id"), {"id": user_id}
        )
    refused = client.get(TILE, headers=headers)
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    with app.app_context(), db.new_session() as session:
        after = session.scalar(
            text("SELECT count(*) FROM audit_log WHERE user_id = :id"), {"id": user_id}
        )
    assert after == entries


def test_other_endpoints_stay_on_the_main_pool(live):
    app, headers, _ = live
    with app.app_context():
        on_pool = statements_on(db.autocommit_engine)
    assert app.test_client().get("/api/v1/auth/me", headers=headers).status_code == 200
    assert on_pool == []


def terminate(engine, pid: int) -> None:
    """End a server process as a restart does, and wait until it has exited (having said
    goodbye): pg_terminate_backend only signals it."""
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        for _ in range(500):
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))  # else read once a transaction
            gone = not conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar()
            if gone:
                return
            time.sleep(0.01)
    raise AssertionError(f"server process {pid} still runs")


def test_a_connection_the_server_dropped_is_replaced_at_checkout(live, engine):
    """No ping at checkout, yet a restart is as invisible as with one: the pool looks at the
    connection's socket (no round trip), finds the server's farewell and reconnects."""
    app, headers, _ = live
    client = app.test_client()
    assert client.get(TILE, headers=headers).status_code == 200
    with app.app_context(), db.autocommit_engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    terminate(engine, pid)
    assert client.get(TILE, headers=headers).status_code == 200
    with app.app_context(), db.autocommit_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid


def test_closed_by_server_sees_only_a_connection_the_server_ended(own_database_url, engine):
    import psycopg

    from api.db import closed_by_server

    url = own_database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        assert not closed_by_server(conn)
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert not closed_by_server(conn)  # a read answer leaves nothing behind
        terminate(engine, conn.info.backend_pid)
        assert closed_by_server(conn)
    assert closed_by_server(conn)  # closed by us


def test_a_new_app_closes_the_previous_apps_tile_pool(own_database_url):
    """One `db` serves one app at a time: a pool left to the collector closed its connections
    with a ResourceWarning, in whichever later test the collector ran."""
    first = build_app(own_database_url)
    with first.app_context(), db.autocommit_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    pool = db.autocommit_engine.pool
    assert pool.checkedin() == 1
    first_main = db.engine
    build_app(own_database_url)
    assert pool.checkedin() == 0
    for engine in (first_main, db.engine, db.autocommit_engine):
        engine.dispose()
