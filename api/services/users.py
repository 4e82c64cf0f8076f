"""Users: accounts, their grid assignments, and signing in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api import errors
from api.auth import hash_password, verify_password
from api.models import ROLES, Community, District, Grid, User
from api.services import audit, calendar, sessions
from api.services.names import INVISIBLE, SPACES, check_name

MIN_PASSWORD_LENGTH = 8
USERNAME_MAX = 64
# A username is typed to sign in and shows an account in every list and audit entry: with a
# space before or after it, a no-break or ideographic space, a zero-width (non-)joiner, it
# reads as another account's ("worker_a1 " is worker_a1) and is a second one. An identifier
# has no use for any space or invisible character; a display name keeps them.
USERNAME_SPACES = "Must not contain spaces or invisible characters."


def password_length(password: str) -> int:
    """A password's length as the rule counts it: characters (code points), spaces (any Unicode
    whitespace) not counted. The web forms count the same (`passwordLength` in
    web/src/password.js)."""
    return len(password) - sum(c.isspace() for c in password)


def require_long_enough(password: str, field: str) -> None:
    """A 422 naming `field` for a password of fewer than MIN_PASSWORD_LENGTH characters, spaces
    (any Unicode whitespace) not counted: eight spaces passed the rule (the schemas say the
    length first for the API; the command line comes here)."""
    if password_length(password) < MIN_PASSWORD_LENGTH:
        raise errors.Unprocessable(
            f"The password needs at least {MIN_PASSWORD_LENGTH} characters, spaces not counted.",
            errors={"json": {field: ["Too short (spaces do not count)."]}},
        )


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    phone: str | None = None,
    community: str | None = None,
    district: str | None = None,
    grids: Sequence[str] = (),
) -> User:
    """Create an account; a grid leader leads the grids given, a worker is assigned to them."""
    if role not in ROLES:
        raise errors.Unprocessable(f"Unknown role {role!r}; one of {', '.join(ROLES)}.")
    check_name("username", username, max_length=USERNAME_MAX)
    if any(c.isspace() or c in SPACES or c in INVISIBLE for c in username):
        raise errors.Unprocessable(
            f"username: {USERNAME_SPACES}", errors={"username": [USERNAME_SPACES]}
        )
    check_name("display_name", display_name, optional=True)
    require_long_enough(password, "password")
    taken = username_taken(session, username)
    if taken is not None:
        raise errors.Conflict(
            f"User {username!r} already exists."
            if taken == username
            else f"User {username!r} reads as the existing {taken!r}; choose another username."
        )
    if role == "district_viewer":
        district = district or (community[:6] if community else None)
        if district is None or session.get(District, district) is None:
            raise errors.Unprocessable(
                f"A district viewer needs a known district (got {district})."
            )
        community = None
    elif community is None and grids:
        community = grids[0][:12]
        # Found by an operator's review: a mistyped grid was answered as a community.
        if session.scalar(select(Grid.id).where(Grid.code == grids[0])) is None:
            raise errors.Unprocessable(f"Grid {grids[0]} not found.")
    if role != "district_viewer":
        if community is None or session.get(Community, community) is None:
            raise errors.Unprocessable(f"Role {role} needs a known community (got {community}).")
        district = community[:6]
    grid_rows = []
    # Only workers and leaders hold grids; admins and viewers see theirs through the hierarchy.
    for code in grids if role in ("worker", "grid_leader") else ():
        grid = session.scalar(select(Grid).where(Grid.code == code, Grid.retired_at.is_(None)))
        if grid is None:
            raise errors.Unprocessable(f"Grid {code} not found (or retired).")
        if grid.community_code != community:
            raise errors.Unprocessable(f"Grid {code} is not a grid of community {community}.")
        grid_rows.append(grid)
    user = User(
        username=username,
        display_name=display_name or username,
        phone=phone,
        role=role,
        password_hash=hash_password(password),
        community_code=community,
        district_code=district,
    )
    if role in ("worker", "grid_leader"):
        user.grids = grid_rows
    session.add(user)
    session.flush()
    if role == "grid_leader":
        for grid in grid_rows:
            grid.leader_id = user.id
        session.flush()
    return user


# One spelling of a username, in SQL: its compatibility form (full-width letters as ASCII) in
# small letters. Worker_A1, WORKER_A1 and ｗorker_a1 read as worker_a1 in a list, an audit entry
# or a roster, and a phone that capitalises the first letter typed another account's name.
_FOLDED = "lower(normalize({}, NFKC))"
# Openings of accounts that read the same queue on this lock (keyspace 7), so two at once
# are not both let through.
_USERNAME_LOCK = text(f"SELECT pg_advisory_xact_lock(7, hashtext({_FOLDED.format(':name')}))")


def username_taken(session: Session, username: str) -> str | None:
    """The existing username `username` reads as (itself, or it but for case and full-width
    forms), or None; the caller's transaction holds the lock on that spelling until it ends."""
    session.execute(_USERNAME_LOCK, {"name": username})
    return session.scalar(
        select(User.username)
        .where(text(f"{_FOLDED.format('users.username')} = {_FOLDED.format(':name')}"))
        .params(name=username)
        .order_by((User.username != username), User.id)
        .limit(1)
    )


