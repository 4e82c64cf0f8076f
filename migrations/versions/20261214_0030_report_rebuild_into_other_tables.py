"""The report rebuild's computation can fill other tables: `gw_report_compute(prefix)`.

`gw_report_rebuild()` truncated the six aggregate tables and refilled them from the raw rows,
so `gridwork report verify` could only compare by rebuilding in place (inside a savepoint, under
SHARE locks on the raw tables): every visit batch, household edit and report read waited for it.
Its statements now live in `gw_report_compute(prefix)`, which fills the tables named like the
aggregates with `prefix` in front (`rebuilt_report_grid_weeks`, ... : empty tables of the same
columns, temporary ones for verify); with `''` it fills the aggregates themselves. The rebuild
is `TRUNCATE` + `gw_report_compute('')`: the same rows as before. verify fills temporary tables in
its own snapshot and compares them with the kept tables of the same snapshot, taking no lock
(api/services/report_verify.py, docs/report.md).

The statements are run by `EXECUTE format(...)` (the target is a parameter): each is planned
when run, as PL/pgSQL planned the static ones (no parameters), once a rebuild.

The downgrade restores 0020's `gw_report_rebuild()` and drops `gw_report_compute()`.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-14 09:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0020's statements, each aggregate table a format() argument: %1$I household weeks, %2$I grid
# weeks, %3$I grid week tags, %4$I worker weeks, %5$I worker households, %6$I household deltas.
# The grid weeks and tags read the household weeks this computation made, the worker weeks
# the worker households it made: so those reads name the targets too.
FUNCTIONS_SQL = r"""
CREATE OR REPLACE FUNCTION gw_report_compute(prefix text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  hw text := prefix || 'report_household_weeks';
  gw text := prefix || 'report_grid_weeks';
  gt text := prefix || 'report_grid_week_tags';
  ww text := prefix || 'report_worker_weeks';
  wh text := prefix || 'report_worker_households';
  hd text := prefix || 'report_household_deltas';
BEGIN
  -- The targets are empty tables with the aggregates' columns (the rebuild truncates them; a
  -- verify makes them). Writing only into them is allowed in any transaction that may write
  -- temporary tables, so the computation needs no lock of its own.
  EXECUTE format($q$
  INSERT INTO %6$I (grid_id, week, kind, tag, delta)
  SELECT grid_id, week, kind, tag, sum(delta) FROM (
    SELECT hh.grid_id, gw_week_of(hh.valid_from) AS week, hh.kind, t.tag, 1 AS delta
    FROM household_history hh
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(array_prepend('', hh.tags)) AS tag) t
    UNION ALL
    SELECT hh.grid_id, gw_week_of(hh.valid_to), hh.kind, t.tag, -1
    FROM household_history hh
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(array_prepend('', hh.tags)) AS tag) t
    WHERE hh.valid_to IS NOT NULL) d
  GROUP BY 1, 2, 3, 4
  $q$, hw, gw, gt, ww, wh, hd);

  -- Each visit in turn, as the trigger met it: the household's met visits that week so far,
  -- its tags then (its history row at the visit; its row now if it has none), and the cadence
  -- in force that week for the community of the grid the visit counts for.
  EXECUTE format($q$
  INSERT INTO %1$I (grid_id, week, household_id, visits, met, counted)
  WITH periods AS MATERIALIZED (
    -- Each grid's cadences as [from_week, to_week) ranges, '' the start of time, NULL no end:
    -- a few rows a grid, so the join below is a hash probe per visit (gw_cadence_of() per
    -- visit would be a query per visit). The same answer as gw_cadence_of(): the latest row
    -- of a week (by id), a community without rows reads its current setting.
    SELECT g.id AS grid_id, COALESCE(x.from_week, '') AS from_week,
           lead(x.from_week) OVER (PARTITION BY g.id ORDER BY x.from_week NULLS FIRST) AS to_week,
           x.cadence
    FROM grids g
    JOIN (SELECT DISTINCT ON (community_code, from_week) community_code, from_week, cadence
          FROM community_cadences ORDER BY community_code, from_week, id DESC) x
      ON x.community_code = g.community_code
    UNION ALL
    SELECT g.id, '', NULL,
           NULLIF(NULLIF(c.settings -> 'visit_cadence', 'null'::jsonb), '{}'::jsonb)
    FROM grids g JOIN communities c ON c.code = g.community_code
    WHERE NOT EXISTS (SELECT 1 FROM community_cadences x WHERE x.community_code = c.code)),
  v AS (
    SELECT v.grid_id, v.week, v.household_id, v.outcome <> 'nobody_home' AS met,
           count(*) FILTER (WHERE v.outcome <> 'nobody_home') OVER (
             PARTITION BY v.grid_id, v.week, v.household_id ORDER BY v.visited_at, v.id
             ROWS UNBOUNDED PRECEDING) AS met_so_far,
           COALESCE(hh.tags, h.tags) AS tags, p.cadence
    FROM visits v
    LEFT JOIN households h ON h.id = v.household_id
    LEFT JOIN periods p
      ON p.grid_id = v.grid_id AND v.week >= p.from_week
         AND (p.to_week IS NULL OR v.week < p.to_week)
    LEFT JOIN LATERAL (
      SELECT x.tags FROM household_history x
      WHERE x.household_id = v.household_id AND x.valid_from <= v.visited_at
        AND (x.valid_to IS NULL OR x.valid_to > v.visited_at)
      ORDER BY x.valid_from DESC LIMIT 1) hh ON true
    WHERE v.household_id IS NOT NULL),
  hw AS (
    SELECT grid_id, week, household_id, count(*) AS n, count(*) FILTER (WHERE met) AS m
    FROM v GROUP BY 1, 2, 3),
  done AS (
    SELECT v.grid_id, v.week, v.household_id, array_agg(DISTINCT t.tag ORDER BY t.tag) AS tags
    FROM v CROSS JOIN LATERAL unnest(v.tags) t(tag)
    WHERE v.met_so_far >= gw_cadence_per_week(v.cadence, v.tags)
    GROUP BY 1, 2, 3)
  SELECT hw.grid_id, hw.week, hw.household_id, hw.n, hw.m, COALESCE(done.tags, '{}')
  FROM hw LEFT JOIN done USING (grid_id, week, household_id)
  $q$, hw, gw, gt, ww, wh, hd);

  EXECUTE format($q$
  INSERT INTO %2$I (grid_id, week, visits, met, grade_ok, grade_doubtful,
                    grade_suspect, relief_visits, unregistered_visits,
                    visited, visited_2w)
  WITH v AS (
    SELECT grid_id, week, count(*) AS visits,
           count(*) FILTER (WHERE outcome <> 'nobody_home') AS met,
           count(*) FILTER (WHERE grade = 'ok') AS ok,
           count(*) FILTER (WHERE grade = 'doubtful') AS doubtful,
           count(*) FILTER (WHERE grade = 'suspect') AS suspect,
           count(*) FILTER (WHERE relief) AS relief,
           count(*) FILTER (WHERE household_id IS NULL) AS unregistered
    FROM visits GROUP BY 1, 2),
  hv AS (
    SELECT grid_id, week, count(*) AS visited FROM %1$I
    WHERE met > 0 GROUP BY 1, 2),
  two AS (
    SELECT grid_id, week, count(*) AS n FROM (
      SELECT DISTINCT grid_id, week, household_id FROM (
        SELECT grid_id, week, household_id FROM %1$I WHERE met > 0
        UNION ALL
        SELECT grid_id, gw_week_shift(week, 1), household_id FROM %1$I
        WHERE met > 0) u) d
    GROUP BY 1, 2),
  keys AS (SELECT grid_id, week FROM v UNION SELECT grid_id, week FROM two)
  SELECT k.grid_id, k.week, COALESCE(v.visits, 0), COALESCE(v.met, 0), COALESCE(v.ok, 0),
         COALESCE(v.doubtful, 0), COALESCE(v.suspect, 0), COALESCE(v.relief, 0),
         COALESCE(v.unregistered, 0), COALESCE(hv.visited, 0), COALESCE(two.n, 0)
  FROM keys k
  LEFT JOIN v USING (grid_id, week)
  LEFT JOIN hv USING (grid_id, week)
  LEFT JOIN two USING (grid_id, week)
  $q$, hw, gw, gt, ww, wh, hd);

  EXECUTE format($q$
  INSERT INTO %3$I (grid_id, week, tag, done)
  SELECT o.grid_id, o.week, t.tag, count(*)
  FROM %1$I o CROSS JOIN LATERAL unnest(o.counted) t(tag)
  GROUP BY 1, 2, 3
  $q$, hw, gw, gt, ww, wh, hd);

  EXECUTE format($q$
  INSERT INTO %5$I (worker_id, week, grid_id, household_id)
  SELECT DISTINCT worker_id, week, grid_id, household_id FROM visits
  WHERE household_id IS NOT NULL AND outcome <> 'nobody_home'
  $q$, hw, gw, gt, ww, wh, hd);

  EXECUTE format($q$
  INSERT INTO %4$I (worker_id, week, grid_id, visits, households)
  SELECT v.worker_id, v.week, v.grid_id, v.n, COALESCE(k.n, 0)
  FROM (SELECT worker_id, week, grid_id, count(*) AS n FROM visits GROUP BY 1, 2, 3) v
  LEFT JOIN (SELECT worker_id, week, grid_id, count(*) AS n FROM %5$I
             GROUP BY 1, 2, 3) k USING (worker_id, week, grid_id)
  $q$, hw, gw, gt, ww, wh, hd);
END
$fn$;

CREATE OR REPLACE FUNCTION gw_report_rebuild() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  TRUNCATE report_household_weeks, report_grid_weeks, report_grid_week_tags,
           report_worker_weeks, report_worker_households, report_household_deltas;
  PERFORM gw_report_compute('');
END
$fn$;
"""


def _rebuild_of_0020() -> str:
    """0020's `gw_report_rebuild()`, the last function of its FUNCTIONS_SQL (read, not copied:
    a frozen migration)."""
    path = next(Path(__file__).parent.glob("*_0020_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0020", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    head = "CREATE OR REPLACE FUNCTION gw_report_rebuild()"
    return module.FUNCTIONS_SQL[module.FUNCTIONS_SQL.index(head) :]


def upgrade() -> None:
    op.execute(FUNCTIONS_SQL)


def downgrade() -> None:
    op.execute(_rebuild_of_0020())
    op.execute("DROP FUNCTION IF EXISTS gw_report_compute(text)")
