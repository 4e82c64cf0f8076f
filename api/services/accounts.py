"""Accounts as a community office keeps them: look up, open, change, switch off, reset.

A community admin manages the accounts of their community (workers, grid leaders, admins);
district viewers' accounts are opened from the command line (`gridwork user create`). Every
change is an entry in the audit log. Switching an account off ends everything it held: its
tokens, sessions, calendar feed and push devices stop at once, and the tasks it held go to
whom dispatch picks today (or wait unassigned, their overseers told).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, selectinload

from api import errors
from api.auth import hash_password
from api.models import Grid, Shift, User, user_grids
from api.scope import Scope
from api.services import audit, calendar, rosters, sessions, tasks
from api.services.names import check_name
from api.services.users import create_user, require_long_enough
from api.services.weeks import LOCAL

# The roles a community admin opens accounts for; district viewers are the district's.
MANAGED_ROLES = ("worker", "grid_leader", "community_admin")
# Roles that hold grids (`user_grids`): their grids are what they see and work.
GRID_ROLES = ("worker", "grid_leader")


@dataclass(frozen=True)
class Actor:
    """Who acts, from where: for the audit log. No scope: an operator at the command line
    (`gridwork user switch-off`, `gridwork user reset-password`), for any account."""

    scope: Scope | None
    ip: str | None = None
    path: str | None = None
    # The version of the token the admin acts with: their account must still be at it once
    # held (`_hold`), not switched off or reset by another admin meanwhile.
    token_version: int | None = None

    @property
    def user_id(self) -> int | None:
        return self.scope.user_id if self.scope is not None else None

    def require_account_admin(self, community_code: str | None) -> None:
        if self.scope is not None:
            self.scope.require_account_admin(community_code)


@dataclass
class Outcome:
    """An account after a change, and what switching it off handed on."""

    user: User
    # Tasks it held, handed on: (task id, new assignee id or None when left unassigned).
    handed_on: list[tuple[int, int | None]] = field(default_factory=list)
    # Days from today that a roster (published or draft) still gives it a shift on.
    shifts_ahead: list[date] = field(default_factory=list)

    def __getattr__(self, name: str):
        # Dumped as the account it is about, with what was handed on beside it.
        if name == "user":
            raise AttributeError(name)
        return getattr(self.user, name)


def list_users(
    session: Session,
    scope: Scope,
    *,
    role: str | None = None,
    grid: str | None = None,
    active: bool | None = None,
    page: int,
    page_size: int,
) -> tuple[list[User], int]:
    """The accounts `scope` may look up, by username; filtered by role, grid held, state."""
    where = [scope.users()]
    if role is not None:
        where.append(User.role == role)
    if active is not None:
        where.append(User.active.is_(active))
    if grid is not None:
        where.append(
            User.id.in_(
                select(user_grids.c.user_id)
                .join(Grid, Grid.id == user_grids.c.grid_id)
                .where(Grid.code == grid)
            )
        )
    total = session.scalar(select(func.count()).select_from(User).where(*where))
    rows = session.scalars(
        select(User)
        .where(*where)
        .options(selectinload(User.grids), selectinload(User.led_grids))
        .order_by(User.username, User.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return list(rows), total or 0


def get_user(
    session: Session, scope: Scope | None, user_id: int, *, for_update: bool = False
) -> User:
    """An account `scope` may look up (None: any); 404 for any other (ids do not tell what
    exists)."""
    stmt = select(User).where(User.id == user_id)
    if scope is not None:
        stmt = stmt.where(scope.users())
    if for_update:
        # FOR NO KEY UPDATE, not FOR UPDATE: a change writes rows naming its admin (the audit
        # entry, task events) whose foreign key checks take KEY SHARE on the admin's row. Two
        # admins changing each other's accounts at once each held the row the other's check
        # waited for: a deadlock, one of them answered 503.
        stmt = stmt.with_for_update(key_share=True)
        # Read as stored once locked: one's own account is loaded with the token, before a
        # change another admin committed while this one waited on the row.
        stmt = stmt.execution_options(populate_existing=True)
    user = session.scalar(stmt)
    if user is None:
        raise errors.NotFound(f"User {user_id} not found.")
    return user


def open_account(session: Session, actor: Actor, data: dict, now: datetime) -> User:
    """A community admin opens an account in their community; a grid leader opened with
    grids leads them (as `gridwork user create` does), a worker is assigned them. The admin
    chose its password: its owner sets their own at the first sign-in."""
    scope = actor.scope
    scope.require_account_admin(scope.community_code)
    # Held as a change's is (`_hold`): an admin switched off (or reset) while this request was
    # on its way opened an account all the same, an admin's one too, its password theirs.
    sessions.hold_account(session, actor.user_id, actor.token_version)
    if data["role"] not in MANAGED_ROLES:
        raise errors.Unprocessable(
            "A district viewer's account is opened by the district (gridwork user create).",
            errors={"json": {"role": [f"One of {', '.join(MANAGED_ROLES)}."]}},
        )
    codes = data.get("grid_codes") or []
    if codes and data["role"] not in GRID_ROLES:
        raise errors.Unprocessable(
            "Only workers and grid leaders hold grids.",
            errors={"json": {"grid_codes": ["Not for a community admin."]}},
        )
    # Each once: a code sent twice was the unique key's IntegrityError, answered as a race
    # ("retry"), which a retry met again.
    codes = [grid.code for grid in _grids_in(session, scope.community_code, codes)]
    user = create_user(
        session,
        username=data["username"],
        password=data["password"],
        role=data["role"],
        display_name=data.get("display_name"),
        phone=data.get("phone"),
        community=scope.community_code,
        grids=codes,
    )
    # The admin chose the password: its owner sets their own at the first sign-in.
    user.must_change_password = True
    session.flush()
    _record(session, actor, "create", user, ["username", "role", *_given(data)], now)
    return user


def change_account(
    session: Session, actor: Actor, user_id: int, changes: dict, now: datetime
) -> Outcome:
    """A community admin changes an account of their community: its name, phone, role, the
    grids it holds (`grid_codes` replaces them; leading a grid is the grid's `leader_id`), or
    whether it is active. One's own role and switching oneself off are refused: another admin
    does. The audit entry names the fields whose values changed (none: no entry)."""
    user = _hold(session, actor, user_id)
    actor.require_account_admin(user.community_code)
    switching_on = changes.get("active") is True and not user.active
    _check_new_password(actor, user, changes.get("new_password"), switching_on)
    before = _facts(user)
    outcome = Outcome(user)
    if "role" in changes and changes["role"] != user.role:
        outcome = _change_role(session, actor, user, changes["role"], now)
    if "display_name" in changes:
        check_name("display_name", changes["display_name"])
        user.display_name = changes["display_name"]
    if "phone" in changes:
        user.phone = changes["phone"]
    if "grid_codes" in changes:
        held = {grid.id for grid in user.grids if grid.retired_at is None}
        _hold_grids(session, user, changes["grid_codes"])
        session.flush()
        # A grid they still lead stays theirs to answer for (leading is the grid's leader_id).
        led = set(session.scalars(select(Grid.id).where(Grid.leader_id == user.id)))
        let_go = held - {grid.id for grid in user.grids} - led
        outcome.handed_on += tasks.hand_on_from_grids_let_go(
            session, now, holder_id=user.id, grid_ids=sorted(let_go), actor_id=actor.user_id
        )
        outcome.shifts_ahead = _b_posts_outside_held(session, user, now)
    if "active" in changes and changes["active"] != user.active:
        if changes["active"]:
            # Back in service with the password the admin sets now (`_check_new_password`),
            # its owner setting their own at the first sign-in.
            user.active, user.switched_off_at = True, None
            user.password_hash = hash_password(changes["new_password"])
            user.must_change_password = True
        else:
            if user.id == actor.user_id:
                raise errors.Conflict(
                    "You cannot switch off your own account; another admin of the community can."
                )
            switched = _switch_off(session, user, actor.user_id, now)
            switched.handed_on[:0] = outcome.handed_on  # a role change's first
            outcome = switched
    session.flush()
    after = _facts(user)
    if _takes_shifts(before) and not _takes_shifts(after):
        # Its published shifts ahead are left uncovered: the community's other leaders and
        # admins are told, as of approved leave's (the admin reads them in `shifts_ahead`).
        name = user.display_name or user.username
        rosters.tell_of_shifts_left(
            session,
            actor.user_id,
            user,
            f"{name}的账号已停用" if not user.active else f"{name}已改任社区管理员，不再值班",
            now,
        )
    changed = sorted(name for name in after if after[name] != before[name])
    if switching_on:
        changed.append("password")
    if changed:
        _record(session, actor, "update", user, changed, now)
    return outcome


def _check_new_password(actor: Actor, user: User, password: str | None, switching_on: bool):
    """An account switched back on is given a new password, which the admin hands over: the
    old one may have been guessed while the account was off (signing in to a switched-off
    account with its right password says it is off, `users.authenticate`), and whoever knew
    it signed in first once it was on, set a password of their own with it and held the
    account. A fellow admin's account is the district's to switch on, as its password is
    (`reset_password`). A new password with no switching on is a 422 (a reset is
    `POST /users/{id}/password`)."""
    if not switching_on:
        if password is not None:
            message = (
                "A new password goes with switching the account on again (active: true); "
                "to reset one: POST /api/v1/users/{id}/password."
            )
            raise errors.Unprocessable(message, errors={"json": {"new_password": [message]}})
        return
    if user.role == "community_admin" and actor.scope is not None:
        raise errors.Forbidden(
            "Another community admin's account is switched on again by the district "
            "(gridwork user switch-on), not by a fellow admin: it is given a new password."
        )
    if password is None:
        message = (
            "Switching an account on again sets a new password (`new_password`), handed to its "
            "owner: the old one may have been guessed while it was off."
        )
        raise errors.Unprocessable(message, errors={"json": {"new_password": [message]}})
    require_long_enough(password, "new_password")


def _takes_shifts(facts: dict) -> bool:
    """Whether an account (its `_facts`) holds shifts: active, a worker or grid leader."""
    return facts["active"] and facts["role"] in rosters.SHIFT_ROLES


def reset_password(
    session: Session, actor: Actor, user_id: int, new_password: str, now: datetime
) -> User:
    """A community admin sets a new password for an account of their community (forgotten,
    or a phone lost): every token, session, calendar link and push device of the account ends;
    its owner signs in with the new password and must then set their own (until then their
    tokens open only the /auth endpoints). One's own goes through
    `POST /auth/password`, which asks for the current one."""
    user = _hold(session, actor, user_id)
    actor.require_account_admin(user.community_code)
    if user.id == actor.user_id:
        raise errors.Conflict(
            "Change your own password with POST /api/v1/auth/password (it asks for the "
            "current one)."
        )
    if user.role == "community_admin" and actor.scope is not None:
        # Whoever sets an account's password may sign in as it: one admin resetting another's
        # would act in their name. An admin's password is reset by the district's operator.
        raise errors.Forbidden(
            "Another community admin's password is reset by the district "
            "(gridwork user reset-password), not by a fellow admin."
        )
    require_long_enough(new_password, "new_password")
    user.password_hash = hash_password(new_password)
    user.must_change_password = True  # the admin knows it: its owner sets their own next
    _end_sign_ins(session, user, "password reset by an admin", now)
    session.flush()
    _record(session, actor, "password_reset", user, ["password"], now)
    return user


# --- the parts ----------------------------------------------------------------------------------
def _hold(session: Session, actor: Actor, user_id: int) -> User:
    """The account `actor` changes, locked, and the admin's own account held with it, the
    lower id first (two admins changing each other's accounts lock in one order); 401 when,
    once held, the admin's token is no longer theirs. Two admins switching each other off at
    once both went through, each token checked before the other's change committed: as one
    after the other, the second is refused."""
    mine = actor.user_id
    if mine is not None and mine <= user_id:  # one's own account too
        sessions.hold_account(session, mine, actor.token_version)
    user = get_user(session, actor.scope, user_id, for_update=True)
    if mine is not None and mine > user_id:
        sessions.hold_account(session, mine, actor.token_version)
    return user


def _facts(user: User) -> dict:
    """What a change may change, to tell which fields it did."""
    held = sorted(g.code for g in user.grids if g.retired_at is None)
    return {
        "display_name": user.display_name,
        "phone": user.phone,
        "role": user.role,
        "grid_codes": held,
        "active": user.active,
    }


def _change_role(session: Session, actor: Actor, user: User, role: str, now: datetime) -> Outcome:
    """Make `user` a worker, grid leader or community admin. Its tokens, sessions and push
    devices end (the next sign-in carries the new role); a grid leader still leading grids is
    refused (their new leader is named first: escalations go to a grid's leader); a community
    admin holds no grids and does no field work, so the grids held are let go, the tasks held
    handed on and the shifts still rostered listed for the office to re-roster."""
    if user.id == actor.user_id:
        raise errors.Conflict(
            "You cannot change your own role; another admin of the community can."
        )
    if user.role not in MANAGED_ROLES:
        raise errors.Unprocessable(
            f"A {user.role}'s role is the district's to change.",
            errors={"json": {"role": ["Not an account of the community's."]}},
        )
    if user.role == "community_admin" and actor.scope is not None:
        # Made a worker, the account's password was then the admin's to reset, and made an
        # admin again it was theirs to sign in as: a fellow admin's account taken over in
        # three calls. As their password, another admin's role is the district's.
        raise errors.Forbidden(
            "Another community admin's role is changed by the district "
            "(gridwork user set-role), not by a fellow admin."
        )
    led = sorted(
        session.scalars(
            select(Grid.code).where(Grid.leader_id == user.id, Grid.retired_at.is_(None))
        )
    )
    if led and role != "grid_leader":
        raise errors.Conflict(
            f"{user.username} leads grid(s) {', '.join(led)}: name their new leader first "
            "(PATCH /api/v1/grids/{id} with leader_id), then change the role."
        )
    user.role = role
    user.token_version += 1
    # Signed out on every phone, so no more pushes there either (`revoke_all`): they kept
    # coming to a phone signed out, the tasks handed on included, until the next sign-in.
    sessions.revoke_all(session, user.id, "role changed", now)
    outcome = Outcome(user)
    if role not in GRID_ROLES:
        _replace_grids(session, user, [])
        session.flush()
        outcome.handed_on = tasks.hand_on_from_made_admin(
            session, now, holder_id=user.id, actor_id=actor.user_id
        )
        outcome.shifts_ahead = _shifts_ahead(session, user, now)
    return outcome


def _shifts_ahead(session: Session, user: User, now: datetime) -> list[date]:
    """Days from today that a roster (published or draft) still gives `user` a shift on."""
    today = now.astimezone(LOCAL).date()
    return list(
        session.scalars(
            select(Shift.date)
            .where(Shift.worker_id == user.id, Shift.date >= today)
            .distinct()
            .order_by(Shift.date)
        )
    )


def _b_posts_outside_held(session: Session, user: User, now: datetime) -> list[date]:
    """Days from today that a roster still gives `user` a B-post of their own (not a relief)
    in a grid they hold no more: moved to another grid, they are sent to the old one until
    the shift is handed on."""
    today = now.astimezone(LOCAL).date()
    held = select(user_grids.c.grid_id).where(user_grids.c.user_id == user.id)
    return list(
        session.scalars(
            select(Shift.date)
            .where(
                Shift.worker_id == user.id,
                Shift.date >= today,
                Shift.post == "B",
                Shift.relief_for_id.is_(None),
                Shift.grid_id.not_in(held),
            )
            .distinct()
            .order_by(Shift.date)
        )
    )


def _given(data: dict) -> list[str]:
    return [k for k in ("display_name", "phone", "grid_codes") if data.get(k)]


def _hold_grids(session: Session, user: User, codes: Sequence[str]) -> None:
    """Replace the grids the account holds by `codes` (grids of its community, in service);
    its holdings of retired grids stay, the history of what it held then."""
    if user.role not in GRID_ROLES:
        raise errors.Unprocessable(
            f"A {user.role} holds no grids.",
            errors={"json": {"grid_codes": ["Only workers and grid leaders hold grids."]}},
        )
    _replace_grids(session, user, _grids_in(session, user.community_code, codes))


def _replace_grids(session: Session, user: User, grids: Sequence[Grid]) -> None:
    """Only the grids that change are taken away or given: a grid kept is held on, one period
    of its holding (`grid_holdings`), not ended and begun again."""
    kept = [grid.id for grid in grids]
    in_service = select(Grid.id).where(Grid.retired_at.is_(None))
    session.execute(
        delete(user_grids).where(
            user_grids.c.user_id == user.id,
            user_grids.c.grid_id.in_(in_service),
            user_grids.c.grid_id.not_in(kept),
        )
    )
    if grids:
        session.execute(
            pg_insert(user_grids)
            .values([{"user_id": user.id, "grid_id": grid_id} for grid_id in kept])
            .on_conflict_do_nothing()
        )
    session.expire(user, ["grids"])


def _grids_in(session: Session, community_code: str | None, codes: Sequence[str]) -> list[Grid]:
    """The grids in service `codes` name, each once; a 422 naming every code that is not one
    of community `community_code`."""
    wanted = list(dict.fromkeys(codes))
    found = session.scalars(
        select(Grid).where(Grid.code.in_(wanted), Grid.retired_at.is_(None))
    ).all()
    by_code = {g.code: g for g in found}
    problems = {}
    for code in wanted:
        grid = by_code.get(code)
        if grid is None:
            problems[code] = "Not found (or retired)."
        elif grid.community_code != community_code:
            problems[code] = f"Not a grid of community {community_code}."
    if problems:
        listed = "; ".join(f"{code}: {why}" for code, why in problems.items())
        raise errors.Unprocessable(
            f"grid_codes: {listed}", errors={"json": {"grid_codes": problems}}
        )
    return [by_code[code] for code in wanted]


def _end_sign_ins(session: Session, user: User, reason: str, now: datetime) -> None:
    """Every token issued so far stops (the token version), every session ends (no refresh),
    the calendar link handed out stops, and nothing more is pushed to its devices."""
    user.token_version += 1
    sessions.revoke_all(session, user.id, reason, now)
    calendar.revoke(session, user)


def _switch_off(session: Session, user: User, actor_id: int, now: datetime) -> Outcome:
    user.active, user.switched_off_at = False, now
    _end_sign_ins(session, user, "account switched off", now)
    session.flush()
    outcome = Outcome(user)
    outcome.handed_on = tasks.hand_on_from_switched_off(
        session, now, holder_id=user.id, actor_id=actor_id
    )
    outcome.shifts_ahead = _shifts_ahead(session, user, now)
    return outcome


def _record(
    session: Session, actor: Actor, action: str, user: User, fields: list[str], now: datetime
) -> None:
    audit.record(
        session,
        user_id=actor.user_id,
        action=action,
        resource="user",
        resource_ids=[user.id],
        fields=fields,
        ip=actor.ip,
        path=actor.path,
        at=now,
    )
