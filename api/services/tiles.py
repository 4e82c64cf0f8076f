"""Mapbox vector tiles from PostGIS: one ST_AsMVT query per tile and layer, scoped to the caller."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Integer,
    Numeric,
    String,
    Text,
    all_,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, UUID
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement, Select, Subquery

from api import errors
from api.db import connection_settings, is_any_of, set_local
from api.models import (
    AuditEntry,
    Grid,
    GridVersion,
    Household,
    HouseholdHistory,
    HouseholdLastVisit,
    Task,
    Visit,
)
from api.models.reports import ReportGridWeek, ReportHouseholdDelta
from api.scope import Scope
from api.services.audit import Reader
from api.services.ledger import NOT_A_VISIT
from api.services.sessions import TokenCheck, still_valid
from api.services.weeks import current_week, shift_week, week_bounds

LAYERS = ("grids", "households", "visits", "tasks")
# Households are drawn from HOUSEHOLDS_MIN_ZOOM (below it the grids layer carries the counts:
# a z14 tile of the city holds ~15,000 households, more than a map can show or a tile can
# carry in 50 ms), one feature per stair entrance below HOUSEHOLDS_FULL_ZOOM, one per
# household from it.
HOUSEHOLDS_MIN_ZOOM = 15
HOUSEHOLDS_FULL_ZOOM = 16
# The first zoom at which a layer has features; below it the tile is empty, answered without
# SQL. Visits (one point per visit, ~800,000 a week in the city) start with households: by
# Wednesday a z14 tile of the city held ~10,000 of them (630 KiB, p95 95 ms), beyond what a
# map can show or a tile can carry in 50 ms; a z15 tile is a quarter of that. Below it the
# grids layer carries the week's coverage.
VISITS_MIN_ZOOM = HOUSEHOLDS_MIN_ZOOM
MIN_ZOOM = {"grids": 0, "households": HOUSEHOLDS_MIN_ZOOM, "visits": VISITS_MIN_ZOOM, "tasks": 0}
MAX_ZOOM = 22
EXTENT = 4096
ETAG_HEX = 32  # hex digits of the SHA-256 in a tile's ETag
BUFFER = 64
# The five must-visit groups (五必访) among the register's care tags.
MUST_VISIT_TAGS = (
    "low_income",
    "migrant",
    "elderly_80",
    "living_alone",
    "special_care",
    "child_in_difficulty",
    "woman_in_difficulty",
    "disability",
)


# Features' columns the tile does not draw, for the audit entry: the visit's UUID as the audit
# log stores it (the tile carries its text, `visit_id`: ST_AsMVT writing the UUID column itself
# cost ~1 ms more a heavy tile, and casting the text back ~1 ms), and the records a feature
# standing for several of them (a stair entrance) discloses.
RECORD_UUID = "record_uuid"
AUDIT_IDS = "audited_ids"
HIDDEN = (RECORD_UUID, AUDIT_IDS)

# Layers that draw where workers stood: visits, and the follow-up tasks of premises visits
# (placed at the visit's point). Snapped to ~100 m for roles without `tracks`.
TRACK_LAYERS = ("visits", "tasks")


@dataclass(frozen=True)
class TileRequest:
    layer: str
    z: int
    x: int
    y: int
    week: str
    now: datetime
    # False: workers' visit positions snapped to ~100 m (roles without access to tracks).
    precise_tracks: bool = True
    # The ETags the client holds (If-None-Match): a tile it already has is not disclosed again.
    known_etags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TileShape:
    """What decides a tile statement's SQL text; everything else about a tile is a parameter."""

    layer: str
    full: bool  # households: one feature per household (else one per stair entrance)
    precise_tracks: bool
    # A week other than the current one: grids drawn from the grids' versions (as the report
    # reads it) rather than today's grids; households only those registered by its end.
    versions: bool = False


def shape_of(req: TileRequest) -> TileShape:
    return TileShape(
        req.layer,
        req.layer == "households" and req.z >= HOUSEHOLDS_FULL_ZOOM,
        req.layer not in TRACK_LAYERS or req.precise_tracks,
        req.layer in ("grids", "households") and req.week != current_week(req.now),
    )


