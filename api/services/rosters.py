"""Rosters in the database: settings, leave, generating a week with the solver, edits, swaps."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, case, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from api import clock, errors
from api.models import (
    Community,
    Grid,
    Leave,
    Roster,
    Shift,
    ShiftChange,
    ShiftSwap,
    User,
    user_grids,
)
from api.scope import Scope
from api.services import users, weeks
from api.services.community_settings import get_community, lock_community
from api.services.notifications import notify
from api.services.roster_slots import assign_slots
from api.services.roster_solver import (
    NoRosterFound,
    RosterInput,
    RosterRules,
    Shortfall,
    Worker,
    solve_week,
)

SHIFT_ROLES = ("worker", "grid_leader")
HISTORY_WEEKS = 3  # fairness: this week plus the three before it
MAX_LEAVE_DAYS = 366  # one request covers a year at most (a long absence is asked again)
DEFAULT_SETTINGS: dict = {
    "working_days": [1, 2, 3, 4, 5],
    "a_min": 3,
    "a_max": 4,
    "min_b_days_per_grid": 3,
    # Labour Law art. 38: every worker rests at least one full day each ISO week. A hall open
    # seven days a week (`working_days` 1–7) otherwise had everyone rostered every day.
    "min_rest_days_per_week": 1,
    "rest_days": {},
    "a_hours": {"start": "08:30", "end": "17:30"},
    # Staggered window hours (a hall open 08:00–20:00): the A-post's time slots, each staffed
    # every working day, each A-post shift holding one (`Shift.slot_start` / `slot_end`). None
    # set: every A-post shift has `a_hours`.
    "a_slots": [],
    "b_hours": {"start": "08:30", "end": "17:30"},
    "time_limit_s": 5.0,
    # Adjusted working days (调休), ISO dates: holidays off, weekend days worked in exchange.
    "holidays": [],
    "extra_working_days": [],
}
DATE_LISTS = ("holidays", "extra_working_days")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# ---------------------------------------------------------------------------------------------
# Communities and their roster settings


def roster_settings(community: Community) -> dict:
    """The community's roster settings, defaults filled in."""
    stored = (community.settings or {}).get("roster") or {}
    settings = {**DEFAULT_SETTINGS, **stored}
    for key in DATE_LISTS:  # stored as ISO strings (JSONB)
        settings[key] = sorted(date.fromisoformat(str(d)) for d in settings[key])
    return settings


def roster_rules(settings: dict) -> RosterRules:
    """The settings as the solver's rules. Their calendar (`works`: working weekdays, less the
    holidays, plus the extra working days) is also task dispatch's when a week has no roster."""
    return RosterRules(
        working_days=tuple(settings["working_days"]),
        a_min=settings["a_min"],
        a_max=settings["a_max"],
        min_b_days_per_grid=settings["min_b_days_per_grid"],
        min_rest_days_per_week=settings["min_rest_days_per_week"],
        time_limit_s=float(settings["time_limit_s"]),
        days_off=frozenset(settings["holidays"]),
        days_on=frozenset(settings["extra_working_days"]),
    )


def local_today(now: datetime | None = None) -> date:
    """Today in Asia/Shanghai at `now` (default: the real time): days before it are past."""
    return (now or clock.now()).astimezone(weeks.LOCAL).date()


def resting(settings: dict, worker_id: int, day: date) -> bool:
    """Whether `day` is one of the worker's rest days (settings' `rest_days`)."""
    return day.isoweekday() in settings["rest_days"].get(str(worker_id), ())


def community_workers(session: Session, code: str) -> list[User]:
    """The community's active workers and grid leaders: the people who hold shifts."""
    return list(
        session.scalars(
            select(User)
            .where(User.community_code == code, User.role.in_(SHIFT_ROLES), User.active)
            .order_by(User.id)
        )
    )


def put_settings(session: Session, scope: Scope, community: Community, data: dict) -> dict:
    """Replace the roster settings (missing fields take their defaults), checked as a whole.
    The community's row is locked first: the other parts of its settings are kept as they
    are now (a cadence changed since the request read it was written back as it had been)."""
    scope.require_roster_settings_admin(community.code)
    community = lock_community(session, community.code)
    new = {**DEFAULT_SETTINGS, **data}
    problems: dict[str, list[str]] = {}
    if new["a_min"] > new["a_max"]:
        problems["a_min"] = [f"a_min ({new['a_min']}) exceeds a_max ({new['a_max']})."]
    if len(set(new["working_days"])) != len(new["working_days"]):
        problems["working_days"] = ["A weekday is listed twice."]
    if new["min_b_days_per_grid"] > len(new["working_days"]):
        problems["min_b_days_per_grid"] = [
            f"{new['min_b_days_per_grid']} B-post days exceed the"
            f" {len(new['working_days'])} working days."
        ]
    for key in ("a_hours", "b_hours"):
        if new[key]["start"] >= new[key]["end"]:
            problems[key] = ["start must be before end."]
    slot_problems = _slot_problems(new["a_slots"], new["a_min"])
    if slot_problems:
        problems["a_slots"] = slot_problems
    new["a_slots"] = sorted(
        ({"start": slot["start"], "end": slot["end"]} for slot in new["a_slots"]),
        key=lambda slot: (slot["start"], slot["end"]),
    )
    known = {u.id for u in community_workers(session, community.code)}
    # Rest days stored for someone since switched off or made an admin come back as they were
    # read (GET, then PUT): kept, not refused, or no setting could be changed as read. Only a
    # new or changed entry must name a worker of the community.
    stored_rest = roster_settings(community)["rest_days"]
    rest = {}
    for worker_id, days in (new["rest_days"] or {}).items():
        worker = users.user_id(str(worker_id))
        kept = worker is not None and stored_rest.get(str(worker)) == sorted(set(days))
        if worker is None or (worker not in known and not kept):
            problems.setdefault("rest_days", []).append(
                f"{worker_id} is not a worker of community {community.code}."
            )
            continue
        rest[str(worker)] = sorted(set(days))
    new["rest_days"] = rest
    both = set(new["holidays"]) & set(new["extra_working_days"])
    if both:
        problems["extra_working_days"] = [
            f"{d} is also a holiday." for d in sorted(both, key=lambda d: d.isoformat())
        ]
    for key in DATE_LISTS:
        new[key] = sorted(set(new[key]))
    if problems:
        raise errors.Unprocessable(
            "The roster settings are inconsistent; see `errors`.", errors={"json": problems}
        )
    before = roster_settings(community)
    stored = {**new, **{key: [d.isoformat() for d in new[key]] for key in DATE_LISTS}}
    community.settings = {**(community.settings or {}), "roster": stored}
    session.flush()
    _tell_of_new_hours(session, community.code, before, new)
    return new


HOURS_CHANGED_TITLE = "值班时间有调整"
POST_HOURS = {"A": ("a_hours", "A岗（窗口）"), "B": ("b_hours", "B岗（入格）")}


def _tell_of_new_hours(session: Session, code: str, before: dict, after: dict) -> None:
    """Tell each worker with a published shift from today on whose hours the new settings move
    (`a_hours` for an A-post without a slot of its own, `b_hours`) of their post's new hours.
    A published week's shifts read the community's hours (`shift_hours`): changed, they moved
    under the workers' feet (calendar feed, app) with no word."""
    changed = [post for post, (key, _) in POST_HOURS.items() if before[key] != after[key]]
    if not changed:
        return
    rows = session.execute(
        select(Shift.worker_id, Shift.post)
        .join(Roster, Roster.id == Shift.roster_id)
        .join(User, User.id == Shift.worker_id)
        .where(
            Roster.community_code == code,
            Roster.status == "published",
            Shift.date >= local_today(),
            Shift.slot_start.is_(None),
            User.active,
        )
        .distinct()
    )
    posts: dict[int, set[str]] = {}
    for worker_id, post in rows:
        posts.setdefault(worker_id, set()).add(post)
    # Those whose shifts moved, told the hours of every post they hold (one notice a worker,
    # collapsed: a second change of the other post's hours replaces it whole).
    for worker_id, theirs in sorted((w, p) for w, p in posts.items() if p & set(changed)):
        hours = "，".join(
            f"{word} {after[key]['start']}–{after[key]['end']}"
            for key, word in (POST_HOURS[p] for p in sorted(theirs))
        )
        notify(
            session,
            [worker_id],
            "roster_changed",
            HOURS_CHANGED_TITLE,
            f"已发布排班的值班时间改为：{hours}。请查看排班。",
            data={"community": code},
            collapse_key=f"roster-hours:{code}",
        )


def _slot_problems(slots: list[dict], a_min: int) -> list[str]:
    """What is wrong with the window's time slots (`a_slots`): each starts before it ends, none
    is listed twice, and `a_min` staffs every one each working day."""
    problems = []
    seen: set[tuple[str, str]] = set()
    for slot in slots:
        key = (slot["start"], slot["end"])
        if key[0] >= key[1]:
            problems.append(f"{key[0]}–{key[1]}: start must be before end.")
        elif key in seen:
            problems.append(f"{key[0]}–{key[1]} is listed twice.")
        seen.add(key)
    if len(slots) > a_min:
        problems.append(
            f"{len(slots)} slots need a_min ({a_min}) of at least {len(slots)}:"
            " every slot is staffed each working day."
        )
    return problems


def window_slots(settings: dict) -> list[tuple[time, time]]:
    """The settings' A-post time slots as (start, end) local times, earliest first."""
    return sorted(
        (time.fromisoformat(slot["start"]), time.fromisoformat(slot["end"]))
        for slot in settings["a_slots"]
    )


# ---------------------------------------------------------------------------------------------
# Leave


def request_leave(
    session: Session, scope: Scope, data: dict, *, now: datetime | None = None
) -> Leave:
    """A worker asks for leave for themself, from today on (Asia/Shanghai, `now`: the clock);
    overlapping open leave is a conflict."""
    if scope.role not in SHIFT_ROLES:
        raise errors.Forbidden("Only workers and grid leaders request leave.")
    start, end = data["start_date"], data["end_date"]
    for field, day in (("start_date", start), ("end_date", end)):
        if not weeks.MIN_YEAR <= day.isocalendar().year <= weeks.MAX_YEAR:
            raise errors.Unprocessable(
                f"{field} {day} is outside the weeks rosters hold "
                f"({weeks.FIRST_WEEK} to {weeks.LAST_WEEK}).",
                errors={"json": {field: ["outside the served weeks"]}},
            )
    if end < start:
        raise errors.Unprocessable(
            "end_date is before start_date.", errors={"json": {"end_date": ["before start_date"]}}
        )
    if (end - start).days + 1 > MAX_LEAVE_DAYS:
        raise errors.Unprocessable(
            f"A leave request covers {MAX_LEAVE_DAYS} days at most; ask again for the rest.",
            errors={"json": {"end_date": [f"more than {MAX_LEAVE_DAYS} days after start_date"]}},
        )
    # Leave is asked ahead. A request starting on a day gone was stored and sent to the
    # leaders to approve: days already worked, or missed, and rostered with the worker in them
    # (a record no edit changes). Days are judged in Asia/Shanghai, as rosters are.
    today = local_today(now)
    if start < today:
        raise errors.Unprocessable(
            f"start_date {start} is before today ({today}): leave is requested from today on.",
            errors={"json": {"start_date": [f"before today ({today})"]}},
        )
    # One worker's requests queue on their user row, so two at once cannot both pass the
    # overlap check (FOR NO KEY UPDATE: rows that merely reference the user still insert).
    session.execute(select(User.id).where(User.id == scope.user_id).with_for_update(key_share=True))
    overlap = session.scalar(
        select(Leave.id).where(
            Leave.worker_id == scope.user_id,
            Leave.status.in_(("requested", "approved")),
            Leave.start_date <= data["end_date"],
            Leave.end_date >= data["start_date"],
        )
    )
    if overlap is not None:
        raise errors.Conflict(f"Leave {overlap} already covers part of this period.")
    leave = Leave(
        worker_id=scope.user_id,
        start_date=data["start_date"],
        end_date=data["end_date"],
        reason=data.get("reason", ""),
        status="requested",
    )
    session.add(leave)
    session.flush()
    # Those who decide it are told (it waited, unseen, until a leader happened to look): by
    # name and days; not the reason, which may be the worker's health (read in the app).
    for user_id in _leave_deciders(session, leave):
        _tell_about_leave(
            session,
            leave,
            user_id,
            "请假申请待审批",
            f"{_worker_name(session, leave)}申请{_leave_days(leave)}的请假，待您审批。",
            kind="leave_requested",
        )
    return leave


