"""household_last_visits: the last visit that found someone, and the last attempt apart.

The map's households layer read "visited this week" and "days since the last visit" from
`household_last_visits.last_visited_at`, the latest visit of any outcome: a `nobody_home`
attempt turned the dot green, while the weekly report, the grids layer's coverage, the ledger
and the visit plan count only visits that found someone (outcome other than `nobody_home`,
docs/report.md). A grid at 0 % could show green dots.

- `last_visited_at` is now the latest visit that found someone (null: attempts only);
- `last_attempt_at` (new, not null) the latest visit of any outcome, as `last_visited_at` was:
  a row still exists for every household with any visit.

The statement triggers of migration 0011 keep both (their functions replaced, the triggers
unchanged); `gw_last_visit_rebuild()` fills the table from the visits stored (the backfill
here, and the fixtures' and benches' bulk loads, which disable the triggers). The map still
reads one primary-key row per household.

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-27 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FUNCTIONS = """
CREATE OR REPLACE FUNCTION gw_last_visit_refresh(ids integer[]) RETURNS void LANGUAGE sql AS $$
  DELETE FROM household_last_visits WHERE household_id = ANY(ids);
  INSERT INTO household_last_visits (household_id, last_visited_at, last_attempt_at)
  SELECT v.household_id, max(v.visited_at) FILTER (WHERE v.outcome <> 'nobody_home'),
         max(v.visited_at)
  FROM visits v
  WHERE v.household_id = ANY(ids) GROUP BY v.household_id;
$$;

CREATE OR REPLACE FUNCTION gw_last_visit_rebuild() RETURNS void LANGUAGE sql AS $$
  DELETE FROM household_last_visits;
  INSERT INTO household_last_visits (household_id, last_visited_at, last_attempt_at)
  SELECT household_id, max(visited_at) FILTER (WHERE outcome <> 'nobody_home'), max(visited_at)
  FROM visits WHERE household_id IS NOT NULL GROUP BY household_id;
$$;

-- GREATEST ignores nulls: a batch of attempts only leaves the last visit as it was.
CREATE OR REPLACE FUNCTION gw_last_visit_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO household_last_visits AS s (household_id, last_visited_at, last_attempt_at)
  SELECT household_id, max(visited_at) FILTER (WHERE outcome <> 'nobody_home'), max(visited_at)
  FROM new_visits
  WHERE household_id IS NOT NULL GROUP BY household_id
  ON CONFLICT (household_id) DO UPDATE
    SET last_visited_at = GREATEST(s.last_visited_at, EXCLUDED.last_visited_at),
        last_attempt_at = GREATEST(s.last_attempt_at, EXCLUDED.last_attempt_at);
  RETURN NULL;
END $$;
"""

OLD_FUNCTIONS = """
CREATE OR REPLACE FUNCTION gw_last_visit_refresh(ids integer[]) RETURNS void LANGUAGE sql AS $$
  DELETE FROM household_last_visits WHERE household_id = ANY(ids);
  INSERT INTO household_last_visits (household_id, last_visited_at)
  SELECT v.household_id, max(v.visited_at) FROM visits v
  WHERE v.household_id = ANY(ids) GROUP BY v.household_id;
$$;

CREATE OR REPLACE FUNCTION gw_last_visit_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO household_last_visits AS s (household_id, last_visited_at)
  SELECT household_id, max(visited_at) FROM new_visits
  WHERE household_id IS NOT NULL GROUP BY household_id
  ON CONFLICT (household_id) DO UPDATE
    SET last_visited_at = GREATEST(s.last_visited_at, EXCLUDED.last_visited_at);
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute("ALTER TABLE household_last_visits ADD COLUMN last_attempt_at timestamptz")
    op.execute("ALTER TABLE household_last_visits ALTER COLUMN last_visited_at DROP NOT NULL")
    op.execute(FUNCTIONS)
    # The backfill: every row rewritten from the visits (one pass over visits, grouped).
    op.execute("SELECT gw_last_visit_rebuild()")
    op.execute("ALTER TABLE household_last_visits ALTER COLUMN last_attempt_at SET NOT NULL")


def downgrade() -> None:
    op.execute("DROP FUNCTION gw_last_visit_rebuild()")
    op.execute(OLD_FUNCTIONS)
    op.execute("UPDATE household_last_visits SET last_visited_at = last_attempt_at")
    op.execute("ALTER TABLE household_last_visits ALTER COLUMN last_visited_at SET NOT NULL")
    op.execute("ALTER TABLE household_last_visits DROP COLUMN last_attempt_at")
