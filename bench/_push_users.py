"""The push benches' own database, and their recipients: district viewers of a bench district,
one Android device each."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.cli import alembic_config
from api.models import District, User
from api.settings import normalise_database_url


def fresh_database(base_url: str, name: str) -> str:
    """Database `name` beside `base_url`'s, dropped and made again at the newest schema; its URL."""
    from alembic import command

    url = make_url(normalise_database_url(base_url)).set(database=name)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    rendered = url.render_as_string(hide_password=False)
    command.upgrade(alembic_config(rendered), "head")
    return rendered


def make_recipients(session, count: int) -> list[int]:
    """Add `count` accounts with a device each (district 110199), flushed; their ids."""
    session.add(District(code="110199", name="bench"))
    users = [
        User(
            username=f"bench{i}",
            display_name=f"bench {i}",
            role="district_viewer",
            district_code="110199",
            password_hash="x",
        )
        for i in range(count)
    ]
    session.add_all(users)
    session.flush()
    session.execute(
        text("INSERT INTO devices (user_id, platform, token) VALUES (:u, 'android', :t)"),
        [{"u": u.id, "t": f"bench-token-{u.id}"} for u in users],
    )
    return [u.id for u in users]