def _leave_deciders(session: Session, leave: Leave) -> list[int]:
    """Who is told of a leave request, and of its withdrawal: the leaders of the worker's
    grids (`grids.leader_id`) and the community's admins, active, the worker aside. Any
    leader of the community may decide it (`require_roster_editor`); these answer for the
    worker."""
    worker = session.get(User, leave.worker_id)
    leaders = (
        select(Grid.leader_id)
        .join(user_grids, user_grids.c.grid_id == Grid.id)
        .where(user_grids.c.user_id == worker.id, Grid.leader_id.is_not(None))
    )
    return list(
        session.scalars(
            select(User.id)
            .where(
                User.active,
                User.id != worker.id,
                or_(
                    User.id.in_(leaders),
                    and_(
                        User.role == "community_admin",
                        User.community_code == worker.community_code,
                    ),
                ),
            )
            .order_by(User.id)
        )
    )


def _one_in_scope(session: Session, query, entity, lock: bool, missing: str):
    """The one row of `query` (already filtered to the caller's scope), else 404 `missing`.
    `lock`: `FOR UPDATE` of `entity`'s row, read again (populate_existing) so an edit that
    waited for the lock sees what the one before it stored, not the session's older copy."""
    if lock:
        query = query.with_for_update(of=entity).execution_options(populate_existing=True)
    row = session.scalar(query)
    if row is None:
        raise errors.NotFound(missing)
    return row


def get_leave(session: Session, scope: Scope, leave_id: int, *, lock: bool = False) -> Leave:
    query = select(Leave).where(Leave.id == leave_id, scope.leaves())
    return _one_in_scope(session, query, Leave, lock, f"No leave {leave_id} in your scope.")


def decide_leave(
    session: Session,
    scope: Scope,
    leave_id: int,
    decision: str,
    *,
    note: str = "",
    now: datetime | None = None,
) -> Leave:
    """A leader or admin of the worker's community approves or rejects a requested leave, with
    `note`, their words to the worker (kept on the leave; the notice says there is one).

    The leave's row is locked: of two leaders deciding at once, the second waits and is told
    the first one's decision (409), rather than overwriting it. Approving cancels the open
    swaps that would hand the worker a shift on a day of the leave from today on
    (`now`: the clock): they can no longer be accepted.
    """
    leave = get_leave(session, scope, leave_id, lock=True)
    worker = session.get(User, leave.worker_id)
    scope.require_roster_editor(worker.community_code)
    if leave.worker_id == scope.user_id:
        raise errors.Forbidden("Nobody decides their own leave.")
    if leave.status != "requested":
        raise errors.Conflict(f"Leave {leave.id} is already {leave.status}.")
    leave.status = "approved" if decision == "approve" else "rejected"
    leave.decided_by_id = scope.user_id
    leave.decided_at = clock.now()
    leave.decision_note = note
    session.flush()
    # Not the note itself: a phone's push service carries the notice.
    noted = "（附审批意见，请在应用的请假中查看）" if note.strip() else ""
    _tell_about_leave(
        session,
        leave,
        leave.worker_id,
        f"请假{_DECIDED[leave.status]}",
        f"您{_leave_days(leave)}的请假{_DECIDED[leave.status]}{noted}。",
    )
    if leave.status == "approved":
        _notify_swaps_cancelled(
            session,
            scope,
            _cancel_swaps_onto_leave(session, scope, leave, local_today(now)),
            why=f"{_worker_name(session, leave)}{_leave_days(leave)}的请假已获批准，无法接班",
        )
        # Approving is never refused: the leave is the worker's.
        _tell_of_uncovered_shifts(
            session,
            {scope.user_id},
            shifts_during_leave(session, leave, now=now),
            f"{_worker_name(session, leave)}{_leave_days(leave)}的请假已获批准",
            {"leave_id": leave.id},
        )
    return leave


def tell_of_shifts_left(
    session: Session, actor_id: int | None, worker: User, cause: str, now: datetime
) -> None:
    """`worker` takes no more shifts (switched off, made a community admin: `off_duty`): their
    published shifts from today on are uncovered, told as approved leave's are, to the
    community's leaders and admins but `actor_id` (who reads them in `shifts_ahead`; None, an
    operator at the command line: nobody set aside) and the worker. `cause`: why, in Chinese.
    Shifts on days of their approved leave were told when it was approved: not again."""
    on_leave = (
        select(Leave.id)
        .where(
            Leave.worker_id == worker.id,
            Leave.status == "approved",
            Leave.start_date <= Shift.date,
            Leave.end_date >= Shift.date,
        )
        .exists()
    )
    shifts = session.scalars(
        select(Shift)
        .where(Shift.worker_id == worker.id, Shift.date >= local_today(now), ~on_leave)
        .order_by(Shift.date)
    )
    _tell_of_uncovered_shifts(
        session, {actor_id, worker.id}, list(shifts), cause, {"worker_id": worker.id}
    )


def _tell_of_uncovered_shifts(
    session: Session, aside: set[int | None], shifts: list[Shift], cause: str, data: dict
) -> None:
    """A worker who will not come (approved leave, switched off, no longer a worker) leaves
    their published `shifts` uncovered: they stay in the roster, said in its `shortfalls`
    (`uncovered`) until handed on; the community's leaders and admins but those `aside` (who
    made it so reads them in the answer: `shifts_to_reassign`, `shifts_ahead`) are told, a
    notice per roster. `cause`: why, in Chinese; `data`: the notice's, with the roster's."""
    by_roster: dict[int, list[Shift]] = {}
    for shift in shifts:
        if shift.roster.status == "published":
            by_roster.setdefault(shift.roster_id, []).append(shift)
    for shifts in by_roster.values():
        roster = shifts[0].roster
        days = "、".join(sorted({f"{s.date:%m-%d}{s.post}岗" for s in shifts}))
        _tell_roster_editors(
            session,
            roster,
            aside,
            f"{roster.week} 排班出现空缺",
            f"{cause}，其已发布的{len(shifts)}个班次（{days}）空缺，暂无人接替，请改派。",
            data={"roster_id": roster.id, "week": roster.week, **data},
        )


def _cancel_swaps_onto_leave(
    session: Session, scope: Scope, leave: Leave, today: date
) -> list[ShiftSwap]:
    """Cancel the open swaps that would hand the worker of approved `leave` a shift on one of
    its days from `today` on (accepting them is refused: the worker is away); return them.
    Before, such a swap stayed open until its day passed, nobody told, and the other worker's
    shift could be offered to nobody else. A swap in which the worker gives a leave day away
    stays open: accepting it covers the day.

    An accept takes this leave (for share) before its swap, so it waits for the approval and
    finds its swap cancelled. SKIP LOCKED stays for the rest: a swap held by a reject or the
    expiry tick is being closed anyway, and an accept holding its swap that then waits for
    leave requested after it began would close a circle with this approval."""
    worker = leave.worker_id
    taken = case(
        (ShiftSwap.requester_id == worker, ShiftSwap.with_shift_id), else_=ShiftSwap.shift_id
    )
    ids = list(
        session.scalars(
            select(ShiftSwap.id)
            .join(Shift, Shift.id == taken)
            .where(
                ShiftSwap.status == "requested",
                or_(ShiftSwap.requester_id == worker, ShiftSwap.other_worker_id == worker),
                Shift.date.between(max(leave.start_date, today), leave.end_date),
            )
            .with_for_update(of=ShiftSwap, skip_locked=True)
        )
    )
    if not ids:
        return []
    return list(
        session.scalars(
            update(ShiftSwap)
            .where(ShiftSwap.id.in_(ids), ShiftSwap.status == "requested")
            .values(status="cancelled", decided_by_id=scope.user_id, decided_at=clock.now())
            .returning(ShiftSwap)
            .execution_options(synchronize_session="fetch")
        )
    )


# Notices are read on the workers' phones, in Chinese as the app is.
_DECIDED = {"approved": "已批准", "rejected": "未获批准"}


def _leave_days(leave: Leave) -> str:
    if leave.end_date == leave.start_date:
        return str(leave.start_date)
    return f"{leave.start_date}至{leave.end_date}"


def _tell_about_leave(
    session: Session, leave: Leave, user_id: int, title: str, body: str, kind: str | None = None
) -> None:
    """A leave's notice (`kind`; by default `leave_decided` while it is approved or rejected,
    else `leave_cancelled`), collapsing the leave's earlier one on the phone."""
    notify(
        session,
        [user_id],
        kind or ("leave_cancelled" if leave.status == "cancelled" else "leave_decided"),
        title,
        body,
        data={"leave_id": leave.id, "worker_id": leave.worker_id, "status": leave.status},
        collapse_key=f"leave:{leave.id}",
    )


def cancel_leave(
    session: Session, scope: Scope, leave_id: int, *, now: datetime | None = None
) -> Leave:
    """The worker withdraws their own requested or approved leave, or a leader or admin of
    their community cancels it.

    Locked as a decision is: a cancel and a decision at once are taken one after the other,
    and the second sees the first. Approved leave that has begun is not cancelled: its days
    are a record of the worker's absence (it is ended early instead, `end_leave`). Shifts
    handed on after the approval stay where they are (the leader moves them back with
    PATCH /shifts/{id} if wanted). The decision (`decided_by_id`, `decided_at`) is kept: the
    cancel is recorded apart (`cancelled_by_id`, `cancelled_at`).
    """
    leave = _leave_to_change(session, scope, leave_id)
    if leave.status not in ("requested", "approved"):
        raise errors.Conflict(f"Leave {leave.id} is already {leave.status}.")
    today = local_today(now)
    if leave.status == "approved" and leave.start_date < today:
        raise errors.Conflict(
            f"Leave {leave.id} began on {leave.start_date}, before today ({today}): days"
            " already taken are kept on record, so it is not cancelled."
        )
    approver = leave.decided_by_id if leave.status == "approved" else None
    # A request withdrawn by its worker: those told of it are told it is gone.
    deciders = (
        _leave_deciders(session, leave)
        if leave.status == "requested" and scope.user_id == leave.worker_id
        else []
    )
    leave.status = "cancelled"
    leave.cancelled_by_id = scope.user_id
    leave.cancelled_at = now or clock.now()
    session.flush()
    # Whoever did not cancel it and counts on it: the worker (they would stay home on days the
    # roster now expects them), or the approver of leave the worker withdrew (the days are
    # rostered again).
    told = _counts_on(scope, leave, approver)
    if told == leave.worker_id:
        _tell_about_leave(
            session,
            leave,
            told,
            "请假已取消",
            f"{_leave_days(leave)}的请假已取消，这些天须照常到岗。",
        )
    elif told is not None:  # the approver: whose leave it was, in the notice
        _tell_about_leave(
            session,
            leave,
            told,
            "请假已撤回",
            f"{_worker_name(session, leave)}撤回了{_leave_days(leave)}的请假，这些天照常到岗。",
        )
    for user_id in deciders:
        _tell_about_leave(
            session,
            leave,
            user_id,
            "请假申请已撤回",
            f"{_worker_name(session, leave)}撤回了{_leave_days(leave)}的请假申请，无需审批。",
        )
    return leave


