"""The must-visit trigger replays a household-week only if a visit of that week may carry a tag.

`gw_visits_inserted()` (0017, cadence per week since 0020) replays a household-week's visits
when the household "has or had a care tag (now or in its history) not yet in `counted`". A
household whose tag was removed keeps that tag in `household_history` for good, and no visit
after the removal carries it, so the tag never enters `counted`: every later visit to that
household, in every later week, replayed its week (every visit of it, a history lookup per
visit, a window, the cadence read) to add nothing. The counts were right (the replay is the
rebuild's, and it found nothing to count); only the work was wasted.

Now a household-week is replayed when its household has a tag now, or had one in a history
row overlapping the week, that is not yet in `counted`: the only tags a visit of the week can
carry (its history row at the visit, or the household's tags now when no row covers it). A
tag removed mid-week still counts visits from before the removal (synced late too); from the
next week on the household is not replayed. The week's bounds come from `visits.week`, which
is the ISO week of `visited_at` in Asia/Shanghai wherever visits are written (the ingest's
`week_of`, the factories, the benches' `gw_week_of`); a visit stored with another week would
be replayed by the rebuild under tags this filter does not look at.

Measured with bench/must_visit_replay.py (both definitions swapped in turn on the same data,
EXPLAIN ANALYZE of a 500-visit INSERT, rolled back): see docs/report.md.

The downgrade restores 0020's function.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 10:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGER_SQL = r"""
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
  -- The household-weeks of this statement that may still be counted done under some tag: a
  -- visit of that week may carry a care tag not yet in `counted`. A visit carries the tags of
  -- the household's history row at its time, or the household's tags now when no row covers
  -- it; so the tags to look at are those now and those of the history rows that overlap the
  -- week (visits.week is the ISO week of visited_at in Asia/Shanghai). The others (most: no
  -- tags, every tag already counted this week, or tags removed before the week) skip the
  -- replay, which could add nothing to their `counted`. (0017 to 0020 looked at every
  -- history row ever: a household whose tag was removed was replayed at each of its visits
  -- in every week after, for nothing.)
  -- Their cadence: the one in force in the visit's week for the community of the grid the
  -- visits count for (community_cadences), read for these few rows only.
  pending AS MATERIALIZED (
    SELECT a.grid_id, a.week, a.household_id, h.tags AS tags_now,
           gw_cadence_of(g.community_code, a.week) AS cadence
    FROM agg a
    JOIN households h ON h.id = a.household_id
    JOIN grids g ON g.id = a.grid_id
    CROSS JOIN LATERAL (
      SELECT to_date(a.week || '-1', 'IYYY-"W"IW-ID')::timestamp AT TIME ZONE 'Asia/Shanghai'
        AS week_start) b
    LEFT JOIN report_household_weeks o
      ON o.grid_id = a.grid_id AND o.week = a.week AND o.household_id = a.household_id
    WHERE EXISTS (
      SELECT 1 FROM (
        SELECT unnest(h.tags)
        UNION ALL
        SELECT unnest(x.tags) FROM household_history x
        WHERE x.household_id = a.household_id
          AND x.valid_from < b.week_start + interval '7 days'
          AND (x.valid_to IS NULL OR x.valid_to > b.week_start)
      ) t(tag)
      WHERE t.tag <> ALL (COALESCE(o.counted, '{}')))),
  -- Replayed as gw_report_rebuild() replays them: every visit of the week, stored or new, in
  -- (visited_at, id) order, with the household's met visits so far and its tags at that visit
  -- (its history row then; its row now if it has none). So a visit synced late, dated before
  -- a tag change or before visits already stored, counts as the rebuild counts it.
  replay AS (
    SELECT p.grid_id, p.week, p.household_id, p.cadence,
           COALESCE(hh.tags, p.tags_now) AS tags,
           count(*) FILTER (WHERE v.outcome <> 'nobody_home') OVER (
             PARTITION BY p.grid_id, p.week, p.household_id ORDER BY v.visited_at, v.id
             ROWS UNBOUNDED PRECEDING) AS met_so_far
    FROM pending p
    JOIN visits v
      ON v.grid_id = p.grid_id AND v.week = p.week AND v.household_id = p.household_id
    LEFT JOIN LATERAL (
      SELECT x.tags FROM household_history x
      WHERE x.household_id = v.household_id AND x.valid_from <= v.visited_at
        AND (x.valid_to IS NULL OR x.valid_to > v.visited_at)
      ORDER BY x.valid_from DESC LIMIT 1) hh ON true),
  -- Met visits only grow along the week, so the tags a visit carried are done when the most
  -- met visits any visit carrying them had reach their cadence: one gw_cadence_per_week() per
  -- (household-week, tags), not per visit.
  done AS (
    SELECT d.grid_id, d.week, d.household_id, array_agg(DISTINCT u.tag) AS tags
    FROM (SELECT grid_id, week, household_id, cadence, tags, max(met_so_far) AS met
          FROM replay GROUP BY 1, 2, 3, 4, 5) d
    CROSS JOIN LATERAL unnest(d.tags) u(tag)
    WHERE d.met >= gw_cadence_per_week(d.cadence, d.tags)
    GROUP BY 1, 2, 3),
  old AS (
    -- `counted`: the tags this household-week has already been counted done under, and the
    -- set after these visits: those plus the replay's (a tag once counted stays counted, so a
    -- cadence raised since counts nobody twice nor takes anyone back).
    SELECT a.*, COALESCE(o.met, 0) AS old_met, COALESCE(o.counted, '{}') AS old_counted,
           ARRAY(SELECT DISTINCT x FROM unnest(COALESCE(o.counted, '{}') || COALESCE(d.tags, '{}'))
                 x ORDER BY 1) AS counted
    FROM agg a
    LEFT JOIN report_household_weeks o USING (grid_id, week, household_id)
    LEFT JOIN done d USING (grid_id, week, household_id)),
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
"""

# gw_visits_inserted() as migration 0020 created it: for the downgrade.
PREVIOUS_TRIGGER_SQL = r"""
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
  -- The household-weeks of this statement that may still be counted done under some tag:
  -- their household has or had a care tag (now or in its history) not yet in `counted`. The
  -- others (most: no tags, or every tag already counted this week) skip the replay, which
  -- could add nothing to their `counted`.
  -- Their cadence: the one in force in the visit's week for the community of the grid the
  -- visits count for (community_cadences), read for these few rows only.
  pending AS MATERIALIZED (
    SELECT a.grid_id, a.week, a.household_id, h.tags AS tags_now,
           gw_cadence_of(g.community_code, a.week) AS cadence
    FROM agg a
    JOIN households h ON h.id = a.household_id
    JOIN grids g ON g.id = a.grid_id
    LEFT JOIN report_household_weeks o
      ON o.grid_id = a.grid_id AND o.week = a.week AND o.household_id = a.household_id
    WHERE EXISTS (
      SELECT 1 FROM (
        SELECT unnest(h.tags)
        UNION ALL
        SELECT unnest(x.tags) FROM household_history x WHERE x.household_id = a.household_id
      ) t(tag)
      WHERE t.tag <> ALL (COALESCE(o.counted, '{}')))),
  -- Replayed as gw_report_rebuild() replays them: every visit of the week, stored or new, in
  -- (visited_at, id) order, with the household's met visits so far and its tags at that visit
  -- (its history row then; its row now if it has none). So a visit synced late, dated before
  -- a tag change or before visits already stored, counts as the rebuild counts it.
  replay AS (
    SELECT p.grid_id, p.week, p.household_id, p.cadence,
           COALESCE(hh.tags, p.tags_now) AS tags,
           count(*) FILTER (WHERE v.outcome <> 'nobody_home') OVER (
             PARTITION BY p.grid_id, p.week, p.household_id ORDER BY v.visited_at, v.id
             ROWS UNBOUNDED PRECEDING) AS met_so_far
    FROM pending p
    JOIN visits v
      ON v.grid_id = p.grid_id AND v.week = p.week AND v.household_id = p.household_id
    LEFT JOIN LATERAL (
      SELECT x.tags FROM household_history x
      WHERE x.household_id = v.household_id AND x.valid_from <= v.visited_at
        AND (x.valid_to IS NULL OR x.valid_to > v.visited_at)
      ORDER BY x.valid_from DESC LIMIT 1) hh ON true),
  -- Met visits only grow along the week, so the tags a visit carried are done when the most
  -- met visits any visit carrying them had reach their cadence: one gw_cadence_per_week() per
  -- (household-week, tags), not per visit.
  done AS (
    SELECT d.grid_id, d.week, d.household_id, array_agg(DISTINCT u.tag) AS tags
    FROM (SELECT grid_id, week, household_id, cadence, tags, max(met_so_far) AS met
          FROM replay GROUP BY 1, 2, 3, 4, 5) d
    CROSS JOIN LATERAL unnest(d.tags) u(tag)
    WHERE d.met >= gw_cadence_per_week(d.cadence, d.tags)
    GROUP BY 1, 2, 3),
  old AS (
    -- `counted`: the tags this household-week has already been counted done under, and the
    -- set after these visits: those plus the replay's (a tag once counted stays counted, so a
    -- cadence raised since counts nobody twice nor takes anyone back).
    SELECT a.*, COALESCE(o.met, 0) AS old_met, COALESCE(o.counted, '{}') AS old_counted,
           ARRAY(SELECT DISTINCT x FROM unnest(COALESCE(o.counted, '{}') || COALESCE(d.tags, '{}'))
                 x ORDER BY 1) AS counted
    FROM agg a
    LEFT JOIN report_household_weeks o USING (grid_id, week, household_id)
    LEFT JOIN done d USING (grid_id, week, household_id)),
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
"""


def upgrade() -> None:
    op.execute(TRIGGER_SQL)


def downgrade() -> None:
    op.execute(PREVIOUS_TRIGGER_SQL)
