"""Retention: a closed task records when its complainant's contact was erased.

The push worker erases a closed task's complainant (name, phone), and strikes them and any
phone or identity card number from its title, description and steps' notes, once the task
has been closed GRIDWORK_RETAIN_COMPLAINANTS_DAYS (`api/services/retention.py`).
`contact_erased_at` marks the tasks done; the partial index holds only the closed tasks not
done yet, by when they were closed: each run reads the oldest of them, past the period,
through it, and never walks the tasks already done again. A task reopened leaves the index
(its status changes) and comes back when it is closed again.

Adding a nullable column without a default rewrites nothing; every closed task starts NULL
and the first runs work through the old ones, a batch a run.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-19 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE tasks ADD COLUMN contact_erased_at timestamptz")
    op.execute(
        "CREATE INDEX ix_tasks_closed_contact_kept ON tasks (closed_at)"
        " WHERE status = 'closed' AND contact_erased_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_tasks_closed_contact_kept")
    op.execute("ALTER TABLE tasks DROP COLUMN contact_erased_at")