# The parameters of every tile statement (values from `tile_params`).
_Z = bindparam("tile_z", type_=Integer, required=False)
_X = bindparam("tile_x", type_=Integer, required=False)
_Y = bindparam("tile_y", type_=Integer, required=False)
_WEEK = bindparam("tile_week", type_=String, required=False)
_START = bindparam("tile_week_start", type_=DateTime(timezone=True), required=False)
_END = bindparam("tile_week_end", type_=DateTime(timezone=True), required=False)
# Ages and overdue flags are read at the end of the week, or now for the current week.
_REF = bindparam("tile_reference_time", type_=DateTime(timezone=True), required=False)
# The start of the week before (the grids layer's coverage, as the report's `since`).
_SINCE = bindparam("tile_since", type_=DateTime(timezone=True), required=False)
_AUDIT_USER = bindparam("audit_user_id", type_=BigInteger, required=False)
_AUDIT_IP = bindparam("audit_ip", type_=INET, required=False)
_AUDIT_PATH = bindparam("audit_path", type_=String, required=False)
_KNOWN_ETAGS = bindparam("known_etags", type_=ARRAY(String), required=False)


def _week_params(week: str, now: datetime) -> dict:
    start, end = week_bounds(week)
    return {
        "tile_week": week,
        "tile_week_start": start,
        "tile_week_end": end,
        "tile_reference_time": min(end, now.astimezone(UTC)),
    }


def tile_params(req: TileRequest, reader: Reader | None = None) -> dict:
    params = {
        "tile_z": req.z,
        "tile_x": req.x,
        "tile_y": req.y,
        **_week_params(req.week, req.now),
    }
    if req.layer == "grids":
        params["tile_since"] = week_bounds(shift_week(req.week, -1))[0]
    if reader is not None:
        params.update(
            audit_user_id=reader.user_id,
            audit_ip=reader.ip,
            audit_path=reader.path,
            known_etags=list(req.known_etags),
        )
    return params


def check_tile(layer: str, z: int, x: int, y: int) -> None:
    """404 for an unknown layer, 422 for a tile address outside the XYZ pyramid."""
    if layer not in LAYERS:
        raise errors.NotFound(f"No tile layer {layer!r}; the layers are {', '.join(LAYERS)}.")
    if not 0 <= z <= MAX_ZOOM:
        raise errors.Unprocessable(f"Zoom {z} is outside 0..{MAX_ZOOM}.", field="z")
    side = 1 << z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < side:
            raise errors.Unprocessable(
                f"{name}={value} is outside 0..{side - 1} at zoom {z}.", field=name
            )


def _envelopes():
    env = func.ST_TileEnvelope(_Z, _X, _Y)
    return env, func.ST_Transform(env, 4326)


def _mvt_geom(geom, env3857):
    return func.ST_AsMVTGeom(func.ST_Transform(geom, 3857), env3857, EXTENT, BUFFER, True).label(
        "geom"
    )


def _grid_coverage(grid_id) -> tuple[ColumnElement[int], ColumnElement[int]]:
    """The grid's `households` and `visited` for the week as the weekly report counts them
    (REPORT_SQL's `hh`, `gw`, `changed`, `ch` and `fix`; docs/report.md): the households in
    the grid as the week ends; those of them found at home in the week (a visit whose outcome
    is not `nobody_home`), each once, wherever the visit was recorded. Read from the report's
    trigger-kept aggregates, so the map and the report give the same figures and no grid reads
    above 100 % after a household moved or a grid was redrawn mid-week.

    - households: the running sum of `report_household_deltas` up to the week (a primary-key
      range of the grid);
    - visited: `report_grid_weeks.visited` (a primary-key probe: each household counted in the
      grid its visit was recorded in), corrected as the report corrects it for the households
      whose history in this grid changed since the week before began (a row of the grid closed
      since, or opened by a move into it: the partial indexes of migration 0041; an ordinary
      week has none): each is taken out where its visit was recorded and counted in the grid it
      ends the week in."""
    deltas = ReportHouseholdDelta
    households = (
        select(func.coalesce(func.sum(deltas.delta), 0))
        .where(deltas.grid_id == grid_id, deltas.tag == "", deltas.week <= _WEEK)
        .scalar_subquery()
    )
    kept = (
        select(ReportGridWeek.visited)
        .where(ReportGridWeek.grid_id == grid_id, ReportGridWeek.week == _WEEK)
        .scalar_subquery()
    )
    history = HouseholdHistory
    changed = union(
        select(history.household_id)
        .where(history.grid_id == grid_id, history.valid_to >= _SINCE)
        .correlate_except(history),
        select(history.household_id)
        .where(
            history.grid_id == grid_id,
            history.from_grid_id.is_not(None),
            history.valid_from >= _SINCE,
        )
        .correlate_except(history),
    ).subquery("changed")

    def met(*where):
        # ix_visits_household_visited; `week` pins the visit to the week as the report does.
        return (
            select(literal(1))
            .where(
                Visit.household_id == changed.c.household_id,
                Visit.visited_at >= _START,
                Visit.visited_at < _END,
                Visit.week == _WEEK,
                Visit.outcome != "nobody_home",
                *where,
            )
            .correlate_except(Visit)
            .exists()
        )

    ends_here = (
        select(history.grid_id)
        .where(
            history.household_id == changed.c.household_id,
            history.valid_from < _END,
            or_(history.valid_to.is_(None), history.valid_to >= _END),
        )
        .order_by(history.valid_from.desc())
        .limit(1)
        .scalar_subquery()
        == grid_id
    )
    fix = (
        select(
            func.coalesce(
                func.sum(
                    case((and_(ends_here, met()), 1), else_=0)
                    - case((met(Visit.grid_id == grid_id), 1), else_=0)
                ),
                0,
            )
        )
        .select_from(changed)
        .scalar_subquery()
    )
    return households, func.coalesce(kept, 0) + fix


