"""Weekly A-post / B-post shift roster: a pure CP-SAT core, plain dataclasses in and out."""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import combinations
from typing import Literal

from ortools.sat.python import cp_model

__all__ = [
    "Infeasible",
    "NoRosterFound",
    "RosterInput",
    "RosterResult",
    "RosterRules",
    "ShiftPlan",
    "Shortfall",
    "Worker",
    "solve_week",
    "week_dates",
]

# A fixed seed and one search worker make CP-SAT deterministic: the same input gives the same
# roster whenever the search ends by optimality (every test and bench week does, in well under a
# second) or by its deterministic-time budget. That budget is half the wall-clock budget, and a
# deterministic second costs under a wall second here, so the wall limit only ends a search on a
# machine several times slower than expected; the result is then still valid, just "feasible".
SEED = 20_261_123
SEARCH_WORKERS = 1
DETERMINISTIC_SHARE = 0.5  # of each wall-clock budget
PAIRING_SHARE = 0.2  # of the week's time limit; the roster itself gets the rest
DIAGNOSIS_SHARE = 0.25  # each of the few small solves that name the rule of an infeasible week
SHORT_SHARE = 0.25  # of a short-staffed week's roster budget: the fewest missing; then the rest

# Objective weights, from the rule that matters most to the least. An idle worker-day outweighs any
# fairness gain; each A-day of spread beyond one outweighs every relief and pair preference; below
# that, a spread of one, the squares that shape the middle, relief and pairs trade at one scale.
W_IDLE = 1_000  # an available worker without a post on a working day
W_SPREAD = 100  # each A-day of spread beyond one between grid holders' four-week totals
W_SPREAD_ONE = 4  # the spread itself, so an even split wins ties
# Sum of squares of four-week A-days, linearised: a worker's k-th A-day this week costs
# 2 * (history + k) - 1, so the cheapest A-days go to whoever has had fewest (water-filling).
W_RELIEF_PARTNER = 8  # the away worker's pair partner relieves the grid
W_RELIEF_NEIGHBOUR = 12  # a worker of the next grid by sequence (grids run west→east, north→south)
W_RELIEF_FLOATER = 14  # a worker without a grid of their own
W_RELIEF_OTHER = 20  # anyone else, who leaves their own grid for the day
W_PAIR_AT_WINDOW = 6  # both partners at the window on the same day: nobody covers the other
W_REPEAT_PAIR = 1  # pairing: a pair (or trio edge) from recent weeks
# A short-staffed week (`solve_week(short_staffed=True)`, once the rules are proved unmeetable)
# ranks what it misses above every term here: the fewest missing first (a worker missing at the
# window outweighs every B-post day a grid misses, `_short_weights`), then, that held, the terms
# above (`_solve_short`). The weekly rest and leave stay hard.

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEK_RE = re.compile(r"(\d{4})-W(\d{2})")


@dataclass(frozen=True)
class Worker:
    """A grid worker; `grid_codes` are the grids they hold (empty for a worker without a grid)."""

    id: int
    name: str
    grid_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RosterRules:
    """A community's roster settings: ISO weekdays worked, window staffing, grid visit minimum,
    the weekly rest."""

    working_days: tuple[int, ...] = (1, 2, 3, 4, 5)
    a_min: int = 3
    a_max: int = 4
    min_b_days_per_grid: int = 3
    # Labour Law art. 38: at least one full day off each week. Days off count whatever their
    # cause: days the community does not work, leave, personal rest days.
    min_rest_days_per_week: int = 1
    time_limit_s: float = 5.0
    # China's adjusted working days (调休): public holidays off although their weekday is
    # worked, and the weekend days worked in exchange although their weekday is not.
    days_off: frozenset[date] = frozenset()
    days_on: frozenset[date] = frozenset()

    def works(self, day: date) -> bool:
        if day in self.days_off:
            return False
        return day in self.days_on or day.isoweekday() in self.working_days


@dataclass(frozen=True)
class RosterInput:
    """One community's week to roster.

    `unavailable` holds (worker id, date) for leave, absence and personal rest days;
    `history_a_days` the A-post days each worker held in the previous three weeks;
    `recent_pairs` the pairs (and trios) of recent weeks, to be avoided this week.
    `first_day`: the days before it are not rostered (a week generated midweek: they have been
    worked and are kept as they were); each grid is then asked the days left's share of the
    week's B-post minimum, rounded down. `days_worked_before` counts, per worker, the shifts
    kept on those days: they weigh against the weekly rest as the days rostered now do.
    """

    week: str
    workers: tuple[Worker, ...]
    grids: tuple[str, ...]
    rules: RosterRules = RosterRules()
    unavailable: frozenset[tuple[int, date]] = frozenset()
    history_a_days: Mapping[int, int] = field(default_factory=dict)
    recent_pairs: frozenset[frozenset[int]] = frozenset()
    first_day: date | None = None
    days_worked_before: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ShiftPlan:
    """One worker's post on one day.

    A B-post names its grid; `relief_for` is the away worker whose grid is relieved (None for a
    worker in their own grid, and for a grid nobody holds).
    """

    date: date
    post: Literal["A", "B"]
    worker_id: int
    grid_code: str | None = None
    relief_for: int | None = None