def _worker_name(session: Session, leave: Leave) -> str:
    return session.get(User, leave.worker_id).display_name


def _leave_to_change(session: Session, scope: Scope, leave_id: int) -> Leave:
    """The leave, locked as for a decision, if the caller may cancel or shorten it: the worker
    their own, a leader or admin of the worker's community any of its leave."""
    leave = get_leave(session, scope, leave_id, lock=True)
    if leave.worker_id != scope.user_id:
        scope.require_roster_editor(session.get(User, leave.worker_id).community_code)
    return leave


def _counts_on(scope: Scope, leave: Leave, approver: int | None) -> int | None:
    """Who is to be told of a change to the leave made by `scope`: the worker when someone
    else changed it; the approver when the worker did; nobody when that is the caller."""
    told = leave.worker_id if leave.worker_id != scope.user_id else approver
    return told if told != scope.user_id else None


def end_leave(
    session: Session, scope: Scope, leave_id: int, last_day: date, *, now: datetime | None = None
) -> Leave:
    """End approved leave early: `last_day` becomes its last day (a worker back early).

    Permitted to whoever may cancel it, and locked as a decision is. The new last day lies in
    the leave (from its first day to the day before its current last day) and is not before
    yesterday (Asia/Shanghai): a worker back this morning was away until yesterday, and the
    days before are a record of their absence, as for a cancel. `end_date` moves, so
    everything that reads the leave's days follows it (the rosters generated after, the edit
    and swap checks, task dispatch, `shifts_during_leave`); `approved_end_date` keeps the
    last day as approved. Shifts handed on after the approval stay with their new holders.
    """
    leave = _leave_to_change(session, scope, leave_id)
    if leave.status != "approved":
        hint = " (a request is withdrawn with /cancel)" if leave.status == "requested" else ""
        raise errors.Conflict(
            f"Leave {leave.id} is {leave.status}: only approved leave is ended early{hint}."
        )
    today = local_today(now)
    yesterday = today - timedelta(days=1)
    if leave.end_date <= yesterday:
        raise errors.Conflict(
            f"Leave {leave.id} is over (its last day was {leave.end_date}, today is {today}):"
            " its days are a record of the worker's absence."
        )
    if last_day >= leave.end_date:
        raise errors.Unprocessable(
            f"Leave {leave.id} already ends on {leave.end_date}: an early end is a day before"
            " it (more days are a new request).",
            errors={"json": {"last_day": [f"not before the leave's last day {leave.end_date}"]}},
        )
    if last_day < leave.start_date:
        raise errors.Unprocessable(
            f"Leave {leave.id} begins on {leave.start_date}: to take none of it, cancel the"
            " leave instead.",
            errors={"json": {"last_day": [f"before the leave's first day {leave.start_date}"]}},
        )
    if last_day < yesterday:
        raise errors.Conflict(
            f"{last_day} is before yesterday ({yesterday}; today is {today}): the days the"
            " worker was away are kept on record, so the leave ends yesterday at the earliest."
        )
    if leave.approved_end_date is None:
        leave.approved_end_date = leave.end_date
    leave.end_date = last_day
    leave.shortened_by_id = scope.user_id
    leave.shortened_at = now or clock.now()
    session.flush()
    told = _counts_on(scope, leave, leave.decided_by_id)
    if told is not None:
        # The worker is due back; the approver is told whose leave ends.
        whose, due = (
            ("", "须照常到岗")
            if told == leave.worker_id
            else (_worker_name(session, leave) + "的", "照常到岗")
        )
        _tell_about_leave(
            session,
            leave,
            told,
            "请假提前结束",
            f"{whose}请假改为{last_day}结束（{_leave_days(leave)}），"
            f"{last_day + timedelta(days=1)}起{due}。",
            kind="leave_shortened",
        )
    return leave


def shifts_during_leave(
    session: Session, leave: Leave, *, now: datetime | None = None
) -> list[Shift]:
    """The worker's shifts, in any roster, on the days of an approved leave from today on
    (Asia/Shanghai, `now`: the clock): a roster made before the leave still names them.
    Approving is never refused (the leave is the worker's); these are the shifts the approver
    must hand on (PATCH /shifts/{id}). The days before today are a record of the days gone,
    which no edit changes: a leave decided late does not list them."""
    if leave.status != "approved":
        return []
    first = max(leave.start_date, local_today(now))
    return list(
        session.scalars(
            select(Shift)
            .where(
                Shift.worker_id == leave.worker_id,
                Shift.date.between(first, leave.end_date),
            )
            .options(selectinload(Shift.roster), selectinload(Shift.grid))
            .order_by(Shift.date, Shift.id)
        )
    )


def list_leaves(session: Session, scope: Scope, args: dict) -> list[Leave]:
    query = select(Leave).where(scope.leaves()).options(selectinload(Leave.worker))
    if args.get("worker") is not None:
        query = query.where(Leave.worker_id == args["worker"])
    if args.get("status"):
        query = query.where(Leave.status == args["status"])
    if args.get("week"):
        dates = weeks.week_dates(args["week"])
        query = query.where(Leave.start_date <= dates[-1], Leave.end_date >= dates[0])
    if args.get("ends_from"):
        query = query.where(Leave.end_date >= args["ends_from"])
    return list(session.scalars(query.order_by(Leave.start_date, Leave.id)))


# ---------------------------------------------------------------------------------------------
# Generating a week


def roster_input(
    session: Session, community: Community, week: str, *, today: date | None = None
) -> RosterInput:
    """The solver's input for one week, read from the database.

    `today`: the days before it are not rostered (they have been worked); the A-post days the
    week's roster already holds on them count in the fairness as the weeks before do."""
    settings = roster_settings(community)
    dates = weeks.week_dates(week)
    first_day = today if today is not None and today > dates[0] else None
    people = community_workers(session, community.code)
    grids = list(
        session.scalars(
            select(Grid.code)
            .where(Grid.community_code == community.code, Grid.retired_at.is_(None))
            .order_by(Grid.code)
        )
    )
    held: dict[int, list[str]] = {u.id: [] for u in people}
    for user_id, code in session.execute(
        select(user_grids.c.user_id, Grid.code)
        .join(Grid, Grid.id == user_grids.c.grid_id)
        .where(
            user_grids.c.user_id.in_(held),
            Grid.community_code == community.code,
            Grid.retired_at.is_(None),
        )
    ):
        held[user_id].append(code)

    unavailable: set[tuple[int, date]] = set()
    # The leave that may cover the week, approved or still requested, is locked for share
    # until the draft is stored, as an edit's leave check locks it: a decision on it (FOR
    # UPDATE) made while the week is solved waits for the new draft and lists its shifts to
    # hand on, rather than the old draft's that this deletes.
    for leave in session.scalars(
        select(Leave)
        .where(
            Leave.worker_id.in_(held),
            Leave.status.in_(("requested", "approved")),
            Leave.start_date <= dates[-1],
            Leave.end_date >= dates[0],
        )
        .with_for_update(read=True, of=Leave)
        .execution_options(populate_existing=True)
    ):
        if leave.status != "approved":
            continue
        unavailable.update(
            (leave.worker_id, d) for d in dates if leave.start_date <= d <= leave.end_date
        )
    # Rest days by the one rule task dispatch also follows.
    unavailable.update((w, d) for w in held for d in dates if resting(settings, w, d))

    previous = [weeks.shift_week(week, -k) for k in range(1, HISTORY_WEEKS + 1)]
    counted = Roster.week.in_(previous)
    if first_day is not None:
        # The window days this week's roster keeps before `first_day` weigh as the weeks
        # before do: who held the window on Monday and Tuesday is not sent there first again.
        counted = or_(counted, and_(Roster.week == week, Shift.date < first_day))
    history = Counter(
        dict(
            session.execute(
                select(Shift.worker_id, func.count())
                .join(Roster, Roster.id == Shift.roster_id)
                .where(
                    Roster.community_code == community.code,
                    counted,
                    Shift.post == "A",
                    Shift.worker_id.in_(held),
                )
                .group_by(Shift.worker_id)
            ).all()
        )
    )
    recent = {
        frozenset(group)
        for pairs in session.scalars(
            select(Roster.pairs).where(
                Roster.community_code == community.code, Roster.week.in_(previous)
            )
        )
        for group in pairs
    }
    # The shifts kept before `first_day` were worked: they count against the weekly rest.
    worked_before: dict[int, int] = {}
    if first_day is not None:
        worked_before = dict(
            session.execute(
                select(Shift.worker_id, func.count(func.distinct(Shift.date)))
                .join(Roster, Roster.id == Shift.roster_id)
                .where(
                    Roster.community_code == community.code,
                    Roster.week == week,
                    Shift.date < first_day,
                    Shift.worker_id.in_(held),
                )
                .group_by(Shift.worker_id)
            ).all()
        )
    rules = roster_rules(settings)
    # A week shortened by holidays asks of each grid no more B-post days than it has.
    worked = sum(rules.works(d) for d in dates)
    return RosterInput(
        week=week,
        workers=tuple(Worker(u.id, u.display_name, tuple(held[u.id])) for u in people),
        grids=tuple(grids),
        rules=dataclasses.replace(
            rules, min_b_days_per_grid=min(rules.min_b_days_per_grid, worked)
        ),
        unavailable=frozenset(unavailable),
        history_a_days=dict(history),
        recent_pairs=frozenset(recent),
        first_day=first_day,
        days_worked_before=worked_before,
    )


