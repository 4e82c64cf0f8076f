"""The weekly coverage report: what is selected, its sections read set-based from the aggregates.

Every section is one SQL statement over the selected grids (no per-grid loops) reading the
trigger-maintained aggregates of migration 0005, so a report costs O(grids × weeks) rows:

- households per grid as of the week: running sum of `report_household_deltas` (kept by a
  trigger on `households`, so a moved household counts where it was that week);
- visits, distinct households visited, visited this or last week, grades: `report_grid_weeks`;
- must-visit compliance: `report_household_deltas` (due) and `report_grid_week_tags` (done);
- per worker: `report_worker_weeks` and the week's published shifts (A / B posts);
- tasks and the three rates: tasks opened in the week (index on `tasks.created_at`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, text
from sqlalchemy.orm import Session

from api import errors
from api.models import CARE_TAGS, Community, District, Grid, GridVersion, Street
from api.scope import Scope
from api.services.rates import RESOLVED_STATUSES, Rates
from api.services.weeks import parse_week, shift_week, week_bounds, week_dates

TREND_WEEKS = 8
GRADES = ("ok", "doubtful", "suspect")


@dataclass(frozen=True)
class Selection:
    """What a report covers: its level (grids / community / street / district), the code and
    name of that unit, and the grids in it that existed during the week (in code order)."""

    level: str
    code: str
    name: str
    grid_ids: list[int] = field(default_factory=list)


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
    existed = exists().where(
        GridVersion.grid_id == Grid.id,
        GridVersion.valid_from < end,
        (GridVersion.valid_to.is_(None)) | (GridVersion.valid_to > start),
    )
    stmt = select(Grid.id).where(existed).order_by(Grid.code)
    stmt = stmt.where(
        Grid.community_code == code
        if level == "community"
        else Grid.community_code.startswith(code, autoescape=True)
    )
    if scope is not None:
        stmt = stmt.where(scope.grids())
    if role == "grid_leader":
        level = "grids"
    return Selection(level, code, name, list(session.scalars(stmt)))


# --- the sections, one statement each -------------------------------------------------------
_SEL = "sel AS (SELECT unnest(CAST(:grid_ids AS integer[])) AS grid_id)"

GRIDS_SQL = f"""
WITH {_SEL},
hh AS (
  SELECT d.grid_id,
         sum(d.delta) FILTER (WHERE d.kind = 'residence') AS residence,
         sum(d.delta) FILTER (WHERE d.kind = 'business') AS business
  FROM report_household_deltas d JOIN sel USING (grid_id)
  WHERE d.tag = '' AND d.week <= :week
  GROUP BY d.grid_id)
SELECT g.id, g.code, g.name, g.community_code,
       COALESCE(hh.residence, 0) AS residence, COALESCE(hh.business, 0) AS business,
       COALESCE(w.visits, 0) AS visits, COALESCE(w.met, 0) AS met,
       COALESCE(w.visited, 0) AS visited, COALESCE(w.visited_2w, 0) AS visited_2w,
       COALESCE(w.grade_ok, 0) AS ok, COALESCE(w.grade_doubtful, 0) AS doubtful,
       COALESCE(w.grade_suspect, 0) AS suspect, COALESCE(w.relief_visits, 0) AS relief,
       COALESCE(w.unregistered_visits, 0) AS unregistered
FROM sel
JOIN grids g ON g.id = sel.grid_id
LEFT JOIN hh ON hh.grid_id = sel.grid_id
LEFT JOIN report_grid_weeks w ON w.grid_id = sel.grid_id AND w.week = :week
ORDER BY g.code
"""

TAGS_SQL = f"""
WITH {_SEL},
due AS (
  SELECT d.grid_id, d.tag, sum(d.delta) AS n
  FROM report_household_deltas d JOIN sel USING (grid_id)
  WHERE d.tag <> '' AND d.week <= :week
  GROUP BY d.grid_id, d.tag),
done AS (
  SELECT t.grid_id, t.tag, t.done AS n
  FROM report_grid_week_tags t JOIN sel USING (grid_id)
  WHERE t.week = :week)
SELECT COALESCE(due.grid_id, done.grid_id) AS grid_id, COALESCE(due.tag, done.tag) AS tag,
       COALESCE(due.n, 0) AS due, COALESCE(done.n, 0) AS done
