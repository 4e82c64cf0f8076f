"""Throwaway databases for tests and benchmarks that need committed data or other processes."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def sibling_url(url: str, suffix: str) -> str:
    """The URL of the database named like `url`'s with `suffix` added, on the same server."""
    target = make_url(url)
    return target.set(database=f"{target.database}{suffix}").render_as_string(hide_password=False)


def _admin(url: str):
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def drop_database(url: str) -> None:
    admin = _admin(url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def create_database(url: str) -> str:
    """(Re)create the database named in `url`, migrated to head by the real migrations."""
    from alembic import command

    from api.cli import alembic_config

    drop_database(url)
    admin = _admin(url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{make_url(url).database}"'))
    admin.dispose()
    command.upgrade(alembic_config(url), "head")
    return url
