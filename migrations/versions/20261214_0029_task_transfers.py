"""A hotline ticket re-dispatched (改派) to another community: a task per community, chained.

The unique constraint `(source, external_id)` allowed one task per ticket: a ticket the hotline
sent on to another community (the first sent it back as not theirs) could not be opened there.
Now a ticket's tasks form a chain: one holds the ticket (a partial unique index on `(source,
external_id)` where `transferred_at IS NULL`; it also finds the holder), each later one names
the task it came from (`transferred_from_id`, unique: one successor per task, however many
re-dispatches race), and each earlier one its successor (`transferred_to_id`) and when it was
passed on (`transferred_at`). A task still open when its ticket went on ends as `transferred`.

Downgrade: a transferred task becomes `closed` (closed at its transfer; it takes no step
again either way), and the later tasks of a chain keep their ticket as `<ticket>#<task id>`
so that the old constraint holds.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-14 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = (
    "'new', 'dispatched', 'accepted', 'in_progress', 'resolved', 'callback', 'closed',"
    " 'returned', 'escalated', 'reopened'"
)


def upgrade() -> None:
    op.add_column(
        "tasks",
        sa.Column(
            "transferred_from_id",
            sa.Integer(),
            sa.ForeignKey("tasks.id", name="fk_tasks_transferred_from_id_tasks"),
        ),
    )
    op.add_column(
        "tasks",
        sa.Column(
            "transferred_to_id",
            sa.Integer(),
            sa.ForeignKey("tasks.id", name="fk_tasks_transferred_to_id_tasks"),
        ),
    )
    op.add_column("tasks", sa.Column("transferred_at", sa.DateTime(timezone=True)))
    op.create_unique_constraint("uq_tasks_transferred_from_id", "tasks", ["transferred_from_id"])
    op.create_unique_constraint("uq_tasks_transferred_to_id", "tasks", ["transferred_to_id"])
    op.drop_constraint("uq_tasks_source_external_id", "tasks", type_="unique")
    op.create_index(
        "uq_tasks_source_external_id",
        "tasks",
        ["source", "external_id"],
        unique=True,
        postgresql_where=sa.text("transferred_at IS NULL"),
    )
    op.execute("ALTER TABLE tasks DROP CONSTRAINT ck_tasks_status_valid")
    op.execute(
        "ALTER TABLE tasks ADD CONSTRAINT ck_tasks_status_valid"
        f" CHECK (status IN ({OLD_STATUSES}, 'transferred'))"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE tasks SET status = 'closed', closed_at = COALESCE(closed_at, transferred_at)"
        " WHERE status = 'transferred'"
    )
    op.execute("ALTER TABLE tasks DROP CONSTRAINT ck_tasks_status_valid")
    op.execute(
        f"ALTER TABLE tasks ADD CONSTRAINT ck_tasks_status_valid CHECK (status IN ({OLD_STATUSES}))"
    )
    op.execute(
        "UPDATE tasks SET external_id ="
        " left(external_id, 63 - length(id::text)) || '#' || id::text"
        " WHERE transferred_from_id IS NOT NULL"
    )
    op.drop_index("uq_tasks_source_external_id", table_name="tasks")
    op.create_unique_constraint("uq_tasks_source_external_id", "tasks", ["source", "external_id"])
    op.drop_constraint("uq_tasks_transferred_to_id", "tasks", type_="unique")
    op.drop_constraint("uq_tasks_transferred_from_id", "tasks", type_="unique")
    op.drop_column("tasks", "transferred_at")
    op.drop_column("tasks", "transferred_to_id")
    op.drop_column("tasks", "transferred_from_id")
