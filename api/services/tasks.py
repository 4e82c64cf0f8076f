"""Tasks: create and dispatch, the lifecycle as events, deadlines, lists, visit follow-ups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from geoalchemy2 import Geography
from shapely.geometry import Point
from sqlalchemy import Date, DateTime, and_, cast, false, func, literal, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, joinedload, selectinload
from sqlalchemy.orm.attributes import flag_modified

from api import errors
from api.db import row_id
from api.models import (
    Community,
    Grid,
    Household,
    Task,
    TaskEvent,
    TaskPhoto,
    User,
    Visit,
    user_grids,
)
from api.models.tasks import DONE_STATUSES, HOTLINE_TYPES, OPEN_STATUSES, URGENCY_DEFAULT
from api.models.visits import FOLLOW_UP_DEFAULT
from api.scope import Scope
from api.services import dispatch
from api.services.geometry import db_geom, db_point, point_lonlat
from api.services.grids import grids_asked, locate
from api.services.notifications import notify
from api.services.users import user_id
from api.services.weeks import LOCAL, period, week_bounds
from geo.validate import GeometryProblem, parse_point

# Ended without being done: the hotline re-dispatched the ticket to another community.
TRANSFERRED = "transferred"
ENDED_STATUSES = (*DONE_STATUSES, TRANSFERRED)
# Held by the assignee, at work on it. Not `returned` (given back to the leader as a wrong
# dispatch) nor `new` (with the leader to place); nor `escalated` (the leader told), though its
# assignee still holds it and alone resolves it: `WARNED_STATUSES`.
HELD_STATUSES = ("dispatched", "accepted", "in_progress", "reopened")
# Whose assignee the tick warns of the deadline and the first contact: the held, and the
# escalated, which the escalation left with them (before 2026-12-06 an escalated task was warned
# to nobody: one the worker escalated for help, one whose deadline the hotline extended after
# the tick's escalation, ran out unwarned).
WARNED_STATUSES = (*HELD_STATUSES, "escalated")
URGENT = ("danger", "utility")
# Who works tasks: the roles a task is dispatched, reassigned or given back to.
FIELD_ROLES = ("worker", "grid_leader")

# Beijing 12345 practice; a community overrides any of these in Community.settings["tasks"].
DEFAULT_DEADLINE_HOURS = {"danger": 2, "utility": 24, "general": 7 * 24, "complex": 15 * 24}
DEFAULT_FIRST_CONTACT_HOURS = {"danger": 0.5, "utility": 2, "general": 24, "complex": 24}
DEFAULT_WARN_FRACTION = 0.8

ASSIGNEE, LEADER = "assignee", "leader"


@dataclass(frozen=True)
class Rule:
    to: str
    by: str  # ASSIGNEE (the task's assignee) or LEADER (the grid's leader, the community admin)


# action -> {from status: rule}
TRANSITIONS: dict[str, dict[str, Rule]] = {
    "accept": {
        **{s: Rule("accepted", ASSIGNEE) for s in ("dispatched", "reopened")},
        # Help asked at once (escalated from `dispatched`), then the resident phoned: the
        # accept records that first contact (`first_contact_at`, the response rate), the task
        # staying escalated, the leader's help still asked; once (`task_actions`). Until
        # 2026-12-07 it was refused, and the ticket counted as never answered until resolved.
        "escalated": Rule("escalated", ASSIGNEE),
    },
    "start": {"accepted": Rule("in_progress", ASSIGNEE)},
    # Escalated too: an escalation tells the leader, it does not take the work from the
    # assignee (a deadline passing at the door blocked recording the resolution until a reassign).
    "resolve": {s: Rule("resolved", ASSIGNEE) for s in ("accepted", "in_progress", "escalated")},
    # Closed too, before the resident's verdict came (the hotline's 回访, a call made late): it
    # is recorded, the task staying closed; once a round (`task_actions`).
    "callback": {"resolved": Rule("callback", LEADER), "closed": Rule("closed", LEADER)},
    "close": {s: Rule("closed", LEADER) for s in ("resolved", "callback")},
    "return": {s: Rule("returned", ASSIGNEE) for s in ("dispatched", "accepted")},
    "escalate": {
        s: Rule("escalated", ASSIGNEE)
        for s in ("dispatched", "accepted", "in_progress", "reopened")
    },
    "reopen": {s: Rule("reopened", LEADER) for s in ("resolved", "callback", "closed")},
}
ACTIONS = tuple(TRANSITIONS)
REASSIGNABLE = ("new", "dispatched", "accepted", "in_progress", "returned", "escalated", "reopened")
# Taken up by its assignee: not given to them again (`reassign`).
AT_WORK = ("accepted", "in_progress")


def allowed_actions(status: str) -> list[str]:
    actions = [a for a, rules in TRANSITIONS.items() if status in rules]
    # An open task is reassigned to someone else, or moved to another grid (`move_task`).
    return actions + (["assign", "move"] if status in REASSIGNABLE else [])


def task_actions(task: Task) -> list[str]:
    """The actions legal on this task: those of its status, less an accept of an escalated task
    whose first contact is recorded (an escalated task takes one, to record it), less a
    reopening of a ticket the hotline has sent on to another community (the ticket is theirs
    now), and less a callback once the resident's satisfaction is recorded (a closed task takes
    one late, once)."""
    actions = allowed_actions(task.status)
    if task.status == "escalated" and task.first_contact_at is not None:
        actions = [a for a in actions if a != "accept"]  # its contact is recorded
    if task.transferred_to_id is not None:
        actions = [a for a in actions if a != "reopen"]
    if task.satisfaction is not None:
        actions = [a for a in actions if a != "callback"]
    return actions


def may_take(scope: Scope, task: Task, grid: Grid, action: str) -> bool:
    """Whether the caller may take `action` on the task, its status aside: the assignee's
    actions are the assignee's (the leader may escalate on their behalf too); the others, and
    assigning and moving, are the grid's leader's and the community admin's."""
    rule = next(iter(TRANSITIONS.get(action, {}).values()), None)
    if rule is not None and rule.by == ASSIGNEE:
        return task.assignee_id == scope.user_id or (
            action == "escalate" and scope.leads_grid(grid)
        )
    return scope.leads_grid(grid)


def caller_actions(scope: Scope, task: Task) -> list[str]:
    """Of the actions legal on the task (`task_actions`), those the caller may take."""
    return [a for a in task_actions(task) if may_take(scope, task, task.grid, a)]


# --- deadlines -------------------------------------------------------------------------------
def task_settings(session: Session, grid: Grid) -> dict[str, Any]:
    community = session.get(Community, grid.community_code)
    return dict((community.settings or {}).get("tasks", {})) if community else {}


def deadlines(settings: dict[str, Any], type_: str, urgency: str) -> tuple[timedelta, timedelta]:
    """(resolution, first contact) time allowed for a task of this type and urgency.

    Settings: {"deadline_hours": {urgency: h}, "first_contact_hours": {urgency: h},
    "by_type": {type: {"deadline_hours": {urgency: h}, "first_contact_hours": {...}}}}.
    """
    by_type = settings.get("by_type", {}).get(type_, {})

    def hours(key: str, defaults: dict[str, float]) -> float:
        for source in (by_type.get(key, {}), settings.get(key, {}), defaults):
            if urgency in source:
                return float(source[urgency])
        raise KeyError(urgency)

    return (
        timedelta(hours=hours("deadline_hours", DEFAULT_DEADLINE_HOURS)),
        timedelta(hours=hours("first_contact_hours", DEFAULT_FIRST_CONTACT_HOURS)),
    )


def is_overdue(task: Task, now: datetime) -> bool:
    return task.status not in ENDED_STATUSES and task.due_at < now


def overdue_clause(now: datetime):
    return and_(Task.status.not_in(ENDED_STATUSES), Task.due_at < now)


# --- reading ---------------------------------------------------------------------------------
# A task's answer names its grid by code, and says what the caller may do (`caller_actions`:
# who leads the grid): joined to the read, without the grid's polygon.
_GRID_CODE = joinedload(Task.grid).load_only(
    Grid.id, Grid.code, Grid.community_code, Grid.leader_id
)
# Each answer names its assignee (`assignee_name`): joined with the task, not read one by one.
_ASSIGNEE_NAME = joinedload(Task.assignee).load_only(User.id, User.username, User.display_name)


def get_task(session: Session, scope: Scope, task_id: int, *, for_update: bool = False) -> Task:
    stmt = select(Task).where(Task.id == task_id, scope.tasks())
    # Locked for a change: no grid joined. Read: the answer's grid code with it (_GRID_CODE).
    stmt = stmt.with_for_update(of=Task) if for_update else stmt.options(_GRID_CODE, _ASSIGNEE_NAME)
    task = session.scalar(stmt.options(selectinload(Task.events).selectinload(TaskEvent.photos)))
    if task is None:
        raise errors.NotFound(f"Task {task_id} not found.")
    return task


def get_task_for_photos(
    session: Session, scope: Scope, task_id: int, *, upload: bool = False
) -> Task:
    """The task whose photos are read (as `get_task` reads it: 404 out of scope), or, with
    `upload`, taken: by whoever may take one of its steps now (its assignee, its grid's leader,
    the community admin; a photo is of a step). Not a district viewer, nor another worker
    (403); a task with no step left to the caller (resolved, to its assignee; passed on) 409."""
    task = session.scalar(select(Task).where(Task.id == task_id, scope.tasks()).options(_GRID_CODE))
    if task is None:
        raise errors.NotFound(f"Task {task_id} not found.")
    if not upload:
        return task
    scope.require_writer()
    if task.assignee_id != scope.user_id and not scope.leads_grid(task.grid):
        raise errors.Forbidden(
            "Only the task's assignee, its grid's leader or the community admin take its photos."
        )
    if not any(action in TRANSITIONS for action in caller_actions(scope, task)):
        raise errors.Conflict(
            f"Task {task.id} is {task.status}: you have no step to take on it, so no photo to "
            "take of one.",
            state=task.status,
        )
    return task


def list_tasks(
    session: Session,
    scope: Scope,
    *,
    now: datetime,
    sort: str = "due",
    page: int = 1,
    page_size: int = 50,
    **filters: Any,
) -> tuple[list[Task], int]:
    """The tasks the caller can see that match every filter given, a page of them, and how
    many match. `week`: opened in that ISO week (Asia/Shanghai), as the rates and the weekly
    report count a week's tasks, re-dispatched tickets included (their `transferred` status
    tells them). `sort`: `due` (soonest deadline first) or `newest` (last opened first)."""
    stmt = _matching(scope, now=now, **filters)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(_ordered(stmt, sort).offset((page - 1) * page_size).limit(page_size))
    return list(rows), total