def generate(
    session: Session, scope: Scope, code: str, week: str, *, now: datetime
) -> tuple[Roster, list[date]]:
    """Solve the week and store it as the community's draft, replacing an earlier draft; and
    the week's days kept as they were.

    The days before today (Asia/Shanghai) have been worked: they are not rostered. A first
    generation midweek starts today; a regeneration replaces the draft's shifts from today on
    and keeps those of the days before untouched. A week already over is a 409.

    A week too short of workers for its window and grid minimums is stored all the same, the
    best possible, with what it leaves unmet (`roster.shortfalls`, `shortfall_rule`,
    `shortfall_details`), and the community's other leaders and admins are told
    (`roster_short`). A community without workers is a 422."""
    community = get_community(session, scope, code)
    scope.require_roster_editor(code)
    weeks.parse_week(week)
    today = local_today(now)
    dates = weeks.week_dates(week)
    if dates[-1] < today:
        raise errors.Conflict(
            f"The week {week} is over (its last day was {dates[-1]}, today is {today}); "
            "past days are not rostered again.",
            week=week,
        )
    kept_days = [d for d in dates if d < today]
    roster = session.scalar(
        select(Roster).where(Roster.community_code == code, Roster.week == week).with_for_update()
    )
    if roster is not None and roster.status == "published":
        raise errors.Conflict(
            f"The roster of {week} is published; edit its shifts instead of regenerating it.",
            roster_id=roster.id,
        )
    inp = roster_input(session, community, week, today=today)
    if not inp.workers:
        raise errors.Unprocessable(f"Community {code} has no workers to roster.")
    try:
        # A week whose window or grid minimums cannot all be met is rostered all the same,
        # the best possible, its shortfalls said (before, a 422 and nothing stored).
        result = solve_week(inp, short_staffed=True)
    except NoRosterFound as exc:
        raise errors.ServiceUnavailable(str(exc), headers={"Retry-After": "5"}) from exc

    if roster is None:
        roster = Roster(community_code=code, week=week, status="draft")
        session.add(roster)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError as exc:
            raise errors.Conflict(f"The roster of {week} is being generated; retry.") from exc
    else:
        # The days before today stay as they were worked.
        session.execute(delete(Shift).where(Shift.roster_id == roster.id, Shift.date >= today))
        session.expire(roster, ["shifts"])
    roster.created_by_id = scope.user_id
    roster.created_at = clock.now()
    roster.pairs = [list(group) for group in result.pairs]
    # The days kept keep their gaps, a record as their shifts are (`roster_shortfalls` reads a
    # past day's only as stored): the solve covers today on.
    kept_gaps = [x for x in roster.shortfalls or [] if x["date"] and x["date"] < today.isoformat()]
    roster.shortfalls = kept_gaps + [shortfall_dict(s) for s in result.shortfalls]
    roster.shortfall_rule = result.binding
    roster.shortfall_details = list(result.details)
    roster.grid_minimum = result.b_days_required
    roster.grid_minimum_from = inp.first_day
    roster.grid_minimum_grids = sorted(inp.grids)
    grid_ids = dict(
        session.execute(select(Grid.code, Grid.id).where(Grid.community_code == code)).all()
    )
    # Staggered hours: the solver chose who holds the window each day; a pass after it gives
    # each of them a slot, every slot staffed, early and late shared (`assign_slots`).
    slots = window_slots(roster_settings(community))
    window: dict[date, list[int]] = {}
    for plan in result.shifts:
        if plan.post == "A":
            window.setdefault(plan.date, []).append(plan.worker_id)
    history = _slot_history(session, code, week, inp.first_day, [w.id for w in inp.workers], slots)
    slot_of = assign_slots(window, len(slots), history)
    session.add_all(
        Shift(
            roster_id=roster.id,
            date=plan.date,
            post=plan.post,
            worker_id=plan.worker_id,
            grid_id=grid_ids[plan.grid_code] if plan.grid_code else None,
            relief_for_id=plan.relief_for,
            **_slot_columns(slots, slot_of.get((plan.worker_id, plan.date))),
        )
        for plan in result.shifts
    )
    session.flush()
    session.refresh(roster)
    if result.shortfalls:
        _tell_roster_editors(
            session,
            roster,
            {scope.user_id},
            f"{week} 排班人手不足",
            f"{_week_span(week)}的排班有{len(result.shortfalls)}处缺口"
            f"（{'；'.join(_shortfall_zh(s) for s in roster.shortfalls)}），"
            "人手不足以满足全部排班规则，请查看排班。",
            data={"roster_id": roster.id, "week": week, "shortfalls": len(result.shortfalls)},
            # A regeneration's notice replaces the last one's on the phone.
            collapse_key=f"roster:{roster.id}:short",
        )
    return roster, kept_days


def _slot_columns(slots: list[tuple[time, time]], index: int | None) -> dict:
    if index is None:
        return {"slot_start": None, "slot_end": None}
    return {"slot_start": slots[index][0], "slot_end": slots[index][1]}


def _slot_history(
    session: Session,
    code: str,
    week: str,
    first_day: date | None,
    worker_ids: list[int],
    slots: list[tuple[time, time]],
) -> dict[int, list[int]]:
    """The slots each worker held at the window over the weeks the fairness looks back on
    (and this week's days kept before `first_day`), per index of today's `slots`; a slot no
    longer in the settings is not counted."""
    if not slots or not worker_ids:
        return {}
    previous = [weeks.shift_week(week, -k) for k in range(1, HISTORY_WEEKS + 1)]
    counted = Roster.week.in_(previous)
    if first_day is not None:
        counted = or_(counted, and_(Roster.week == week, Shift.date < first_day))
    index = {slot: i for i, slot in enumerate(slots)}
    history: dict[int, list[int]] = {}
    for worker_id, start, end, n in session.execute(
        select(Shift.worker_id, Shift.slot_start, Shift.slot_end, func.count())
        .join(Roster, Roster.id == Shift.roster_id)
        .where(
            Roster.community_code == code,
            counted,
            Shift.post == "A",
            Shift.slot_start.is_not(None),
            Shift.worker_id.in_(worker_ids),
        )
        .group_by(Shift.worker_id, Shift.slot_start, Shift.slot_end)
    ):
        if (start, end) in index:
            history.setdefault(worker_id, [0] * len(slots))[index[start, end]] += n
    return history


def shortfall_dict(short: Shortfall) -> dict:
    """A solver's shortfall as stored with the roster (JSONB) and read in its JSON."""
    return {
        "rule": short.rule,
        "date": short.date.isoformat() if short.date else None,
        "post": "A" if short.rule == "window" else "B",
        "grid_code": short.grid_code,
        "required": short.required,
        "rostered": short.rostered,
        "short": short.short,
        "why": short.why,
    }


def _shortfall_zh(short: dict) -> str:
    """A shortfall in a line of the leaders' notice (Chinese, as roster notices are)."""
    if short["rule"] == "grid":
        return f"网格{short['grid_code']}少{short['short']}天B岗走访"
    day = date.fromisoformat(short["date"])
    day_zh = f"{_WEEKDAYS_ZH[day.weekday()]}（{day.isoformat()}）"
    if short["rule"] == "uncovered":
        return f"{day_zh}{short['worker_name']}的{short['post']}岗无人顶岗"
    if short.get("slot"):
        return f"{day_zh}窗口{short['slot']['start']}–{short['slot']['end']}时段无人"
    return f"{day_zh}窗口缺{short['short']}人"


def _shortfall_key(short: dict) -> tuple:
    """What a shortfall is a gap in: a day's window (or its slot), a grid, an uncovered shift."""
    slot = short.get("slot") or {}
    return (
        short["rule"],
        short["date"],
        short["grid_code"],
        (slot.get("start"), slot.get("end")),
        short.get("shift_id"),
    )


_WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def _week_span(week: str) -> str:
    days = weeks.week_dates(week)
    return f"{days[0].isoformat()}至{days[-1].isoformat()}"


def roster_editors(session: Session, community_code: str) -> list[int]:
    """Who answers for a community's roster: its active grid leaders and admins."""
    return list(
        session.scalars(
            select(User.id)
            .where(
                User.active,
                User.community_code == community_code,
                User.role.in_(("grid_leader", "community_admin")),
            )
            .order_by(User.id)
        )
    )


def _tell_roster_editors(
    session: Session,
    roster: Roster,
    aside: set[int | None],
    title: str,
    body: str,
    data: dict,
    collapse_key: str | None = None,
) -> None:
    """A roster's gaps told to the community's leaders and admins (`roster_short`), those
    `aside` left out: the one whose action made them reads them in the answer."""
    told = [u for u in roster_editors(session, roster.community_code) if u not in aside]
    notify(session, told, "roster_short", title, body, data=data, collapse_key=collapse_key)


def roster_shortfalls(session: Session, roster: Roster, today: date) -> list[dict]:
    """What the roster leaves unmet, as it stands, recounted from its shifts on each read.

    The window: each working day from `today` on with fewer than the settings' `a_min` at the
    window (a gap the generation left, its `why` the solver's words; or one an edit opened
    since, or a roster not made by the solver); a day before today only as the generation
    left it (a record). And each window slot (`a_slots`) of a working day from `today` on that
    no A-post holds (`_slots_left_empty`), however many hold the others. A grid's B-post
    days (`_grids_short`): the generation's gaps still unmet, and those an edit opened since
    against the minimum it asked. Then each shift from `today` on whose worker will not take it (on
    approved leave, switched off, no longer a worker: `unstaffed_shifts`), uncovered until
    handed on."""
    shifts = list(roster.shifts)
    settings = settings_for(session, [roster.community_code])[roster.community_code]
    rules = roster_rules(settings)
    slots = window_slots(settings)
    stored = {(x["rule"], x["date"] or x["grid_code"]): x for x in roster.shortfalls or []}
    at_window = Counter(s.date for s in shifts if s.post == "A")
    held = {(s.date, s.slot_start, s.slot_end) for s in shifts if s.post == "A"}
    # An A-post without a slot of its own works the post's hours (a roster made before the
    # slots were set): at the window in every slot of its day.
    whole_day = {s.date for s in shifts if s.post == "A" and s.slot_start is None}
    found = []
    for day in weeks.week_dates(roster.week):
        left = stored.get(("window", day.isoformat()))
        if day < today:
            if left is None:
                continue
            required = left["required"]
        elif rules.works(day):
            required = rules.a_min
        else:
            continue
        got = at_window[day]
        if got < required:
            found.append(
                {
                    "rule": "window",
                    "date": day.isoformat(),
                    "post": "A",
                    "grid_code": None,
                    "required": required,
                    "rostered": got,
                    "short": required - got,
                    "why": left["why"]
                    if left is not None
                    else f"{_DAY_NAMES[day.weekday()]} {day}: {got} at the window,"
                    f" {required} required",
                }
            )
        if day >= today and day not in whole_day:
            found += _slots_left_empty(day, [s for s in slots if (day, *s) not in held])
    found += _grids_short(session, roster, shifts)
    for gap in unstaffed_shifts(session, roster, today, lock=False):
        day = date.fromisoformat(gap["date"])
        post = f"the {gap['post']}-post"
        if gap["grid_code"]:
            post += f" in grid {gap['grid_code']}"
        found.append(
            {
                "rule": "uncovered",
                "date": gap["date"],
                "post": gap["post"],
                "grid_code": gap["grid_code"],
                "required": 1,
                "rostered": 0,
                "short": 1,
                "why": f"{_DAY_NAMES[day.weekday()]} {gap['date']}: {post} of"
                f" {gap['worker_name']} (#{gap['worker_id']}) is uncovered ({gap['why']});"
                " nobody is rostered in their place until it is handed on (PATCH /shifts/{id})",
                "shift_id": gap["shift_id"],
                "worker_id": gap["worker_id"],
                "worker_name": gap["worker_name"],
                "reason": gap["reason"],
            }
        )
    return found


