"""Who gets a grid's task today: the grid's worker whose visit asked for it, else its worker on
duty, else a reliever or B-post, else its leader (if active and not on leave), else nobody (the
community's admins are told, in tasks)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from api.models import Community, Grid, Leave, Roster, Shift, User, user_grids
from api.services.rosters import SHIFT_ROLES, resting, roster_rules, roster_settings
from api.services.weeks import week_of


def on_leave(session: Session, user_id: int, day: date) -> bool:
    return leave_on(session, user_id, day) is not None


def leave_on(session: Session, user_id: int, day: date) -> Leave | None:
    """The approved leave `user_id` is on that `day` (the one ending last), if any."""
    return session.scalar(
        select(Leave)
        .where(
            Leave.worker_id == user_id,
            Leave.status == "approved",
            Leave.start_date <= day,
            Leave.end_date >= day,
        )
        .order_by(Leave.end_date.desc())
        .limit(1)
    )


def published_roster(session: Session, community_code: str, day: date) -> Roster | None:
    return session.scalar(
        select(Roster).where(
            Roster.community_code == community_code,
            Roster.week == week_of(day),
            Roster.status == "published",
        )
    )


def on_duty(session: Session, user: User, day: date, roster: Roster | None, settings: dict) -> bool:
    """On duty: not on approved leave, and holding a shift that day in the published roster;
    without a published roster for the week, the community's roster calendar decides: a working
    day (its working weekdays, less holidays, plus extra working days) that is not one of the
    worker's rest days, as the roster itself would have it."""
    if on_leave(session, user.id, day):
        return False
    if roster is None:
        return roster_rules(settings).works(day) and not resting(settings, user.id, day)
    return bool(
        session.scalar(
            select(
                exists().where(
                    Shift.roster_id == roster.id, Shift.worker_id == user.id, Shift.date == day
                )
            )
        )
    )


def grid_workers(session: Session, grid: Grid) -> list[User]:
    """The workers assigned to the grid (not its leader), in a stable order."""
    return list(
        session.scalars(
            select(User)
            .join(user_grids, user_grids.c.user_id == User.id)
            .where(user_grids.c.grid_id == grid.id, User.role == "worker", User.active)
            .order_by(User.id)
        )
    )


# Why dispatch chose the assignee: the dispatch step's note in the task's history (the task's
# page says each in the reader's words, web/src/task_detail.js DISPATCH_NOTES_ZH).
FINDER = "the worker who found it"
ON_DUTY = "grid worker on duty"
RELIEVER = "reliever"
B_POST = "B-post on duty"
LEADER = "grid leader (no worker on duty)"
AT_WINDOW = "the window worker who settled it"  # resolved at the window (`resolved_here`)
NOBODY = "nobody to dispatch to"  # no assignee: no dispatch step, no note
DISPATCH_NOTES = (FINDER, ON_DUTY, RELIEVER, B_POST, LEADER, AT_WINDOW)


def choose_assignee(
    session: Session,
    grid: Grid,
    day: date,
    *,
    finder: int | None = None,
    besides: int | None = None,
) -> tuple[User | None, str]:
    """The user a new task of `grid` goes to on `day` (Asia/Shanghai), and why.

    `finder`: the worker whose visit asked for the task. When they hold the grid and are not on
    leave that day, it is theirs, rostered or not: they stood at the door, met the resident and
    wrote the note (a Saturday's visit went to the leader, a grid of two workers' to the first
    by id). A reliever from another grid leaves it to the grid's own.

    `besides`: a user not to pick, the holder a task is handed on from (moved off the grid, a
    roster's shift there today still named them, and the task went back to them as new)."""
    workers = [w for w in grid_workers(session, grid) if w.id != besides]
    for worker in workers:
        if worker.id == finder and not on_leave(session, worker.id, day):
            return worker, FINDER
    roster = published_roster(session, grid.community_code, day)
    settings = roster_settings(session.get(Community, grid.community_code))
    duty = [w for w in workers if on_duty(session, w, day, roster, settings)]
    if roster is not None and len(duty) > 1:
        # Out in the grid (its B-post) before at the hall window (the A-post) or out in another
        # grid: by id alone, a grid's task went to its worker who could not leave the window.
        in_grid = set(
            session.scalars(
                select(Shift.worker_id).where(
                    Shift.roster_id == roster.id,
                    Shift.date == day,
                    Shift.post == "B",
                    Shift.grid_id == grid.id,
                )
            )
        )
        duty.sort(key=lambda w: w.id not in in_grid)  # stable: by id within each
    if duty:
        return duty[0], ON_DUTY
    if roster is not None:
        shifts = session.scalars(
            select(Shift)
            .where(Shift.roster_id == roster.id, Shift.date == day, Shift.grid_id == grid.id)
            .order_by(Shift.relief_for_id.is_(None), Shift.id)
        )
        # Whom a relief shift covers: any holder of the grid, its leader too (the solver names
        # the grid's first holder, who may be the leader). Every B-post in the grid is out in
        # it: a shift relieving someone who holds the grid no more still counts as one.
        holders = set(
            session.scalars(select(user_grids.c.user_id).where(user_grids.c.grid_id == grid.id))
        )
        for shift in shifts:
            reliever = session.get(User, shift.worker_id)
            # A shift outlives a role change: one made a community admin since is out of the field.
            works = (
                reliever is not None
                and reliever.id != besides
                and reliever.active
                and reliever.role in SHIFT_ROLES
            )
            if works and not on_leave(session, reliever.id, day):
                reason = RELIEVER if shift.relief_for_id in holders else B_POST
                return reliever, reason
    if grid.leader_id is not None:
        leader = session.get(User, grid.leader_id)
        available = leader is not None and leader.active and leader.id != besides
        if available and not on_leave(session, leader.id, day):
            return leader, LEADER
    return None, NOBODY