def export_tasks(
    session: Session, scope: Scope, *, now: datetime, max_rows: int, sort: str = "due", **filters
) -> list[Task]:
    """Every task `list_tasks` finds for these filters, in its order: the ledger's file. More
    than `max_rows` is a 422 asking for a narrower file (a week, a street, a community, a
    grid), not a file no spreadsheet opens in time, held whole in the server's memory
    meanwhile."""
    stmt = _ordered(_matching(scope, now=now, **filters), sort).options(
        # Not in the file: neither decrypted nor held in memory (nor a row whose sealed
        # columns cannot be opened failing the whole file over them).
        defer(Task.description),
        defer(Task.complainant),
        defer(Task.location),
    )
    rows = list(session.scalars(stmt.limit(max_rows + 1)))
    if len(rows) > max_rows:
        message = (
            f"More than {max_rows} tasks match: choose a week, a street, a community or a "
            "grid (week=, street=, community=, grid=) for a file of fewer."
        )
        raise errors.Unprocessable(message, errors={"query": {"week": [message]}})
    return rows


def _ordered(stmt, sort: str):
    """The tasks soonest deadline first (`due`) or last opened first (`newest`), each with its
    grid's code and its assignee's name. (Joined here, _GRID_CODE, instead of a statement per
    grid after the audit entry's commit, which loaded the polygons too.)"""
    order = (Task.created_at.desc(), Task.id.desc()) if sort == "newest" else (Task.due_at, Task.id)
    return stmt.options(_GRID_CODE, _ASSIGNEE_NAME).order_by(*order)


def _matching(
    scope: Scope,
    *,
    now: datetime,
    assignee: str | None = None,
    status: list[str] | None = None,
    grid: str | None = None,
    overdue: bool | None = None,
    source: str | None = None,
    list_kind: str | None = None,
    external_id: str | None = None,
    created_by: str | None = None,
    created_on: date | None = None,
    week: str | None = None,
    community: str | None = None,
    street: str | None = None,
):
    """The statement of the tasks the caller can see that match every filter given."""
    stmt = select(Task).where(scope.tasks())
    if week is not None:
        start, end = week_bounds(week)
        stmt = stmt.where(Task.created_at >= start, Task.created_at < end)
    if community is not None:
        grids = select(Grid.id).where(Grid.community_code == community)
        stmt = stmt.where(Task.grid_id.in_(grids))
    if street is not None:
        communities = select(Community.code).where(Community.street_code == street)
        stmt = stmt.where(
            Task.grid_id.in_(select(Grid.id).where(Grid.community_code.in_(communities)))
        )
    if created_by == "me":  # the window worker's requests of the day, to answer who comes back
        stmt = stmt.where(Task.created_by_id == scope.user_id)
    if created_on is not None:  # a day in Beijing, its bounds reckoned by PostgreSQL:
        # the day after 9999-12-31 is beyond Python's dates (it was a 500).
        day = literal(created_on, Date)
        start = cast(day, DateTime).op("AT TIME ZONE")(LOCAL.key)
        end = cast(day + 1, DateTime).op("AT TIME ZONE")(LOCAL.key)
        stmt = stmt.where(Task.created_at >= start, Task.created_at < end)
    if assignee == "me":
        stmt = stmt.where(Task.assignee_id == scope.user_id)
    elif assignee == "none":  # waiting for someone to assign it (dispatch found nobody)
        # Open: one passed on unassigned by a re-dispatch is another community's, for good.
        stmt = stmt.where(Task.assignee_id.is_(None), Task.status.in_(OPEN_STATUSES))
    elif assignee is not None:
        wanted = user_id(assignee)
        stmt = stmt.where(Task.assignee_id == wanted if wanted is not None else false())
    if status:
        stmt = stmt.where(Task.status.in_(status))
    if grid:
        stmt = stmt.where(Task.grid_id.in_(select(Grid.id).where(Grid.code == grid)))
    if source:
        stmt = stmt.where(Task.source == source)
    if list_kind:  # the need list or the problem list
        stmt = stmt.where(Task.list_kind == list_kind)
    if external_id is not None:  # the 12345 bridge finding its ticket's task
        stmt = stmt.where(Task.external_id == external_id)
    if overdue is True:
        stmt = stmt.where(overdue_clause(now))
    elif overdue is False:
        stmt = stmt.where(~overdue_clause(now))
    return stmt


# --- creating and dispatching ----------------------------------------------------------------
def _point(location: dict) -> tuple[float, float]:
    try:
        point = parse_point(location.get("lon"), location.get("lat"))
    except GeometryProblem as exc:
        raise errors.Unprocessable(exc.reason, errors={"json": {"location": [exc.reason]}}) from exc
    return point.x, point.y


def _require_in_register(household: Household, now: datetime) -> None:
    """A task is not opened for, nor moved to, a household that has left the register (a door
    where nobody of the register lives: a 422 saying when); the place can still be given."""
    if household.removed_at is not None and household.removed_at <= now:
        message = (
            f"Household {household.id} left the register on {household.removal_date} "
            f"({household.removal_reason}); give the place (location) instead."
        )
        raise errors.Unprocessable(message, errors={"json": {"household_id": [message]}})


def create_task(
    session: Session,
    scope: Scope | None,
    data: dict[str, Any],
    *,
    actor_id: int | None,
    now: datetime,
    grid: Grid | None = None,
    point: Point | None = None,
) -> Task:
    """Create a task, find its grid in PostGIS and dispatch it (notifying the assignee).

    `grid`: the task's grid when the caller has placed it already (a visit's follow-up goes to
    the visit's grid, or the one that took its place), for a task given by household or
    location. `point` and `grid` together: a task
    placed by the caller at a point already checked and stored (a premises visit's follow-up
    stands at the visit's point), taken as it is: nothing about it can be refused here.

    A hotline ticket already received (same external_id) by the same community is a 409
    naming the existing task if the caller can see it, once the caller is known to be allowed
    to open a task there: a ticket number alone tells nobody which tasks exist elsewhere. A
    ticket whose task is in another community is a re-dispatch (改派): see `_ticket_holder`.
    Another source's reference (a window's request number) is the community's own: received
    again there it is the same 409, and another community's task of it is not looked at.
    """
    source = data["source"]
    type_ = data.get("type") or "help"
    if type_ not in HOTLINE_TYPES:
        raise errors.Unprocessable(f"Unknown type {type_!r}.", errors={"json": {"type": ["?"]}})
    external_id = data.get("external_id")
    if source == "hotline" and not external_id:
        message = "A hotline task carries the hotline ticket number (external_id)."
        raise errors.Unprocessable(message, errors={"json": {"external_id": [message]}})
    household, location = None, None
    if data.get("household_id") is not None:
        found = row_id(data["household_id"])
        household = session.get(Household, found) if found is not None else None
        hidden = (
            household is not None
            and scope is not None
            and not _sees_household(
                session,
                scope,
                household,
                window_day=now.astimezone(LOCAL).date() if source == "window" else None,
            )
        )
        if household is None or hidden:
            raise errors.Unprocessable(
                f"Household {data['household_id']} not found.",
                errors={"json": {"household_id": ["Not found."]}},
            )
        if source != "visit":
            # A visit made before the removal (taken, however late it synced) is followed up.
            _require_in_register(household, now)
        # Its own grid, or the one the caller placed its task in (`task_from_visit`).
        grid = grid or session.get(Grid, household.grid_id)
        location = household.location
    elif point is not None and grid is not None:
        location = db_geom(point)
    elif data.get("location") is not None:
        lon, lat = _point(data["location"])
        grid = grid or locate(session, lon, lat)
        if grid is None:
            message = "The location lies outside every grid."
            raise errors.Unprocessable(message, errors={"json": {"location": [message]}})
        location = db_geom(Point(lon, lat))
    else:
        message = "Give household_id or location {lon, lat}."
        raise errors.Unprocessable(message, errors={"json": {"location": [message]}})
    _hold_in_service(session, grid)
    if scope is not None:
        scope.require_task_creator(session, grid, source=source, day=now.astimezone(LOCAL).date())
        if data.get("redispatch"):
            scope.require_redispatcher()
    settler = _settler(session, scope, now) if data.get("resolved_here") else None
    if external_id and source != "hotline":
        _lock_reference(session, grid.community_code, source, external_id)
    previous = (
        _ticket_holder(
            session,
            scope,
            source,
            external_id,
            grid,
            data.get("redispatch", False),
            due_at=data.get("due_at"),
        )
        if external_id
        else None
    )
    resolve_in, contact_in = deadlines(task_settings(session, grid), type_, data["urgency"])
    ticket_due_at = _given_deadline(data.get("due_at"), now)
    due_at = ticket_due_at or now + resolve_in
    task = Task(
        source=source,
        type=type_,
        title=data["title"],
        description=data.get("description") or "",
        urgency=data["urgency"],
        external_id=external_id,
        complainant=data.get("complainant"),
        household_id=household.id if household else None,
        visit_id=data.get("visit_id"),
        list_kind=data.get("list_kind"),
        location=location,
        grid_id=grid.id,
        status="new",
        created_by_id=actor_id,
        created_at=now,
        updated_at=now,
        due_at=due_at,
        ticket_due_at=ticket_due_at,
        first_contact_due_at=min(now + contact_in, due_at),
        transferred_from_id=previous.id if previous is not None else None,
    )
    if previous is not None:
        # Passed on before the new task is written: one task holds a ticket at a time.
        previous.transferred_at = now
        session.flush()
    try:
        with session.begin_nested():
            session.add(task)
            session.flush()
    except IntegrityError as exc:  # the same hotline ticket sent twice at once
        if not external_id or source != "hotline":
            raise
        # The twin has committed (the insert waited for it): a new statement sees it, and the
        # ticket is decided again as the check above does: a 409 when this community holds it
        # (naming the task if the caller can see it, so a retrying client finds it). A twin
        # that went to another community at the same moment is not resolved here: the caller
        # sends the ticket again, and it is then a re-dispatch.
        holder = _current_task(session, source, external_id, grid)
        if holder is not None and _same_community(session, holder, grid):
            raise _repeat(session, scope, external_id, holder, data.get("due_at")) from exc
        raise errors.Conflict(
            f"Ticket {external_id} was received elsewhere at the same moment; send it again."
        ) from exc
    if previous is not None:
        _transfer(session, previous, task, now)
    # A visit's follow-up note is the task's description, shown only to roles that read
    # visit notes (TaskSchema); the event does not repeat it.
    opened = "" if source == "visit" else data.get("description") or ""
    _event(task, "create", None, "new", actor_id, now, note=opened)
    if previous is not None:
        # Its arrival by re-dispatch, as the other task records its leaving: a system step,
        # naming nobody (and no task) of the community it came from.
        _event(task, "transfer", None, "new", None, now, note=TRANSFERRED_IN_NOTE)
    if settler is not None:
        _resolve_here(session, task, grid, settler, now)
        return task
    assignee, reason = dispatch.choose_assignee(
        session,
        grid,
        now.astimezone(LOCAL).date(),
        finder=actor_id if source == "visit" else None,
    )
    if assignee is not None:
        _assign(session, task, assignee, actor_id, now, note=reason, kind="task_dispatched")
    else:
        # Nobody on duty and no active leader: the task waits for someone to assign it, and
        # whoever may must hear of it (else it sits unseen until its deadline passes).
        session.flush()
        above = overseers(session, grid, now=now)
        _notify_task(session, task, above, "task_unassigned", "新任务待分派", now=now)
    session.flush()
    return task


