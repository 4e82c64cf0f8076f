"""`gridwork seed demo`'s activity (api/demo.py): the visits it records are ones a worker could
make, so the demo's first screens do not show the ingest's doubts about the demo itself."""

from __future__ import annotations

from sqlalchemy import func, select

from api.models import Visit
from tests.api.test_demo_rerun import _seed_demo


def test_a_demo_worker_is_never_at_two_doors_at_once(app, session, connection, monkeypatch):
    """The second weekly visit of a household living alone was put on a slot of the worker's
    round already taken by another household's visit: two visits of one worker at the same
    minute, in different buildings, which the ingest grades `impossible_speed` (suspect)."""
    monkeypatch.setitem(app.config, "GRIDWORK_ENV", "development")
    session.scalar(select(func.count(Visit.id)))  # its transaction begun outside the savepoint
    mark = connection.begin_nested()
    try:
        _seed_demo(app, monkeypatch)
        visits = session.scalar(select(func.count(Visit.id)))
        twins = session.scalar(
            select(func.count()).select_from(
                select(Visit.worker_id, Visit.visited_at)
                .group_by(Visit.worker_id, Visit.visited_at)
                .having(func.count() > 1)
                .subquery()
            )
        )
        too_fast = session.scalar(
            select(func.count(Visit.id)).where(Visit.reasons.contains(["impossible_speed"]))
        )
    finally:
        mark.rollback()
        session.expire_all()
    assert visits > 1000
    assert (twins, too_fast) == (0, 0)