def grids_features(scope: Scope, shape: TileShape) -> Select:
    env3857, env4326 = _envelopes()
    households, visited = _grid_coverage(Grid.id)
    # Each count once per grid: computed in a fenced subquery (OFFSET 0), then read twice, by
    # the figure and by the ratio (a scalar subquery written twice is planned and run twice).
    # Scalar subqueries, not LATERAL joins: the same work, and planned in half the time (a
    # small tile's statement is mostly planning).
    columns = [
        Grid.id.label("id"),
        Grid.code.label("code"),
        Grid.name.label("name"),
        cast(households, Integer).label("households"),
        cast(visited, Integer).label("visited"),
    ]
    if shape.versions:
        # Another week: the grids the report lists for it (a version of theirs overlaps the
        # week, retired since or not), each drawn as it stood when the week ended (its last
        # version begun before the end), as the report's map draws it (reports.grid_shapes).
        version, later = aliased(GridVersion), aliased(GridVersion)
        drawn = (
            select(*columns, version.boundary.label("boundary"))
            .join(version, version.grid_id == Grid.id)
            .where(
                version.boundary.op("&&")(env4326),  # GiST: ix_grid_versions_boundary
                version.valid_from < _END,
                or_(version.valid_to.is_(None), version.valid_to > _START),
                ~exists().where(
                    later.grid_id == version.grid_id,
                    later.valid_from > version.valid_from,
                    later.valid_from < _END,
                ),
                scope.grids(),
            )
        )
    else:
        drawn = select(*columns, Grid.boundary.label("boundary")).where(
            Grid.retired_at.is_(None),
            Grid.boundary.op("&&")(env4326),  # GiST: ix_grids_boundary_active
            scope.grids(),
        )
    counted = drawn.offset(0).subquery("g")
    # No households: no coverage (null, a property ST_AsMVT leaves out), as the report's null;
    # until 2026-12-05 it was 0 and the map painted an empty grid red.
    coverage = case(
        (
            counted.c.households > 0,
            func.round(cast(counted.c.visited, Numeric) / counted.c.households, 3),
        ),
        else_=null(),
    )
    return select(
        counted.c.id,
        counted.c.code,
        counted.c.name,
        counted.c.households,
        counted.c.visited,
        cast(coverage, Float).label("coverage"),
        _WEEK.label("week"),
        _mvt_geom(counted.c.boundary, env3857),
    )


