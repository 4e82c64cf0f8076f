"""Must-visit `done` counts a household once a week per tag, however its tags or cadence change.

The visits trigger (0005) counted a household done under each of its tags whenever a visit took
its met visits from below to at least its cadence, reading tags and cadence as they were at
that visit; nothing recorded that the household had been counted that week. Tagged
elderly_80, visited Monday, tagged living_alone too on Tuesday (twice a week now) and visited
Wednesday, it was counted again: done 2 of due 1, 200 %; raising the community's cadence
mid-week did the same. The full rebuild counted it once, so the kept tables no longer equalled
it.

`report_household_weeks.counted` holds the tags a (grid, week, household) has been counted done
under; the trigger counts a tag only when it first enters the set (its met visits reach the
cadence in force now), and the rebuild fills the set as it counts (the household's tags when
its met visits reach its cadence). The upgrade rebuilds the aggregates, which repairs the
doubled counts; the downgrade restores 0005's functions and drops the column.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS_SQL = r"""
CREATE OR REPLACE FUNCTION gw_visits_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- One writer per grid at a time (in grid order: no deadlocks), so the distinct counts below
  -- read every committed neighbour week.
  PERFORM pg_advisory_xact_lock(20261123, g)
    FROM (SELECT DISTINCT grid_id AS g FROM nv ORDER BY 1) s;

  INSERT INTO report_grid_weeks AS r (grid_id, week, visits, met, grade_ok, grade_doubtful,
                                      grade_suspect, relief_visits, unregistered_visits)
  SELECT grid_id, week, count(*),
         count(*) FILTER (WHERE outcome <> 'nobody_home'),
         count(*) FILTER (WHERE grade = 'ok'),
         count(*) FILTER (WHERE grade = 'doubtful'),
         count(*) FILTER (WHERE grade = 'suspect'),
         count(*) FILTER (WHERE relief),
         count(*) FILTER (WHERE household_id IS NULL)
  FROM nv GROUP BY grid_id, week ORDER BY 1, 2
  ON CONFLICT (grid_id, week) DO UPDATE SET
    visits = r.visits + EXCLUDED.visits, met = r.met + EXCLUDED.met,
    grade_ok = r.grade_ok + EXCLUDED.grade_ok,
    grade_doubtful = r.grade_doubtful + EXCLUDED.grade_doubtful,
    grade_suspect = r.grade_suspect + EXCLUDED.grade_suspect,
    relief_visits = r.relief_visits + EXCLUDED.relief_visits,
    unregistered_visits = r.unregistered_visits + EXCLUDED.unregistered_visits;

  WITH agg AS (
    SELECT grid_id, week, household_id, count(*) AS n,
           count(*) FILTER (WHERE outcome <> 'nobody_home') AS m
    FROM nv WHERE household_id IS NOT NULL GROUP BY 1, 2, 3),
  old AS (
    -- `counted`: the tags this household-week has already been counted done under, and the
    -- set after these visits (its tags, when its met visits reach its cadence now).
    SELECT a.*, COALESCE(o.met, 0) AS old_met, COALESCE(o.counted, '{}') AS old_counted,
           ARRAY(SELECT DISTINCT x FROM unnest(COALESCE(o.counted, '{}') || CASE
                   WHEN COALESCE(o.met, 0) + a.m >= gw_per_week(c.settings, h.tags)
                   THEN h.tags ELSE '{}' END) x ORDER BY 1) AS counted
    FROM agg a
    LEFT JOIN report_household_weeks o USING (grid_id, week, household_id)
    LEFT JOIN households h ON h.id = a.household_id
    LEFT JOIN grids g ON g.id = h.grid_id
    LEFT JOIN communities c ON c.code = g.community_code),
  up AS (
    INSERT INTO report_household_weeks AS r (grid_id, week, household_id, visits, met, counted)
    SELECT grid_id, week, household_id, n, m, counted FROM old ORDER BY 1, 2, 3
    ON CONFLICT (grid_id, week, household_id) DO UPDATE
      SET visits = r.visits + EXCLUDED.visits, met = r.met + EXCLUDED.met,
          counted = EXCLUDED.counted
    RETURNING 1),
  trans AS (SELECT * FROM old WHERE old_met = 0 AND m > 0),
  visited AS (SELECT grid_id, week, count(*) AS n FROM trans GROUP BY 1, 2),
  cand AS (
    SELECT DISTINCT t.grid_id, t.household_id, x.week
    FROM trans t CROSS JOIN LATERAL (VALUES (t.week), (gw_week_shift(t.week, 1))) x(week)),
  two AS (
    SELECT c.grid_id, c.week, count(*) AS n FROM cand c
    WHERE NOT EXISTS (
      SELECT 1 FROM report_household_weeks o
      WHERE o.grid_id = c.grid_id AND o.household_id = c.household_id
        AND o.week IN (c.week, gw_week_shift(c.week, -1)) AND o.met > 0)
    GROUP BY 1, 2),
  -- A (grid, week, household, tag) is done once: when the tag first enters `counted`.
  tagged AS (
    SELECT o.grid_id, o.week, t.tag, count(*) AS n
    FROM old o CROSS JOIN LATERAL unnest(o.counted) t(tag)
    WHERE t.tag <> ALL (o.old_counted)
    GROUP BY 1, 2, 3),
  tags_up AS (
    INSERT INTO report_grid_week_tags AS r (grid_id, week, tag, done)
    SELECT grid_id, week, tag, n FROM tagged ORDER BY 1, 2, 3
    ON CONFLICT (grid_id, week, tag) DO UPDATE SET done = r.done + EXCLUDED.done
    RETURNING 1)
  INSERT INTO report_grid_weeks AS r (grid_id, week, visited, visited_2w)
  SELECT COALESCE(v.grid_id, w.grid_id), COALESCE(v.week, w.week),
         COALESCE(v.n, 0), COALESCE(w.n, 0)
  FROM visited v FULL JOIN two w ON w.grid_id = v.grid_id AND w.week = v.week
  ORDER BY 1, 2
  ON CONFLICT (grid_id, week) DO UPDATE SET
    visited = r.visited + EXCLUDED.visited, visited_2w = r.visited_2w + EXCLUDED.visited_2w;

  WITH agg AS (SELECT worker_id, week, grid_id, count(*) AS n FROM nv GROUP BY 1, 2, 3),
  keys AS (
    INSERT INTO report_worker_households (worker_id, week, grid_id, household_id)
    SELECT DISTINCT worker_id, week, grid_id, household_id FROM nv
    WHERE household_id IS NOT NULL AND outcome <> 'nobody_home' ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING worker_id, week, grid_id),
  fresh AS (SELECT worker_id, week, grid_id, count(*) AS k FROM keys GROUP BY 1, 2, 3)
  INSERT INTO report_worker_weeks AS r (worker_id, week, grid_id, visits, households)
  SELECT a.worker_id, a.week, a.grid_id, a.n, COALESCE(f.k, 0)
  FROM agg a LEFT JOIN fresh f USING (worker_id, week, grid_id) ORDER BY 1, 2, 3
  ON CONFLICT (worker_id, week, grid_id) DO UPDATE SET
    visits = r.visits + EXCLUDED.visits, households = r.households + EXCLUDED.households;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION gw_report_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE report_household_weeks, report_grid_weeks, report_grid_week_tags,
           report_worker_weeks, report_worker_households, report_household_deltas;

  INSERT INTO report_household_deltas (grid_id, week, kind, tag, delta)
  SELECT grid_id, week, kind, tag, sum(delta) FROM (
    SELECT hh.grid_id, gw_week_of(hh.valid_from) AS week, hh.kind, t.tag, 1 AS delta
    FROM household_history hh
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(array_prepend('', hh.tags)) AS tag) t
    UNION ALL
    SELECT hh.grid_id, gw_week_of(hh.valid_to), hh.kind, t.tag, -1
    FROM household_history hh
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(array_prepend('', hh.tags)) AS tag) t
    WHERE hh.valid_to IS NOT NULL) d
  GROUP BY 1, 2, 3, 4;

  -- Each visit in turn, as the trigger met it: the household's met visits that week so far,
  -- and its tags then (its history row at the visit; its row now if it has none).
  INSERT INTO report_household_weeks (grid_id, week, household_id, visits, met, counted)
  WITH v AS (
    SELECT v.grid_id, v.week, v.household_id, v.outcome <> 'nobody_home' AS met,
           count(*) FILTER (WHERE v.outcome <> 'nobody_home') OVER (
             PARTITION BY v.grid_id, v.week, v.household_id ORDER BY v.visited_at, v.id
             ROWS UNBOUNDED PRECEDING) AS met_so_far,
           COALESCE(hh.tags, h.tags) AS tags, c.settings
    FROM visits v
    LEFT JOIN households h ON h.id = v.household_id
    LEFT JOIN grids g ON g.id = h.grid_id
    LEFT JOIN communities c ON c.code = g.community_code
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
    WHERE v.met_so_far >= gw_per_week(v.settings, v.tags)
    GROUP BY 1, 2, 3)
  SELECT hw.grid_id, hw.week, hw.household_id, hw.n, hw.m, COALESCE(done.tags, '{}')
  FROM hw LEFT JOIN done USING (grid_id, week, household_id);

  INSERT INTO report_grid_weeks (grid_id, week, visits, met, grade_ok, grade_doubtful,
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
    SELECT grid_id, week, count(*) AS visited FROM report_household_weeks
    WHERE met > 0 GROUP BY 1, 2),
  two AS (
    SELECT grid_id, week, count(*) AS n FROM (
      SELECT DISTINCT grid_id, week, household_id FROM (
        SELECT grid_id, week, household_id FROM report_household_weeks WHERE met > 0
        UNION ALL
        SELECT grid_id, gw_week_shift(week, 1), household_id FROM report_household_weeks
        WHERE met > 0) u) d
    GROUP BY 1, 2),
  keys AS (SELECT grid_id, week FROM v UNION SELECT grid_id, week FROM two)
  SELECT k.grid_id, k.week, COALESCE(v.visits, 0), COALESCE(v.met, 0), COALESCE(v.ok, 0),
         COALESCE(v.doubtful, 0), COALESCE(v.suspect, 0), COALESCE(v.relief, 0),
         COALESCE(v.unregistered, 0), COALESCE(hv.visited, 0), COALESCE(two.n, 0)
  FROM keys k
  LEFT JOIN v USING (grid_id, week)
  LEFT JOIN hv USING (grid_id, week)
  LEFT JOIN two USING (grid_id, week);

  INSERT INTO report_grid_week_tags (grid_id, week, tag, done)
  SELECT o.grid_id, o.week, t.tag, count(*)
  FROM report_household_weeks o CROSS JOIN LATERAL unnest(o.counted) t(tag)
  GROUP BY 1, 2, 3;

  INSERT INTO report_worker_households (worker_id, week, grid_id, household_id)
  SELECT DISTINCT worker_id, week, grid_id, household_id FROM visits
  WHERE household_id IS NOT NULL AND outcome <> 'nobody_home';

  INSERT INTO report_worker_weeks (worker_id, week, grid_id, visits, households)
  SELECT v.worker_id, v.week, v.grid_id, v.n, COALESCE(k.n, 0)
  FROM (SELECT worker_id, week, grid_id, count(*) AS n FROM visits GROUP BY 1, 2, 3) v
  LEFT JOIN (SELECT worker_id, week, grid_id, count(*) AS n FROM report_worker_households
             GROUP BY 1, 2, 3) k USING (worker_id, week, grid_id);
