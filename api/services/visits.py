"""Visits: idempotent batch ingest with datum conversion and evidence, reads, the week's plan."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, TypeVar

import orjson
import shapely
from geoalchemy2 import Geometry
from geoalchemy2.shape import to_shape
from shapely import union_all
from shapely.geometry import Point
from sqlalchemy import Integer, TypeDecorator, func, or_, select, text
from sqlalchemy import union_all as sql_union_all
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from api import clock, errors
from api.copy_rows import copy_rows
from api.db import is_any_of
from api.models import Grid, GridVersion, Household, HouseholdHistory, User, Visit
from api.models.tasks import URGENCY_DEFAULT
from api.models.visits import FOLLOW_UP_DEFAULT
from api.scope import Scope
from api.services import audit
from api.services.audit import Reader
from api.services.geometry import lonlat_columns, points_of
from api.services.households import _outside, place
from api.services.ledger import LedgerRow, household_ledger
from api.services.weeks import LOCAL, parse_week, week_bounds, week_of
from geo.datum import to_wgs84_many
from geo.evidence import Evidence, EvidenceInput, grade_lazily
from geo.routing import walking_order
from geo.validate import GeometryProblem, check_lon_lat, plainly_in_china

log = logging.getLogger("gridwork.visits")

R = TypeVar("R")

MAX_BATCH = 500


class Refusal(StrEnum):
    """Why a batch item is rejected: the result's `code`, stable for clients to word in their
    user's language (the workers' app: web/src/reasons.js, which tests/api/test_web.py holds
    to this list). The result's `reason` says it in English, with the particulars."""

    INVALID = "invalid"
    NOT_AN_OBJECT = "not-an-object"
    HOUSEHOLD_NOT_FOUND = "household-not-found"
    LOCATION_INVALID = "location-invalid"
    OUTSIDE_EVERY_GRID = "outside-every-grid"
    NOT_YOUR_GRID = "not-your-grid"
    ID_TAKEN = "id-taken"
    REPEATS_REJECTED_ITEM = "repeats-rejected-item"
    NOT_STORED = "not-stored"
    DATABASE_RULE = "database-rule"
    AFTER_SWITCH_OFF = "after-switch-off"
    HOUSEHOLD_REMOVED = "household-removed"


# What each code means (the OpenAPI description of `code`).
REFUSALS: dict[Refusal, str] = {
    Refusal.INVALID: "a field is missing or has a bad value; `errors` names the fields",
    Refusal.NOT_AN_OBJECT: "the item is not a JSON object",
    Refusal.HOUSEHOLD_NOT_FOUND: "no such household in your grids (one of another grid is "
    "answered alike)",
    Refusal.LOCATION_INVALID: "the position, or the premises' point, is not a longitude and "
    "latitude in WGS-84 (out of range or swapped, as sent or once converted)",
    Refusal.OUTSIDE_EVERY_GRID: "the premises' point lies outside every grid (`nearest_grid`, "
    "`distance_m`)",
    Refusal.NOT_YOUR_GRID: "the premises lie in a grid not yours whose named reliever you are "
    "not on the visit's date (`grid_code`); handed over by a grid leader, a grid they do not lead",
    Refusal.ID_TAKEN: "the id belongs to another worker's visit; make a new UUID",
    Refusal.REPEATS_REJECTED_ITEM: "repeats an earlier item of the batch that was rejected",
    Refusal.NOT_STORED: "the visit could not be stored; send it again",
    Refusal.DATABASE_RULE: "the visit breaks a rule of the database",
    Refusal.AFTER_SWITCH_OFF: "handed over (`POST /visits/handover`): made after the worker's "
    "account was switched off (`switched_off_at`)",
    Refusal.HOUSEHOLD_REMOVED: "the household left the register before the visit's time "
    "(`removed_on`, the day it left, Asia/Shanghai; `removal_reason`): a visit made before "
    "that is taken, however late it is sent",
}


@dataclass
class BatchItem:
    """One item of a batch as the schema left it: its id (as sent) and data (with the id as a
    UUID), or why it is bad."""

    raw_id: Any
    data: dict[str, Any] | None = None
    reason: str | None = None
    errors: dict[str, Any] | None = None
    code: Refusal = Refusal.INVALID


@dataclass
class _Accepted:
    index: int
    id: uuid.UUID
    data: dict[str, Any]
    day: date  # the visit's local (Asia/Shanghai) date
    grid_id: int = 0
    household: Any = None  # (id, grid_id, location) of the household visited
    home: Point | None = None  # its location
    point: Point | None = None  # WGS-84, once converted
    relief: bool = False
    # The grids open to the worker when the visit was made, beyond those they hold now (held
    # that day, or a relief shift's until it was handed on or their leave approved).
    open: set[int] = field(default_factory=set)


class StoredVisit(SimpleNamespace):
    """A visit this batch inserted: the row it sent (notes in plain text, the position as a
    WGS-84 shapely point) with its worker and grid, read like a `Visit` by the answer and the
    stored-visits hook. Not an ORM object: building 500 of them, or mapping 500 RETURNING
    rows onto them, cost more than the INSERT itself. A new visit has no photos yet."""

    photos: tuple = ()


def on_visits_stored(session: Session, visits: Sequence[Visit | StoredVisit]) -> None:
    """Hook called once per batch with the visits it created, in the batch's transaction.

    Runs after the visits are flushed and before the view commits, so anything it writes is
    committed (or lost) together with them; replays (duplicates) never reach it. A visit
    flagged for follow-up becomes a task for its grid (source `visit`, one per visit); one
    finding its household gone (`moved_out`) asks the register's keepers to take it out.
    """
    from api.services.household_removal import suggest_removals
    from api.services.tasks import task_from_visit

    for visit in visits:
        if visit.follow_up:
            task_from_visit(session, visit)
    suggest_removals(session, visits)


def _result(item_id: Any, status: str, *, visit: Visit | None = None, **extra) -> dict:
    out: dict[str, Any] = {"id": str(item_id) if item_id is not None else None, "status": status}
    out.update(extra)
    if visit is not None:
        out["visit"] = visit
    return out


def _rejected(item_id: Any, code: Refusal, reason: str, details: Any = None, **extra: Any) -> dict:
    if details:
        extra["errors"] = details
    # Refusal(code): a code not in the list fails here, not in a client that cannot say it.
    return _result(item_id, "rejected", code=Refusal(code).value, reason=reason, **extra)