def _settler(session: Session, scope: Scope | None, now: datetime) -> User:
    """Who settles a walk-in request at the window (`resolved_here`): the caller, holding the
    A-post today (一窗受理、一次办结). Anyone else is not at the window to have settled it; the
    community admin holds no task (a 403 either way, before anything is written)."""
    if scope is None or not scope.at_window(session, now.astimezone(LOCAL).date()):
        raise errors.Forbidden(
            "Only the worker at the hall window today (the A-post of the published roster) "
            "settles a request at the window; open it without resolved_here to dispatch it."
        )
    return session.get(User, scope.user_id)


def _resolve_here(session: Session, task: Task, grid: Grid, settler: User, now: datetime) -> None:
    """The request settled at the window as it was registered: the window worker's, answered
    and resolved now (both rates count it, on time), nobody in the grid handed it; the grid's
    leader makes the return call (回访) and closes it, as for any task resolved."""
    note, kind = dispatch.AT_WINDOW, "task_dispatched"
    _assign(session, task, settler, settler.id, now, note=note, kind=kind)
    task.status = "resolved"
    task.first_contact_at = task.resolved_at = now
    _stamp(task, now)
    _event(task, "resolve", "dispatched", "resolved", settler.id, now, note=RESOLVED_HERE_NOTE)
    session.flush()
    _told_resolved(session, task, grid, settler.id, now)


def _told_resolved(session: Session, task: Task, grid: Grid, actor_id: int, now: datetime) -> None:
    """The leader makes the return call (回访) and closes the task: told it is their turn."""
    above = overseers(session, grid, now=now, besides=(actor_id,), district=False)
    _notify_task(session, task, above, "task_resolved", "任务已办结，待回访", now=now)


def _hold_in_service(session: Session, grid: Grid) -> None:
    """Hold the grid a task is opened in or moved to (FOR SHARE) until the task is written, and
    make sure it is still in service: a grid retired since it was found (`grids.retire_grid`
    counts its open tasks under its lock) is a 409; sent again, a new task finds the grid that
    is there now, a move is refused. Unheld, a task written after the retirement's count
    stayed open in the retired grid."""
    retired = session.execute(
        select(Grid.retired_at).where(Grid.id == grid.id).with_for_update(read=True)
    ).scalar_one()
    if retired is not None:
        raise errors.Conflict(
            f"Grid {grid.code} was retired while this request was under way; send it again."
        )


MAX_GIVEN_DEADLINE = timedelta(days=90)  # the longest time limit a ticket comes with


def _given_deadline(due_at: datetime | None, now: datetime) -> datetime | None:
    """The deadline a hotline ticket was dispatched with (its 办理时限), checked: after now and
    within MAX_GIVEN_DEADLINE (a mistyped year is not a deadline)."""
    if due_at is None:
        return None
    if due_at <= now:
        message = f"due_at {due_at.isoformat()} must be after now ({now.isoformat()})."
    elif due_at > now + MAX_GIVEN_DEADLINE:
        message = f"due_at is more than {MAX_GIVEN_DEADLINE.days} days ahead."
    else:
        return due_at
    raise errors.Unprocessable(message, errors={"json": {"due_at": [message]}})


# --- a re-dispatched hotline ticket (改派) -----------------------------------------------------
# Advisory lock class of another source's reference in a community (1-9 are the sign-in,
# data-key, map, photo, address, username, visit-photo and week locks). A hotline ticket is one
# system-wide, held by the partial unique index `uq_tasks_source_external_id`; a window's
# request number (any source but the hotline) is its community's own, and tasks have no
# community column an index could take (their grid's community). So a create carrying one holds
# this lock, keyed by community, source and reference, from before its check until it commits:
# the same reference sent twice at once in one community, the second waits, then finds the
# first's task (a repeat); two communities' same reference never wait on each other (but on a
# hash collision, briefly).
_REFERENCE_LOCK_CLASS = 10
_LOCK_REFERENCE = text("SELECT pg_advisory_xact_lock(:lock, hashtext(:key))")


def _lock_reference(session: Session, community: str, source: str, external_id: str) -> None:
    key = f"{community}:{source}:{external_id}"
    session.execute(_LOCK_REFERENCE, {"lock": _REFERENCE_LOCK_CLASS, "key": key})


def _current_task(session: Session, source: str, external_id: str, grid: Grid) -> Task | None:
    """The task holding a ticket now: the last of its chain, not passed on (one at most: the
    partial unique index `uq_tasks_source_external_id`, which this reads). A hotline ticket's
    in any community; another source's reference's in `grid`'s community only (one at most
    there: `_lock_reference`), as another community's is theirs."""
    stmt = select(Task).where(
        Task.source == source,
        Task.external_id == external_id,
        Task.transferred_at.is_(None),
    )
    if source != "hotline":
        community = select(Grid.id).where(Grid.community_code == grid.community_code)
        stmt = stmt.where(Task.grid_id.in_(community))
    return session.scalar(stmt)


def _same_community(session: Session, task: Task, grid: Grid) -> bool:
    holder_grid = session.get(Grid, task.grid_id)
    return holder_grid is not None and holder_grid.community_code == grid.community_code


def _repeat(
    session: Session,
    scope: Scope | None,
    external_id: str,
    task: Task,
    due_at: datetime | None = None,
) -> errors.Conflict:
    """A ticket this community holds already: a 409 naming its task only to one who sees it,
    and, when it came again with another deadline (the hotline's 延期 or correction), how that
    deadline is taken in (`change_ticket_deadline`): a repeat never moves a deadline."""
    if scope is None or scope.sees_task(session, task.id):
        detail = f"Ticket {external_id} is already task {task.id}."
        if due_at is not None and due_at != task.ticket_due_at:
            detail += (
                " It came with another deadline: if the hotline changed it (延期, or a "
                f"correction), the grid's leader or the community admin sends it to "
                f"PUT /api/v1/tasks/{task.id}/deadline."
            )
        return errors.Conflict(detail, task_id=task.id, ticket_held=True)
    return errors.Conflict(
        f"Ticket {external_id} is already a task of this community.", ticket_held=True
    )


def _ticket_holder(
    session: Session,
    scope: Scope | None,
    source: str,
    external_id: str,
    grid: Grid,
    redispatch: bool,
    *,
    due_at: datetime | None = None,
) -> Task | None:
    """The task a ticket received again comes from, locked; None for a ticket new here.

    Its holder in the same community: a repeat (409). Another source's reference is only
    looked for in the same community (`_current_task`): one elsewhere is another community's
    own. A hotline ticket held in another community: when the caller says the hotline
    re-dispatched the ticket here (改派, `redispatch`), the holder, locked `FOR UPDATE`, is
    returned to be transferred; without it, a 409 that says how and names no task (a number
    typed twice, or mistyped, never ends another community's task). A re-dispatch sent twice
    at once: the second waits on that lock, then finds the holder transferred and follows the
    chain to the task the first made, in its own community: a repeat.
    """
    while True:
        current = _current_task(session, source, external_id, grid)
        if current is None:
            return None
        holder = session.scalar(
            select(Task)
            .where(Task.id == current.id)
            .with_for_update(of=Task)
            .execution_options(populate_existing=True)
        )
        if holder is None or holder.transferred_at is not None:
            continue  # transferred while we waited: follow the chain
        if source != "hotline" or _same_community(session, holder, grid):
            raise _repeat(session, scope, external_id, holder, due_at)
        if not redispatch:
            raise errors.Conflict(
                f"Ticket {external_id} is held by another community. If the 12345 hotline "
                "re-dispatched it to you (改派), send it again with `redispatch: true`: that "
                "community's task is then passed on to yours.",
                held_elsewhere=True,
            )
        return holder


def _transfer(session: Session, previous: Task, task: Task, now: datetime) -> None:
    """Link the ticket's earlier task to its next one; an earlier task still open ends as
    transferred and its assignee and overseers are told (one resolved keeps its status and
    its rates: the work was done)."""
    previous.transferred_to_id = task.id
    before = previous.status
    if before in OPEN_STATUSES:
        previous.status = TRANSFERRED
        _stamp(previous, now)
    # A system step (the hotline's): the actor, a user of the other community, is not named.
    _event(previous, "transfer", before, previous.status, None, now, note=TRANSFERRED_OUT_NOTE)
    session.flush()
    if before in OPEN_STATUSES:
        grid = session.get(Grid, previous.grid_id)
        told = [
            previous.assignee_id,
            *overseers(session, grid, now=now, besides=(previous.assignee_id,), district=False),
        ]
        _notify_task(
            session,
            previous,
            list(dict.fromkeys(told)),
            "task_transferred",
            "工单已改派至其他社区",
            urgent=False,
            now=now,
        )


def _stamp(task: Task, now: datetime) -> None:
    """Record that `task` changed at `now`. Set plainly, a time equal to the stored one is left
    out of the UPDATE, and the column's onupdate (the transaction's start) takes its place: a
    task dispatched in the instant it was created read as updated before it was created."""
    task.updated_at = now
    flag_modified(task, "updated_at")


def _sees_household(
    session: Session, scope: Scope, household: Household, *, window_day: date | None = None
) -> bool:
    """Whether the caller may name the household on a task: one of their grids'; for a window
    task opened on `window_day`, also one the hall window finds (`Scope.window_households`: the
    resident who walks in may live in any grid of the community)."""
    if session.scalar(select(Household.id).where(Household.id == household.id, scope.households())):
        return True
    window = None if window_day is None else scope.window_households(session, window_day)
    if window is None:
        return False
    return bool(session.scalar(select(Household.id).where(Household.id == household.id, window)))


def _event(
    task: Task,
    action: str,
    from_status: str | None,
    to_status: str,
    actor_id: int | None,
    now: datetime,
    *,
    note: str = "",
    location=None,
) -> TaskEvent:
    event = TaskEvent(
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor_id=actor_id,
        note=note or "",
        location=location,
        at=now,
    )
    task.events.append(event)
    return event


