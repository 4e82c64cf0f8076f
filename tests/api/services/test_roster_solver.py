"""The A-post / B-post roster solver: each scheduling rule on generated communities, no database."""

from __future__ import annotations

import ast
import dataclasses
import functools
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from api.services import roster_solver
from api.services.roster_solver import (
    Infeasible,
    RosterInput,
    RosterResult,
    RosterRules,
    Worker,
    solve_week,
    week_dates,
)

WEEK = "2026-W48"  # Monday 2026-11-23 .. Sunday 2026-11-29
MON, TUE, WED, THU, FRI, SAT, SUN = week_dates(WEEK)
MONTH = ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]

# (workers, grids, rules): a three-worker community keeps one at the window, the rest the default.
SIZES = {
    "3-workers": (3, 3, RosterRules(a_min=1, a_max=1)),
    "8-workers": (8, 6, RosterRules()),
    "20-workers": (20, 8, RosterRules()),
    "40-workers": (40, 14, RosterRules()),
}
ALL_SIZES = pytest.mark.parametrize("size", list(SIZES))
PAIRED_SIZES = pytest.mark.parametrize("size", ["8-workers", "20-workers", "40-workers"])


def grid(i: int) -> str:
    """A 15-digit grid code: district 110101, street 001, community 001, grid sequence i."""
    return f"110101001001{i:03d}"


def community(n_workers: int, n_grids: int, gridless: int = 0) -> tuple[tuple[Worker, ...], tuple]:
    """Workers dealt round-robin onto grids; the last `gridless` workers hold no grid."""
    grids = tuple(grid(i) for i in range(1, n_grids + 1))
    workers = tuple(
        Worker(i, f"Worker {i}", () if i > n_workers - gridless else (grids[(i - 1) % n_grids],))
        for i in range(1, n_workers + 1)
    )
    return workers, grids


def holders(workers: tuple[Worker, ...], code: str) -> list[int]:
    return [w.id for w in workers if code in w.grid_codes]


