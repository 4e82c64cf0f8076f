"""Test harness: a real PostgreSQL + PostGIS database built by the migrations, one per run.

Each test runs inside an outer transaction that is rolled back at its end; the app's own
commits become savepoints (`join_transaction_mode="create_savepoint"`), so tests see
committed behaviour and leave nothing behind.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from api.settings import DEFAULT_DATABASE_URL, normalise_database_url

# The push tests' fixtures: the fake FCM on loopback (`fake`), a router to it, the loopback guard.
pytest_plugins = ("tests.fakes.fixtures",)


def _test_database_url() -> str:
    """The run's database: GRIDWORK_TEST_DATABASE_URL, else DATABASE_URL's name + `_test`; under
    pytest-xdist each worker has its own (`_gw0`, `_gw1`…), and so its own siblings of it."""
    explicit = os.environ.get("GRIDWORK_TEST_DATABASE_URL")
    if explicit:
        url = make_url(normalise_database_url(explicit))
    else:
        base = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
        url = make_url(normalise_database_url(base))
        url = url.set(database=f"{url.database}_test")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        url = url.set(database=f"{url.database}_{worker}")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> str:
    """A fresh database for this run, migrated to head by Alembic."""
    from tests.databases import create_database

    return create_database(_test_database_url())


@pytest.fixture(scope="module")
def own_database_url(database_url, request):
    """A database of this test module's own, migrated to head and dropped after it: for tests
    whose requests really commit (races between connections), apart from the rolled-back one."""
    from tests.databases import create_database, drop_database, sibling_url

    suffix = "_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    url = create_database(sibling_url(database_url, suffix[:30]))
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def connection(engine):
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


@pytest.fixture()
def app(database_url, connection):
    from api.extensions import db
    from tests.factories import build_app

    app = build_app(database_url, CORS_ORIGINS="https://app.example.org")
    db.bind(connection)
    return app


@pytest.fixture()
def session(app) -> Session:
    """A session on the test's connection, apart from the sessions requests make for themselves."""
    from api.extensions import db

    with db.new_session() as session:
        yield session


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def runner(app):
    return app.test_cli_runner()


@pytest.fixture()
def world(session, app):
    from tests.factories import build_world

    return build_world(session, app)


@pytest.fixture()
def api_schema(app):
    from tests.api.test_openapi_fuzz import api_schema_for

    return api_schema_for(app)
