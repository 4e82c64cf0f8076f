"""The report bench's baseline: the report statement run directly, planned as the API plans it."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from bench.report import DISTRICT, sql_direct


@pytest.fixture()
def conn(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def test_the_direct_report_is_planned_for_its_parameters_on_every_run(conn):
    # On the city PostgreSQL switches the report statement to a generic plan from its 10th run
    # on a connection (slower: api/services/reports.coverage_json); the API forbids that in its
    # transaction. Here the session prefers the generic plan, as PostgreSQL would there.
    conn.execute(text("SET plan_cache_mode = force_generic_plan"))
    conn.commit()
    for _ in range(8):
        sql_direct(conn, DISTRICT)
    plans = conn.execute(
        text(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%WITH sel AS (SELECT unnest(CAST(%'"
        )
    ).one()
    assert plans.generic_plans == 0
    assert plans.custom_plans > 0


def test_each_direct_report_runs_in_a_transaction_of_its_own(conn):
    sql_direct(conn, DISTRICT)
    assert not conn.in_transaction()
