"""The first-contact deadline's warning and notice: `tasks.contact_warned_at`, `contact_overdue_at`.

The response rate (响应率, one of the three rates) counts the tasks first contacted (accept, or
resolve) by `first_contact_due_at`; the tick warned only of the resolution deadline, so a
general task left unaccepted failed the response rate with nobody told. The tick now warns
whoever answers for a task not yet contacted at the warning fraction of its first-contact time
(`contact_warned_at`, once per holder: a reassign clears it, as `warned_at`), and tells the
grid's overseers when that time passes with no contact (`contact_overdue_at`, once a task).

The open tasks already past their first-contact deadline are stamped told (not news now, and
a burst of urgent notices at the first tick); those past their warning point only are warned
at the first tick (there is time yet to call).

The partial index holds the tasks the tick looks at: not contacted, not yet told of a missed
first contact and not passed on to another community (an open task, then: a resolve records
first contact).

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
    # The open tasks whose first contact was missed before the tick watched it: not news now
    # (their deadline's warning and escalation still come), and a burst at the first tick,
    # one urgent notice each to every overseer, hid the ones that are.
    op.execute(
        "UPDATE tasks SET contact_overdue_at = now() WHERE first_contact_at IS NULL"
        " AND first_contact_due_at <= now() AND status <> 'transferred'"
    )
    op.create_index(
        "ix_tasks_contact_owed",
        "tasks",
        ["first_contact_due_at"],
        postgresql_where=sa.text(
            "first_contact_at IS NULL AND contact_overdue_at IS NULL AND status <> 'transferred'"
        ),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_contact_owed", table_name="tasks")
    op.drop_column("tasks", "contact_overdue_at")
    op.drop_column("tasks", "contact_warned_at")