def ingest_batch(
    session: Session,
    scope: Scope,
    items: Sequence[BatchItem],
    *,
    now: datetime | None = None,
    confined_to: frozenset[int] | None = None,
) -> list[dict]:
    """Store a batch of visits; one result per item, in order (created, duplicate, rejected).

    Nothing an item carries can fail the batch: bad items are rejected with their reason,
    replays and concurrent twins come back as `duplicate` with the stored visit.
    `confined_to`: the grids whose visits may be stored (a handover by a grid leader); a visit
    of another grid is `not-your-grid`.
    """
    return ingest_and_render(session, scope, items, None, now=now, confined_to=confined_to)[0]


def ingest_and_render(
    session: Session,
    scope: Scope,
    items: Sequence[BatchItem],
    render: Callable[[list[dict]], R] | None,
    *,
    now: datetime | None = None,
    confined_to: frozenset[int] | None = None,
) -> tuple[list[dict], R | None]:
    """`ingest_batch`, and `render(results)` made while PostgreSQL finishes storing the rows.

    Once the last row is sent, PostgreSQL still runs the statement's triggers (the report's
    aggregates, the households' last visit): about a quarter of a 500-visit batch. The
    caller's answer is made in that time, from the results the batch has if the rows are
    stored, and given back only if they were (else None: the rows went again another way;
    render the results returned). Nothing made in that time reads the database.
    """
    scope.require_visit_recorder()
    if len(items) > MAX_BATCH:
        raise errors.PayloadTooLarge(f"A batch holds at most {MAX_BATCH} visits.")
    now = now or clock.now()
    results: list[dict | None] = [None] * len(items)

    ids: dict[int, uuid.UUID] = {}
    for i, item in enumerate(items):
        try:
            ids[i] = item.data["id"] if item.data is not None else uuid.UUID(str(item.raw_id))
        except ValueError:
            reason = item.reason or "`id` must be a UUID made by the client."
            results[i] = _rejected(item.raw_id, item.code, reason, item.errors)
    first_of: dict[uuid.UUID, int] = {}
    pending: list[_Accepted] = []
    twins: list[int] = []
    for i, vid in ids.items():
        item = items[i]
        if vid in first_of:
            twins.append(i)  # the same id twice in one batch: the first one counts
        elif item.data is None:
            reason = item.reason or "The visit is not valid."
            results[i] = _rejected(vid, item.code, reason, item.errors)
        else:
            first_of[vid] = i
            day = item.data["visited_at"].astimezone(LOCAL).date()
            pending.append(_Accepted(index=i, id=vid, data=item.data, day=day))

    days = {a.day for a in pending}
    # The grids open to the worker on each visit's date beyond those they hold now: a relief
    # shift's, and those they held that day and were given up since (a visit made offline
    # before the office handed the worker another grid).
    held = scope.held_grids(session, days)
    relief = scope.relief_grids(session, days)
    opened = {day: held[day].union(relief[day]) for day in days}
    for a in pending:
        a.open = _open_then(a.data["visited_at"], opened[a.day], held[a.day], relief[a.day])
    # Every grid the batch may touch, whole, in one query: the visited ones (for the scope
    # check) and the caller's territory (for the evidence). Whole grids, not just codes and
    # boundaries: the answer's `grid_code` then finds them in the session.
    accepted, grids = _place_and_check(session, scope, pending, results, opened, held, confined_to)
    # Rows go in id order, so two batches racing on overlapping ids lock them in the same
    # order and cannot deadlock.
    accepted.sort(key=lambda a: a.id.int)  # UUIDs order by their integer, as PostgreSQL's do
    rows = _build_rows(session, scope, accepted, now, opened, grids)
    worker = session.get(User, scope.user_id)  # read now: nothing reads while the rows store
    settle = _Settle(scope, results, ids, twins, first_of, confined_to)
    rendered: list[tuple[dict, list[dict], R]] = []

    def meanwhile(sent: list[dict]) -> None:
        created = _stored_visits(sent, worker, grids)
        final = settle(None, created)
        if final is not None and render is not None:
            rendered.append((created, final, render(final)))

    created, copied = _insert(session, rows, results, accepted, (worker, grids), meanwhile)
    if copied and rendered:
        created, final, answer = rendered[0]
    else:
        final, answer = settle(session, created), None
    on_visits_stored(session, [created[k] for k in sorted(created, key=str)])
    return final, answer


def _open_then(
    at: datetime, opened: set[int], held: set[int], relief: dict[int, datetime | None]
) -> set[int]:
    """The grids open to the worker at `at`: those `opened` on its day, but a relieved grid
    closed to them by then (`Scope.relief_grids`: the shift handed on, their leave approved),
    unless they held it that day. A visit made before is judged as it was made: the worker was
    rostered there."""
    closed = {g for g, until in relief.items() if until is not None and at >= until} - held
    return opened - closed if closed else opened


def _grids_led_of_held(session: Session, scope: Scope, worker: User) -> frozenset[int] | None:
    """The grids whose visits `scope` sends for `worker`: a grid leader those they lead, if the
    worker ever held or led one of them (403 if not); the community admin every grid (None)."""
    if scope.role == "community_admin":
        return None
    led = frozenset(session.scalars(select(Grid.id).where(Grid.leader_id == scope.user_id)))
    periods = Scope.for_user(session, worker).periods()
    held = select(periods.c.grid_id).where(periods.c.grid_id.in_(led))
    if not led or session.scalar(held.limit(1)) is None:
        raise errors.Forbidden(
            f"{worker.username} held no grid you lead: the community admin sends their visits."
        )
    return led