def _households_with_last_visit(*where, as_it_stood: bool = False) -> Subquery:
    """The households `where` selects, each with its last visit before the week's end
    (`last_visited_at`: the latest that found someone, outcome other than `nobody_home`, as the
    weekly report counts a visit; null: none) and its last attempt of any outcome before then
    (`last_attempt_at`): what the households layer's statuses are read from.

    `as_it_stood` (another week): each household's kind and care tags (`must_visit`) as they
    were at the week's end (its `household_history` row then, as the report's ledger reads
    them; an erased household's tags none), not today's."""
    # household_last_visits (kept by triggers on visits) holds each household's latest visit
    # and latest attempt: one primary-key probe (a LATERAL fenced by OFFSET 0, so the planner
    # cannot turn it into a hash join over all 900 k rows for a tile of a few thousand). When
    # the row's value falls before the week's end it is the answer (always, for the current
    # week). Otherwise (a past week) one backward probe of ix_visits_household_visited finds
    # it; the CASE runs that probe only for those rows. "Visited this week" is that visit
    # falling inside the week (the week column is the ISO week of visited_at in Asia/Shanghai,
    # as week_bounds is). OFFSET 0 fences keep each probe to one run per household.
    last = HouseholdLastVisit
    known = (
        select(last.last_visited_at.label("visited"), last.last_attempt_at.label("attempted"))
        .where(last.household_id == Household.id)
        .offset(0)
        .lateral("known")
    )
    tags, kind = Household.tags, Household.kind
    boxed = select().select_from(Household).outerjoin(known, true())
    if as_it_stood:
        # Until 2026-12-07 a past week drew today's tags: a household tagged since was a
        # must-visit dot in a week it was not one, the report's figures for it said otherwise.
        history = HouseholdHistory
        then = (
            select(history.kind, history.tags)
            .where(
                history.household_id == Household.id,
                history.valid_from < _END,
                or_(history.valid_to.is_(None), history.valid_to >= _END),
            )
            .order_by(history.valid_from.desc())
            .limit(1)
            .lateral("then")
        )
        boxed = boxed.outerjoin(then, true())
        kind = func.coalesce(then.c.kind, Household.kind)
        tags = case((Household.erased_at.is_(None), func.coalesce(then.c.tags, tags)), else_=tags)
    must = tags.op("&&")(cast(list(MUST_VISIT_TAGS), ARRAY(Text)))
    boxed = (
        boxed.add_columns(
            Household.id.label("id"),
            Household.grid_id.label("grid_id"),
            Household.building.label("building"),
            Household.unit.label("unit"),
            Household.room.label("room"),
            kind.label("kind"),
            must.label("must_visit"),
            known.c.visited.label("known_visited"),
            known.c.attempted.label("known_attempted"),
            Household.location.label("location"),
        )
        .where(*where)
        .offset(0)
        .subquery("h0")
    )

    def before_the_end(known_at, *outcome):
        probe = (
            select(func.max(Visit.visited_at))
            .where(Visit.household_id == boxed.c.id, Visit.visited_at < _END, *outcome)
            .scalar_subquery()
        )
        return case((or_(known_at.is_(None), known_at < _END), known_at), else_=probe)

    visited_at = before_the_end(boxed.c.known_visited, Visit.outcome != NOT_A_VISIT)
    attempted_at = before_the_end(boxed.c.known_attempted)
    return (
        select(
            *[c for c in boxed.c if not c.name.startswith("known_")],
            visited_at.label("last_visited_at"),
            attempted_at.label("last_attempt_at"),
        )
        .offset(0)
        .subquery("h")
    )


@dataclass(frozen=True)
class VisitState:
    """A household's visit state in the week, as columns over `_households_with_last_visit`."""

    visited_this_week: ColumnElement[bool]
    days_since_visit: ColumnElement[int]  # null: never visited
    status: ColumnElement[str]  # visited / due / overdue
    last_visited: ColumnElement[str]  # Asia/Shanghai, YYYY-MM-DD HH24:MI
    last_attempt: ColumnElement[str]  # any outcome, nobody_home included; Asia/Shanghai


def _visit_state(inner: Subquery) -> VisitState:
    """Visited in the week; else overdue when never visited or last visited 7 days or more
    before the reference time; else due. A visit is one that found someone, as the weekly
    report counts it: an attempt (`nobody_home`) is only the `last_attempt`."""
    visited_this_week = func.coalesce(inner.c.last_visited_at >= _START, false())
    days = cast(
        # date_part gives double precision; EXTRACT gives numeric since PostgreSQL 14, and
        # numeric arithmetic per household cost a third of the tile's time.
        func.floor(func.date_part("epoch", _REF - inner.c.last_visited_at) / 86400),
        Integer,
    )
    status = case(
        (visited_this_week, literal("visited")),
        (or_(inner.c.last_visited_at.is_(None), days >= 7), literal("overdue")),
        else_=literal("due"),
    )
    last_visited, last_attempt = (
        func.to_char(func.timezone("Asia/Shanghai", at), "YYYY-MM-DD HH24:MI")
        for at in (inner.c.last_visited_at, inner.c.last_attempt_at)
    )
    return VisitState(visited_this_week, days, status, last_visited, last_attempt)


def household_visit_states(
    session: Session, household_ids: Sequence[int], week: str, now: datetime
) -> dict[int, dict[str, Any]]:
    """Each household's visit state in the week, as the households layer draws its dot (the
    same statement's columns): `status`, `days_since_visit`, `last_visited`, `last_attempt`.
    Ages are read at the end of the week, or now for the current week. The caller has scoped
    the ids."""
    if not household_ids:
        return {}
    inner = _households_with_last_visit(
        is_any_of(Household.id, "household_ids", household_ids, Integer)
    )
    state = _visit_state(inner)
    rows = session.execute(
        select(
            inner.c.id,
            state.status.label("status"),
            state.days_since_visit.label("days_since_visit"),
            state.last_visited.label("last_visited"),
            state.last_attempt.label("last_attempt"),
        ),
        _week_params(week, now),
    )
    return {
        row.id: {
            "week": week,
            "status": row.status,
            "days_since_visit": row.days_since_visit,
            "last_visited": row.last_visited,
            "last_attempt": row.last_attempt,
        }
        for row in rows
    }


