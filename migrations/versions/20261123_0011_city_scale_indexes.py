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


LAST_VISIT_FUNCTIONS = """
CREATE FUNCTION gw_last_visit_refresh(ids integer[]) RETURNS void LANGUAGE sql AS $$
  DELETE FROM household_last_visits WHERE household_id = ANY(ids);
  INSERT INTO household_last_visits (household_id, last_visited_at)
  SELECT v.household_id, max(v.visited_at) FROM visits v
  WHERE v.household_id = ANY(ids) GROUP BY v.household_id;
$$;

CREATE FUNCTION gw_last_visit_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO household_last_visits AS s (household_id, last_visited_at)
  SELECT household_id, max(visited_at) FROM new_visits
  WHERE household_id IS NOT NULL GROUP BY household_id
  ON CONFLICT (household_id) DO UPDATE
    SET last_visited_at = GREATEST(s.last_visited_at, EXCLUDED.last_visited_at);
  RETURN NULL;
END $$;

CREATE FUNCTION gw_last_visit_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    PERFORM gw_last_visit_refresh(ARRAY(
      SELECT household_id FROM old_visits WHERE household_id IS NOT NULL
      UNION SELECT household_id FROM new_visits WHERE household_id IS NOT NULL));
  ELSE
    PERFORM gw_last_visit_refresh(ARRAY(
      SELECT household_id FROM old_visits WHERE household_id IS NOT NULL));
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER visits_last_visit_insert AFTER INSERT ON visits
  REFERENCING NEW TABLE AS new_visits
  FOR EACH STATEMENT EXECUTE FUNCTION gw_last_visit_after_insert();
CREATE TRIGGER visits_last_visit_update AFTER UPDATE ON visits
  REFERENCING OLD TABLE AS old_visits NEW TABLE AS new_visits
  FOR EACH STATEMENT EXECUTE FUNCTION gw_last_visit_after_change();
CREATE TRIGGER visits_last_visit_delete AFTER DELETE ON visits
  REFERENCING OLD TABLE AS old_visits
  FOR EACH STATEMENT EXECUTE FUNCTION gw_last_visit_after_change();
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    # Each household's latest visit, kept by statement-level triggers (one set-based upsert per
    # batch, not one per row), filled here from the visits already stored.
    op.create_table(
        "household_last_visits",
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("last_visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_last_visits_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_household_last_visits")),
    )
    op.execute(
        "INSERT INTO household_last_visits (household_id, last_visited_at) "
        "SELECT household_id, max(visited_at) FROM visits "
        "WHERE household_id IS NOT NULL GROUP BY household_id"
    )
    op.execute(LAST_VISIT_FUNCTIONS)
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
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER visits_last_visit_{name} ON visits")
    op.execute("DROP FUNCTION gw_last_visit_after_change()")
    op.execute("DROP FUNCTION gw_last_visit_after_insert()")
    op.execute("DROP FUNCTION gw_last_visit_refresh(integer[])")
    op.drop_table("household_last_visits")
    op.drop_index("ix_tasks_household_no_location", table_name="tasks")
    op.drop_index("ix_tasks_location", table_name="tasks", postgresql_using="gist")
    op.create_index("ix_visits_grid_week", "visits", ["grid_id", "week"], unique=False)
    op.drop_index("ix_visits_grid_week_household", table_name="visits")
    op.drop_index("ix_visits_week_location", table_name="visits", postgresql_using="gist")
    # btree_gist stays: other objects may use it, and it costs nothing unused.