def overseers(
    session: Session,
    grid: Grid,
    *,
    now: datetime,
    besides: Iterable[int | None] = (),
    district: bool = True,
) -> list[int]:
    """Who answers for a grid's task above the one holding or acting on it: the grid's leader,
    while active, not on approved leave (the Asia/Shanghai day of `now`) and not among
    `besides`; else the community's active admins; else, with nobody in the community to
    answer, the grid's leader even on leave (they may still assign it from afar) and, with
    `district`, the active viewers of the community's district (over the community: they see
    its tasks and can see that an admin is named).

    `district=False` for a notice only the community can act on and that reports nothing
    upwards (a resolve, whose return call and close are the community's; a ticket passed on,
    which tells those who worked it to stop): a district viewer can do nothing with it, and
    told of every one while a community has no admin, learns to pass over the notices that
    need them (a task nobody can take, an escalation).

    A leader escalating or returning the task they hold (dispatch falls back to them when no
    worker is on duty), a grid without a leader, a leader switched off or away: the admins
    hear of it. A community without an active admin told nobody: its unassigned tasks waited
    unseen until their deadline.
    """
    skip = {u for u in besides if u is not None}
    leader = None
    if grid.leader_id is not None and grid.leader_id not in skip:
        leader = session.get(User, grid.leader_id)
        if leader is not None and not leader.active:
            leader = None
        day = now.astimezone(LOCAL).date()
        if leader is not None and not dispatch.on_leave(session, leader.id, day):
            return [leader.id]
    admins = list(
        session.scalars(
            select(User.id)
            .where(
                User.role == "community_admin",
                User.community_code == grid.community_code,
                User.active,
                User.id.not_in(skip),
            )
            .order_by(User.id)
        )
    )
    if admins:
        return admins
    if not district:
        return [leader.id] if leader is not None else []
    viewers = list(
        session.scalars(
            select(User.id)
            .where(
                User.role == "district_viewer",
                User.district_code == grid.community_code[:6],
                User.active,
                User.id.not_in(skip),
            )
            .order_by(User.id)
        )
    )
    return ([leader.id] if leader is not None else []) + viewers


def _notify_task(
    session: Session, task: Task, user_ids, kind: str, title: str, urgent=None, *, now=None
):
    notify(
        session,
        [u for u in user_ids if u is not None],
        kind,
        title,
        task.title,
        data={"task_id": task.id, "status": task.status, "urgency": task.urgency},
        urgent=task.urgency in URGENT if urgent is None else urgent,
        collapse_key=f"task:{task.id}",
        now=now,
    )


def _assign(
    session: Session,
    task: Task,
    assignee: User,
    actor_id: int | None,
    now: datetime,
    *,
    note: str,
    kind: str,
) -> None:
    before = task.status
    task.assignee_id = assignee.id
    task.status = "dispatched"
    _stamp(task, now)
    action = "dispatch" if kind == "task_dispatched" else "assign"
    _event(task, action, before, "dispatched", actor_id, now, note=note)
    session.flush()
    if assignee.id != actor_id:  # one who gives the task to themselves knows it
        title = "新任务" if kind == "task_dispatched" else "任务已转派给您"
        _notify_task(session, task, [assignee.id], kind, title, now=now)


def reassign(
    session: Session, scope: Scope, task: Task, assignee_id: int, note: str, now: datetime
) -> Task:
    """A grid leader (or the community admin) gives the task to someone else."""
    grid = session.get(Grid, task.grid_id)
    if not may_take(scope, task, grid, "assign"):
        raise errors.Forbidden("Only the grid's leader or the community admin reassigns tasks.")
    if task.status not in REASSIGNABLE:
        raise errors.Conflict(
            f"A task that is {task.status} cannot be reassigned.",
            state=task.status,
            allowed=task_actions(task),
        )
    assignee = session.get(User, assignee_id) if row_id(assignee_id) is not None else None
    if (
        assignee is None
        or not assignee.active
        or assignee.role not in FIELD_ROLES
        or assignee.community_code != grid.community_code
    ):
        message = f"User {assignee_id} is no worker or leader of community {grid.community_code}."
        raise errors.Unprocessable(message, errors={"json": {"assignee_id": [message]}})
    if assignee.id == task.assignee_id and task.status in AT_WORK:
        # Given again to who has taken it up, it went back to `dispatched`: they accepted and
        # started it once more, told "任务已转派给您" of a task they held.
        raise errors.Conflict(
            f"{assignee.display_name} already holds this task and has taken it up "
            f"({task.status}); give it to someone else, or leave it with them.",
            state=task.status,
            allowed=task_actions(task),
        )
    # As dispatch passes over them: a task given to someone away waits unseen for its deadline.
    leave = dispatch.leave_on(session, assignee.id, now.astimezone(LOCAL).date())
    if leave is not None:
        raise errors.Conflict(
            f"{assignee.username} is on approved leave until {leave.end_date.isoformat()}; "
            "give the task to someone at work.",
            leave={
                "start_date": leave.start_date.isoformat(),
                "end_date": leave.end_date.isoformat(),
            },
        )
    previous = task.assignee_id
    # The warnings went to whoever held the task: a new assignee is warned at the next tick if
    # the deadline (or the first contact) is as near (the round's escalation, once made, stays
    # made; so does a missed first contact, told once: `contact_overdue_at`).
    if assignee.id != previous:
        task.warned_at = task.contact_warned_at = None
    if task.due_at > now:
        # An escalation before the deadline (the assignee asked for help) is answered by this
        # reassign; the deadline's own warning and escalation are still owed. Once the
        # deadline has passed, its escalation stays made.
        task.escalated_at = None
    _assign(session, task, assignee, scope.user_id, now, note=note, kind="task_reassigned")
    # Nobody is told of a step they took: a leader giving away a task they held knows.
    if previous not in (None, assignee.id, scope.user_id):
        _notify_task(
            session, task, [previous], "task_updated", "任务已转派他人", urgent=False, now=now
        )
    return task


def _household_at(session: Session, grid: Grid, address: str, now: datetime) -> Household:
    """The one household of `grid` in the register at `address` (`address_words_condition`):
    the right household of a task moved there, named by the leader of the wrong grid, who knows
    the address the resident gave but may not look that grid's households up. Only how many
    households are there is told (none, or several: a 422 naming `address`, `matches` the
    count), not who."""
    from api.services.households import address_words_condition

    condition = address_words_condition(address)
    if condition is None:
        message = "Give one to four words of the right household's address (7号楼 2单元 502)."
        raise errors.Unprocessable(message, errors={"json": {"address": [message]}})
    # In the register now, as `_require_in_register` holds it (one leaving at the end of today
    # is still there).
    in_register = or_(Household.removed_at.is_(None), Household.removed_at > now)
    at = select(Household).where(Household.grid_id == grid.id, in_register, condition)
    found = session.scalars(at.order_by(Household.id).limit(2)).all()
    if len(found) == 1:
        return found[0]
    matches = len(found) and session.scalar(select(func.count()).select_from(at.subquery()))
    if not matches:
        message = f"No household of grid {grid.code} in the register is at that address."
    else:
        message = (
            f"{matches} households of grid {grid.code} match that address: add the unit or room."
        )
    raise errors.Unprocessable(message, errors={"json": {"address": [message]}}, matches=matches)


def move_task(
    session: Session,
    scope: Scope,
    task: Task,
    grid_code: str,
    reason: str,
    now: datetime,
    *,
    location: dict | None = None,
    household_id: int | None = None,
    address: str | None = None,
) -> Task:
    """Move an open task to another grid of its community: a task opened for the wrong grid
    (the caller gave a neighbouring address) counted against that grid's rates, and the right
    grid's leader never saw it. It is dispatched there as a new task would be; the deadline
    runs on (the resident's wait did not start again). The grid's leader or the community admin
    moves it, with a reason, and with the place it belongs: `location` (in the new grid; its
    household, the wrong address, is let go) or `household_id` (the right household, of the new
    grid, one the caller may read) or `address` (that household's, `_household_at`), or none
    when its place already lies in the new grid (a task left at its old place would stand in
    the old grid on the map). A move to another community is not this: a 12345 ticket goes
    there by the hotline's re-dispatch (改派, `create_task`)."""
    grid = session.get(Grid, task.grid_id)
    _require_movable(scope, grid, task)
    if not reason.strip():
        message = "Say why the task moves (the address it was opened for was wrong)."
        raise errors.Unprocessable(message, errors={"json": {"reason": [message]}})
    target = session.scalar(select(Grid).where(Grid.code == grid_code))
    refusal = None
    if target is None:
        refusal = f"There is no grid {grid_code}."
    elif target.community_code != grid.community_code:
        refusal = (
            f"Grid {grid_code} is in another community; a task moves within its community "
            "(a 12345 ticket goes to another community by the hotline's re-dispatch, 改派)."
        )
    elif target.id == grid.id:
        refusal = f"The task is already in grid {grid_code}."
    elif target.retired_at is not None:
        refusal = f"Grid {grid_code} is retired."
    if refusal is not None:
        raise errors.Unprocessable(refusal, errors={"json": {"grid_code": [refusal]}})
    household = None
    if household_id is not None:
        household = (
            session.get(Household, household_id) if row_id(household_id) is not None else None
        )
        # One the caller may not read (a leader moving to a grid not theirs) is answered as an
        # id of no household there: its grid and point are the register's, not theirs to probe.
        if (
            household is None
            or household.grid_id != target.id
            or not _sees_household(session, scope, household)
        ):
            message = f"Household {household_id} is not one of grid {grid_code}."
            raise errors.Unprocessable(message, errors={"json": {"household_id": [message]}})
        _require_in_register(household, now)
    elif address is not None:
        household = _household_at(session, target, address, now)
    point = None
    if location is not None:
        lon, lat = _point(location)
        _require_in(session, target, lon, lat, "The location lies in {}, not in grid {}.")
        point = db_geom(Point(lon, lat))
    elif household is None:
        lon, lat = _task_point(session, task)
        message = "The task stands in {}: give its location or its household in grid {}."
        _require_in(session, target, lon, lat, message)

    _hold_in_service(session, target)
    before, previous = task.status, task.assignee_id
    task.grid_id, task.grid = target.id, target
    if household is not None:
        task.household_id, task.location = household.id, household.location
    if point is not None:
        task.location = point
        task.household_id = household.id if household is not None else None
    session.flush()
    assignee, why = dispatch.choose_assignee(session, target, now.astimezone(LOCAL).date())
    # Its worker holds the new grid too and is picked again: they go on holding it as they
    # were (set back to "dispatched", they accepted and started it again, pushed 新任务 for it),
    # told that it moved (its grid, maybe its door, changed).
    stays = assignee is not None and assignee.id == previous and before in HELD_STATUSES
    if not stays:
        task.assignee_id, task.status = None, "new"
    _stamp(task, now)
    _event(
        task, "move", before, task.status, scope.user_id, now,
        note=f"{grid.code} → {target.code}: {reason.strip()}",
    )  # fmt: skip
    if task.due_at > now:
        # As a reassign: an escalation before the deadline is answered by the move; the
        # deadline's own warning and escalation are still owed.
        task.escalated_at = None
    session.flush()
    if not stays:
        if assignee is None or assignee.id != previous:
            task.warned_at = task.contact_warned_at = None  # owed to whoever holds the task now
        if assignee is not None:
            _assign(session, task, assignee, scope.user_id, now, note=why, kind="task_dispatched")
        else:
            above = overseers(session, target, now=now, besides=(scope.user_id,))
            _notify_task(session, task, above, "task_unassigned", "新任务待分派", now=now)
    if previous not in (None, scope.user_id) and (stays or previous != task.assignee_id):
        _notify_task(
            session, task, [previous], "task_updated", "任务已移至其他网格", urgent=False, now=now
        )
    session.flush()
    return task


