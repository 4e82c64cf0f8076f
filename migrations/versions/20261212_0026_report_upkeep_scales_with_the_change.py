"""Report upkeep that follows the change, and tag changes dated before stored visits recounted.

Three defects of the trigger-kept report aggregates (docs/report.md, "Speed"):

1. `gw_households_updated()` (0014) closed the open `household_history` rows of the households
   a statement changed with one `UPDATE ... FROM moved`, which PostgreSQL planned as a hash join
   over a sequential scan of every open history row: its cost grew with the table (90,000
   households: 117,000 history rows read for a 500-row UPDATE), not with the statement. They
   are now closed by household id (`= ANY(ids)`, an index probe each on
   ix_household_history_household), before the new rows open (a separate statement, so it
   cannot close them). `gw_households_deleted()` had the same join: same fix.
2. A change of a household's tags takes effect at `gridwork.effective_at` (an import, a test)
   or at the transaction's time, but visits stored by then may be dated at or after it (dated
   back, or from a phone whose clock runs ahead): in `gw_report_rebuild()` they now carry the
   new tags, while the `counted` sets the visits trigger kept for their weeks stayed as they
   were. `gw_households_updated()` now calls `gw_report_recount_households(ids, at)`: the
   household-weeks holding a visit of a retagged household dated at or after the change (or
   before its first history row, where a visit carries the household's tags now) are replayed
   as the rebuild replays them, their `counted` replaced, and `report_grid_week_tags` moved by
   the difference. For a change dated now with no visit after it, three index probes a
   household that find nothing.
3. `gw_report_recount_must_visits()` (0020), run when a community's cadence changes, replayed
   every visit of the community's grids from the change on, those of households without any
   care tag included (most of them: their `counted` set stays empty under any cadence). It now
   replays only the household-weeks whose household has a tag now or had one in a history row
   overlapping the week, as the visits trigger's `pending` does since 0023, each on its own (a
   lateral subquery), and reads the households' tags by primary key (a join was planned as a
   hash of every household of the city).

Measured with bench/report_upkeep.py (both definitions swapped in turn on the same data):
see docs/report.md.

The upgrade does not rebuild: counts kept wrong by earlier past-dated changes stand until
someone runs `SELECT gw_report_rebuild()`. The downgrade restores 0014's household trigger
functions and 0020's recount, and drops gw_report_recount_households().

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-12 10:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The household-weeks a change of these households' tags at `since` reaches, replayed.
RECOUNT_HOUSEHOLDS_SQL = r"""
-- After the tags of `for_households` changed at `since`: the must-visit `counted` sets of the
-- household-weeks whose visits now carry other tags, replayed as gw_report_rebuild() replays
-- them (every visit of the week in (visited_at, id) order, the tags of the history row at each,
-- the week's cadence), and report_grid_week_tags moved by the difference. A visit carries the
-- tags of the history row covering it, or the household's tags now when none does; the rows
-- cover every moment from the household's first one on (each change closes the open row when
-- it opens the next). So the visits reached are those at or after `since` (now under the new
-- row) and those before the first row (under the tags now). Both are range scans of
-- ix_visits_household_visited; for a change dated now they find nothing.
CREATE OR REPLACE FUNCTION gw_report_recount_households(for_households integer[],
                                                        since timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  k_grid integer[];
  k_week text[];
  k_household integer[];
BEGIN
  SELECT array_agg(r.grid_id ORDER BY r.grid_id, r.week, r.household_id),
         array_agg(r.week ORDER BY r.grid_id, r.week, r.household_id),
         array_agg(r.household_id ORDER BY r.grid_id, r.week, r.household_id)
    INTO k_grid, k_week, k_household
  FROM (
    SELECT DISTINCT v.grid_id, v.week, v.household_id
    FROM unnest(for_households) i(id)
    CROSS JOIN LATERAL (
      SELECT v.grid_id, v.week, v.household_id FROM visits v
      WHERE v.household_id = i.id AND v.visited_at >= since
      UNION ALL
      SELECT v.grid_id, v.week, v.household_id FROM visits v
      WHERE v.household_id = i.id
        AND v.visited_at < (SELECT COALESCE(min(x.valid_from), 'infinity')
                            FROM household_history x WHERE x.household_id = i.id)) v
  ) r;
  IF k_grid IS NULL THEN
    RETURN;
  END IF;

  -- The visits trigger's locks, in its order: no ingest into these grids meanwhile.
  PERFORM pg_advisory_xact_lock(20261123, g)
    FROM (SELECT DISTINCT g FROM unnest(k_grid) g ORDER BY 1) s;

  -- Each household-week replayed on its own (a lateral subquery: its visits through
  -- ix_visits_grid_week_household), so the work follows the household-weeks reached, whatever
  -- the planner guesses of their number.
  WITH hw AS MATERIALIZED (
    SELECT k.grid_id, k.week, k.household_id,
           (SELECT h.tags FROM households h WHERE h.id = k.household_id) AS tags_now,
           gw_cadence_of(g.community_code, k.week) AS cadence
    FROM unnest(k_grid, k_week, k_household) k(grid_id, week, household_id)
    JOIN grids g ON g.id = k.grid_id),
  -- Replaced, not added to: the tags at these visits changed, so a tag counted under the old
  -- ones may no longer be (a rebuild would not count it).
  changed AS MATERIALIZED (
    SELECT o.grid_id, o.week, o.household_id, o.counted AS was, n.counted
    FROM hw p
    JOIN report_household_weeks o
      ON o.grid_id = p.grid_id AND o.week = p.week AND o.household_id = p.household_id
    CROSS JOIN LATERAL (
      -- The tags a visit carried are done when the most met visits any visit carrying them
      -- had (in (visited_at, id) order) reach their cadence.
      SELECT COALESCE(array_agg(DISTINCT u.tag ORDER BY u.tag), '{}') AS counted
      FROM (
        SELECT r.tags, max(r.met_so_far) AS met
        FROM (
          SELECT COALESCE(hh.tags, p.tags_now) AS tags,
                 count(*) FILTER (WHERE v.outcome <> 'nobody_home') OVER (
                   ORDER BY v.visited_at, v.id ROWS UNBOUNDED PRECEDING) AS met_so_far
          FROM visits v
          LEFT JOIN LATERAL (
            SELECT x.tags FROM household_history x
            WHERE x.household_id = v.household_id AND x.valid_from <= v.visited_at
              AND (x.valid_to IS NULL OR x.valid_to > v.visited_at)
            ORDER BY x.valid_from DESC LIMIT 1) hh ON true
          WHERE v.grid_id = p.grid_id AND v.week = p.week AND v.household_id = p.household_id
        ) r
        GROUP BY r.tags) d
      CROSS JOIN LATERAL unnest(d.tags) u(tag)
      WHERE d.met >= gw_cadence_per_week(p.cadence, d.tags)) n
    WHERE o.counted <> n.counted),
  up AS (
    UPDATE report_household_weeks o SET counted = c.counted
    FROM changed c
    WHERE o.grid_id = ANY(k_grid) AND o.week = ANY(k_week)
      AND o.grid_id = c.grid_id AND o.week = c.week AND o.household_id = c.household_id),
  moves AS (
    SELECT c.grid_id, c.week, t.tag, 1 AS delta
    FROM changed c CROSS JOIN LATERAL unnest(c.counted) t(tag) WHERE t.tag <> ALL (c.was)
    UNION ALL
    SELECT c.grid_id, c.week, t.tag, -1
    FROM changed c CROSS JOIN LATERAL unnest(c.was) t(tag) WHERE t.tag <> ALL (c.counted))
  INSERT INTO report_grid_week_tags AS r (grid_id, week, tag, done)
  SELECT grid_id, week, tag, sum(delta) FROM moves
  GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3
  ON CONFLICT (grid_id, week, tag) DO UPDATE SET done = r.done + EXCLUDED.done;

  -- A tag nobody is counted done under any more has no row (as after a rebuild).
  DELETE FROM report_grid_week_tags
  WHERE grid_id = ANY(k_grid) AND week = ANY(k_week) AND done = 0;
END
$$;
"""

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

  -- Visits already stored and dated at or after the change now carry the new tags: their
  -- weeks are counted again (none for a change dated now with no visit after it).
  IF retagged <> '{}' THEN
    PERFORM gw_report_recount_households(retagged, at);
  END IF;
  RETURN NULL;
END
$$;
"""

RECOUNT_COMMUNITY_SQL = r"""
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

  WITH weeks AS MATERIALIZED (
    SELECT w.week, gw_cadence_of(for_community, w.week) AS cadence,
           to_date(w.week || '-1', 'IYYY-"W"IW-ID')::timestamp AT TIME ZONE 'Asia/Shanghai'
             AS week_start
    FROM (SELECT DISTINCT o.week FROM report_household_weeks o
          WHERE o.grid_id = ANY(ids) AND o.week >= from_wk) w),
  -- Only the household-weeks a visit may count done under a tag: the household has a care tag
  -- now, or had one in a history row overlapping the week (a visit carries the tags of its
  -- history row, or the household's tags now when no row covers it; visits.week is the ISO
  -- week of visited_at). The others (most households: no tag) keep an empty `counted` under
  -- any cadence; 0020 replayed them too.
  -- (The household's tags by a subquery: a primary key probe each, where a join was planned
  -- as a hash of every household of the city.)
  hws AS MATERIALIZED (
    SELECT o.grid_id, o.week, o.household_id, w.cadence, w.week_start,
           (SELECT h.tags FROM households h WHERE h.id = o.household_id) AS tags_now
    FROM weeks w
    JOIN report_household_weeks o
      ON o.grid_id = ANY(ids) AND o.week >= from_wk AND o.week = w.week),
  pending AS MATERIALIZED (
    SELECT o.grid_id, o.week, o.household_id, o.cadence, o.tags_now
    FROM hws o
    WHERE COALESCE(o.tags_now, '{}') <> '{}'
       OR EXISTS (
         SELECT 1 FROM household_history x
         WHERE x.household_id = o.household_id AND x.tags <> '{}'
           AND x.valid_from < o.week_start + interval '7 days'
           AND (x.valid_to IS NULL OR x.valid_to > o.week_start))),
  -- Each replayed on its own, as gw_report_rebuild() replays it (a lateral subquery: its
  -- visits through ix_visits_grid_week_household).
  done AS (
    SELECT p.grid_id, p.week, p.household_id, n.counted
    FROM pending p
    CROSS JOIN LATERAL (
      -- The tags a visit carried are done when the most met visits any visit carrying them
      -- had (in (visited_at, id) order) reach their cadence.
      SELECT COALESCE(array_agg(DISTINCT u.tag ORDER BY u.tag), '{}') AS counted
      FROM (
        SELECT r.tags, max(r.met_so_far) AS met
        FROM (
          SELECT COALESCE(hh.tags, p.tags_now) AS tags,
                 count(*) FILTER (WHERE v.outcome <> 'nobody_home') OVER (
                   ORDER BY v.visited_at, v.id ROWS UNBOUNDED PRECEDING) AS met_so_far
          FROM visits v
          LEFT JOIN LATERAL (
            SELECT x.tags FROM household_history x
            WHERE x.household_id = v.household_id AND x.valid_from <= v.visited_at
              AND (x.valid_to IS NULL OR x.valid_to > v.visited_at)
            ORDER BY x.valid_from DESC LIMIT 1) hh ON true
          WHERE v.grid_id = p.grid_id AND v.week = p.week AND v.household_id = p.household_id
        ) r
        GROUP BY r.tags) d
      CROSS JOIN LATERAL unnest(d.tags) u(tag)
      WHERE d.met >= gw_cadence_per_week(p.cadence, d.tags)) n
    WHERE n.counted <> '{}')
  UPDATE report_household_weeks o SET counted = d.counted
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

FUNCTIONS_SQL = RECOUNT_HOUSEHOLDS_SQL + HOUSEHOLD_TRIGGERS_SQL + RECOUNT_COMMUNITY_SQL

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

# gw_report_recount_must_visits() as migration 0020 created it: for the downgrade and the bench.
PREVIOUS_RECOUNT_COMMUNITY_SQL = r"""
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

PREVIOUS_FUNCTIONS_SQL = PREVIOUS_HOUSEHOLD_TRIGGERS_SQL + PREVIOUS_RECOUNT_COMMUNITY_SQL


def upgrade() -> None:
    op.execute(FUNCTIONS_SQL)


def downgrade() -> None:
    op.execute(PREVIOUS_FUNCTIONS_SQL)
    op.execute("DROP FUNCTION IF EXISTS gw_report_recount_households(integer[], timestamptz)")
