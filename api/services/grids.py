"""Grids: create, redraw (keeping every boundary version), retire, import, locate, list."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app, has_app_context
from geoalchemy2.shape import to_shape
from shapely.geometry import MultiPolygon
from sqlalchemy import Float, cast, func, select, text, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, joinedload

from api import clock, errors
from api.db import PG_INT_MAX
from api.models import Grid, GridLeadership, GridVersion, Household, Task, User
from api.scope import Scope
from api.services import admin
from api.services.geometry import db_geom, db_point
from api.services.names import check_name, name_problem
from api.services.weeks import LOCAL
from geo.codes import CodeError, GridCode
from geo.validate import GeometryProblem, parse_boundary

DEFAULT_OVERLAP_TOLERANCE_M2 = 1.0
DEFAULT_MAX_AREA_KM2 = 20.0
# A grid's properties, the same whether it comes alone (POST /grids) or in an import; its
# names (the grid's, and those of the community, street and district it names) follow
# services.names (NAME_MAX, no control characters).
TARGET_MAX = 100_000
# A datum tells what map a new boundary was drawn on; sent without one it means nothing.
DATUM_WITHOUT_GEOMETRY = (
    "`datum` describes the map a `geometry` was drawn on; send it with the geometry, or not at all."
)
# One import is a district at most (a city of 30,000 grids is imported district by district).
MAX_IMPORT_FEATURES = 10_000


@dataclass
class GridDraft:
    """A grid as submitted, checked in Python before it meets the database."""

    label: str
    code: GridCode
    name: str
    boundary: MultiPolygon
    target_households: int = 300
    leader_id: int | None = None
    names: dict[str, str] = field(default_factory=dict)
    # The feature says who leads the grid (`leader_id`, null for nobody); without it, a known
    # grid keeps its leader.
    leader_given: bool = False


@dataclass
class ImportSummary:
    created: list[str] = field(default_factory=list)
    redrawn: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    households_moved: int = 0


# Changes of the map (a grid drawn, redrawn, retired, imported) queue on this transaction-scoped
# advisory lock (class 4; 1-3 are the sign-in and data-key locks). Each change checks overlaps
# and recomputes households against the grids committed before it: two at once each checked
# the other's old boundary, and both were stored overlapping. Grid changes are an office's
# occasional work; queueing them all costs nothing a user would notice.
_MAP_LOCK = "SELECT pg_advisory_xact_lock(4, 0)"


def _lock_map(session: Session) -> None:
    session.execute(text(_MAP_LOCK))


def _tolerance() -> float:
    if has_app_context():
        return float(current_app.config.get("GRID_OVERLAP_TOLERANCE_M2", 1.0))
    return DEFAULT_OVERLAP_TOLERANCE_M2


def _max_area_m2() -> float:
    """The most a grid's boundary may cover, m² (GRID_MAX_AREA_KM2)."""
    if has_app_context():
        return float(current_app.config.get("GRID_MAX_AREA_KM2", DEFAULT_MAX_AREA_KM2)) * 1e6
    return DEFAULT_MAX_AREA_KM2 * 1e6


