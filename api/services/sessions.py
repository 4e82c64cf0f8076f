"""Sign-in sessions: open at sign-in, rotate the refresh token, detect its replay, revoke."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import exists, false, or_, select, true, update
from sqlalchemy.orm import Session

from api.models import AuthSession, RevokedToken


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
        return False
    row.refresh_jti, row.refreshed_at, row.expires_at = new_jti, now, expires_at
    session.flush()
    return True


def revoke(session: Session, sid: str | None, reason: str, now: datetime) -> None:
    if sid:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == sid, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )


def revoke_others(
    session: Session, user_id: int, keep: str | None, reason: str, now: datetime
) -> int:
    """Revoke every live session of the user but `keep`; how many were revoked."""
    stmt = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep:
        stmt = stmt.where(AuthSession.id != keep)
    return session.execute(stmt.values(revoked_at=now, revoked_reason=reason)).rowcount


def token_revoked(session: Session, jti: str | None, sid: str | None) -> bool:
    """A token is dead when its jti was revoked (logout) or its session was: one round trip,
    as every authenticated request asks it. Tokens without a session (issued by tools, tests)
    are governed by jti and token version only."""
    if not jti and not sid:
        return False
    revoked_jti = exists().where(RevokedToken.jti == jti) if jti else false()
    live_session = (
        exists().where(AuthSession.id == sid, AuthSession.revoked_at.is_(None)) if sid else true()
    )
    return bool(session.scalar(select(or_(revoked_jti, ~live_session))))
