"""The tile bench's baseline: the raw statement costs what it costs the API, planning included."""

from __future__ import annotations

import psycopg
import pytest

from api.services.tiles import tile_settings
from bench.tiles import _apply, _floor_client, _run_raw

# A statement as the API sends a tile's: its text, and the tile's values as parameters.
TEXT = "SELECT count(*) FROM generate_series(1, 1000) n WHERE n %% %(m)s = %(r)s"
STATEMENT = (TEXT, {"m": 7, "r": 3})


@pytest.fixture()
def raw_conn(database_url):
    """The bench's raw connection: autocommit, with the tile pool's settings for its session."""
    conn = psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True)
    _apply(conn, tile_settings(False), local=False)
    yield conn
    conn.close()


def plans(conn) -> list[tuple]:
    return conn.execute(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
        "WHERE statement LIKE 'SELECT count(*) FROM generate_series(1, 1000)%%'"
    ).fetchall()


def test_the_raw_tile_statement_is_planned_for_its_tile_on_every_timing(raw_conn):
    # As the API's: prepared by psycopg from its 6th run, then planned for its parameters each
    # time (a statement with its values inline would run on one cached plan, never planned).
    for _ in range(12):
        _run_raw(raw_conn, None, STATEMENT)
    assert plans(raw_conn) == [(0, 7)]


def test_the_floor_app_runs_the_raw_statement_as_the_raw_timing_does(raw_conn):
    floor = _floor_client(raw_conn, None)
    floor.sql = STATEMENT
    for _ in range(6):
        assert floor.get("/floor").status_code == 200
        assert floor.get("/floor?check=1").status_code == 200
    assert plans(raw_conn) == [(0, 7)]
