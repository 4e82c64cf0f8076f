"""Mapbox vector tiles from PostGIS: one ST_AsMVT query per tile and layer, scoped to the caller."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Float,
    Integer,
    Numeric,
    String,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from api import errors
from api.models import Grid, Household, HouseholdLastVisit, Task, Visit
from api.scope import Scope
from api.services.weeks import week_bounds

LAYERS = ("grids", "households", "visits", "tasks")
MAX_ZOOM = 22
EXTENT = 4096
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


@dataclass(frozen=True)
class TileRequest:
    layer: str
    z: int
    x: int
    y: int
    week: str
    now: datetime


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


def _envelopes(z: int, x: int, y: int):
    env = func.ST_TileEnvelope(z, x, y)
    return env, func.ST_Transform(env, 4326)


def _mvt_geom(geom, env3857):
    return func.ST_AsMVTGeom(func.ST_Transform(geom, 3857), env3857, EXTENT, BUFFER, True).label(
        "geom"
    )


def _reference_time(req: TileRequest):
    """Ages and overdue flags are read at the end of the week, or now for the current week."""
    _start, end = week_bounds(req.week)
    return min(end, req.now.astimezone(UTC))


def grids_features(scope: Scope, req: TileRequest) -> Select:
    env3857, env4326 = _envelopes(req.z, req.x, req.y)
    # LATERAL, not scalar subqueries: each count runs once per grid (a scalar subquery used
    # twice, in the figure and in the ratio, is planned and run twice). Both counts are
    # index-only scans (ix_households_grid_id, ix_visits_grid_week_household).
    households = (
        select(func.count().label("n"))
        .where(Household.grid_id == Grid.id)
        .correlate(Grid)
        .lateral("hc")
    )
    visited = (
        select(func.count(func.distinct(Visit.household_id)).label("n"))
        .where(Visit.grid_id == Grid.id, Visit.week == req.week)
        .correlate(Grid)
        .lateral("vc")
    )
    coverage = case(
        (households.c.n > 0, func.round(cast(visited.c.n, Numeric) / households.c.n, 3)),
        else_=literal(0),
    )
    return (
        select(
            Grid.id.label("id"),
            Grid.code.label("code"),
            Grid.name.label("name"),
            households.c.n.label("households"),
            visited.c.n.label("visited"),
            cast(coverage, Float).label("coverage"),
            literal(req.week).label("week"),
            _mvt_geom(Grid.boundary, env3857),
        )
        .select_from(Grid)
        .join(households, true())
        .join(visited, true())
        .where(
            Grid.retired_at.is_(None),
            Grid.boundary.op("&&")(env4326),  # GiST: ix_grids_boundary_active
            scope.grids(),
        )
    )


def households_features(scope: Scope, req: TileRequest) -> Select:
    env3857, env4326 = _envelopes(req.z, req.x, req.y)
    start, end = week_bounds(req.week)
    ref = _reference_time(req)
    # The last visit before the week's end. household_last_visits (kept by triggers on visits)
    # holds each household's latest visit: when that falls before the week's end it is the
    # answer (always, for the current week), read with one primary-key join. Otherwise (a past
    # week) one backward index-only probe of ix_visits_household_visited finds it; the CASE
    # runs the probe only for those rows. "Visited this week" is that visit falling inside the
    # week (the week column is the ISO week of visited_at in Asia/Shanghai, as week_bounds is).
    probe = (
        select(func.max(Visit.visited_at))
        .where(Visit.household_id == Household.id, Visit.visited_at < end)
        .correlate(Household)
        .scalar_subquery()
    )
    known = HouseholdLastVisit.last_visited_at
    last_at = case((or_(known.is_(None), known < literal(end)), known), else_=probe)
    must = Household.tags.op("&&")(cast(list(MUST_VISIT_TAGS), ARRAY(Text)))
    inner = (
        select(
            Household.id.label("id"),
            Household.grid_id.label("grid_id"),
            Household.building.label("building"),
            Household.unit.label("unit"),
            Household.room.label("room"),
            Household.kind.label("kind"),
            must.label("must_visit"),
            last_at.label("last_visited_at"),
            Household.location.label("location"),
        )
        .select_from(Household)
        .outerjoin(HouseholdLastVisit, HouseholdLastVisit.household_id == Household.id)
        .where(Household.location.op("&&")(env4326), scope.households())  # GiST on location
        .offset(0)  # a fence: the planner must not inline last_at into every use below
        .subquery("h")
    )
    visited_this_week = func.coalesce(inner.c.last_visited_at >= literal(start), false())
    days = cast(
        func.floor(func.extract("epoch", literal(ref) - inner.c.last_visited_at) / 86400), Integer
    )
    status = case(
        (visited_this_week, literal("visited")),
        (or_(inner.c.last_visited_at.is_(None), days >= 7), literal("overdue")),
        else_=literal("due"),
    )
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
        func.to_char(
            func.timezone("Asia/Shanghai", inner.c.last_visited_at), "YYYY-MM-DD HH24:MI"
        ).label("last_visited"),
        status.label("status"),
        _mvt_geom(inner.c.location, env3857),
    )


def visits_features(scope: Scope, req: TileRequest) -> Select:
    env3857, env4326 = _envelopes(req.z, req.x, req.y)
    return select(
        cast(Visit.id, String).label("visit_id"),
        Visit.household_id.label("household_id"),
        Visit.grid_id.label("grid_id"),
        Visit.worker_id.label("worker_id"),
        Visit.outcome.label("outcome"),
        Visit.grade.label("grade"),
        func.array_to_string(Visit.reasons, ",").label("reasons"),
        func.to_char(func.timezone("Asia/Shanghai", Visit.visited_at), "YYYY-MM-DD HH24:MI").label(
            "visited_at"
        ),
        _mvt_geom(Visit.location, env3857),
    ).where(
        Visit.week == req.week,
        Visit.location.op("&&")(env4326),  # GiST: ix_visits_location
        scope.in_grids(Visit.grid_id),
    )


def tasks_features(scope: Scope, req: TileRequest) -> Select:
    env3857, env4326 = _envelopes(req.z, req.x, req.y)
    ref = _reference_time(req)
    overdue = and_(
        Task.due_at < literal(ref),
        or_(Task.resolved_at.is_(None), Task.resolved_at > literal(ref)),
    )

    def branch(point):
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
            point.label("point"),
        ).where(
            # Open at the reference time (now, or the end of a past week).
            Task.created_at < literal(ref),
            or_(Task.closed_at.is_(None), Task.closed_at > literal(ref)),
            scope.in_grids(Task.grid_id),
            point.op("&&")(env4326),
        )

    # create_task stores every task's point (the household's, or the one given): the box test
    # runs on GiST ix_tasks_location. A task stored without one is drawn at its household.
    located = branch(Task.location)
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


def tile_query(scope: Scope, req: TileRequest) -> Select:
    """The one SQL statement that answers a tile: ST_AsMVT over the layer's features."""
    build, id_column = _BUILDERS[req.layer]
    inner = build(scope, req).subquery("f")
    columns = list(inner.c)
    if id_column:  # ST_AsMVT consumes its feature-id column: keep `id` as a property too
        columns.append(inner.c[id_column].label("fid"))
    features = select(*columns).subquery("q")
    args = [literal_column("q"), literal(req.layer), literal(EXTENT), literal("geom")]
    if id_column:
        args.append(literal("fid"))
    return select(func.ST_AsMVT(*args)).select_from(features)


def render_tile(session: Session, scope: Scope, req: TileRequest) -> bytes:
    """The tile's bytes (b"" when no feature of the caller's falls in it)."""
    check_tile(req.layer, req.z, req.x, req.y)
    data = session.scalar(tile_query(scope, req))
    return bytes(data or b"")


def tile_etag(data: bytes) -> str:
    """A strong ETag: the hash of the tile's bytes."""
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
