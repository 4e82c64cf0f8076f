"""The database going away: clean 503 problems while it is down, recovery without a restart."""

from __future__ import annotations

from sqlalchemy import text

from api import create_app


def test_requests_fail_with_503_while_the_database_is_unreachable():
    app = create_app(
        {"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none", "LOG_LEVEL": "CRITICAL"}
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"]


def test_the_api_recovers_when_its_connections_are_killed(database_url, engine):
    name = "gridwork-resilience-test"
    app = create_app(
        {"DATABASE_URL": database_url, "DATABASE_APPLICATION_NAME": name, "LOG_LEVEL": "CRITICAL"}
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
