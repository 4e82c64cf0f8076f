"""Sign-in sessions: open at sign-in, rotate the refresh token, detect its replay, revoke."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, lru_cache

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    and_,
    bindparam,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.elements import BindParameter

from api import errors
from api.models import AuthSession, Device, Grid, RevokedToken, User, user_grids
from api.scope import Scope, ScopeGrids

# Ended sessions stay this long (a user's recent sign-ins and why they ended), then go.
ENDED_SESSION_DAYS = 30


def new_id() -> str:
    return str(uuid.uuid4())


def open_session(
    session: Session,
    user_id: int,
    *,
    refresh_jti: str,
    expires_at: datetime,
    ip: str | None,
    now: datetime,
) -> AuthSession:
    row = AuthSession(
        id=new_id(),
        user_id=user_id,
        refresh_jti=refresh_jti,
        created_at=now,
        expires_at=expires_at,
        ip=ip,
    )
    session.add(row)
    session.flush()
    return row


def use_refresh(
    session: Session, sid: str, jti: str, *, new_jti: str, expires_at: datetime, now: datetime
) -> bool:
    """Rotate the session's refresh token; False when `jti` is not the live one.

    A refresh token that was already exchanged coming back means two parties hold it (a copy
    was stolen, or a client is replaying): the whole session is revoked, the legitimate user
    signs in again, and every token the thief obtained dies with it.
    """
    row = session.scalar(select(AuthSession).where(AuthSession.id == sid).with_for_update())
    if row is None or row.revoked_at is not None:
        return False
    if row.refresh_jti != jti:
        row.revoked_at, row.revoked_reason = now, "refresh-token-reuse"
        session.flush()
        _end_devices(session, Device.session_id == sid, "refresh-token-reuse", now)
        return False
    row.refresh_jti, row.refreshed_at, row.expires_at = new_jti, now, expires_at
    session.flush()
    return True


def revoke(
    session: Session, sid: str | None, reason: str, now: datetime, *, device_reason: str = ""
) -> None:
    """End session `sid` and stop pushes to the devices it registered (`device_reason`, or
    `reason`, recorded on them)."""
    if sid:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == sid, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
        _end_devices(session, Device.session_id == sid, device_reason or reason, now)


# Why a sign-in session ended, as a token of it is told (`why_ended`), by the reason recorded
# on it. The app says each its own way: a worker told "expired" when an admin had reset the
# password signed in with the one they knew and read that it was wrong; switched off, they
# were never told why they could not sign in, the visits on the phone waiting for them.
ENDED_BECAUSE = {
    "logout": "signed-out",
    "signed-out-everywhere": "signed-out-everywhere",
    "password-changed": "password-changed",
    "password reset by an admin": "password-reset",
    "account switched off": "switched-off",
    "role changed": "role-changed",
    "refresh-token-reuse": "reused",
}


def why_ended(session: Session, sid: str | None) -> str | None:
    """Why sign-in session `sid` was ended (an `ENDED_BECAUSE` value), or None: live, gone,
    or ended for no reason a client is told."""
    if not sid:
        return None
    reason = session.scalar(
        select(AuthSession.revoked_reason).where(
            AuthSession.id == sid, AuthSession.revoked_at.is_not(None)
        )
    )
    return ENDED_BECAUSE.get(reason or "")


@dataclass(frozen=True)
class SignedOut:
    """What signing out everywhere ended: sign-in sessions, and devices no longer pushed to."""

    sessions_revoked: int
    devices_signed_out: int


def revoke_all(
    session: Session,
    user_id: int,
    reason: str,
    now: datetime,
    *,
    keep_devices_of: str | None = None,
    device_reason: str | None = None,
) -> SignedOut:
    """Revoke every live session of the user and stop pushes to their devices, but those of
    session `keep_devices_of` (the caller's, which follows it to its next session:
    `move_devices`); how many sessions and devices were ended.

    A phone lost: its owner changes the password, every other session ends, and the lost
    phone went on receiving every task's notice (Web Push carries the title)."""
    ended = session.scalars(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .returning(AuthSession.id)
    ).all()
    # Devices of no session (registered before sessions were recorded on them) go too.
    devices = Device.session_id.is_distinct_from(keep_devices_of) if keep_devices_of else true()
    ended_devices = _end_devices(
        session, and_(Device.user_id == user_id, devices), device_reason or reason, now
    )
    return SignedOut(len(ended), ended_devices)


def sign_out_everywhere(
    session: Session, user_id: int, token_version: int | None, now: datetime
) -> SignedOut:
    """End every sign-in of the account (a phone lost, the password still its owner's own):
    every session is revoked (no refresh), every token issued so far stops (the token version:
    tokens of no session too), nothing more is pushed to any of its devices, and the calendar
    link handed out so far stops (a credential like a token, on the lost phone too).

    The account is held first (`hold_account`), and a caller's token no longer the account's
    is refused (401): a password change waiting on it would otherwise go on once this committed,
    and hand the token this meant to end fresh ones."""
    from api.services import calendar  # at call time: calendar -> rosters -> auth -> sessions

    hold_account(session, user_id, token_version)
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(token_version=User.token_version + 1)
        .execution_options(synchronize_session="fetch")
    )
    calendar.revoke(session, session.get(User, user_id))
    return revoke_all(
        session, user_id, "signed-out-everywhere", now, device_reason="signed out everywhere"
    )


