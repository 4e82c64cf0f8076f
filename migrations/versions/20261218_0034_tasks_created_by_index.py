"""Tasks by who opened them: a worker's task list (`Scope.tasks`) now includes the tasks they
opened, e.g. a window worker's tasks for residents of other grids. Without an index the
condition `created_by_id = :user` in the list's OR made every worker's task poll a scan of
the whole tasks table; with it the three conditions (grid, assignee, creator) are three
index scans joined (BitmapOr).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-18 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_created_by_id", "tasks", ["created_by_id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_created_by_id", table_name="tasks")
