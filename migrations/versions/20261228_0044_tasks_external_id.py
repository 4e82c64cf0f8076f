"""tasks: an index on the ticket number (`ix_tasks_external_id`), for `GET /tasks?external_id=`.

The 12345 hotline bridge finds a ticket's task by its number. The only index holding the number
was the partial unique one of the ticket's holder (`source, external_id` where not passed on),
which a lookup by number alone, and one of a re-dispatched ticket's passed-on task, cannot use:
the list scanned every task the caller sees (a district viewer over a million tasks: some
140 ms a statement, two a page). Tasks without a number (most besides the hotline's) are left
out of the index.

Built in the migration's transaction, blocking writes to tasks for that time.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-28 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0044"
down_revision: str | None = "0043"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_tasks_external_id ON tasks (external_id) WHERE external_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_tasks_external_id")
