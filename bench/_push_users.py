"""The push benches' recipients: district viewers of a bench district, one Android device each."""

from __future__ import annotations

from sqlalchemy import text

from api.models import District, User


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