def households_features(scope: Scope, shape: TileShape) -> Select:
    env3857, env4326 = _envelopes()
    where = [Household.location.op("&&")(env4326), scope.households()]  # GiST on location
    if shape.versions:
        # Another week: the households registered by its end (a history row begun before it,
        # ix_household_history_household), those its grids' figures count. Until 2026-12-05 a
        # past week drew today's register: households registered since were red dots, "never
        # visited", over grids whose figures counted none of them. One that left the register
        # after the week was in it then (the report counts it there); one that left during it
        # is counted nowhere that week.
        history = HouseholdHistory
        where.append(
            exists().where(history.household_id == Household.id, history.valid_from < _END)
        )
        where.append(or_(Household.removed_at.is_(None), Household.removed_at >= _END))
    else:
        where.append(Household.removed_at.is_(None))  # out of the register: off the map
    inner = _households_with_last_visit(*where, as_it_stood=bool(shape.versions))
    state = _visit_state(inner)
    visited_this_week, days, status = state.visited_this_week, state.days_since_visit, state.status
    last_visited = state.last_visited
    if shape.full:
        return select(
            inner.c.id,
            inner.c.grid_id,
            inner.c.building,
            inner.c.unit,
            inner.c.room,
            inner.c.kind,
            inner.c.must_visit,
            and_(inner.c.must_visit, ~visited_this_week).label("must_visit_due"),
            visited_this_week.label("visited_this_week"),
            days.label("days_since_visit"),
            last_visited.label("last_visited"),
            state.last_attempt.label("last_attempt"),
            status.label("status"),
            literal(1).label("households"),
            _mvt_geom(inner.c.location, env3857),
        )
    # Below HOUSEHOLDS_FULL_ZOOM households at one point are one feature: the flats of a stair
    # entrance share its point, so the map drew them on top of each other anyway. The feature
    # carries the worst status among them, the must-visit flag if any is due, and how many
    # households it stands for; its id is the lowest household id (the popup's history link).
    per = select(
        inner.c.id,
        inner.c.grid_id,
        inner.c.building,
        inner.c.unit,
        inner.c.kind,
        inner.c.must_visit,
        visited_this_week.label("visited_this_week"),
        days.label("days"),
        inner.c.last_visited_at,
        status.label("status"),
        inner.c.location,
    ).subquery("p")
    worst = case(
        (func.bool_or(per.c.status == "overdue"), literal("overdue")),
        (func.bool_or(per.c.status == "due"), literal("due")),
        else_=literal("visited"),
    )
    return select(
        func.min(per.c.id).label("id"),
        # Every household the entrance stands for: the feature tells of each (how many, the
        # worst state, whether any is a must-visit household), so the audit names each.
        func.array_agg(per.c.id).label(AUDIT_IDS),
        per.c.grid_id,
        func.min(per.c.building).label("building"),
        func.min(per.c.unit).label("unit"),
        literal("").label("room"),
        per.c.kind,
        func.bool_or(per.c.must_visit).label("must_visit"),
        func.bool_or(and_(per.c.must_visit, ~per.c.visited_this_week)).label("must_visit_due"),
        func.bool_and(per.c.visited_this_week).label("visited_this_week"),
        func.max(per.c.days).label("days_since_visit"),
        func.to_char(
            func.timezone("Asia/Shanghai", func.min(per.c.last_visited_at)), "YYYY-MM-DD HH24:MI"
        ).label("last_visited"),
        worst.label("status"),
        func.count().label("households"),
        _mvt_geom(per.c.location, env3857),
    ).group_by(per.c.grid_id, per.c.kind, per.c.location)