def parse_feature(feature: Any, label: str, datum: str = "wgs84") -> GridDraft:
    """Check one GeoJSON Feature; every problem is named with `label` (e.g. "feature 3").

    Its geometry was drawn in `datum` (`geo.validate.parse_boundary`); the draft's is WGS-84."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise errors.Unprocessable(f"{label}: not a GeoJSON Feature.")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise errors.Unprocessable(f"{label}: properties must be an object.")
    problems: dict[str, list[str]] = {}
    code = None
    try:
        code = GridCode.parse(str(props.get("code", "")).strip())
    except CodeError as exc:
        problems["code"] = [str(exc)]
    name = props.get("name")
    name = name.strip() if isinstance(name, str) else None
    if problem := name_problem(name):
        problems["name"] = [problem]
    target = props.get("target_households", 300)
    if not _whole(target, 1, TARGET_MAX):
        problems["target_households"] = [f"Must be a whole number 1-{TARGET_MAX:,}."]
    leader_id = props.get("leader_id")
    if leader_id is not None and not _whole(leader_id, 1, PG_INT_MAX):
        problems["leader_id"] = ["Must be a user id (a whole number), or null."]
    for key in ("community_name", "street_name", "district_name"):
        if problem := name_problem(props.get(key), optional=True):
            problems[key] = [problem]
    boundary = None
    try:
        boundary = parse_boundary(feature.get("geometry"), datum, max_area_m2=_max_area_m2())
    except GeometryProblem as exc:
        problems["geometry"] = [exc.reason]
    if problems:
        what = f"{label} ({props.get('code')})" if props.get("code") else label
        first = next(iter(problems.items()))
        raise errors.Unprocessable(f"{what}: {first[0]}: {first[1][0]}", errors=problems)
    names = {
        k: str(props[k]).strip()
        for k in ("community_name", "street_name", "district_name")
        if props.get(k)
    }
    return GridDraft(
        label, code, name, boundary, target, leader_id, names, leader_given="leader_id" in props
    )


def _whole(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def get_grid(session: Session, scope: Scope | None, grid_id: int) -> Grid:
    stmt = select(Grid).where(Grid.id == grid_id, Grid.retired_at.is_(None))
    if scope is not None:
        stmt = stmt.where(scope.grids())
    grid = session.scalar(stmt)
    if grid is None:
        raise errors.NotFound(f"Grid {grid_id} not found.")
    return grid


def get_grid_by_code(session: Session, code: str) -> Grid | None:
    return session.scalar(select(Grid).where(Grid.code == code, Grid.retired_at.is_(None)))


def list_grids(
    session: Session,
    scope: Scope,
    *,
    community: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[Grid], int]:
    stmt = select(Grid).where(Grid.retired_at.is_(None), scope.grids())
    if community:
        stmt = stmt.where(Grid.community_code == community)
    if bbox:
        stmt = stmt.where(func.ST_Intersects(Grid.boundary, func.ST_MakeEnvelope(*bbox, 4326)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(Grid.code).offset((page - 1) * page_size).limit(page_size))
    return list(rows), total or 0


def window_grids(session: Session, scope: Scope, day) -> tuple[bool, list[Grid]]:
    """The grids the caller may open a window task for on `day` (Asia/Shanghai), and whether
    they hold the hall window (the A-post of a published roster) that day: then every active
    grid of their community (a walk-in resident may live in any), else the grids they hold.
    Those who open no tasks (district viewers) are refused, as `require_task_creator` does."""
    scope.require_writer()
    at_window = scope.at_window(session, day)
    where = (
        Grid.community_code == scope.community_code
        if at_window or scope.role == "community_admin"
        else scope.grids()
    )
    rows = session.scalars(select(Grid).where(Grid.retired_at.is_(None), where).order_by(Grid.code))
    return at_window, list(rows)


def grids_asked(
    session: Session, scope: Scope, *, grid: str | None = None, community: str | None = None
) -> list[Any]:
    """The one grid, or the community's grids, that the caller can see (rows of id, code and
    name, by code): whose figures a grid's or a community's reading gives (the three rates,
    the need and problem lists, what recurs). A 404 when there is none: a grid or community
    not the caller's is not told apart from one that does not exist."""
    where = Grid.code == grid if grid else Grid.community_code == community
    rows = session.execute(
        select(Grid.id, Grid.code, Grid.name).where(where, scope.grids()).order_by(Grid.code)
    ).all()
    if not rows:
        raise errors.NotFound(f"{'Grid' if grid else 'Community'} {grid or community} not found.")
    return list(rows)


def locate(
    session: Session,
    lon: float,
    lat: float,
    *,
    community_code: str | None = None,
    scope: Scope | None = None,
) -> Grid | None:
    """The active grid containing the point (of `community_code` only, when given; of those
    `scope` sees, when given); on a shared border, the lowest code wins.

    A caller's lookup is among their own grids: on the border between two communities, the
    lowest-coded grid was the other's, and the caller whose grid also holds the point was told
    none of theirs did. Placing a household (no scope) keeps the lowest code of all."""
    where = [Grid.retired_at.is_(None), func.ST_Intersects(Grid.boundary, db_point(lon, lat))]
    if community_code is not None:
        where.append(Grid.community_code == community_code)
    if scope is not None:
        where.append(scope.grids())
    return session.scalar(
        select(Grid)
        .where(*where)
        .order_by(Grid.code)
        .limit(1)
        .options(joinedload(Grid.community))  # the Feature names it: no second round trip
    )