@dataclass(frozen=True)
class Shortfall:
    """A staffing rule a short-staffed week could not meet: the window on `date` (`rule`
    "window") or a grid's B-post days of the week (`rule` "grid", `grid_code`); `required`
    and `rostered` count workers at the window, or the grid's B-post days; `why` in words."""

    rule: Literal["window", "grid"]
    required: int
    rostered: int
    why: str
    date: date | None = None
    grid_code: str | None = None

    @property
    def short(self) -> int:
        return self.required - self.rostered


@dataclass(frozen=True)
class RosterResult:
    """The week's shifts, pairs, A-post days per worker, solver status and figures.

    A short-staffed week (`solve_week(short_staffed=True)`) lists what it could not meet in
    `shortfalls`, with `binding` and `details`, the rule as `Infeasible` names it."""

    shifts: tuple[ShiftPlan, ...]
    pairs: tuple[tuple[int, ...], ...]
    a_days: Mapping[int, int]
    status: str
    stats: dict
    shortfalls: tuple[Shortfall, ...] = ()
    binding: str | None = None
    details: tuple[str, ...] = ()
    # The B-post days asked of each grid: the settings' minimum, or the days left's share of
    # it for a week rostered from `first_day` on.
    b_days_required: int = 0

    @property
    def complete(self) -> bool:
        return not self.shortfalls


class Infeasible(Exception):
    """The rules cannot all be met; `binding` names the rule that binds, in plain English."""

    def __init__(self, binding: str, details: Sequence[str] = ()) -> None:
        super().__init__(binding)
        self.binding = binding
        self.details = list(details)


class NoRosterFound(RuntimeError):
    """The solver found no roster within the time limit, nor proved that none exists."""


def week_dates(iso_week: str) -> list[date]:
    """Monday..Sunday of an ISO week written "2026-W48"; ValueError for anything else."""
    match = _WEEK_RE.fullmatch(iso_week) if isinstance(iso_week, str) else None
    if match is None:
        raise ValueError(f"not an ISO week like '2026-W48': {iso_week!r}")
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError as exc:
        raise ValueError(f"no such ISO week: {iso_week!r}") from exc
    return [monday + timedelta(days=i) for i in range(7)]


def solve_week(inp: RosterInput, *, short_staffed: bool = False) -> RosterResult:
    """Roster one week: pairs first, then every day's posts; Infeasible names the binding rule.

    `short_staffed`: a week whose window or grid minimums cannot all be met is rostered all
    the same, the best possible (the window staffed first, then the grids' B-post days), its
    `shortfalls` said, instead of Infeasible. A week that can be met is solved exactly as
    without it (the same model, the same roster): the lenient model is built only once the
    strict one is proved infeasible. Leave, one post a day and the weekly rest stay hard."""
    started = time.perf_counter()
    week = _Week(inp)
    pairs: tuple[tuple[int, ...], ...] | None = None
    try:
        _precheck(week)
        pairs, repeats = _pairing(week)
        built = _build(week, pairs, optimise=True, switches=False)
        solver = _solver(inp.rules.time_limit_s * (1 - PAIRING_SHARE))
        status = solver.solve(built.model)
        if status == cp_model.INFEASIBLE:
            raise _diagnose(week, pairs)
    except Infeasible as exc:
        if not short_staffed:
            raise
        if pairs is None:
            pairs, repeats = _pairing(week)
        built, solver, status = _solve_short(week, pairs)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            result = _result(week, built, solver, status, pairs, repeats)
            result = dataclasses.replace(
                result,
                shortfalls=_shortfalls(week, result),
                binding=exc.binding,
                details=tuple(exc.details),
            )
            result.stats["elapsed_s"] = round(time.perf_counter() - started, 4)
            return result
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise NoRosterFound(
            f"no roster found for {inp.week} within {inp.rules.time_limit_s:g} s "
            f"(solver status {status.name})"
        )
    result = _result(week, built, solver, status, pairs, repeats)
    result.stats["elapsed_s"] = round(time.perf_counter() - started, 4)
    return result


# ---------------------------------------------------------------------------------------------
# The week, checked and indexed


