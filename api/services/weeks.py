"""ISO weeks as the community speaks them: "2026-W47", in Asia/Shanghai, stored as UTC bounds."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from api import clock, errors

LOCAL = ZoneInfo("Asia/Shanghai")
# ASCII digits, the whole string: `$` alone also matches before a final newline, and `\d` also
# matches other scripts' digits ("２０２６"), which int() reads but the database's CHECK refuses.
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
# The years a week may fall in. Four digits alone admit 0001 and 9999, whose weeks sit at the
# edge of the calendar: turning them into Shanghai midnights in UTC (or shifting them a few
# weeks) overflows `date`. Nothing this service plans or reports on lies outside this range.
MIN_YEAR, MAX_YEAR = 2000, 2999


# The first and last weeks served, as `parse_week` takes them.
FIRST_WEEK = f"{MIN_YEAR}-W01"
LAST_WEEK = f"{MAX_YEAR}-W{date(MAX_YEAR, 12, 28).isocalendar().week:02d}"


def in_served_weeks(moment: datetime) -> bool:
    """Whether an aware instant's week (`week_of`: its ISO week in Asia/Shanghai) is one of
    those served, FIRST_WEEK to LAST_WEEK. Its year in its own offset does not tell:
    2000-01-01T00:00+08:00 is in 1999-W52, 2999-12-31T23:00-12:00 in 3000-W01."""
    # A year's margin before converting: at the calendar's ends (0001, 9999) it overflows.
    if not MIN_YEAR - 1 <= moment.year <= MAX_YEAR + 1:
        return False
    return MIN_YEAR <= moment.astimezone(LOCAL).isocalendar().year <= MAX_YEAR


def parse_week(week: str) -> tuple[int, int]:
    """("2026-W47") -> (2026, 47); a 422 problem for anything that is not a real ISO week.

    Weeks of years outside MIN_YEAR..MAX_YEAR are refused too (a 422 on the `week` field).
    """
    match = _WEEK.fullmatch(week) if isinstance(week, str) else None
    if match:
        year, number = int(match[1]), int(match[2])
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise errors.Unprocessable(
                f"{week!r} is outside the weeks served: years {MIN_YEAR} to {MAX_YEAR}.",
                field="week",
            )
        try:
            date.fromisocalendar(year, number, 1)
            return year, number
        except ValueError:
            pass
    raise errors.Unprocessable(f"{week!r} is not an ISO week like 2026-W47.")


def week_dates(week: str) -> list[date]:
    """Monday to Sunday of the week."""
    year, number = parse_week(week)
    monday = date.fromisocalendar(year, number, 1)
    return [monday + timedelta(days=i) for i in range(7)]


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) Asia/Shanghai, as aware UTC datetimes."""
    monday = week_dates(week)[0]
    start = datetime.combine(monday, time(0), LOCAL)
    return start.astimezone(UTC), (start + timedelta(days=7)).astimezone(UTC)


def period(
    start: datetime | None, end: datetime | None, week: str | None
) -> tuple[datetime, datetime]:
    """[start, end): the ISO week's bounds when a week is given, else start and end as given
    (the schemas ask for one or the other)."""
    if week:
        return week_bounds(week)
    assert start is not None and end is not None
    return start, end


def week_of(moment: datetime | date) -> str:
    """The ISO week of an instant (read in Asia/Shanghai) or of a calendar date."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("week_of needs an aware datetime")
        moment = moment.astimezone(LOCAL).date()
    year, number, _ = moment.isocalendar()
    return f"{year}-W{number:02d}"


def shift_week(week: str, delta: int) -> str:
    """The week `delta` weeks after (negative: before) `week`."""
    return week_of(week_dates(week)[0] + timedelta(weeks=delta))


def current_week(now: datetime | None = None) -> str:
    return week_of(now or clock.now())