def locate_many(session: Session, scope: Scope, points: Sequence[tuple[float, float]]) -> list:
    """For each point, what `locate` finds among the grids the caller sees (id, code), else
    None.

    One statement for all points: a lateral index probe per point, in the given order.
    """
    if not points:
        return []
    p = (
        func.unnest(
            cast([lon for lon, _ in points], ARRAY(Float)),
            cast([lat for _, lat in points], ARRAY(Float)),
        )
        .table_valued("lon", "lat", with_ordinality="i")
        .render_derived()
    )
    g = (
        select(Grid.id, Grid.code)
        .where(
            Grid.retired_at.is_(None),
            func.ST_Intersects(
                Grid.boundary, func.ST_SetSRID(func.ST_MakePoint(p.c.lon, p.c.lat), 4326)
            ),
            scope.grids(),
        )
        .order_by(Grid.code)
        .limit(1)
        .lateral("g")
    )
    rows = session.execute(
        select(p.c.i, g.c.id, g.c.code).select_from(p.outerjoin(g, true())).order_by(p.c.i)
    ).all()
    return [r if r.id is not None else None for r in rows]


def _check_leader(session: Session, leader_id: int | None, community_code: str) -> None:
    if leader_id is not None and (problem := _leader_problem(session, leader_id, community_code)):
        raise problem


def _leader_problem(
    session: Session, leader_id: int, community_code: str
) -> errors.Unprocessable | None:
    """Why user `leader_id` may not lead a grid of `community_code`, or None if they may."""
    # FOR SHARE: an admin switching the account off or changing its role holds its row;
    # this waits for that to commit and reads the account as it then is.
    leader = session.get(User, leader_id, with_for_update={"read": True}, populate_existing=True)
    if leader is None or leader.community_code != community_code:
        return errors.Unprocessable(
            f"Leader {leader_id} is not a user of community {community_code}.",
            errors={"leader_id": ["Unknown user in this community."]},
        )
    if leader.role != "grid_leader":
        # A worker named leader was told of the grid's escalations but could not act on them
        # (leading is the grid leader's role, `Scope.leads_grid`): the role comes first.
        return errors.Unprocessable(
            f"User {leader.username} is a {leader.role}; a grid's leader is a grid leader "
            f"(PATCH /api/v1/users/{leader.id} with role grid_leader first).",
            errors={"leader_id": ["Not a grid leader."]},
        )
    if not leader.active:
        return errors.Unprocessable(
            f"User {leader.username} is switched off; name an active worker.",
            errors={"leader_id": ["Switched off."]},
        )
    return None


# An overlap is a border sliver, allowed, when it is at most the tolerance (m²) and at most
# this share of the smaller grid: a grid of 0.6 m² drawn inside another community's grid
# overlapped it by less than the tolerance, and took the points under it (a household goes to
# the lowest-coded grid covering it).
SLIVER_SHARE = 0.01


def _sliver(area: float, smaller: float, tolerance: float) -> bool:
    return area <= tolerance and area <= SLIVER_SHARE * smaller


def _check_overlaps(session: Session, grids: dict[int, str]) -> None:
    """Refuse grids overlapping any other active grid beyond a sliver (`_sliver`): of their
    own community, or of another (whose households the overlap would otherwise hand over, as a
    household goes to the lowest-coded grid that covers it)."""
    if not grids:
        return
    rows = session.execute(
        text(
            """
            SELECT a.id, a.code, b.id, b.code,
                   ST_Area(ST_Intersection(a.boundary, b.boundary)::geography) AS area,
                   least(ST_Area(a.boundary::geography), ST_Area(b.boundary::geography))
                     AS smaller
            FROM grids a
            JOIN grids b ON b.id <> a.id
                        AND b.retired_at IS NULL AND ST_Intersects(a.boundary, b.boundary)
            WHERE a.id = ANY(:ids) AND a.retired_at IS NULL
            ORDER BY a.code, b.code
            """
        ),
        {"ids": list(grids)},
    ).all()
    tolerance = _tolerance()
    problems = []
    seen: set[frozenset[int]] = set()
    for a_id, a_code, b_id, b_code, area, smaller in rows:
        pair = frozenset((a_id, b_id))
        if _sliver(area, smaller, tolerance) or pair in seen:
            continue
        seen.add(pair)
        problems.append(
            {
                "feature": grids[a_id],
                "code": a_code,
                "detail": f"overlaps grid {b_code} by {area:.1f} m² (tolerance {tolerance:g} m²)",
                "other_grid": b_code,
            }
        )
    if problems:
        first = problems[0]
        raise errors.Unprocessable(
            f"{first['feature']} ({first['code']}) {first['detail']}.", errors=problems
        )


