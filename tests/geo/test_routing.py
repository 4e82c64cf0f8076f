"""Tests for geo.routing: walking order by nearest neighbour and 2-opt, with priority classes."""

import random

import pytest

from geo.routing import nearest_neighbour_order, route_length_m, walking_order

START = (116.400, 39.900)


def scattered(n: int, seed: int) -> list[tuple[int, float, float]]:
    """n households scattered over a grid-sized area (about 850 m x 900 m)."""
    rng = random.Random(seed)
    return [(i, 116.40 + rng.random() * 0.01, 39.90 + rng.random() * 0.008) for i in range(n)]


def test_empty_input_gives_empty_route():
    assert walking_order(START, []) == []


def test_nearest_neighbour_of_no_points_is_empty():
    assert nearest_neighbour_order(None, []) == []


def test_single_point_is_its_own_route():
    assert walking_order(None, [("a", 116.4, 39.9)]) == ["a"]


@pytest.mark.parametrize("start", [START, None])
def test_route_is_a_permutation_of_the_keys(start):
    points = scattered(60, seed=1)
    assert sorted(walking_order(start, points)) == list(range(60))


def test_points_on_a_street_are_walked_in_street_order():
    street = [(k, 116.400 + 0.001 * i, 39.9) for i, k in enumerate("abcdef")]
    shuffled = [street[i] for i in (3, 0, 5, 1, 4, 2)]
    assert walking_order((116.399, 39.9), shuffled) == list("abcdef")


def test_without_start_route_begins_at_north_west_point():
    points = [("se", 116.41, 39.90), ("nw", 116.40, 39.91), ("ne", 116.41, 39.91)]
    assert walking_order(None, points)[0] == "nw"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("start", [START, None])
def test_two_opt_never_lengthens_the_nearest_neighbour_route(seed, start):
    points = scattered(80, seed)
    nn = route_length_m(start, points, nearest_neighbour_order(start, points))
    assert route_length_m(start, points, walking_order(start, points)) <= nn


def test_two_opt_shortens_a_typical_route():
    points = scattered(200, seed=7)
    nn = route_length_m(START, points, nearest_neighbour_order(START, points))
    assert route_length_m(START, points, walking_order(START, points)) < 0.95 * nn


# Households along one street, in units of 0.001 degree (about 85 m) from the start: going to
# the nearest first (w1) means walking back past the start twice.
STREET = [("w1", 116.399, 39.9), ("e1", 116.4015, 39.9), ("w4", 116.396, 39.9)]


def test_nearest_neighbour_goes_to_the_closest_point_each_time():
    assert nearest_neighbour_order(START, STREET) == ["w1", "e1", "w4"]


def test_two_opt_removes_the_back_and_forth_of_nearest_neighbour():
    assert walking_order(START, STREET) == ["e1", "w1", "w4"]


def test_higher_priority_class_is_visited_first():
    points = scattered(50, seed=3)
    urgent = {k for k, _, _ in points if k % 5 == 0}
    order = walking_order(START, points, priority=lambda k: k in urgent)
    assert set(order[: len(urgent)]) == urgent


def test_three_priority_classes_come_in_descending_order():
    points = scattered(45, seed=4)
    order = walking_order(START, points, priority=lambda k: k % 3)
    assert [k % 3 for k in order] == [2] * 15 + [1] * 15 + [0] * 15


def test_next_class_continues_from_where_the_previous_ended():
    points = [("urgent", 116.420, 39.9), ("far", 116.400, 39.9), ("near", 116.419, 39.9)]
    order = walking_order(START, points, priority=lambda k: k == "urgent")
    assert order == ["urgent", "near", "far"]


def test_route_is_deterministic():
    points = scattered(120, seed=5)
    assert walking_order(None, points, priority=lambda k: k % 2) == walking_order(
        None, points, priority=lambda k: k % 2
    )


def test_route_length_counts_from_start():
    points = [("a", 116.401, 39.9)]
    assert route_length_m(START, points, ["a"]) == pytest.approx(85.3, abs=0.1)


def test_route_length_without_start_counts_between_points_only():
    points = [("a", 116.401, 39.9), ("b", 116.402, 39.9)]
    assert route_length_m(None, points, ["a", "b"]) == pytest.approx(85.3, abs=0.1)