def standard_input(size: str, week: str = WEEK) -> RosterInput:
    """A realistic week: leave for a whole grid's workers early in the week, scattered days off."""
    n, n_grids, rules = SIZES[size]
    workers, grids = community(n, n_grids)
    days = week_dates(week)
    away: set[tuple[int, date]] = {(w.id, days[6]) for w in workers}  # Sunday rest, not worked
    if n <= 3:
        away.add((3, days[0]))
    else:
        away |= {(w, d) for w in holders(workers, grids[2]) for d in days[:3]}
        away |= {(w.id, days[(w.id // 5) % 5]) for w in workers if w.id % 5 == 0}
    return RosterInput(week, workers, grids, rules, frozenset(away))


@functools.cache
def standard(size: str) -> RosterResult:
    return solve_week(standard_input(size))


@functools.cache
def four_weeks(size: str, leave_worker: int | None = None) -> tuple[RosterResult, ...]:
    """Four consecutive weeks, each fed the previous weeks' A-days and the last week's pairs."""
    n, n_grids, rules = SIZES[size]
    workers, grids = community(n, n_grids)
    results: list[RosterResult] = []
    for k, week in enumerate(MONTH):
        previous = results[-3:]
        history = {w.id: sum(r.a_days[w.id] for r in previous) for w in workers}
        recent = frozenset(frozenset(p) for p in results[-1].pairs) if results else frozenset()
        away = frozenset()
        if leave_worker is not None and k == 1:
            away = frozenset((leave_worker, d) for d in week_dates(week))
        inp = RosterInput(week, workers, grids, rules, away, history, recent)
        results.append(solve_week(inp))
    return tuple(results)


def posts_by_worker_day(result: RosterResult) -> Counter:
    return Counter((s.worker_id, s.date) for s in result.shifts)


# ---------------------------------------------------------------------------------------------
# ISO weeks


def test_week_dates_runs_monday_to_sunday_of_the_iso_week():
    assert week_dates("2026-W48") == [date(2026, 11, d) for d in range(23, 30)]
    assert week_dates("2026-W01")[0] == date(2025, 12, 29)
    assert week_dates("2026-W53")[6] == date(2027, 1, 3)


@pytest.mark.parametrize("bad", ["2026-48", "2026W48", "2026-W00", "2025-W53", "2026-W5", "", " "])
def test_week_dates_rejects_a_bad_week_string(bad):
    with pytest.raises(ValueError):
        week_dates(bad)


def test_solve_week_rejects_a_bad_week_string():
    workers, grids = community(8, 6)
    with pytest.raises(ValueError):
        solve_week(RosterInput("2026-48", workers, grids))


# ---------------------------------------------------------------------------------------------
# The hard rules


@ALL_SIZES
def test_every_working_day_has_window_staff_within_min_and_max(size):
    rules = SIZES[size][2]
    result = standard(size)
    window = Counter(s.date for s in result.shifts if s.post == "A")
    assert sorted(window) == [MON, TUE, WED, THU, FRI]
    assert all(rules.a_min <= n <= rules.a_max for n in window.values()), window


@ALL_SIZES
def test_every_grid_gets_at_least_the_minimum_b_post_days(size):
    inp = standard_input(size)
    result = standard(size)
    b_days = {g: {s.date for s in result.shifts if s.grid_code == g} for g in inp.grids}
    assert all(len(days) >= inp.rules.min_b_days_per_grid for days in b_days.values()), b_days
    assert result.stats["grid_b_days"] == {g: len(days) for g, days in b_days.items()}


@ALL_SIZES
def test_nobody_holds_two_posts_on_one_day(size):
    assert max(posts_by_worker_day(standard(size)).values()) == 1


@ALL_SIZES
def test_no_shift_on_leave_rest_or_non_working_days(size):
    inp = standard_input(size)
    result = standard(size)
    assert not [s for s in result.shifts if (s.worker_id, s.date) in inp.unavailable]
    assert not [s for s in result.shifts if s.date in (SAT, SUN)]


@ALL_SIZES
def test_b_posts_stay_in_the_workers_own_grid_unless_relieving(size):
    inp = standard_input(size)
    own = {w.id: w.grid_codes for w in inp.workers}
    for s in standard(size).shifts:
        if s.post == "A":
            assert s.grid_code is None and s.relief_for is None
        elif s.relief_for is None:
            assert s.grid_code in own[s.worker_id]
        else:
            assert s.grid_code in own[s.relief_for] and s.grid_code not in own[s.worker_id]
            assert (s.relief_for, s.date) in inp.unavailable


@ALL_SIZES
def test_every_available_worker_holds_a_post_every_working_day(size):
    inp = standard_input(size)
    result = standard(size)
    posts = posts_by_worker_day(result)
    for w in inp.workers:
        for d in (MON, TUE, WED, THU, FRI):
            assert posts[w.id, d] == (0 if (w.id, d) in inp.unavailable else 1), (w.id, d)
    assert result.stats["idle_worker_days"] == 0


def test_a_worker_without_a_grid_holds_the_window_rather_than_idle():
    workers, grids = community(10, 6, gridless=2)
    result = solve_week(RosterInput(WEEK, workers, grids))
    window = {(s.worker_id, s.date) for s in result.shifts if s.post == "A"}
    assert all((w, d) in window for w in (9, 10) for d in (MON, TUE, WED, THU, FRI))
    assert result.stats["idle_worker_days"] == 0


def test_workers_without_a_grid_idle_only_when_the_window_is_full():
    workers, grids = community(11, 6, gridless=5)  # five floaters, a window of at most four
    result = solve_week(RosterInput(WEEK, workers, grids))
    window = Counter(s.date for s in result.shifts if s.post == "A")
    assert set(window.values()) == {4}
    assert result.stats["idle_worker_days"] == 5  # one floater a day has nothing to do


def test_custom_working_days_are_the_only_days_rostered():
    workers, grids = community(8, 6)
    rules = RosterRules(working_days=(2, 3, 4, 5, 6))  # Tuesday to Saturday
    result = solve_week(RosterInput(WEEK, workers, grids, rules))
    assert {s.date for s in result.shifts} == {TUE, WED, THU, FRI, SAT}


# ---------------------------------------------------------------------------------------------
# Relief


def _grid3_away_mon_to_wed() -> tuple[RosterInput, RosterResult]:
    workers, grids = community(8, 6)  # worker 3 alone holds grid 3
    away = frozenset((3, d) for d in (MON, TUE, WED))
    inp = RosterInput(WEEK, workers, grids, unavailable=away)
    return inp, solve_week(inp)


def test_a_reliever_is_named_for_a_grid_whose_worker_is_on_leave():
    inp, result = _grid3_away_mon_to_wed()
    grid3 = [s for s in result.shifts if s.grid_code == grid(3)]
    relief = [s for s in grid3 if s.relief_for is not None]
    assert len({s.date for s in grid3}) >= inp.rules.min_b_days_per_grid
    assert relief and all(s.relief_for == 3 and s.worker_id != 3 for s in relief)
    assert {s.date for s in relief} <= {MON, TUE, WED}
    assert result.stats["relief_shifts"] == len(relief)


def test_the_reliever_is_a_partner_of_the_away_workers_when_free():
    # Two workers hold each grid, so a partner can leave their own grid without leaving it empty.
    workers, grids = community(8, 4)
    away = frozenset((w, d) for w in holders(workers, grid(3)) for d in (MON, TUE, WED))
    result = solve_week(RosterInput(WEEK, workers, grids, unavailable=away))
    partners = {p for group in result.pairs if {3, 7} & set(group) for p in group} - {3, 7}
    relievers = {s.worker_id for s in result.shifts if s.relief_for in (3, 7)}
    assert relievers and relievers <= partners


def test_relief_covers_only_the_missing_days():
    _, result = _grid3_away_mon_to_wed()
    # Worker 3 is back Thursday and Friday: one relief day makes the minimum of three.
    assert len([s for s in result.shifts if s.relief_for == 3]) == 1


def test_a_grid_nobody_holds_is_visited_by_relief():
    workers, grids = community(8, 6)
    grids = (*grids, grid(7))
    result = solve_week(RosterInput(WEEK, workers, grids))
    vacant = [s for s in result.shifts if s.grid_code == grid(7)]
    assert len({s.date for s in vacant}) >= 3
    assert all(s.relief_for is None for s in vacant)


# ---------------------------------------------------------------------------------------------
# Infeasible weeks name the binding rule


def test_too_many_on_leave_on_tuesday_names_tuesday_with_the_numbers():
    workers, grids = community(8, 6)
    away = frozenset((w, TUE) for w in range(1, 7))
    with pytest.raises(Infeasible) as caught:
        solve_week(RosterInput(WEEK, workers, grids, unavailable=away))
    assert caught.value.binding == (
        "Tuesday 2026-11-24: 2 workers available, 3 required at the window"
    )
    assert str(caught.value) == caught.value.binding
    assert "Worker 1 (#1)" in caught.value.details[0]


def test_a_window_that_takes_everyone_leaves_the_grids_short():
    workers, grids = community(4, 4)
    rules = RosterRules(a_min=3, a_max=3, min_b_days_per_grid=2)
    away = frozenset((1, d) for d in (MON, TUE, WED, THU))
    with pytest.raises(Infeasible) as caught:
        solve_week(RosterInput(WEEK, workers, grids, rules, away))
    binding = caught.value.binding
    assert "No worker is free for B-posts on Mon–Thu" in binding
    assert "at most 1 B-post day, minimum is 2" in binding


def test_a_day_every_grid_needs_but_cannot_staff_is_named():
    workers, grids = community(5, 5)
    rules = RosterRules(a_min=3, a_max=3, min_b_days_per_grid=2)
    away = frozenset({(1, MON), (2, MON), (1, TUE), (2, TUE), (1, WED), (2, WED)})
    with pytest.raises(Infeasible) as caught:
        solve_week(RosterInput(WEEK, workers, grids, rules, away))
    assert caught.value.binding == (
        "Thursday 2026-11-26: 5 workers available, 3 required at the window and all 5 grids"
        " need their B-post that day"
    )


def test_too_few_b_post_days_in_the_week_gives_the_totals():
    workers, grids = community(4, 4)
    rules = RosterRules(a_min=2, a_max=3, min_b_days_per_grid=3)
    away = frozenset((1, d) for d in (MON, TUE, WED, THU))
    with pytest.raises(Infeasible) as caught:
        solve_week(RosterInput(WEEK, workers, grids, rules, away))
    assert caught.value.binding == (
        "Week 2026-W48: 6 B-post days can be staffed after the window, the 4 grids need 12 (3 each)"
    )
    assert len(caught.value.details) == 5


def test_infeasible_grid_coverage_names_the_grid():
    # One worker holds two grids that each need three days: the pre-checks pass, the model
    # does not, and the unsatisfiable core names the grid.
    workers = (
        Worker(1, "Zhang San", (grid(1), grid(2))),
        Worker(2, "Li Si", (grid(3),)),
        Worker(3, "Wang Wu"),
    )
    rules = RosterRules(a_min=1, a_max=2, min_b_days_per_grid=3)
    with pytest.raises(Infeasible) as caught:
        solve_week(RosterInput(WEEK, workers, (grid(1), grid(2), grid(3)), rules))
    assert caught.value.binding == (
        f"Grid {grid(1)} gets at most 2 B-post days, minimum is 3"
        f" (Zhang San (#1) also holds {grid(2)} and visits one grid a day)"
    )
    assert grid(3) not in " ".join(caught.value.details)  # grid 3 is not part of the conflict


def test_more_b_post_days_than_working_days_is_infeasible():
    workers, grids = community(8, 6)
    rules = RosterRules(working_days=(1, 2), a_min=1, a_max=2, min_b_days_per_grid=3)
    with pytest.raises(Infeasible, match="needs 3 B-post days, the week has 2 working days"):
        solve_week(RosterInput(WEEK, workers, grids, rules))


@pytest.mark.parametrize(
    "rules",
    [
        RosterRules(a_min=4, a_max=3),
        RosterRules(working_days=()),
        RosterRules(working_days=(0, 1)),
        RosterRules(working_days=(1, 1)),
        RosterRules(min_b_days_per_grid=-1),
        RosterRules(time_limit_s=0),
    ],
)
def test_nonsense_rules_are_a_value_error(rules):
    workers, grids = community(8, 6)
    with pytest.raises(ValueError):
        solve_week(RosterInput(WEEK, workers, grids, rules))


def test_a_worker_holding_an_unknown_grid_is_a_value_error():
    workers, grids = community(8, 6)
    with pytest.raises(ValueError, match="not in this community"):
        solve_week(RosterInput(WEEK, workers, grids[:-1]))


def test_repeated_worker_ids_are_a_value_error():
    workers, grids = community(8, 6)
    with pytest.raises(ValueError, match="repeat"):
        solve_week(RosterInput(WEEK, (*workers, workers[0]), grids))


# ---------------------------------------------------------------------------------------------
# Fairness over four weeks
#
# Bound: with no leave, week 4's history is exactly weeks 1-3, so its objective is the four-week
# spread itself. Levelling is always possible: each worker may take 0..cap A-days a week (cap =
# working days - grid minimum for a worker alone in a grid, all working days otherwise), any
# per-worker counts whose sum lies in [a_min, a_max] x days can be laid onto days round-robin,
# and a week's 15-20 A-days never exceed what the lowest workers may absorb. So the optimum is 0
# when the month's A-days divide evenly among the workers and 1 otherwise, and every week here
# is solved to proven optimality. A week of leave costs a worker at most one week's share
# (< 2 A-days), which the following two weeks can hand back within the caps: still <= 1.


@ALL_SIZES
def test_a_duty_spread_over_four_weeks_is_at_most_one(size):
    results = four_weeks(size)
    totals = Counter()
    for r in results:
        totals.update(r.a_days)
    assert max(totals.values()) - min(totals.values()) <= 1, totals
    assert results[-1].stats["a_spread_4w"] == max(totals.values()) - min(totals.values())
    assert all(r.status == "optimal" for r in results)


@PAIRED_SIZES
def test_a_duty_evens_out_after_a_week_of_leave(size):
    results = four_weeks(size, leave_worker=2)
    assert results[1].a_days[2] == 0
    totals = Counter()
    for r in results:
        totals.update(r.a_days)
    assert max(totals.values()) - min(totals.values()) <= 1, totals


def test_history_sends_the_window_to_those_who_held_it_least():
    workers, grids = community(8, 6)
    history = {1: 6, 2: 6, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0, 8: 0}
    result = solve_week(RosterInput(WEEK, workers, grids, history_a_days=history))
    assert result.a_days[1] == result.a_days[2] == 0
    assert result.stats["a_days_4w"] == {w: history[w] + result.a_days[w] for w in history}


@ALL_SIZES
def test_a_days_count_the_window_shifts(size):
    result = standard(size)
    counted = Counter(s.worker_id for s in result.shifts if s.post == "A")
    assert {w: n for w, n in result.a_days.items() if n} == dict(counted)


# ---------------------------------------------------------------------------------------------
# Pairs


@pytest.mark.parametrize("n_workers", [3, 7, 8, 20, 40, 41])
def test_pairs_cover_every_available_worker_once_with_one_trio_when_odd(n_workers):
    workers, grids = community(n_workers, max(1, n_workers // 3))
    away = frozenset((n_workers, d) for d in week_dates(WEEK))  # away all week: not paired
    rules = RosterRules(a_min=1, a_max=2, min_b_days_per_grid=1)
    result = solve_week(RosterInput(WEEK, workers, grids, rules, away))
    members = [w for group in result.pairs for w in group]
    assert sorted(members) == list(range(1, n_workers))
    sizes = Counter(len(g) for g in result.pairs)
    assert sizes[3] == (n_workers - 1) % 2 and set(sizes) <= {2, 3}
    assert result.stats["unpaired"] == [n_workers]


@PAIRED_SIZES
def test_pairs_rotate_without_repeating_last_weeks_pairs(size):
    results = four_weeks(size)
    for before, after in zip(results, results[1:], strict=False):
        assert not set(before.pairs) & set(after.pairs)
        assert after.stats["pair_repeats"] == 0


def test_pairs_avoid_every_recent_pair_given():
    workers, grids = community(8, 6)
    results = four_weeks("8-workers")
    recent = frozenset(frozenset(p) for r in results for p in r.pairs)  # four weeks of pairs
    result = solve_week(RosterInput("2026-W49", workers, grids, recent_pairs=recent))
    assert not {frozenset(p) for p in result.pairs} & recent


def test_three_workers_keep_their_unavoidable_trio_and_report_it():
    workers, grids = community(3, 3)
    recent = frozenset({frozenset({1, 2, 3})})
    result = solve_week(
        RosterInput(WEEK, workers, grids, SIZES["3-workers"][2], recent_pairs=recent)
    )
    assert result.pairs == ((1, 2, 3),)
    assert result.stats["pair_repeats"] == 3


@PAIRED_SIZES
def test_partners_are_not_at_the_window_on_the_same_day(size):
    result = standard(size)
    window = {(s.worker_id, s.date) for s in result.shifts if s.post == "A"}
    for group in result.pairs:
        for d in (MON, TUE, WED, THU, FRI):
            assert sum((w, d) in window for w in group) <= 1, (group, d)
    assert result.stats["pairs_both_at_window"] == 0


# ---------------------------------------------------------------------------------------------
# Determinism, speed, purity


@ALL_SIZES
def test_the_same_input_gives_the_same_roster(size):
    first, second = solve_week(standard_input(size)), solve_week(standard_input(size))
    assert (first.shifts, first.pairs, first.a_days, first.status) == (
        second.shifts,
        second.pairs,
        second.a_days,
        second.status,
    )


def test_the_order_of_workers_and_grids_does_not_change_the_roster():
    inp = standard_input("20-workers")
    shuffled = RosterInput(
        inp.week,
        tuple(reversed(inp.workers)),
        tuple(reversed(inp.grids)),
        inp.rules,
        inp.unavailable,
    )
    assert solve_week(shuffled).shifts == standard("20-workers").shifts


@ALL_SIZES
def test_solve_reports_status_and_time_within_the_limit(size):
    result = standard(size)
    assert result.status == "optimal"
    assert result.stats["elapsed_s"] < SIZES[size][2].time_limit_s
    assert result.stats["wall_time_s"] <= result.stats["elapsed_s"]


def test_forty_workers_and_fourteen_grids_solve_in_under_the_time_limit():
    workers, grids = community(40, 14)
    rules = RosterRules(time_limit_s=5.0)
    result = solve_week(RosterInput(WEEK, workers, grids, rules))
    assert result.status == "optimal"
    assert result.stats["elapsed_s"] < 5.0


def test_the_solver_module_imports_no_flask_database_or_app_code():
    tree = ast.parse(Path(roster_solver.__file__).read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert not imported & {"flask", "flask_smorest", "sqlalchemy", "geoalchemy2", "api"}
    assert ast.get_docstring(tree).count("\n") == 0


# --- a week rostered from midweek: the days before are kept, not rostered -----------------------
def test_a_week_rostered_from_wednesday_has_no_shift_before_it():
    inp = dataclasses.replace(standard_input("8-workers"), first_day=WED)
    result = solve_week(inp)
    assert result.shifts and min(s.date for s in result.shifts) == WED
    assert result.stats["working_days"] == [d.isoformat() for d in (WED, THU, FRI)]


def test_a_week_rostered_from_wednesday_asks_each_grid_the_days_lefts_share_of_its_minimum():
    """Three B-post days a grid a week, from Wednesday (three of five working days): one each
    (1.8 rounded down). All three would need 18 B-posts of the 15 hands left after the window."""
    workers, grids = community(8, 6)
    rules = RosterRules(min_b_days_per_grid=3, a_min=3, a_max=3)
    result = solve_week(RosterInput(WEEK, workers, grids, rules, first_day=WED))
    assert min(result.stats["grid_b_days"].values()) >= 1
    assert result.stats["idle_worker_days"] == 0  # the free hands are out in their grids


def test_a_week_rostered_on_its_last_working_day_asks_no_grid_a_b_post():
    """0.6 of a day rounded down: five hands after the window cannot visit six grids, and the
    week never asked that of one day."""
    workers, grids = community(8, 6)
    rules = RosterRules(min_b_days_per_grid=3, a_min=3, a_max=3)
    result = solve_week(RosterInput(WEEK, workers, grids, rules, first_day=FRI))
    assert {s.date for s in result.shifts} == {FRI}
    assert sum(s.post == "B" for s in result.shifts) == 5


# --- the weekly rest (Labour Law art. 38: at least one full day off a week) ---------------------
EVERY_DAY = (1, 2, 3, 4, 5, 6, 7)  # a hall open seven days a week


def days_worked(result: RosterResult) -> Counter:
    return Counter(s.worker_id for s in result.shifts)


@ALL_SIZES
def test_a_seven_day_week_gives_every_worker_a_rest_day(size):
    n, n_grids, rules = SIZES[size]
    workers, grids = community(n, n_grids)
    rules = dataclasses.replace(rules, working_days=EVERY_DAY)
    result = solve_week(RosterInput(WEEK, workers, grids, rules))
    assert max(days_worked(result).values()) == 6
    assert result.stats["idle_worker_days"] == 0  # the rest the rule asks is not idleness
    assert result.stats["elapsed_s"] < rules.time_limit_s


def test_the_weekly_rest_is_a_setting():
    workers, grids = community(8, 6)
    rules = RosterRules(working_days=EVERY_DAY, min_rest_days_per_week=2)
    assert max(days_worked(solve_week(RosterInput(WEEK, workers, grids, rules))).values()) == 5
    rules = RosterRules(working_days=EVERY_DAY, min_rest_days_per_week=0)
    assert set(days_worked(solve_week(RosterInput(WEEK, workers, grids, rules))).values()) == {7}


def test_a_day_of_leave_is_the_weeks_rest():
    workers, grids = community(8, 6)
    rules = RosterRules(working_days=EVERY_DAY)
    result = solve_week(RosterInput(WEEK, workers, grids, rules, frozenset({(3, WED)})))
    assert {s.date for s in result.shifts if s.worker_id == 3} == set(week_dates(WEEK)) - {WED}


def test_adjusted_working_weekend_days_still_leave_a_rest_day():
    """调休: a Monday-to-Friday community works Saturday and Sunday in exchange for holidays of
    another week; nobody works all seven."""
    workers, grids = community(8, 6)
    rules = RosterRules(days_on=frozenset({SAT, SUN}))
    result = solve_week(RosterInput(WEEK, workers, grids, rules))
    assert {s.date for s in result.shifts} == set(week_dates(WEEK))
    assert max(days_worked(result).values()) == 6


def test_days_worked_before_a_midweek_roster_count_toward_the_weekly_rest():
    """Rostered from Saturday with Monday to Friday worked: one of the two days left each."""
    workers, grids = community(8, 6)
    rules = RosterRules(working_days=EVERY_DAY)
    worked = {w.id: 5 for w in workers}
    inp = RosterInput(WEEK, workers, grids, rules, first_day=SAT, days_worked_before=worked)
    result = solve_week(inp)
    assert max(days_worked(result).values()) == 1
    assert {s.date for s in result.shifts} == {SAT, SUN}


def test_too_few_workers_to_staff_the_window_and_rest_names_the_weekly_rest():
    workers, grids = community(3, 1)
    rules = RosterRules(working_days=EVERY_DAY, a_min=3, a_max=3, min_b_days_per_grid=0)
    with pytest.raises(Infeasible) as caught:
        solve_week(RosterInput(WEEK, workers, grids, rules))
    assert caught.value.binding == (
        "Weekly rest: 3 workers resting at least 1 day a week each have 18 worker-days"
        " for Mon–Sun, the window needs 21 (3 a day on 7 days)"
    )
    assert "Worker 1 (#1): at most 6 days this week" in caught.value.details


def test_a_weekly_rest_that_leaves_a_grid_short_is_named_by_the_diagnosis():
    """The pre-checks pass (18 of 24 worker-days at the window, a hand free every day); four
    workers resting a day each cannot also give the grid four B-post days."""
    workers, grids = community(4, 1)
    rules = RosterRules(working_days=EVERY_DAY, a_min=3, a_max=4, min_b_days_per_grid=4)
    with pytest.raises(Infeasible) as caught:
        solve_week(RosterInput(WEEK, workers, grids, rules))
    binding = caught.value.binding
    assert binding.startswith("Weekly rest: at least 1 rest day a week for each worker leaves")
    assert grid(1) in binding
    assert "Worker 4 (#4): at most 6 days this week" in caught.value.details
    # Without the rule the week is rostered: the rule is what binds.
    solve_week(
        RosterInput(WEEK, workers, grids, dataclasses.replace(rules, min_rest_days_per_week=0))
    )


@pytest.mark.parametrize("rest", [-1, 7])
def test_a_weekly_rest_outside_zero_to_six_days_is_a_value_error(rest):
    workers, grids = community(8, 6)
    with pytest.raises(ValueError):
        solve_week(RosterInput(WEEK, workers, grids, RosterRules(min_rest_days_per_week=rest)))
