"""The first-contact deadline's warning and notice: `tasks.contact_warned_at`, `contact_overdue_at`.

The response rate (响应率, one of the three rates) counts the tasks first contacted (accept, or
resolve) by `first_contact_due_at`; the tick warned only of the resolution deadline, so a
general task left unaccepted failed the response rate with nobody told. The tick now warns
whoever answers for a task not yet contacted at the warning fraction of its first-contact time
(`contact_warned_at`, once per holder: a reassign clears it, as `warned_at`), and tells the
grid's overseers when that time passes with no contact (`contact_overdue_at`, once a task).

No backfill: the tasks still open and not contacted past their warning point or their
first-contact deadline are warned or told at the first tick, which is news to whoever answers
for them (nobody was told before); an ended task is never looked at.

The partial index holds the tasks the tick looks at: not contacted and not yet told of a missed
first contact (an open task, mostly: a resolve records first contact).

Revision ID: 0060
Revises: 0059
Create Date: 2027-01-12 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0060"
down_revision: str | None = "0059"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "tasks", sa.Column("contact_warned_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "tasks", sa.Column("contact_overdue_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_tasks_contact_owed",
        "tasks",
        ["first_contact_due_at"],
        postgresql_where=sa.text("first_contact_at IS NULL AND contact_overdue_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_contact_owed", table_name="tasks")
    op.drop_column("tasks", "contact_overdue_at")
    op.drop_column("tasks", "contact_warned_at")