def move_devices(session: Session, user_id: int, old_sid: str | None, new_sid: str) -> None:
    """The caller's devices follow their sign-in to its new session (a password change)."""
    if old_sid:
        session.execute(
            update(Device)
            .where(Device.user_id == user_id, Device.session_id == old_sid, Device.active)
            .values(session_id=new_sid)
        )


def _end_devices(session: Session, where: ColumnElement[bool], reason: str, now: datetime) -> int:
    """Deactivate the active devices `where` picks; how many."""
    return session.execute(
        update(Device)
        .where(where, Device.active)
        .values(active=False, deactivated_at=now, deactivation_reason=reason[:200])
        .execution_options(synchronize_session=False)
    ).rowcount


def device_signed_in(device: str, now: str) -> str:
    """SQL text: the sign-in that registered device `device` (an alias of `devices`) is live
    at `now` (an SQL expression): neither revoked nor expired. A device registered before
    sessions were recorded on devices (migration 0038) names none and stays as it was.

    Revoking a session deactivates its devices (`revoke`), but a session also ends when its
    refresh token's days run out, with no request to act on: the phone's holder must sign in
    again to read anything, yet its lock screen went on showing every task's notice."""
    return f"""NOT EXISTS (
        SELECT 1 FROM auth_sessions s WHERE s.id = {device}.session_id
          AND (s.revoked_at IS NOT NULL OR s.expires_at <= {now}))"""


def device_session_live(now: datetime) -> ColumnElement[bool]:
    """`device_signed_in` for `Device` in an ORM statement, at `now`: the same test."""
    return ~exists().where(
        AuthSession.id == Device.session_id,
        or_(AuthSession.revoked_at.is_not(None), AuthSession.expires_at <= now),
    )


def hold_account(session: Session, user_id: int, token_version: int | None) -> None:
    """Lock the account's row until the transaction ends (FOR NO KEY UPDATE: foreign keys to
    it still pass) and refuse (401) a token whose account is, once locked, no longer active
    at the token's version (`token_version`; None: no token, the console).

    A password reset or a switch-off (`accounts`) holds the row while it ends the account's
    tokens, devices and calendar link. A request of a token it ends, checked before and
    waiting on that row, went on once it committed: it registered a device, or was handed
    the calendar link of the new version, after they had ended."""
    holder = session.execute(
        select(User.active, User.token_version)
        .where(User.id == user_id)
        .with_for_update(key_share=True)
    ).one_or_none()
    if token_version is not None and (
        holder is None or not holder.active or holder.token_version != token_version
    ):
        raise errors.Unauthorized("The token is no longer valid.")


def token_state(
    session: Session, jti: str | None, sid: str | None, user_id: int
) -> tuple[bool, User | None, ScopeGrids]:
    """Whether a token is dead, its user (None when gone) and the grids that user is assigned
    and leads, in one round trip: every authenticated request asks the first two, and every
    request of a worker or a grid leader the third (their scope), which cost a statement of
    its own (a leader's two) before the view.

    A token is dead when its jti was revoked (logout) or its session was. Tokens without a
    session (issued by tools, tests) are governed by jti and token version only."""
    query = _token_state_query(bool(jti), bool(sid))
    revoked, user, assigned, led = session.execute(
        query, {"jti": jti, "sid": sid, "user_id": user_id}
    ).one()
    return bool(revoked), user, ScopeGrids(user_id, tuple(assigned or ()), tuple(led or ()))


def _param(name: str, type_) -> BindParameter:
    """A parameter whose value comes with each execution (a statement compiled once, ahead)."""
    return bindparam(name, type_=type_, required=False)


def _token_dead(with_jti: bool, with_sid: bool) -> ColumnElement[bool]:
    """SQL: the token's jti was revoked (logout) or its sign-in session was; the parameters
    `jti` and `sid`. A token without a session (tools, tests) is governed by jti and token
    version only."""
    revoked_jti = exists().where(RevokedToken.jti == _param("jti", String)) if with_jti else false()
    live_session = (
        exists().where(AuthSession.id == _param("sid", String), AuthSession.revoked_at.is_(None))
        if with_sid
        else true()
    )
    return or_(revoked_jti, ~live_session)


def _assigned_grids(user_id) -> ColumnElement:
    """SQL: the ids of the grids the user is assigned (`user_grids`' key), ascending; NULL
    for none."""
    ordered = aggregate_order_by(user_grids.c.grid_id, user_grids.c.grid_id)
    return select(func.array_agg(ordered)).where(user_grids.c.user_id == user_id)


