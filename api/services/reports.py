"""The weekly coverage report: what is selected, its sections read set-based from the aggregates.

The report is one SQL statement whose CTEs are its sections over the selected grids (no per-grid
loops), reading the trigger-maintained aggregates of migration 0005, so it costs
O(grids × weeks) rows and PostgreSQL builds the JSON document:

- households per grid as of the week: running sum of `report_household_deltas` (kept by a
  trigger on `households`, so a moved household counts where it was that week);
- visits, distinct households visited, visited this or last week, grades: `report_grid_weeks`;
- must-visit compliance: `report_household_deltas` (due) and `report_grid_week_tags` (done);
- visited and done corrected for the few households whose grid or tags changed since the week
  before began, so each counts in the grid it ends the week in (with `households` and `due`),
  done by its visits of the week wherever recorded;
- the trend's weeks, each as its own report counts its totals: the aggregates corrected for
  the households whose grid changed since the trend's first week began (moved into, out of or
  inside the selection, or left the register from it), counted again from their visits;
- per worker: `report_worker_weeks` and the week's published shifts (A / B posts);
- tasks and the three rates: tasks opened in the week (index on `tasks.created_at`);
- the need and problem lists (visits' follow-ups, tasks opened on a list): raised, done in the
  week, open as it closed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, text
from sqlalchemy.orm import Session

from api import clock, errors
from api.db import set_local
from api.models import CARE_TAGS, Community, District, Grid, GridVersion, Street
from api.models.tasks import TASK_LISTS
from api.scope import Scope
from api.services.rates import RESOLVED_STATUSES
from api.services.task_lists import LIST_FIGURES
from api.services.weeks import parse_week, shift_week, week_bounds, week_dates

TREND_WEEKS = 8


@dataclass(frozen=True)
class Selection:
    """What a report covers: its level (grids / community / street / district), the code and
    name of that unit, and the grids in it that existed during the week (in code order).

    `trend_grid_ids`: the unit's grids that existed during any of the trend's weeks (None: the
    week's); the trend counts, for each of its weeks, those of them that existed that week."""

    level: str
    code: str
    name: str
    grid_ids: list[int] = field(default_factory=list)
    trend_grid_ids: list[int] | None = None


# --- what is selected -----------------------------------------------------------------------
def select_scope(
    session: Session,
    scope: Scope | None,
    week: str,
    *,
    community: str | None = None,
    street: str | None = None,
    district: str | None = None,
) -> Selection:
    """The unit asked for, checked against the caller's scope (None: the system itself).

    A grid leader reports on their own grids, a community admin on their community, a district
    viewer on their district or a street or community in it. An unknown or unseen unit is a
    404; a level the role does not report at is a 403.
    """
    parse_week(week)
    given = [
        (k, v)
        for k, v in (("community", community), ("street", street), ("district", district))
        if v
    ]
    if len(given) > 1:
        raise errors.Unprocessable(
            "Give one of `community`, `street` or `district`.",
            errors={k: ["Only one level at a time."] for k, _ in given},
        )
    role = scope.role if scope else "system"
    if role == "worker":
        raise errors.Forbidden("Coverage reports are for grid leaders, admins and viewers.")
    if not given:
        if role == "district_viewer":
            given = [("district", scope.district_code)]
        elif role in ("grid_leader", "community_admin"):
            given = [("community", scope.community_code)]
        else:
            raise errors.Unprocessable("Give `community`, `street` or `district`.")
    level, code = given[0]
    if level != "community" and role in ("grid_leader", "community_admin"):
        raise errors.Forbidden(f"A {role.replace('_', ' ')} reports on their community only.")
    model = {"community": Community, "street": Street, "district": District}[level]
    name = session.scalar(select(model.name).where(model.code == code))
    visible = name is not None and (
        scope is None
        or (role == "district_viewer" and code.startswith(scope.district_code or "-"))
        or (role != "district_viewer" and code == scope.community_code)
    )
    if not visible:
        raise errors.NotFound(f"{level.capitalize()} {code} not found.")
    start, end = week_bounds(week)

    def existed(since: datetime):
        return exists().where(
            GridVersion.grid_id == Grid.id,
            GridVersion.valid_from < end,
            (GridVersion.valid_to.is_(None)) | (GridVersion.valid_to > since),
        )

    # The grids of the week, and for the trend those of its eight weeks (a grid retired or
    # drawn since counts in the weeks it existed, as in those weeks' own reports).
    trend_start = week_bounds(shift_week(week, 1 - TREND_WEEKS))[0]
    stmt = select(Grid.id, existed(start)).where(existed(trend_start)).order_by(Grid.code)
    stmt = stmt.where(
        Grid.community_code == code
        if level == "community"
        else Grid.community_code.startswith(code, autoescape=True)
    )
    if scope is not None:
        stmt = stmt.where(scope.grids())
    if role == "grid_leader":
        level = "grids"
    rows = session.execute(stmt).all()
    return Selection(level, code, name, [g for g, in_week in rows if in_week], [g for g, _ in rows])


# --- the report: one set-based statement, the JSON built in the database ----------------------
# Each CTE is one section over the selected grids (no per-grid loops); PostgreSQL assembles the
# document, so the API adds only authentication, scope and the selection to the SQL's own time.
REPORT_SQL = """
WITH sel AS (SELECT unnest(CAST(:grid_ids AS integer[])) AS grid_id),
-- The aggregates count a visited household in the grid its visit was recorded in (its grid
-- when the visit was synced), a household in the grid it ends the week in, a must-visit done
-- under the tags it had at the visit. They differ only for a household whose history changed
-- after the week before began: a row of a selected grid closed since (it left, or its tags or
-- kind changed) or opened since by a move into it (from_grid_id; a registration is no move).
-- Any other household visited in these two weeks has had one open row, its grid and tags,
-- from before the visit to now. Those few are counted again here, one by one, each by index
-- probes of its own rows (no join between them: their number is not known when planning).
-- The map's grids layer counts `households` and `visited` per grid the same way
-- (api/services/tiles.py, _grid_coverage): change both together.
changed AS MATERIALIZED (
  SELECT x.household_id FROM sel JOIN household_history x ON x.grid_id = sel.grid_id
  WHERE x.valid_to >= :since
  UNION
  SELECT x.household_id FROM sel JOIN household_history x ON x.grid_id = sel.grid_id
  WHERE x.from_grid_id IS NOT NULL AND x.valid_from >= :since),
-- Each one's grid and tags at the end of the week and its grid at the end of the week before;
-- the grids its visits that found someone were recorded in, each week
-- (ix_visits_household_visited); the care tags it was counted done under this week, wherever,
-- and those it is done under only counting its visits of the week in all those grids together.
ch AS MATERIALIZED (
  SELECT c.household_id, ew.grid_id AS end_grid, ew.tags AS end_tags, ep.grid_id AS prev_grid,
         vis.met_w, vis.met_p, cnt.counted_grids, cnt.counted_tags, split.tags AS split_tags
  FROM changed c
  LEFT JOIN LATERAL (
    SELECT x.grid_id, x.tags FROM household_history x
    WHERE x.household_id = c.household_id AND x.valid_from < :end
      AND (x.valid_to IS NULL OR x.valid_to >= :end)
    ORDER BY x.valid_from DESC LIMIT 1) ew ON true
  LEFT JOIN LATERAL (
    SELECT x.grid_id FROM household_history x
    WHERE x.household_id = c.household_id AND x.valid_from < :start
      AND (x.valid_to IS NULL OR x.valid_to >= :start)
    ORDER BY x.valid_from DESC LIMIT 1) ep ON true
  CROSS JOIN LATERAL (
    SELECT COALESCE(array_agg(DISTINCT v.grid_id) FILTER (WHERE v.week = :week), '{}')
             AS met_w,
           COALESCE(array_agg(DISTINCT v.grid_id) FILTER (WHERE v.week = :prev_week), '{}')
             AS met_p
    FROM visits v
    WHERE v.household_id = c.household_id AND v.visited_at >= :since
      AND v.visited_at < :end AND v.outcome <> 'nobody_home') vis
  CROSS JOIN LATERAL (
    -- (grid, tag) pairs, as two arrays of the same length.
    SELECT COALESCE(array_agg(o.grid_id), '{}') AS counted_grids,
           COALESCE(array_agg(t.tag), '{}') AS counted_tags
    FROM report_household_weeks o CROSS JOIN LATERAL unnest(o.counted) t(tag)
    WHERE o.grid_id = ANY(vis.met_w) AND o.week = :week
      AND o.household_id = c.household_id) cnt
  CROSS JOIN LATERAL (
    -- Found at home this week in two grids or more (moved, or its grid redrawn, mid-week):
    -- each grid's aggregate replayed only the visits recorded in it, so its cadence may be
    -- met by none of them. Its visits that found someone this week replayed together, as the
    -- rebuild replays a grid's (visited_at, id order; the tags at each visit, its history row
    -- then or its tags now; the cadence that week of the community of the visit's grid): the
    -- tags of each visit that brings them up to its cadence. Read for those few alone.
    SELECT COALESCE(array_agg(DISTINCT t.tag), '{}') AS tags
    FROM (
      SELECT v.grid_id, COALESCE(hh.tags, h.tags) AS tags,
             row_number() OVER (ORDER BY v.visited_at, v.id) AS met_so_far
      FROM visits v
      JOIN households h ON h.id = v.household_id
      LEFT JOIN LATERAL (
        SELECT x.tags FROM household_history x
        WHERE x.household_id = v.household_id AND x.valid_from <= v.visited_at
          AND (x.valid_to IS NULL OR x.valid_to > v.visited_at)
        ORDER BY x.valid_from DESC LIMIT 1) hh ON true
      WHERE cardinality(vis.met_w) > 1 AND v.household_id = c.household_id
        AND v.visited_at >= :start AND v.visited_at < :end AND v.week = :week
        AND v.outcome <> 'nobody_home') r
    JOIN grids g ON g.id = r.grid_id
    CROSS JOIN LATERAL unnest(r.tags) t(tag)
    WHERE r.met_so_far
          >= gw_cadence_per_week(gw_cadence_of(g.community_code, :week), r.tags)) split
  WHERE vis.met_w <> '{}' OR vis.met_p <> '{}'),
-- Per grid and week (this one and the one before): minus where they were counted, plus where
-- they end the week.
fix AS (
  SELECT grid_id, week, sum(visited) AS visited, sum(visited_2w) AS visited_2w FROM (
    SELECT g AS grid_id, CAST(:week AS text) AS week, -1 AS visited, 0 AS visited_2w
    FROM ch CROSS JOIN LATERAL unnest(ch.met_w) g
    UNION ALL
    SELECT g, CAST(:prev_week AS text), -1, 0 FROM ch CROSS JOIN LATERAL unnest(ch.met_p) g
    UNION ALL
    SELECT g, CAST(:week AS text), 0, -1
    FROM ch CROSS JOIN LATERAL (SELECT DISTINCT u FROM unnest(ch.met_w || ch.met_p) u) x(g)
    UNION ALL
    SELECT end_grid, CAST(:week AS text), CASE WHEN met_w <> '{}' THEN 1 ELSE 0 END, 1
    FROM ch WHERE end_grid IS NOT NULL
    UNION ALL
    SELECT prev_grid, CAST(:prev_week AS text), 1, 0
    FROM ch WHERE prev_grid IS NOT NULL AND met_p <> '{}') f
  WHERE grid_id IN (SELECT grid_id FROM sel)
  GROUP BY 1, 2),
-- Must-visit: minus under the tags counted in each grid, plus in the grid it ends the week in
-- under those of them, or of those its visits in several grids together reach, it is due for
-- there.
done_fix AS (
  SELECT grid_id, tag, sum(n) AS n FROM (
    SELECT c.grid_id, c.tag, -1 AS n
    FROM ch CROSS JOIN LATERAL unnest(ch.counted_grids, ch.counted_tags) c(grid_id, tag)
    UNION ALL
    SELECT ch.end_grid, t.tag, 1
    FROM ch
    CROSS JOIN LATERAL (SELECT DISTINCT u FROM unnest(ch.counted_tags || ch.split_tags) u) t(tag)
    WHERE t.tag = ANY(ch.end_tags)) d
  WHERE grid_id IN (SELECT grid_id FROM sel)
  GROUP BY 1, 2),
hh AS (
  SELECT d.grid_id,
         COALESCE(sum(d.delta) FILTER (WHERE d.kind = 'residence'), 0) AS residence,
         COALESCE(sum(d.delta) FILTER (WHERE d.kind = 'business'), 0) AS business
  FROM report_household_deltas d JOIN sel USING (grid_id)
  WHERE d.tag = '' AND d.week <= :week
  GROUP BY d.grid_id),
gw AS (
  SELECT g.id, g.code, g.name, g.community_code,
         COALESCE(hh.residence, 0) AS residence, COALESCE(hh.business, 0) AS business,
         COALESCE(hh.residence, 0) + COALESCE(hh.business, 0) AS households,
         COALESCE(w.visits, 0) AS visits,
         COALESCE(w.visited, 0) + COALESCE(fx.visited, 0) AS visited,
         COALESCE(w.visited_2w, 0) + COALESCE(fx.visited_2w, 0) AS visited_2w,
         COALESCE(w.grade_ok, 0) AS ok, COALESCE(w.grade_doubtful, 0) AS doubtful,
         COALESCE(w.grade_suspect, 0) AS suspect, COALESCE(w.relief_visits, 0) AS relief,
         COALESCE(w.unregistered_visits, 0) AS unregistered,
         GREATEST(COALESCE(hh.residence, 0) + COALESCE(hh.business, 0)
                  - COALESCE(w.visited_2w, 0) - COALESCE(fx.visited_2w, 0), 0)
           AS not_visited_2w
  FROM sel
  JOIN grids g ON g.id = sel.grid_id
  LEFT JOIN hh ON hh.grid_id = sel.grid_id
  LEFT JOIN report_grid_weeks w ON w.grid_id = sel.grid_id AND w.week = :week
  LEFT JOIN fix fx ON fx.grid_id = sel.grid_id AND fx.week = :week),
due AS (
  SELECT d.grid_id, d.tag, sum(d.delta) AS n
  FROM report_household_deltas d JOIN sel USING (grid_id)
  WHERE d.tag <> '' AND d.week <= :week
  GROUP BY d.grid_id, d.tag),
done AS (
  SELECT grid_id, tag, sum(n) AS n FROM (
    SELECT t.grid_id, t.tag, t.done AS n
    FROM report_grid_week_tags t JOIN sel USING (grid_id)
    WHERE t.week = :week
    UNION ALL
    SELECT grid_id, tag, n FROM done_fix) d
  GROUP BY 1, 2),
tg AS (
  SELECT COALESCE(due.grid_id, done.grid_id) AS grid_id, COALESCE(due.tag, done.tag) AS tag,
         COALESCE(due.n, 0) AS due, COALESCE(done.n, 0) AS done
  FROM due FULL JOIN done ON done.grid_id = due.grid_id AND done.tag = due.tag),
tgj AS (
  SELECT grid_id,
         json_agg(json_build_object('tag', tag, 'due', due, 'done', done,
                                    'rate', gw_pct(done, due))
                  ORDER BY array_position(CAST(:tags AS text[]), tag)) AS j
  FROM tg WHERE due > 0 OR done > 0
  GROUP BY grid_id),
tk AS (
  SELECT t.grid_id,
         /*TASK_COUNTS*/
  FROM tasks t JOIN sel USING (grid_id)
  WHERE t.created_at >= :start AND t.created_at < :end AND t.status <> 'transferred'
  GROUP BY t.grid_id),
-- The need and problem lists (api/services/task_lists.py counts the same):
-- raised and done in the week, open as it closed (the tasks on a list only: ix_tasks_list_grid).
lk AS (
  SELECT t.grid_id,
         /*LIST_COUNTS*/
  FROM tasks t JOIN sel USING (grid_id)
  WHERE t.list_kind IS NOT NULL AND t.created_at < :end AND t.status <> 'transferred'
  GROUP BY t.grid_id),
gt AS (
  SELECT gw.*, /*TASK_COLUMNS*/, /*LIST_COLUMNS*/,
         COALESCE(tgj.j, '[]'::json) AS must_visit
  FROM gw LEFT JOIN tk ON tk.grid_id = gw.id LEFT JOIN tgj ON tgj.grid_id = gw.id
  LEFT JOIN lk ON lk.grid_id = gw.id),
members AS (
  -- Who held the grids during the week (`grid_holdings`), not who holds them now: a past week
  -- listed a worker given a grid since, and lost the one who held it then.
  SELECT gh.user_id AS worker_id FROM grid_holdings gh JOIN sel USING (grid_id)
        WHERE gh.started_at < :end AND (gh.ended_at IS NULL OR gh.ended_at > :start)
  UNION SELECT w.worker_id FROM report_worker_weeks w JOIN sel USING (grid_id)
        WHERE w.week = :week
  UNION SELECT s.worker_id FROM shifts s JOIN sel USING (grid_id)
        JOIN rosters r ON r.id = s.roster_id AND r.status = 'published'
        WHERE s.post = 'B' AND s.date BETWEEN :monday AND :sunday),
wv AS (
  SELECT w.worker_id, sum(w.visits) AS visits, sum(w.households) AS households
  FROM report_worker_weeks w JOIN sel USING (grid_id)
  WHERE w.week = :week
  GROUP BY w.worker_id),
posts AS (
  SELECT s.worker_id,
         count(*) FILTER (WHERE s.post = 'A') AS a_days,
         count(*) FILTER (WHERE s.post = 'B') AS b_days
  FROM shifts s JOIN rosters r ON r.id = s.roster_id AND r.status = 'published'
  WHERE s.date BETWEEN :monday AND :sunday AND s.worker_id IN (SELECT worker_id FROM members)
    -- Posts here only: B-posts in the selected grids, A-posts (no grid) of their communities'
    -- rosters; a reliever's home roster is neither counted nor disclosed.
    -- Not a day of approved leave: a shift still naming its worker (not handed on, or a
    -- reliever sent beside it) is not a day they worked.
    AND NOT EXISTS (SELECT 1 FROM leaves l
                    WHERE l.worker_id = s.worker_id AND l.status = 'approved'
                      AND s.date BETWEEN l.start_date AND l.end_date)
    AND (s.grid_id IN (SELECT grid_id FROM sel)
         OR (s.grid_id IS NULL AND r.community_code IN (
               SELECT g.community_code FROM grids g JOIN sel ON sel.grid_id = g.id)))
  GROUP BY s.worker_id),
weeks AS (
  SELECT * FROM unnest(CAST(:weeks AS text[]), CAST(:week_starts AS timestamptz[]),
                       CAST(:week_ends AS timestamptz[])) AS w(week, week_start, week_end)),
-- The trend's grids: the unit's grids that existed in any of its weeks (a grid retired since
-- the trend began, or drawn since, is not among the week's `sel`), and each week those of
-- them that existed in it (a version overlapping it), as that week's own report selects them.
-- Until 2026-12-07 every week read the grids of the report's week: after a merge, the weeks
-- before it lost the retired grid's households and visits.
area AS (SELECT unnest(CAST(:trend_grid_ids AS integer[])) AS grid_id),
tsel AS MATERIALIZED (
  SELECT DISTINCT w.week, a.grid_id
  FROM area a
  JOIN grid_versions v ON v.grid_id = a.grid_id
  JOIN weeks w ON v.valid_from < w.week_end
              AND (v.valid_to IS NULL OR v.valid_to > w.week_start)),
trend_hh AS (
  SELECT s.week, sum(d.delta) AS n
  FROM tsel s
  JOIN report_household_deltas d ON d.grid_id = s.grid_id AND d.tag = '' AND d.week <= s.week
  GROUP BY s.week),
-- Each of the trend's weeks is counted as that week's own report counts its totals: a
-- household counts in a week's point if it was found at home that week and ends the week in a
-- selected grid, once. The aggregates count it once in each selected grid its visits of the
-- week were recorded in (its grid when each was synced). They differ from that only for a
-- household whose grid changed since the trend's first week began: a move (a row opened with
-- from_grid_id) into or out of a selected grid, or out of the register (a selected grid's row
-- closed with no row of the household opened then: a removal, migration 0052). A visit synced
-- after such a move lands in the household's new grid, whatever week it was made in, so each
-- of them is counted again from its visits of every week of the trend, as `ch` counts the
-- report's own week: minus once in each of the week's grids (`tsel`) its visits were recorded
-- in, plus once if it ends the week in one. (Until 2026-12-07 a household that moved between
-- two selected grids was corrected only in the week of its move: one found in its old grid
-- and, by a visit synced late, in its new one in an earlier week counted twice, 2 of 1.)
moved AS MATERIALIZED (
  -- One scan of the moves since (the partial index of 0041), hashed against the selection.
  SELECT x.household_id FROM household_history x
  WHERE x.from_grid_id IS NOT NULL AND x.valid_from >= :trend_since
    AND (x.grid_id IN (SELECT grid_id FROM area)
         OR x.from_grid_id IN (SELECT grid_id FROM area))
  UNION
  -- Out of the register: a selected grid's row closed since the trend began
  -- (ix_household_history_grid_closed, as `changed` reads W-1 and W) with no row of the
  -- household opened then (ix_household_history_household). A removal undone opened one at
  -- that very time, as if it had never left: nothing to correct, unless it came back in
  -- another grid, a move (from_grid_id) like any other.
  SELECT x.household_id FROM area JOIN household_history x ON x.grid_id = area.grid_id
  WHERE x.valid_to >= :trend_since
    AND NOT EXISTS (
      SELECT 1 FROM household_history y
      WHERE y.household_id = x.household_id AND y.valid_from = x.valid_to)),
-- Per such household and week it was found at home in: the grids those visits were recorded
-- in (ix_visits_household_visited) and its grid at the end of the week.
moved_ch AS MATERIALIZED (
  SELECT vis.week, vis.met, ew.grid_id AS end_grid
  FROM moved c
  CROSS JOIN LATERAL (
    SELECT v.week, array_agg(DISTINCT v.grid_id) AS met
    FROM visits v
    WHERE v.household_id = c.household_id AND v.visited_at >= :trend_since
      AND v.visited_at < :end AND v.outcome <> 'nobody_home'
    GROUP BY v.week) vis
  JOIN weeks e ON e.week = vis.week
  LEFT JOIN LATERAL (
    SELECT x.grid_id FROM household_history x
    WHERE x.household_id = c.household_id AND x.valid_from < e.week_end
      AND (x.valid_to IS NULL OR x.valid_to >= e.week_end)
    ORDER BY x.valid_from DESC LIMIT 1) ew ON true),
trend_fix AS (
  SELECT d.week, sum(d.n) AS visited FROM (
    SELECT week, g AS grid_id, -1 AS n FROM moved_ch CROSS JOIN LATERAL unnest(met) g
    UNION ALL
    SELECT week, end_grid, 1 FROM moved_ch WHERE end_grid IS NOT NULL) d
  JOIN tsel s ON s.week = d.week AND s.grid_id = d.grid_id
  GROUP BY d.week),
trend_vis AS (
  SELECT week, sum(visited) AS visited FROM (
    SELECT gw.week, gw.visited
    FROM tsel s JOIN report_grid_weeks gw ON gw.grid_id = s.grid_id AND gw.week = s.week
    UNION ALL
    SELECT week, visited FROM trend_fix) v
  GROUP BY week),
tag_totals AS (
  SELECT tag, sum(due) AS due, sum(done) AS done FROM tg GROUP BY tag
  HAVING sum(due) > 0 OR sum(done) > 0)
SELECT json_build_object(
  'week', CAST(:week AS text),
  'period', json_build_object('start', CAST(:start_text AS text),
                              'end', CAST(:end_text AS text)),
  'level', CAST(:level AS text),
  'code', CAST(:code AS text),
  'name', CAST(:name AS text),
  'generated_at', CAST(:generated_at AS text),
  'grids', COALESCE((
    SELECT json_agg(json_build_object(
      'code', code, 'name', name, 'community_code', community_code,
      'households', households,
      'households_by_kind', json_build_object('residence', residence, 'business', business),
      'visited', visited, 'coverage', gw_pct(visited, households),
      'visits', visits,
      'visits_by_grade', json_build_object('ok', ok, 'doubtful', doubtful, 'suspect', suspect),
      'relief_visits', relief, 'unregistered_visits', unregistered,
      'not_visited_2w', not_visited_2w,
      'must_visit', must_visit,
      'tasks', /*GRID_TASKS*/,
      'lists', /*GRID_LISTS*/)
      ORDER BY code)
    FROM gt), '[]'::json),
  'communities', COALESCE((
    -- Named, with the street each lies in: what a district's viewer chooses from.
    SELECT json_agg(c ORDER BY c.code) FROM (
      SELECT gt.community_code AS code, cm.name, cm.street_code, st.name AS street_name,
             count(*) AS grids, sum(gt.households) AS households,
             sum(gt.visited) AS visited, gw_pct(sum(gt.visited), sum(gt.households)) AS coverage,
             sum(gt.visits) AS visits, sum(gt.not_visited_2w) AS not_visited_2w,
             sum(gt.opened) AS tasks_opened, sum(gt.resolved) AS tasks_resolved,
             sum(gt.overdue) AS tasks_overdue, /*COMMUNITY_LISTS*/
      FROM gt
      JOIN communities cm ON cm.code = gt.community_code
      JOIN streets st ON st.code = cm.street_code
      GROUP BY gt.community_code, cm.name, cm.street_code, st.name) c), '[]'::json),
  'workers', COALESCE((
    SELECT json_agg(json_build_object(
      'id', u.id, 'username', u.username, 'name', u.display_name,
      'visits', COALESCE(wv.visits, 0), 'households', COALESCE(wv.households, 0),
      'a_days', COALESCE(p.a_days, 0), 'b_days', COALESCE(p.b_days, 0))
      ORDER BY u.display_name, u.id)
    FROM members m
    JOIN users u ON u.id = m.worker_id AND u.role IN ('worker', 'grid_leader')
    LEFT JOIN wv ON wv.worker_id = m.worker_id
    LEFT JOIN posts p ON p.worker_id = m.worker_id), '[]'::json),
  'totals', (
    SELECT json_build_object(
      'grids', count(*),
      'households', COALESCE(sum(households), 0),
      'households_by_kind', json_build_object('residence', COALESCE(sum(residence), 0),
                                              'business', COALESCE(sum(business), 0)),
      'visited', COALESCE(sum(visited), 0),
      'coverage', gw_pct(sum(visited), sum(households)),
      'visits', COALESCE(sum(visits), 0),
      'visits_by_grade', json_build_object('ok', COALESCE(sum(ok), 0),
                                           'doubtful', COALESCE(sum(doubtful), 0),
                                           'suspect', COALESCE(sum(suspect), 0)),
      'relief_visits', COALESCE(sum(relief), 0),
      'unregistered_visits', COALESCE(sum(unregistered), 0),
      'not_visited_2w', COALESCE(sum(not_visited_2w), 0),
      'must_visit', COALESCE((
        SELECT json_agg(json_build_object('tag', tag, 'due', due, 'done', done,
                                          'rate', gw_pct(done, due))
                        ORDER BY array_position(CAST(:tags AS text[]), tag))
        FROM tag_totals), '[]'::json),
      'tasks', /*TOTAL_TASKS*/,
      'lists', /*TOTAL_LISTS*/)
    FROM gt),
  'trend', (
    SELECT json_agg(json_build_object(
      'week', weeks.week, 'households', COALESCE(trend_hh.n, 0),
      'visited', COALESCE(trend_vis.visited, 0),
      'coverage', gw_pct(COALESCE(trend_vis.visited, 0), COALESCE(trend_hh.n, 0)))
      ORDER BY weeks.week)
    FROM weeks LEFT JOIN trend_hh USING (week) LEFT JOIN trend_vis USING (week))
)::text
"""

# The tasks' figures (the `tk` CTE's counts, per grid and summed for the totals): of every
# source, and of the 12345 hotline's tickets alone (`hotline`: the three rates a community is
# judged by, as GET /tasks/rates?source=hotline counts them; until 2026-12-06 the report gave
# only every source's). `{w}` is the extra condition of a count, `{p}` its columns' prefix.
_TASK_COUNTS = """count(*) FILTER (WHERE TRUE{w}) AS {p}opened,
         count(*) FILTER (WHERE t.first_contact_at IS NOT NULL
                            AND t.first_contact_at
                                <= COALESCE(t.first_contact_due_at, t.first_contact_at){w})
           AS {p}responded,
         count(*) FILTER (WHERE t.status = ANY(CAST(:resolved AS text[])){w}) AS {p}resolved,
         -- Still open at the cutoff: resolved after it (late, once the week had ended) was
         -- overdue then, so a past week reads the same after; a resolved task with no time
         -- recorded counts as resolved in time.
         count(*) FILTER (WHERE t.due_at < :cutoff
                            AND NOT (t.status = ANY(CAST(:resolved AS text[]))
                                     AND COALESCE(t.resolved_at, t.closed_at, :cutoff)
                                         <= :cutoff){w}) AS {p}overdue,
         count(t.satisfaction) FILTER (WHERE TRUE{w}) AS {p}rated,
         count(*) FILTER (WHERE t.satisfaction IN ('satisfied', 'basically_satisfied'){w})
           AS {p}satisfied"""
_TASK_FIGURES = ("opened", "responded", "resolved", "overdue", "rated", "satisfied")
# (the counts' extra condition, their columns' prefix): every source, then the hotline's
_SOURCES = (("", ""), (" AND t.source = 'hotline'", "hotline_"))


def _task_object(p: str, total: bool) -> str:
    """The JSON of one source's figures (`p` its prefix): a grid's, or summed for the totals."""

    def n(name: str) -> str:
        return f"COALESCE(sum({p}{name}), 0)" if total else f"{p}{name}"

    return (
        f"json_build_object('opened', {n('opened')}, 'resolved', {n('resolved')}, "
        f"'overdue', {n('overdue')}, "
        f"'response_rate', gw_pct({n('responded')}, {n('opened')}), "
        f"'resolution_rate', gw_pct({n('resolved')}, {n('opened')}), "
        f"'satisfaction_rate', gw_pct({n('satisfied')}, {n('rated')}), "
        f"'rated', {n('rated')}"
    )


def _task_json(total: bool) -> str:
    every, hotline = (_task_object(p, total) for _, p in _SOURCES)
    return f"{every}, 'hotline', {hotline}))"


_TASK_SQL = {
    "/*TASK_COUNTS*/": ",\n         ".join(_TASK_COUNTS.format(w=w, p=p) for w, p in _SOURCES),
    "/*TASK_COLUMNS*/": ", ".join(
        f"COALESCE(tk.{p}{name}, 0) AS {p}{name}" for _, p in _SOURCES for name in _TASK_FIGURES
    ),
    "/*GRID_TASKS*/": _task_json(total=False),
    "/*TOTAL_TASKS*/": _task_json(total=True),
}

# The need and problem lists' figures (the `lk` CTE's counts), as api/services/task_lists.py
# counts them: raised in the week, done in it, open (not done) as it closed (`:cutoff`). A
# task is done at `resolved_at`, else `closed_at`, else (no time recorded) when it was opened.
_DONE_AT = "COALESCE(t.resolved_at, t.closed_at, t.created_at)"
_RESOLVED = "t.status = ANY(CAST(:resolved AS text[]))"
_LIST_COUNTS = f"""count(*) FILTER (WHERE t.list_kind = '{{k}}' AND t.created_at >= :start)
           AS {{k}}_raised,
         count(*) FILTER (WHERE t.list_kind = '{{k}}' AND {_RESOLVED}
                            AND {_DONE_AT} >= :start AND {_DONE_AT} < :end) AS {{k}}_done,
         count(*) FILTER (WHERE t.list_kind = '{{k}}' AND t.created_at < :cutoff
                            AND NOT ({_RESOLVED} AND {_DONE_AT} <= :cutoff)) AS {{k}}_open"""


def _list_json(total: bool) -> str:
    def figures(kind: str) -> str:
        def n(name: str) -> str:
            return f"COALESCE(sum({kind}_{name}), 0)" if total else f"{kind}_{name}"

        return ", ".join(f"'{name}', {n(name)}" for name in LIST_FIGURES)

    return (
        "json_build_object("
        + ", ".join(f"'{kind}', json_build_object({figures(kind)})" for kind in TASK_LISTS)
        + ")"
    )


_TASK_SQL.update(
    {
        "/*LIST_COUNTS*/": ",\n         ".join(_LIST_COUNTS.format(k=k) for k in TASK_LISTS),
        "/*LIST_COLUMNS*/": ", ".join(
            f"COALESCE(lk.{k}_{name}, 0) AS {k}_{name}" for k in TASK_LISTS for name in LIST_FIGURES
        ),
        "/*GRID_LISTS*/": _list_json(total=False),
        "/*TOTAL_LISTS*/": _list_json(total=True),
        # A district's communities, flat as their tasks' figures: needs_open, problems_done...
        "/*COMMUNITY_LISTS*/": ", ".join(
            f"sum(gt.{k}_{name}) AS {k}s_{name}" for k in TASK_LISTS for name in LIST_FIGURES
        ),
    }
)
for _mark, _sql in _TASK_SQL.items():
    REPORT_SQL = REPORT_SQL.replace(_mark, _sql)


def report_params(
    selection: Selection, week: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """The bind parameters of REPORT_SQL (also what bench/report.py runs directly)."""
    start, end = week_bounds(week)
    days = week_dates(week)
    now = now or clock.now()
    weeks = [shift_week(week, -i) for i in range(TREND_WEEKS - 1, -1, -1)]
    return {
        "grid_ids": selection.grid_ids,
        "week": week,
        "weeks": weeks,
        "prev_week": weeks[-2],
        # Households whose history changed since the week before began are counted one by one
        # (the week's figures, its "two weeks", and the trend's last two weeks).
        "since": week_bounds(weeks[-2])[0],
        # The trend's weeks: the households whose grid changed since the first began are
        # counted again from their visits, each week as its own report counts it (`moved`).
        "week_starts": [week_bounds(w)[0] for w in weeks],
        "week_ends": [week_bounds(w)[1] for w in weeks],
        "trend_grid_ids": (
            selection.grid_ids if selection.trend_grid_ids is None else selection.trend_grid_ids
        ),
        "trend_since": week_bounds(weeks[0])[0],
        "start": start,
        "end": end,
        "start_text": start.isoformat(),
        "end_text": end.isoformat(),
        # Overdue as the week closed, so a past week reads the same whenever it is run; the
        # week under way as it stands (a deadline still to come is not late yet).
        "cutoff": min(now, end),
        "resolved": list(RESOLVED_STATUSES),
        "tags": list(CARE_TAGS),
        "monday": days[0],
        "sunday": days[-1],
        "level": selection.level,
        "code": selection.code,
        "name": selection.name,
        "generated_at": now.isoformat(),
    }


def coverage_json(
    session: Session, selection: Selection, week: str, *, now: datetime | None = None
) -> str:
    """The report of the selection for the week as a JSON document (see docs/report.md)."""
    # psycopg prepares a statement run 5 times on a connection; PostgreSQL then switches it to a
    # generic plan after 5 more, planned without the grid ids and the week. For this statement
    # that plan is slower (measured on the city: 0.21 s -> 0.37 s from the 10th run on a worker's
    # connection). Plan it for its parameters every time, in this transaction only.
    set_local(session, plan_cache_mode="force_custom_plan")
    return session.execute(text(REPORT_SQL), report_params(selection, week, now=now)).scalar_one()


def coverage_report(
    session: Session, selection: Selection, week: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """The same report as a dict (for the CSV, XLSX and PDF renderings)."""
    return json.loads(coverage_json(session, selection, week, now=now))


def grid_shapes(session: Session, grid_ids: list[int], week: str) -> dict[str, Any]:
    """Each grid's boundary as it stood at the end of the week, simplified, as GeoJSON dicts."""
    _, end = week_bounds(week)
    rows = session.execute(
        text(
            """
            SELECT DISTINCT ON (g.code) g.code,
                   ST_AsGeoJSON(ST_SimplifyPreserveTopology(v.boundary, 0.00005), 6) AS geom
            FROM grid_versions v JOIN grids g ON g.id = v.grid_id
            WHERE v.grid_id = ANY(CAST(:ids AS integer[])) AND v.valid_from < :end
            ORDER BY g.code, v.valid_from DESC
            """
        ),
        {"ids": grid_ids, "end": end},
    )
    return {code: json.loads(geom) for code, geom in rows}


def previous_week_due(now: datetime) -> str:
    """The week whose report is due at `now`: last week from Monday 08:00 Asia/Shanghai on,
    before that the week before it (its report fell due last Monday)."""
    from api.services.weeks import LOCAL, week_of

    local = now.astimezone(LOCAL)
    this_week = week_of(local)
    monday_8 = datetime.combine(week_dates(this_week)[0], datetime.min.time(), LOCAL) + timedelta(
        hours=8
    )
    return shift_week(this_week, -1 if local >= monday_8 else -2)
