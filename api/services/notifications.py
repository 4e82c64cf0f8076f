"""Notify users: one inbox row each and its push deliveries, in the transaction of the change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import Text, cast, func, literal, or_, select, text, update
from sqlalchemy.orm import Session

from api import errors
from api.models.notifications import NOTIFICATION_KINDS, PERSONAL_KINDS, XID8, Notification
from api.models.push import Delivery
from api.services.sessions import device_signed_in


def notify(
    session: Session,
    user_ids: Iterable[int],
    kind: str,
    title: str,
    body: str = "",
    *,
    data: Mapping[str, object] | None = None,
    urgent: bool = False,
    collapse_key: str | None = None,
    now: datetime | None = None,
) -> list[Notification]:
    """Record a notification for each user and queue a push delivery to each active device.

    Both are written in the caller's transaction, so a change and its notification commit or
    roll back together; the push worker sends after the commit. `data` values are
    stringified: push payloads carry strings only. `now` (default: the transaction's time)
    stamps the notification and makes its deliveries due.
    """
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    payload = {str(k): str(v) for k, v in (data or {}).items()}
    rows = [
        Notification(
            user_id=user_id,
            kind=kind,
            title=title,
            body=body,
            data=payload,
            urgent=urgent,
            collapse_key=collapse_key,
            **({"created_at": now} if now is not None else {}),
        )
        for user_id in dict.fromkeys(user_ids)
    ]
    session.add_all(rows)
    session.flush()
    enqueue_deliveries(session, [row.id for row in rows], now)
    return rows


def enqueue_deliveries(
    session: Session, notification_ids: list[int], now: datetime | None = None
) -> None:
    """One pending delivery per (notification, active device of its user whose sign-in is
    live: `sessions.device_signed_in`), urgent as its notification (claimed first)."""
    if not notification_ids:
        return
    session.execute(
        text(
            """
            INSERT INTO deliveries (notification_id, device_id, next_attempt_at, urgent)
            SELECT n.id, d.id, COALESCE(CAST(:now AS timestamptz), now()), n.urgent
            FROM notifications n JOIN devices d ON d.user_id = n.user_id AND d.active
            WHERE n.id = ANY(:ids) AND """
            + device_signed_in("d", "COALESCE(CAST(:now AS timestamptz), now())")
        ),
        {"ids": notification_ids, "now": now},
    )


# --- the inbox -------------------------------------------------------------------------------
def _cursor_now():
    """Where the next poll starts: the `xmin` of the snapshot the statement reads. Every
    transaction below it has finished, so that read, and any later one, holds everything they
    committed; whatever commits later comes from a transaction at or above it.

    Taken by the inbox's count, *before* its page is read: a later snapshot's `xmin` could pass
    a transaction that committed after the read, and its notifications would fall between two
    polls. (It was a statement of its own, a round trip on every poll.)"""
    return cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text)


def inbox(
    session: Session,
    user_id: int,
    *,
    since: datetime | None = None,
    cursor: int | None = None,
    unread: bool | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[Notification], int, int]:
    """A user's notifications, newest first.

    `since` keeps those created after an instant: it may miss one whose transaction began
    before that instant and committed after the client's last poll. `cursor` (the third value
    an earlier poll answered, `_cursor_now`) keeps those written by transactions that had not
    finished by then: every notification that poll could not see, and possibly a few it did
    (the client skips ids it holds). Answers (the page, the total, the next poll's cursor).

    A page after the first answers a cursor no later than the transaction of any notification
    ordered before it: one that arrived while the client paged goes on top, onto a page it had
    read, and a cursor taken after its commit (the later page's own) lost it for good, and
    `ack_all` with that cursor marked it read unseen. The next poll repeats those pages' rows
    of transactions at or above it (skipped by id).
    """
    stmt = select(Notification).where(Notification.user_id == user_id)
    if since is not None:
        stmt = stmt.where(Notification.created_at > since)
    if cursor is not None:
        stmt = stmt.where(Notification.xid >= cast(literal(str(cursor)), XID8))
    if unread is True:
        stmt = stmt.where(Notification.read_at.is_(None))
    elif unread is False:
        stmt = stmt.where(Notification.read_at.is_not(None))
    listed = stmt.subquery()
    order = (Notification.created_at.desc(), Notification.id.desc())
    if page == 1:  # the poll's own statements, as before (no row comes before this page)
        total, cursor_now = session.execute(
            select(func.count(), _cursor_now()).select_from(listed)
        ).one()
        rows = list(session.scalars(stmt.order_by(*order).limit(page_size)))
        return rows, total, int(cursor_now)
    total, cursor_now, lowest = session.execute(
        select(func.count(), _cursor_now(), cast(func.min(listed.c.xid), Text)).select_from(listed)
    ).one()
    # Each row with the lowest transaction of the rows before it, as this read orders them: the
    # first row's is that of every row on the pages before (read by this snapshot: a row
    # that arrived since the count is above `cursor_now` already).
    before = cast(func.min(Notification.xid).over(order_by=order, rows=(None, -1)), Text)
    found = session.execute(
        stmt.add_columns(before).order_by(*order).offset((page - 1) * page_size).limit(page_size)
    ).all()
    # Past the last page, every row comes before it (read by the count).
    preceding = found[0][1] if found else lowest
    cursor = int(cursor_now) if preceding is None else min(int(cursor_now), int(preceding))
    return [row for row, _ in found], total, cursor


def personal_subjects(rows: Iterable[Notification]) -> tuple[list[int], list[int]]:
    """The tasks and the households that the personal notices among `rows` (PERSONAL_KINDS)
    disclose: a task's title in its body, a household's address in a `household_moved_out`'s.
    Ids in order, each once."""
    tasks: dict[int, None] = {}
    households: dict[int, None] = {}
    for row in rows:
        if row.kind not in PERSONAL_KINDS:
            continue
        data = row.data or {}
        for key, named in (("task_id", tasks), ("household_id", households)):
            value = str(data.get(key, ""))
            if value.isdigit():
                named[int(value)] = None
    return list(tasks), list(households)


def unread_count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count(Notification.id)).where(
                Notification.user_id == user_id, Notification.read_at.is_(None)
            )
        )
        or 0
    )


def ack(session: Session, user_id: int, notification_id: int, now: datetime) -> Notification:
    """Mark one of the user's notifications read (the first read time is kept).

    The row is locked before its read time is looked at: two devices acknowledging at once
    each saw it unread, and the later one overwrote the first read time."""
    row = session.scalar(
        select(Notification)
        .where(Notification.id == notification_id, Notification.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise errors.NotFound(f"Notification {notification_id} not found.")
    if row.read_at is None:
        row.read_at = now
        session.flush()
        _drop_waiting_pushes(session, [row.id], now)
    return row


# Why a push waiting (quiet hours, a retry's wait) is not sent once its notice is read.
READ_BEFORE_IT_WENT = "read in the inbox before it went"


def _drop_waiting_pushes(session: Session, notification_ids: list[int], now: datetime) -> None:
    """The notices' pushes still waiting to go, and not in a round's hands (its lease live:
    that one goes, seconds from now), are not sent: read in the app, a notice held overnight
    by quiet hours still buzzed the phone at their end (the unread count 0), and one waiting
    out a retry after it was read. Marked as a push dropped for a reason is (`failed`, the
    reason), which counts against no device."""
    if not notification_ids:
        return
    session.execute(
        update(Delivery)
        .where(
            Delivery.notification_id.in_(notification_ids),
            Delivery.state == "pending",
            or_(Delivery.claimed_until.is_(None), Delivery.claimed_until <= now),
        )
        .values(state="failed", last_error=READ_BEFORE_IT_WENT, claim_id=None, claimed_until=None)
    )


def ack_all(session: Session, user_id: int, now: datetime, *, cursor: int | None = None) -> int:
    """Mark the user's unread notifications read; returns how many.

    With `cursor` (an inbox answer's, `_cursor_now`), only those that answer surely held: of
    transactions below it, and those older than the cursor column (`xid` NULL, before 0021),
    committed before any cursor was answered. One committed after that answer, or still
    uncommitted while it was read, stays unread: tapping "mark all read" acknowledged a notice
    that had arrived a second before and was never shown (on a phone without push the unread
    badge is the only notice). The rows `inbox(cursor=...)` answers again stay unread too (some
    that answer did show): never read unseen, at worst left unread until acknowledged again.
    Without `cursor`, every unread notification (as before the bound, for clients that do not
    send it)."""
    stmt = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if cursor is not None:
        stmt = stmt.where(
            or_(
                Notification.xid.is_(None),
                Notification.xid < cast(literal(str(cursor)), XID8),
            )
        )
    read = session.scalars(stmt.values(read_at=now).returning(Notification.id)).all()
    _drop_waiting_pushes(session, list(read), now)
    return len(read)
