"""Workers' shifts as an iCalendar feed (RFC 5545) behind a signed, revocable feed token."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from api import errors
from api.models import CalendarFeed, Leave, Roster, Shift, User
from api.services import rosters

SALT = "gridwork.calendar-feed"
PAST_DAYS = 28  # the feed carries the last four weeks and everything ahead
PRODID = "-//gridwork//roster//EN"
VTIMEZONE = (
    "BEGIN:VTIMEZONE",
    "TZID:Asia/Shanghai",
    "X-LIC-LOCATION:Asia/Shanghai",
    "BEGIN:STANDARD",
    "DTSTART:19700101T000000",
    "TZOFFSETFROM:+0800",
    "TZOFFSETTO:+0800",
    "TZNAME:CST",
    "END:STANDARD",
    "END:VTIMEZONE",
)


def _serializer(secret: str, fallbacks: Sequence[str] = ()) -> URLSafeSerializer:
    """Signs with `secret`; verifies with it or any of `fallbacks` (previous keys, most recent
    first: itsdangerous takes its keys oldest first and signs with the last)."""
    return URLSafeSerializer([*reversed(fallbacks), secret], salt=SALT)


def _feed(session: Session, user_id: int) -> CalendarFeed:
    feed = session.get(CalendarFeed, user_id, with_for_update=True)
    if feed is None:
        feed = CalendarFeed(user_id=user_id, version=1)
        session.add(feed)
        session.flush()
    return feed


def feed_token(session: Session, user: User, secret: str) -> str:
    """The user's current feed token: their id and feed version, signed with the app secret."""
    feed = _feed(session, user.id)
    return _serializer(secret).dumps({"u": user.id, "v": feed.version})


def revoke(session: Session, user: User) -> None:
    """Invalidate every feed URL handed out so far; the next one carries a new version."""
    feed = _feed(session, user.id)
    feed.version += 1
    session.flush()


def verify(
    session: Session,
    worker_id: int,
    token: str | None,
    secret: str,
    fallbacks: Sequence[str] = (),
) -> User:
    """The worker the token opens the feed of; 403 for a bad, foreign or revoked token. A
    token signed with one of `fallbacks` (a rotated key's predecessors) still opens it."""
    refused = errors.Forbidden("This calendar link is not valid (revoked or mistyped).")
    try:
        payload = _serializer(secret, fallbacks).loads(token or "")
    except BadSignature as exc:
        raise refused from exc
    if not isinstance(payload, dict) or payload.get("u") != worker_id:
        raise refused
    feed = session.get(CalendarFeed, worker_id)
    user = session.get(User, worker_id)
    if feed is None or feed.version != payload.get("v") or user is None or not user.active:
        raise refused
    return user


def escape(text: str) -> str:
    """TEXT value escaping (RFC 5545 3.3.11)."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line into chunks of at most 75 octets, never splitting a UTF-8 character."""
    out, current, size = [], "", 0
    for ch in line:
        width = len(ch.encode())
        limit = 75 if not out else 74  # continuation lines start with one space
        if size + width > limit:
            out.append(current)
            current, size = "", 0
        current += ch
        size += width
    out.append(current)
    return "\r\n ".join(out)


def _local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def worker_shifts(session: Session, worker: User, today) -> list[Shift]:
    return list(
        session.scalars(
            select(Shift)
            .join(Roster, Roster.id == Shift.roster_id)
            .where(
                Shift.worker_id == worker.id,
                Roster.status == "published",
                Shift.date >= today - timedelta(days=PAST_DAYS),
            )
            .options(joinedload(Shift.grid), joinedload(Shift.roster))
            .order_by(Shift.date)
        )
    )


def _approved_leave_days(
    session: Session, worker: User, shifts: list[Shift]
) -> dict[date, datetime]:
    """The days of the shifts the worker has approved leave on, each with when it was decided
    (one statement for the feed's whole span)."""
    if not shifts:
        return {}
    first, last = shifts[0].date, shifts[-1].date
    leaves = session.scalars(
        select(Leave).where(
            Leave.worker_id == worker.id,
            Leave.status == "approved",
            Leave.start_date <= last,
            Leave.end_date >= first,
        )
    )
    days: dict[date, datetime] = {}
    for leave in leaves:
        decided = leave.decided_at or leave.created_at
        for shift in shifts:
            if leave.start_date <= shift.date <= leave.end_date:
                days[shift.date] = max(days.get(shift.date, decided), decided)
    return days


def render(session: Session, worker: User, shifts: list[Shift], host: str) -> str:
    """The VCALENDAR text, CRLF line ends, folded; UIDs stable per worker and day."""
    settings = rosters.settings_for(session, {s.roster.community_code for s in shifts})
    relieved = {
        u.id: u.display_name
        for u in session.scalars(
            select(User).where(User.id.in_({s.relief_for_id for s in shifts if s.relief_for_id}))
        )
    }
    # Leave approved after the roster was published leaves its shifts naming the worker (the
    # leaders see them uncovered): the feed cancels them, stamped with the decision.
    away = _approved_leave_days(session, worker, shifts)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape(f'排班 · {worker.display_name}')}",
        "X-WR-TIMEZONE:Asia/Shanghai",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        *VTIMEZONE,
    ]
    for shift in shifts:
        starts, ends = rosters.shift_hours(settings[shift.roster.community_code], shift)
        # In the workers' language, as the app names their posts (web/src/app.js postA, postB).
        if shift.post == "A":
            summary = "A岗 · 社区服务大厅窗口"
            if shift.slot_start is not None:  # staggered hours: which of the day's slots
                summary += f" · {starts:%H:%M}–{ends:%H:%M}"
            description = "社区服务大厅窗口接待来访居民。"
            location = "社区服务大厅"
        else:
            summary = f"B岗 · 入户走访 · 网格 {shift.grid.code} {shift.grid.name}"
            description = "网格内入户走访。"
            if shift.relief_for_id:
                description += f"\n顶岗：代{relieved.get(shift.relief_for_id, '')}走访。"
            location = f"网格 {shift.grid.code}, {shift.grid.name}"
        changed, status, transparency = shift.updated_at, [], "TRANSP:OPAQUE"
        if shift.date in away:
            changed = max(changed, away[shift.date])
            summary = f"（请假）{summary}"
            description = f"您这天请假，此班不再由您上岗。\n{description}"
            status, transparency = ["STATUS:CANCELLED"], "TRANSP:TRANSPARENT"
        lines += [
            "BEGIN:VEVENT",
            f"UID:shift-{shift.roster.community_code}-{shift.date:%Y%m%d}-{worker.id}@{host}",
            f"DTSTAMP:{_utc(changed)}",
            f"LAST-MODIFIED:{_utc(changed)}",
            f"DTSTART;TZID=Asia/Shanghai:{_local(starts)}",
            f"DTEND;TZID=Asia/Shanghai:{_local(ends)}",
            f"SUMMARY:{escape(summary)}",
            f"DESCRIPTION:{escape(description)}",
            f"LOCATION:{escape(location)}",
            f"CATEGORIES:{shift.post}-post",
            *status,
            transparency,
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