def move_targets(session: Session, scope: Scope, task: Task) -> list[Grid]:
    """The grids `task` may move to, by code, for whoever may move it: every active grid of its
    community but its own, as `move_task` takes them. The task page offered the grids one may
    open a window task for (`grids.window_grids`), a leader's own: the leader of the one wrong
    grid, whom the move lets take its task to any grid of the community, was offered none.
    Refused as the move is: 403 to who may not move it, 409 for a task no longer open."""
    grid = session.get(Grid, task.grid_id)
    _require_movable(scope, grid, task)
    rows = session.scalars(
        select(Grid)
        .where(
            Grid.community_code == grid.community_code,
            Grid.retired_at.is_(None),
            Grid.id != grid.id,
        )
        .order_by(Grid.code)
    )
    return list(rows)


def _require_movable(scope: Scope, grid: Grid, task: Task) -> None:
    """403 unless the caller may move the task out of `grid`, its grid; 409 unless it is open."""
    scope.require_task_mover(grid)
    if task.status not in REASSIGNABLE:
        raise errors.Conflict(
            f"A task that is {task.status} is not moved to another grid; only an open one is.",
            state=task.status,
            allowed=task_actions(task),
        )


def _require_in(session: Session, grid: Grid, lon: float, lat: float, message: str) -> None:
    """422 (on `location`) unless the point lies in `grid`: `message` formatted with where it
    lies ("grid …" or "no grid") and the grid's code."""
    placed = locate(session, lon, lat)
    if placed is None or placed.id != grid.id:
        where = f"grid {placed.code}" if placed is not None else "no grid"
        detail = message.format(where, grid.code)
        raise errors.Unprocessable(detail, errors={"json": {"location": [detail]}})


def _task_point(session: Session, task: Task) -> tuple[float, float]:
    """Where the task stands: its point, else its household's."""
    if task.location is not None:
        return point_lonlat(task.location)
    return point_lonlat(session.get(Household, task.household_id).location)


# --- the lifecycle ---------------------------------------------------------------------------
def transition(
    session: Session,
    scope: Scope,
    task: Task,
    action: str,
    *,
    note: str = "",
    location: dict | None = None,
    photos: list[int | str] | None = None,
    satisfaction: str | None = None,
    taken_at: datetime | None = None,
    now: datetime,
) -> Task:
    """Take `action` on `task` as the caller; `taken_at`: when the step was taken, if it was
    kept on the phone before it was sent (`_taken_when`)."""
    rules = TRANSITIONS[action]
    rule = rules.get(task.status)
    # A step the phone kept while the tick escalated the task (`_taken_before_escalation`).
    late = rule is None and _taken_before_escalation(task, action, taken_at, now)
    if late:
        rule = LATE_STEPS[action](task.status)
    # Whose step it is comes before whether the task's state takes it: a caller who may never
    # take it is not told the steps that are others' (a district viewer read "allowed: accept,
    # escalate, ..."), and a 409 lists the steps that are the caller's.
    scope.require_writer()
    grid = session.get(Grid, task.grid_id)
    if not may_take(scope, task, grid, action):
        if next(iter(rules.values())).by == ASSIGNEE:
            raise errors.Forbidden(f"Only the task's assignee may {action} it.")
        raise errors.Forbidden(f"Only the grid's leader or the community admin may {action} it.")
    if rule is None or (action not in task_actions(task) and not late):
        why = ""
        if rule is not None and action == "callback" and task.satisfaction is not None:
            why = " (it was called back already)"
        elif rule is not None and action == "accept" and task.status == "escalated":
            why = " (its first contact is recorded already)"
        elif rule is not None:
            why = " (its ticket went on to another community)"
        yours = [a for a in task_actions(task) if may_take(scope, task, grid, a)]
        raise errors.Conflict(
            f"Cannot {action} a task that is {task.status}{why}; you may: "
            f"{', '.join(yours) or 'nothing'}.",
            state=task.status,
            allowed=yours,
        )
    if action == "return" and not note.strip():
        message = "Say why the task is returned (wrong dispatch)."
        raise errors.Unprocessable(message, errors={"json": {"note": [message]}})
    if action == "callback" and satisfaction is None:
        message = "A callback records the resident's satisfaction."
        raise errors.Unprocessable(message, errors={"json": {"satisfaction": [message]}})
    if action != "callback" and satisfaction is not None:
        message = "Satisfaction is recorded by the callback only."
        raise errors.Unprocessable(message, errors={"json": {"satisfaction": [message]}})
    # Ids name photos of the task uploaded first; strings are references kept as sent.
    taken = _step_photos(session, scope, task, [p for p in photos or [] if isinstance(p, int)])
    refs = [p for p in photos or [] if isinstance(p, str)]
    point = None
    if location is not None:
        point = db_geom(Point(*_point(location)))
    retired_grid = None
    if action == "reopen":
        grid, retired_grid = _reopening_grid(session, task, grid, scope.user_id, now), grid
        if grid is retired_grid:
            retired_grid = None
    before = task.status
    stepped = _taken_when(task, taken_at, now)
    when = stepped or now
    task.status = rule.to
    _stamp(task, now)
    # Resolving is contact made at the latest: a task escalated before it was accepted (help
    # asked at once) is resolved without an accept, and counted as never answered otherwise.
    if action in ("accept", "resolve") and task.first_contact_at is None:
        task.first_contact_at = when
    if action == "resolve":
        task.resolved_at = when
    if action == "callback":
        task.satisfaction = satisfaction
    if action == "close":
        task.closed_at = when
    if action == "escalate":
        task.escalated_at = task.escalated_at or when
    if action == "reopen":
        # A new round: the resident's verdict was on a resolution that did not hold.
        task.resolved_at = task.closed_at = None
        task.satisfaction = None
        _reopened_deadline(session, task, grid, now)
        # Its complainant's contact, if retention erased it, stays erased; the new round's
        # steps may hold more (a number typed from a new call): the next close counts again.
        task.contact_erased_at = None
    event = _event(task, action, before, rule.to, scope.user_id, now, note=note, location=point)
    event.photo_refs = refs
    event.taken_at = stepped
    session.flush()
    for photo in taken:
        photo.event_id = event.id
    if taken:
        session.flush()
        session.expire(event, ["photos"])  # read again with them
    if action in ("return", "escalate"):
        kind = "task_escalated" if action == "escalate" else "task_updated"
        title = "任务已上报" if action == "escalate" else "任务被退回"
        above = overseers(session, grid, now=now, besides=(task.assignee_id, scope.user_id))
        # Every escalation is urgent (it passes the leader's quiet hours), as the deadline's is.
        urgent = True if action == "escalate" else None
        _notify_task(session, task, above, kind, title, urgent=urgent, now=now)
    elif action == "resolve":
        _told_resolved(session, task, grid, scope.user_id, now)
    elif action == "reopen" and retired_grid is not None:
        # Dispatched in its new grid, as a moved task is: its last holder held the old one.
        why = f"原网格 {retired_grid.code} 已撤销"
        hand_on(session, task, grid, scope.user_id, now, why=why, title="重新打开的任务待分派")
    elif action == "reopen":
        _hand_on_reopened(session, task, grid, scope.user_id, now)
    return task


# Steps that made the task what a step taken on it acted on: who holds it (dispatched,
# assigned, moved, reopened) or any person's step. Not the system's own (the deadline's
# escalation) nor the hotline's change of deadline: a phone with no signal did not know of them.
_HOLDER_EVENTS = ("create", "dispatch", "assign", "transfer", "reopen", "unassign")


def _taken_when(task: Task, taken_at: datetime | None, now: datetime) -> datetime | None:
    """When a step sent with `taken_at` was taken, as far as the server can tell (None: sent
    with no time of its own).

    A worker with no signal takes the step on the phone, which keeps it and sends it at the
    next sync: what the step settles (contact made, the resolution, the close) is dated when
    it was taken, so work done before the deadline and synced after it is on time. The
    phone's time is bounded by what the server knows: not after now (a clock ahead), not
    before the step it followed (`_HOLDER_EVENTS`: a clock behind). Between those it is the
    phone's word, kept beside the server's `at` in the history for the leader to read."""
    if taken_at is None:
        return None
    floor = max(
        (
            e.at
            for e in task.events
            if e.action in _HOLDER_EVENTS or (e.actor_id is not None and e.action != "deadline")
        ),
        default=task.created_at,
    )
    return min(max(taken_at, floor), now)


# The assignee's steps a phone may have kept, with no signal, while the tick escalated the task
# at its deadline, and what each does to it then (the status it leaves the task in).
LATE_STEPS = {
    # The contact made in time is recorded (`first_contact_at`, the response rate), the work
    # started is in its history: the task stays escalated (the deadline passed all the same, the
    # leader was told; its assignee resolves it, as a resolution taken before the escalation is
    # taken from it).
    "accept": lambda status: Rule(status, ASSIGNEE),
    "start": lambda status: Rule(status, ASSIGNEE),
    # "Not mine" said before the deadline: the task is with the leader to place, as one returned
    # before the tick is (it stays `returned` at its deadline), not on its returner's list.
    "return": lambda status: Rule("returned", ASSIGNEE),
}


def _taken_before_escalation(
    task: Task, action: str, taken_at: datetime | None, now: datetime
) -> bool:
    """Whether a step sent with `taken_at` (one of `LATE_STEPS`) was taken, on a phone with no
    signal, before the tick escalated the task at its deadline, while the task was in a state
    that took it.

    The phone could not know of the tick's escalation (`_taken_when`). Not a step sent live, nor
    one taken after the escalation, nor one after a person's step since (the leader's
    escalation, the step itself: `_taken_when` brings the time up to it), nor one the task's
    state did not take when the tick escalated it (an accept of a task accepted already, a
    start of one not accepted, anything of one unassigned). One step each: a second kept step
    (an accept, then a start) finds the first taken since, a person's step."""
    if action not in LATE_STEPS:
        return False
    stepped = _taken_when(task, taken_at, now)
    if stepped is None or task.status != "escalated":
        return False
    # What made the task escalated (the last step into `escalated` from another status).
    entered = next(
        (
            e
            for e in reversed(task.events)
            if e.to_status == "escalated" and e.from_status != "escalated"
        ),
        None,
    )
    return (
        entered is not None
        and entered.action == "escalate"
        and entered.actor_id is None  # the tick's: the deadline passed
        and entered.from_status in TRANSITIONS[action]
        and stepped < entered.at
    )


