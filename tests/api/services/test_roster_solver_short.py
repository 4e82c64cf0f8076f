"""Short-staffed weeks: the solver rosters the best it can and says what it could not meet."""

from __future__ import annotations

from collections import Counter

import pytest

from api.services.roster_solver import (
    Infeasible,
    RosterInput,
    RosterRules,
    solve_week,
)
from tests.api.services.test_roster_solver import (
    ALL_SIZES,
    EVERY_DAY,
    FRI,
    MON,
    THU,
    TUE,
    WED,
    WEEK,
    community,
    grid,
    standard_input,
)


def window_staff(result) -> Counter:
    return Counter(s.date for s in result.shifts if s.post == "A")


def test_five_workers_four_grids_and_a_window_of_three_get_a_roster_with_the_grids_short_said():
    """The office of five must open its hall (3 at the window every day): 2 hands a day are
    left for 4 grids asking 3 B-post days each, 10 of the 12. The week is rostered, the window
    staffed every day, and the 2 missing B-post days are listed by grid."""
    workers, grids = community(5, 4)
    inp = RosterInput(WEEK, workers, grids, RosterRules(a_min=3, a_max=4, min_b_days_per_grid=3))
    result = solve_week(inp, short_staffed=True)

    assert window_staff(result) == {d: 3 for d in (MON, TUE, WED, THU, FRI)}
    assert not result.complete
    assert {s.rule for s in result.shortfalls} == {"grid"}
    assert sum(s.short for s in result.shortfalls) == 2
    for s in result.shortfalls:
        got = len({x.date for x in result.shifts if x.grid_code == s.grid_code})
        assert (s.required, s.rostered, s.short) == (3, got, 3 - got)
        assert s.why.startswith(f"Grid {s.grid_code}: {got} B-post day")
        assert "minimum is 3" in s.why
    # The rule named as the 422 named it before.
    with pytest.raises(Infeasible) as caught:
        solve_week(inp)
    assert result.binding == caught.value.binding
    assert list(result.details) == caught.value.details


def test_too_few_in_on_tuesday_puts_everyone_in_at_the_window_and_says_by_how_many():
    workers, grids = community(8, 6)
    away = frozenset((w, TUE) for w in range(1, 7))
    result = solve_week(RosterInput(WEEK, workers, grids, unavailable=away), short_staffed=True)

    assert window_staff(result)[TUE] == 2
    assert not any((s.worker_id, s.date) in away for s in result.shifts)  # leave stays hard
    window = [s for s in result.shortfalls if s.rule == "window"]
    assert [(s.date, s.required, s.rostered, s.short) for s in window] == [(TUE, 3, 2, 1)]
    assert window[0].why.startswith(
        "Tuesday 2026-11-24: 2 workers available, 3 required at the window (away: Worker 1 (#1)"
    )
    assert result.binding == "Tuesday 2026-11-24: 2 workers available, 3 required at the window"


def test_the_window_is_staffed_before_any_grid_gets_its_b_post_days():
    """Four workers, one away Monday to Thursday: the three left hold the window those days and
    the grids go short, rather than a grid visited and the hall short."""
    workers, grids = community(4, 4)
    rules = RosterRules(a_min=3, a_max=3, min_b_days_per_grid=2)
    away = frozenset((1, d) for d in (MON, TUE, WED, THU))
    result = solve_week(RosterInput(WEEK, workers, grids, rules, away), short_staffed=True)

    assert window_staff(result) == {d: 3 for d in (MON, TUE, WED, THU, FRI)}
    assert not [s for s in result.shortfalls if s.rule == "window"]
    assert sum(s.short for s in result.shortfalls if s.rule == "grid") == 8 - 1


def test_the_weekly_rest_stays_hard_and_leaves_the_window_short_instead():
    """Three workers, a hall open all week, three at the window: the law's rest day is kept
    (six days each), so the window is short three worker-days, said by day."""
    workers, grids = community(3, 1)
    rules = RosterRules(working_days=EVERY_DAY, a_min=3, a_max=3, min_b_days_per_grid=0)
    result = solve_week(RosterInput(WEEK, workers, grids, rules), short_staffed=True)

    worked = Counter(s.worker_id for s in result.shifts)
    assert max(worked.values()) == 6
    window = [s for s in result.shortfalls if s.rule == "window"]
    assert sum(s.short for s in window) == 3
    assert all("weekly rest" in s.why for s in window)
    assert result.binding.startswith("Weekly rest: 3 workers resting at least 1 day a week")


def test_a_grid_its_one_worker_cannot_reach_is_short_and_named():
    workers, grids = community(4, 1)
    rules = RosterRules(working_days=EVERY_DAY, a_min=3, a_max=4, min_b_days_per_grid=4)
    result = solve_week(RosterInput(WEEK, workers, grids, rules), short_staffed=True)

    assert all(n == 3 for n in window_staff(result).values()) and len(window_staff(result)) == 7
    (short,) = result.shortfalls
    assert (short.rule, short.grid_code, short.required) == ("grid", grid(1), 4)
    assert short.short == 4 - short.rostered > 0


@ALL_SIZES
def test_a_week_that_can_be_met_is_the_same_roster_with_short_staffing_allowed(size):
    inp = standard_input(size)
    strict, lenient = solve_week(inp), solve_week(inp, short_staffed=True)
    assert lenient.shifts == strict.shifts
    assert lenient.pairs == strict.pairs
    assert lenient.complete and lenient.shortfalls == () and lenient.binding is None


def test_a_short_week_is_rostered_the_same_way_every_time():
    workers, grids = community(5, 4)
    inp = RosterInput(WEEK, workers, grids)
    first, second = (solve_week(inp, short_staffed=True) for _ in range(2))
    assert first.shifts == second.shifts and first.shortfalls == second.shortfalls


def test_a_week_nobody_can_work_is_rostered_empty_with_every_day_short():
    workers, grids = community(3, 2)
    away = frozenset((w.id, d) for w in workers for d in (MON, TUE, WED, THU, FRI))
    result = solve_week(RosterInput(WEEK, workers, grids, unavailable=away), short_staffed=True)
    assert result.shifts == ()
    window = {s.date: s.short for s in result.shortfalls if s.rule == "window"}
    assert window == {d: 3 for d in (MON, TUE, WED, THU, FRI)}