def visits_features(scope: Scope, shape: TileShape) -> Select:
    env3857, env4326 = _envelopes()
    point = Visit.location if shape.precise_tracks else func.ST_SnapToGrid(Visit.location, 0.001)
    return select(
        cast(Visit.id, String).label("visit_id"),
        Visit.id.label(RECORD_UUID),  # for the audit entry; not a property of the tile
        Visit.household_id.label("household_id"),
        Visit.grid_id.label("grid_id"),
        Visit.worker_id.label("worker_id"),
        Visit.outcome.label("outcome"),
        Visit.grade.label("grade"),
        func.array_to_string(Visit.reasons, ",").label("reasons"),
        func.to_char(func.timezone("Asia/Shanghai", Visit.visited_at), "YYYY-MM-DD HH24:MI").label(
            "visited_at"
        ),
        _mvt_geom(point, env3857),
    ).where(
        Visit.week == _WEEK,
        Visit.location.op("&&")(env4326),  # GiST: ix_visits_location
        scope.in_grids(Visit.grid_id),
    )


def tasks_features(scope: Scope, shape: TileShape) -> Select:
    env3857, env4326 = _envelopes()
    overdue = and_(Task.due_at < _REF, or_(Task.resolved_at.is_(None), Task.resolved_at > _REF))

    def branch(point, drawn=None):
        return select(
            Task.id.label("id"),
            Task.title.label("title"),
            Task.status.label("status"),
            Task.urgency.label("urgency"),
            Task.source.label("source"),
            Task.grid_id.label("grid_id"),
            func.to_char(func.timezone("Asia/Shanghai", Task.due_at), "YYYY-MM-DD HH24:MI").label(
                "due_at"
            ),
            overdue.label("overdue"),
            # Drawn beside the household's dot where households are drawn (the map), not over it.
            Task.household_id.is_not(None).label("at_household"),
            (point if drawn is None else drawn).label("point"),
        ).where(
            # Open at the reference time (now, or the end of a past week): not yet done (resolved,
            # called back: `tasks.DONE_STATUSES`, as the task list and the report count it; a
            # reopening clears `resolved_at`), closed or passed on. Until 2026-12-05 a resolved
            # task was drawn as open until someone closed it.
            Task.created_at < _REF,
            or_(Task.resolved_at.is_(None), Task.resolved_at > _REF),
            or_(Task.closed_at.is_(None), Task.closed_at > _REF),
            or_(Task.transferred_at.is_(None), Task.transferred_at > _REF),
            scope.in_grids(Task.grid_id),
            point.op("&&")(env4326),
        )

    # create_task stores every task's point (the household's, or the one given): the box test
    # runs on GiST ix_tasks_location. A task stored without one is drawn at its household.
    # A premises visit's follow-up task stands where the worker stood (task_from_visit): part
    # of their track, snapped like the visits layer for roles without `tracks`. The box test
    # stays on the stored point (the index); the snapped point is within the tile's buffer.
    drawn = None
    if not shape.precise_tracks:
        drawn = case(
            (
                and_(Task.source == "visit", Task.household_id.is_(None)),
                func.ST_SnapToGrid(Task.location, 0.001),
            ),
            else_=Task.location,
        )
    located = branch(Task.location, drawn)
    unlocated = (
        branch(Household.location)
        .join(Household, Household.id == Task.household_id)
        .where(Task.location.is_(None))
    )
    inner = union_all(located, unlocated).subquery("t")
    return select(*[c for c in inner.c if c.name != "point"], _mvt_geom(inner.c.point, env3857))


_BUILDERS = {
    "grids": (grids_features, "id"),
    "households": (households_features, "id"),
    "visits": (visits_features, None),
    "tasks": (tasks_features, "id"),
}
# The record each feature discloses, for the audit log (grids are aggregates: none), and the
# feature's column that names it.
AUDITED = {
    "households": ("household", "id"),
    "visits": ("visit", RECORD_UUID),
    "tasks": ("task", "id"),
}
# The personal fields a tile's features carry.
TILE_FIELDS = {
    "household": ("address", "location", "must_visit", "last_visited", "last_attempt"),
    "visit": ("location", "worker", "outcome", "visited_at"),
    "task": ("title", "location", "status"),
}


