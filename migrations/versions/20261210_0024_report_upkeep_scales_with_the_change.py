"""Household history rows are closed by household id: the trigger's cost follows the rows changed.

`gw_households_updated()` (0014) closed the open `household_history` rows of the households a
statement changed with one `UPDATE ... FROM moved`, which PostgreSQL planned as a hash join over
a sequential scan of every open history row: its cost grew with the table (90,000 households:
117,000 history rows read for a 500-row UPDATE), not with the statement. They are now closed by
household id (`= ANY(ids)`, an index probe each on ix_household_history_household), before the
new rows open (a separate statement, so it cannot close them). `gw_households_deleted()` had the
same join: same fix.

Measured with bench/report_upkeep.py (both definitions swapped in turn on the same data): see
docs/report.md.

The downgrade restores 0014's household trigger functions.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-10 10:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOUSEHOLD_TRIGGERS_SQL = r"""
CREATE OR REPLACE FUNCTION gw_households_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := gw_effective_at(now());
BEGIN
  -- By household id, an index probe each (0014 hash-joined every open history row).
  UPDATE household_history SET valid_to = at
  WHERE household_id = ANY(ARRAY(SELECT id FROM old_households)) AND valid_to IS NULL;
  INSERT INTO report_household_deltas AS d (grid_id, week, kind, tag, delta)
    SELECT o.grid_id, gw_week_of(at), o.kind, t.tag, -count(*)
    FROM old_households o,
         LATERAL (SELECT DISTINCT u AS tag FROM unnest(array_prepend('', o.tags)) u) t
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (grid_id, week, kind, tag) DO UPDATE SET delta = d.delta + EXCLUDED.delta;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION gw_households_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := gw_effective_at(now());
  changed integer[];
BEGIN
  -- The households whose grid, kind or tags changed (an UPDATE that changes none of them,
  -- e.g. of members or phone, writes nothing).
  SELECT COALESCE(array_agg(o.id ORDER BY o.id), '{}') INTO changed
  FROM old_households o JOIN new_households n USING (id)
  WHERE o.grid_id IS DISTINCT FROM n.grid_id OR o.kind IS DISTINCT FROM n.kind
     OR o.tags IS DISTINCT FROM n.tags;
  IF changed = '{}' THEN
    RETURN NULL;
  END IF;

  -- Their open history rows, closed by household id: an index probe each
  -- (ix_household_history_household), so the cost follows the rows changed, not the table.
  -- (0014 joined the changed rows to the history, planned as a hash join over a sequential
  -- scan of every open row.) Before the new rows open, so it never closes them.
  UPDATE household_history SET valid_to = at
  WHERE household_id = ANY(changed) AND valid_to IS NULL;

  WITH moved AS (
    SELECT o.id, o.grid_id AS old_grid, o.kind AS old_kind, o.tags AS old_tags,
           n.grid_id AS new_grid, n.kind AS new_kind, n.tags AS new_tags
    FROM old_households o JOIN new_households n USING (id)
    WHERE o.grid_id IS DISTINCT FROM n.grid_id OR o.kind IS DISTINCT FROM n.kind
       OR o.tags IS DISTINCT FROM n.tags
  ), opened AS (
    INSERT INTO household_history (household_id, grid_id, kind, tags, valid_from)
    SELECT id, new_grid, new_kind, new_tags, at FROM moved
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

  RETURN NULL;
END
$$;
"""

FUNCTIONS_SQL = HOUSEHOLD_TRIGGERS_SQL

# The household trigger functions as migration 0014 created them: for the downgrade and the bench.
PREVIOUS_HOUSEHOLD_TRIGGERS_SQL = r"""
CREATE OR REPLACE FUNCTION gw_households_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := gw_effective_at(now());
BEGIN
  UPDATE household_history h SET valid_to = at
    FROM old_households o WHERE h.household_id = o.id AND h.valid_to IS NULL;
  INSERT INTO report_household_deltas AS d (grid_id, week, kind, tag, delta)
    SELECT o.grid_id, gw_week_of(at), o.kind, t.tag, -count(*)
    FROM old_households o,
         LATERAL (SELECT DISTINCT u AS tag FROM unnest(array_prepend('', o.tags)) u) t
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (grid_id, week, kind, tag) DO UPDATE SET delta = d.delta + EXCLUDED.delta;
  RETURN NULL;
END
$$;

-- One statement, so the history rows it closes are those of before it (the snapshot of a
-- data-modifying CTE): never the ones it opens.
CREATE OR REPLACE FUNCTION gw_households_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := gw_effective_at(now());
BEGIN
  WITH moved AS (
    SELECT o.id, o.grid_id AS old_grid, o.kind AS old_kind, o.tags AS old_tags,
           n.grid_id AS new_grid, n.kind AS new_kind, n.tags AS new_tags
    FROM old_households o JOIN new_households n USING (id)
    WHERE o.grid_id IS DISTINCT FROM n.grid_id OR o.kind IS DISTINCT FROM n.kind
       OR o.tags IS DISTINCT FROM n.tags
  ), closed AS (
    UPDATE household_history h SET valid_to = at
    FROM moved m WHERE h.household_id = m.id AND h.valid_to IS NULL
  ), opened AS (
    INSERT INTO household_history (household_id, grid_id, kind, tags, valid_from)
    SELECT id, new_grid, new_kind, new_tags, at FROM moved
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
  RETURN NULL;
END
$$;
"""

PREVIOUS_FUNCTIONS_SQL = PREVIOUS_HOUSEHOLD_TRIGGERS_SQL


def upgrade() -> None:
    op.execute(FUNCTIONS_SQL)


def downgrade() -> None:
    op.execute(PREVIOUS_FUNCTIONS_SQL)