def _led_grids(user_id) -> ColumnElement:
    """SQL: the ids of the grids in service the user leads (`grids.leader_id`), ascending; NULL
    for none. A retired grid is led by nobody (one retired before migration 0064 may still
    name its leader)."""
    return select(func.array_agg(aggregate_order_by(Grid.id, Grid.id))).where(
        Grid.leader_id == user_id, Grid.retired_at.is_(None)
    )


@lru_cache(maxsize=4)
def _token_state_query(with_jti: bool, with_sid: bool) -> Select:
    """`token_state`'s statement, built once per shape (with or without a jti, a session):
    built for each request it cost more than its round trip (~0.4 ms of every request)."""
    user_id = bindparam("user_id")
    # Two index lookups (user_grids' key, grids.leader_id); NULL where none is found.
    assigned = _assigned_grids(user_id).scalar_subquery()
    led = _led_grids(user_id).scalar_subquery()
    # From a one-row subquery, LEFT JOIN the user: the answer stands when the user is gone.
    one = select(literal(1).label("one")).subquery("one")
    return (
        select(_token_dead(with_jti, with_sid), User, assigned, led)
        .select_from(one)
        .outerjoin(User, User.id == user_id)
    )


# --- the token check inside another statement ----------------------------------------------


@dataclass(frozen=True)
class Principal:
    """What a token's check established about its user: the facts their scope is made of
    (`Scope.for_user` reads these attributes of a user), and the token version it was
    checked against."""

    id: int
    role: str
    community_code: str | None
    district_code: str | None
    token_version: int
    grids: ScopeGrids

    @classmethod
    def of(cls, user: User, grids: ScopeGrids) -> Principal:
        return cls(
            user.id,
            user.role,
            user.community_code,
            user.district_code,
            user.token_version,
            ScopeGrids(user.id, tuple(sorted(grids.assigned)), tuple(sorted(grids.led))),
        )

    @cached_property
    def scope(self) -> Scope:
        return Scope.for_user(None, self, self.grids)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TokenCheck:
    """A request's token check left to the statement that answers it (`still_valid`): the
    token's jti and session, and the principal its last check established."""

    jti: str | None
    sid: str | None
    principal: Principal

    def params(self) -> dict:
        """The values of `still_valid`'s parameters."""
        p = self.principal
        return {
            "jti": self.jti,
            "sid": self.sid,
            "checked_user_id": p.id,
            "checked_token_version": p.token_version,
            "checked_role": p.role,
            "checked_community": p.community_code,
            "checked_district": p.district_code,
            "checked_assigned": list(p.grids.assigned),
            "checked_led": list(p.grids.led),
        }


@lru_cache(maxsize=16)
def still_valid(with_jti: bool, with_sid: bool, role: str) -> ColumnElement[bool]:
    """SQL: what `token_state` and the token's user lookup would find, and the scope they
    would give, are still those of `TokenCheck.principal` (`TokenCheck.params`): the token is
    not revoked, its user is active, at the token's version, with the role, community and
    district checked, and (a worker, a grid leader) the grids checked. A handful of index
    lookups, run once for the statement. `role` is the principal's: the grids it compares
    are those `Scope.for_user` reads for that role."""
    user_id = _param("checked_user_id", Integer)
    same_user = exists().where(
        User.id == user_id,
        User.active.is_(True),
        User.token_version == _param("checked_token_version", Integer),
        User.role == _param("checked_role", String),
        User.community_code.is_not_distinct_from(_param("checked_community", String)),
        User.district_code.is_not_distinct_from(_param("checked_district", String)),
    )
    conditions = [~_token_dead(with_jti, with_sid), same_user]
    empty = literal([], ARRAY(Integer))
    if role in ("worker", "grid_leader"):
        checked = _param("checked_assigned", ARRAY(Integer))
        conditions.append(
            func.coalesce(_assigned_grids(user_id).scalar_subquery(), empty) == checked
        )
    if role == "grid_leader":
        checked = _param("checked_led", ARRAY(Integer))
        conditions.append(func.coalesce(_led_grids(user_id).scalar_subquery(), empty) == checked)
    return and_(*conditions)


def purge_ended(
    session: Session, now: datetime, *, keep: timedelta = timedelta(days=ENDED_SESSION_DAYS)
) -> tuple[int, int]:
    """Delete what can no longer authenticate anything; (revoked jtis, sessions) removed.

    A revoked jti is needed only until its token expires (its `exp` refuses it after that). A
    session that expired or was revoked more than `keep` ago goes too; a token naming a session
    that no longer exists is refused (see `token_state`), so purging never revives one.
    """
    tokens = session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now)).rowcount
    cutoff = now - keep
    gone = or_(AuthSession.expires_at < cutoff, AuthSession.revoked_at < cutoff)
    # Their devices' link is set null as the sessions go, which reads as a device registered
    # before sessions were recorded, one that gets pushes: a phone whose sign-in expired
    # (revoked ones were ended with it) is ended first.
    _end_devices(
        session,
        Device.session_id.in_(select(AuthSession.id).where(gone)),
        "signed out: its sign-in expired",
        now,
    )
    ended = session.execute(delete(AuthSession).where(gone)).rowcount
    return tokens, ended