def _step_photos(session: Session, scope: Scope, task: Task, ids: list[int]) -> list[TaskPhoto]:
    """The photos a step names, locked: each a photo of this task the caller uploaded and no
    step was sent with yet. Any other is a 422 naming `photos`, before anything changed."""
    if not ids:
        return []
    # An id past the database's integers names no photo (sent, the database refused it: a
    # 422 naming no field).
    found = {
        photo.id: photo
        for photo in session.scalars(
            select(TaskPhoto)
            .where(
                TaskPhoto.id.in_([i for i in ids if row_id(i) is not None]),
                TaskPhoto.task_id == task.id,
            )
            .order_by(TaskPhoto.id)
            .with_for_update()
        )
    }
    problems, seen = [], set()
    for photo_id in ids:
        photo = found.get(photo_id)
        if photo_id in seen:
            problems.append(f"Photo {photo_id} is named twice.")
        elif photo is None:
            problems.append(
                f"Photo {photo_id} is not a photo of task {task.id}: upload it first "
                f"(POST /api/v1/tasks/{task.id}/photos) and send the id it is given."
            )
        elif photo.uploaded_by_id != scope.user_id:
            problems.append(f"Photo {photo_id} was uploaded by someone else: send your own.")
        elif photo.event_id is not None:
            problems.append(f"Photo {photo_id} was sent with another step already.")
        seen.add(photo_id)
    if problems:
        raise errors.Unprocessable(
            "A step's photos are photos of the task you uploaded and sent with no other step; "
            "nothing was done.",
            errors={"json": {"photos": problems}},
        )
    # The steps hold the most photos a task may hold: each uploader's room counts the steps'
    # photos and their own unsent ones (`photos._check_room`), so several uploaders' photos
    # may be more than the steps take. Counted under the task's lock, as every step is.
    sent = session.scalar(
        select(func.count())
        .select_from(TaskPhoto)
        .where(TaskPhoto.task_id == task.id, TaskPhoto.event_id.is_not(None))
    )
    if sent + len(ids) > TaskPhoto.MAX_PER_OWNER:
        raise errors.Conflict(
            f"Task {task.id}'s steps hold {sent} photos; with these {len(ids)} they would pass "
            f"the most a task may hold ({TaskPhoto.MAX_PER_OWNER}); nothing was done."
        )
    return [found[photo_id] for photo_id in ids]


def _reopening_grid(
    session: Session, task: Task, grid: Grid, actor_id: int | None, now: datetime
) -> Grid:
    """The grid a task is reopened in: its own, held until the task is written (a retirement
    counts the open tasks under its lock); when it was retired since the task ended (its
    households moved to a grid drawn anew), the grid of its community that covers its place
    now (its household's grid, else where it stands), the move in its history. A 409 when no
    grid of the community covers it: reopened in the retired grid, it was off the map and
    dispatched to whoever had held that grid."""
    retired = session.execute(
        select(Grid.retired_at).where(Grid.id == grid.id).with_for_update(read=True)
    ).scalar_one()
    if retired is None:
        return grid
    household = session.get(Household, task.household_id) if task.household_id else None
    if household is not None:
        target = session.get(Grid, household.grid_id)
    else:
        lon, lat = _task_point(session, task)
        target = locate(session, lon, lat, community_code=grid.community_code)
    if target is None or target.community_code != grid.community_code:
        raise errors.Conflict(
            f"Grid {grid.code} was retired after the task ended, and no grid of its community "
            "covers the task's place now: draw the grid that takes it in, then reopen it."
        )
    _hold_in_service(session, target)
    task.grid_id, task.grid = target.id, target
    _event(
        task, "move", task.status, task.status, actor_id, now,
        note=f"{grid.code} → {target.code}: {GRID_RETIRED_NOTE}",
    )  # fmt: skip
    return target


def _reopened_deadline(session: Session, task: Task, grid: Grid, now: datetime) -> None:
    """The deadline of a reopened task's new round.

    A task whose deadline its urgency set runs again from now (warned at 80 % of the new round
    and escalated at its end, once more). A 12345 ticket that came with its own deadline
    (`ticket_due_at`) keeps it: the hotline's deadline is the one the city measures, and a
    reopening in the community does not move it. Still ahead, it is warned at 80 % of what is
    left from the reopening and escalated when it comes (an escalation made before is answered
    by the reopening, as by a reassign). Already passed, the task is overdue from the moment it
    is reopened, honestly: it counts overdue in the rates and reports, it is not warned, and the
    tick escalates it at once to the grid's overseers unless the deadline's escalation was made
    already (in the round before: it is not made twice)."""
    if task.ticket_due_at is None:
        resolve_in, _ = deadlines(task_settings(session, grid), task.type, task.urgency)
        task.due_at = now + resolve_in
        task.warned_at = task.escalated_at = None
        return
    task.due_at = task.ticket_due_at
    if task.due_at > now:
        task.warned_at = task.escalated_at = None


DEADLINE_CHANGED = "任务办理时限已变更"


def change_ticket_deadline(
    session: Session, scope: Scope, task: Task, due_at: datetime, note: str, now: datetime
) -> Task:
    """The 12345 hotline changed an open ticket's deadline (办理时限): extended it (延期) or
    corrected it. `due_at` becomes the task's deadline and its ticket's (`ticket_due_at`, which a
    reopening keeps), checked as at creation (after now, within MAX_GIVEN_DEADLINE).

    The grid's leader or the community admin enters it, as they reassign and reopen: the
    deadline measures those who work the ticket. Only a hotline ticket (another task's urgency
    sets its deadline), only while open: a resolved one's timeliness is settled (a reopening
    comes first), a transferred one is another community's. The same deadline sent again
    changes nothing and tells nobody.

    The new deadline is warned and escalated as one not yet reached, as a reopening treats the
    ticket's deadline still ahead: `warned_at` and `escalated_at` cleared (an escalation made
    before, at the old deadline or by hand, is answered by the hotline's decision; the status
    stays), warned at 80 % of what is left from the change (the `deadline` step starts the
    warning's round, `_ROUND_STARTED`). A first-contact deadline not yet met that falls after
    it is brought forward to it, as at creation. A `deadline` step records the old and new
    deadlines (Beijing time) and the note; the assignee is told (`task_updated`): urgently by
    the task's urgency when the deadline comes sooner, not urgently when it is extended."""
    grid = session.get(Grid, task.grid_id)
    if not scope.leads_grid(grid):
        raise errors.Forbidden(
            "Only the grid's leader or the community admin changes a 12345 ticket's deadline."
        )
    if task.source != "hotline":
        raise errors.Conflict(
            "Only a 12345 ticket's deadline is the hotline's to change; this task's urgency "
            "sets its deadline.",
            source=task.source,
        )
    if task.status not in OPEN_STATUSES:
        why = (
            "its ticket went on to another community"
            if task.status == TRANSFERRED
            else "its deadline is settled; reopen it first if the hotline sent it back"
        )
        raise errors.Conflict(
            f"A task that is {task.status} keeps its deadline ({why}).",
            state=task.status,
            allowed=task_actions(task),
        )
    if due_at == task.ticket_due_at:
        return task  # sent again: taken in already
    _given_deadline(due_at, now)  # a 422 for a deadline the hotline could not have given
    before = task.due_at
    task.due_at = task.ticket_due_at = due_at
    contact_due = task.first_contact_due_at
    if task.first_contact_at is None and contact_due is not None and contact_due > due_at:
        task.first_contact_due_at = due_at
    task.warned_at = task.escalated_at = None
    _stamp(task, now)
    moved = f"12345 办理时限 {_local(before)} → {_local(due_at)}"
    _event(
        task,
        "deadline",
        task.status,
        task.status,
        scope.user_id,
        now,
        note=f"{moved}: {note.strip()}" if note.strip() else moved,
    )
    session.flush()
    if task.assignee_id not in (None, scope.user_id) and due_at != before:
        urgent = None if due_at < before else False
        told = [task.assignee_id]
        _notify_task(session, task, told, "task_updated", DEADLINE_CHANGED, urgent=urgent, now=now)
    return task


def _local(moment: datetime) -> str:
    return moment.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def held_by(session: Session, worker_id: int) -> list[Task]:
    """The open tasks a worker holds (dispatched to them, accepted, under way, reopened, and
    escalated: an escalation leaves the work with them, who alone resolve it), soonest deadline
    first: what is left with them when they go on leave, as a switch-off hands on."""
    return list(
        session.scalars(
            select(Task)
            .where(Task.assignee_id == worker_id, Task.status.in_(HANDED_ON_STATUSES))
            .order_by(Task.due_at, Task.id)
        )
    )


def _hand_on_reopened(
    session: Session, task: Task, grid: Grid, actor_id: int | None, now: datetime
) -> None:
    """A reopened task goes back to its last assignee, told of it; when they can no longer
    work it (switched off, made a community admin since, on leave today, no longer holding
    nor leading its grid), to whom dispatch picks today, as a new task would; with nobody to
    pick, it waits unassigned and whoever may assign it is told."""
    day = now.astimezone(LOCAL).date()
    holder = session.get(User, task.assignee_id) if task.assignee_id is not None else None
    # An account made an admin left field work: its open tasks were handed on then, and one it
    # had resolved is not given back to it (as no reassign may name it).
    works = holder is not None and holder.active and holder.role in FIELD_ROLES
    # One moved to other grids since (or who held it for a day: a reliever, a worker of another
    # grid it was reassigned to) serves other doors: the grid's worker now serves this one.
    works = works and (grid.leader_id == holder.id or _holds(session, holder.id, grid.id))
    if works and not dispatch.on_leave(session, holder.id, day):
        if holder.id != actor_id:
            _notify_task(session, task, [holder.id], "task_updated", "任务已重新打开", now=now)
        return
    hand_on(
        session,
        task,
        grid,
        actor_id,
        now,
        why="原承办人无法办理（已停用或请假）",
        title="重新打开的任务待分派",
        besides=holder.id if holder is not None else None,
    )


def _holds(session: Session, user_id: int, grid_id: int) -> bool:
    return bool(
        session.scalar(
            select(user_grids.c.user_id).where(
                user_grids.c.user_id == user_id, user_grids.c.grid_id == grid_id
            )
        )
    )