def _slots_left_empty(day: date, empty: list[tuple[time, time]]) -> list[dict]:
    """A working day's window slots (`a_slots`) with nobody in them: the hall is open then
    and nobody is at the window, however many hold the day's other slots (an edit may put
    both of a day's A-posts on the early slot, or send the late one to another day)."""
    found = []
    for start, end in empty:
        hours = f"{start:%H:%M}–{end:%H:%M}"
        found.append(
            {
                "rule": "window",
                "date": day.isoformat(),
                "post": "A",
                "grid_code": None,
                "slot": {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"},
                "required": 1,
                "rostered": 0,
                "short": 1,
                "why": f"{_DAY_NAMES[day.weekday()]} {day}: nobody at the window in its"
                f" {hours} slot",
            }
        )
    return found


def _grids_short(session: Session, roster: Roster, shifts: list[Shift]) -> list[dict]:
    """The grids with fewer B-post days than the generation asked (`roster.grid_minimum`, from
    `grid_minimum_from` on): its gaps still unmet, and those an edit opened since (each grid it
    asked, `grid_minimum_grids`, still in service; a roster from before 0054: each of the
    community's grids in service now). A roster from before 0053 knows only its gaps. A grid
    taken out of service since is left out."""
    since = roster.grid_minimum_from
    days: dict[str, set[date]] = {}
    for s in shifts:
        if s.post == "B" and s.grid is not None and (since is None or s.date >= since):
            days.setdefault(s.grid.code, set()).add(s.date)
    stored = {x["grid_code"]: x for x in roster.shortfalls or [] if x["rule"] == "grid"}
    # A grid taken out of service since (merged into its neighbour, say) is no gap to fill.
    serving = set(
        session.scalars(
            select(Grid.code).where(
                Grid.community_code == roster.community_code, Grid.retired_at.is_(None)
            )
        )
    )
    codes = set(stored) & serving
    if roster.grid_minimum is not None:
        # A grid taken into service since was not asked anything of this week.
        asked = roster.grid_minimum_grids
        codes.update(serving if asked is None else serving & set(asked))
    found = []
    for code in sorted(codes):
        left = stored.get(code)
        required = left["required"] if left is not None else roster.grid_minimum
        got = len(days.get(code, ()))
        if got >= required:
            continue
        if left is not None:
            found.append({**left, "rostered": got, "short": required - got})
            continue
        span = "this week" if since is None else f"from {since}"
        found.append(
            {
                "rule": "grid",
                "date": None,
                "post": "B",
                "grid_code": code,
                "required": required,
                "rostered": got,
                "short": required - got,
                "why": f"Grid {code}: {got} B-post day{'' if got == 1 else 's'} {span},"
                f" {required} required",
            }
        )
    return found


def off_duty(user: User, community_code: str) -> tuple[str, str] | None:
    """Why `user` takes no shift on `community_code`'s roster, as (reason, words): switched
    off ("deactivated"), or no longer a worker or leader of the community ("not_a_worker",
    e.g. made a community admin); None when they may. An edit, a swap and publishing ask."""
    if not user.active:
        return "deactivated", f"worker {user.id} is deactivated"
    if user.role not in SHIFT_ROLES or user.community_code != community_code:
        return "not_a_worker", f"user {user.id} is not a worker of community {community_code}"
    return None


def unstaffed_shifts(
    session: Session, roster: Roster, today: date, *, lock: bool = True
) -> list[dict]:
    """The roster's shifts from `today` on whose worker will not take them: switched off, no
    longer a worker of the community (made a community admin), or on approved leave that
    day. Days before today are a record of who worked them and are not looked at (they are
    not edited either).

    The leave that may cover those days (requested or approved) is locked for share (`lock`;
    a read of the roster's gaps takes none) until the caller commits, as an edit's leave
    check locks it: a decision on it meanwhile waits, then
    lists the published shifts to hand on."""
    shifts = list(
        session.scalars(
            select(Shift)
            .where(Shift.roster_id == roster.id, Shift.date >= today)
            .options(joinedload(Shift.worker), joinedload(Shift.grid))
            .order_by(Shift.date, Shift.post, Shift.worker_id)
        )
    )
    if not shifts:
        return []
    on_leave: set[tuple[int, date]] = set()
    leaves = select(Leave).where(
        Leave.worker_id.in_({s.worker_id for s in shifts}),
        Leave.status.in_(("requested", "approved")),
        Leave.start_date <= shifts[-1].date,
        Leave.end_date >= today,
    )
    if lock:
        leaves = leaves.with_for_update(read=True, of=Leave).execution_options(
            populate_existing=True
        )
    for leave in session.scalars(leaves):
        if leave.status == "approved":
            on_leave.update(
                (leave.worker_id, s.date)
                for s in shifts
                if leave.start_date <= s.date <= leave.end_date
            )
    found = []
    for shift in shifts:
        worker = shift.worker
        refusal = off_duty(worker, roster.community_code)
        if refusal is not None:
            reason, why = refusal
        elif (worker.id, shift.date) in on_leave:
            reason, why = "on_leave", f"worker {worker.id} is on approved leave on {shift.date}"
        else:
            continue
        found.append(
            {
                "shift_id": shift.id,
                "date": shift.date.isoformat(),
                "post": shift.post,
                "grid_code": shift.grid.code if shift.grid is not None else None,
                "worker_id": worker.id,
                "worker_name": worker.display_name,
                "reason": reason,
                "why": why,
            }
        )
    return found


def publish(
    session: Session,
    scope: Scope,
    roster_id: int,
    *,
    now: datetime | None = None,
    accept_shortfalls: bool = False,
) -> Roster:
    """Publish a draft and notify every worker on it, in this transaction.

    The roster's row is locked, so a second publish waits and is a 409 (one notice per worker),
    and a regeneration of the same week waits for the publish, then refuses.

    A draft naming, from today on, a worker who will not come (switched off, made a community
    admin, on approved leave that day: `unstaffed_shifts`) is a 409 listing those shifts,
    nothing written: the workers would be told of a roster that leaves posts empty. The
    leader hands them on (PATCH /shifts/{id}) or regenerates the week, then publishes.

    A short-staffed draft (its `roster_shortfalls`: the window or a grid short) is published
    only with `accept_shortfalls`: otherwise a 409 listing them, nothing written. The office
    publishes it knowingly, the gaps said in the roster for everyone who reads it.
    """
    roster = get_roster(session, scope, roster_id, lock=True)
    scope.require_roster_editor(roster.community_code)
    if roster.status == "published":
        raise errors.Conflict(f"Roster {roster.id} is already published.")
    last_day = weeks.week_dates(roster.week)[-1]
    if last_day < local_today(now):
        # As its generation would be: a roster for days gone told every worker of it, became
        # the record of who worked them, and its relief opened grids to visits after the fact.
        raise errors.Conflict(
            f"The week {roster.week} is over (its last day was {last_day}); its draft is not "
            "published.",
            roster_id=roster.id,
        )
    unstaffed = unstaffed_shifts(session, roster, local_today(now))
    if unstaffed:
        first = unstaffed[0]
        more = len(unstaffed) - 1
        raise errors.Conflict(
            f"Roster {roster.id} names workers who will not take {_plural_shifts(len(unstaffed))}"
            f" (the {first['post']}-post on {first['date']}: {first['why']}"
            f"{f'; and {more} more, see `shifts`' if more else ''}). Hand them on with PATCH"
            " /shifts/{id}, or regenerate the week, then publish.",
            roster_id=roster.id,
            shifts=unstaffed,
        )
    shortfalls = roster_shortfalls(session, roster, local_today(now))
    if shortfalls and not accept_shortfalls:
        more = len(shortfalls) - 1
        raise errors.Conflict(
            f"Roster {roster.id} is short-staffed: {shortfalls[0]['why']}"
            f"{f' (and {more} more, see `shortfalls`)' if more else ''}."
            ' Publish it as it is with {"accept_shortfalls": true}, or edit its shifts first.',
            roster_id=roster.id,
            shortfalls=shortfalls,
        )
    roster.status = "published"
    roster.published_at = clock.now()
    # Swaps are refused on drafts; one left from before was agreed on shifts still being edited.
    # Its workers are told, as for an edit's.
    _notify_swaps_cancelled(
        session,
        scope,
        _cancel_open_swaps(session, scope, select(Shift.id).where(Shift.roster_id == roster.id)),
        why="排班已发布，换班须针对已发布的班次重新申请",
    )
    workers = sorted({s.worker_id for s in roster.shifts})
    # The week's days, not 本周 ("this week"): a roster is published for the week ahead.
    days = weeks.week_dates(roster.week)
    notify(
        session,
        workers,
        "roster_published",
        f"{roster.week} 排班已发布",
        f"{days[0].isoformat()}至{days[-1].isoformat()}的班次已排好，请查看排班。",
        data={"roster_id": roster.id, "week": roster.week},
        collapse_key=f"roster:{roster.id}",
    )
    session.flush()
    return roster


def _plural_shifts(n: int) -> str:
    return "1 shift" if n == 1 else f"{n} shifts"


# ---------------------------------------------------------------------------------------------
# Reading


def get_roster(session: Session, scope: Scope, roster_id: int, *, lock: bool = False) -> Roster:
    query = select(Roster).where(Roster.id == roster_id, scope.rosters())
    return _one_in_scope(session, query, Roster, lock, f"No roster {roster_id} in your scope.")


def get_week(session: Session, scope: Scope, code: str, week: str) -> Roster:
    get_community(session, scope, code)
    weeks.parse_week(week)
    roster = session.scalar(
        select(Roster).where(Roster.community_code == code, Roster.week == week, scope.rosters())
    )
    if roster is None:
        raise errors.NotFound(f"No roster of {week} for community {code} in your scope.")
    return roster


def get_shift(session: Session, scope: Scope, shift_id: int, *, lock: bool = False) -> Shift:
    query = (
        select(Shift)
        .join(Roster, Roster.id == Shift.roster_id)
        .where(Shift.id == shift_id, scope.rosters())
    )
    return _one_in_scope(session, query, Shift, lock, f"No shift {shift_id} in your scope.")


def list_shifts(
    session: Session, scope: Scope, args: dict, page: int, page_size: int
) -> tuple[list[Shift], int]:
    """Shifts on a date or in a week, of one worker or all, that the caller may read."""
    query = select(Shift).join(Roster, Roster.id == Shift.roster_id).where(scope.rosters())
    if args.get("date"):
        query = query.where(Shift.date == args["date"])
    if args.get("week"):
        dates = weeks.week_dates(args["week"])
        query = query.where(Shift.date.between(dates[0], dates[-1]))
    if args.get("worker") is not None:
        query = query.where(Shift.worker_id == args["worker"])
    if args.get("community"):
        query = query.where(Roster.community_code == args["community"])
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.options(joinedload(Shift.grid), joinedload(Shift.roster), joinedload(Shift.worker))
        .order_by(Shift.date, Shift.post, Shift.worker_id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return list(rows), total


def settings_for(session: Session, community_codes: Iterable[str]) -> dict[str, dict]:
    codes = set(community_codes)
    rows = session.scalars(select(Community).where(Community.code.in_(codes))) if codes else []
    return {c.code: roster_settings(c) for c in rows}


def shift_hours(settings: dict, shift: Shift) -> tuple[datetime, datetime]:
    """The shift's start and end, aware in Asia/Shanghai: an A-post's own slot (staggered
    hours), else the community's hours of its post (`a_hours`, `b_hours`)."""
    if shift.post == "A" and shift.slot_start is not None:
        start, end = shift.slot_start, shift.slot_end
    else:
        hours = settings["a_hours"] if shift.post == "A" else settings["b_hours"]
        start, end = (time.fromisoformat(hours[k]) for k in ("start", "end"))
    return (
        datetime.combine(shift.date, start, weeks.LOCAL),
        datetime.combine(shift.date, end, weeks.LOCAL),
    )


def slot_dict(shift: Shift) -> dict | None:
    """An A-post shift's time slot as local "HH:MM" {start, end}; None without one."""
    if shift.slot_start is None:
        return None
    return {
        "start": shift.slot_start.isoformat(timespec="minutes"),
        "end": shift.slot_end.isoformat(timespec="minutes"),
    }


def shift_dict(shift: Shift, settings: dict) -> dict:
    starts, ends = shift_hours(settings, shift)
    return {
        "id": shift.id,
        "roster_id": shift.roster_id,
        "week": shift.roster.week,
        "status": shift.roster.status,
        "date": shift.date,
        "post": shift.post,
        "worker_id": shift.worker_id,
        "worker_name": shift.worker.display_name,
        "grid_id": shift.grid_id,
        "grid_code": shift.grid.code if shift.grid is not None else None,
        "relief_for_id": shift.relief_for_id,
        "slot": slot_dict(shift),
        "starts_at": starts,
        "ends_at": ends,
    }


def week_view(session: Session, roster: Roster, *, now: datetime | None = None) -> dict:
    """A roster grouped by day (A then B), with its pairs and A-post days per worker, and
    what it leaves unmet (`roster_shortfalls` from today on, `now`: the clock)."""
    settings = settings_for(session, [roster.community_code])[roster.community_code]
    names = dict(
        session.execute(
            select(User.id, User.display_name).where(User.community_code == roster.community_code)
        ).all()
    )
    by_day: dict[date, dict[str, list]] = {
        d: {"A": [], "B": []} for d in weeks.week_dates(roster.week)
    }
    a_days: Counter = Counter()
    for shift in sorted(roster.shifts, key=lambda s: (s.date, s.post, s.worker_id)):
        by_day[shift.date][shift.post].append(shift_dict(shift, settings))
        if shift.post == "A":
            a_days[shift.worker_id] += 1
    shortfalls = roster_shortfalls(session, roster, local_today(now))
    return {
        "id": roster.id,
        "community_code": roster.community_code,
        "week": roster.week,
        "status": roster.status,
        "created_at": roster.created_at,
        "published_at": roster.published_at,
        "pairs": [[{"id": w, "name": names.get(w, "")} for w in group] for group in roster.pairs],
        "a_days": {str(w): n for w, n in sorted(a_days.items())},
        "complete": not shortfalls,
        "shortfalls": shortfalls,
        "shortfall_rule": roster.shortfall_rule,
        "shortfall_details": roster.shortfall_details,
        "days": [
            {"date": d, "weekday": _DAY_NAMES[d.weekday()], "A": posts["A"], "B": posts["B"]}
            for d, posts in by_day.items()
        ],
    }


def list_changes(session: Session, scope: Scope, roster_id: int) -> list[dict]:
    """The roster's change log, oldest first, each change with the names of who made it and
    of the workers before and after (a leader may not look up the admin, nor the workers of
    other grids), and the leave a shift was handed on for (`for_leave_id`)."""
    roster = get_roster(session, scope, roster_id)
    rows = list(
        session.scalars(
            select(ShiftChange)
            .where(ShiftChange.roster_id == roster.id)
            .order_by(ShiftChange.changed_at, ShiftChange.id)
        )
    )
    people = {c.changed_by_id for c in rows} | {
        side.get("worker_id") for c in rows for side in (c.before, c.after)
    }
    people.discard(None)
    names = dict(
        session.execute(select(User.id, User.display_name).where(User.id.in_(people))).all()
    )
    leaves = _leaves_of(session, rows)
    return [
        {
            "id": c.id,
            "roster_id": c.roster_id,
            "shift_id": c.shift_id,
            "action": c.action,
            "changed_by_id": c.changed_by_id,
            "changed_by_name": names.get(c.changed_by_id),
            "changed_at": c.changed_at,
            "before": {**c.before, "worker_name": names.get(c.before.get("worker_id"))},
            "after": {**c.after, "worker_name": names.get(c.after.get("worker_id"))},
            "for_leave_id": _leave_handed_on_for(c, leaves),
        }
        for c in rows
    ]


def _handed_on(change: ShiftChange) -> bool:
    """An edit that gave the shift to another worker (not a swap, not a move of post)."""
    before, after = change.before, change.after
    return change.action == "edit" and before.get("worker_id") != after.get("worker_id")


def _leaves_of(session: Session, rows: list[ShiftChange]) -> list[Leave]:
    """In one statement, the decided leave (approved, or cancelled since) of the workers the
    log's hand-overs took shifts from, covering the days of those shifts."""
    handed = [c for c in rows if _handed_on(c)]
    if not handed:
        return []
    days = [date.fromisoformat(c.before["date"]) for c in handed]
    return list(
        session.scalars(
            select(Leave)
            .where(
                Leave.worker_id.in_({c.before["worker_id"] for c in handed}),
                Leave.start_date <= max(days),
                func.coalesce(Leave.approved_end_date, Leave.end_date) >= min(days),
                Leave.status.in_(("approved", "cancelled")),
                Leave.decided_at.is_not(None),
            )
            .order_by(Leave.decided_at.desc(), Leave.id.desc())
        )
    )


def _leave_handed_on_for(change: ShiftChange, leaves: list[Leave]) -> int | None:
    """The approved leave of the worker a shift was taken from, covering the shift's day when
    the change was made: the shift was handed on because they were away. Leave approved then
    counts though it was cancelled or ended early since (the hand-over stays as it was).
    `leaves`: the candidates (`_leaves_of`), the latest decided first."""
    if not _handed_on(change):
        return None
    day = date.fromisoformat(change.before["date"])
    at = change.changed_at
    for leave in leaves:
        if (
            leave.worker_id == change.before["worker_id"]
            and leave.start_date <= day <= (leave.approved_end_date or leave.end_date)
            and leave.decided_at <= at
            and (leave.cancelled_at is None or leave.cancelled_at > at)
        ):
            return leave.id
    return None


# ---------------------------------------------------------------------------------------------
# Editing shifts


def _snapshot(session: Session, shift: Shift) -> dict:
    grid = session.get(Grid, shift.grid_id) if shift.grid_id else None
    return {
        "date": shift.date.isoformat(),
        "post": shift.post,
        "worker_id": shift.worker_id,
        "grid_code": grid.code if grid else None,
        "relief_for_id": shift.relief_for_id,
        "slot": slot_dict(shift),
    }


def _relief_for(session: Session, shift: Shift) -> int | None:
    """The holder whose grid this B-post relieves; None at the window or in one's own grid."""
    if shift.post != "B":
        return None
    holders = set(
        session.scalars(select(user_grids.c.user_id).where(user_grids.c.grid_id == shift.grid_id))
    )
    if not holders or shift.worker_id in holders:
        return None
    return min(holders)


def _on_leave(session: Session, worker_id: int, day: date) -> bool:
    """Whether the worker is on approved leave that day. The leave that may cover it, approved
    or still requested, is locked for share until the caller commits: a decision on it (which
    locks it for update) waits for an edit or swap that found the worker free, then lists the
    shift to hand on; an edit after a decision waits for it and sees the leave approved."""
    statuses = session.scalars(
        select(Leave.status)
        .where(
            Leave.worker_id == worker_id,
            Leave.status.in_(("requested", "approved")),
            Leave.start_date <= day,
            Leave.end_date >= day,
        )
        .with_for_update(read=True)
    )
    return "approved" in statuses.all()


def _hold_worker(session: Session, worker_id: int) -> User | None:
    """The user about to be handed a shift, read as stored and locked for share until the
    caller commits. A switch-off or a role change (which lock the account for update) made
    meanwhile waits for the edit or swap, then lists the shift in `shifts_ahead`; one made
    before is seen here (refused). Before, a switch-off racing an accepted swap listed the
    days held before it, and the account kept a shift nobody was told to hand on."""
    return session.scalar(
        select(User)
        .where(User.id == worker_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )


def _busy(session: Session, worker_id: int, day: date, exclude: Iterable[int]) -> Shift | None:
    return session.scalar(
        select(Shift).where(
            Shift.worker_id == worker_id, Shift.date == day, Shift.id.not_in(list(exclude))
        )
    )


# Advisory lock class of a worker's week (1-8 are the sign-in, data-key, map, photo, address,
# username and visit-photo locks): a change that may add a working day to a worker's week
# holds it from before the weekly-rest check until it commits. Two changes at once handing one
# worker a day each of the same week were each checked alone (six days each), and together
# rostered the worker all seven; now the second waits, then counts the first's shift. Taken
# after the shifts and swap a change locks, before the accounts it locks for share (only edits
# and accepts take it: no decision, cancel or switch-off holding a row waits for it); several
# at once (a swap's two workers) in ascending order of the lock, each once.
_WEEK_LOCK = 9
_LOCK_WEEKS = text(
    """
    WITH locks AS MATERIALIZED (
        SELECT DISTINCT hashtext(k) AS n FROM unnest(CAST(:keys AS text[])) k ORDER BY n)
    SELECT count(pg_advisory_xact_lock(:lock, n)) FROM locks
    """
)


def _lock_weeks(session: Session, taken: Iterable[tuple[int, str]]) -> None:
    """Hold, until the transaction ends, the week lock of each (worker id, ISO week)."""
    keys = sorted({f"{worker_id}:{week}" for worker_id, week in taken})
    session.execute(_LOCK_WEEKS, {"lock": _WEEK_LOCK, "keys": keys})


def _short_of_rest(
    session: Session, worker_id: int, target: Shift, given: list[int], day: date | None = None
) -> str | None:
    """Why handing `worker_id` the shift `target` (on `day`, default its date) leaves them
    short of the weekly rest (`min_rest_days_per_week`, Labour Law art. 38), or None. The
    solver keeps the rest, but an edit onto a worker's free day, or a swap of a day of one week
    for a day of the next, rostered them all seven days. `given`: the shifts the change takes
    from them. Only a change that adds a working day to their week is refused: one that keeps
    the count (a swap within the week) leaves the week as the office rostered it."""
    day = day or target.date
    community = session.get(Community, target.roster.community_code)
    rest = roster_settings(community)["min_rest_days_per_week"]
    held = set(
        session.execute(
            select(Shift.id, Shift.date).where(
                Shift.roster_id == target.roster_id, Shift.worker_id == worker_id
            )
        ).all()
    )
    before = {d for _, d in held}
    after = {d for shift_id, d in held if shift_id not in given} | {day}
    if len(after) <= max(7 - rest, len(before)):
        return None
    monday = day - timedelta(days=day.weekday())
    return (
        f"worker {worker_id} would work {len(after)} days in the week of {monday}: each worker"
        f" rests at least {rest} day{'s' if rest != 1 else ''} a week (min_rest_days_per_week)"
    )


def _require_not_past(shift: Shift, today: date, day: date | None = None) -> None:
    """A past day's shift is a record of who worked it: it is neither edited, nor moved onto
    a past day, nor swapped. Today's shifts still change (a worker falls ill at 8:00)."""
    for when in (shift.date, day or shift.date):
        if when < today:
            raise errors.Conflict(
                f"Shift {shift.id} {'is on' if when == shift.date else 'would move to'}"
                f" {when}, in the past (today is {today}); past shifts are not changed.",
                shift_id=shift.id,
            )


def _track_and_notify(
    session: Session, scope: Scope, roster: Roster, changes: list[tuple[Shift, dict]], action: str
) -> None:
    """After publishing, log each change and tell every worker it touches."""
    if roster.status != "published":
        return
    affected: set[int] = set()
    for shift, before in changes:
        after = _snapshot(session, shift)
        session.add(
            ShiftChange(
                roster_id=roster.id,
                shift_id=shift.id,
                action=action,
                changed_by_id=scope.user_id,
                # When it was made, not when its transaction began (the column's default, now()):
                # an edit that began first but waited for the shift while another went through
                # was logged before it, and the log no longer ended on the shift as it stands.
                changed_at=func.clock_timestamp(),
                before=before,
                after=after,
            )
        )
        affected.update((before["worker_id"], after["worker_id"]))
    notify(
        session,
        sorted(affected),
        "roster_changed",
        f"{roster.week} 排班有变动",
        "您的班次有变动，请查看排班。",
        data={"roster_id": roster.id, "week": roster.week},
        collapse_key=f"roster:{roster.id}",
    )
    session.flush()


def _cancel_open_swaps(session: Session, scope: Scope, shift_ids) -> list[ShiftSwap]:
    """Cancel the open swaps on these shifts (ids, or a select of them); return them."""
    return list(
        session.scalars(
            update(ShiftSwap)
            .where(
                ShiftSwap.status == "requested",
                or_(ShiftSwap.shift_id.in_(shift_ids), ShiftSwap.with_shift_id.in_(shift_ids)),
            )
            .values(status="cancelled", decided_by_id=scope.user_id, decided_at=clock.now())
            .returning(ShiftSwap)
            .execution_options(synchronize_session="fetch")
        )
    )


def _notify_swaps_cancelled(
    session: Session, scope: Scope, swaps: list[ShiftSwap], *, why: str | None = None
) -> None:
    """Tell the two workers of each swap an edit (or a publish) cancelled (not the editor, who
    knows): the notice replaces the request's on their phones (same collapse key)."""
    for swap in swaps:
        days = _swap_days(session, swap)
        _tell_about_swap(
            session,
            swap,
            [w for w in (swap.requester_id, swap.other_worker_id) if w != scope.user_id],
            "shift_swap_cancelled",
            "换班已取消",
            f"{days}的换班已取消：{why}。"
            if why
            else f"换班所涉班次（{days}）有变动，换班已取消，请查看排班。",
        )


def _swap_days(session: Session, swap: ShiftSwap) -> str:
    """The days of a swap's two shifts, in order, for a notice ("2026-11-24与2026-11-26")."""
    days = session.scalars(
        select(Shift.date).where(Shift.id.in_((swap.shift_id, swap.with_shift_id)))
    )
    return "与".join(map(str, sorted(days)))


def _tell_about_swap(
    session: Session,
    swap: ShiftSwap,
    user_ids: list[int],
    kind: str,
    title: str,
    body: str,
    *,
    now: datetime | None = None,
) -> None:
    """A swap's notice: each replaces the swap's earlier one on the phone (one collapse key)."""
    notify(
        session,
        user_ids,
        kind,
        title,
        body,
        data={"swap_id": swap.id, "shift_id": swap.shift_id, "with_shift_id": swap.with_shift_id},
        collapse_key=f"swap:{swap.id}",
        now=now,
    )


def update_shift(
    session: Session, scope: Scope, shift_id: int, changes: dict, *, now: datetime | None = None
) -> Shift:
    """Move a shift to another post, grid, worker, day of its week or window slot
    (`_edited_slot`), with every rule checked; a past day's shift is not changed, nor a shift
    moved onto a past day (`now`: the clock).

    The roster is locked for share first (as generate and publish lock it, before its shifts):
    an edit waits for a publish in flight, then is logged and notified as a published roster's.
    Edits of one roster do not wait for each other, only for the same shift.
    """
    roster_id = get_shift(session, scope, shift_id).roster_id
    roster = session.scalar(
        select(Roster)
        .where(Roster.id == roster_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    scope.require_roster_editor(roster.community_code)
    shift = get_shift(session, scope, shift_id, lock=True)
    before = _snapshot(session, shift)
    post = changes.get("post", shift.post)
    day = changes.get("date", shift.date)
    worker_id = changes.get("worker_id", shift.worker_id)
    today = local_today(now)
    _require_not_past(shift, today, day)
    if day not in weeks.week_dates(roster.week):
        raise errors.Unprocessable(
            f"{day} is outside the roster's week {roster.week}.",
            errors={"json": {"date": [f"not in {roster.week}"]}},
        )
    _lock_weeks(session, [(worker_id, roster.week)])
    worker = _hold_worker(session, worker_id)
    if worker is None or off_duty(worker, roster.community_code) is not None:
        raise errors.Unprocessable(
            f"User {worker_id} is not a worker of community {roster.community_code}.",
            errors={"json": {"worker_id": ["not a worker of this community"]}},
        )
    grid_id = None
    if post == "B":
        code = changes.get("grid_code")
        if code is None and shift.grid_id is not None:
            grid_id = shift.grid_id
        else:
            grid = session.scalar(
                select(Grid).where(
                    Grid.code == (code or ""),
                    Grid.community_code == roster.community_code,
                    Grid.retired_at.is_(None),
                )
            )
            if grid is None:
                raise errors.Unprocessable(
                    f"A B-post needs a grid of community {roster.community_code} (got {code}).",
                    errors={"json": {"grid_code": ["not a grid of this community"]}},
                )
            grid_id = grid.id
    elif changes.get("grid_code"):
        raise errors.Unprocessable(
            "An A-post (the hall window) has no grid.",
            errors={"json": {"grid_code": ["must be empty for post A"]}},
        )
    slot = _edited_slot(session, roster, shift, post, day, changes)
    other = _busy(session, worker_id, day, [shift.id])
    if other is not None:
        raise errors.Conflict(
            f"{worker.display_name} already holds the {other.post}-post on {day}"
            f" (shift {other.id}); nobody holds two posts at once.",
            conflicting_shift_id=other.id,
        )
    if _on_leave(session, worker_id, day):
        raise errors.Conflict(f"{worker.display_name} is on approved leave on {day}.")
    short = _short_of_rest(session, worker_id, shift, [shift.id], day)
    if short is not None:
        raise errors.Conflict(f"{short[0].upper()}{short[1:]}.", shift_id=shift.id)
    published = roster.status == "published"
    if published:
        gaps = {_shortfall_key(g): g["short"] for g in roster_shortfalls(session, roster, today)}
    shift.post, shift.date, shift.worker_id, shift.grid_id = post, day, worker_id, grid_id
    shift.slot_start, shift.slot_end = slot
    shift.relief_for_id = _relief_for(session, shift)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise errors.Conflict(f"{worker.display_name} already holds a post on {day}.") from exc
    if _snapshot(session, shift) != before:
        # The workers agreed to the shift as it was, and a stale swap would block the shift's
        # new holder from offering it.
        _notify_swaps_cancelled(session, scope, _cancel_open_swaps(session, scope, [shift.id]))
        # An edit that changes nothing (a form saved as it was) is no change to log or tell.
        _track_and_notify(session, scope, roster, [(shift, before)], "edit")
        if published:
            _tell_of_gaps_opened(session, scope, roster, shift, gaps, today)
    session.refresh(shift)
    return shift


def _tell_of_gaps_opened(
    session: Session, scope: Scope, roster: Roster, shift: Shift, gaps: dict, today: date
) -> None:
    """An edit of a published roster that opens a gap (or widens one), its `shortfalls` before
    the edit being `gaps` (`_shortfall_key`: short): the community's other leaders and admins
    are told, as of approved leave's (`roster_short`); the editor reads it in the week. Edits
    are not refused for it: the office may need the worker elsewhere."""
    session.expire(roster, ["shifts"])
    opened = [
        g
        for g in roster_shortfalls(session, roster, today)
        if g["short"] > gaps.get(_shortfall_key(g), 0)
    ]
    if not opened:
        return
    _tell_roster_editors(
        session,
        roster,
        {scope.user_id},
        f"{roster.week} 排班出现空缺",
        f"{_week_span(roster.week)}已发布的排班经调整后有{len(opened)}处新缺口"
        f"（{'；'.join(_shortfall_zh(g) for g in opened)}），请查看排班。",
        data={"roster_id": roster.id, "week": roster.week, "shift_id": shift.id},
    )


def _edited_slot(
    session: Session, roster: Roster, shift: Shift, post: str, day: date, changes: dict
) -> tuple[time | None, time | None]:
    """The time slot of a shift as edited: the one named (`slot`, one of the community's
    `a_slots`); else an A-post that stays on its day keeps its own; else, the community
    setting slots, the day's least-staffed slot (the earliest of those equally staffed).
    A B-post has none."""
    wanted = changes.get("slot")
    if post != "A":
        if wanted is not None:
            raise errors.Unprocessable(
                "A B-post (door to door) has no window slot.",
                errors={"json": {"slot": ["must be empty for post B"]}},
            )
        return None, None
    community = session.get(Community, roster.community_code)
    slots = window_slots(roster_settings(community))
    if wanted is not None:
        key = (time.fromisoformat(wanted["start"]), time.fromisoformat(wanted["end"]))
        if key not in slots:
            named = ", ".join(f"{a:%H:%M}–{b:%H:%M}" for a, b in slots) or "none"
            raise errors.Unprocessable(
                f"{wanted['start']}–{wanted['end']} is not a window slot of community"
                f" {roster.community_code} (its slots: {named}).",
                errors={"json": {"slot": ["not one of the community's a_slots"]}},
            )
        return key
    if shift.post == "A" and shift.date == day and shift.slot_start is not None:
        return shift.slot_start, shift.slot_end
    if not slots:
        return None, None
    staffed = Counter(
        (start, end)
        for start, end in session.execute(
            select(Shift.slot_start, Shift.slot_end).where(
                Shift.roster_id == roster.id,
                Shift.date == day,
                Shift.post == "A",
                Shift.id != shift.id,
            )
        )
    )
    return min(slots, key=lambda slot: (staffed[slot], slot))


# ---------------------------------------------------------------------------------------------
# Swaps


def _swap_conflict(session: Session, a: Shift, b: Shift) -> str | None:
    """Why exchanging the workers of `a` and `b` would break a rule, or None."""
    community = a.roster.community_code
    for mover, target in ((a.worker_id, b), (b.worker_id, a)):
        if mover == target.worker_id:
            continue
        # An account switched off, or made a community admin (it keeps its rostered shifts
        # until the office hands them on), takes no other: a post nobody staffs (as an edit).
        refusal = off_duty(_hold_worker(session, mover), community)
        if refusal is not None:
            return refusal[1]
        clash = _busy(session, mover, target.date, [a.id, b.id])
        if clash is not None:
            return (
                f"worker {mover} already holds the {clash.post}-post on {target.date}"
                f" (shift {clash.id}); nobody holds two posts at once"
            )
        if _on_leave(session, mover, target.date):
            return f"worker {mover} is on approved leave on {target.date}"
        short = _short_of_rest(session, mover, target, [a.id, b.id])
        if short is not None:
            return short
    return None


def _require_published(shift: Shift) -> None:
    """Swaps are between the workers of a published roster: a draft is still the leader's to
    edit directly (PATCH), and regenerating it would delete the swapped shifts. Published is
    final (nothing unpublishes), so the check needs no lock."""
    roster = shift.roster
    if roster.status != "published":
        raise errors.Conflict(
            f"Shift {shift.id} belongs to the {roster.status} roster of {roster.week}; only"
            " shifts of a published roster are swapped (a draft is edited directly).",
            roster_id=roster.id,
        )


def request_swap(
    session: Session,
    scope: Scope,
    shift_id: int,
    with_shift_id: int,
    *,
    now: datetime | None = None,
) -> ShiftSwap:
    """Ask to exchange two shifts' workers; the other worker (or a leader) decides. Neither
    shift may be of a past day (`now`: the clock)."""
    shift = get_shift(session, scope, shift_id)
    other = get_shift(session, scope, with_shift_id)
    community = shift.roster.community_code
    if other.roster.community_code != community:
        raise errors.Unprocessable("Both shifts must belong to the same community's roster.")
    for one in (shift, other):
        _require_published(one)
    # Lock both shifts, in id order so crossed requests cannot deadlock, then read them again:
    # of two requests on a shift, the second sees the first's open swap.
    session.execute(
        select(Shift.id)
        .where(Shift.id.in_((shift.id, other.id)))
        .order_by(Shift.id)
        .with_for_update()
    )
    session.refresh(shift)
    session.refresh(other)
    if shift.worker_id != scope.user_id and not scope.edits_roster(community):
        raise errors.Forbidden("You may only offer your own shifts for a swap.")
    today = local_today(now)
    for one in (shift, other):
        _require_not_past(one, today)
    if shift.worker_id == other.worker_id:
        raise errors.Unprocessable("Both shifts belong to the same worker.")
    reason = _swap_conflict(session, shift, other)
    if reason:
        raise errors.Conflict(f"The swap conflicts: {reason}.")
    pending = session.scalar(
        select(ShiftSwap.id).where(
            ShiftSwap.status == "requested",
            or_(
                ShiftSwap.shift_id.in_((shift.id, other.id)),
                ShiftSwap.with_shift_id.in_((shift.id, other.id)),
            ),
        )
    )
    if pending is not None:
        raise errors.Conflict(f"Swap {pending} on one of these shifts is still open.")
    swap = ShiftSwap(
        shift_id=shift.id,
        with_shift_id=other.id,
        requester_id=shift.worker_id,
        other_worker_id=other.worker_id,
        requested_by_id=scope.user_id,
        status="requested",
    )
    session.add(swap)
    session.flush()
    # The other worker is asked; the requester, when a leader asked on their behalf, is told
    # what was asked for them (their own day named as theirs: they do not decide it).
    if other.worker_id != scope.user_id:
        _tell_about_swap(
            session,
            swap,
            [other.worker_id],
            "shift_swap_requested",
            "换班申请",
            f"是否同意以您{other.date}的班次与{shift.date}的班次对换？",
        )
    if shift.worker_id != scope.user_id:
        _tell_about_swap(
            session,
            swap,
            [shift.worker_id],
            "shift_swap_requested",
            "已代您申请换班",
            f"已代您申请以您{shift.date}的班次与{other.date}的班次对换，待对方同意。",
        )
    return swap


def swap_status(today: date):
    """The swap's status as read on `today`: an open swap one of whose shifts is of a day
    before today is `expired`, whether or not the tick (`expire_swaps`) has marked it yet."""
    return case(
        (and_(ShiftSwap.status == "requested", _stale_swap(today)), "expired"),
        else_=ShiftSwap.status,
    )


def _stale_swap(today: date):
    return (
        select(Shift.id)
        .where(
            Shift.id.in_((ShiftSwap.shift_id, ShiftSwap.with_shift_id)),
            Shift.date < today,
        )
        .exists()
    )


def _swap_dict(swap: ShiftSwap, status: str) -> dict:
    return {
        **{c.key: getattr(swap, c.key) for c in ShiftSwap.__table__.columns},
        "status": status,
    }


def list_swaps(
    session: Session, scope: Scope, args: dict, page: int, page_size: int, *, now: datetime
) -> tuple[list[dict], int]:
    """The swaps the caller may see (`Scope.swaps`), as read on today's date: by status
    (an expired swap is one, marked or not), worker (either side) and week (either shift)."""
    status = swap_status(local_today(now)).label("read_status")
    query = select(ShiftSwap, status).where(scope.swaps())
    if args.get("status"):
        query = query.where(status == args["status"])
    if args.get("worker") is not None:
        query = query.where(
            or_(
                ShiftSwap.requester_id == args["worker"],
                ShiftSwap.other_worker_id == args["worker"],
            )
        )
    if args.get("week"):
        dates = weeks.week_dates(args["week"])
        query = query.where(
            select(Shift.id)
            .where(
                Shift.id.in_((ShiftSwap.shift_id, ShiftSwap.with_shift_id)),
                Shift.date.between(dates[0], dates[-1]),
            )
            .exists()
        )
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(
        query.order_by(ShiftSwap.created_at, ShiftSwap.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return [_swap_dict(swap, read) for swap, read in rows], total


def read_swap(session: Session, scope: Scope, swap_id: int, *, now: datetime) -> dict:
    """One swap, its status as read today (see `swap_status`)."""
    row = session.execute(
        select(ShiftSwap, swap_status(local_today(now))).where(
            ShiftSwap.id == swap_id, scope.swaps()
        )
    ).first()
    if row is None:
        raise errors.NotFound(f"No swap {swap_id} in your scope.")
    return _swap_dict(*row)


def expire_swaps(session: Session, now: datetime) -> list[ShiftSwap]:
    """Mark `expired` every open swap one of whose shifts is of a day before today (Asia/
    Shanghai, at `now`), and tell its two workers (and whoever asked for it on their behalf);
    return them. The worker asked holds the request's notice: the expiry replaces it (the
    swap's collapse key). Idempotent: the periodic tick (the push worker's, `gridwork rosters
    tick`) runs it.

    One UPDATE of the open swaps only (`ix_shift_swaps_open`): an accept or reject racing it
    holds the swap's row, and the UPDATE re-reads the row's status once it is free, so a swap
    decided meanwhile is left alone, and of two ticks at once the second finds nothing."""
    today = local_today(now)
    expired = list(
        session.scalars(
            update(ShiftSwap)
            .where(ShiftSwap.status == "requested", _stale_swap(today))
            .values(status="expired", decided_by_id=None, decided_at=now)
            .returning(ShiftSwap)
            .execution_options(synchronize_session="fetch")
        )
    )
    for swap in sorted(expired, key=lambda s: s.id):
        told = {swap.requester_id, swap.other_worker_id, swap.requested_by_id} - {None}
        _tell_about_swap(
            session,
            swap,
            sorted(told),
            "shift_swap_expired",
            "换班已过期",
            f"{_swap_days(session, swap)}的换班在当天之前未获处理，排班保持不变。",
            now=now,
        )
    session.flush()
    return expired


def get_swap(session: Session, scope: Scope, swap_id: int, *, lock: bool = True) -> ShiftSwap:
    """The swap if the caller sees it (`Scope.swaps`: its two workers, the community's
    leaders and admins), else 404; locked `FOR UPDATE` unless `lock` is False."""
    query = select(ShiftSwap).where(ShiftSwap.id == swap_id, scope.swaps())
    return _one_in_scope(session, query, ShiftSwap, lock, f"No swap {swap_id} in your scope.")


def accept_swap(
    session: Session, scope: Scope, swap_id: int, *, now: datetime | None = None
) -> ShiftSwap:
    """The other worker accepts, or a leader approves: the two shifts exchange workers, unless
    a day of theirs has passed since the request (`now`: the clock)."""
    swap = get_swap(session, scope, swap_id, lock=False)
    # Lock the two shifts (in id order, as request_swap does), then the swap, and read them
    # again: an edit of either shift holds it while it closes the shift's open swaps, so this
    # waits for the edit and sees it (the swap cancelled) rather than overwriting it. Shifts
    # before swaps everywhere, so an edit and an accept cannot deadlock.
    session.execute(
        select(Shift.id)
        .where(Shift.id.in_((swap.shift_id, swap.with_shift_id)))
        .order_by(Shift.id)
        .with_for_update()
    )
    a, b = session.get(Shift, swap.shift_id), session.get(Shift, swap.with_shift_id)
    session.refresh(a)
    session.refresh(b)
    # The leave that may cover the day each worker takes is locked for share before the swap
    # (the checks below read it again, held). An approval of that leave holds it, then cancels
    # the swaps onto it: this waits for the approval and then finds the swap cancelled (409),
    # rather than holding the swap while it waited, which the approval had to skip, and the
    # swap stayed open onto approved leave with nobody told.
    for mover, day in ((b.worker_id, a.date), (a.worker_id, b.date)):
        _on_leave(session, mover, day)
    session.refresh(swap, with_for_update=True)
    roster = a.roster
    is_editor = scope.edits_roster(roster.community_code)
    if scope.user_id != swap.other_worker_id and not is_editor:
        raise errors.Forbidden("Only the other worker or a leader decides this swap.")
    if scope.user_id == swap.requester_id:  # a leader holds shifts too: the other side agrees
        raise errors.Forbidden("Nobody decides their own swap.")
    if swap.status != "requested":
        raise errors.Conflict(f"Swap {swap.id} is already {swap.status}.")
    today = local_today(now)
    for shift in (a, b):
        _require_published(shift)
        _require_not_past(shift, today)
    if a.worker_id != swap.requester_id or b.worker_id != swap.other_worker_id:
        raise errors.Conflict("The shifts changed hands since the swap was requested.")
    _lock_weeks(session, [(b.worker_id, a.roster.week), (a.worker_id, b.roster.week)])
    reason = _swap_conflict(session, a, b)
    if reason:
        raise errors.Conflict(f"The swap conflicts: {reason}.")
    before = [_snapshot(session, a), _snapshot(session, b)]
    # One statement: the deferrable unique (worker, date) is checked once both rows moved.
    session.execute(
        update(Shift)
        .where(Shift.id.in_((a.id, b.id)))
        .values(worker_id=case((Shift.id == a.id, b.worker_id), else_=a.worker_id))
        .execution_options(synchronize_session=False)
    )
    session.refresh(a)
    session.refresh(b)
    for shift in (a, b):
        shift.relief_for_id = _relief_for(session, shift)
    swap.status = "accepted" if scope.user_id == swap.other_worker_id else "approved"
    swap.decided_by_id = scope.user_id
    swap.decided_at = clock.now()
    session.flush()
    if a.roster_id == b.roster_id:
        _track_and_notify(session, scope, roster, [(a, before[0]), (b, before[1])], "swap")
    else:  # two weeks of one community: each change is logged with its own roster
        _track_and_notify(session, scope, roster, [(a, before[0])], "swap")
        _track_and_notify(session, scope, b.roster, [(b, before[1])], "swap")
    return swap


def reject_swap(
    session: Session, scope: Scope, swap_id: int, *, now: datetime | None = None
) -> ShiftSwap:
    """The other worker or a leader rejects a swap, or its requester withdraws it. A swap
    whose day has passed has expired (`expire_swaps`), marked or not: a 409."""
    swap = get_swap(session, scope, swap_id)
    if swap.status != "requested":
        raise errors.Conflict(f"Swap {swap.id} is already {swap.status}.")
    today = local_today(now)
    if session.scalar(select(_stale_swap(today)).where(ShiftSwap.id == swap.id)):
        raise errors.Conflict(
            f"Swap {swap.id} has expired: one of its shifts is of a day before today ({today})."
        )
    shift = session.get(Shift, swap.shift_id)
    if scope.user_id == swap.requester_id and scope.user_id != swap.other_worker_id:
        swap.status = "cancelled"
    elif scope.user_id == swap.other_worker_id or scope.edits_roster(shift.roster.community_code):
        swap.status = "rejected"
    else:  # pragma: no cover - get_swap already hid it
        raise errors.Forbidden("Only the workers of the swap or a leader decide it.")
    swap.decided_by_id = scope.user_id
    swap.decided_at = clock.now()
    session.flush()
    # Its workers but the one who decided: the other worker of a withdrawn swap, the requester
    # (and the other, when a leader decided) of a rejected one.
    withdrawn = swap.status == "cancelled"
    _tell_about_swap(
        session,
        swap,
        [w for w in (swap.requester_id, swap.other_worker_id) if w != scope.user_id],
        "shift_swap_cancelled" if withdrawn else "shift_swap_rejected",
        "换班已撤回" if withdrawn else "换班被拒绝",
        f"{shift.date}与{session.get(Shift, swap.with_shift_id).date}的换班"
        f"{'已撤回' if withdrawn else '被拒绝'}，排班保持不变。",
    )
    return swap