FROM due FULL JOIN done ON done.grid_id = due.grid_id AND done.tag = due.tag
"""

TASKS_SQL = f"""
WITH {_SEL}
SELECT t.grid_id,
       count(*) AS opened,
       count(*) FILTER (WHERE t.first_contact_at IS NOT NULL
                          AND t.first_contact_at
                              <= COALESCE(t.first_contact_due_at, t.first_contact_at))
         AS responded,
       count(*) FILTER (WHERE t.status = ANY(CAST(:resolved AS text[]))) AS resolved,
       count(*) FILTER (WHERE NOT t.status = ANY(CAST(:resolved AS text[]))
                          AND t.due_at < :cutoff) AS overdue,
       count(t.satisfaction) AS rated,
       count(*) FILTER (WHERE t.satisfaction IN ('satisfied', 'basically_satisfied'))
         AS satisfied
FROM tasks t JOIN sel USING (grid_id)
WHERE t.created_at >= :start AND t.created_at < :end
GROUP BY t.grid_id
"""

WORKERS_SQL = f"""
WITH {_SEL},
v AS (
  SELECT w.worker_id, sum(w.visits) AS visits, sum(w.households) AS households
  FROM report_worker_weeks w JOIN sel USING (grid_id)
  WHERE w.week = :week
  GROUP BY w.worker_id),
members AS (
  SELECT ug.user_id AS worker_id FROM user_grids ug JOIN sel USING (grid_id)
  UNION SELECT worker_id FROM v
  UNION SELECT s.worker_id FROM shifts s JOIN sel USING (grid_id)
        WHERE s.date BETWEEN :monday AND :sunday),
posts AS (
  SELECT s.worker_id,
         count(*) FILTER (WHERE s.post = 'A') AS a_days,
         count(*) FILTER (WHERE s.post = 'B') AS b_days
  FROM shifts s JOIN rosters r ON r.id = s.roster_id AND r.status = 'published'
  WHERE s.date BETWEEN :monday AND :sunday AND s.worker_id IN (SELECT worker_id FROM members)
  GROUP BY s.worker_id)
SELECT u.id, u.username, u.display_name, u.community_code,
       COALESCE(v.visits, 0) AS visits, COALESCE(v.households, 0) AS households,
       COALESCE(p.a_days, 0) AS a_days, COALESCE(p.b_days, 0) AS b_days
FROM members m
JOIN users u ON u.id = m.worker_id AND u.role IN ('worker', 'grid_leader')
LEFT JOIN v ON v.worker_id = m.worker_id
LEFT JOIN posts p ON p.worker_id = m.worker_id
ORDER BY u.display_name, u.id
"""

TREND_SQL = f"""
WITH {_SEL},
weeks AS (SELECT unnest(CAST(:weeks AS text[])) AS week),
hh AS (
  SELECT w.week, sum(d.delta) AS n
  FROM weeks w
  JOIN report_household_deltas d ON d.tag = '' AND d.week <= w.week
  JOIN sel ON sel.grid_id = d.grid_id
  GROUP BY w.week),
vis AS (
  SELECT gw.week, sum(gw.visited) AS visited
  FROM report_grid_weeks gw JOIN sel USING (grid_id)
  WHERE gw.week = ANY(CAST(:weeks AS text[]))
  GROUP BY gw.week)
