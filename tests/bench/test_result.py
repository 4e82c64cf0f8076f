"""The benchmarks' figures: the percentile their latency goals are judged on."""

from __future__ import annotations

from bench._result import pct


def test_p95_of_72_timings_is_the_fourth_slowest():
    # tiles.py takes a zoom's p95 over at least 72 timings: 68 of them (94.4 %) at or below the
    # fifth-slowest, so only the fourth-slowest has 95 % of the timings at or below it.
    timings = list(range(1, 73))
    assert pct(timings, 95) == 69


def test_p95_of_36_timings_is_the_second_slowest():
    assert pct(list(range(1, 37)), 95) == 35


def test_a_percentile_is_the_least_value_with_p_percent_of_the_values_at_or_below_it():
    for p in (50, 95, 99):
        for n in range(1, 301):
            values = list(range(n))
            at_or_below = sum(v <= pct(values, p) for v in values)
            assert at_or_below * 100 >= p * n, (p, n)
            assert (at_or_below - 1) * 100 < p * n, (p, n)


def test_percentile_does_not_depend_on_the_order_of_the_values():
    assert pct([5.0, 1.0, 4.0, 2.0, 3.0], 50) == 3.0