# The households a change touches: those in the register on any of its shapes (old and new
# boundaries), each shape probed on its own through the location index. Not their union:
# noding an edge where another shape crosses it moves it by a rounding, and a household
# exactly on a slanted edge fell outside the union (a redraw leaving it out was neither
# refused nor recounted). Not those out of it (`removed_at`): each stays with the grid it
# left, where its history and visits were counted. Taken as live, one blocked a grid's shrink
# (left outside every grid), another community's grid over a retired one (taken from it),
# and a merge moved it to a grid it never lived in. Undoing its removal checks its door is
# still in its grid (`household_removal.restore_household`).
_TOUCHED = """
    WITH touched AS (
        SELECT DISTINCT x.id FROM unnest(CAST(:areas AS text[])) AS a(ewkt)
        JOIN households x ON ST_Intersects(x.location, ST_GeomFromEWKT(a.ewkt))
        WHERE x.removed_at IS NULL)
"""


def _reassign_households(session: Session, scope: Scope | None, shapes: Iterable) -> int:
    """Recompute the grid of every household on `shapes`; refuse to orphan any. Returns
    how many changed grid."""
    areas = ["SRID=4326;" + to_shape(s).wkt for s in shapes]
    orphan = session.execute(
        text(
            _TOUCHED
            + """
            SELECT h.id, h.building, h.unit, h.room FROM households h
            WHERE h.id IN (SELECT id FROM touched)
              AND NOT EXISTS (SELECT 1 FROM grids g WHERE g.retired_at IS NULL
                              AND ST_Intersects(g.boundary, h.location))
            ORDER BY h.id
            """
        ),
        {"areas": areas},
    ).all()
    if orphan:
        h = orphan[0]
        raise errors.Unprocessable(
            f"The change would leave {len(orphan)} household(s) outside every grid "
            f"(e.g. household {h.id}: building {h.building} unit {h.unit} room {h.room}).",
            errors={"household_ids": [row.id for row in orphan[:50]]},
        )
    # Every household of the area goes to the lowest-coded grid covering it; those whose grid
    # changes (only those are written: the others' rows, history and counts stay as they are)
    # come back with their old and new grid, to refuse a move between communities.
    moves = session.execute(
        text(
            _TOUCHED
            + """
            UPDATE households h SET grid_id = m.new_id
            FROM (SELECT x.id, x.grid_id AS old_id, x.location AS at,
                         (SELECT g.id FROM grids g
                          WHERE g.retired_at IS NULL AND ST_Intersects(g.boundary, x.location)
                          ORDER BY g.code LIMIT 1) AS new_id
                  FROM households x WHERE x.id IN (SELECT id FROM touched)) m
            WHERE h.id = m.id AND m.new_id IS DISTINCT FROM m.old_id
              -- Re-read on a row another transaction changed meanwhile (its door moved to
              -- another grid, or out of the register): it is left as that change left it.
              -- Until 2026-12-07 the grid worked out from the old row was set on the new one.
              AND h.grid_id = m.old_id AND h.removed_at IS NULL AND h.location = m.at
            RETURNING h.id, m.old_id, m.new_id
            """
        ),
        {"areas": areas},
    ).all()
    if scope is not None:
        _refuse_moves_between_communities(session, moves)
    return len(moves)