def hand_over_batch(
    session: Session,
    scope: Scope,
    worker_id: int,
    items: Sequence[BatchItem],
    actor: Reader,
    *,
    now: datetime | None = None,
) -> list[dict]:
    """A switched-off worker's visits, left unsent on the phone they handed in, sent by their
    community's admin or by the leader of a grid they held: stored as the worker's, each judged
    as the worker's own batch would be (their grids on the visit's date), those made before the
    switch-off only (the others `after-switch-off`); a leader sends those of the grids they
    lead only (the others `not-your-grid`, left on the phone for the admin). One result per
    item, in order. The handing over is in the audit log under the sender (a `create` of the
    visits, field `worker`).

    A switched-off account signs in no more, and the app keeps a visit until its own worker
    sends it: a worker who left with visits unsent lost them, and the week's coverage too."""
    if scope.role not in ("community_admin", "grid_leader"):
        raise errors.Forbidden(
            "Only the community admin, or the leader of a grid the worker held, sends a "
            "switched-off worker's visits."
        )
    worker = session.get(User, worker_id)
    if (
        worker is None
        or worker.community_code != scope.community_code
        or worker.role not in ("worker", "grid_leader")
    ):
        raise errors.NotFound(f"Worker {worker_id} not found.")
    led = _grids_led_of_held(session, scope, worker)
    if worker.active:
        raise errors.Conflict(
            f"{worker.username}'s account is not switched off: they send their own visits "
            "(signed in on the phone as themselves)."
        )
    until = worker.switched_off_at
    results: list[dict | None] = [None] * len(items)
    kept: list[int] = []
    for i, item in enumerate(items):
        if item.data is not None and until is not None and item.data["visited_at"] >= until:
            results[i] = _rejected(
                item.raw_id,
                Refusal.AFTER_SWITCH_OFF,
                f"Made after {worker.username}'s account was switched off "
                f"({until.astimezone(LOCAL):%Y-%m-%d %H:%M}); not theirs to be credited with.",
            )
        else:
            kept.append(i)
    if kept:
        stored = ingest_batch(
            session,
            Scope.for_user(session, worker),
            [items[i] for i in kept],
            now=now,
            confined_to=led,
        )
        for i, result in zip(kept, stored, strict=True):
            results[i] = result
    created = [r["id"] for r in results if r is not None and r["status"] == "created"]
    if created:
        audit.record(
            session,
            user_id=actor.user_id,
            action="create",
            resource="visit",
            resource_ids=[uuid.UUID(str(i)) for i in created],
            fields=["worker"],
            ip=actor.ip,
            path=actor.path,
        )
    return [r for r in results if r is not None]


def replayed(results: Sequence[dict]) -> list[Visit]:
    """The visits stored before a batch that its results show (each once): those answered
    `duplicate` that the batch did not create. Showing them is a read of what they hold (the
    sender of a handover had not seen them); a created one's answer is what was sent."""
    created = {r["id"] for r in results if r["status"] == "created"}
    shown: dict[str, Visit] = {}
    for r in results:
        if r["status"] == "duplicate" and r["id"] not in created:
            shown.setdefault(r["id"], r["visit"])
    return list(shown.values())


@dataclass
class _Settle:
    """The batch's results once its created visits are known (those rejected before kept)."""

    scope: Scope
    results: list[dict | None]
    ids: dict[int, uuid.UUID]
    twins: list[int]
    first_of: dict[uuid.UUID, int]
    confined_to: frozenset[int] | None = None  # as `ingest_batch`'s

    def __call__(self, session: Session | None, created: dict) -> list[dict] | None:
        """The results; None when they need stored visits read and `session` is None."""
        results = list(self.results)
        for i, vid in self.ids.items():
            if vid in created and self.first_of.get(vid) == i:
                results[i] = _result(vid, "created", visit=created[vid])
        # A replay is a duplicate whatever it carries now: every id not created here (rejected,
        # or not inserted because it was stored before or by a concurrent twin) that is stored
        # comes back as the stored visit. A fresh batch, the common case, needs no lookup.
        twin = set(self.twins)
        unsettled = {
            i: vid
            for i, vid in self.ids.items()
            if i not in twin
            and vid not in created
            and (results[i] is None or results[i]["status"] == "rejected")
        }
        if unsettled and session is None:
            return None
        stored = _stored(session, set(unsettled.values())) if unsettled else {}
        for i, vid in unsettled.items():
            if vid in stored:
                results[i] = _replay(stored[vid], self.scope, self.confined_to)
            elif results[i] is None:
                results[i] = _rejected(
                    vid, Refusal.NOT_STORED, "The visit could not be stored; send it again."
                )
        for i in self.twins:
            first = results[self.first_of[self.ids[i]]]
            results[i] = (
                _result(self.ids[i], "duplicate", visit=first["visit"])
                if first and "visit" in first
                else _rejected(
                    self.ids[i],
                    Refusal.REPEATS_REJECTED_ITEM,
                    "Repeats an earlier item of this batch that was rejected.",
                )
            )
        return [r for r in results if r is not None]


def _stored(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, Visit]:
    if not ids:
        return {}
    return _load(session, ids)


def _load(session: Session, ids) -> dict[uuid.UUID, Visit]:
    if not ids:
        return {}
    visits = session.scalars(
        select(Visit)
        .where(is_any_of(Visit.id, "visit_ids", ids, UUID(as_uuid=True)))
        .options(_GRID_CODE, selectinload(Visit.photos))
        .execution_options(populate_existing=True)
    )
    return {v.id: v for v in visits}


def _replay(visit: Visit, scope: Scope, confined_to: frozenset[int] | None = None) -> dict:
    # A UUID already used by someone else is not this worker's visit: do not show it.
    if visit.worker_id != scope.user_id:
        return _rejected(
            visit.id, Refusal.ID_TAKEN, "This id belongs to another visit; make a new UUID."
        )
    # A handover by a grid leader: a stored visit of a grid they do not lead is refused as the
    # item was (`_place_and_check`), not shown to them as a duplicate.
    if confined_to is not None and visit.grid_id not in confined_to:
        code = visit.grid.code
        return _rejected(
            visit.id,
            Refusal.NOT_YOUR_GRID,
            f"In grid {code}, which you do not lead: the community admin sends it.",
            grid_code=code,
        )
    return _result(visit.id, "duplicate", visit=visit)


def _not_found(a: _Accepted) -> dict:
    return _rejected(
        a.id,
        Refusal.HOUSEHOLD_NOT_FOUND,
        f"Household {a.data['household_id']} not found in your grids.",
    )


def _converted_problem(a: _Accepted, field: str, x: float, y: float, results: list) -> str | None:
    """Reject the item when its point, converted to WGS-84, is not a WGS-84 point."""
    if plainly_in_china(x, y):
        return None
    try:
        check_lon_lat(x, y, where=f"WGS-84 (converted from {a.data['location']['datum']})")
    except GeometryProblem as exc:
        results[a.index] = _rejected(a.id, Refusal.LOCATION_INVALID, f"{field}: {exc.reason}")
        return exc.reason
    return None