# The notes the server writes in Chinese on a task's steps (the English page says them in
# English: web/src/task_detail.js NOTES_EN, held to these by tests/api/test_web.py).
SWITCHED_OFF_NOTE = "原承办人账号已停用"
RESOLVED_HERE_NOTE = "窗口当场办结"  # the resolve step of a request settled at the window
TRANSFERRED_IN_NOTE = "12345 改派自其他社区"
TRANSFERRED_OUT_NOTE = "12345 改派至其他社区"
GRID_RETIRED_NOTE = "原网格已撤销"  # after "{old grid} → {new grid}: "
# The tick's note on an escalation at the deadline (the task's page says it in the reader's
# words, web/src/task_detail.js DISPATCH_NOTES_ZH).
DEADLINE_NOTE = "deadline passed"
# What a holder who left (switched off, made an admin) still held goes on: the tasks they held
# and those escalated past their deadline, which only their holder resolves (the leader, told
# of the escalation, would otherwise have to notice the holder had gone). A `returned` task is
# the leader's to place already.
HANDED_ON_STATUSES = (*HELD_STATUSES, "escalated")
# An account made a community admin leaves field work: what it held goes on as a switch-off's.
MADE_ADMIN_NOTE = "原承办人已调任社区管理员"
MOVED_NOTE = "原承办人已调离该网格"
MOVED_OFF_TITLE = "您已调离该网格，任务已转交"


def hand_on_from_switched_off(
    session: Session,
    now: datetime,
    *,
    holder_id: int | None = None,
    actor_id: int | None = None,
    limit: int = 1000,
) -> list[tuple[int, int | None]]:
    """Hand on the open tasks held by switched-off accounts (only `holder_id`'s, if given) to
    whom dispatch picks today, or leave them unassigned with their overseers told; the
    (task id, new assignee id or None) of each.

    The switch-off hands on what its holder held; the tick sweeps up after it, so a task
    assigned to someone in the instant they were switched off is not left with them. Rows
    others hold locked are left to the next tick (SKIP LOCKED) unless a holder is named.
    """
    switched_off = select(User.id).where(User.active.is_(False))
    if holder_id is not None:
        switched_off = switched_off.where(User.id == holder_id)
    return _hand_on_held(
        session,
        now,
        switched_off,
        actor_id,
        skip_locked=holder_id is None,
        limit=limit,
        why=SWITCHED_OFF_NOTE,
        title="停用账号的任务待分派",
    )


def hand_on_from_made_admin(
    session: Session,
    now: datetime,
    *,
    holder_id: int | None = None,
    actor_id: int | None = None,
    limit: int | None = None,
) -> list[tuple[int, int | None]]:
    """Hand on the open tasks of an account made a community admin (no longer in the field;
    only `holder_id`'s, if given), as a switch-off does; the (task id, new assignee id or None)
    of each.

    The role change hands on what its holder held; the tick sweeps up after it, as after a
    switch-off: a task dispatched or reassigned to a worker in the instant they were made an
    admin (read as a worker, written after the change looked) is not left with them. Rows
    others hold locked are left to the next tick unless a holder is named."""
    out_of_the_field = select(User.id).where(User.active, User.role.not_in(FIELD_ROLES))
    if holder_id is not None:
        out_of_the_field = select(User.id).where(User.id == holder_id)
    return _hand_on_held(
        session,
        now,
        out_of_the_field,
        actor_id,
        skip_locked=holder_id is None,
        limit=limit,
        why=MADE_ADMIN_NOTE,
        title="调任账号的任务待分派",
    )


def hand_on_from_grids_let_go(
    session: Session, now: datetime, *, holder_id: int, grid_ids: Sequence[int], actor_id: int
) -> list[tuple[int, int | None]]:
    """Hand on the open tasks `holder_id` holds in the grids they were just moved off
    (`grid_ids`), as a switch-off does; the (task id, new assignee id or None) of each. Left
    with them, nobody of the grid worked them (its lists showed them taken), and the worker,
    no longer reading the grid's households, held a resident's request there."""
    if not grid_ids:
        return []
    handed = _hand_on_held(
        session,
        now,
        select(User.id).where(User.id == holder_id),
        actor_id,
        skip_locked=False,
        limit=None,
        why=MOVED_NOTE,
        title="调离网格的任务待分派",
        grid_ids=grid_ids,
    )
    # Still at work elsewhere, they are told: the task left their lists, and a step kept on
    # their phone for it will be refused.
    for task_id, _ in handed:
        task = session.get(Task, task_id)
        _notify_task(
            session, task, [holder_id], "task_updated", MOVED_OFF_TITLE, urgent=False, now=now
        )
    return handed


def _hand_on_held(
    session: Session,
    now: datetime,
    holders,
    actor_id: int | None,
    *,
    skip_locked: bool,
    limit: int | None,
    why: str,
    title: str,
    grid_ids: Sequence[int] | None = None,
) -> list[tuple[int, int | None]]:
    held = select(Task).where(Task.status.in_(HANDED_ON_STATUSES), Task.assignee_id.in_(holders))
    if grid_ids is not None:
        held = held.where(Task.grid_id.in_(grid_ids))
    held = session.scalars(
        held.order_by(Task.id).limit(limit).with_for_update(skip_locked=skip_locked)
    ).all()
    handed = []
    for task in held:
        grid = session.get(Grid, task.grid_id)
        # The deadline's warning went to the former holder: the next holder is warned anew.
        task.warned_at = None
        # Never back to its holder (moved off the grid, a shift there today still named them).
        holder = task.assignee_id
        assignee = hand_on(session, task, grid, actor_id, now, why=why, title=title, besides=holder)
        handed.append((task.id, assignee.id if assignee is not None else None))
    _let_go_of_returned(
        session,
        now,
        holders,
        actor_id,
        why=why,
        grid_ids=grid_ids,
        skip_locked=skip_locked,
        limit=limit,
    )
    return handed


def _let_go_of_returned(
    session: Session,
    now: datetime,
    holders,
    actor_id: int | None,
    *,
    why: str,
    grid_ids,
    skip_locked: bool,
    limit: int | None,
) -> None:
    """The tasks `holders` returned (in `grid_ids`, if given) wait on the grid's overseers to
    place them already: they stay `returned`, no longer their returner's. Left so, a worker
    moved off the grid still read the task (the assignee's), its complainant in full, on their
    list, until the leader happened to place it. Locked as the tasks handed on are: the tick
    skips rows others hold (and takes `limit` at most), left for its next run."""
    returned = select(Task).where(Task.status == "returned", Task.assignee_id.in_(holders))
    if grid_ids is not None:
        returned = returned.where(Task.grid_id.in_(grid_ids))
    returned = returned.order_by(Task.id).limit(limit).with_for_update(skip_locked=skip_locked)
    for task in session.scalars(returned).all():
        task.assignee_id = None
        _stamp(task, now)
        _event(task, "unassign", "returned", "returned", actor_id, now, note=why)
    session.flush()


def hand_on(
    session: Session,
    task: Task,
    grid: Grid,
    actor_id: int | None,
    now: datetime,
    *,
    why: str,
    title: str,
    besides: int | None = None,
) -> User | None:
    """Give a task its holder can no longer work to whom dispatch picks today, as a new task
    would; with nobody to pick, it waits unassigned (`why` in its history) and whoever may
    assign it is told (`title`). The new assignee (never `besides`), or None.

    The first contact's warning, if one was given, went to the holder who could not work it: it
    is owed to whoever answers for the task now (the deadline's is cleared by the callers that
    hand on what was warned: `_hand_on_held`; the tick's `_warned` gives it at once)."""
    task.contact_warned_at = None
    day = now.astimezone(LOCAL).date()
    assignee, reason = dispatch.choose_assignee(session, grid, day, besides=besides)
    if assignee is not None:
        _assign(session, task, assignee, actor_id, now, note=reason, kind="task_dispatched")
        return assignee
    before, task.assignee_id, task.status = task.status, None, "new"
    _event(task, "unassign", before, "new", None, now, note=why)
    session.flush()
    above = overseers(session, grid, now=now, besides=(actor_id,))
    _notify_task(session, task, above, "task_unassigned", title, now=now)
    return None


# --- deadlines: the periodic tick ------------------------------------------------------------
@dataclass
class TickResult:
    warned: int = 0
    escalated: int = 0
    handed_on: int = 0
    # The first-contact deadline's (响应时限): the tasks warned of it, and those whose overseers
    # were told it passed with no contact.
    contact_warned: int = 0
    contact_overdue: int = 0


# When the task's current round began: its last reopening or change of deadline (the 12345
# hotline's extension or correction: what is left of the time runs from then, as at a
# reopening), else its creation.
_ROUND_STARTED = (
    "COALESCE((SELECT max(e.at) FROM task_events e"
    " WHERE e.task_id = tasks.id AND e.action IN ('reopen', 'deadline')), tasks.created_at)"
)
# The deadline's warning point: the warning fraction of its round.
_DEADLINE_WARNING_DUE = text(f"{_ROUND_STARTED} + (tasks.due_at - {_ROUND_STARTED}) * :f <= :now")
# The first contact's: the warning fraction of the time from the task's opening (a first
# contact is made once, in the first round: a reopened task was resolved, so contacted).
_CONTACT_WARNING_DUE = text(
    "tasks.created_at + (tasks.first_contact_due_at - tasks.created_at) * :f <= :now"
)


DEADLINE_WARNING = "任务即将超期"
WAITING_WARNING = "待分派的任务即将超期"
CONTACT_WARNING = "任务首次联系即将超时"
WAITING_CONTACT_WARNING = "待分派的任务首次联系即将超时"
CONTACT_OVERDUE = "任务首次联系已超时"
OVERDUE_TO_HOLDER = "你承办的任务已超期"


@dataclass(frozen=True)
class _Warning:
    """One of the tick's warnings: the column that gives it once, what else makes it owed, the
    notice's kind and its titles (to the holder; to the overseers of a task waiting to be
    placed)."""

    stamp: str
    owed: tuple
    order: Any
    kind: str
    title: str
    waiting_title: str


