"""Only a hotline ticket is one system-wide; another source's reference is its community's own.

The partial unique index `uq_tasks_source_external_id` held `(source, external_id)` unique
system-wide for every source, and `create_task` checked every source's number across
communities. A hotline ticket must be (the hotline's re-dispatch, 改派, passes one ticket from
community to community), but a window's request number is the reference of the community's own
office: community B registering its `W-0001` after community A did was a 409 "already a task
of this community", for good, and told B that A had such a reference. The index is now the
hotline's only (`source = 'hotline'`); another source's reference is unique within its
community, checked by `create_task` under an advisory lock per community, source and reference
(tasks have no community column for an index to take: a task's community is its grid's, and a
task moves only within it).

Downgrade: the system-wide index comes back; a reference that two communities now share is
kept by its first task, and each later one keeps it as `<reference>#<task id>`, as migration
0029's downgrade does, so that the index holds.

Revision ID: 0067
Revises: 0066
Create Date: 2027-01-15 12:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0067"
down_revision: str | None = "0066"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _unique_references(where: str) -> None:
    """`uq_tasks_source_external_id` built again over the tasks `where` selects."""
    op.drop_index("uq_tasks_source_external_id", table_name="tasks")
    op.create_index(
        "uq_tasks_source_external_id",
        "tasks",
        ["source", "external_id"],
        unique=True,
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    _unique_references("source = 'hotline' AND transferred_at IS NULL")


def downgrade() -> None:
    op.execute(
        """
        UPDATE tasks t SET external_id =
            left(t.external_id, 63 - length(t.id::text)) || '#' || t.id::text
        WHERE t.source <> 'hotline' AND t.transferred_at IS NULL AND t.external_id IS NOT NULL
          AND EXISTS (
            SELECT 1 FROM tasks e
            WHERE e.source = t.source AND e.external_id = t.external_id
              AND e.transferred_at IS NULL AND e.id < t.id)
        """
    )
    _unique_references("transferred_at IS NULL")
