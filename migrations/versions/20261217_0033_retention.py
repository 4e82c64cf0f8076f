"""Retention: visits and task events record when their precise position was coarsened; read
notifications are found by when they were read.

The push worker coarsens a visit's position (and its follow-up task's point) to ~100 m once
the visit is older than GRIDWORK_RETAIN_VISIT_TRACKS_DAYS (`api/services/retention.py`).
`coarsened_at` marks the visits done, and the partial index holds only the visits not done
yet (the last months' at most), by visit time: each run reads the oldest of them, past the
period, through it, and never walks the visits already coarsened again. It costs an insert
one more small index entry, as the index on visits of a worker does.

A task event's point (where the worker stood for a step of a task) is coarsened after the
same period: `task_events.coarsened_at`, and a partial index of the events with a point not
coarsened yet (most events carry no point, and add nothing to it).

Read notifications are deleted some months after they were read: `ix_notifications_read_at`
finds them; unread ones are deleted later, by age, which the primary key's order finds
(ids grow with time).

Adding a nullable column without a default rewrites nothing; existing visits start NULL
(precise) and the first runs work through the old ones, a batch a run.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-17 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE visits ADD COLUMN coarsened_at timestamptz")
    op.execute(
        "CREATE INDEX ix_visits_precise_visited ON visits (visited_at) WHERE coarsened_at IS NULL"
    )
    op.execute("ALTER TABLE task_events ADD COLUMN coarsened_at timestamptz")
    op.execute(
        "CREATE INDEX ix_task_events_precise_at ON task_events (at)"
        " WHERE location IS NOT NULL AND coarsened_at IS NULL"
    )
    op.execute(
        "CREATE INDEX ix_notifications_read_at ON notifications (read_at) WHERE read_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_notifications_read_at")
    op.execute("DROP INDEX ix_task_events_precise_at")
    op.execute("ALTER TABLE task_events DROP COLUMN coarsened_at")
    op.execute("DROP INDEX ix_visits_precise_visited")
    op.execute("ALTER TABLE visits DROP COLUMN coarsened_at")