def _refuse_moves_between_communities(session: Session, moves: list) -> None:
    """A grid drawn in one community may not take another's households, however small its
    overlap with that community's grid (the overlap tolerance is for border slivers, not for
    a tiny grid drawn around someone else's household). Only an operator (the CLI) moves
    households between communities."""
    if not moves:
        return
    ids = {m.old_id for m in moves} | {m.new_id for m in moves}
    grids = {g.id: g for g in session.scalars(select(Grid).where(Grid.id.in_(ids)))}
    crossing = [
        m for m in moves if grids[m.old_id].community_code != grids[m.new_id].community_code
    ]
    if crossing:
        # Neither the households nor how many: the caller may not read them (a 404 elsewhere),
        # and a refusal is no way to find out where another community's homes are.
        taken = sorted({grids[m.old_id].code for m in crossing})
        raise errors.Unprocessable(
            f"The change would take households of another community's grid "
            f"({', '.join(taken)}); a grid may not take another community's households.",
            errors={"other_grids": taken},
        )


def _new_grid(session: Session, draft: GridDraft, actor_id: int | None, now: datetime) -> Grid:
    community = admin.ensure_hierarchy(
        session,
        draft.code,
        district_name=draft.names.get("district_name"),
        street_name=draft.names.get("street_name"),
        community_name=draft.names.get("community_name"),
    )
    _check_leader(session, draft.leader_id, community.code)
    grid = Grid(
        code=draft.code.code,
        name=draft.name,
        community_code=community.code,
        leader_id=draft.leader_id,
        target_households=draft.target_households,
        boundary=db_geom(draft.boundary),
        version=1,
    )
    session.add(grid)
    session.flush()
    session.add(
        GridVersion(
            grid_id=grid.id,
            version=1,
            boundary=grid.boundary,
            valid_from=now,
            changed_by_id=actor_id,
        )
    )
    return grid


def _redraw(
    session: Session,
    grid: Grid,
    boundary: MultiPolygon,
    actor_id: int | None,
    now: datetime,
    *,
    reopen: bool = False,
) -> bool:
    """Give `grid` a new boundary version; False when the boundary did not change.

    `reopen`: a version begins even when it did not (a retired grid returns: its last version
    was closed at retirement, and reports find grids by their versions)."""
    if not reopen:
        same = session.scalar(
            select(func.ST_Equals(Grid.boundary, db_geom(boundary))).where(Grid.id == grid.id)
        )
        if same:
            return False
    current = session.scalar(
        select(GridVersion).where(GridVersion.grid_id == grid.id, GridVersion.valid_to.is_(None))
    )
    if current is not None:
        current.valid_to = now
    grid.version += 1
    grid.boundary = db_geom(boundary)
    session.add(
        GridVersion(
            grid_id=grid.id,
            version=grid.version,
            boundary=grid.boundary,
            valid_from=now,
            changed_by_id=actor_id,
        )
    )
    return True


def _existing_with_code(session: Session, code: str) -> Grid | None:
    return session.scalar(select(Grid).where(Grid.code == code))


def create_grid(
    session: Session, scope: Scope | None, feature: dict, *, datum: str = "wgs84"
) -> Grid:
    """Create a grid from a GeoJSON Feature drawn in `datum`, stored in WGS-84."""
    draft = parse_feature(feature, "feature", datum)
    if scope is not None:
        scope.require_grid_admin(draft.code.community_code)
    _lock_map(session)
    existing = _existing_with_code(session, draft.code.code)
    if existing is not None and existing.retired_at is not None:
        # No list, read or lookup finds a retired grid: "already exists" sent the office
        # looking for a grid they could not see. Its code stays its own (past reports name it).
        raise errors.Conflict(
            f"Grid {draft.code.code} was retired on "
            f"{existing.retired_at.astimezone(LOCAL).date().isoformat()}; its code stays its "
            "own. Import it (POST /api/v1/grids/import) to bring it back with its history, or "
            "give the new grid another sequence number."
        )
    if existing is not None:
        raise errors.Conflict(f"Grid {draft.code.code} already exists.")
    now = clock.now()
    grid = _new_grid(session, draft, scope.user_id if scope else None, now)
    session.flush()
    _check_overlaps(session, {grid.id: "feature"})
    _reassign_households(session, scope, [grid.boundary])
    return grid