SELECT weeks.week, COALESCE(hh.n, 0) AS households, COALESCE(vis.visited, 0) AS visited
FROM weeks LEFT JOIN hh USING (week) LEFT JOIN vis USING (week)
ORDER BY weeks.week
"""

SECTIONS = {
    "grids": GRIDS_SQL,
    "tags": TAGS_SQL,
    "tasks": TASKS_SQL,
    "workers": WORKERS_SQL,
    "trend": TREND_SQL,
}


def section_params(week: str, grid_ids: list[int]) -> dict[str, Any]:
    """The bind parameters of every section (also what bench/report.py runs directly)."""
    start, end = week_bounds(week)
    days = week_dates(week)
    return {
        "grid_ids": grid_ids,
        "week": week,
        "weeks": [shift_week(week, -i) for i in range(TREND_WEEKS - 1, -1, -1)],
        "start": start,
        "end": end,
        # Overdue as the week closed, so a past week reads the same whenever it is run.
        "cutoff": end,
        "resolved": list(RESOLVED_STATUSES),
        "monday": days[0],
        "sunday": days[-1],
    }


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _tasks_dict(r: Rates) -> dict[str, Any]:
    return r.as_dict()


def _grid_block(households: dict[str, int], w: dict[str, int]) -> dict[str, Any]:
    total = households["residence"] + households["business"]
    return {
        "households": total,
        "households_by_kind": dict(households),
        "visited": w["visited"],
        "coverage": _pct(w["visited"], total),
        "visits": w["visits"],
        "visits_by_grade": {g: w[g] for g in GRADES},
        "relief_visits": w["relief"],
        "unregistered_visits": w["unregistered"],
        "not_visited_2w": max(total - w["visited_2w"], 0),
    }


def _tags_list(due: dict[str, int], done: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {
            "tag": tag,
            "due": due.get(tag, 0),
            "done": done.get(tag, 0),
            "rate": _pct(done.get(tag, 0), due.get(tag, 0)),
        }
        for tag in CARE_TAGS
        if due.get(tag) or done.get(tag)
    ]


def coverage_report(
    session: Session, selection: Selection, week: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """The report of the selection for the week, as a JSON-ready dict (see docs/report.md)."""
    params = section_params(week, selection.grid_ids)
    run = {
        name: session.execute(text(sql), params).mappings().all() for name, sql in SECTIONS.items()
    }
    tags: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
    for r in run["tags"]:
        due, done = tags.setdefault(r["grid_id"], ({}, {}))
        due[r["tag"]], done[r["tag"]] = int(r["due"]), int(r["done"])
    tasks = {
        r["grid_id"]: Rates(
            r["opened"], r["responded"], r["resolved"], r["overdue"], r["rated"], r["satisfied"]
        )
        for r in run["tasks"]
    }
    empty = Rates(0, 0, 0, 0, 0, 0)
    counters = ("visits", "met", "visited", "visited_2w", *GRADES, "relief", "unregistered")
    grids, communities = [], {}
    total_hh = {"residence": 0, "business": 0}
    total_w = dict.fromkeys(counters, 0)
    total_due: dict[str, int] = {}
    total_done: dict[str, int] = {}
    total_tasks = [0] * 6
    for r in run["grids"]:
        households = {"residence": int(r["residence"]), "business": int(r["business"])}
        w = {k: int(r[k]) for k in counters}
        due, done = tags.get(r["id"], ({}, {}))
        rates = tasks.get(r["id"], empty)
        grids.append(
            {
                "code": r["code"],
                "name": r["name"],
                "community_code": r["community_code"],
                **_grid_block(households, w),
                "must_visit": _tags_list(due, done),
                "tasks": _tasks_dict(rates),
            }
        )
        for k in households:
            total_hh[k] += households[k]
        for k in counters:
            total_w[k] += w[k]
        for k, n in due.items():
            total_due[k] = total_due.get(k, 0) + n
        for k, n in done.items():
            total_done[k] = total_done.get(k, 0) + n
        for i, n in enumerate(
            (
                rates.opened,
                rates.responded_in_time,
                rates.resolved,
                rates.overdue,
                rates.rated,
                rates.satisfied,
            )
        ):
            total_tasks[i] += n
        communities.setdefault(r["community_code"], []).append(grids[-1])
    trend = [
        {
            "week": r["week"],
            "households": int(r["households"]),
            "visited": int(r["visited"]),
            "coverage": _pct(int(r["visited"]), int(r["households"])),
        }
        for r in run["trend"]
    ]
    workers = [
        {
            "id": r["id"],
            "username": r["username"],
            "name": r["display_name"],
            "visits": int(r["visits"]),
            "households": int(r["households"]),
            "a_days": int(r["a_days"]),
            "b_days": int(r["b_days"]),
        }
        for r in run["workers"]
    ]
    start, end = week_bounds(week)
    return {
        "week": week,
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "level": selection.level,
        "code": selection.code,
        "name": selection.name,
        "generated_at": (now or datetime.now(start.tzinfo)).isoformat(),
        "grids": grids,
        "communities": [_community_total(code, rows) for code, rows in communities.items()],
        "workers": workers,
        "totals": {
            "grids": len(grids),
            **_grid_block(total_hh, total_w),
            "must_visit": _tags_list(total_due, total_done),
            "tasks": _tasks_dict(Rates(*total_tasks)),
        },
        "trend": trend,
    }


def _community_total(code: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    households = sum(r["households"] for r in rows)
    visited = sum(r["visited"] for r in rows)
    return {
        "code": code,
        "grids": len(rows),
        "households": households,
        "visited": visited,
        "coverage": _pct(visited, households),
        "visits": sum(r["visits"] for r in rows),
        "not_visited_2w": sum(r["not_visited_2w"] for r in rows),
        "tasks_opened": sum(r["tasks"]["opened"] for r in rows),
        "tasks_resolved": sum(r["tasks"]["resolved"] for r in rows),
        "tasks_overdue": sum(r["tasks"]["overdue"] for r in rows),
    }


def grid_shapes(session: Session, grid_ids: list[int], week: str) -> dict[str, Any]:
    """Each grid's boundary as it stood at the end of the week, simplified, as GeoJSON dicts."""
    import json

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