class _Week:
    """The input validated and indexed: working dates, who is available, who holds which grid."""

    def __init__(self, inp: RosterInput) -> None:
        rules = inp.rules
        if not rules.working_days or any(not 1 <= d <= 7 for d in rules.working_days):
            raise ValueError(f"working_days must be ISO weekdays 1..7: {rules.working_days!r}")
        if len(set(rules.working_days)) != len(rules.working_days):
            raise ValueError(f"working_days repeat a day: {rules.working_days!r}")
        if not 0 <= rules.a_min <= rules.a_max:
            raise ValueError(f"need 0 <= a_min <= a_max, got {rules.a_min}..{rules.a_max}")
        if rules.min_b_days_per_grid < 0:
            raise ValueError("min_b_days_per_grid must not be negative")
        if not 0 <= rules.min_rest_days_per_week <= 6:
            raise ValueError("min_rest_days_per_week must be 0..6")
        if not rules.time_limit_s > 0:
            raise ValueError("time_limit_s must be positive")
        ids = [w.id for w in inp.workers]
        if len(set(ids)) != len(ids):
            raise ValueError("worker ids repeat")
        if len(set(inp.grids)) != len(inp.grids):
            raise ValueError("grid codes repeat")
        known = set(inp.grids)
        for w in inp.workers:
            unknown = [g for g in w.grid_codes if g not in known]
            if unknown:
                raise ValueError(f"worker {w.id} holds grids not in this community: {unknown}")

        self.inp = inp
        self.rules = rules
        self.a_min, self.a_max = rules.a_min, rules.a_max
        self.min_b = rules.min_b_days_per_grid
        if rules.days_off & rules.days_on:
            raise ValueError("a day is both off and worked")
        self.days = [d for d in week_dates(inp.week) if rules.works(d)]
        if inp.first_day is not None:
            # From midweek: the days left's share of the week's minimum, rounded down (3 a week
            # asks 1 of Wednesday to Friday, none of a lone Friday). The days before were worked,
            # with or without a roster; the whole minimum crammed into the days left may not fit
            # (6 grids, 5 hands after the window), and rounded up it would have a lone Friday
            # send someone to every grid. The idle rule still sends every free worker out.
            worked = len(self.days)
            self.days = [d for d in self.days if d >= inp.first_day]
            self.min_b = self.min_b * len(self.days) // worked if worked else 0
        self.workers = {w.id: w for w in sorted(inp.workers, key=lambda w: w.id)}
        self.grids = sorted(inp.grids)
        self.own = {w.id: tuple(sorted(set(w.grid_codes))) for w in self.workers.values()}
        self.holders = {g: [w for w in self.workers if g in self.own[w]] for g in self.grids}
        self.avail = {
            w: [d for d in self.days if (w, d) not in inp.unavailable] for w in self.workers
        }
        self.avail_on = {d: [w for w in self.workers if d in self.avail[w]] for d in self.days}
        # A grid may be relieved on a day when every worker who holds it is away (or none does).
        self.uncovered = {
            d: [g for g in self.grids if not any(d in self.avail[w] for w in self.holders[g])]
            for d in self.days
        }
        self.history = {w: int(inp.history_a_days.get(w, 0)) for w in self.workers}
        # The weekly rest: the most days each worker may still work this week (the days kept
        # before `first_day` already worked); binding only for those with more days available.
        self.rest = rules.min_rest_days_per_week
        self.worked_before = {w: int(inp.days_worked_before.get(w, 0)) for w in self.workers}
        self.cap = {w: max(0, 7 - self.rest - self.worked_before[w]) for w in self.workers}
        self.rest_bound = [w for w in self.workers if self.cap[w] < len(self.avail[w])]
        holders_exist = any(self.own[w] for w in self.workers)
        # Fairness is weighed among the workers who choose between window and grid; a worker
        # without a grid fills the window first (the idle rule), so they stay out of the spread.
        self.fair = [w for w in self.workers if self.own[w] or not holders_exist]

    def who(self, w: int) -> str:
        return f"{self.workers[w].name} (#{w})"

    def away_days(self, g: str) -> list[date]:
        return [d for d in self.days if g in self.uncovered[d]]

    def neighbours(self, g: str, h: str) -> bool:
        """Grids next to each other in sequence within one community (15-digit codes)."""
        if len(g) != 15 or len(h) != 15 or g[:12] != h[:12]:
            return False
        return g[12:].isdigit() and h[12:].isdigit() and abs(int(g[12:]) - int(h[12:])) == 1


def _day_label(d: date) -> str:
    return f"{_DAY_NAMES[d.weekday()]} {d.isoformat()}"