# A user id as text: ASCII digits only ("²".isdigit() is True, yet int("²") fails) and short
# enough for int() (which refuses over 4,300 digits); 19 digits already pass a bigint.
USER_ID_PATTERN = "[0-9]{1,19}"
_USER_ID = re.compile(USER_ID_PATTERN)


def user_id(text: object) -> int | None:
    """The user id a string spells, or None when it is not one."""
    return int(text) if isinstance(text, str) and _USER_ID.fullmatch(text) else None


@dataclass(frozen=True)
class LoginLimits:
    window: timedelta
    max_per_user: int
    max_per_ip: int


def sign_in(
    session: Session, username: str, password: str, *, ip: str | None, limits: LoginLimits
) -> User | None:
    """Authenticate, throttled per username and per address; None for wrong credentials.

    The attempt is recorded either way: the caller commits before answering, so a failed
    guess counts even though the request fails.
    """
    audit.check_login_allowed(
        session,
        username,
        ip,
        window=limits.window,
        max_per_user=limits.max_per_user,
        max_per_ip=limits.max_per_ip,
    )
    try:
        user = authenticate(session, username, password)
    except errors.Unauthorized:
        audit.record_login(session, username, ip, False, None)
        return None
    except errors.AccountSwitchedOff:
        audit.record_login(session, username, ip, False, None)
        raise
    audit.record_login(session, username, ip, True, user.id)
    return user


def change_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    *,
    ip: str | None,
    limits: LoginLimits,
    sid: str | None = None,
    token_version: int | None = None,
) -> None:
    """Set a new password after checking the current one (throttled per sign-in session `sid`,
    apart from signing in: `audit.check_password_change_allowed`).

    Bumps the token version: every token issued before, on every device, stops working; so
    does the calendar feed URL handed out before, a credential of the account like a token.
    A wrong current password is recorded (a failed password change of session `sid`), then
    refused with 403; the caller commits first so the failure counts.

    The account is held first, and a token (`token_version`: the caller's) no longer its
    own is refused (401): a change waiting on a password reset (`accounts`) overwrote the
    password the admin set once the reset committed, and the token that made it, the reset
    meant to end, was handed fresh ones; whoever held the phone lost kept the account.
    """
    sessions.hold_account(session, user.id, token_version)
    audit.check_password_change_allowed(
        session, user.id, sid, window=limits.window, max_failures=limits.max_per_user
    )
    if not verify_password(user.password_hash, current):
        audit.record_wrong_current_password(session, user, sid, ip)
        raise errors.Forbidden(
            "The current password is wrong.",
            errors={"json": {"current_password": ["Wrong password."]}},
        )
    require_long_enough(new, "new_password")
    if new == current:
        raise errors.Unprocessable(
            "The new password must differ from the current one.",
            errors={"json": {"new_password": ["Same as the current password."]}},
        )
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.token_version += 1
    calendar.revoke(session, user)
    session.flush()


def authenticate(session: Session, username: str, password: str) -> User:
    """The user of these credentials. Wrong ones are a 401 whoever the username names; the
    right password of an account switched off is a 403 saying so (`AccountSwitchedOff`): its
    owner asks the admin instead of guessing on into the throttle, and only who knows the
    password learns the account is off."""
    user = session.scalar(select(User).where(User.username == username))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise errors.Unauthorized("Wrong username or password.")
    if not user.active:
        raise errors.AccountSwitchedOff(
            "This account is switched off: ask your community admin to switch it on."
        )
    return user
