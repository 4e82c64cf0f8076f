"""A community's settings: one JSONB of parts (the roster's, the visit cadence, the tasks'
deadlines), each written by its own service."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Community


def lock_community(session: Session, code: str) -> Community:
    """The community's row locked `FOR UPDATE` and read again: the settings as they are now,
    not as read earlier in the request. Each part's writer replaces the whole JSONB (a new dict,
    so it is seen as changed) and must start from here, or a part another writer committed
    meanwhile is written back as it was before (one change at a time per community)."""
    return session.scalars(
        select(Community)
        .where(Community.code == code)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
