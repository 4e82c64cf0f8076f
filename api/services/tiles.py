"""Mapbox vector tiles from PostGIS: one ST_AsMVT query per tile and layer, scoped to the caller."""

from __future__ import annotations

import hashlib
import uuid
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
from api.db import set_local
from api.models import Grid, Household, HouseholdLastVisit, Task, Visit
from api.scope import Scope
from api.services.weeks import week_bounds

LAYERS = ("grids", "households", "visits", "tasks")
# Households are drawn from HOUSEHOLDS_MIN_ZOOM (below it the grids layer carries the counts:
# a z14 tile of the city holds ~15,000 households, more than a map can show or a tile can
# carry in 50 ms), one feature per stair entrance below HOUSEHOLDS_FULL_ZOOM, one per
# household from it.
HOUSEHOLDS_MIN_ZOOM = 15
HOUSEHOLDS_FULL_ZOOM = 16
# The first zoom at which a layer has features; below it the tile is empty, answered without
# SQL. Visits (one point per visit, ~800,000 a week in the city) start one level before
# households; the map draws neither below its own minzoom.
MIN_ZOOM = {"grids": 0, "households": HOUSEHOLDS_MIN_ZOOM, "visits": 14, "tasks": 0}
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
    # False: workers' visit positions snapped to ~100 m (roles without access to tracks).
    precise_tracks: bool = True


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
    # answer (always, for the current week): one primary-key probe. Otherwise (a past week)
    # one backward index-only probe of ix_visits_household_visited finds it; the CASE runs
    # that probe only for those rows. "Visited this week" is that visit falling inside the
    # week (the week column is the ISO week of visited_at in Asia/Shanghai, as week_bounds is).
    # Correlated subqueries, not joins: a join lets the planner hash all 900 k state rows for
    # a tile of a few thousand; OFFSET 0 fences keep each probe to one run per household.
    known = (
        select(HouseholdLastVisit.last_visited_at)
        .where(HouseholdLastVisit.household_id == Household.id)
        .correlate(Household)
        .scalar_subquery()
    )
    must = Household.tags.op("&&")(cast(list(MUST_VISIT_TAGS), ARRAY(Text)))
    boxed = (
        select(
            Household.id.label("id"),
            Household.grid_id.label("grid_id"),
            Household.building.label("building"),
            Household.unit.label("unit"),
            Household.room.label("room"),
            Household.kind.label("kind"),
            must.label("must_visit"),
            known.label("known"),
            Household.location.label("location"),
        )
        .where(Household.location.op("&&")(env4326), scope.households())  # GiST on location
        .offset(0)
        .subquery("h0")
    )
    probe = (
        select(func.max(Visit.visited_at))
        .where(Visit.household_id == boxed.c.id, Visit.visited_at < end)
        .scalar_subquery()
    )
    last_at = case(
        (or_(boxed.c.known.is_(None), boxed.c.known < literal(end)), boxed.c.known),
        else_=probe,
    )
    inner = (
        select(*[c for c in boxed.c if c.name != "known"], last_at.label("last_visited_at"))
        .offset(0)
        .subquery("h")
    )
    visited_this_week = func.coalesce(inner.c.last_visited_at >= literal(start), false())
    days = cast(
        # date_part gives double precision; EXTRACT gives numeric since PostgreSQL 14, and
        # numeric arithmetic per household cost a third of the tile's time.
        func.floor(func.date_part("epoch", literal(ref) - inner.c.last_visited_at) / 86400),
        Integer,
    )
    status = case(
        (visited_this_week, literal("visited")),
        (or_(inner.c.last_visited_at.is_(None), days >= 7), literal("overdue")),
        else_=literal("due"),
    )
    last_visited = func.to_char(
        func.timezone("Asia/Shanghai", inner.c.last_visited_at), "YYYY-MM-DD HH24:MI"
    )
    if req.z >= HOUSEHOLDS_FULL_ZOOM:
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


def visits_features(scope: Scope, req: TileRequest) -> Select:
    env3857, env4326 = _envelopes(req.z, req.x, req.y)
    point = Visit.location if req.precise_tracks else func.ST_SnapToGrid(Visit.location, 0.001)
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
        _mvt_geom(point, env3857),
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
# The record each feature discloses, for the audit log (grids are aggregates: none).
AUDITED = {
    "households": ("household", "id"),
    "visits": ("visit", "visit_id"),
    "tasks": ("task", "id"),
}
# The personal fields a tile's features carry.
TILE_FIELDS = {
    "household": ("address", "location", "must_visit", "last_visited"),
    "visit": ("location", "worker", "outcome", "visited_at"),
    "task": ("title", "location", "status"),
}


def tile_query(scope: Scope, req: TileRequest, *, with_ids: bool = False) -> Select:
    """The one SQL statement that answers a tile: ST_AsMVT over the layer's features
    (and, `with_ids`, the ids of the records in it, for the audit log)."""
    build, id_column = _BUILDERS[req.layer]
    inner = build(scope, req).subquery("f")
    columns = list(inner.c)
    if id_column:  # ST_AsMVT consumes its feature-id column: keep `id` as a property too
        columns.append(inner.c[id_column].label("fid"))
    features = select(*columns).subquery("q")
    args = [literal_column("q"), literal(req.layer), literal(EXTENT), literal("geom")]
    if id_column:
        args.append(literal("fid"))
    mvt = func.ST_AsMVT(*args)
    if with_ids and req.layer in AUDITED:
        # Only features whose geometry lands in the tile are encoded: the same filter here.
        key = features.c[AUDITED[req.layer][1]]
        ids = func.array_agg(key).filter(features.c.geom.is_not(None))
        return select(mvt, ids).select_from(features)
    return (
        select(mvt, literal(None)).select_from(features)
        if with_ids
        else select(mvt).select_from(features)
    )


def _begin_tile(session: Session, req: TileRequest) -> bool:
    """Check the tile's address; False when the layer is not drawn at this zoom (no SQL)."""
    check_tile(req.layer, req.z, req.x, req.y)
    if req.z < MIN_ZOOM[req.layer]:
        return False
    # A tile is a short query among many at once: parallel workers only add start-up cost and
    # take the cores other requests need (measured on the city: 26 ms -> 9 ms for one tile).
    # JIT compiles a tile's expressions once its estimated cost passes jit_above_cost: 20-35 ms
    # of LLVM work for a query that runs in 10-40 ms.
    # Both for this transaction only (SET LOCAL), in one round trip.
    set_local(session, max_parallel_workers_per_gather="0", jit="off")
    return True


def render_tile(session: Session, scope: Scope, req: TileRequest) -> bytes:
    """The tile's bytes (b"" when no feature of the caller's falls in it)."""
    if not _begin_tile(session, req):
        return b""  # see MIN_ZOOM
    data = session.scalar(tile_query(scope, req))
    return bytes(data or b"")


def render_tile_audited(
    session: Session, scope: Scope, req: TileRequest
) -> tuple[bytes, str | None, list]:
    """The tile's bytes, the record type its features disclose, and their ids."""
    if not _begin_tile(session, req):
        return b"", None, []  # see MIN_ZOOM
    data, ids = session.execute(tile_query(scope, req, with_ids=True)).one()
    resource = AUDITED.get(req.layer, (None,))[0]
    if resource == "visit":
        ids = [uuid.UUID(i) for i in ids or ()]
    return bytes(data or b""), resource, list(ids or ())


def tile_etag(data: bytes) -> str:
    """A strong ETag: the hash of the tile's bytes."""
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