END
$$;
"""

# As migration 0005 created them, for the downgrade.
PREVIOUS_FUNCTIONS_SQL = r"""
CREATE OR REPLACE FUNCTION gw_visits_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- One writer per grid at a time (in grid order: no deadlocks), so the distinct counts below
  -- read every committed neighbour week.
  PERFORM pg_advisory_xact_lock(20261123, g)
    FROM (SELECT DISTINCT grid_id AS g FROM nv ORDER BY 1) s;

  INSERT INTO report_grid_weeks AS r (grid_id, week, visits, met, grade_ok, grade_doubtful,
                                      grade_suspect, relief_visits, unregistered_visits)
  SELECT grid_id, week, count(*),
         count(*) FILTER (WHERE outcome <> 'nobody_home'),
         count(*) FILTER (WHERE grade = 'ok'),
         count(*) FILTER (WHERE grade = 'doubtful'),
         count(*) FILTER (WHERE grade = 'suspect'),
         count(*) FILTER (WHERE relief),
         count(*) FILTER (WHERE household_id IS NULL)
  FROM nv GROUP BY grid_id, week ORDER BY 1, 2
  ON CONFLICT (grid_id, week) DO UPDATE SET
    visits = r.visits + EXCLUDED.visits, met = r.met + EXCLUDED.met,
    grade_ok = r.grade_ok + EXCLUDED.grade_ok,
    grade_doubtful = r.grade_doubtful + EXCLUDED.grade_doubtful,
    grade_suspect = r.grade_suspect + EXCLUDED.grade_suspect,
    relief_visits = r.relief_visits + EXCLUDED.relief_visits,
    unregistered_visits = r.unregistered_visits + EXCLUDED.unregistered_visits;

  WITH agg AS (
    SELECT grid_id, week, household_id, count(*) AS n,
           count(*) FILTER (WHERE outcome <> 'nobody_home') AS m
    FROM nv WHERE household_id IS NOT NULL GROUP BY 1, 2, 3),
  old AS (
    SELECT a.*, COALESCE(o.met, 0) AS old_met
    FROM agg a LEFT JOIN report_household_weeks o USING (grid_id, week, household_id)),
  up AS (
    INSERT INTO report_household_weeks AS r (grid_id, week, household_id, visits, met)
    SELECT grid_id, week, household_id, n, m FROM agg ORDER BY 1, 2, 3
    ON CONFLICT (grid_id, week, household_id) DO UPDATE
      SET visits = r.visits + EXCLUDED.visits, met = r.met + EXCLUDED.met
    RETURNING 1),
  trans AS (SELECT * FROM old WHERE old_met = 0 AND m > 0),
  visited AS (SELECT grid_id, week, count(*) AS n FROM trans GROUP BY 1, 2),
  cand AS (
    SELECT DISTINCT t.grid_id, t.household_id, x.week
    FROM trans t CROSS JOIN LATERAL (VALUES (t.week), (gw_week_shift(t.week, 1))) x(week)),
  two AS (
    SELECT c.grid_id, c.week, count(*) AS n FROM cand c
    WHERE NOT EXISTS (
      SELECT 1 FROM report_household_weeks o
      WHERE o.grid_id = c.grid_id AND o.household_id = c.household_id
        AND o.week IN (c.week, gw_week_shift(c.week, -1)) AND o.met > 0)
    GROUP BY 1, 2),
  tagged AS (
    SELECT o.grid_id, o.week, t.tag, count(*) AS n
    FROM old o
    JOIN households h ON h.id = o.household_id
    JOIN grids g ON g.id = h.grid_id
    JOIN communities c ON c.code = g.community_code
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(h.tags) AS tag) t
    WHERE o.old_met < gw_per_week(c.settings, h.tags)
      AND o.old_met + o.m >= gw_per_week(c.settings, h.tags)
    GROUP BY 1, 2, 3),
  tags_up AS (
    INSERT INTO report_grid_week_tags AS r (grid_id, week, tag, done)
    SELECT grid_id, week, tag, n FROM tagged ORDER BY 1, 2, 3
    ON CONFLICT (grid_id, week, tag) DO UPDATE SET done = r.done + EXCLUDED.done
    RETURNING 1)
  INSERT INTO report_grid_weeks AS r (grid_id, week, visited, visited_2w)
  SELECT COALESCE(v.grid_id, w.grid_id), COALESCE(v.week, w.week),
         COALESCE(v.n, 0), COALESCE(w.n, 0)
  FROM visited v FULL JOIN two w ON w.grid_id = v.grid_id AND w.week = v.week
  ORDER BY 1, 2
  ON CONFLICT (grid_id, week) DO UPDATE SET
    visited = r.visited + EXCLUDED.visited, visited_2w = r.visited_2w + EXCLUDED.visited_2w;

  WITH agg AS (SELECT worker_id, week, grid_id, count(*) AS n FROM nv GROUP BY 1, 2, 3),
  keys AS (
    INSERT INTO report_worker_households (worker_id, week, grid_id, household_id)
    SELECT DISTINCT worker_id, week, grid_id, household_id FROM nv
    WHERE household_id IS NOT NULL AND outcome <> 'nobody_home' ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING worker_id, week, grid_id),
  fresh AS (SELECT worker_id, week, grid_id, count(*) AS k FROM keys GROUP BY 1, 2, 3)
  INSERT INTO report_worker_weeks AS r (worker_id, week, grid_id, visits, households)
  SELECT a.worker_id, a.week, a.grid_id, a.n, COALESCE(f.k, 0)
  FROM agg a LEFT JOIN fresh f USING (worker_id, week, grid_id) ORDER BY 1, 2, 3
  ON CONFLICT (worker_id, week, grid_id) DO UPDATE SET
    visits = r.visits + EXCLUDED.visits, households = r.households + EXCLUDED.households;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION gw_report_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE report_household_weeks, report_grid_weeks, report_grid_week_tags,
           report_worker_weeks, report_worker_households, report_household_deltas;

  INSERT INTO report_household_deltas (grid_id, week, kind, tag, delta)
  SELECT grid_id, week, kind, tag, sum(delta) FROM (
    SELECT hh.grid_id, gw_week_of(hh.valid_from) AS week, hh.kind, t.tag, 1 AS delta
    FROM household_history hh
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(array_prepend('', hh.tags)) AS tag) t
    UNION ALL
    SELECT hh.grid_id, gw_week_of(hh.valid_to), hh.kind, t.tag, -1
    FROM household_history hh
    CROSS JOIN LATERAL (SELECT DISTINCT unnest(array_prepend('', hh.tags)) AS tag) t
    WHERE hh.valid_to IS NOT NULL) d
  GROUP BY 1, 2, 3, 4;

  INSERT INTO report_household_weeks (grid_id, week, household_id, visits, met)
  SELECT grid_id, week, household_id, count(*), count(*) FILTER (WHERE outcome <> 'nobody_home')
  FROM visits WHERE household_id IS NOT NULL GROUP BY 1, 2, 3;

  INSERT INTO report_grid_weeks (grid_id, week, visits, met, grade_ok, grade_doubtful,
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
    SELECT grid_id, week, count(*) AS visited FROM report_household_weeks
    WHERE met > 0 GROUP BY 1, 2),
  two AS (
    SELECT grid_id, week, count(*) AS n FROM (
      SELECT DISTINCT grid_id, week, household_id FROM (
        SELECT grid_id, week, household_id FROM report_household_weeks WHERE met > 0
        UNION ALL
        SELECT grid_id, gw_week_shift(week, 1), household_id FROM report_household_weeks
        WHERE met > 0) u) d
    GROUP BY 1, 2),
  keys AS (SELECT grid_id, week FROM v UNION SELECT grid_id, week FROM two)
  SELECT k.grid_id, k.week, COALESCE(v.visits, 0), COALESCE(v.met, 0), COALESCE(v.ok, 0),
         COALESCE(v.doubtful, 0), COALESCE(v.suspect, 0), COALESCE(v.relief, 0),
         COALESCE(v.unregistered, 0), COALESCE(hv.visited, 0), COALESCE(two.n, 0)
  FROM keys k
  LEFT JOIN v USING (grid_id, week)
  LEFT JOIN hv USING (grid_id, week)
  LEFT JOIN two USING (grid_id, week);

  INSERT INTO report_grid_week_tags (grid_id, week, tag, done)
  SELECT o.grid_id, o.week, t.tag, count(*)
  FROM report_household_weeks o
  JOIN households h ON h.id = o.household_id
  JOIN grids g ON g.id = h.grid_id
  JOIN communities c ON c.code = g.community_code
  CROSS JOIN LATERAL (SELECT DISTINCT unnest(h.tags) AS tag) t
  WHERE h.tags <> '{}' AND o.met >= gw_per_week(c.settings, h.tags)
  GROUP BY 1, 2, 3;

  INSERT INTO report_worker_households (worker_id, week, grid_id, household_id)
  SELECT DISTINCT worker_id, week, grid_id, household_id FROM visits
  WHERE household_id IS NOT NULL AND outcome <> 'nobody_home';

  INSERT INTO report_worker_weeks (worker_id, week, grid_id, visits, households)
  SELECT v.worker_id, v.week, v.grid_id, v.n, COALESCE(k.n, 0)
  FROM (SELECT worker_id, week, grid_id, count(*) AS n FROM visits GROUP BY 1, 2, 3) v
  LEFT JOIN (SELECT worker_id, week, grid_id, count(*) AS n FROM report_worker_households
             GROUP BY 1, 2, 3) k USING (worker_id, week, grid_id);
END
$$;
"""


def upgrade() -> None:
    op.add_column(
        "report_household_weeks",
        sa.Column("counted", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )
    op.execute(FUNCTIONS_SQL)
    op.execute("SELECT gw_report_rebuild()")


def downgrade() -> None:
    op.execute(PREVIOUS_FUNCTIONS_SQL)
    op.drop_column("report_household_weeks", "counted")
