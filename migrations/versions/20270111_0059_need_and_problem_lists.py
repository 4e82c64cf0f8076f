"""The need list and the problem list (需求清单 / 问题清单) that visits produce.

A visit's follow-up says which list it goes on (`visits.follow_up_kind`: `need`, a resident's
wish — lamps, a ramp, a service; `problem`, something broken or wrong to fix), and the task
made from it carries the list (`tasks.list_kind`), which `GET /tasks?list=`, `GET
/tasks/lists` and the weekly report read. NULL: no follow-up (a visit), on no list (a task of
another source).

The follow-ups recorded before are put on the need list, the default for a client that sends
no kind: their task was a `help` task (a resident asking for something), and needs are most of
what visits bring up (one community kept 326 need lists and 50 problem lists in a year).

Revision ID: 0059
Revises: 0058
Create Date: 2027-01-11 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0059"
down_revision: str | None = "0058"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("visits", sa.Column("follow_up_kind", sa.String(7), nullable=True))
    op.add_column("tasks", sa.Column("list_kind", sa.String(7), nullable=True))
    op.execute("UPDATE visits SET follow_up_kind = 'need' WHERE follow_up")
    op.execute("UPDATE tasks SET list_kind = 'need' WHERE source = 'visit'")
    op.create_check_constraint(
        op.f("ck_visits_follow_up_kind_valid"),
        "visits",
        "follow_up_kind IS NULL OR (follow_up AND follow_up_kind IN ('need', 'problem'))",
    )
    op.create_check_constraint(
        op.f("ck_tasks_list_kind_valid"),
        "tasks",
        "list_kind IS NULL OR list_kind IN ('need', 'problem')",
    )
    # The lists' figures per grid (GET /tasks/lists, the weekly report): the few tasks on a
    # list, not every task of the grid.
    op.create_index(
        "ix_tasks_list_grid",
        "tasks",
        ["grid_id", "list_kind"],
        postgresql_where=sa.text("list_kind IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_list_grid", table_name="tasks")
    op.drop_constraint(op.f("ck_tasks_list_kind_valid"), "tasks", type_="check")
    op.drop_constraint(op.f("ck_visits_follow_up_kind_valid"), "visits", type_="check")
    op.drop_column("tasks", "list_kind")
    op.drop_column("visits", "follow_up_kind")
