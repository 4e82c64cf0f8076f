"""Benchmark: the pure helpers' speed, once asserted by timed tests (which flaked on a loaded CI).

    python -m bench.generate [--repeat 5]

- the city generator: a 900,000-household city (3,000 grids) drawn and its first household
  yielded (the rest streams lazily: tests/fixtures_gen pins that by memory, not by time);
- 20,000 households streamed whole (67 grids);
- the demo district (14 grids, its households and accounts) built whole, as the e2e suite and
  `gridwork seed demo` build it (goal 1 s; once a timed test in tests/fixtures_gen);
- geo.routing's walking order of 400 households (a big grid's week) beside its nearest-neighbour
  pass alone, the floor the 2-opt improvement is built on.

Each figure is the median of --repeat runs, printed beside its goal. No database is touched.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from bench._result import reporter
from fixtures.demo import demo_district
from fixtures.generate import generate_city
from geo.routing import nearest_neighbour_order, walking_order

result = reporter("generate")
START = (116.400, 39.900)


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def first_row_of_a_900k_city() -> None:
    next(generate_city(900_000)["households"])


def all_of_20k_households() -> None:
    assert sum(1 for _ in generate_city(20_000, seed=11)["households"]) == 20_000


def scattered(n: int, seed: int) -> list[tuple[int, float, float]]:
    """n households over a grid-sized area (about 850 m x 900 m), as tests/geo scatters them."""
    rng = random.Random(seed)
    return [(i, 116.40 + rng.random() * 0.01, 39.90 + rng.random() * 0.008) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    took = median_seconds(first_row_of_a_900k_city, args.repeat)
    note = "goal: 2 s (grids drawn now, rows lazily)"
    result("city_900k_first_row_s", took, "s", 2.0, note, took <= 2.0)
    took = median_seconds(all_of_20k_households, args.repeat)
    result("households_20k_stream_s", took, "s", 3.0, "goal: 3 s", took <= 3.0)
    took = median_seconds(demo_district, args.repeat)
    result("demo_district_s", took, "s", 1.0, "goal: 1 s", took <= 1.0)

    points = scattered(400, seed=6)
    floor = median_seconds(lambda: nearest_neighbour_order(START, points), args.repeat)
    result("route_400_nearest_neighbour_s", floor, "s", None, "the pass 2-opt starts from", True)
    took = median_seconds(
        lambda: walking_order(START, points, priority=lambda k: k % 4 == 0), args.repeat
    )
    result("route_400_walking_order_s", took, "s", 0.5, "goal: 0.5 s", took <= 0.5)


if __name__ == "__main__":
    main()
