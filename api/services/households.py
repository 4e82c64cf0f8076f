"""Households: register, edit, list and bulk-import, each placed in its grid by PostGIS."""

from __future__ import annotations

import io
import itertools
import math
import re
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, BinaryIO

from geoalchemy2 import Geography
from shapely import Point
from sqlalchemy import ColumnElement, and_, cast, func, select, text
from sqlalchemy.orm import Session, joinedload

from api import clock, errors
from api.copy_rows import copy_rows
from api.db import set_local
from api.models import Grid, Household
from api.scope import Scope
from api.services import audit
from api.services.geometry import db_point
from api.services.household_files import (
    ADDRESS_COLUMNS,
    MAX_ERRORS,
    VACANT_MEMBERS,
    FileProblem,
    HouseholdReader,
    RowError,
    phone_problem,
    same_phone,
    spreadsheet_made,
)
from api.services.names import KEY_TABLE, SPACES, address_key
from api.services.tiles import household_visit_states
from api.services.weeks import parse_week
from geo.measure import haversine_m
from geo.validate import GeometryProblem, parse_point

IMPORT_CHUNK = 2000


@dataclass
class Placement:
    grid_id: int | None
    grid_code: str | None
    nearest_code: str | None = None
    nearest_m: float | None = None
    grid_version: int | None = None


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
            SELECT p.i, g.id, g.code, g.version, n.code AS nearest, n.metres
            FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]))
                 WITH ORDINALITY AS p(lon, lat, i)
            LEFT JOIN LATERAL (
                SELECT id, code, version FROM grids
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
    return [Placement(r.id, r.code, r.nearest, r.metres, r.version) for r in rows]


PLACE_TRIES = 3


def place_held(session: Session, points: Sequence[tuple[float, float]]) -> list[Placement]:
    """`place`, with the grids found held (FOR SHARE) until the transaction ends.

    A redraw or retirement of a grid recomputes its households from those committed: one
    placed on the old boundary and written after that recount stayed in a grid that no
    longer held it. Held, the grid's change waits for the households to be written (its
    recount then sees them); a grid changed before it was held (its version moved on, or it
    retired) is placed again, on the boundary now committed."""
    for _ in range(PLACE_TRIES):
        placements = place(session, points)
        wanted = {p.grid_id: p.grid_version for p in placements if p.grid_id is not None}
        if not wanted:
            return placements
        held = session.execute(
            select(Grid.id, Grid.version, Grid.retired_at)
            .where(Grid.id.in_(sorted(wanted)))
            .order_by(Grid.id)
            .with_for_update(read=True)
        ).all()
        if len(held) == len(wanted) and all(
            r.retired_at is None and wanted[r.id] == r.version for r in held
        ):
            return placements
    raise errors.Conflict(
        "The grids changed while the households were being placed; retry.",
    )


def _outside(placement: Placement) -> str:
    if placement.nearest_code is None:
        return "The point lies outside every grid (no grids are registered)."
    return (
        f"The point lies outside every grid; the nearest is {placement.nearest_code}, "
        f"{placement.nearest_m:.0f} m away."
    )


# The grid's code is in a household's answer: joined to the read, without its boundary, instead
# of a statement of its own after the audit entry's commit (which loaded the polygon too).
_GRID_CODE = joinedload(Household.grid).load_only(Grid.id, Grid.code)


def get_household(
    session: Session, scope: Scope | None, household_id: int, *, lock: bool = False
) -> Household:
    """The household, if the caller may read it. `lock` for an edit: two edits of one household
    queue, and the second applies its fields to what the first stored (a PATCH of `lat` alone
    keeps the `lon` just written, not the one read before it)."""
    stmt = select(Household).where(Household.id == household_id)
    if scope is not None:
        stmt = stmt.where(scope.households())
    if lock:
        # No grid joined: an edit may move the household to another grid, read after it.
        stmt = stmt.with_for_update(of=Household).execution_options(populate_existing=True)
    else:
        stmt = stmt.options(_GRID_CODE)
    household = session.scalar(stmt)
    if household is None:
        raise errors.NotFound(f"Household {household_id} not found.")
    return household


# A point filter's reach. By default the point itself: the flats of a stair entrance share one
# point, and a map tile rounds it (a z15 tile to ~0.3 m), so 1 m. At most a short walk.
AT_POINT_M = 1.0
MAX_NEAR_M = 500.0


@dataclass(frozen=True)
class Near:
    """Households within `metres` of (lon, lat), WGS-84."""

    lon: float
    lat: float
    metres: float = AT_POINT_M

    def condition(self) -> ColumnElement[bool]:
        """Within the distance on the spheroid (geography), the GiST index on the location
        narrowing it first by a box of the distance in degrees (wider in longitude away from
        the equator; 1 % over, so no household within reach falls outside it)."""
        point = db_point(self.lon, self.lat)
        dy = self.metres / _METRES_PER_DEGREE * 1.01
        dx = dy / max(math.cos(math.radians(self.lat)), 0.01)
        return and_(
            Household.location.op("&&")(func.ST_Expand(point, dx, dy)),
            func.ST_DWithin(
                cast(Household.location, Geography), cast(point, Geography), self.metres
            ),
        )


def list_households(
    session: Session,
    scope: Scope,
    *,
    grid: str | None = None,
    grid_id: int | None = None,
    tags: Sequence[str] = (),
    kind: str | None = None,
    near: Near | None = None,
    week: str | None = None,
    status: str = "active",
    address: str | None = None,
    page: int = 1,
    page_size: int = 50,
    now: datetime | None = None,
) -> tuple[list[Household], int]:
    """The households the caller sees, filtered, by id. With `week`, each carries its visit
    state in that week as the map's households layer draws it (`visit_status`). `status`:
    those in the register (`active`), those out of it (`removed`: not a worker's to list,
    403), or both (`all`). `address`: words each of which is one of its parts
    (`address_words_condition`)."""
    stmt = select(Household).where(scope.households())
    if status == "active":
        stmt = stmt.where(Household.removed_at.is_(None))
    else:
        if scope.role == "worker":
            raise errors.Forbidden(
                "The households out of the register are listed to grid leaders and admins."
            )
        if status == "removed":
            stmt = stmt.where(Household.removed_at.is_not(None))
    if grid:
        stmt = stmt.where(Household.grid_id.in_(select(Grid.id).where(Grid.code == grid)))
    if grid_id is not None:
        stmt = stmt.where(Household.grid_id == grid_id)
    if tags:
        stmt = stmt.where(Household.tags.overlap(list(tags)))
    if kind:
        stmt = stmt.where(Household.kind == kind)
    if near is not None:
        stmt = stmt.where(near.condition())
    if address is not None and (condition := address_words_condition(address)) is not None:
        stmt = stmt.where(condition)
    if week:
        parse_week(week)  # a 422 for a week that is not one (2026-W60), before any read
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(
        session.scalars(
            stmt.options(_GRID_CODE)
            .order_by(Household.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    )
    if week:
        states = household_visit_states(session, [h.id for h in rows], week, now or clock.now())
        for household in rows:
            household.visit_status = states[household.id]  # read by HouseholdSchema
    return rows, total


WINDOW_FOUND_MAX = 20  # households the window lists for one address: more, and a word is added


def window_lookup(session: Session, scope: Scope, address: str, day: date) -> list[Household]:
    """The households in the register at the address a resident says at the hall window on
    `day` (`address_words_condition`), in any grid of the community for the A-post worker
    (`Scope.window_households`; 403 for anyone else), by address; at most WINDOW_FOUND_MAX."""
    condition = address_words_condition(address)
    if condition is None:
        raise errors.Unprocessable(
            "Give one to four words of the address.", errors={"query": {"address": ["?"]}}
        )
    window = scope.window_households(session, day)
    if window is None:
        raise errors.Forbidden(
            "Only the worker at the hall window today (the A-post of a published roster) "
            "looks up the households of every grid of the community; yours are listed by "
            "GET /api/v1/households?address=."
        )
    stmt = (
        select(Household)
        .where(window, Household.removed_at.is_(None), condition)
        .options(_GRID_CODE)
        .order_by(*_number_order(Household.building), *_number_order(Household.room), Household.id)
        .limit(WINDOW_FOUND_MAX)
    )
    return list(session.scalars(stmt))


def _number_order(part: Any) -> tuple[Any, ...]:
    """A part's sort keys as a clerk reads a register: by its leading number (floor 2 before 10,
    room 201 before 1001; its digits without leading zeros, shorter first, then as text: no
    cast to overflow), then as written; a part with no number after those with one."""
    number = func.substring(part, "^0*([0-9]+)")
    return (number.is_(None), func.length(number), number, part)


def export_households(session: Session, scope: Scope, *, grid: str | None = None) -> list[Any]:
    """The households of the caller's reach (of one grid of it), in address order (numbers as
    numbers, `_number_order`), with their
    points as numbers and phones opened: the rows of a register file (`write_register`).
    Households out of the register are not in it (imported again, the file changes none of
    them). 404 for a grid the caller does not see."""
    scope.require_register_export()
    stmt = (
        select(
            Household.id,
            Household.building,
            Household.unit,
            Household.floor,
            Household.room,
            func.ST_X(Household.location).label("lon"),
            func.ST_Y(Household.location).label("lat"),
            Household.kind,
            Household.occupancy,
            Household.members,
            Household.tags,
            Household.phone,
        )
        .join(Grid, Grid.id == Household.grid_id)
        .where(scope.households(), Household.removed_at.is_(None))  # out of the register: out
        .order_by(
            Grid.code,
            *(key for part in ADDRESS_COLUMNS for key in _number_order(getattr(Household, part))),
            Household.id,
        )
    )
    if grid:
        grid_id = session.scalar(select(Grid.id).where(Grid.code == grid, scope.grids()))
        if grid_id is None:
            raise errors.NotFound(f"Grid {grid} not found.")
        stmt = stmt.where(Household.grid_id == grid_id)
    return list(session.execute(stmt))


def _grid_for(session: Session, scope: Scope | None, lon: float, lat: float) -> Grid:
    placement = place_held(session, [(lon, lat)])[0]
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
    """Register a household in the grid of its point; 409 for an address registered at the
    point already (`refuse_repeat`)."""
    lon, lat = _check_point(data["lon"], data["lat"])
    grid = _grid_for(session, scope, lon, lat)
    refuse_repeat(session, scope, data, lon, lat)
    _refuse_vacant_members(data, data.get("occupancy"), data.get("members"))
    if data.get("occupancy") == "vacant" and "members" not in data:
        data = {**data, "members": 0}  # nobody lives there (an import row's default too)
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
    if household.removed_at is not None:
        raise errors.Conflict(
            f"Household {household.id} left the register on "
            f"{household.removal_date.isoformat()}; undo its removal to edit it."
        )
    changes = dict(changes)
    _refuse_changed_since_read(household, changes.pop("expected", {}), changes)
    _refuse_vacant_members(
        changes,
        changes.get("occupancy", household.occupancy),
        changes.get("members", 0 if changes.get("occupancy") == "vacant" else household.members),
    )
    lon, lat = household_lonlat(household)
    moved = "lon" in changes or "lat" in changes
    if moved:
        lon, lat = _check_point(changes.get("lon", lon), changes.get("lat", lat))
        grid = _grid_for(session, scope, lon, lat)
    if moved or any(part in changes for part in ADDRESS_PARTS):
        # Only a change of the address or the point: households registered twice before the
        # check (`gridwork households spellings` names them) keep their other facts editable.
        address = {part: changes.get(part, getattr(household, part)) for part in ADDRESS_PARTS}
        refuse_repeat(session, scope, address, lon, lat, editing=household.id)
    if moved:
        household.grid_id = grid.id
        household.location = f"SRID=4326;POINT({lon} {lat})"
    if changes.get("occupancy") == "vacant" and "members" not in changes:
        changes = {**changes, "members": 0}  # nobody lives there, as a household registered so
    if "add_tags" in changes or "remove_tags" in changes:
        changes = dict(changes)
        removed = set(changes.pop("remove_tags", ()))
        kept = [tag for tag in household.tags if tag not in removed]
        changes["tags"] = kept + [t for t in changes.pop("add_tags", ()) if t not in kept]
    for key, value in changes.items():
        if key not in ("lon", "lat"):
            setattr(household, key, value)
    session.flush()
    session.refresh(household)
    return household


def _refuse_changed_since_read(household: Household, expected: dict, changes: dict) -> None:
    """409 naming the facts (`changed`: their values now) that are no longer what the sender
    read, unless already what it sends: the door's correction, sent as values long after the
    phone read them, undid the office's change made meanwhile without a word."""
    changed = {
        key: getattr(household, key)
        for key, read in expected.items()
        if getattr(household, key) not in (read, changes.get(key, read))
    }
    if changed:
        raise errors.ChangedSinceRead(
            "The household's facts changed since you read them: "
            + ", ".join(f"{key} is now {value}" for key, value in changed.items())
            + ". Read it again and correct what is still wrong.",
            record=household,
            changed=changed,
        )


def _refuse_vacant_members(given: dict[str, Any], occupancy: str | None, members: int | None):
    """422 naming the fields given when the household would be vacant with members (the door's
    or the office's slip: one of the two is wrong, and which is not ours to guess)."""
    fields = [k for k in ("occupancy", "members") if k in given]
    # Only when one of the two is sent: a household stored so before the rule still takes its
    # phone or tags (the door's tag correction too).
    if fields and occupancy == "vacant" and members:
        raise errors.Unprocessable(VACANT_MEMBERS, errors={k: [VACANT_MEMBERS] for k in fields})


def household_lonlat(household: Household) -> tuple[float, float]:
    from api.services.geometry import point_lonlat

    return point_lonlat(household.location)


IMPORT_MODES = ("create", "update")
# An update re-import matches a row to the registered household of its address nearest its
# point within this distance: a point corrected along its building, or to the other side of a
# grid border, is the same home; the same address farther off (another compound numbered alike)
# is another household, as the create mode's duplicate check holds it to be.
MATCH_RADIUS_M = 100.0
# Points this close (degrees, ~1 cm) are one point: a spreadsheet keeps 15 significant digits,
# so a register exported with the stored doubles (116.40250000000002) and saved in Excel comes
# back 116.4025. For the duplicate check, the update's match at the point, and its "changed?"
# (a row within it keeps the stored point). No phone places a home to a centimetre.
SAME_POINT_DEG = 1e-7
# Saved as CSV, Excel writes each number as its column shows it: a General column too narrow for
# 116.40251234 writes 116.4025. A row's coordinate of at least this many decimals that is the
# stored one so rounded (half away from zero, as Excel rounds) is the stored one: 4 decimals are
# ~5 m, within what a phone places a home to; 3 (~50 m) can be the next building, and are a move.
SHOWN_MIN_DECIMALS = 4
# The register facts a row edits (as a PATCH may); building, unit, floor and room are the key
# it is matched by, lon/lat (and so the grid) always given.
UPDATABLE = ("kind", "occupancy", "members", "tags", "phone")


@dataclass
class HouseholdImport:
    created: int
    by_grid: dict[str, int]
    updated: int = 0
    unchanged: int = 0
    # Where the file's header ends (rows above it, a title, were skipped), and the headings of
    # the columns it has that the import does not read: what a misnamed column shows as.
    header_row: int = 1
    ignored_columns: list[str] = field(default_factory=list)
    # Rows under the header taken for a template's notes (hints, a sample household): skipped.
    note_rows: list[int] = field(default_factory=list)


# The columns an import writes, but for its location (a point of the row's lon and lat).
COPY_COLUMNS = (
    "grid_id",
    "building",
    "unit",
    "floor",
    "room",
    "kind",
    "occupancy",
    "members",
    "tags",
    "phone",
)


def import_households(
    session: Session,
    scope: Scope | None,
    data: bytes | BinaryIO,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    audit_as: audit.Reader | None = None,
    audit_fields: Sequence[str] = (),
    mode: str = "create",
) -> HouseholdImport:
    """Import a register file all or nothing; every error names its row and column.

    The file is read as a stream, IMPORT_CHUNK rows at a time: each chunk is checked, placed
    in its grids by one SQL statement and written with COPY inside a savepoint. Any problem
    stops the writing (the rest is still checked, to report it) and rolls the savepoint
    back, so nothing is imported. `progress(done, total)` is called after each chunk, in
    bytes of the file. With `audit_as`, each chunk written is an audit entry: `audit_as`
    created those households (their ids), disclosing `audit_fields`, as creating one does.

    `mode="create"` (the default) refuses a row of a registered household (`_repeats`).
    `mode="update"` edits it instead, as a PATCH would (`_sort_update`): a row matches the
    household of its building, unit, floor and room nearest its point within MATCH_RADIUS_M
    (at the same point: the household the duplicate check finds); the columns the file has
    are applied, the others kept; a row equal to the household changes nothing and is counted
    unchanged; a row matching none is created. Each chunk's edits are one UPDATE, so the
    household triggers (history, report counts, must-visit recount) run once per chunk, and
    one audit entry says `audit_as` updated those households.

    A phone a spreadsheet shortened by its leading 0 (01065123456 saved as 1065123456,
    `household_files.LOST_ZERO`), or to the figures Excel shows in a narrow column
    (13812345678 saved as 1.38E+10), is the stored phone where it is that phone so shortened
    (`same_phone`: unchanged, the stored one kept); anywhere else, a row creating a household
    or changing its phone to it, the row is refused naming the phone (`phone_problem`).
    """
    if mode not in IMPORT_MODES:
        raise ValueError(f"mode must be one of {IMPORT_MODES}, not {mode!r}")
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        reader = HouseholdReader(stream, filename, content_type)
    except FileProblem as exc:
        raise errors.Unprocessable(str(exc)) from exc
    # Columns the file lacks keep the households' stored values in an update; members too,
    # unless a row makes its household vacant (`_keep_blanks`).
    given = set(reader.keys) | ({"members"} if "occupancy" in reader.keys else set())
    updatable = tuple(c for c in UPDATABLE if c in given)
    # Every row's problem, the file's and the placing's, in the reader's list: it stops reading
    # at MAX_ERRORS of them, so a file of a million bad rows costs a chunk, not a million.
    problems = reader.errors
    # Each chunk's placing and repeat check is an index probe per row, estimated past
    # jit_above_cost: PostgreSQL spent 40-60 ms compiling each for a statement that runs in
    # about as long (measured: a third of a 100,000-row import). For this transaction only.
    set_local(session, jit="off")
    refusals: dict[int, str | None] = {}
    by_grid: dict[str, int] = {}
    created = updated = unchanged = 0
    # The ids written so far and their rows, to name the row a later row repeats.
    written = _Written()
    # The registered households rows matched so far (update mode), to name both rows of two.
    matched = _Matched()
    savepoint = session.begin_nested()
    try:
        # The address locks a form takes (`refuse_repeat`), all before the first write: those
        # of the rows of a file of one chunk, every one for a longer file (its rows are not
        # known yet). A form of an address waits for the import to commit, and an import for
        # the forms holding one; each chunk's repeat check, a statement after the wait (READ
        # COMMITTED), sees the households they committed.
        chunks = reader.chunks(IMPORT_CHUNK)
        first = next(chunks, [])
        second = next(chunks, None)
        lock_addresses(session, [values for _, values in first] if second is None else None)
        ahead = [first] if second is None else [first, second]
        for chunk in itertools.chain(ahead, chunks):
            placed = _place_rows(session, scope, chunk, problems, refusals)
            if mode == "update":
                fresh, edits, same = _sort_update(
                    session, scope, placed, written, matched, refusals, problems, updatable
                )
            else:
                fresh, edits, same = _fresh(session, scope, placed, written, problems), [], 0
            for row, values, grid_code in fresh:
                by_grid[grid_code] = by_grid.get(grid_code, 0) + 1
                if (refused := phone_problem(row, values["phone"])) is not None:
                    problems.append(refused)
                if (made := spreadsheet_made(row, values)) is not None:
                    problems.append(made)
                if (vacant := _vacant_problem(row, values)) is not None:
                    problems.append(vacant)
            if not problems:
                ids = _copy_households(session, [values for _, values, _ in fresh])
                written.add(ids, [row for row, _, _ in fresh])
                created += len(ids)
                edited = _update_households(session, edits, updatable)
                updated += len(edited)
                unchanged += same
                if audit_as is not None:
                    for action, resource_ids in (("create", ids), ("update", edited)):
                        audit.record(
                            session,
                            user_id=audit_as.user_id,
                            action=action,
                            resource="household",
                            resource_ids=resource_ids,
                            fields=audit_fields,
                            ip=audit_as.ip,
                            path=audit_as.path,
                        )
            if progress:
                progress(reader.position(), reader.size)
    except FileProblem as exc:
        savepoint.rollback()
        raise errors.Unprocessable(str(exc)) from exc
    except BaseException:
        savepoint.rollback()
        raise
    if problems:
        savepoint.rollback()
        problems.sort(key=lambda p: p.row)
        first = problems[0]
        count = (
            f"{len(problems)} problem(s)"
            if len(problems) < MAX_ERRORS
            else f"At least {MAX_ERRORS} problems (reading stopped there)"
        )
        raise errors.Unprocessable(
            f"{count}; nothing was imported. First: row {first.row}, "
            f"column {first.column}: {first.detail}",
            errors=[p.as_dict() for p in problems[:MAX_ERRORS]],
        )
    savepoint.commit()
    if not reader.rows:
        raise errors.Unprocessable("The file holds no household rows.")
    return HouseholdImport(
        created=created,
        by_grid=dict(sorted(by_grid.items())),
        updated=updated,
        unchanged=unchanged,
        header_row=reader.header_row,
        ignored_columns=reader.unread,
        note_rows=reader.note_rows,
    )


Placed = tuple[int, dict[str, Any], str]  # file row, checked values (grid_id set), grid code


def _place_rows(
    session: Session,
    scope: Scope | None,
    chunk: Sequence[tuple[int, dict[str, Any]]],
    problems: list[RowError],
    refusals: dict[int, str | None],
) -> list[Placed]:
    """The chunk's rows with a valid point in a grid the caller may write households in (the
    grids held FOR SHARE, as `place_held` holds them); the others' problems, by row."""
    checked: list[tuple[int, dict[str, Any]]] = []
    for row, values in chunk:
        try:
            point = parse_point(values["lon"], values["lat"])
        except GeometryProblem as exc:
            problems.append(RowError(row, "lon/lat", exc.reason))
            continue
        values["lon"], values["lat"] = point.x, point.y
        checked.append((row, values))
    placements = place_held(session, [(v["lon"], v["lat"]) for _, v in checked])
    placed: list[Placed] = []
    for (row, values), placement in zip(checked, placements, strict=True):
        if placement.grid_id is None:
            problems.append(RowError(row, "lon/lat", _outside(placement)))
            continue
        if scope is not None:
            refusal = _refusal(session, scope, placement.grid_id, refusals)
            if refusal is not None:
                problems.append(RowError(row, "lon/lat", refusal))
                continue
        values["grid_id"] = placement.grid_id
        placed.append((row, values, placement.grid_code))
    return placed


def _fresh(
    session: Session,
    scope: Scope | None,
    placed: Sequence[Placed],
    written: _Written,
    problems: list[RowError],
) -> list[Placed]:
    """The create mode: the rows to create; a repeat of a household is a problem."""
    repeated = _repeats(session, scope, placed, written)
    fresh = []
    for item in placed:
        repeat = repeated.get(item[0])
        if repeat is None:
            fresh.append(item)
        else:
            problems.append(RowError(item[0], ADDRESS, repeat))
    return fresh


ADDRESS = "building/unit/floor/room"
_SAME = "the same address at the same point"


class _Written:
    """The ids this import wrote and the file row of each, to name a repeated row by its row.

    Compact (two machine arrays) so a 900,000-row register costs megabytes, not a dict; ids
    drawn from the sequence only grow, so an id's row is found by bisection."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.rows = array("q")

    def add(self, ids: Sequence[int], rows: Sequence[int]) -> None:
        self.ids.extend(ids)
        self.rows.extend(rows)

    def row_of(self, household_id: int) -> int | None:
        i = bisect_left(self.ids, household_id)
        if i < len(self.ids) and self.ids[i] == household_id:
            return self.rows[i]
        return None


def _same_point_repeats(placed: Sequence[Placed]) -> dict[int, int]:
    """The chunk's rows of an earlier row's address at the same point (within SAME_POINT_DEG,
    as the database's check and a form's: 116.4025 typed beside 116.40250000000002 exported
    was two households of one flat), and that earlier row."""
    seen: dict[tuple, list[tuple[float, float, int]]] = {}
    repeats = {}
    for row, values, _ in placed:
        lon, lat = values["lon"], values["lat"]
        earlier = seen.setdefault(_address(values), [])
        first = next(
            (
                r
                for x, y, r in earlier
                if abs(x - lon) <= SAME_POINT_DEG and abs(y - lat) <= SAME_POINT_DEG
            ),
            None,
        )
        if first is None:
            earlier.append((lon, lat, row))
        else:
            repeats[row] = first
    return repeats


def _repeats(
    session: Session, scope: Scope | None, placed: Sequence[Placed], written: _Written
) -> dict[int, str]:
    """Why each row of a chunk that repeats a household is refused, by row: the same address
    at the same point as an earlier row of the chunk, of a chunk written before (the
    database finds those), or as a household already registered (a file imported twice).
    Rooms of one building share a point; the same room at another point is another household.
    Once a problem stops the writing, a repeat of a row in an unwritten chunk goes unnoticed
    (memory stays one chunk's); the file is refused anyway, and the next try names it.
    A registered household is named only to a caller who may read it (`refuse_repeat`): one
    across a grid border within SAME_POINT_DEG may be another community's."""
    problems = {
        row: f"repeats row {first}: {_SAME}" for row, first in _same_point_repeats(placed).items()
    }
    seen: dict[int, bool] = {}  # grid id: whether the caller reads its households
    for row, stored in _match_rows(session, _MATCH_AT_POINT, placed, same=SAME_POINT_DEG).items():
        if row in problems:
            continue
        earlier = written.row_of(stored.id)
        if earlier is not None:
            problems[row] = f"repeats row {earlier}: {_SAME}"
            continue
        if scope is not None and stored.grid_id not in seen:
            seen[stored.grid_id] = scope.sees_grid(session.get(Grid, stored.grid_id))
        problems[row] = (
            f"{_SAME} is already registered as household {stored.id}"
            if scope is None or seen[stored.grid_id]
            else f"{_SAME} is already registered, in a grid outside yours"
        )
    return problems


# --- the update mode ------------------------------------------------------------------------------
_NEAR = f"the same address within {MATCH_RADIUS_M:.0f} m"
_NOT_YOURS = (
    f"{_NEAR} is a registered household you may not edit; it is not changed, and no second "
    "household is registered beside it"
)
_METRES_PER_DEGREE = 111_320.0


class _Matched:
    """The registered households this import's rows matched, and the row of each.

    A bitmap by id answers "matched before?" in constant time and little memory (ids up to
    a million: 125 kB; it grows with the largest id matched, an eighth of a byte an id); the
    row of a repeat (an error, so at most MAX_ERRORS of them) is found by a scan of two
    machine arrays, 16 bytes a matched row, as `_Written` keeps them."""

    def __init__(self) -> None:
        self.bits = bytearray()
        self.ids = array("q")
        self.rows = array("q")

    def add(self, household_id: int, row: int) -> None:
        byte = household_id >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits))))
        self.bits[byte] |= 1 << (household_id & 7)
        self.ids.append(household_id)
        self.rows.append(row)

    def row_of(self, household_id: int) -> int | None:
        byte = household_id >> 3
        if byte >= len(self.bits) or not self.bits[byte] >> (household_id & 7) & 1:
            return None
        return self.rows[self.ids.index(household_id)]


