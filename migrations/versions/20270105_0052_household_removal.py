"""Households leave the register (and come back): removal columns, and the history trigger.

A household moved away, a building demolished, a shop closed, an address imported twice: the
record stays (its visits, its place in past weeks' reports) but leaves the register.

- `households.removed_at`: when it left (NULL: in the register); `removal_reason` (moved_out,
  demolished, closed, duplicate, other), `removal_note`, `removal_date` (the effective date, as
  said, Asia/Shanghai), `removed_by_id`. `erased_at`: when retention erased its phone, care
  tags and note (GRIDWORK_RETAIN_REMOVED_HOUSEHOLDS_DAYS after the removal). A partial index
  of the removed ones not erased yet: what retention looks for.
- `gw_households_updated()` is 0041's with two more transitions:
  * removed (removed_at NULL -> set): its open history row closed at `removed_at`, and -1 in
    the report's household deltas in that week, as a deletion dated then would write;
  * back (removed_at set -> NULL): a history row opened at the removal's time with what it
    is now (from_grid_id when its grid differs from the row closed), +1 in that week: the
    removal undone as if it had never been.
  A household removed before and after the statement (retention's erasure, a redraw moving
  it) writes no history nor delta: it is in no grid's count. Its visits are replayed on a
  change of tags as any household's (those dated before its first history row carry its tags
  now).

Revision ID: 0052
Revises: 0051
Create Date: 2027-01-05 09:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0052"
down_revision: str | None = "0051"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = ("moved_out", "demolished", "closed", "duplicate", "other")

UPDATED_SQL = r"""
CREATE OR REPLACE FUNCTION gw_households_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := gw_effective_at(now());
  changed integer[];
  retagged integer[];
  removed integer[];
  restored integer[];