def tick(session: Session, now: datetime, *, limit: int = 1000) -> TickResult:
    """Warn whoever answers for a task at the warning fraction of the time (its assignee; the
    overseers of one on leave, `_warned`, or of one waiting to be placed), escalate at the
    deadline; warn them likewise of the first-contact deadline of a task not yet contacted, and
    tell the grid's overseers when it passes with no contact; hand on the tasks switched-off
    accounts, and accounts made community admins, still hold.

    Idempotent: each task is warned once (warned_at), escalated once (escalated_at), warned of
    its first contact once (contact_warned_at) and told of a missed one once
    (contact_overdue_at). Rows are locked with SKIP LOCKED so two workers never act on the
    same task.
    """
    result = TickResult()
    result.handed_on = len(hand_on_from_switched_off(session, now, limit=limit))
    result.handed_on += len(hand_on_from_made_admin(session, now, limit=limit))
    open_ = Task.status.in_(OPEN_STATUSES)
    # The deadline's escalation is owed until one is made at or after the deadline: a worker's
    # own escalation before it (asking for help) does not answer it.
    owed = or_(Task.escalated_at.is_(None), Task.escalated_at < Task.due_at)
    due = session.scalars(
        select(Task)
        .where(open_, owed, Task.due_at <= now)
        .order_by(Task.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for task in due:
        grid = session.get(Grid, task.grid_id)
        before = task.status
        # A returned task is with the leader to place already: it stays returned. Made
        # `escalated`, it went back to its returner (still its assignee), who was offered
        # "resolve" on a task they had said was not theirs, and left the leader's returned.
        after = before if before == "returned" else "escalated"
        task.status = after
        task.escalated_at = now
        _stamp(task, now)
        _event(task, "escalate", before, after, None, now, note=DEADLINE_NOTE)
        session.flush()
        above = overseers(session, grid, now=now, besides=(task.assignee_id,))
        _notify_task(session, task, above, "task_escalated", "任务已超期", urgent=True, now=now)
        # Its holder still works it (and alone resolves it): told the deadline passed, as they
        # were warned before it. Not a returned task's returner (with the leader to place).
        if after == "escalated":
            holder = _holder_at_work(session, task, now)
            _notify_task(session, task, holder, "task_escalated", OVERDUE_TO_HOLDER, now=now)
        result.escalated += 1

    # The first contact (accept, or resolve) not made by its deadline: the response rate is
    # missed. Whoever holds the task, the grid's overseers are told, once a task (a new holder
    # does not make it news again); the task stays where it is. One past its deadline as well
    # is settled without a notice: its escalation, urgent, told them more (the tick did not
    # run in between, or the first contact was due with the deadline).
    missed = session.scalars(
        select(Task)
        .where(
            open_,
            Task.status != TRANSFERRED,  # open_ says so: spelt out for ix_tasks_contact_owed
            Task.first_contact_at.is_(None),
            Task.contact_overdue_at.is_(None),
            Task.first_contact_due_at <= now,
        )
        .order_by(Task.first_contact_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for task in missed:
        task.contact_overdue_at = now  # once, told or not (not looked at every tick)
        if task.due_at <= now:
            continue
        grid = session.get(Grid, task.grid_id)
        above = overseers(session, grid, now=now, besides=(task.assignee_id,))
        if above:
            _notify_task(session, task, above, "task_contact_overdue", CONTACT_OVERDUE, now=now)
            result.contact_overdue += 1

    # Owed while the deadline's escalation is (`owed`): a worker's own escalation before it,
    # asking for help, leaves the work and the deadline with them; one made at or after it
    # (the tick's, overdue) ends the round's warning: only a new round (a reopening, the
    # hotline's change of deadline) owes one again.
    deadline = _Warning(
        "warned_at",
        (owed, _DEADLINE_WARNING_DUE),
        Task.due_at,
        "task_deadline_warning",
        DEADLINE_WARNING,
        WAITING_WARNING,
    )
    # Not contacted, its first contact still ahead (once passed, the overseers' notice above
    # is owed, not a warning), and due before the deadline: one due with it is warned as the
    # deadline, in one notice.
    contact = _Warning(
        "contact_warned_at",
        (
            Task.first_contact_at.is_(None),
            Task.first_contact_due_at > now,
            Task.first_contact_due_at < Task.due_at,
            _CONTACT_WARNING_DUE,
        ),
        Task.first_contact_due_at,
        "task_contact_warning",
        CONTACT_WARNING,
        WAITING_CONTACT_WARNING,
    )
    result.warned = _warn(session, deadline, now, limit)
    result.contact_warned = _warn(session, contact, now, limit)
    session.flush()
    return result


def _warn(session: Session, warning: _Warning, now: datetime, limit: int) -> int:
    """Give `warning` to whoever answers for each task owed it; how many were told."""
    stamp = getattr(Task, warning.stamp)

    def to_warn(*where):  # not warned yet (this round, by this holder), and its point reached
        return session.scalars(
            select(Task)
            .where(*where, stamp.is_(None), *warning.owed)
            .order_by(warning.order)
            .limit(limit)
            .with_for_update(skip_locked=True),
            {"f": DEFAULT_WARN_FRACTION, "now": now},
        ).all()

    told_tasks = 0
    # Waiting on the grid's overseers to place it: dispatch found nobody (`new`, unassigned),
    # or its worker gave it back (`returned`). They were told when it came, then nothing until
    # it was overdue; now they are warned as an assignee is. Once: assigned, its new holder's
    # warning is owed again (the stamp cleared).
    # An escalated task with nobody assigned (the tick escalated it `new`) waits on them too.
    waiting = or_(
        and_(Task.status.in_(("new", "escalated")), Task.assignee_id.is_(None)),
        Task.status == "returned",
    )
    for task in to_warn(waiting):
        setattr(task, warning.stamp, now)
        grid = session.get(Grid, task.grid_id)
        above = overseers(session, grid, now=now, besides=(task.assignee_id,))
        if above:
            _notify_task(session, task, above, warning.kind, warning.waiting_title, now=now)
            told_tasks += 1
    for task in to_warn(Task.status.in_(WARNED_STATUSES), Task.assignee_id.is_not(None)):
        told, title = _warned(session, task, now, warning.title)
        if task.assignee_id is None:
            continue  # handed on to nobody: it waits unassigned, its overseers told
        setattr(task, warning.stamp, now)  # once, even with nobody to warn (not looked at again)
        if told:
            _notify_task(session, task, told, warning.kind, title, now=now)
            told_tasks += 1
    return told_tasks


def _holder_at_work(session: Session, task: Task, now: datetime) -> list[int]:
    """The task's assignee, when they are at work to act on it today: active, a field role,
    not on approved leave (their overseers answer for it then, `_warned`)."""
    holder = session.get(User, task.assignee_id) if task.assignee_id is not None else None
    if holder is None or not holder.active or holder.role not in FIELD_ROLES:
        return []
    if dispatch.on_leave(session, holder.id, now.astimezone(LOCAL).date()):
        return []
    return [holder.id]


def _warned(session: Session, task: Task, now: datetime, title: str) -> tuple[list[int], str]:
    """Who is warned of a held task's deadline (or first contact: `title` says which), and the
    warning's title: whoever answers for the task now.

    Its assignee, while they work it. One switched off (or made an admin) whom the tick's sweep
    has not reached yet (its limit, a row locked then) no longer holds it: the task is handed
    on as the sweep would, and its new holder is warned (nobody, when it waits unassigned: its
    overseers are told of that). One on approved leave today keeps the task (their leader was
    given it to hand on when the leave was approved, `tasks_to_reassign`, and may have chosen
    to wait for them), but is not warned on leave: the grid's overseers are (the leader, else
    the admins, `overseers`), who reassign it or not. Their warning is the task's one
    (`warned_at`, `contact_warned_at`): the assignee back from leave is not warned again."""
    holder = session.get(User, task.assignee_id)
    grid = session.get(Grid, task.grid_id)
    if holder is None or not holder.active or holder.role not in FIELD_ROLES:
        left = holder is None or not holder.active
        why = SWITCHED_OFF_NOTE if left else MADE_ADMIN_NOTE
        gone = "停用账号的任务待分派" if left else "调任账号的任务待分派"
        assignee = hand_on(session, task, grid, None, now, why=why, title=gone)
        return ([assignee.id] if assignee is not None else []), title
    if dispatch.on_leave(session, holder.id, now.astimezone(LOCAL).date()):
        return overseers(session, grid, now=now, besides=(holder.id,)), f"{title}（承办人休假）"
    return [holder.id], title


# --- visits ----------------------------------------------------------------------------------
VISIT_FOLLOW_UP_TITLE = "入户走访跟进"


def task_from_visit(session: Session, visit: Visit, *, now: datetime | None = None) -> Task | None:
    """The follow-up task of a visit (source "visit"); one per visit, however often called.
    None when its grid was retired since and its community has no grid in service to take it
    (`_follow_up_grid`): the visit is stored with the request and its note all the same."""
    existing = session.scalar(select(Task).where(Task.visit_id == visit.id))
    if existing is not None:
        return existing
    note = (visit.follow_up_note or visit.notes or "").strip()
    data: dict[str, Any] = {
        "source": "visit",
        "type": "help",
        # The note may tell a resident's health or circumstances: it goes into the sealed
        # description only; titles are plain text shown in lists and on the map. The worker's
        # one-line title of the follow-up, when given (checked as a task's title), else the
        # generic one (a visit from a client before the titles).
        "title": visit.follow_up_title or VISIT_FOLLOW_UP_TITLE,
        "description": note,
        # Sets the deadline as any task's urgency does (a danger found at the door: hours).
        "urgency": visit.follow_up_urgency or URGENCY_DEFAULT,
        "visit_id": visit.id,
        # The list it goes on: the visit's kind (a visit stored before the lists, or made
        # elsewhere with none: a need, as the batch takes a follow-up sent with no kind).
        "list_kind": visit.follow_up_kind or FOLLOW_UP_DEFAULT,
    }
    if visit.household_id is not None:
        data["household_id"] = visit.household_id
        household = session.get(Household, visit.household_id)
        placed = _follow_up_grid(session, household.grid, household.location)
        point = None  # at the household's door
    else:
        # Premises: where the worker stood, in the grid the visit was placed in (by the
        # premises' own point). The visit's stored point as it is: never located nor checked
        # again (the batch checked it), so it cannot fail the batch.
        point = Point(*point_lonlat(visit.location))
        placed = _follow_up_grid(session, session.get(Grid, visit.grid_id), visit.location)
    if placed is None:
        return None
    moment = now or visit.received_at or visit.visited_at
    with session.begin_nested():
        return create_task(
            session, None, data, actor_id=visit.worker_id, now=moment, grid=placed, point=point
        )


def _follow_up_grid(session: Session, grid: Grid, location) -> Grid | None:
    """The grid a visit's follow-up opens in: its household's (the premises visit's), or, that
    grid retired since the visit was made (demolished, redrawn away while the phone was
    offline), the grid in service that took its place there, else the nearest of its
    community; None if the community has none. Opened in the retired grid, the task failed the
    batch (409) at every sync and the phone's queue behind it with it."""
    if grid.retired_at is None:
        return grid
    lon, lat = point_lonlat(location)
    return locate(session, lon, lat) or session.scalar(
        select(Grid)
        .where(Grid.community_code == grid.community_code, Grid.retired_at.is_(None))
        .order_by(
            func.ST_Distance(cast(Grid.boundary, Geography), cast(db_point(lon, lat), Geography)),
            Grid.code,
        )
        .limit(1)
    )


# --- the three rates -------------------------------------------------------------------------
def rates(
    session: Session,
    scope: Scope,
    *,
    now: datetime,
    grid: str | None = None,
    community: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    week: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The three rates of one grid or community the caller can see, for a period or a week,
    of the tasks of one `source` (the hotline's tickets, say) or of all."""
    from api.services.rates import three_rates

    start, end = period(start, end, week)
    # A community's: the grids of it the caller can see (a leader's rates cover their own).
    ids = [row.id for row in grids_asked(session, scope, grid=grid, community=community)]
    result = three_rates(session, start, end, grid_ids=ids, now=now, source=source)[None]
    answer = {"start": start, "end": end, "grid": grid, "community": community}
    return {**answer, "source": source, **result.as_dict()}