def update_grid(session: Session, scope: Scope | None, grid: Grid, changes: dict) -> Grid:
    """Apply `changes`; a `geometry` is drawn in `changes["datum"]` (default WGS-84)."""
    if scope is not None:
        scope.require_grid_admin(grid.community_code)
    if "datum" in changes and "geometry" not in changes:
        # Checked before anything changes: a datum alone was most likely meant for a geometry
        # the client failed to send, and silently renaming without it would hide that.
        raise errors.Unprocessable(
            DATUM_WITHOUT_GEOMETRY, errors={"datum": [DATUM_WITHOUT_GEOMETRY]}
        )
    if "name" in changes:
        check_name("name", changes["name"])
    if "leader_id" in changes:
        _check_leader(session, changes["leader_id"], grid.community_code)
    boundary = None
    if "geometry" in changes:
        try:
            boundary = parse_boundary(
                changes["geometry"], changes.get("datum", "wgs84"), max_area_m2=_max_area_m2()
            )
        except GeometryProblem as exc:
            raise errors.Unprocessable(
                f"grid {grid.code}: geometry: {exc.reason}", errors={"geometry": [exc.reason]}
            ) from exc
        _lock_map(session)  # before the grid's row, as a retirement and an import take them
    _hold_in_service(session, grid)
    if "name" in changes:
        grid.name = changes["name"]
    if "target_households" in changes:
        grid.target_households = changes["target_households"]
    if "leader_id" in changes:
        grid.leader_id = changes["leader_id"]
    if boundary is not None:
        old = grid.boundary
        if _redraw(session, grid, boundary, scope.user_id if scope else None, clock.now()):
            session.flush()
            _check_overlaps(session, {grid.id: f"grid {grid.code}"})
            _reassign_households(session, scope, [old, grid.boundary])
    session.flush()
    return grid


def _hold_in_service(session: Session, grid: Grid) -> None:
    """Hold `grid`'s row until the transaction ends and read it again, as the change committed
    before this one left it; 404 when that change retired it. The view read the grid before a
    retirement of it committed, and a redraw then opened a new boundary version on the retired
    grid: off the map, yet in every later week's report and map."""
    retired_at = session.scalar(
        select(Grid.retired_at).where(Grid.id == grid.id).with_for_update(key_share=True)
    )
    if retired_at is not None:
        raise errors.NotFound(f"Grid {grid.id} not found.")
    session.refresh(grid)


def retire_grid(session: Session, scope: Scope | None, grid: Grid) -> None:
    """Retire a grid: its versions stay for past reports; it must hold no households."""
    if scope is not None:
        scope.require_grid_admin(grid.community_code)
    _lock_map(session)
    _hold_to_retire(session, grid)
    _refuse_households_left(session, grid)
    _close(session, grid, clock.now())
    session.flush()


def _hold_to_retire(session: Session, grid: Grid) -> None:
    """Hold `grid`'s row until the transaction ends; 409 while it holds an open task."""
    # Held before counting: a household being placed in the grid holds it FOR SHARE
    # (services.households), so it is either counted here or, written after the retirement,
    # placed again in a grid that is not retired.
    session.execute(select(Grid.id).where(Grid.id == grid.id).with_for_update(key_share=True))
    # Its open tasks would stay in a grid no longer on the map, dispatched (a reopening, a
    # holder switched off) to those who held it then: they are moved to the grid that takes
    # their place first. Ended ones stay, counted where they were worked.
    from api.services.tasks import OPEN_STATUSES

    open_tasks = session.scalar(
        select(func.count(Task.id)).where(Task.grid_id == grid.id, Task.status.in_(OPEN_STATUSES))
    )
    if open_tasks:
        raise errors.Conflict(
            f"Grid {grid.code} still holds {open_tasks} open task(s); move them to the grid "
            "that takes their place (POST /api/v1/tasks/{id}/move) before deleting it."
        )


def _refuse_households_left(session: Session, grid: Grid) -> None:
    # Those out of the register stay with the retired grid (their history, their visits): a
    # demolished compound's grid is retired once its households have left.
    count = session.scalar(
        select(func.count()).where(Household.grid_id == grid.id, Household.removed_at.is_(None))
    )
    if count:
        raise errors.Conflict(
            f"Grid {grid.code} still holds {count} household(s); import the grids that take "
            "them in with this grid's code in the import's `retire` (POST "
            "/api/v1/grids/import), or redraw its neighbours to take them in, before deleting it."
        )


