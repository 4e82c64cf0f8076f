"""Bench the roster solver on a 40-worker, 14-grid community, week by week, beside a greedy."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from datetime import date

from api.services.roster_solver import (
    Infeasible,
    RosterInput,
    RosterResult,
    RosterRules,
    Worker,
    solve_week,
    week_dates,
)
from bench._result import emit

COMMUNITY = "110101001001"  # district 110101, street 001, community 001


def community(n_workers: int, n_grids: int) -> tuple[tuple[Worker, ...], tuple[str, ...]]:
    grids = tuple(f"{COMMUNITY}{i:03d}" for i in range(1, n_grids + 1))
    workers = tuple(
        Worker(i, f"Worker {i}", (grids[(i - 1) % n_grids],)) for i in range(1, n_workers + 1)
    )
    return workers, grids


def leave(
    workers: tuple[Worker, ...], grids: tuple[str, ...], week: str, rng: random.Random
) -> frozenset[tuple[int, date]]:
    """About 5% of worker-days off, and every holder of one grid away Monday to Wednesday."""
    days = week_dates(week)[:5]
    away = {(w.id, d) for w in workers for d in days if rng.random() < 0.05}
    empty = rng.choice(grids)
    away |= {(w.id, d) for w in workers if empty in w.grid_codes for d in days[:3]}
    return frozenset(away)


def greedy(inp: RosterInput, offset: int) -> tuple[Counter, int, float]:
    """Round-robin baseline: the next available workers take the window, the rest their grid.

    No fairness over weeks, no pairs, no relief; returns A-days, grids short of the minimum and
    its own run time.
    """
    started = time.perf_counter()
    working = [d for d in week_dates(inp.week) if d.isoweekday() in inp.rules.working_days]
    ids = [w.id for w in inp.workers]
    a_days: Counter = Counter()
    visited: dict[str, set[date]] = {g: set() for g in inp.grids}
    for k, d in enumerate(working):
        start = (offset + k * inp.rules.a_min) % len(ids)
        rota = [w for w in ids[start:] + ids[:start] if (w, d) not in inp.unavailable]
        for w in rota[: inp.rules.a_min]:
            a_days[w] += 1
        for worker in inp.workers:
            if worker.id in rota[inp.rules.a_min :] and worker.grid_codes:
                visited[worker.grid_codes[0]].add(d)
    short = sum(len(days) < inp.rules.min_b_days_per_grid for days in visited.values())
    return a_days, short, time.perf_counter() - started


def spread(history: list[Counter], ids: list[int]) -> int:
    totals = [sum(week[w] for week in history[-4:]) for w in ids]
    return max(totals) - min(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--workers", type=int, default=40)
    parser.add_argument("--grids", type=int, default=14)
    parser.add_argument("--seed", type=int, default=48)
    parser.add_argument(
        "--working-days",
        default="12345",
        help="ISO weekdays worked, as digits: 1234567 for a hall open every day",
    )
    parser.add_argument(
        "--short-staffed",
        action="store_true",
        help="roster a week whose minimums cannot all be met, its shortfalls said, as generation"
        " through the API does (try --workers 5 --grids 4)",
    )
    args = parser.parse_args()

    workers, grids = community(args.workers, args.grids)
    ids = [w.id for w in workers]
    rules = RosterRules(working_days=tuple(sorted({int(d) for d in args.working_days})))
    rng = random.Random(args.seed)
    weeks = [f"2026-W{n:02d}" for n in range(45, 45 + args.weeks)]
    solved: list[Counter] = []
    greedy_weeks: list[Counter] = []
    recent: frozenset[frozenset[int]] = frozenset()
    elapsed, reported, greedy_times = [], [], []
    print(
        f"roster bench: {args.workers} workers, {args.grids} grids, {args.weeks} weeks,"
        f" working days {args.working_days},"
        f" A {rules.a_min}-{rules.a_max}/day, B >= {rules.min_b_days_per_grid} days/grid,"
        f" limit {rules.time_limit_s:g} s"
    )
    for n, week in enumerate(weeks):
        history = {w: sum(c[w] for c in solved[-3:]) for w in ids}
        away = leave(workers, grids, week, rng)
        inp = RosterInput(week, workers, grids, rules, away, history, recent)
        started = time.perf_counter()
        try:
            result: RosterResult | None = solve_week(inp, short_staffed=args.short_staffed)
        except Infeasible as exc:
            result = None
            print(f"{week}: infeasible: {exc.binding}")
        took = time.perf_counter() - started
        g_days, g_short, g_took = greedy(inp, offset=n * 7)
        greedy_weeks.append(g_days)
        greedy_times.append(g_took)
        if result is None:
            solved.append(Counter())
            continue
        solved.append(Counter(result.a_days))
        recent = frozenset(frozenset(p) for p in result.pairs)
        elapsed.append(took)
        reported.append(result.stats["wall_time_s"])
        print(
            f"{week}: solver {took * 1000:7.1f} ms"
            f" (CP-SAT wall {result.stats['wall_time_s'] * 1000:6.1f} ms, {result.status})"
            f" spread4w={spread(solved, ids)}"
            f" relief={result.stats['relief_shifts']} idle={result.stats['idle_worker_days']}"
            f" pair_repeats={result.stats['pair_repeats']}"
            f" max_days={max(Counter(s.worker_id for s in result.shifts).values())}"
            f" short={sum(s.short for s in result.shortfalls)}"
            f" | greedy {g_took * 1000:6.2f} ms spread4w={spread(greedy_weeks, ids)}"
            f" grids_short={g_short}"
        )
    if elapsed:
        emit(
            "roster_bench",
            "solver per week (max)",
            max(elapsed),
            "s",
            rules.time_limit_s,
            limit_note="the solver's own time limit",
        )
        print(
            f"solver per week: median {statistics.median(elapsed) * 1000:.1f} ms,"
            f" max {max(elapsed) * 1000:.1f} ms; CP-SAT reported median"
            f" {statistics.median(reported) * 1000:.1f} ms"
        )
    print(
        f"greedy per week: median {statistics.median(greedy_times) * 1000:.2f} ms"
        f" (no fairness, pairs or relief)"
    )


if __name__ == "__main__":
    main()
