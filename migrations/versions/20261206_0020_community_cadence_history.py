"""A community's visit cadence has a history: each week is counted under the cadence then.

The cadence (visits a week, by default and per care tag) lived only in
`communities.settings["visit_cadence"]`. The visits trigger counted a visit under the cadence
in force when it was inserted, but `gw_report_rebuild()` applied today's cadence to every past
week: after a community raised living alone from 2 to 3 visits a week, a rebuild turned last
week's households visited twice from done to not done, and the live report of that week no
longer matched what the trigger had kept nor the stored weekly report files.

`community_cadences` records each change with the ISO week (Asia/Shanghai) it applies from:
the week it is made in, for the whole of that week (so a week is judged by one cadence: the
API recounts that week's must-visit figures when the cadence changes, as a rebuild would count
them). A week reads the latest row with `from_week` at or before it; the row with no
`from_week` is the cadence before any recorded change. The backfill gives every community that
row, with its current cadence (the only one known: earlier changes were never recorded).

- `gw_cadence_of(community, week)`: the cadence object in force (NULL: the default).
- `gw_cadence_per_week(cadence, tags)`: visits a week a household with these tags needs.
- `gw_visits_inserted()` and `gw_report_rebuild()` read the cadence of the visit's week, for
  the community of the grid the visit counts for (`visits.grid_id`; they read the household's
  grid now, so a household moved to another community was counted under that community's).
- `gw_report_recount_must_visits(community, week)`: after a change, that week's (and any
  later week's) `counted` sets and `report_grid_week_tags` of the community's grids, replayed.

The upgrade does not rebuild the aggregates: the trigger's counts of past weeks were made
under the cadence of their time, which a rebuild (with the backfilled cadence) cannot know.
The downgrade restores 0017's trigger function and 0016's rebuild and drops the table.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CADENCE_FUNCTIONS_SQL = r"""
-- Visits a week a household with these tags needs under a cadence object (NULL: the default;
-- mirror of api.services.ledger.Cadence.per_week).
CREATE OR REPLACE FUNCTION gw_cadence_per_week(cadence jsonb, tags text[]) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT GREATEST(
    COALESCE((cad ->> 'default')::int, 1),
    (SELECT max((cad -> 'tags' ->> t)::int) FROM unnest(tags) t))
  FROM (SELECT COALESCE(cadence, '{"default": 1, "tags": {"living_alone": 2}}'::jsonb) AS cad) c
$$;