def _place_and_check(
    session: Session,
    scope: Scope,
    pending: list[_Accepted],
    results: list,
    opened: dict[date, set[int]],
    held: dict[date, set[int]],
    confined_to: frozenset[int] | None = None,
) -> tuple[list[_Accepted], dict[int, Grid]]:
    """Find each item's household (or the premises' grid) and check the worker may visit it:
    one of their grids, or one open to them when the visit was made (`_Accepted.open`: a
    relief shift's, or one they `held` that day); and, `confined_to` given, that it is one of
    those grids.

    Also gives the grids read for it: those visited and the caller's territory."""
    if not pending:
        return [], {}
    household_ids = {a.data["household_id"] for a in pending if a.data.get("household_id")}
    found = session.execute(
        select(
            Household.id,
            Household.grid_id,
            Household.removed_at,
            Household.removal_date,
            Household.removal_reason,
            *lonlat_columns(Household.location),
        )
        .where(is_any_of(Household.id, "household_ids", household_ids, Integer))
        # FOR KEY SHARE, as the visits' foreign key takes it anyway: a removal (FOR UPDATE)
        # waits for the batch, whose visits its check of the last visit then sees, or the
        # batch waits for it and reads the household removed; a visit after the removal
        # cannot slip in between.
        .with_for_update(read=True, key_share=True)
    ).all()
    households = {h.id: h for h in found}
    homes = dict(zip(households, points_of(found), strict=True))
    located = []
    for a in pending:
        loc = a.data["location"]
        try:
            if not plainly_in_china(loc["lon"], loc["lat"]):
                check_lon_lat(loc["lon"], loc["lat"])
        except GeometryProblem as exc:
            results[a.index] = _rejected(a.id, Refusal.LOCATION_INVALID, f"location: {exc.reason}")
            continue
        located.append(a)
    # Datum conversion and points for the whole batch at once.
    lon, lat = to_wgs84_many(
        [a.data["location"]["lon"] for a in located],
        [a.data["location"]["lat"] for a in located],
        [a.data["location"]["datum"] for a in located],
    )
    # A converted point may leave the WGS-84 range (BD-09 longitude -180 is -180.0065): the
    # item is rejected here, alone, before anything downstream (the row, the follow-up task)
    # meets it.
    converted = []
    points = shapely.points(lon, lat)
    for a, x, y, point in zip(located, lon.tolist(), lat.tolist(), points, strict=True):
        unchanged = a.data["location"]["datum"] == "wgs84"  # checked above as it arrived
        if unchanged or _converted_problem(a, "location", x, y, results) is None:
            a.point = point
            converted.append(a)
    located = converted
    # Premises not yet registered: placed at their own point (in the visit's datum) if given,
    # else at the visit's.
    premises = [a for a in located if a.data.get("premises")]
    where = {a.index: (a.point.x, a.point.y) for a in premises}
    own = [a for a in premises if "lon" in a.data["premises"] and "lat" in a.data["premises"]]
    own_lon, own_lat = to_wgs84_many(
        [a.data["premises"]["lon"] for a in own],
        [a.data["premises"]["lat"] for a in own],
        [a.data["location"]["datum"] for a in own],
    )
    for a, x, y in zip(own, own_lon.tolist(), own_lat.tolist(), strict=True):
        if _converted_problem(a, "premises", x, y, results) is None:
            where[a.index] = (x, y)
        else:
            del where[a.index]
    placements = dict(zip(where, place(session, list(where.values())), strict=True))
    earlier = _grids_at_the_visit(session, scope, pending, households)
    earlier.update(_premises_at_the_visit(session, scope, pending, placements, where, opened))

    grid_ids = {h.grid_id for h in households.values()} | set(earlier.values())
    grid_ids.update(p.grid_id for p in placements.values() if p.grid_id is not None)
    grid_ids.update(scope.grid_ids, *opened.values())
    grids = {g.id: g for g in session.scalars(select(Grid).where(Grid.id.in_(grid_ids)))}
    accepted = []
    for a in pending:
        if results[a.index] is not None:
            continue
        if a.index in placements:
            placement = placements[a.index]
            if placement.grid_id is None and a.index not in earlier:
                results[a.index] = _rejected(
                    a.id,
                    Refusal.OUTSIDE_EVERY_GRID,
                    "premises: " + _outside(placement),
                    nearest_grid=placement.nearest_code,
                    distance_m=None
                    if placement.nearest_m is None
                    else round(placement.nearest_m, 1),
                )
                continue
            # The grid that held the point at the visit, if the border has moved since.
            a.grid_id = earlier.get(a.index, placement.grid_id)
        else:
            a.household = households.get(a.data["household_id"])
            a.home = homes.get(a.data["household_id"])
            if a.household is None:
                results[a.index] = _not_found(a)
                continue
            # The grid it was in at the visit, if it has moved since into one not the worker's.
            a.grid_id = earlier.get(a.index, a.household.grid_id)
        refusal = scope.visit_grid_refusal(a.grid_id, grids[a.grid_id].code, a.open)
        if refusal:
            # A household outside the worker's grids is answered as a missing one, word for
            # word: naming its grid confirmed that the id exists, and where. Premises keep the
            # detailed refusal: the worker chose the point, its grid tells them nothing new.
            results[a.index] = (
                _not_found(a)
                if a.household is not None
                else _rejected(
                    a.id, Refusal.NOT_YOUR_GRID, refusal, grid_code=grids[a.grid_id].code
                )
            )
            continue
        removed = a.household.removed_at if a.household is not None else None
        if removed is not None and a.data["visited_at"] >= removed:
            # After the scope's check: to a worker not of its grid it is a missing household.
            results[a.index] = _rejected(
                a.id,
                Refusal.HOUSEHOLD_REMOVED,
                f"Household {a.household.id} left the register on "
                f"{a.household.removal_date.isoformat()} ({a.household.removal_reason}); "
                "a visit after that is not taken.",
                removed_on=a.household.removal_date.isoformat(),
                removal_reason=a.household.removal_reason,
            )
            continue
        if confined_to is not None and a.grid_id not in confined_to:
            code = grids[a.grid_id].code
            results[a.index] = _rejected(
                a.id,
                Refusal.NOT_YOUR_GRID,
                f"In grid {code}, which you do not lead: the community admin sends it.",
                grid_code=code,
            )
            continue
        a.relief = a.grid_id not in scope.grid_ids and a.grid_id not in held[a.day]
        accepted.append(a)
    return accepted, grids


