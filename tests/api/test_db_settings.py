"""`api.db.set_local`: settings for the current transaction only, sent as bound values;
`PLANNED_PER_RUN`: a statement planned for its values on every run."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.db import PLANNED_PER_RUN, set_local


def setting(session, name: str) -> str:
    return session.scalar(text("SELECT current_setting(:name)"), {"name": name})


def test_settings_hold_for_the_transaction_only(engine):
    with engine.connect() as connection, Session(connection) as session:
        before = setting(session, "plan_cache_mode")
        set_local(session, plan_cache_mode="force_custom_plan", jit="off")
        assert (setting(session, "plan_cache_mode"), setting(session, "jit")) == (
            "force_custom_plan",
            "off",
        )
        session.rollback()
        assert setting(session, "plan_cache_mode") == before


def test_a_value_is_bound_not_spliced_into_the_sql(session):
    set_local(session, application_name="it's; SELECT 1 --")
    assert setting(session, "application_name") == "it's; SELECT 1 --"


def prepared(session) -> list[str]:
    return session.scalars(text("SELECT statement FROM pg_prepared_statements")).all()


def test_a_statement_planned_per_run_is_never_prepared(session):
    """psycopg prepares a statement on its fifth run, and PostgreSQL soon gives it one generic
    plan for every value; run unprepared, it is planned for its values every time."""
    per_run = text("SELECT CAST(:n AS integer) + 1 AS per_run")
    prepared_one = text("SELECT CAST(:n AS integer) + 2 AS prepared_one")
    for n in range(8):
        assert session.scalar(per_run, {"n": n}, execution_options={PLANNED_PER_RUN: True}) == n + 1
        assert session.scalar(prepared_one, {"n": n}) == n + 2
    statements = prepared(session)
    assert any("prepared_one" in s for s in statements)
    assert not any("per_run" in s for s in statements)
