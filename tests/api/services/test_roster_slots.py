"""Staggered window hours: which of the day's A-post workers takes which time slot."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from api.services.roster_slots import assign_slots

MON = date(2026, 11, 23)
WEEK = [MON + timedelta(days=i) for i in range(5)]


def per_day(got: dict[tuple[int, date], int]) -> dict[date, Counter]:
    days: dict[date, Counter] = {}
    for (_worker, day), slot in got.items():
        days.setdefault(day, Counter())[slot] += 1
    return days


def test_every_slot_is_staffed_each_day_and_every_worker_has_one():
    window = {d: [1, 2, 3] for d in WEEK}
    got = assign_slots(window, n_slots=2)
    assert set(got) == {(w, d) for d in WEEK for w in (1, 2, 3)}
    for day, staffed in per_day(got).items():
        assert set(staffed) == {0, 1}, day


def test_a_day_short_of_workers_staffs_as_many_slots_as_it_has_workers():
    got = assign_slots({MON: [4, 9]}, n_slots=3)
    assert set(got) == {(4, MON), (9, MON)}
    assert len(set(got.values())) == 2  # two slots staffed, nobody doubled up


def test_the_early_and_late_slots_are_shared_fairly_over_the_week():
    # Four workers at the window every day, two slots: each takes both about as often.
    window = {d: [1, 2, 3, 4] for d in WEEK}
    got = assign_slots(window, n_slots=2)
    for worker in (1, 2, 3, 4):
        held = Counter(slot for (w, _d), slot in got.items() if w == worker)
        assert abs(held[0] - held[1]) <= 1, (worker, held)


def test_fairness_holds_among_workers_who_come_to_the_window_on_different_days():
    window = {WEEK[0]: [1, 2], WEEK[1]: [2, 3], WEEK[2]: [1, 3], WEEK[3]: [1, 2], WEEK[4]: [2, 3]}
    got = assign_slots(window, n_slots=2)
    for worker in (1, 2, 3):
        held = Counter(slot for (w, _d), slot in got.items() if w == worker)
        assert abs(held[0] - held[1]) <= 1, (worker, held)


def test_a_worker_who_held_the_late_slot_in_the_weeks_before_starts_early():
    got = assign_slots({MON: [1, 2]}, n_slots=2, history={1: [0, 3], 2: [3, 0]})
    assert got == {(1, MON): 0, (2, MON): 1}


def test_the_assignment_is_deterministic():
    window = {d: [5, 3, 8, 1] for d in WEEK}
    assert assign_slots(window, n_slots=3) == assign_slots(window, n_slots=3)


def test_no_slots_assigns_nothing():
    assert assign_slots({MON: [1, 2]}, n_slots=0) == {}