def _grids_at_the_visit(
    session: Session,
    scope: Scope,
    pending: list[_Accepted],
    households: dict[int, Any],
) -> dict[int, int]:
    """For the items whose household is now in a grid not open to the worker at the visit
    (`_Accepted.open`), the grid it was in at the visit if that one was (`household_history`):
    {item index: grid id}. A household moved to the next grid (a correction, a redraw) after a
    visit made offline: the visit was refused as of a household not the worker's, sent again
    and refused for good. One query, for those items only (none in the usual batch)."""
    strays = [
        a
        for a in pending
        if (h := households.get(a.data.get("household_id"))) is not None
        and h.grid_id not in scope.grid_ids
        and h.grid_id not in a.open
    ]
    if not strays:
        return {}
    periods = session.execute(
        select(
            HouseholdHistory.household_id,
            HouseholdHistory.grid_id,
            HouseholdHistory.valid_from,
            HouseholdHistory.valid_to,
        ).where(
            is_any_of(
                HouseholdHistory.household_id,
                "stray_households",
                {a.data["household_id"] for a in strays},
                Integer,
            ),
            HouseholdHistory.valid_to.is_not(None),
        )
    ).all()
    found = {}
    for a in strays:
        at = a.data["visited_at"]
        for p in periods:
            if (
                p.household_id == a.data["household_id"]
                and p.valid_from <= at < p.valid_to
                and (p.grid_id in scope.grid_ids or p.grid_id in a.open)
            ):
                found[a.index] = p.grid_id
                break
    return found


def _premises_at_the_visit(
    session: Session,
    scope: Scope,
    pending: list[_Accepted],
    placements: dict[int, Any],
    where: dict[int, tuple[float, float]],
    opened: dict[date, set[int]],
) -> dict[int, int]:
    """For premises that today's map places in no grid open to the worker at the visit
    (`_Accepted.open`; `opened`: those of each day), the grid that held their point at the
    visit if one of those did (`grid_versions`): {item index: grid id}. The border moved after
    a visit made offline: the visit was refused as of a grid not the worker's, sent again and
    refused for good. One query, for those items only (none in the usual batch)."""
    visits = {a.index: a for a in pending}
    strays = [
        i
        for i, p in placements.items()
        if p.grid_id not in scope.grid_ids and p.grid_id not in visits[i].open
    ]
    if not strays:
        return {}
    rows = session.execute(
        text(
            """
            SELECT p.i, v.grid_id
            FROM unnest(CAST(:items AS int[]), CAST(:lons AS float8[]),
                        CAST(:lats AS float8[]), CAST(:ats AS timestamptz[]))
                 AS p(i, lon, lat, at)
            JOIN grid_versions v
              ON v.grid_id = ANY(CAST(:grids AS int[]))
             AND v.valid_from <= p.at AND v.valid_to > p.at
             AND ST_Intersects(v.boundary, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
            ORDER BY p.i, v.grid_id
            """
        ),
        {
            "items": strays,
            "lons": [where[i][0] for i in strays],
            "lats": [where[i][1] for i in strays],
            "ats": [visits[i].data["visited_at"] for i in strays],
            "grids": sorted(set(scope.grid_ids).union(*opened.values())),
        },
    ).all()
    found: dict[int, int] = {}
    for i, grid_id in rows:
        if i not in found and (grid_id in scope.grid_ids or grid_id in visits[i].open):
            found[i] = grid_id
    return found


def _build_rows(
    session: Session,
    scope: Scope,
    accepted: list[_Accepted],
    now: datetime,
    opened: dict[date, set[int]],
    grids: dict[int, Grid],
) -> Iterator[dict]:
    """The rows of the accepted visits not already stored, in their order, each graded as it
    is asked for: the insert streams them, so a visit is graded while the database stores the
    ones before it. The batch is measured (neighbours, distances) before the first row.

    A visit the worker stored before (a replayed sync) is found by the neighbours query, which
    reads the worker's stored visits over the batch's span: it gets no row. Replays that query
    cannot see (another worker's id, a time since changed) are left to the insert's conflict
    handling.
    """
    if not accepted:
        return iter(())
    needed = set(scope.grid_ids).union(*opened.values())
    boundaries = {g: to_shape(grids[g].boundary) for g in needed if g in grids}
    earliest = min(a.data["visited_at"] for a in accepted)
    # A grid never redrawn (version 1) has one outline: no read for it.
    redrawn = {g for g in boundaries if grids[g].version > 1}
    outlines = _outlines_since(session, redrawn, earliest)
    territory: dict[Any, Any] = {}

    neighbours, stored = _neighbours(session, scope.user_id, accepted)
    fresh = [
        (a, around) for a, around in zip(accepted, neighbours, strict=True) if a.id not in stored
    ]
    inputs = []
    for a, (previous, following) in fresh:
        d = a.data
        loc = d["location"]
        # The territory of the visit's day, each grid as outlined at the visit: a visit synced
        # after a redraw is graded against the border the worker walked (usually one key a
        # day: no grid of the batch redrawn since its first visit).
        drawn = tuple(
            (g, _outline_at(outlines.get(g, ()), d["visited_at"]))
            for g in sorted(scope.grid_ids | a.open)
            if g in boundaries
        )
        if drawn not in territory:
            shapes = [boundaries[g] if n is None else outlines[g][n][2] for g, n in drawn]
            territory[drawn] = union_all(shapes) if shapes else None
            if territory[drawn] is not None:
                # Tested against every visit of the day: prepared once (an index on its edges).
                shapely.prepare(territory[drawn])
        inputs.append(
            EvidenceInput(
                point=a.point,
                accuracy_m=loc.get("accuracy_m"),
                mock=loc.get("mock", False),
                visited_at=d["visited_at"],
                received_at=now,
                grid_boundary=territory[drawn],
                household_point=a.home,
                previous=previous,
                next=following,
            )
        )
    grades = grade_lazily(inputs)
    return (
        _row(a, evidence, scope.user_id, now)
        for (a, _), evidence in zip(fresh, grades, strict=True)
    )


