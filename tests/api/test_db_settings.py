"""`api.db.set_local`: settings for the current transaction only, sent as bound values."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.db import set_local


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
