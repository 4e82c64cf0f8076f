"""Households: register, edit, list and bulk-import, each placed in its grid by PostGIS."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from api import errors
from api.models import Grid, Household
from api.scope import Scope
from api.services.household_files import FileProblem, RowError, read_households
from geo.validate import GeometryProblem, parse_point

IMPORT_CHUNK = 2000


@dataclass
class Placement:
    grid_id: int | None
    grid_code: str | None
    nearest_code: str | None = None
    nearest_m: float | None = None


def _check_point(lon: Any, lat: Any) -> tuple[float, float]:
    try:
        point = parse_point(lon, lat)
    except GeometryProblem as exc:
        raise errors.Unprocessable(exc.reason, errors={"location": [exc.reason]}) from exc
    return point.x, point.y


def place(session: Session, points: Sequence[tuple[float, float]]) -> list[Placement]:
    """The grid of each point (lowest code on a shared border), or the nearest grid if none."""
    if not points:
        return []
    rows = session.execute(
        text(
            """
            SELECT p.i, g.id, g.code, n.code AS nearest, n.metres
            FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]))
                 WITH ORDINALITY AS p(lon, lat, i)
            LEFT JOIN LATERAL (
                SELECT id, code FROM grids
                WHERE retired_at IS NULL
                  AND ST_Intersects(boundary, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
                ORDER BY code LIMIT 1) g ON true
            LEFT JOIN LATERAL (
                SELECT code, ST_Distance(boundary::geography,
                       ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography) AS metres
                FROM grids WHERE retired_at IS NULL AND g.id IS NULL
                ORDER BY boundary <-> ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)
                LIMIT 1) n ON true
            ORDER BY p.i
            """
        ),
        {"lons": [p[0] for p in points], "lats": [p[1] for p in points]},
    ).all()
    return [Placement(r.id, r.code, r.nearest, r.metres) for r in rows]


def _outside(placement: Placement) -> str:
    if placement.nearest_code is None:
        return "The point lies outside every grid (no grids are registered)."
    return (
        f"The point lies outside every grid; the nearest is {placement.nearest_code}, "
        f"{placement.nearest_m:.0f} m away."
    )


def get_household(session: Session, scope: Scope | None, household_id: int) -> Household:
    stmt = select(Household).where(Household.id == household_id)
    if scope is not None:
        stmt = stmt.where(scope.households())
    household = session.scalar(stmt)
    if household is None:
        raise errors.NotFound(f"Household {household_id} not found.")
    return household


def list_households(
    session: Session,
    scope: Scope,
    *,
    grid: str | None = None,
    tags: Sequence[str] = (),
    kind: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[Household], int]:
    stmt = select(Household).where(scope.households())
    if grid:
        stmt = stmt.where(Household.grid_id.in_(select(Grid.id).where(Grid.code == grid)))
    if tags:
        stmt = stmt.where(Household.tags.overlap(list(tags)))
    if kind:
        stmt = stmt.where(Household.kind == kind)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Household.id).offset((page - 1) * page_size).limit(page_size)
    )
    return list(rows), total


def _grid_for(session: Session, scope: Scope | None, lon: float, lat: float) -> Grid:
    placement = place(session, [(lon, lat)])[0]
    if placement.grid_id is None:
        raise errors.Unprocessable(
            _outside(placement),
            errors={"location": [_outside(placement)]},
            nearest_grid=placement.nearest_code,
            distance_m=round(placement.nearest_m, 1) if placement.nearest_m is not None else None,
        )
    grid = session.get(Grid, placement.grid_id)
    if scope is not None:
        scope.require_household_writer(grid)
    return grid


def create_household(session: Session, scope: Scope | None, data: dict[str, Any]) -> Household:
    lon, lat = _check_point(data["lon"], data["lat"])
    grid = _grid_for(session, scope, lon, lat)
    household = Household(
        grid_id=grid.id,
        location=f"SRID=4326;POINT({lon} {lat})",
        **{k: v for k, v in data.items() if k not in ("lon", "lat")},
    )
    session.add(household)
    session.flush()
    session.refresh(household)
    return household


def update_household(
    session: Session, scope: Scope | None, household: Household, changes: dict[str, Any]
) -> Household:
    if scope is not None:
        scope.require_household_writer(household.grid)
    if "lon" in changes or "lat" in changes:
        lon, lat = household_lonlat(household)
        lon, lat = _check_point(changes.get("lon", lon), changes.get("lat", lat))
        grid = _grid_for(session, scope, lon, lat)
        household.grid_id = grid.id
        household.location = f"SRID=4326;POINT({lon} {lat})"
    for key, value in changes.items():
        if key not in ("lon", "lat"):
            setattr(household, key, value)
    session.flush()
    session.refresh(household)
    return household


def household_lonlat(household: Household) -> tuple[float, float]:
    from api.services.geometry import point_lonlat

    return point_lonlat(household.location)


@dataclass
class HouseholdImport:
    created: int
    by_grid: dict[str, int]


def import_households(
    session: Session,
    scope: Scope | None,
    data: bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> HouseholdImport:
    """Import a register file all or nothing; every error names its row and column."""
    try:
        parsed = read_households(data, filename, content_type)
    except FileProblem as exc:
        raise errors.Unprocessable(str(exc)) from exc
    problems: list[RowError] = list(parsed.errors)
    checked: list[tuple[int, dict[str, Any]]] = []
    for row, values in parsed.rows:
        try:
            point = parse_point(values["lon"], values["lat"])
        except GeometryProblem as exc:
            problems.append(RowError(row, "lon/lat", exc.reason))
            continue
        values["lon"], values["lat"] = point.x, point.y
        checked.append((row, values))
    if not parsed.rows and not problems:
        raise errors.Unprocessable("The file holds no household rows.")
    placements = place(session, [(v["lon"], v["lat"]) for _, v in checked]) if checked else []
    grids: dict[int, Grid] = {}
    records = []
    for (row, values), placement in zip(checked, placements, strict=True):
        if placement.grid_id is None:
            problems.append(RowError(row, "lon/lat", _outside(placement)))
            continue
        grid = grids.get(placement.grid_id) or session.get(Grid, placement.grid_id)
        grids[grid.id] = grid
        if scope is not None:
            try:
                scope.require_household_writer(grid)
            except errors.Forbidden as exc:
                problems.append(RowError(row, "lon/lat", exc.detail))
                continue
        lon, lat = values.pop("lon"), values.pop("lat")
        records.append({**values, "grid_id": grid.id, "location": f"SRID=4326;POINT({lon} {lat})"})
    if problems:
        problems.sort(key=lambda p: p.row)
        first = problems[0]
        raise errors.Unprocessable(
            f"{len(problems)} problem(s); nothing was imported. First: row {first.row}, "
            f"column {first.column}: {first.detail}",
            errors=[p.as_dict() for p in problems],
        )
    chunks = [records[i : i + IMPORT_CHUNK] for i in range(0, len(records), IMPORT_CHUNK)]
    for chunk in progress(chunks) if progress else chunks:
        session.execute(insert(Household), chunk)
    session.flush()
    by_grid: dict[str, int] = {}
    for record in records:
        code = grids[record["grid_id"]].code
        by_grid[code] = by_grid.get(code, 0) + 1
    return HouseholdImport(created=len(records), by_grid=dict(sorted(by_grid.items())))