BEGIN
  -- In the register before and after: those whose grid, kind or tags changed (an UPDATE that
  -- changes none of them, e.g. of members or phone, writes nothing). Retagged: any whose tags
  -- changed, removed ones too (their visits are replayed as a rebuild would).
  SELECT COALESCE(array_agg(o.id ORDER BY o.id) FILTER (
           WHERE o.removed_at IS NULL AND n.removed_at IS NULL
             AND (o.grid_id IS DISTINCT FROM n.grid_id OR o.kind IS DISTINCT FROM n.kind
                  OR o.tags IS DISTINCT FROM n.tags)), '{}'),
         COALESCE(array_agg(o.id ORDER BY o.id) FILTER (WHERE o.tags IS DISTINCT FROM n.tags),
                  '{}'),
         COALESCE(array_agg(o.id ORDER BY o.id) FILTER (
           WHERE o.removed_at IS NULL AND n.removed_at IS NOT NULL), '{}'),
         COALESCE(array_agg(o.id ORDER BY o.id) FILTER (
           WHERE o.removed_at IS NOT NULL AND n.removed_at IS NULL), '{}')
    INTO changed, retagged, removed, restored
  FROM old_households o JOIN new_households n USING (id)
  WHERE o.grid_id IS DISTINCT FROM n.grid_id OR o.kind IS DISTINCT FROM n.kind
     OR o.tags IS DISTINCT FROM n.tags OR o.removed_at IS DISTINCT FROM n.removed_at;
  IF changed = '{}' AND retagged = '{}' AND removed = '{}' AND restored = '{}' THEN
    RETURN NULL;
  END IF;

  IF removed <> '{}' THEN
    -- Left the register at its removal's time, as a deletion dated then.
    UPDATE household_history x SET valid_to = n.removed_at
    FROM new_households n
    WHERE x.household_id = ANY(removed) AND x.valid_to IS NULL AND n.id = x.household_id;
    INSERT INTO report_household_deltas AS d (grid_id, week, kind, tag, delta)
    SELECT o.grid_id, gw_week_of(n.removed_at), o.kind, t.tag, -count(*)
    FROM old_households o JOIN new_households n USING (id),
         LATERAL (SELECT DISTINCT u AS tag FROM unnest(array_prepend('', o.tags)) u) t
    WHERE o.id = ANY(removed)
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (grid_id, week, kind, tag) DO UPDATE SET delta = d.delta + EXCLUDED.delta;
  END IF;

  IF restored <> '{}' THEN
    -- Back from its removal's time, as it is now.
    INSERT INTO household_history (household_id, grid_id, kind, tags, valid_from, from_grid_id)
    SELECT n.id, n.grid_id, n.kind, n.tags, o.removed_at,
           (SELECT CASE WHEN x.grid_id <> n.grid_id THEN x.grid_id END
            FROM household_history x WHERE x.household_id = n.id
            ORDER BY x.valid_from DESC LIMIT 1)
    FROM old_households o JOIN new_households n USING (id)
    WHERE n.id = ANY(restored);
    INSERT INTO report_household_deltas AS d (grid_id, week, kind, tag, delta)
    SELECT n.grid_id, gw_week_of(o.removed_at), n.kind, t.tag, count(*)
    FROM old_households o JOIN new_households n USING (id),
         LATERAL (SELECT DISTINCT u AS tag FROM unnest(array_prepend('', n.tags)) u) t
    WHERE n.id = ANY(restored)
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (grid_id, week, kind, tag) DO UPDATE SET delta = d.delta + EXCLUDED.delta;
  END IF;

  IF changed <> '{}' THEN
    -- Their open history rows, closed by household id: an index probe each
    -- (ix_household_history_household), so the cost follows the rows changed, not the table.
    -- Before the new rows open, so it never closes them.
    UPDATE household_history SET valid_to = at
    WHERE household_id = ANY(changed) AND valid_to IS NULL;

    WITH moved AS (
      SELECT o.id, o.grid_id AS old_grid, o.kind AS old_kind, o.tags AS old_tags,
             n.grid_id AS new_grid, n.kind AS new_kind, n.tags AS new_tags
      FROM old_households o JOIN new_households n USING (id)
      WHERE o.id = ANY(changed)
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
  END IF;

  -- Visits already stored and dated at or after the change now carry the new tags: their
  -- weeks are counted again (none for a change dated now with no visit after it).
  IF retagged <> '{}' THEN
    PERFORM gw_report_recount_households(retagged, at);
  END IF;
  RETURN NULL;
END
$$;
"""


def _updated_of_0041() -> str:
    """0041's households UPDATE trigger function (read, not copied: a frozen migration)."""
    path = next(Path(__file__).parent.glob("*_0041_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0041", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.UPDATED_SQL


def upgrade() -> None:
    reasons = ", ".join(repr(r) for r in REASONS)
    op.execute(
        f"""
        ALTER TABLE households
          ADD COLUMN removed_at timestamptz,
          ADD COLUMN removal_date date,
          ADD COLUMN removal_reason varchar(20),
          ADD COLUMN removal_note text,
          ADD COLUMN removed_by_id integer
            CONSTRAINT fk_households_removed_by_id_users REFERENCES users (id) ON DELETE SET NULL,
          ADD COLUMN erased_at timestamptz,
          ADD CONSTRAINT ck_households_removal_reason_valid CHECK (removal_reason IN ({reasons})),
          ADD CONSTRAINT ck_households_removal_complete CHECK (
            (removed_at IS NULL) = (removal_reason IS NULL)
            AND (removed_at IS NULL) = (removal_date IS NULL)),
          ADD CONSTRAINT ck_households_erased_only_removed CHECK (
            erased_at IS NULL OR removed_at IS NOT NULL)
        """
    )
    op.execute(
        "CREATE INDEX ix_households_removed_to_erase ON households (removed_at)"
        " WHERE removed_at IS NOT NULL AND erased_at IS NULL"
    )
    op.execute(UPDATED_SQL)


def downgrade() -> None:
    op.execute(_updated_of_0041())
    op.execute("DROP INDEX ix_households_removed_to_erase")
    op.execute(
        """
        ALTER TABLE households
          DROP COLUMN erased_at, DROP COLUMN removed_by_id, DROP COLUMN removal_note,
          DROP COLUMN removal_reason, DROP COLUMN removal_date, DROP COLUMN removed_at
        """
    )