def _metres(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The distance between two rows' points."""
    return haversine_m(a["lon"], a["lat"], b["lon"], b["lat"])


ADDRESS_PARTS = ADDRESS_COLUMNS


def _address(values: Any) -> tuple[str, ...]:
    """What a row's or a stored household's address is compared by (`names.address_key`):
    0502 is 502, 3 号楼 is 3号楼."""
    if isinstance(values, dict):
        return tuple(address_key(values[part]) for part in ADDRESS_PARTS)
    return tuple(address_key(getattr(values, part)) for part in ADDRESS_PARTS)


# names.address_key in SQL, for the stored side of a match: households stored before their
# parts were made half-width, spaced one way and rid of invisible characters (７号楼, 3 号楼)
# are found by the key too, as are those stored with the leading zeros a file no longer has
# and those written in the other letter case (F502 for f502). Its parameters: _KEY_PARAMS.
# KEY_TABLE's characters in the order translate() takes them: those it replaces (full-width
# forms, capitals) and, last, those it drops (invisible characters, which have no counterpart).
_KEYED = sorted(KEY_TABLE, key=lambda code: KEY_TABLE[code] is None)
_KEY_PARAMS = {
    "key_from": "".join(map(chr, _KEYED)),
    "key_to": "".join(KEY_TABLE[code] for code in _KEYED if KEY_TABLE[code] is not None),
    "any_keyed": f"[{''.join(map(chr, _KEYED))}]",
    "spaces": f"[{SPACES}]+",
}


def address_key_sql(column: str) -> str:
    # translate() over the 95 full-width forms, 26 capitals and 5 invisible characters costs
    # ~2 us a value, most of the key's cost: only a value holding one of them is translated.
    return (
        "regexp_replace(regexp_replace("
        f"CASE WHEN {column} ~ CAST(:any_keyed AS text) "
        f"THEN translate({column}, :key_from, :key_to) ELSE {column} END, "
        "CAST(:spaces AS text), '', 'g'), '^0+([0-9]+)$', '\\1')"
    )


# What a clerk writes after a part's number says which part it is (7号楼, 7栋: the building;
# 2单元: the unit; 5层, 5楼: the floor; 502室: the room): a word looked up so is compared with
# that part only, without the suffix; a bare word (or one ending in 号) with any part. The stored
# parts are compared without such a suffix too: 7 finds building 7号楼, 7号楼 building 7.
_PART_SUFFIXES = (
    ("building", "号楼|栋|幢|座"),
    ("unit", "单元"),
    ("floor", "层|楼"),
    ("room", "室"),
    (None, "号"),
)
ADDRESS_WORD_SUFFIX = f"({'|'.join(suffix for _, suffix in _PART_SUFFIXES)})$"
_WORD_SUFFIXES = [(part, re.compile(f"({suffix})$")) for part, suffix in _PART_SUFFIXES]


def _number_key(key: str) -> str:
    return (key.lstrip("0") or "0") if key.isascii() and key.isdigit() else key


# Where a looked-up address is cut into words: spaces, commas and 、, and after a number's
# suffix ("3号楼2单元502" is 3号楼 2单元 502, as a resident says it). Not at a dash: rooms
# hold them (B1-2).
_WORD_BREAK = re.compile(r"[\s,，、]+")
_AFTER_SUFFIX = re.compile(
    r"([0-9A-Za-z\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A]+(?:号楼|栋|幢|座|单元|层|楼|室))(?=\S)"
)


def address_words(address: str) -> list[str]:
    """The words of a looked-up address (`_WORD_BREAK`, `_AFTER_SUFFIX`)."""
    return [w for w in _WORD_BREAK.split(_AFTER_SUFFIX.sub(r"\1 ", address)) if w]


def address_word_key(word: str) -> tuple[str | None, str]:
    """A looked-up word: the part its suffix names (None: any) and its key, `address_key`
    without the suffix, a number without its leading zeros (0502室 is room 502)."""
    key = address_key(word)
    for part, suffix in _WORD_SUFFIXES:
        if (bare := suffix.sub("", key)) != key:
            return part, _number_key(bare)
    return None, _number_key(key)


def address_words_condition(address: str) -> ColumnElement[bool] | None:
    """Households of which each word of `address` (`address_words`) is a part, as
    `address_word_key` reads it: "7号楼 2单元 502" finds building 7, unit 2, room 0502; a word
    given twice ("1 1 101") is two of its parts. None when no word is left to look up."""
    words = [w for w in map(address_word_key, address_words(address)) if w[1]]
    if not words:
        return None

    def key_of(part: str) -> str:
        return (
            f"regexp_replace(regexp_replace({address_key_sql(f'households.{part}')}, "
            "CAST(:word_suffix AS text), ''), '^0+([0-9]+)$', '\\1')"
        )

    clauses, params = [], {}
    for i, (part, count) in enumerate(Counter(p for p in words).items()):
        params[f"word{i}"] = part[1]
        if part[0] is not None:
            clauses.append(f"{key_of(part[0])} = CAST(:word{i} AS text)")
        else:
            hits = " + ".join(
                f"({key_of(p)} IS NOT DISTINCT FROM CAST(:word{i} AS text))::int"
                for p in ADDRESS_PARTS
            )
            clauses.append(f"({hits}) >= {count}")
    return text(f"({' AND '.join(clauses)})").bindparams(
        **_KEY_PARAMS, word_suffix=ADDRESS_WORD_SUFFIX, **params
    )


def same_address_part_sql(column: str, key: str) -> str:
    """`column` (stored) spells the part whose `address_key` is `key`. A stored value whose
    ASCII capitals made small (lower() in the C collation changes only A-Z) equals the key is
    its own (F502 for the key f502: a key holds no capital, no full-width form, no space or
    invisible character, so such a value's key is that); one that is ASCII, without a space and
    not led by a 0 is no other key's (`names.address_key` only makes its capitals small): the
    key is computed only for the rest (a Chinese name, a leading zero), the candidates of a
    match being every household within 100 m."""
    return (
        f'(lower({column} COLLATE "C") = {key} OR NOT (octet_length({column}) = length({column}) '
        f"AND strpos({column}, ' ') = 0 AND left({column}, 1) <> '0') "
        f"AND {address_key_sql(column)} = {key})"
    )


_STORED = """h.id, h.grid_id, h.building, h.unit, h.floor, h.room, h.kind, h.occupancy,
             h.members, h.tags, h.phone, h.removed_at, ST_X(h.location) AS lon,
             ST_Y(h.location) AS lat"""
# The chunk's rows (p: their points and the keys of their address parts), and a household (h)
# of a row's address (`same_address_part_sql`).
_CHUNK_ROWS = """FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[]),
                CAST(:building AS text[]), CAST(:unit AS text[]), CAST(:floor AS text[]),
                CAST(:room AS text[]))
         WITH ORDINALITY AS p(lon, lat, building, unit, floor, room, i)"""
_SAME_ADDRESS = "\n          AND ".join(
    same_address_part_sql(f"h.{part}", f"p.{part}") for part in ADDRESS_PARTS
)
# The household each row matches, one index probe a row: first at the row's point, within
# SAME_POINT_DEG, the exact point first (the duplicate check's match: a re-import of an
# unchanged register finds every row so, saved in Excel or not), then, for
# the rows found there by nobody, the nearest within the radius (a box around the point on the
# spatial index, then the distance on the spheroid).
_MATCH_AT_POINT = text(
    f"""
    SELECT p.i, {_STORED}
    {_CHUNK_ROWS}
    CROSS JOIN LATERAL (
        SELECT h.* FROM households h
        WHERE h.location && ST_Expand(ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), :same)
          AND h.removed_at IS NULL
          AND abs(ST_X(h.location) - p.lon) <= :same AND abs(ST_Y(h.location) - p.lat) <= :same
          AND {_SAME_ADDRESS}
        ORDER BY (ST_X(h.location) = p.lon AND ST_Y(h.location) = p.lat) DESC, h.id LIMIT 1) h
    """
)
_MATCH_NEAR = text(
    f"""
    SELECT p.i, {_STORED}
    {_CHUNK_ROWS}
    CROSS JOIN LATERAL (
        SELECT h.*, ST_Distance(h.location::geography,
                                ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography) AS m
        FROM households h
        WHERE h.location && ST_Expand(ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326),
                                      :degrees / greatest(cos(radians(p.lat)), 0.01), :degrees)
          AND h.removed_at IS NULL
          AND {_SAME_ADDRESS}
          AND ST_DWithin(h.location::geography,
                         ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography, :metres)
        ORDER BY m, h.id LIMIT 1) h
    """
)
# A removed household at the row's point, of its address: an update row of one that left.
_REMOVED_AT_POINT = text(
    _MATCH_AT_POINT.text.replace("AND h.removed_at IS NULL", "AND h.removed_at IS NOT NULL")
)
_LOCK = text(
    f"SELECT {_STORED} FROM households h WHERE h.id = ANY(CAST(:ids AS integer[])) "
    # NO KEY: visits of these households (their foreign key) are still recorded meanwhile.
    "ORDER BY h.id FOR NO KEY UPDATE"
)


# A form's repeat: a household of the address (by `names.address_key`) at the point, within
# SAME_POINT_DEG, the exact point first, as an import row's (`_MATCH_AT_POINT`); a household
# being edited is not its own repeat, nor is one out of the register (removed: the flat's next
# household is a new one, as an import's row of it is).
_REGISTERED_AT = text(
    f"""
    SELECT h.id FROM households h
    WHERE h.location && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :same)
      AND abs(ST_X(h.location) - :lon) <= :same AND abs(ST_Y(h.location) - :lat) <= :same
      AND h.id IS DISTINCT FROM CAST(:editing AS integer) AND h.removed_at IS NULL
      AND {" AND ".join(same_address_part_sql(f"h.{part}", f":{part}") for part in ADDRESS_PARTS)}
    ORDER BY (ST_X(h.location) = :lon AND ST_Y(h.location) = :lat) DESC, h.id LIMIT 1
    """
)
# Advisory lock class of an address's registration (photos' and audit's are others): two
# forms of one address, sent at once, are checked one after the other, and a form and an
# import of it likewise. An address's lock is one of ADDRESS_LOCKS, by the hash of its key:
# an import holds the locks of all its rows until it commits, and a lock a key would hold
# the 900,000 distinct addresses of a city's register, where PostgreSQL's shared lock table
# has room for max_locks_per_transaction x max_connections (64 x 100) locks in all. Two
# forms of other addresses share a lock one time in ADDRESS_LOCKS, for a form's
# milliseconds.
_ADDRESS_LOCK = 6
ADDRESS_LOCKS = 256
_LOCK_ADDRESS = text("SELECT pg_advisory_xact_lock(:lock, hashtext(:key) & :last)")
# An import's locks, in ascending order (so two imports, or an import and a form, each
# waiting for a lock the other holds, cannot be), each taken once: those of its keys, or all.
_LOCK_ADDRESSES = text(
    """
    WITH locks AS MATERIALIZED (
        SELECT DISTINCT hashtext(k) & :last AS n FROM unnest(CAST(:keys AS text[])) k ORDER BY n)
    SELECT count(pg_advisory_xact_lock(:lock, n)) FROM locks
    """
)
_LOCK_ALL_ADDRESSES = text(
    "SELECT count(pg_advisory_xact_lock(:lock, n)) FROM generate_series(0, :last) n"
)


def _address_lock_key(keys: Sequence[str]) -> str:
    """What an address's lock is chosen by: its parts' keys (`names.address_key`)."""
    return "\x1f".join(keys)


def lock_addresses(session: Session, rows: Sequence[dict[str, Any]] | None) -> None:
    """Hold, until the transaction ends, the address locks of `rows` (an import's values), or
    with None all of them (an import whose rows are not all known before its first write).

    Taken before the import's first write: holding some and waiting for another once it has
    written, an import could wait for a form that waits for its writes (the report's counts
    of a grid and week, which every household written in them updates)."""
    params = {"lock": _ADDRESS_LOCK, "last": ADDRESS_LOCKS - 1}
    if rows is None:
        session.execute(_LOCK_ALL_ADDRESSES, params)
    else:
        keys = [_address_lock_key(_address(values)) for values in rows]
        session.execute(_LOCK_ADDRESSES, {**params, "keys": keys})


def refuse_repeat(
    session: Session,
    scope: Scope | None,
    address: dict[str, Any],
    lon: float,
    lat: float,
    *,
    editing: int | None = None,
) -> None:
    """409 when a household other than `editing` is registered at the address at the point:
    one flat, registered once, as the import holds it. The household is named only to a
    caller who may see it; to another the answer says only that the flat is registered.

    Forms of one address are serialized (a transaction-scoped lock on its key, taken before
    the look): the second, under READ COMMITTED, sees the first once it has committed."""
    keys = {part: address_key(address.get(part) or "") for part in ADDRESS_PARTS}
    session.execute(
        _LOCK_ADDRESS,
        {
            "lock": _ADDRESS_LOCK,
            "last": ADDRESS_LOCKS - 1,
            "key": _address_lock_key(list(keys.values())),
        },
    )
    found = session.scalar(
        _REGISTERED_AT,
        {"lon": lon, "lat": lat, "same": SAME_POINT_DEG, "editing": editing, **keys, **_KEY_PARAMS},
    )
    if found is None:
        return
    if scope is None or session.scalar(
        select(Household.id).where(Household.id == found, scope.households())
    ):
        raise errors.Conflict(
            f"This address is already registered at this point as household {found}.",
            household_id=found,
        )
    raise errors.Conflict(
        "This address is already registered at this point, in a grid outside yours; "
        "no second household is registered beside it."
    )


def _match_rows(session: Session, stmt, rows: Sequence[Placed], **params) -> dict[int, Any]:
    if not rows:
        return {}
    found = session.execute(
        stmt,
        {
            "lon": [v["lon"] for _, v, _ in rows],
            "lat": [v["lat"] for _, v, _ in rows],
            **{part: [address_key(v[part]) for _, v, _ in rows] for part in ADDRESS_PARTS},
            **_KEY_PARAMS,
            **params,
        },
    ).all()
    return {rows[r.i - 1][0]: r for r in found}


def _stored_phone(ciphertext: str | None) -> str | None:
    return Household.__table__.c.phone.type.process_result_value(ciphertext, None)


def _keep_blanks(values: dict[str, Any], stored: Any) -> dict[str, Any]:
    """A registered household's row with its kind, occupancy or members left blank (or out of
    the file) keeps what is stored: a clerk who filled in the phone only made a tenants'
    shop a family of one owning a home (the defaults of a household registered by the row).
    Members left out of a row that makes the household vacant are 0, as a PATCH's."""
    for column in ("kind", "occupancy"):
        if column in values["blank"]:
            values[column] = getattr(stored, column)
    if "members" in values["blank"]:
        values["members"] = 0 if values["occupancy"] == "vacant" else stored.members
    return values


def _edit_problem(row: int, values: dict[str, Any], changed: dict[str, Any]) -> RowError | None:
    """What is wrong with a registered household's row as it would leave the household: its
    phone (`phone_problem`), or vacant with members (the row's, or those stored)."""
    if "phone" in changed and (refused := phone_problem(row, values["phone"])):
        return refused
    if {"occupancy", "members"} & set(changed):
        return _vacant_problem(row, values)
    return None


def _vacant_problem(row: int, values: dict[str, Any]) -> RowError | None:
    """A row leaving its household vacant with members (`VACANT_MEMBERS`)."""
    if values["occupancy"] == "vacant" and values["members"]:
        return RowError(row, "members", VACANT_MEMBERS)
    return None


def _edit(values: dict[str, Any], stored: Any, updatable: Sequence[str]) -> dict[str, Any]:
    """What the row changes of the stored household ({} for nothing): the row's values made
    the household's where they differ (care tags as a set: listed in another order, the
    stored order stays, and no history row is written for it; a point within SAME_POINT_DEG
    of the stored one, or the stored one rounded to a column's display (`_shown_as`), in the
    same grid, is the stored one; so is the stored phone without
    the leading 0s a spreadsheet dropped, `same_phone`)."""
    changed = {}
    for column in updatable:
        new, old = values[column], getattr(stored, column)
        if column == "tags":
            same = set(new) == set(old)
        elif column == "phone":
            old = _stored_phone(old)
            same = same_phone(new, old)
        else:
            same = new == old
        if not same:
            changed[column] = new
    if (
        _shown_as(values["lon"], stored.lon)
        and _shown_as(values["lat"], stored.lat)
        and values["grid_id"] == stored.grid_id
    ):
        values["lon"], values["lat"] = stored.lon, stored.lat  # the stored point, kept
    else:
        changed["location"] = (values["lon"], values["lat"], values["grid_id"])
    return changed


def _shown_as(cell: float, stored: float) -> bool:
    """Whether a row's coordinate is the stored one: within SAME_POINT_DEG, or the stored one
    rounded to the cell's decimals when it has SHOWN_MIN_DECIMALS or more (a column's display
    that a CSV saved)."""
    if abs(cell - stored) <= SAME_POINT_DEG:
        return True
    shown = repr(float(cell))  # the shortest text of the double: the cell's digits
    if "e" in shown:
        return False
    decimals = len(shown.partition(".")[2])
    if decimals < SHOWN_MIN_DECIMALS:
        return False
    step = Decimal(1).scaleb(-decimals)
    return Decimal(repr(float(stored))).quantize(step, ROUND_HALF_UP) == Decimal(shown)


def _sort_update(
    session: Session,
    scope: Scope | None,
    placed: Sequence[Placed],
    written: _Written,
    matched: _Matched,
    refusals: dict[int, str | None],
    problems: list[RowError],
    updatable: Sequence[str],
) -> tuple[list[Placed], list[tuple[int, dict[str, Any]]], int]:
    """The update mode's sorting of a chunk: the rows to create, the edits to make (household
    id, the row's values) with those households locked, and how many rows change nothing.

    Refused, by row: a row of the address of an earlier row at the same point, or of an earlier
    new row within the radius, or of a household created by an earlier row (`repeats row`); a
    row matching the household an earlier row matched (both rows named); a row matching a
    household of a grid the caller may not edit (the row named, the household not disclosed);
    a row changing the phone to one a spreadsheet spoilt (`phone_problem`: 1.38E+10, a landline
    without its leading 0).
    Two registered households of one address within the radius of each other are told apart
    by their points: rows at their points (within SAME_POINT_DEG) match each its own."""
    # The same address at the same point twice in the chunk, as the create mode finds it.
    repeats = _same_point_repeats(placed)
    for row, first in repeats.items():
        problems.append(RowError(row, ADDRESS, f"repeats row {first}: {_SAME}"))
    kept = [item for item in placed if item[0] not in repeats]
    found = _match_rows(session, _MATCH_AT_POINT, kept, same=SAME_POINT_DEG)
    found.update(
        _match_rows(
            session,
            _MATCH_NEAR,
            [item for item in kept if item[0] not in found],
            degrees=MATCH_RADIUS_M / _METRES_PER_DEGREE * 1.01,
            metres=MATCH_RADIUS_M,
        )
    )
    fresh: list[Placed] = []
    # New rows by address: a later new row of the address within the radius would, in a later
    # chunk, match the household the first one creates; in the same chunk it is refused alike.
    fresh_by_address: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
    candidates: dict[int, tuple[int, dict[str, Any]]] = {}  # household id: (row, values)
    same = 0
    for row, values, grid_code in kept:
        stored = found.get(row)
        if stored is None:
            alike = fresh_by_address.setdefault(_address(values), [])
            earlier = next((r for r, v in alike if _metres(v, values) <= MATCH_RADIUS_M), None)
            if earlier is not None:
                problems.append(RowError(row, ADDRESS, f"repeats row {earlier}: {_NEAR}"))
                continue
            alike.append((row, values))
            fresh.append((row, values, grid_code))
            continue
        earlier = written.row_of(stored.id)
        if earlier is not None:
            problems.append(RowError(row, ADDRESS, f"repeats row {earlier}: {_NEAR}"))
            continue
        if scope is not None and _refusal(session, scope, stored.grid_id, refusals) is not None:
            problems.append(RowError(row, ADDRESS, _NOT_YOURS))
            continue
        earlier = matched.row_of(stored.id)
        if earlier is not None:
            problems.append(
                RowError(row, ADDRESS, f"matches household {stored.id}, as row {earlier} does")
            )
            continue
        matched.add(stored.id, row)
        changed = _edit(_keep_blanks(values, stored), stored, updatable)
        if not changed:
            same += 1
        elif refused := _edit_problem(row, values, changed):
            problems.append(refused)
        else:
            candidates[stored.id] = (row, values)
    fresh = _refuse_removed(session, scope, fresh, problems)
    if problems or not candidates:  # nothing will be written: nothing to lock
        return fresh, [], same
    # The households to edit, locked and read again (as a PATCH locks the one it edits): an
    # edit committed since the read above is what the row is compared with and applied to.
    edits = []
    for stored in session.execute(_LOCK, {"ids": sorted(candidates)}):
        row, values = candidates[stored.id]
        if _address(values) != _address(stored) or stored.removed_at is not None:
            raise errors.Conflict(
                f"Household {stored.id} (row {row}) was edited or taken out of the register "
                "while the file was imported; import it again."
            )
        if scope is not None and _refusal(session, scope, stored.grid_id, refusals) is not None:
            problems.append(RowError(row, ADDRESS, _NOT_YOURS))
            continue
        changed = _edit(_keep_blanks(values, stored), stored, updatable)
        if changed and (refused := _edit_problem(row, values, changed)):
            problems.append(refused)  # the phone or the facts edited meanwhile
        elif changed:
            if "tags" in updatable and set(values["tags"]) == set(stored.tags):
                values["tags"] = list(stored.tags)
            if "phone" in updatable and "phone" not in changed:
                values["phone"] = _stored_phone(stored.phone)  # 01065123456, not 1065123456
            edits.append((stored.id, values))
        else:
            same += 1
    return fresh, edits, same


def _refuse_removed(
    session: Session, scope: Scope | None, fresh: list[Placed], problems: list[RowError]
) -> list[Placed]:
    """The update mode's new rows but those of a household out of the register (removed) at
    their point, each a problem: a row of a register exported before the household left (an
    old file imported again) would register the family that left as a new household. A new
    family at that door is registered in create mode, or by a form. The household is named
    to a caller who may read it."""
    removed = _match_rows(session, _REMOVED_AT_POINT, fresh, same=SAME_POINT_DEG)
    for row, stored in removed.items():
        named = scope is None or session.scalar(
            select(Household.id).where(Household.id == stored.id, scope.households())
        )
        who = f"household {stored.id}" if named else "a household of a grid outside yours"
        problems.append(
            RowError(
                row,
                ADDRESS,
                f"{_SAME} is {who}, which left the register: leave the row out, undo its "
                "removal, or register the new household in create mode",
            )
        )
    return [item for item in fresh if item[0] not in removed]


def _update_households(
    session: Session, edits: Sequence[tuple[int, dict[str, Any]]], updatable: Sequence[str]
) -> list[int]:
    """Apply the edits in one UPDATE; the ids edited.

    One statement: the households triggers (history rows, report counts, the must-visit
    recount of the retagged) run once over all of them, as for the one household of a PATCH.
    The phone is encrypted here as the column's type encrypts it on a PATCH."""
    if not edits:
        return []
    phone = Household.__table__.c.phone.type
    dialect = session.connection().dialect
    columns: dict[str, tuple[str, list[Any]]] = {
        "id": ("integer", [i for i, _ in edits]),
        "grid_id": ("integer", [v["grid_id"] for _, v in edits]),
        "lon": ("float8", [v["lon"] for _, v in edits]),
        "lat": ("float8", [v["lat"] for _, v in edits]),
    }
    for column in updatable:
        values = [v[column] for _, v in edits]
        if column == "tags":
            # A text[] of arrays cannot be unnested row by row: each row's tags as one string.
            values = [",".join(tags) for tags in values]
        elif column == "phone":
            values = [phone.process_bind_param(value, dialect) for value in values]
        columns[column] = ("integer" if column == "members" else "text", values)
    assigned = {
        "grid_id": "u.grid_id",
        "location": "ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)",
        **{c: f"u.{c}" for c in updatable},
        "updated_at": "now()",
    }
    if "tags" in updatable:
        assigned["tags"] = "string_to_array(u.tags, ',')"
    arrays = ", ".join(f"CAST(:{c} AS {t}[])" for c, (t, _) in columns.items())
    session.execute(
        text(
            f"UPDATE households h SET {', '.join(f'{c} = {e}' for c, e in assigned.items())} "
            f"FROM unnest({arrays}) AS u({', '.join(columns)}) WHERE h.id = u.id"
        ),
        {c: values for c, (_, values) in columns.items()},
    )
    return [household_id for household_id, _ in edits]


def _refusal(session: Session, scope: Scope, grid_id: int, seen: dict[int, str | None]):
    """Why the caller may not write households in the grid (None: they may), once per grid."""
    if grid_id not in seen:
        try:
            scope.require_household_writer(session.get(Grid, grid_id))
            seen[grid_id] = None
        except errors.Forbidden as exc:
            seen[grid_id] = exc.detail
    return seen[grid_id]


def _copy_households(session: Session, records: list[dict[str, Any]]) -> list[int]:
    """COPY the rows in, on the session's own connection (so inside its transaction); their ids.

    The ids are drawn from the table's sequence first (COPY returns nothing), for the audit
    entry of their creation. `copy_rows` writes each column by its type, as an INSERT through
    SQLAlchemy would (the phone encrypted, the point as EWKB).
    """
    if not records:
        return []
    ids = list(
        session.scalars(
            text(
                "SELECT nextval(pg_get_serial_sequence('households', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": len(records)},
        )
    )
    rows = (
        {
            "id": household_id,
            **{name: r[name] for name in COPY_COLUMNS},
            "location": Point(r["lon"], r["lat"]),
        }
        for household_id, r in zip(ids, records, strict=True)
    )
    copy_rows(session, Household.__table__, rows)
    return ids