def _outlines_since(
    session: Session, grid_ids: set[int], since: datetime
) -> dict[int, list[tuple[datetime, datetime, Any]]]:
    """The earlier outlines of `grid_ids` still in force at or after `since`: {grid id:
    [(valid_from, valid_to, shape)] in time order}. Empty unless a grid was redrawn since
    the batch's first visit (one short index read, for grids redrawn at some time)."""
    if not grid_ids:
        return {}
    rows = session.execute(
        select(
            GridVersion.grid_id, GridVersion.valid_from, GridVersion.valid_to, GridVersion.boundary
        )
        .where(
            is_any_of(GridVersion.grid_id, "redrawn_grids", grid_ids, Integer),
            GridVersion.valid_to > since,
        )
        .order_by(GridVersion.grid_id, GridVersion.valid_from)
    ).all()
    out: dict[int, list[tuple[datetime, datetime, Any]]] = {}
    for row in rows:
        out.setdefault(row.grid_id, []).append(
            (row.valid_from, row.valid_to, to_shape(row.boundary))
        )
    return out


def _outline_at(outlines: Sequence[tuple[datetime, datetime, Any]], at: datetime) -> int | None:
    """The index of the earlier outline in force at `at` (the first, for a visit before the
    grid was drawn), or None for the current one."""
    for n, (_, valid_to, _) in enumerate(outlines):
        if at < valid_to:
            return n
    return None


def _row(a: _Accepted, evidence: Evidence, worker_id: int, now: datetime) -> dict[str, Any]:
    d = a.data
    loc = d["location"]
    offset = d["visited_at"].utcoffset() or timedelta(0)
    return {
        "id": a.id,
        "worker_id": worker_id,
        "household_id": a.household.id if a.household is not None else None,
        "grid_id": a.grid_id,
        "premises": d.get("premises"),
        # The instant in UTC: the row travels through orjson, which would write the
        # offset rounded to the minute (the schema refuses offsets with seconds).
        "visited_at": d["visited_at"].astimezone(UTC),
        "utc_offset_minutes": int(offset.total_seconds() // 60),
        "week": week_of(d["visited_at"]),
        "location": a.point,  # a shapely point
        "accuracy_m": loc.get("accuracy_m"),
        "datum": loc["datum"],
        "raw_lon": loc["lon"],
        "raw_lat": loc["lat"],
        "provider": loc.get("provider"),
        "mock": loc.get("mock", False),
        "outcome": d["outcome"],
        "notes": d.get("notes", ""),
        "observations": d.get("observations", {}),
        "follow_up": d.get("follow_up", False),
        "follow_up_note": d.get("follow_up_note"),
        # The list it goes on: a need when not said (a client from before the lists); none
        # without a follow-up, whatever the form kept.
        "follow_up_kind": (d.get("follow_up_kind") or FOLLOW_UP_DEFAULT)
        if d.get("follow_up")
        else None,
        # What it is about and how urgent (its task's title and urgency): none without a
        # follow-up either; a follow-up sent with no urgency is `general`, as a task is.
        "follow_up_title": d.get("follow_up_title") if d.get("follow_up") else None,
        "follow_up_urgency": (d.get("follow_up_urgency") or URGENCY_DEFAULT)
        if d.get("follow_up")
        else None,
        "relief": a.relief,
        "grade": evidence.grade,
        "reasons": evidence.reasons,
        "evidence": evidence.details,
        "received_at": now,
    }


def _neighbours(
    session: Session, worker_id: int, accepted: list[_Accepted]
) -> tuple[list[tuple], set[uuid.UUID]]:
    """Each accepted visit's (previous, next) visit of the worker in time, stored or new, and
    the ids of the worker's stored visits read for it.

    For a new visit at time t in [first, last] of the batch, its stored neighbours are among
    the stored visits inside [first, last] and the nearest one on either side of that span.
    All of them and the batch are sorted once, by time, then id.
    """
    first = min(a.data["visited_at"] for a in accepted)
    last = max(a.data["visited_at"] for a in accepted)
    cols = (Visit.id, Visit.visited_at, *lonlat_columns(Visit.location), Visit.accuracy_m)
    mine = Visit.worker_id == worker_id
    inside = select(*cols).where(mine, Visit.visited_at.between(first, last))
    before = (
        select(*cols).where(mine, Visit.visited_at < first).order_by(Visit.visited_at.desc())
    ).limit(1)
    after = (select(*cols).where(mine, Visit.visited_at > last).order_by(Visit.visited_at)).limit(1)
    around = sql_union_all(inside, select(before.subquery()), select(after.subquery()))
    rows = list(session.execute(around))
    # (sort key, the neighbour as grading takes it, the position in `accepted` or None).
    # UUIDs order as their text does; a timestamp orders as the aware time, faster.
    entries = [
        ((at.timestamp(), vid), (shape, at, accuracy), None)
        for (vid, at, _, _, accuracy), shape in zip(rows, points_of(rows), strict=True)
    ]
    entries += [
        (
            (a.data["visited_at"].timestamp(), a.id),
            (a.point, a.data["visited_at"], a.data["location"].get("accuracy_m")),
            n,
        )
        for n, a in enumerate(accepted)
    ]
    entries.sort(key=lambda e: e[0])
    out: list[tuple] = [(None, None)] * len(accepted)
    last_k = len(entries) - 1
    for k, (_, _, n) in enumerate(entries):
        if n is not None:
            out[n] = (
                entries[k - 1][1] if k > 0 else None,
                entries[k + 1][1] if k < last_k else None,
            )
    return out, {row.id for row in rows}


def _insert(
    session: Session,
    rows: Iterator[dict],
    results: list,
    accepted: list[_Accepted],
    owners: tuple[User, dict[int, Grid]],
    meanwhile: Callable[[list[dict]], None],
) -> tuple[dict[uuid.UUID, StoredVisit], bool]:
    """Store the rows (in id order, see `ingest_batch`): the visits this transaction inserted,
    and whether the COPY stored them (`meanwhile` then ran on the very rows stored).

    The rows are streamed into one COPY inside a savepoint: PostgreSQL stores each row while
    the next is graded and encoded, and `meanwhile(rows)` runs while it finishes. COPY has no
    ON CONFLICT, so should it be refused (a concurrent twin or an earlier visit holds an id, a
    household was deleted meanwhile, a value the database refuses), it leaves nothing and the
    rows go again with `INSERT ... ON CONFLICT (id) DO NOTHING`, which skips the stored ids;
    should a row still break a rule, each row is retried in its own savepoint and only the
    bad one is rejected.
    """
    sent: list[dict] = []
    try:
        with session.begin_nested():
            copy_rows(session, Visit.__table__, _kept(rows, sent), lambda: meanwhile(sent))
        return _stored_visits(sent, *owners), True
    except (IntegrityError, DataError) as exc:
        refusal = type(exc.orig).__name__
        log.info("COPY of a batch refused (%s); inserting it with ON CONFLICT", refusal)
    sent.extend(rows)  # any the COPY did not reach
    try:
        with session.begin_nested():
            return _insert_returning(session, sent, owners), False
    except (IntegrityError, DataError):
        log.warning("a batch row broke a rule of the database; storing the batch row by row")
    by_id = {a.id: a for a in accepted}
    created: dict[uuid.UUID, StoredVisit] = {}
    for row in sent:
        try:
            with session.begin_nested():
                created.update(_insert_returning(session, [row], owners))
        except (IntegrityError, DataError) as exc:
            results[by_id[row["id"]].index] = _rejected(
                row["id"],
                Refusal.DATABASE_RULE,
                f"The visit breaks a database rule: {type(exc.orig).__name__}.",
            )
    return created, False


def _kept(rows: Iterator[dict], sent: list[dict]) -> Iterator[dict]:
    for row in rows:
        sent.append(row)
        yield row


def _insert_returning(
    session: Session, rows: list[dict], owners: tuple[User, dict[int, Grid]]
) -> dict[uuid.UUID, StoredVisit]:
    """One `INSERT ... SELECT FROM jsonb_to_recordset(...)` for all rows, the inserted visits.

    The rows travel as one JSON document instead of a multi-row VALUES list: the statement
    and its one parameter stay the same whatever the batch holds (a VALUES list of 500 rows
    has 12,500 placeholders, and rewriting them cost more than the insert itself; an array
    per column cost psycopg an escape per element). PostgreSQL reads each field with its
    column's type. A column type that transforms values in Python (encryption, say) is
    applied first. RETURNING gives the ids actually inserted (not those of rows a concurrent
    twin stored first); the answer is built from the rows sent, so it needs no re-read.
    """
    table = Visit.__table__
    names = list(rows[0])
    dialect = session.get_bind().dialect
    columns = [table.c[name] for name in names]
    shapes, exprs = [], []
    for column in columns:
        if isinstance(column.type, Geometry):  # hex EWKB (with the SRID)
            shapes.append(f"{column.name} text")
            exprs.append(f"ST_GeomFromEWKB(decode(t.{column.name}, 'hex'))")
        else:
            shapes.append(f"{column.name} {column.type.compile(dialect=dialect)}")
            exprs.append(f"t.{column.name}")
    decorated = [c.name for c in columns if isinstance(c.type, TypeDecorator)]
    # Shapes in one vectorised call per geometry column: hex EWKB with the column's SRID.
    ewkb = {
        c.name: shapely.to_wkb(
            shapely.set_srid([row[c.name] for row in rows], c.type.srid),
            hex=True,
            include_srid=True,
        ).tolist()
        for c in columns
        if isinstance(c.type, Geometry)
    }
    payload = []
    for n, row in enumerate(rows):
        record = dict(row, n=n)  # orjson writes UUIDs and datetimes (RFC 3339) itself
        for name in decorated:
            record[name] = table.c[name].type.process_bind_param(row[name], dialect)
        for name, shapes_hex in ewkb.items():
            record[name] = shapes_hex[n]
        payload.append(record)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT {', '.join(exprs)} "
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t({', '.join(shapes)}, n integer) "
        "ORDER BY t.n ON CONFLICT (id) DO NOTHING RETURNING id"
    )
    document = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    inserted = set(session.execute(text(sql), {"rows": document}).scalars().all())
    return _stored_visits([row for row in rows if row["id"] in inserted], *owners)


