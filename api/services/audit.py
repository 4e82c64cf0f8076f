"""Audit trail of personal-information access, and throttling of password guessing."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from api import errors
from api.models import AuditEntry, LoginAttempt

# The personal-information law asks for logs kept at least six months.
MIN_RETENTION = timedelta(days=183)


def record(
    session: Session,
    *,
    user_id: int | None,
    action: str,
    resource: str,
    resource_ids: Iterable[int],
    fields: Iterable[str],
    ip: str | None = None,
    path: str | None = None,
) -> AuditEntry | None:
    """One row per request touching personal data (nothing when no record was touched)."""
    ids = list(resource_ids)
    if not ids:
        return None
    entry = AuditEntry(
        user_id=user_id,
        action=action,
        resource=resource,
        resource_ids=ids,
        fields=list(fields),
        ip=ip,
        path=path[:300] if path else None,
    )
    session.add(entry)
    session.flush()
    return entry


def purge(session: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete audit rows older than `older_than`, never younger than six months."""
    if older_than < MIN_RETENTION:
        raise errors.Unprocessable(
            f"Audit entries are kept at least {MIN_RETENTION.days} days; "
            f"refusing to purge those younger than that."
        )
    cutoff = (now or datetime.now(UTC)) - older_than
    return session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff)).rowcount


def check_login_allowed(
    session: Session,
    username: str,
    ip: str | None,
    *,
    window: timedelta,
    max_per_user: int,
    max_per_ip: int,
    now: datetime | None = None,
) -> None:
    """429 when recent failures for this username or this address pass their limits."""
    since = (now or datetime.now(UTC)) - window
    failed = ~LoginAttempt.success & (LoginAttempt.at >= since)
    by_user = session.scalar(
        select(func.count(LoginAttempt.id)).where(failed, LoginAttempt.username == username)
    )
    by_ip = (
        session.scalar(select(func.count(LoginAttempt.id)).where(failed, LoginAttempt.ip == ip))
        if ip
        else 0
    )
    if by_user >= max_per_user or by_ip >= max_per_ip:
        raise errors.TooManyRequests(
            "Too many failed sign-ins; wait a few minutes and try again.",
            headers={"Retry-After": str(int(window.total_seconds()))},
        )


def record_login(
    session: Session, username: str, ip: str | None, success: bool, user_id: int | None
) -> None:
    session.add(LoginAttempt(username=username, ip=ip, success=success, user_id=user_id))
    session.flush()
