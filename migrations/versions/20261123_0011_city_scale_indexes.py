"""City-scale indexes for tiles and weekly figures (btree_gist: visits by week and place).

- ix_visits_week_location: GiST over (week, location). The visits tile asks for one week inside
  one box; with GiST on location alone the index returns all 12+ weeks of points in the box and
  the heap filters 11 of 12 away. btree_gist lets the week equality live in the same index.
- ix_visits_grid_week_household replaces ix_visits_grid_week: the coverage count (distinct
  households visited per grid and week) becomes an index-only scan instead of ~300 heap
  fetches per grid.
- ix_tasks_location: GiST on tasks.location (create_task always sets it, from the household or
  the given point), so a task tile no longer scans every open task in scope.
- ix_tasks_household_no_location: the rare task stored without a point (written before
  create_task set one) still appears on the map through its household.

Revision ID: 0011
Revises: 0003
Create Date: 2026-11-23 13:30:00+00:00
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_index(
        "ix_visits_week_location",
        "visits",
        ["week", "location"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(
        "ix_visits_grid_week_household",
        "visits",
        ["grid_id", "week", "household_id"],
        unique=False,
    )
    op.drop_index("ix_visits_grid_week", table_name="visits")
    op.create_index(
        "ix_tasks_location", "tasks", ["location"], unique=False, postgresql_using="gist"
    )
    op.create_index(
        "ix_tasks_household_no_location",
        "tasks",
        ["household_id"],
        unique=False,
        postgresql_where=sa.text("location IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_household_no_location", table_name="tasks")
    op.drop_index("ix_tasks_location", table_name="tasks", postgresql_using="gist")
    op.create_index("ix_visits_grid_week", "visits", ["grid_id", "week"], unique=False)
    op.drop_index("ix_visits_grid_week_household", table_name="visits")
    op.drop_index("ix_visits_week_location", table_name="visits", postgresql_using="gist")
    # btree_gist stays: other objects may use it, and it costs nothing unused.