def _statement(scope: Scope, shape: TileShape, audited: bool, guard: Guard | None = None) -> Select:
    """The one SQL statement that answers a tile: ST_AsMVT over the layer's features, and the
    tile's ETag. When `audited` and the layer discloses records, the same statement writes the
    audit entry of the records whose geometry lands in the tile (a data-modifying WITH): no
    round trip and no id list through Python, whatever the tile holds. A client revalidating
    the very bytes it holds (304) is not shown anything new: no entry.

    The audit's id list is a second aggregate of the pass that encodes the tile: each feature
    is computed once and streamed into both (OFFSET 0 keeps its geometry from being computed
    again for the FILTER). Until 2026-12-03 (night) the features were a CTE read twice, once by
    ST_AsMVT and once by the audit: every feature row, geometry and all, written to a
    tuplestore and read back. A layer whose features have no column the tile does not draw
    (tasks; households from zoom 16) aggregates the fenced rows directly; the others go through
    a LATERAL projection per feature (`_encoded_with_hidden`): measured on the city's heaviest
    visits tile, the LATERAL with the UUID kept apart cost less than ST_AsMVT writing the UUID
    column as text itself (15.0 against 15.6 ms, 2026-12-04)."""
    build, id_column = _BUILDERS[shape.layer]
    features = build(scope, shape)
    # With the token's check (`guard`): one row, computed once; no feature unless it holds
    # (a one-time filter: the layer's scan does not run), hence no audit entry either.
    valid = true()
    if guard is not None:
        checked = select(still_valid(*guard).label("valid")).cte("checked")
        valid = select(checked.c.valid).scalar_subquery()
        features = features.where(valid)
    inner = features.subquery("f")
    # ST_AsMVT makes a property of every column of its row but the geometry and the feature id
    # (which it consumes: keep `id` as a property too).
    properties = [c for c in inner.c if c.name not in HIDDEN]
    if id_column:
        properties.append(inner.c[id_column].label("fid"))
    args = [literal_column("q"), literal(shape.layer), literal(EXTENT), literal("geom")]
    if id_column:
        args.append(literal("fid"))
    mvt = func.ST_AsMVT(*args).label("mvt")
    if not (audited and shape.layer in AUDITED):
        encoded = select(mvt).select_from(select(*properties).subquery("q")).subquery("m")
        return select(encoded.c.mvt, _etag_sql(encoded.c.mvt).label("etag"), valid)
    resource, key = AUDITED[shape.layer]
    hidden = [c for c in inner.c if c.name in HIDDEN]
    # OFFSET 0 keeps each feature's geometry from being computed again for the FILTER: ST_AsMVT
    # encodes only the features whose geometry lands in the tile, and those are shown.
    if not hidden:
        q = select(*properties).offset(0).subquery("q")
        shown = func.array_agg(q.c[key]).filter(q.c.geom.is_not(None)).label("shown")
        encoded = select(mvt, shown).select_from(q).subquery("m")
    else:
        encoded = _encoded_with_hidden(mvt, properties, hidden, key)
    etag = _etag_sql(encoded.c.mvt).label("etag")
    # Read by the answer and by the audit: computed once.
    tile = select(encoded.c.mvt, etag, encoded.c.shown).cte("t")
    stmt = select(tile.c.mvt, tile.c.etag, valid)
    return stmt.add_cte(_audit_insert(tile, resource))


def _encoded_with_hidden(mvt, properties: list, hidden: list, key: str) -> Subquery:
    """The tile and the records it shows, for features with columns it does not draw (`HIDDEN`):
    ST_AsMVT encodes each fenced feature's row without them (a LATERAL projection), and the
    audit's list is aggregated from them in the same pass. Features that each stand for a list
    of records (`AUDIT_IDS`, a stair entrance's households: a zoom-15 households tile) have
    their lists joined into one."""
    fenced = select(*properties, *hidden).offset(0).subquery("r")
    drawn = select(*[fenced.c[c.name] for c in properties]).correlate(fenced).lateral("q")
    landed = fenced.c.geom.is_not(None)
    if AUDIT_IDS in fenced.c:
        lists = func.string_agg(func.array_to_string(fenced.c[AUDIT_IDS], ","), ",")
        joined = func.string_to_array(lists.filter(landed), ",")
        shown = cast(joined, ARRAY(BigInteger)).label("shown")
    else:
        shown = func.array_agg(fenced.c[key]).filter(landed).label("shown")
    return select(mvt, shown).select_from(fenced).join(drawn, true()).subquery("m")


def _etag_sql(data):
    """`tile_etag` computed by PostgreSQL."""
    digest = func.left(func.encode(func.sha256(func.coalesce(data, b"")), "hex"), ETAG_HEX)
    return literal('"') + digest + literal('"')


def _audit_insert(tile, resource: str):
    """INSERT of one audit row naming the records the tile shows (`tile.c.shown`), none when
    it shows none or the client holds these bytes. Visits go by UUID."""
    int_ids = literal([], ARRAY(BigInteger))
    uuid_ids = literal([], ARRAY(UUID(as_uuid=True)))
    if resource == "visit":
        uuid_ids = tile.c.shown
    else:
        int_ids = tile.c.shown
    row = select(
        _AUDIT_USER,
        literal("read"),
        literal(resource),
        int_ids,
        uuid_ids,
        literal(list(TILE_FIELDS[resource]), ARRAY(String)),
        _AUDIT_IP,
        _AUDIT_PATH,
    ).where(tile.c.etag != all_(_KNOWN_ETAGS), func.cardinality(tile.c.shown) > 0)
    names = ["user_id", "action", "resource", "resource_ids", "resource_uuids", "fields", "ip"]
    return insert(AuditEntry.__table__).from_select(names + ["path"], row).cte("logged")