def _stored_visits(
    rows: list[dict], worker: User, grids: dict[int, Grid]
) -> dict[uuid.UUID, StoredVisit]:
    """The rows inserted, as the answer and the stored-visits hook read them (no query: the
    worker and the grids were read before)."""
    return {
        row["id"]: StoredVisit(**row, worker=worker, grid=grids[row["grid_id"]]) for row in rows
    }


# --- reads ---------------------------------------------------------------------------------


# A visit's answer names its grid by code: joined to the read, without the grid's polygon
# (selectinload read whole grids in a statement of their own; a visit's read loaded its grid
# after the audit entry's commit).
_GRID_CODE = joinedload(Visit.grid).load_only(Grid.id, Grid.code)


def get_visit(session: Session, scope: Scope, visit_id: uuid.UUID) -> Visit:
    """A visit the caller may read (`Scope.visits()`), or one of the history of a household
    they see now (`household_visits`): recorded under the household's earlier grid, it is read
    as a visit of its grid now (`read_in_grid_id`)."""
    household_grid = (
        select(Household.grid_id)
        .where(Household.id == Visit.household_id, scope.households())
        .scalar_subquery()
    )
    row = session.execute(
        select(Visit, household_grid)
        .where(Visit.id == visit_id, or_(scope.visits(), household_grid.is_not(None)))
        .options(_GRID_CODE, selectinload(Visit.photos))
    ).first()
    if row is None:
        raise errors.NotFound(f"Visit {visit_id} not found.")
    visit, household_grid_id = row
    if household_grid_id is not None and not scope.holds_visit_grid(visit.grid_id):
        visit.read_in_grid_id = household_grid_id
    return visit


def get_visit_for_photos(session: Session, scope: Scope, visit_id: uuid.UUID) -> Visit:
    """A visit whose photos the caller may see: those of the grids they read in full, and
    those of the history of a household they see now. A worker's own visit in a grid they do
    not hold is their record only (`privacy.OWN_RECORD`): its photos (the resident's home)
    answer 404, as a photo not found."""
    visit = get_visit(session, scope, visit_id)
    if not scope.holds_visit_grid(getattr(visit, "read_in_grid_id", None) or visit.grid_id):
        raise errors.NotFound(f"No photo of visit {visit_id} is yours to read.")
    return visit