def _close(session: Session, grid: Grid, now: datetime) -> None:
    """End `grid`'s current boundary version and its leadership, and retire it, at `now`.

    A retired grid is led by nobody: its leader kept it in their scope and in every later
    day's held grids. The leadership is ended here at `now` (the retirement's time, which the
    versions end at), not by the trigger on `leader_id` (the transaction's clock_timestamp());
    `_lead_on_return` finds it so. Its workers' holdings (`user_grids`) stay, as accounts keeps
    them (`accounts._replace_grids`): the grid comes back by import with its workers, and a
    worker's holding of a grid with no household in the register grants nothing (no list,
    read or lookup finds a retired grid; a visit after a household's removal is refused)."""
    current = session.scalar(
        select(GridVersion).where(GridVersion.grid_id == grid.id, GridVersion.valid_to.is_(None))
    )
    if current is not None:
        current.valid_to = now
    if grid.leader_id is not None:
        # greatest(): a leadership begun by the trigger (clock_timestamp()) after a fixed
        # clock's `now` (tests, demos) ends when it began, never before.
        session.execute(
            update(GridLeadership)
            .where(GridLeadership.grid_id == grid.id, GridLeadership.ended_at.is_(None))
            .values(ended_at=func.greatest(GridLeadership.started_at, now))
        )
        grid.leader_id = None  # the trigger finds no period open: nothing more
    grid.retired_at = now


def _import_leader(session: Session, grid: Grid, draft: GridDraft) -> None:
    """A known grid is led by whom its feature names (checked as a PATCH's `leader_id` is):
    dropped without a word, a file whose leaders were changed was imported "unchanged"."""
    try:
        _check_leader(session, draft.leader_id, grid.community_code)
    except errors.Unprocessable as exc:
        raise errors.Unprocessable(
            f"{draft.label} ({draft.code.code}): {exc.detail}", errors=exc.errors
        ) from exc
    grid.leader_id = draft.leader_id


def _lead_on_return(session: Session, grid: Grid, draft: GridDraft) -> None:
    """A retired grid imported again is led as a new grid is: by the feature's `leader_id`
    (checked), or else by its old leader only if they may still lead it. Its old leader may
    since have been made a worker or an admin, or switched off (nothing stops that while no
    grid in service is theirs), and came back as the leader of a grid in service."""
    if draft.leader_given:
        _import_leader(session, grid, draft)
        return
    # Retirement ended the leadership at its time (`_close`); one ended earlier was a leader
    # taken away before it.
    previous = session.scalar(
        select(GridLeadership.user_id)
        .where(GridLeadership.grid_id == grid.id, GridLeadership.ended_at >= grid.retired_at)
        .order_by(GridLeadership.started_at.desc())
        .limit(1)
    )
    leader_id = grid.leader_id or previous  # a grid retired before 0064 may still name one
    if leader_id is not None and _leader_problem(session, leader_id, grid.community_code):
        leader_id = None
    grid.leader_id = leader_id