def _span(days: Iterable[date]) -> str:
    """Dates as short weekday runs: "Mon–Thu", "Mon, Wed–Fri"."""
    runs: list[list[date]] = []
    for d in sorted(days):
        if runs and (d - runs[-1][-1]).days == 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = []
    for run in runs:
        first, last = _DAY_SHORT[run[0].weekday()], _DAY_SHORT[run[-1].weekday()]
        parts.append(first if len(run) == 1 else f"{first}–{last}")
    return ", ".join(parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _names(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------------------------------------
# Cheap pre-checks: the common impossibilities, named before any search


def _precheck(week: _Week) -> None:
    days, a_min, m = week.days, week.a_min, week.min_b
    n_grids = len(week.grids)
    if n_grids and m > len(days):
        raise Infeasible(
            f"Each grid needs {m} B-post days, the week has {_plural(len(days), 'working day')}",
            [f"working days: {_span(days)}"],
        )

    short = [d for d in days if len(week.avail_on[d]) < a_min]
    if short:
        raise Infeasible(
            _window_line(week, short[0]),
            [_window_line(week, d) + _away_note(week, d) for d in short],
        )
    hands = sum(min(week.cap[w], len(week.avail[w])) for w in week.workers)
    if hands < a_min * len(days):  # every day staffed, so only the weekly rest can cut it
        raise Infeasible(
            f"Weekly rest: {_plural(len(week.workers), 'worker')} resting at least"
            f" {_plural(week.rest, 'day')} a week each have {_plural(hands, 'worker-day')}"
            f" for {_span(days)}, the window needs {a_min * len(days)}"
            f" ({a_min} a day on {_plural(len(days), 'day')})",
            _rest_lines(week),
        )
    if not n_grids or m == 0:
        return

    spare = {d: len(week.avail_on[d]) - a_min for d in days}
    free_days = [d for d in days if spare[d] > 0]
    if len(free_days) < m:
        blocked = [d for d in days if spare[d] <= 0]
        raise Infeasible(
            f"No worker is free for B-posts on {_span(blocked)}: the window needs every available"
            f" worker, so each grid gets at most {_plural(len(free_days), 'B-post day')},"
            f" minimum is {m}",
            [
                f"{_day_label(d)}: {_plural(len(week.avail_on[d]), 'worker')} available,"
                f" {a_min} required at the window"
                for d in blocked
            ],
        )

    # How many distinct grids can be visited on a day: free hands, and a matching of workers to
    # grids they may visit (their own; any grid whose holders are all away).
    capacity = {d: min(spare[d], _visitable(week, d)) for d in days}
    if len(free_days) == m:
        # Every grid needs a B-post on every day that leaves anyone free.
        for d in free_days:
            if capacity[d] < n_grids:
                raise Infeasible(
                    f"{_day_label(d)}: {_plural(len(week.avail_on[d]), 'worker')} available,"
                    f" {a_min} required at the window and all {n_grids} grids need their B-post"
                    f" that day",
                    [
                        f"only {_span(free_days)} leave a worker free after the window and each"
                        f" grid needs {m} B-post days",
                        f"{_day_label(d)}: {_plural(capacity[d], 'grid')} can be visited",
                    ],
                )

    total, needed = sum(capacity.values()), n_grids * m
    if total < needed:
        raise Infeasible(
            f"Week {week.inp.week}: {_plural(total, 'B-post day')} can be staffed after the"
            f" window, the {_plural(n_grids, 'grid')} need {needed} ({m} each)",
            [
                f"{_day_label(d)}: {_plural(len(week.avail_on[d]), 'worker')} available,"
                f" {a_min} at the window, {capacity[d]} left for B-posts"
                for d in days
            ],
        )


def _rest_lines(week: _Week) -> list[str]:
    """The workers the weekly rest holds back: the most days each may work this week."""
    lines = []
    for w in week.rest_bound:
        line = f"{week.who(w)}: at most {_plural(week.cap[w], 'day')} this week"
        if week.worked_before[w]:
            line += f" ({_plural(week.worked_before[w], 'day')} worked before today)"
        lines.append(line)
    return lines


def _window_line(week: _Week, d: date) -> str:
    n = len(week.avail_on[d])
    return f"{_day_label(d)}: {_plural(n, 'worker')} available, {week.a_min} required at the window"


def _away_note(week: _Week, d: date) -> str:
    away = [week.who(w) for w in week.workers if d not in week.avail[w]]
    return f" (away: {', '.join(away)})" if away else ""


def _visitable(week: _Week, d: date) -> int:
    """Largest number of distinct grids one day's available workers can visit (Kuhn matching)."""
    uncovered = week.uncovered[d]
    options = {
        w: list(week.own[w]) + [g for g in uncovered if g not in week.own[w]]
        for w in week.avail_on[d]
    }
    match: dict[str, int] = {}

    def augment(w: int, seen: set[str]) -> bool:
        for g in options[w]:
            if g in seen:
                continue
            seen.add(g)
            if g not in match or augment(match[g], seen):
                match[g] = w
                return True
        return False

    return sum(augment(w, set()) for w in options)


# ---------------------------------------------------------------------------------------------
# Pairs: a perfect pairing (one trio when the count is odd) that avoids recent pairs


def _rotation(members: list[int], index: int) -> list[tuple[int, ...]]:
    """Round `index` of the circle method (the odd one out joins the first pair as a trio).

    Over n-1 consecutive weeks of a stable team everyone partners everyone exactly once.
    """
    people: list[int | None] = list(members)
    if len(people) % 2:
        people.append(None)
    n = len(people)
    rest = people[1:]
    shift = index % (n - 1)
    order = [people[0], *rest[shift:], *rest[:shift]]
    groups: list[tuple[int, ...]] = []
    odd_one = None
    for i in range(n // 2):
        u, v = order[i], order[n - 1 - i]
        if u is None or v is None:
            odd_one = v if u is None else u
        else:
            groups.append(tuple(sorted((u, v))))
    groups.sort()
    if odd_one is not None:
        groups[0] = tuple(sorted((*groups[0], odd_one)))
    return groups


def _edges(groups: Iterable[Iterable[int]]) -> set[frozenset[int]]:
    return {frozenset(e) for group in groups for e in combinations(sorted(group), 2)}


def _pairing(week: _Week) -> tuple[tuple[tuple[int, ...], ...], int]:
    """This week's pairs among workers available at least one working day; and repeats count.

    The week's circle-method round is taken as it is when it repeats no recent pair; otherwise
    CP-SAT, started from that round, finds the pairing with fewest repeats.
    """
    members = [w for w in week.workers if week.avail[w]]
    recent = _edges(week.inp.recent_pairs)
    if len(members) <= 3:
        groups = [tuple(members)] if members else []
        return tuple(groups), len(_edges(groups) & recent)

    rotation = _rotation(members, week_dates(week.inp.week)[0].toordinal() // 7)
    if not _edges(rotation) & recent:
        return tuple(rotation), 0

    model = cp_model.CpModel()
    x = {e: model.new_bool_var(f"p{e[0]}_{e[1]}") for e in combinations(members, 2)}
    incident: dict[int, list[cp_model.IntVar]] = {w: [] for w in members}
    for (u, v), var in x.items():
        incident[u].append(var)
        incident[v].append(var)
    hinted = _edges(rotation)
    for e, var in x.items():
        model.add_hint(var, frozenset(e) in hinted)
    if len(members) % 2 == 0:
        for w in members:
            model.add_exactly_one(incident[w])
    else:
        # Three workers of degree two whose edges stay among themselves form the one trio.
        trio = next(group for group in rotation if len(group) == 3)
        z = {w: model.new_bool_var(f"trio{w}") for w in members}
        model.add(sum(z.values()) == 3)
        for w in members:
            model.add(sum(incident[w]) == 1 + z[w])
            model.add_hint(z[w], w in trio)
        for (u, v), var in x.items():
            model.add_implication(var, z[v]).only_enforce_if(z[u])
            model.add_implication(var, z[u]).only_enforce_if(z[v])
    model.minimize(sum(W_REPEAT_PAIR * x[e] for e in x if frozenset(e) in recent))
    solver = _solver(week.rules.time_limit_s * PAIRING_SHARE)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):  # pragma: no cover - hint is valid
        return tuple(rotation), len(_edges(rotation) & recent)
    chosen = [e for e, var in x.items() if solver.boolean_value(var)]
    degree = {w: sum(w in e for e in chosen) for w in members}
    trio = tuple(w for w in members if degree[w] == 2)
    groups = [e for e in chosen if not set(e) & set(trio)]
    if trio:
        groups.append(trio)
    return tuple(sorted(groups)), len(_edges(groups) & recent)


# ---------------------------------------------------------------------------------------------
# The roster model


def _solver(time_limit_s: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.random_seed = SEED
    solver.parameters.num_workers = SEARCH_WORKERS
    solver.parameters.max_time_in_seconds = max(time_limit_s, 0.01)
    solver.parameters.max_deterministic_time = max(time_limit_s, 0.01) * DETERMINISTIC_SHARE
    return solver


@dataclass
class _Built:
    model: cp_model.CpModel
    a: dict[tuple[int, date], cp_model.IntVar]
    b: dict[tuple[int, date, str], cp_model.IntVar]  # own grid
    r: dict[tuple[int, date, str], cp_model.IntVar]  # relief of a grid whose holders are away
    cov: dict[tuple[str, date], cp_model.IntVar]
    switches: dict[tuple[str, object], cp_model.IntVar]  # ("window", day) / ("grid", code)
    posts: dict[tuple[int, date], list[cp_model.IntVar]]
    short: object = 0  # a soft model's weighted shortfall (`_short_weights`)


def _build(
    week: _Week,
    pairs: tuple[tuple[int, ...], ...],
    *,
    optimise: bool,
    switches: bool,
    soft: bool = False,
) -> _Built:
    """The CP-SAT model; with `switches` the window and grid minimums hang on assumptions;
    `soft`, they may fall short, each missing worker or B-post day at a cost above every
    other term (`_short_weights`)."""
    m = cp_model.CpModel()
    a: dict[tuple[int, date], cp_model.IntVar] = {}
    b: dict[tuple[int, date, str], cp_model.IntVar] = {}
    r: dict[tuple[int, date, str], cp_model.IntVar] = {}
    posts: dict[tuple[int, date], list[cp_model.IntVar]] = {}
    visits: dict[tuple[str, date], list[cp_model.IntVar]] = {
        (g, d): [] for g in week.grids for d in week.days
    }
    for w in week.workers:
        for d in week.avail[w]:
            tag = f"{w}_{d:%m%d}"
            a[w, d] = m.new_bool_var(f"a{tag}")
            posts[w, d] = [a[w, d]]
            for g in week.own[w]:
                b[w, d, g] = m.new_bool_var(f"b{tag}_{g}")
                posts[w, d].append(b[w, d, g])
                visits[g, d].append(b[w, d, g])
            for g in week.uncovered[d]:
                if g not in week.own[w]:
                    r[w, d, g] = m.new_bool_var(f"r{tag}_{g}")
                    posts[w, d].append(r[w, d, g])
                    visits[g, d].append(r[w, d, g])
            m.add_at_most_one(posts[w, d])  # nobody holds two posts at once

    lits: dict[tuple[str, object], cp_model.IntVar] = {}
    if week.rest_bound:
        # One switch for the whole rule: the diagnosis names the rule, not a worker.
        if switches:
            lits["rest", None] = m.new_bool_var("weekly_rest")
        for w in week.rest_bound:
            held = m.add(sum(sum(posts[w, d]) for d in week.avail[w]) <= week.cap[w])
            if switches:
                held.only_enforce_if(lits["rest", None])
    short: list = []  # (weight, missing) of a soft model
    w_window, w_grid = _short_weights(week) if soft else (0, 0)
    for d in week.days:
        window = sum(a[w, d] for w in week.avail_on[d])
        m.add(window <= week.a_max)
        if soft:
            missing = m.new_int_var(0, week.a_min, f"window_short_{d:%m%d}")
            m.add(window + missing >= week.a_min)
            short.append(w_window * missing)
            continue
        low = m.add(window >= week.a_min)
        if switches:
            lits["window", d] = m.new_bool_var(f"window_{d:%m%d}")
            low.only_enforce_if(lits["window", d])

    cov: dict[tuple[str, date], cp_model.IntVar] = {}
    for g in week.grids:
        for d in week.days:
            if visits[g, d]:
                cov[g, d] = m.new_bool_var(f"cov_{g}_{d:%m%d}")
                m.add_bool_or(visits[g, d]).only_enforce_if(cov[g, d])
        visited = sum(cov[g, d] for d in week.days if (g, d) in cov)
        if soft:
            missing = m.new_int_var(0, week.min_b, f"grid_short_{g}")
            m.add(visited + missing >= week.min_b)
            short.append(w_grid * missing)
            continue
        low = m.add(visited >= week.min_b)
        if switches:
            lits["grid", g] = m.new_bool_var(f"grid_{g}")
            low.only_enforce_if(lits["grid", g])

    if optimise:
        _objective(week, pairs, m, a, r, posts)
    return _Built(m, a, b, r, cov, lits, posts, sum(short))


def _solve_short(
    week: _Week, pairs: tuple[tuple[int, ...], ...]
) -> tuple[_Built, cp_model.CpSolver, cp_model.CpSolverStatus]:
    """The best roster of a week whose minimums cannot all be met, lexicographically: first
    the fewest missing (the window before the grids, `_short_weights`), then, that held, the
    usual objective. Two solves: one objective weighing both at once needs weights so large
    that the search slows tenfold."""
    built = _build(week, pairs, optimise=False, switches=False, soft=True)
    budget = week.rules.time_limit_s * (1 - PAIRING_SHARE)
    built.model.minimize(built.short)
    solver = _solver(budget * SHORT_SHARE)
    status = solver.solve(built.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):  # pragma: no cover - all zero fits
        return built, solver, status
    built.model.add(built.short <= int(solver.objective_value))
    _objective(week, pairs, built.model, built.a, built.r, built.posts)
    first = status
    solver = _solver(budget * (1 - SHORT_SHARE))
    status = solver.solve(built.model)
    if status == cp_model.OPTIMAL and first != cp_model.OPTIMAL:  # pragma: no cover - small
        status = cp_model.FEASIBLE  # the fewest missing was not proved
    return built, solver, status


def _short_weights(week: _Week) -> tuple[int, int]:
    """The costs of a worker missing at the window and of a B-post day a grid misses: one
    missing worker outweighs every grid's missing days, so the window is staffed first."""
    return len(week.grids) * week.min_b + 1, 1


def _objective(
    week: _Week,
    pairs: tuple[tuple[int, ...], ...],
    m: cp_model.CpModel,
    a: dict[tuple[int, date], cp_model.IntVar],
    r: dict[tuple[int, date, str], cp_model.IntVar],
    posts: dict[tuple[int, date], list[cp_model.IntVar]],
) -> None:
    terms: list = []
    # Every available worker holds a post every working day unless the rules make it impossible.
    terms += [W_IDLE * (1 - sum(p)) for p in posts.values()]

    # Fairness over four weeks: spread (max - min) and a water-filling sum of squares. Only a
    # worker available all week holds the minimum up: pulling someone back from leave onto the
    # window on their few days in (and relieving their grid meanwhile to allow it) is no fairness;
    # they catch up in the weeks they are in, through the squares now and the minimum later.
    horizon = max(week.history.values(), default=0) + len(week.days)
    top = m.new_int_var(0, horizon, "a_max_4w")
    bottom = m.new_int_var(0, horizon, "a_min_4w")
    for w in week.fair:
        days = week.avail[w]
        steps = [m.new_bool_var(f"step{w}_{k}") for k in range(1, len(days) + 1)]
        m.add(sum(steps) == sum(a[w, d] for d in days))
        for k in range(len(steps) - 1):
            m.add_implication(steps[k + 1], steps[k])
        terms += [(2 * (week.history[w] + k) - 1) * s for k, s in enumerate(steps, 1)]
        total = week.history[w] + sum(a[w, d] for d in days)
        m.add(top >= total)
        if len(days) == len(week.days):
            m.add(bottom <= total)
    if week.fair:
        # A spread of one A-day is the granularity of a week (15 A-days never split evenly over
        # 8 workers), so it weighs less than relief; each A-day beyond it outweighs all but idling.
        beyond = m.new_int_var(0, horizon, "a_spread_beyond_1")
        m.add(beyond >= top - bottom - 1)
        terms += [W_SPREAD * beyond, W_SPREAD_ONE * (top - bottom)]

    # Relief: only where needed, by the partner or a neighbour when possible.
    partners = {w: set(group) - {w} for group in pairs for w in group}
    for (w, _d, g), var in r.items():
        away = week.holders[g]
        if any(h in partners.get(w, ()) for h in away):
            cost = W_RELIEF_PARTNER
        elif any(week.neighbours(g, own) for own in week.own[w]):
            cost = W_RELIEF_NEIGHBOUR
        elif not week.own[w]:
            cost = W_RELIEF_FLOATER
        else:
            cost = W_RELIEF_OTHER
        terms.append(cost * var)

    # Partners take opposite posts: never both at the window on one day, if it can be helped.
    for group in pairs:
        for u, v in combinations(group, 2):
            for d in week.days:
                if (u, d) in a and (v, d) in a:
                    both = m.new_bool_var(f"both{u}_{v}_{d:%m%d}")
                    m.add(both >= a[u, d] + a[v, d] - 1)
                    terms.append(W_PAIR_AT_WINDOW * both)
    m.minimize(sum(terms))


def _result(
    week: _Week,
    built: _Built,
    solver: cp_model.CpSolver,
    status: cp_model.CpSolverStatus,
    pairs: tuple[tuple[int, ...], ...],
    repeats: int,
) -> RosterResult:
    shifts: list[ShiftPlan] = []
    for (w, d), var in built.a.items():
        if solver.boolean_value(var):
            shifts.append(ShiftPlan(d, "A", w))
    for (w, d, g), var in built.b.items():
        if solver.boolean_value(var):
            shifts.append(ShiftPlan(d, "B", w, g))
    for (w, d, g), var in built.r.items():
        if solver.boolean_value(var):
            away = week.holders[g]
            shifts.append(ShiftPlan(d, "B", w, g, away[0] if away else None))
    shifts.sort(key=lambda s: (s.date, s.post, s.worker_id))

    a_days = {w: 0 for w in week.workers}
    for s in shifts:
        if s.post == "A":
            a_days[s.worker_id] += 1
    four_weeks = {w: week.history[w] + a_days[w] for w in week.workers}
    fair_totals = [four_weeks[w] for w in week.fair]
    on_duty = {(s.worker_id, s.date) for s in shifts}
    at_window = {(s.worker_id, s.date) for s in shifts if s.post == "A"}
    stats = {
        "week": week.inp.week,
        "working_days": [d.isoformat() for d in week.days],
        "wall_time_s": round(solver.wall_time, 4),
        "deterministic_time": round(solver.deterministic_time, 4),
        "objective": int(solver.objective_value),
        "best_bound": int(solver.best_objective_bound),
        "conflicts": solver.num_conflicts,
        "a_days_4w": four_weeks,
        "a_spread_4w": max(fair_totals) - min(fair_totals) if fair_totals else 0,
        "relief_shifts": sum(
            s.grid_code is not None and s.worker_id not in week.holders[s.grid_code] for s in shifts
        ),
        # Beyond the days the weekly rest keeps a worker off.
        "idle_worker_days": sum(
            min(week.cap[w], len(week.avail[w])) - sum((w, d) in on_duty for d in week.avail[w])
            for w in week.workers
        ),
        "pair_repeats": repeats,
        "pairs_both_at_window": sum(
            (u, d) in at_window and (v, d) in at_window
            for group in pairs
            for u, v in combinations(group, 2)
            for d in week.days
        ),
        "unpaired": [w for w in week.workers if not week.avail[w]],
        "grid_b_days": {g: len({s.date for s in shifts if s.grid_code == g}) for g in week.grids},
    }
    return RosterResult(
        shifts=tuple(shifts),
        pairs=pairs,
        a_days=a_days,
        status="optimal" if status == cp_model.OPTIMAL else "feasible",
        stats=stats,
        b_days_required=week.min_b,
    )


def _shortfalls(week: _Week, result: RosterResult) -> tuple[Shortfall, ...]:
    """What a short-staffed roster leaves unmet, day by day at the window, then grid by grid,
    each in words: who is away, or what the weekly rest and the window take."""
    found: list[Shortfall] = []
    at_window = Counter(s.date for s in result.shifts if s.post == "A")
    for d in week.days:
        if at_window[d] >= week.a_min:
            continue
        why = _window_line(week, d)
        if len(week.avail_on[d]) < week.a_min:
            why += _away_note(week, d)
        else:
            why += (
                f"; {at_window[d]} at the window: the weekly rest (at least"
                f" {_plural(week.rest, 'rest day')} a week for each worker) leaves no more"
                " to work that day"
            )
        found.append(Shortfall("window", week.a_min, at_window[d], why, date=d))
    for g in week.grids:
        got = len({s.date for s in result.shifts if s.grid_code == g})
        if got >= week.min_b:
            continue
        holders = [week.who(h) for h in week.holders[g]]
        why = (
            f"Grid {g}: {_plural(got, 'B-post day')}, minimum is {week.min_b}"
            f" (held by {_names(holders or ['nobody'])}"
        )
        if week.holders[g] and week.away_days(g):
            why += f", away {_span(week.away_days(g))}"
        for h in week.holders[g]:
            shared = [o for o in week.own[h] if o != g]
            if shared:
                why += f"; {week.who(h)} also holds {_names(shared)} and visits one grid a day"
        why += (
            f"; the window ({week.a_min} a day) is staffed first and the grids share the"
            " workers left"
        )
        if week.rest_bound:
            why += f", each resting at least {_plural(week.rest, 'day')} a week"
        found.append(Shortfall("grid", week.min_b, got, why + ")", grid_code=g))
    return tuple(found)


# ---------------------------------------------------------------------------------------------
# Diagnosis when the pre-checks pass but the model is infeasible


def _diagnose(week: _Week, pairs: tuple[tuple[int, ...], ...]) -> Infeasible:
    """Name the binding rule from a minimal set of window / grid minimums that cannot all hold."""
    built = _build(week, pairs, optimise=False, switches=True)
    keys = list(built.switches)
    solver = _solver(week.rules.time_limit_s * DIAGNOSIS_SHARE)

    def infeasible(subset: list[tuple[str, object]]) -> bool:
        built.model.clear_assumptions()
        built.model.add_assumptions([built.switches[k] for k in subset])
        return solver.solve(built.model) == cp_model.INFEASIBLE

    if not infeasible(keys):  # pragma: no cover - the full model was just proved infeasible
        return Infeasible(f"Week {week.inp.week}: the rules cannot all be met", [])
    found = {int(i) for i in solver.sufficient_assumptions_for_infeasibility()}
    core = [k for k in keys if built.switches[k].index in found] or keys
    # CP-SAT's core need not be minimal; drop each rule that the rest still fail without.
    for key in list(core):
        trial = [k for k in core if k != key]
        if trial and infeasible(trial):
            core = trial
    return _explain(week, pairs, core)


def _explain(
    week: _Week, pairs: tuple[tuple[int, ...], ...], core: list[tuple[str, object]]
) -> Infeasible:
    days = sorted(d for kind, d in core if kind == "window")
    grids = sorted(g for kind, g in core if kind == "grid")
    if ("rest", None) in core:
        return _explain_rest(week, days, grids)
    details = [
        f"{_day_label(d)}: {_plural(len(week.avail_on[d]), 'worker')} available,"
        f" {week.a_min} required at the window, {len(week.avail_on[d]) - week.a_min} free"
        for d in days
    ]
    for g in grids:
        holders = [week.who(h) for h in week.holders[g]]
        line = (
            f"Grid {g}: minimum {week.min_b} B-post days, held by {_names(holders or ['nobody'])}"
        )
        if week.holders[g] and week.away_days(g):
            line += f", away {_span(week.away_days(g))}"
        details.append(line)
    if not grids:  # pragma: no cover - the window alone is settled by the pre-check
        return Infeasible(f"The window cannot be staffed on {_span(days)}", details)

    blame = max(grids, key=lambda g: len(week.away_days(g)))  # ties: the lowest code
    others = [g for g in grids if g != blame]
    best = _max_days(week, pairs, core, blame)
    reasons = []
    holders = week.holders[blame]
    away = week.away_days(blame)
    if not holders:
        reasons.append("no worker holds this grid")
    elif away:
        verb = "is" if len(holders) == 1 else "are"
        reasons.append(
            f"its worker{'s' if len(holders) > 1 else ''}"
            f" {_names([week.who(h) for h in holders])} {verb} away {_span(away)}"
        )
    for h in holders:
        shared = [g for g in week.own[h] if g != blame]
        if shared:
            reasons.append(f"{week.who(h)} also holds {_names(shared)} and visits one grid a day")
    if days:
        reason = f"no reliever is free on {_span(days)}: the window needs {week.a_min} of those in"
        if others:
            verb = "needs" if len(others) == 1 else "need"
            reason += f" and grid{'s' if len(others) > 1 else ''} {_names(others)} {verb} the rest"
        reasons.append(reason)
    got = "fewer" if best is None else f"at most {_plural(best, 'B-post day')}"
    binding = f"Grid {blame} gets {got}, minimum is {week.min_b} ({' and '.join(reasons)})"
    return Infeasible(binding, details)


def _explain_rest(week: _Week, days: list[date], grids: list[str]) -> Infeasible:
    """The weekly rest is part of the conflict: the rule is named, with what it leaves short."""
    short = []
    if days:
        short.append(f"the window ({week.a_min} a day) on {_span(days)}")
    if grids:
        short.append(
            f"the B-posts of grid{'s' if len(grids) > 1 else ''} {_names(grids)}"
            f" ({week.min_b} days{' each' if len(grids) > 1 else ''})"
        )
    binding = (
        f"Weekly rest: at least {_plural(week.rest, 'rest day')} a week for each worker leaves"
        f" too few working days for {' and '.join(short) or 'the week'}"
    )
    details = [_window_line(week, d) + _away_note(week, d) for d in days]
    for g in grids:
        holders = [week.who(h) for h in week.holders[g]]
        details.append(
            f"Grid {g}: minimum {week.min_b} B-post days, held by {_names(holders or ['nobody'])}"
        )
    return Infeasible(binding, details + _rest_lines(week))


def _max_days(
    week: _Week, pairs: tuple[tuple[int, ...], ...], core: list[tuple[str, object]], grid: str
) -> int | None:
    """Most B-post days `grid` can get while the other rules of the core hold."""
    built = _build(week, pairs, optimise=False, switches=True)
    for key in core:
        if key != ("grid", grid):
            built.model.add(built.switches[key] == 1)
    built.model.maximize(sum(built.cov[grid, d] for d in week.days if (grid, d) in built.cov))
    solver = _solver(week.rules.time_limit_s * DIAGNOSIS_SHARE)
    if solver.solve(built.model) != cp_model.OPTIMAL:  # pragma: no cover - small model
        return None
    return int(solver.objective_value)
