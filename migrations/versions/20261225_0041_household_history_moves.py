"""Household history: the grid a row's household came from, and indexes of changed rows.

The weekly report counts each visited household in the grid it ends the week in (its
`households`), wherever the visit was recorded, and a care tag done only where the household is
due under it (docs/report.md). The kept aggregates count visits where they were recorded; the
two differ only for households whose history changed since the trend's first week, which the
report counts again one by one. It finds them in the selected grids:

- rows closed since (the household left the grid, or its tags or kind changed):
  `ix_household_history_grid_closed`, a partial index of the closed rows by grid and end;
- rows opened since by a move into the grid: the new column `from_grid_id` (the grid the
  household was in before, set by the households UPDATE trigger when the grid changed; NULL
  for a registration and for a change of tags or kind) and `ix_household_history_grid_moved_in`.
  A registration is no change of grid: a register imported in the weeks reported on costs
  the report nothing.

The UPDATE trigger is 0026's with `from_grid_id` written. Rows opened by moves before this
migration get it from the row their household closed at the same instant.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-25 09:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPDATED_SQL = r"""
CREATE OR REPLACE FUNCTION gw_households_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := gw_effective_at(now());
  changed integer[];
  retagged integer[];
BEGIN
  -- The households whose grid, kind or tags changed (an UPDATE that changes none of them,
  -- e.g. of members or phone, writes nothing), and those whose tags changed.
  SELECT COALESCE(array_agg(o.id ORDER BY o.id), '{}'),
         COALESCE(array_agg(o.id ORDER BY o.id) FILTER (WHERE o.tags IS DISTINCT FROM n.tags),
                  '{}')
    INTO changed, retagged
  FROM old_households o JOIN new_households n USING (id)
  WHERE o.grid_id IS DISTINCT FROM n.grid_id OR o.kind IS DISTINCT FROM n.kind
     OR o.tags IS DISTINCT FROM n.tags;
  IF changed = '{}' THEN
    RETURN NULL;
  END IF;

  -- Their open history rows, closed by household id: an index probe each
  -- (ix_household_history_household), so the cost follows the rows changed, not the table.
  -- Before the new rows open, so it never closes them.
  UPDATE household_history SET valid_to = at
  WHERE household_id = ANY(changed) AND valid_to IS NULL;

  WITH moved AS (
    SELECT o.id, o.grid_id AS old_grid, o.kind AS old_kind, o.tags AS old_tags,
           n.grid_id AS new_grid, n.kind AS new_kind, n.tags AS new_tags
    FROM old_households o JOIN new_households n USING (id)
    WHERE o.grid_id IS DISTINCT FROM n.grid_id OR o.kind IS DISTINCT FROM n.kind
       OR o.tags IS DISTINCT FROM n.tags
  ), opened AS (
    -- from_grid_id: where a household that changed grid came from (the report finds the
    -- households that moved into its grids by it; 0039).
    INSERT INTO household_history (household_id, grid_id, kind, tags, valid_from, from_grid_id)
    SELECT id, new_grid, new_kind, new_tags, at,
           CASE WHEN old_grid IS DISTINCT FROM new_grid THEN old_grid END
    FROM moved
  )
  INSERT INTO report_household_deltas AS d (grid_id, week, kind, tag, delta)
  SELECT grid_id, gw_week_of(at), kind, tag, sum(delta)
  FROM (
    SELECT m.old_grid AS grid_id, m.old_kind AS kind, t.tag, -1 AS delta
    FROM moved m,
         LATERAL (SELECT DISTINCT u AS tag FROM unnest(array_prepend('', m.old_tags)) u) t
    UNION ALL
    SELECT m.new_grid, m.new_kind, t.tag, 1
    FROM moved m,
         LATERAL (SELECT DISTINCT u AS tag FROM unnest(array_prepend('', m.new_tags)) u) t
  ) changes
  GROUP BY 1, 2, 3, 4
  ON CONFLICT (grid_id, week, kind, tag) DO UPDATE SET delta = d.delta + EXCLUDED.delta;

  -- Visits already stored and dated at or after the change now carry the new tags: their
  -- weeks are counted again (none for a change dated now with no visit after it).
  IF retagged <> '{}' THEN
    PERFORM gw_report_recount_households(retagged, at);
  END IF;
  RETURN NULL;
END
$$;
"""


def _household_triggers_of_0026() -> str:
    """0026's household trigger functions (read, not copied: a frozen migration)."""
    path = next(Path(__file__).parent.glob("*_0026_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0026", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HOUSEHOLD_TRIGGERS_SQL


def upgrade() -> None:
    op.execute("ALTER TABLE household_history ADD COLUMN from_grid_id integer")
    # Rows opened by a move before now: the grid of the row closed when they opened.
    op.execute(
        """
        UPDATE household_history x SET from_grid_id = p.grid_id
        FROM household_history p
        WHERE p.valid_to IS NOT NULL AND p.household_id = x.household_id
          AND x.valid_from = p.valid_to AND x.grid_id <> p.grid_id
        """
    )
    op.execute(
        "CREATE INDEX ix_household_history_grid_closed ON household_history (grid_id, valid_to)"
        " WHERE valid_to IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_household_history_grid_moved_in"
        " ON household_history (grid_id, valid_from) WHERE from_grid_id IS NOT NULL"
    )
    op.execute(UPDATED_SQL)


def downgrade() -> None:
    op.execute(_household_triggers_of_0026())
    op.execute("DROP INDEX ix_household_history_grid_moved_in")
    op.execute("DROP INDEX ix_household_history_grid_closed")
    op.execute("ALTER TABLE household_history DROP COLUMN from_grid_id")