def import_grids(
    session: Session,
    scope: Scope | None,
    collection: Any,
    *,
    progress: Callable[[Iterable], Iterable] | None = None,
    datum: str = "wgs84",
) -> ImportSummary:
    """Import a FeatureCollection all or nothing: new codes are created, known ones redrawn.

    Every feature was drawn in `datum`; they are checked and stored in WGS-84."""
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise errors.Unprocessable("Expected a GeoJSON FeatureCollection.")
    features = collection.get("features")
    if not isinstance(features, list) or not features:
        raise errors.Unprocessable("The FeatureCollection has no features.")
    if len(features) > MAX_IMPORT_FEATURES:
        raise errors.PayloadTooLarge(
            f"The FeatureCollection has {len(features):,} features; one import takes at most "
            f"{MAX_IMPORT_FEATURES:,}. Split it (by district, say).",
            limit=MAX_IMPORT_FEATURES,
        )
    drafts: list[GridDraft] = []
    problems: list[dict] = []
    seen_codes: dict[str, str] = {}
    for index, feature in enumerate(features):
        label = f"feature {index}"
        try:
            draft = parse_feature(feature, label, datum)
        except errors.Unprocessable as exc:
            props = feature.get("properties") if isinstance(feature, dict) else None
            code = props.get("code") if isinstance(props, dict) else None
            problems.append(
                {"feature": index, "code": code, "detail": exc.detail, "errors": exc.errors}
            )
            continue
        if draft.code.code in seen_codes:
            problems.append(
                {
                    "feature": index,
                    "code": draft.code.code,
                    "detail": f"{label}: code repeats {seen_codes[draft.code.code]}",
                }
            )
            continue
        seen_codes[draft.code.code] = label
        if scope is not None:
            try:
                scope.require_grid_admin(draft.code.community_code)
            except errors.Forbidden as exc:
                raise errors.Forbidden(f"{label} ({draft.code.code}): {exc.detail}") from exc
        drafts.append(draft)
    if problems:
        raise errors.Unprocessable(
            f"{len(problems)} feature(s) are invalid; nothing was imported. "
            f"First: {problems[0]['detail']}",
            errors=problems,
        )
    retiring = _codes_to_retire(collection.get("retire"), seen_codes, scope)
    _lock_map(session)
    summary = ImportSummary()
    now = clock.now()
    actor_id = scope.user_id if scope else None
    touched: dict[int, str] = {}
    areas = []
    # Retired first, so the features are checked against the map without them and their
    # households go to the grids that now cover them (a merge: one grid retired, its neighbour
    # drawn over both). A grid holding households could not be retired, and no neighbour
    # could be redrawn over it while it stood (an overlap).
    gone = []
    for code in retiring:
        grid = get_grid_by_code(session, code)
        if grid is None:
            message = f"retire: {code} is not a grid in service."
            raise errors.Unprocessable(message, errors={"retire": [message]})
        _hold_to_retire(session, grid)
        areas.append(grid.boundary)
        _close(session, grid, now)
        gone.append(grid)
        summary.retired.append(code)
    iterator = progress(drafts) if progress else drafts
    for draft in iterator:
        grid = _existing_with_code(session, draft.code.code)
        if grid is None:
            grid = _new_grid(session, draft, actor_id, now)
            summary.created.append(grid.code)
            touched[grid.id] = draft.label
            areas.append(grid.boundary)
            continue
        grid.name = draft.name
        grid.target_households = draft.target_households
        old = grid.boundary
        returns = grid.retired_at is not None
        if returns:
            _lead_on_return(session, grid, draft)
        elif draft.leader_given and draft.leader_id != grid.leader_id:
            _import_leader(session, grid, draft)
        grid.retired_at = None
        if _redraw(session, grid, draft.boundary, actor_id, now, reopen=returns):
            summary.redrawn.append(grid.code)
            touched[grid.id] = draft.label
            areas.extend([old, grid.boundary])
        else:
            summary.unchanged.append(grid.code)
    session.flush()
    _check_overlaps(session, touched)
    if areas:
        summary.households_moved = _reassign_households(session, scope, areas)
    for grid in gone:  # a household not on its grid's boundary was not re-placed
        _refuse_households_left(session, grid)
    session.flush()
    return summary


def _codes_to_retire(raw: Any, drawn: dict[str, str], scope: Scope | None) -> list[str]:
    """The import's `retire`: codes of grids in service to retire, none of them drawn by it."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        message = "retire: must be a list of 15-digit grid codes."
        raise errors.Unprocessable(message, errors={"retire": [message]})
    codes: list[str] = []
    problems = []
    for item in raw:
        try:
            code = GridCode.parse(item)
        except CodeError as exc:
            problems.append(f"retire: {exc}")
            continue
        if code.code in drawn:
            problems.append(f"retire: {code.code} is drawn by {drawn[code.code]}; not both.")
            continue
        if scope is not None:
            scope.require_grid_admin(code.community_code)
        if code.code not in codes:
            codes.append(code.code)
    if problems:
        raise errors.Unprocessable(problems[0], errors={"retire": problems})
    return codes