def local_visited_at(visit: Visit) -> datetime:
    """The visit's time in the UTC offset it was recorded with."""
    return visit.visited_at.astimezone(timezone(timedelta(minutes=visit.utc_offset_minutes)))


def _page(session: Session, stmt, page: int, page_size: int) -> tuple[list[Visit], int]:
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Visit.visited_at.desc(), Visit.id)
        .options(_GRID_CODE, selectinload(Visit.photos))
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows), total


def household_visits(
    session: Session, scope: Scope, household_id: int, *, page: int = 1, page_size: int = 50
) -> tuple[list[Visit], int]:
    """A household's visits, newest first (the household must be in the caller's scope).

    All of them: those recorded under an earlier grid of the household (one corrected into
    another grid, or a grid redrawn under it) are its history too, which the map's last visit
    and the plan count already; they were missing from the history of whoever serves it now.
    Each is read as a visit of the household's grid now (`read_in_grid_id`, which
    `privacy.visit_grid_id` reads): the caller, who sees the household, serves it."""
    grid_id = session.scalar(
        select(Household.grid_id).where(Household.id == household_id, scope.households())
    )
    if grid_id is None:
        raise errors.NotFound(f"Household {household_id} not found.")
    stmt = select(Visit).where(Visit.household_id == household_id)
    rows, total = _page(session, stmt, page, page_size)
    for visit in rows:
        visit.read_in_grid_id = grid_id
    return rows, total


def list_visits(
    session: Session,
    scope: Scope,
    *,
    grid: str | None = None,
    week: str | None = None,
    worker_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[Visit], int]:
    """Visits the caller may read, by grid code, ISO week and worker, newest first."""
    stmt = select(Visit).where(scope.visits())
    if grid:
        stmt = stmt.where(Visit.grid_id.in_(select(Grid.id).where(Grid.code == grid)))
    if worker_id is not None:
        stmt = stmt.where(Visit.worker_id == worker_id)
    if week:
        parse_week(week)
        stmt = stmt.where(Visit.week == week)
    return _page(session, stmt, page, page_size)


# --- the week's plan -----------------------------------------------------------------------


def week_plan(
    session: Session,
    scope: Scope,
    *,
    week: str,
    worker_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The households a worker still has to visit in the week, as a walking route.

    Must-visit households (any care tag) come first, overdue ones first within each class; each
    class is routed nearest-neighbour + 2-opt from where the previous one ended. The grids are
    the worker's own (for a week gone by, those they held as it ended) and those they relieve on
    a day of the week from `as_of`'s on, each only if the reader may see it.
    """
    worker = session.get(User, worker_id if worker_id is not None else scope.user_id)
    if worker is None:
        raise errors.NotFound(f"Worker {worker_id} not found.")
    scope.require_plan_reader(session, worker)
    start, end = week_bounds(week)
    now = now or clock.now()
    as_of = min(max(now, start), end - timedelta(microseconds=1))
    # One's own plan: one's own scope (its grids came with the token check).
    worker_scope = scope if worker.id == scope.user_id else Scope.for_user(session, worker)
    # The relief days still to come (from as_of's day, Asia/Shanghai): a grid relieved on a
    # day gone by is its holder's again, and the reliever may record no visit in it.
    today = as_of.astimezone(LOCAL).date()
    days = [start.astimezone(LOCAL).date() + timedelta(days=i) for i in range(7)]
    relief = worker_scope.relief_grids(session, [d for d in days if d >= today])
    # Those still open all day: not one whose shift was handed on, or whose day the worker's
    # leave was approved for.
    relieved = {g for grids in relief.values() for g, until in grids.items() if until is None}
    # A week gone by is planned on the grids the worker held as it ended, not today's.
    past = as_of < now
    own = worker_scope.grids_held_at(session, as_of) if past else set(worker_scope.grid_ids)
    grid_ids = own | relieved
    if worker.id != scope.user_id or past:
        # Only the grids the reader sees: a leader who shares one grid with a worker does not
        # read the households of the worker's other grids, nor a worker those of a grid they
        # held last week and no longer do.
        grid_ids = set(session.scalars(select(Grid.id).where(Grid.id.in_(grid_ids), scope.grids())))
    ledger = [r for r in household_ledger(session, grid_ids=grid_ids, as_of=as_of) if r.due]
    by_id = {r.household_id: r for r in ledger}
    order = walking_order(
        None,
        [(r.household_id, r.lon, r.lat) for r in ledger],
        priority=lambda k: (by_id[k].must_visit, by_id[k].overdue),
    )
    return {
        "worker_id": worker.id,
        "week": week,
        "as_of": as_of,
        "total": len(order),
        "households": [_plan_stop(by_id[k], n) for n, k in enumerate(order, start=1)],
    }


def _plan_stop(row: LedgerRow, n: int) -> dict[str, Any]:
    return {
        "order": n,
        "household_id": row.household_id,
        "grid_code": row.grid_code,
        "building": row.building,
        "unit": row.unit,
        "floor": row.floor,
        "room": row.room,
        "kind": row.kind,
        "lon": row.lon,
        "lat": row.lat,
        "tags": list(row.tags),
        "must_visit": row.must_visit,
        "overdue": row.overdue,
        "visits_per_week": row.visits_per_week,
        "visits_this_week": row.visits_this_week,
        "last_visited_at": row.last_visited_at,
        "next_due_at": row.next_due_at,
    }


__all__ = [
    "MAX_BATCH",
    "REFUSALS",
    "BatchItem",
    "Refusal",
    "get_own_visit",
    "get_visit",
    "household_visits",
    "ingest_batch",
    "list_visits",
    "local_visited_at",
    "on_visits_stored",
    "week_plan",
]


def get_own_visit(session: Session, scope: Scope, visit_id: uuid.UUID) -> Visit:
    """A visit the caller recorded (photos are added by the one who made the visit)."""
    visit = get_visit(session, scope, visit_id)
    if visit.worker_id != scope.user_id:
        raise errors.Forbidden("Only the worker who made the visit may add photos to it.")
    return visit
