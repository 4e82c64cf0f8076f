"""The audit log of reads and changes of residents' personal information, and login attempts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import ARRAY, INET, UUID
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base


class AuditEntry(Base):
    """Who read or changed what personal data, when, from where (kept at least 6 months)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(20))
    resource: Mapped[str] = mapped_column(String(40))
    resource_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), default=list)
    # Records keyed by UUID (visits): the same list, for them.
    resource_uuids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), default=list, server_default="{}"
    )
    fields: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    ip: Mapped[str | None] = mapped_column(INET)
    path: Mapped[str | None] = mapped_column(String(300))


# Newest first, paged on from the last entry read: `ORDER BY at DESC, id DESC` and the cursor
# `(at, id) < (:at, :id)` are one backward range scan of it (migration 0056).
Index("ix_audit_log_at_id", AuditEntry.at, AuditEntry.id)
Index("ix_audit_log_user_at", AuditEntry.user_id, AuditEntry.at)
# "Who read this resident's record?": the question the log exists to answer.
Index("ix_audit_log_resource_ids", AuditEntry.resource_ids, postgresql_using="gin")


# What a login attempt was: a sign-in (POST /auth/token), or a guess at the current password
# in a password change (POST /auth/password), each throttled by a count of its own.
SIGN_IN = "sign-in"
PASSWORD_CHANGE = "password-change"


class LoginAttempt(Base):
    """Sign-in attempts and wrong current passwords in a password change, counted to slow down
    password guessing across every API process."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(INET)
    success: Mapped[bool] = mapped_column(Boolean)
    user_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20), default=SIGN_IN, server_default=SIGN_IN)
    # A password change's: the sign-in session it was made in (None: a token of no session).
    session_id: Mapped[str | None] = mapped_column(String(36))


Index("ix_login_attempts_username_at", LoginAttempt.username, LoginAttempt.at)
Index("ix_login_attempts_ip_at", LoginAttempt.ip, LoginAttempt.at)
Index(
    "ix_login_attempts_password_change",
    LoginAttempt.user_id,
    LoginAttempt.at,
    postgresql_where=LoginAttempt.kind == PASSWORD_CHANGE,
)
