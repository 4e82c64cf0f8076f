"""A request's statements are bounded in time: past the limit the statement is cancelled, the
request answers a 503 problem saying so, and nothing it did is kept.

Without a limit a request stuck behind a lock (or a scan of a six-month audit log) held its
database connection for as long as it took: after gunicorn's timeout killed the worker, the
backend still ran. The console's own commands (a city seed, a six-month report check) are not
bounded: only the app serving requests is.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import text

from api.models import Household
from tests import races
from tests.api.test_tiles import tile_of
from tests.factories import bearer, box, build_app, make_grid, make_household, make_user

COMMUNITY = "110109009003"
# Room for the requests that must succeed under it on a loaded machine.
LIMIT_S = 2.0


@pytest.fixture(scope="module")
def bounded(own_database_url):
    """An app whose statements may run LIMIT_S, a community admin's headers, one household."""
    from api.extensions import db

    app = build_app(own_database_url, STATEMENT_TIMEOUT_S=LIMIT_S)
    with app.app_context(), db.begin() as session:
        make_grid(session, COMMUNITY + "001", box(116.44, 39.70, 116.45, 39.71))
        admin = make_user(
            session, f"st_{uuid.uuid4().hex[:8]}", "community_admin", community=COMMUNITY
        )
        home = make_household(session, 116.442, 39.702, members=2)
        headers, home_id = bearer(admin), home.id
    engines = (db.engine, db.autocommit_engine)  # this app's: a later test builds others
    yield app, headers, home_id
    for engine in engines:
        engine.dispose()


def _held(app, lock_sql: str, params: dict, send):
    """`send()` while a third connection holds what `lock_sql` locks; its answer, once the
    holder has let go."""
    from api.extensions import db

    answers = []
    with app.app_context(), db.engine.connect() as holder:
        holder.execute(text(lock_sql), params)
        thread = threading.Thread(target=lambda: answers.append(send()))
        thread.start()
        races.wait_for_lock_waits(db.engine, 1)
        thread.join(timeout=30)
        holder.rollback()
    assert answers, "the request did not answer within 30 s"
    return answers[0]


def _stopped(response):
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("/statement-timeout")
    assert f"the {LIMIT_S:g} s the service allows" in body["detail"]
    assert "Retry-After" in response.headers


def test_a_request_waiting_past_the_limit_is_stopped_with_a_503_and_changes_nothing(bounded):
    app, headers, home_id = bounded
    from api.extensions import db

    def edit():
        with app.test_client() as client:
            return client.patch(
                f"/api/v1/households/{home_id}", json={"members": 5}, headers=headers
            )

    _stopped(
        _held(app, "SELECT 1 FROM households WHERE id = :id FOR UPDATE", {"id": home_id}, edit)
    )
    with app.app_context(), db.new_session() as session:
        assert session.get(Household, home_id).members == 2
    # The app's connections serve the next request as before.
    assert edit().status_code == 200


def test_a_map_tile_waiting_past_the_limit_is_stopped_too(bounded):
    """Tiles come from a pool of their own (with their own settings): bounded as well."""
    app, headers, _ = bounded
    from api.extensions import db

    path = "/api/v1/tiles/households/{}/{}/{}.mvt".format(*tile_of(116.442, 39.702, 17))

    def tile():
        with app.test_client() as client:
            return client.get(path, headers=headers)

    # The tile's statement writes its audit entry: held behind a lock on the audit log.
    _stopped(_held(app, "LOCK TABLE audit_log IN SHARE MODE", {}, tile))
    with app.app_context(), db.new_session() as session:
        logged = session.scalar(
            text("SELECT count(*) FROM audit_log WHERE path LIKE '/api/v1/tiles/%'")
        )
    assert logged == 0
    assert tile().status_code == 200


def test_the_consoles_commands_are_not_bounded_but_the_server_is(own_database_url, monkeypatch):
    from api.cli import _app
    from api.extensions import db

    monkeypatch.setenv("DATABASE_URL", own_database_url)
    monkeypatch.setenv("GRIDWORK_ENV", "development")
    monkeypatch.setenv("GRIDWORK_STATEMENT_TIMEOUT_S", "7")
    for serving, expected in ((False, "0"), (True, "7s")):
        app = _app(serving=serving)
        with app.app_context():
            for engine in (db.engine, db.autocommit_engine):
                with engine.connect() as conn:
                    assert conn.scalar(text("SHOW statement_timeout")) == expected
                engine.dispose()
