"""The database going away: clean 503 problems while it is down, recovery without a restart."""

from __future__ import annotations

import logging
import secrets

import pytest
from sqlalchemy import text

from api import create_app
from api.extensions import db

# No data key: these apps run as development (the app refuses to start without one elsewhere).
DEV = {"GRIDWORK_ENV": "development"}


@pytest.fixture(autouse=True)
def dispose_engine():
    """These tests use real pooled connections: close them before the next test."""
    yield
    db.engine.dispose()


def test_requests_fail_with_503_while_the_database_is_unreachable():
    app = create_app(
        {
            "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none",
            "LOG_LEVEL": "CRITICAL",
            **DEV,
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"]


def test_the_api_recovers_when_its_connections_are_killed(database_url, engine):
    name = "gridwork-resilience-test"
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "DATABASE_APPLICATION_NAME": name,
            "LOG_LEVEL": "CRITICAL",
            **DEV,
        }
    )
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    with engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :n"
            ),
            {"n": name},
        ).scalar()
    assert killed >= 1
    assert client.get("/healthz").status_code == 200


def test_a_database_rule_broken_by_a_concurrent_change_is_a_problem_not_a_500(database_url):
    """The views check their rules first; what still breaks one raced another change: 409
    (unique, foreign key), or 422 for a value no row may hold (check, not null)."""
    app = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "CRITICAL", **DEV})

    @app.get("/_test/duplicate")
    def duplicate():
        db.session.execute(text("CREATE TEMP TABLE t (id int PRIMARY KEY)"))
        db.session.execute(text("INSERT INTO t VALUES (1), (1)"))

    @app.get("/_test/check")
    def check():
        db.session.execute(text("CREATE TEMP TABLE c (v int CHECK (v > 0))"))
        db.session.execute(text("INSERT INTO c VALUES (-1)"))

    client = app.test_client()
    raced, refused = client.get("/_test/duplicate"), client.get("/_test/check")
    assert (raced.status_code, refused.status_code) == (409, 422)
    assert raced.mimetype == refused.mimetype == "application/problem+json"
    assert "same time" in raced.json["detail"]


def test_a_value_beyond_a_database_limit_is_a_422_not_an_outage(database_url, caplog):
    """An index row too large (SQLSTATE class 54, program limit exceeded) is an
    OperationalError, yet no retry will store it: 422, and the value is not logged."""
    app = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "CRITICAL", **DEV})
    caplog.set_level(logging.DEBUG)
    value = secrets.token_urlsafe(4500)  # random: a btree row holds ~2700 bytes, compressed

    @app.get("/_test/too-large")
    def too_large():
        db.session.execute(text("CREATE TEMP TABLE big (v text UNIQUE)"))
        db.session.execute(text("INSERT INTO big VALUES (:v)"), {"v": value})

    response = app.test_client().get("/_test/too-large")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "Retry-After" not in response.headers
    assert "index row size" in caplog.text  # logged, but not the value
    assert value not in caplog.text


RESIDENT_VALUE = "13812345678-disability"
# Statements the database refuses with its message quoting the row or the value (DETAIL: Key
# (...)=(...) already exists; Failing row contains (...); invalid input syntax ... "...").
REFUSED = {
    "unique": "CREATE TEMP TABLE u (v text UNIQUE); INSERT INTO u VALUES (:v), (:v)",
    "check": "CREATE TEMP TABLE c (v text CHECK (v = '')); INSERT INTO c VALUES (:v)",
    "not-null": "CREATE TEMP TABLE n (v text, w text NOT NULL); INSERT INTO n VALUES (:v, NULL)",
    "data": "SELECT CAST(:v AS integer)",
    # Any other failure (a bug, a deadlock) is a 500 logged with its traceback, whose message
    # SQLAlchemy writes with the statement's parameters.
    "unexpected": "SELECT CAST(:v AS text) FROM no_such_table",
}


@pytest.mark.parametrize("refused", sorted(REFUSED))
def test_a_statement_the_database_refuses_is_logged_without_the_values(
    database_url, caplog, refused
):
    """A resident's phone or tags in a refused row reached the server log (INFO, the default
    level) in the database's DETAIL line: the log names the rule broken, never the values."""
    app = create_app({"DATABASE_URL": database_url, "LOG_LEVEL": "CRITICAL", **DEV})
    caplog.set_level(logging.DEBUG)

    @app.get("/_test/refused")
    def refuse():
        for statement in REFUSED[refused].split("; "):
            db.session.execute(text(statement), {"v": RESIDENT_VALUE})

    response = app.test_client().get("/_test/refused")
    assert response.status_code in (409, 422, 500)
    assert caplog.records, "the refusal is logged"
    assert RESIDENT_VALUE not in caplog.text


def test_healthz_says_so_when_the_database_is_not_at_this_codes_schema(own_database_url):
    """Found by an operator's review: on a database created but never migrated `/healthz`
    answered 200 ok while every sign-in failed (no login_attempts table): a load balancer
    would have sent users to it."""
    from sqlalchemy import create_engine, text

    from tests.factories import build_app

    app = build_app(own_database_url)
    assert app.test_client().get("/healthz").status_code == 200
    engine = create_engine(own_database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    behind = app.test_client().get("/healthz")
    assert behind.status_code == 503 and behind.mimetype == "application/problem+json"
    assert "gridwork db upgrade" in behind.json["detail"]
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    bare = app.test_client().get("/healthz")
    assert bare.status_code == 503 and "gridwork db upgrade" in bare.json["detail"]
    from api.extensions import db

    with app.app_context():
        db.engine.dispose()