def tile_query(scope: Scope, req: TileRequest, reader: Reader | None = None) -> Select:
    """The tile's statement with its parameters bound (the API runs it precompiled)."""
    stmt = _statement(scope, shape_of(req), reader is not None)
    return stmt.params(tile_params(req, reader))


# The shape of a token check made by the tile's statement (`sessions.still_valid`'s arguments:
# with a jti, with a session, the principal's role).
Guard = tuple[bool, bool, str]


def _guard_of(check: TokenCheck) -> Guard:
    return (bool(check.jti), bool(check.sid), check.principal.role)


@lru_cache(maxsize=512)
def _compiled(
    scope: Scope, shape: TileShape, audited: bool, guard: Guard | None, dialect: Dialect
) -> tuple[str, dict]:
    """The statement's SQL text and its constant parameters, built once per shape and scope
    (keyed on the whole scope, the user included: the cache can never hand one caller's
    conditions to another, and a map session's tiles come from one user).

    Building and compiling the statement cost more than running a small tile (~4 ms against
    1-2 ms); a tile differs from its neighbours only in parameters."""
    compiled = _statement(scope, shape, audited, guard).compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}
    )
    return str(compiled), dict(compiled.params)


def _begin_tile(session: Session, req: TileRequest, audited: bool) -> bool:
    """Check the tile's address; False when the layer is not drawn at this zoom (no SQL)."""
    check_tile(req.layer, req.z, req.x, req.y)
    if req.z < MIN_ZOOM[req.layer]:
        return False
    settings = tile_settings(audited)
    if not settings.items() <= connection_settings(session.connection()).items():
        set_local(session, **settings)  # not on the tile pool: a test's connection, a tool's
    return True


def tile_settings(audited: bool) -> dict[str, str]:
    """The PostgreSQL settings a tile's statement runs with: those of the tile pool's
    connections (`api.db.Database.autocommit_pool`), else SET LOCAL (`_begin_tile`)."""
    # A tile is a short query among many at once: parallel workers only add start-up cost and
    # take the cores other requests need (measured on the city: 26 ms -> 9 ms for one tile).
    # JIT compiles a tile's expressions once its estimated cost passes jit_above_cost: 20-35 ms
    # of LLVM work for a query that runs in 10-40 ms. The text is the same for every tile of a
    # shape, so psycopg prepares it and PostgreSQL would soon plan it once for any tile: a plan
    # blind to the tile's box. A read's audit row is not worth a WAL flush of its own: an
    # asynchronous commit is still atomic; a crash may lose the last ~0.6 s of entries.
    settings = {
        "max_parallel_workers_per_gather": "0",
        "jit": "off",
        "plan_cache_mode": "force_custom_plan",
    }
    if audited:
        settings["synchronous_commit"] = "off"
    return settings


def render_tile(
    session: Session,
    scope: Scope,
    req: TileRequest,
    reader: Reader | None = None,
    check: TokenCheck | None = None,
) -> tuple[bytes, str] | None:
    """The tile's bytes (b"" when no feature of the caller's falls in it) and their ETag. With
    a `reader`, the records the tile discloses are written to the audit log by the same
    statement (the caller commits).

    With a `check`, the statement checks the caller's token too (`sessions.still_valid`) and
    answers None when it does not hold (the token dead, or `scope` no longer the user's), as
    it does for a tile drawn without SQL: the caller checks the token itself then."""
    audited = reader is not None and req.layer in AUDITED
    if not _begin_tile(session, req, audited):
        return None if check is not None else (b"", tile_etag(b""))  # see MIN_ZOOM
    guard = _guard_of(check) if check is not None else None
    dialect = session.get_bind().dialect
    sql, constants = _compiled(scope, shape_of(req), audited, guard, dialect)
    params = {**constants, **tile_params(req, reader if audited else None)}
    if check is not None:
        params.update(check.params())
    data, etag, valid = session.connection().exec_driver_sql(sql, params).one()
    if not valid:
        return None
    return bytes(data or b""), etag


def tile_etag(data: bytes) -> str:
    """A strong ETag: the hash of the tile's bytes (`_etag_sql` is the same in SQL)."""
    return '"' + hashlib.sha256(data).hexdigest()[:ETAG_HEX] + '"'