-- The cadence in force for a community in an ISO week: its latest change from that week or
-- before (by id within a week), the row without from_week covering every week before the
-- first change; a community with no rows reads its current setting (NULL: the default).
CREATE OR REPLACE FUNCTION gw_cadence_of(for_community text, in_week text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT COALESCE(
    (SELECT x.cadence FROM community_cadences x
     WHERE x.community_code = for_community AND (x.from_week IS NULL OR x.from_week <= in_week)
     ORDER BY x.from_week DESC NULLS LAST, x.id DESC LIMIT 1),
    (SELECT NULLIF(NULLIF(c.settings -> 'visit_cadence', 'null'::jsonb), '{}'::jsonb)
     FROM communities c
     WHERE c.code = for_community
       AND NOT EXISTS (SELECT 1 FROM community_cadences x WHERE x.community_code = for_community)))
$$;

-- After a community's cadence changed from week `from_wk`: the must-visit counts of its grids
-- in that week and after, replayed as gw_report_rebuild() replays them, under each week's
-- cadence. The change applies to the whole week it is made in, so a household counted done
-- under the old cadence may no longer be, and one the new cadence satisfies now is.
CREATE OR REPLACE FUNCTION gw_report_recount_must_visits(for_community text, from_wk text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  -- The community's grids as an array: each statement below then reads its rows through
  -- the (grid_id, week, ...) indexes, not by a hash join over every visit of the city.
  ids integer[] := ARRAY(SELECT id FROM grids WHERE community_code = for_community ORDER BY 1);
BEGIN
  -- The visits trigger's locks, in its order: no ingest into these grids meanwhile.
  PERFORM pg_advisory_xact_lock(20261123, g) FROM unnest(ids) g;

  UPDATE report_household_weeks o SET counted = '{}'
  WHERE o.grid_id = ANY(ids) AND o.week >= from_wk AND o.counted <> '{}';

  WITH weeks AS (
    SELECT w.week, gw_cadence_of(for_community, w.week) AS cadence
    FROM (SELECT DISTINCT o.week FROM report_household_weeks o
          WHERE o.grid_id = ANY(ids) AND o.week >= from_wk) w),
  v AS (
    SELECT v.grid_id, v.week, v.household_id, w.cadence,
           count(*) FILTER (WHERE v.outcome <> 'nobody_home') OVER (
             PARTITION BY v.grid_id, v.week, v.household_id ORDER BY v.visited_at, v.id
             ROWS UNBOUNDED PRECEDING) AS met_so_far,
           COALESCE(hh.tags, h.tags) AS tags
    FROM weeks w
    JOIN visits v ON v.grid_id = ANY(ids) AND v.week >= from_wk AND v.week = w.week
    LEFT JOIN households h ON h.id = v.household_id
    LEFT JOIN LATERAL (
      SELECT x.tags FROM household_history x
      WHERE x.household_id = v.household_id AND x.valid_from <= v.visited_at
        AND (x.valid_to IS NULL OR x.valid_to > v.visited_at)
      ORDER BY x.valid_from DESC LIMIT 1) hh ON true
    WHERE v.household_id IS NOT NULL),
  done AS (
    SELECT v.grid_id, v.week, v.household_id, array_agg(DISTINCT t.tag ORDER BY t.tag) AS tags
    FROM v CROSS JOIN LATERAL unnest(v.tags) t(tag)
    WHERE v.met_so_far >= gw_cadence_per_week(v.cadence, v.tags)
    GROUP BY 1, 2, 3)
  UPDATE report_household_weeks o SET counted = d.tags
  FROM done d
  WHERE o.grid_id = ANY(ids) AND o.week >= from_wk
    AND o.grid_id = d.grid_id AND o.week = d.week AND o.household_id = d.household_id;

  DELETE FROM report_grid_week_tags t WHERE t.grid_id = ANY(ids) AND t.week >= from_wk;
  INSERT INTO report_grid_week_tags (grid_id, week, tag, done)
  SELECT o.grid_id, o.week, t.tag, count(*)
  FROM report_household_weeks o CROSS JOIN LATERAL unnest(o.counted) t(tag)
  WHERE o.grid_id = ANY(ids) AND o.week >= from_wk
  GROUP BY 1, 2, 3;
END
$$;
"""

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
  -- its tags then (its history row at the visit; its row now if it has none), and the cadence
  -- in force that week for the community of the grid the visit counts for.
  INSERT INTO report_household_weeks (grid_id, week, household_id, visits, met, counted)
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

# gw_visits_inserted() as migration 0017 created it, gw_report_rebuild() as 0016 did: for the
# downgrade.
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
  -- The household-weeks of this statement that may still be counted done under some tag:
  -- their household has or had a care tag (now or in its history) not yet in `counted`. The
  -- others (most: no tags, or every tag already counted this week) skip the replay, which
  -- could add nothing to their `counted`.
  pending AS MATERIALIZED (
    SELECT a.grid_id, a.week, a.household_id, h.tags AS tags_now, c.settings
    FROM agg a
    JOIN households h ON h.id = a.household_id
    JOIN grids g ON g.id = h.grid_id
    JOIN communities c ON c.code = g.community_code
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
    SELECT p.grid_id, p.week, p.household_id, p.settings,
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
  -- met visits any visit carrying them had reach their cadence: one gw_per_week() per
  -- (household-week, tags), not per visit.
  done AS (
    SELECT d.grid_id, d.week, d.household_id, array_agg(DISTINCT u.tag) AS tags
    FROM (SELECT grid_id, week, household_id, settings, tags, max(met_so_far) AS met
          FROM replay GROUP BY 1, 2, 3, 4, 5) d
    CROSS JOIN LATERAL unnest(d.tags) u(tag)
    WHERE d.met >= gw_per_week(d.settings, d.tags)
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


def upgrade() -> None:
    op.create_table(
        "community_cadences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.Column("from_week", sa.String(length=8), nullable=True),
        sa.Column("cadence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "from_week IS NULL OR from_week ~ '^[0-9]{4}-W[0-9]{2}$'",
            name=op.f("ck_community_cadences_from_week_format"),
        ),
        sa.ForeignKeyConstraint(
            ["community_code"],
            ["communities.code"],
            name=op.f("fk_community_cadences_community_code_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["users.id"],
            name=op.f("fk_community_cadences_changed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_cadences")),
    )
    op.create_index(
        "ix_community_cadences_community_week",
        "community_cadences",
        ["community_code", "from_week"],
    )
    op.create_index(
        "uq_community_cadences_before_any_change",
        "community_cadences",
        ["community_code"],
        unique=True,
        postgresql_where=sa.text("from_week IS NULL"),
    )
    # Every community's current cadence (the default filled in) for all weeks so far.
    op.execute(
        """
        INSERT INTO community_cadences (community_code, from_week, cadence)
        SELECT code, NULL, COALESCE(
          NULLIF(NULLIF(settings -> 'visit_cadence', 'null'::jsonb), '{}'::jsonb),
          '{"default": 1, "tags": {"living_alone": 2}}'::jsonb)
        FROM communities
        """
    )
    op.execute(CADENCE_FUNCTIONS_SQL)
    op.execute(FUNCTIONS_SQL)


def downgrade() -> None:
    op.execute(PREVIOUS_FUNCTIONS_SQL)
    for fn in (
        "gw_report_recount_must_visits(text, text)",
        "gw_cadence_of(text, text)",
        "gw_cadence_per_week(jsonb, text[])",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.drop_table("community_cadences")
