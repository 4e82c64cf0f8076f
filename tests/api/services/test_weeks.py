"""ISO weeks in Asia/Shanghai."""

from datetime import UTC, date, datetime

import pytest

from api import errors
from api.services.weeks import parse_week, shift_week, week_bounds, week_dates, week_of


def test_week_bounds_are_shanghai_midnights_in_utc():
    start, end = week_bounds("2026-W47")
    assert start == datetime(2026, 11, 15, 16, 0, tzinfo=UTC)
    assert (end - start).days == 7


def test_an_instant_late_sunday_utc_is_already_monday_in_shanghai():
    assert week_of(datetime(2026, 11, 22, 17, 0, tzinfo=UTC)) == "2026-W48"


def test_week_dates_run_monday_to_sunday():
    days = week_dates("2026-W48")
    assert days[0] == date(2026, 11, 23) and days[-1] == date(2026, 11, 29)


def test_shift_week_crosses_years():
    assert shift_week("2026-W01", -1) == "2025-W52"


@pytest.mark.parametrize("bad", ["2026-W54", "2026W47", "", "2026-W00", "2025-W53"])
def test_bad_weeks_are_unprocessable(bad):
    with pytest.raises(errors.Unprocessable):
        parse_week(bad)


@pytest.mark.parametrize("edge", ["9999-W52", "0001-W01", "1999-W52", "3000-W01"])
def test_a_week_beyond_the_served_years_is_422_on_the_week(edge):
    with pytest.raises(errors.Unprocessable) as refused:
        parse_week(edge)
    assert refused.value.extra == {"field": "week"}
    assert edge in refused.value.detail and "2000 to 2999" in refused.value.detail


@pytest.mark.parametrize("week", ["2000-W01", "2999-W52"])
def test_the_first_and_last_served_weeks_have_bounds(week):
    start, end = week_bounds(week)
    assert (end - start).days == 7
    assert shift_week(week, -7) and shift_week(week, 7)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        week_of(datetime(2026, 11, 23, 8, 0))
