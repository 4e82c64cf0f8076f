"""Tests for geo.evidence: grading a visit's location evidence as ok, doubtful or suspect."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Point, box

from geo.evidence import EvidenceInput, EvidenceRules, grade_visit, grade_visits
from geo.measure import haversine_m

# One metre of latitude is about 1 / 111,195 degrees; offsets below use it to place points.
M_LAT = 1 / 111_195
VISITED = datetime(2024, 5, 6, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
HOME = Point(116.4050, 39.9050)
GRID = box(116.40, 39.90, 116.41, 39.91)


def north_of(p: Point, metres: float) -> Point:
    return Point(p.x, p.y + metres * M_LAT)


def visit(**changes) -> EvidenceInput:
    """A clean visit at the household, inside the grid, sent a minute later."""
    base = EvidenceInput(
        point=north_of(HOME, 10),
        accuracy_m=15.0,
        mock=False,
        visited_at=VISITED,
        received_at=VISITED + timedelta(minutes=1),
        grid_boundary=GRID,
        household_point=HOME,
    )
    return replace(base, **changes)


def test_clean_visit_is_ok_with_no_reasons():
    result = grade_visit(visit())
    assert (result.grade, result.reasons) == ("ok", [])


def test_visit_without_grid_or_household_can_be_ok():
    assert grade_visit(visit(grid_boundary=None, household_point=None)).grade == "ok"


def test_mock_location_is_suspect():
    result = grade_visit(visit(mock=True))
    assert (result.grade, result.reasons) == ("suspect", ["mock_location"])


def test_missing_accuracy_is_doubtful():
    result = grade_visit(visit(accuracy_m=None))
    assert (result.grade, result.reasons) == ("doubtful", ["no_accuracy"])


@pytest.mark.parametrize("nonsense", [float("nan"), -1.0])
def test_nonsense_accuracy_counts_as_missing(nonsense):
    assert grade_visit(visit(accuracy_m=nonsense)).reasons == ["no_accuracy"]


def test_accuracy_at_poor_threshold_is_ok():
    assert grade_visit(visit(accuracy_m=100.0)).grade == "ok"


def test_poor_accuracy_is_doubtful():
    result = grade_visit(visit(accuracy_m=150.0))
    assert (result.grade, result.reasons) == ("doubtful", ["poor_accuracy"])


def test_bad_accuracy_is_suspect():
    result = grade_visit(visit(accuracy_m=800.0))
    assert (result.grade, result.reasons) == ("suspect", ["bad_accuracy"])


def test_point_inside_grid_has_zero_distance_to_grid():
    assert grade_visit(visit()).details["distance_to_grid_m"] == 0.0


def test_point_just_outside_grid_within_tolerance_is_ok():
    near_edge = north_of(Point(116.405, 39.91), 40)
    result = grade_visit(visit(point=near_edge, household_point=None))
    assert result.grade == "ok"


def test_point_outside_grid_beyond_tolerance_is_doubtful():
    outside = north_of(Point(116.405, 39.91), 80)
    result = grade_visit(visit(point=outside, household_point=None))
    assert (result.grade, result.reasons) == ("doubtful", ["outside_grid"])


def test_a_fix_within_its_accuracy_of_the_grid_tolerance_is_not_outside_the_grid():
    """At a door on the grid's edge the phone is 80 m unsure of a fix 120 m outside: the
    worker may be 40 m outside, within the 50 m tolerance."""
    outside = north_of(Point(116.405, 39.91), 120)
    result = grade_visit(visit(point=outside, household_point=None, accuracy_m=80.0))
    assert (result.grade, result.reasons) == ("ok", [])
    assert result.details["distance_to_grid_m"] == pytest.approx(120, abs=0.5)


def test_a_fix_farther_outside_than_its_accuracy_allows_is_outside_the_grid():
    outside = north_of(Point(116.405, 39.91), 140)
    result = grade_visit(visit(point=outside, household_point=None, accuracy_m=80.0))
    assert (result.grade, result.reasons) == ("doubtful", ["outside_grid"])


def test_distance_to_grid_is_reported_in_metres():
    outside = north_of(Point(116.405, 39.91), 80)
    result = grade_visit(visit(point=outside, household_point=None))
    assert result.details["distance_to_grid_m"] == pytest.approx(80, abs=0.5)


def test_household_within_near_distance_is_ok():
    assert grade_visit(visit(point=north_of(HOME, 90))).reasons == []


def test_far_from_household_is_doubtful():
    result = grade_visit(visit(point=north_of(HOME, 200)))
    assert (result.grade, result.reasons) == ("doubtful", ["far_from_household"])


def test_very_far_from_household_is_suspect():
    result = grade_visit(visit(point=north_of(HOME, 600), grid_boundary=None))
    assert (result.grade, result.reasons) == ("suspect", ["very_far_from_household"])


def test_a_fix_within_its_accuracy_of_the_far_limit_is_not_very_far_from_the_household():
    """At the door of a tower block the phone is 300 m unsure of a fix 550 m away: the worker
    may be 250 m from the door, far but not very far (suspect is for more than 500 m)."""
    result = grade_visit(visit(point=north_of(HOME, 550), accuracy_m=300.0, grid_boundary=None))
    assert (result.grade, result.reasons) == ("doubtful", ["poor_accuracy", "far_from_household"])


def test_a_fix_within_its_accuracy_of_the_household_is_not_far():
    result = grade_visit(visit(point=north_of(HOME, 140), accuracy_m=60.0))
    assert (result.grade, result.reasons) == ("ok", [])


def test_the_distance_to_the_household_is_reported_as_measured_whatever_the_accuracy():
    result = grade_visit(visit(point=north_of(HOME, 550), accuracy_m=300.0, grid_boundary=None))
    assert result.details["distance_to_household_m"] == pytest.approx(550, abs=0.5)


def test_a_fix_farther_than_its_accuracy_beyond_the_far_limit_is_still_very_far():
    result = grade_visit(visit(point=north_of(HOME, 900), accuracy_m=300.0, grid_boundary=None))
    assert (result.grade, result.reasons) == (
        "suspect",
        ["poor_accuracy", "very_far_from_household"],
    )


def test_distance_to_household_is_reported_rounded_to_decimetres():
    point = north_of(HOME, 200)
    expected = round(haversine_m(point.x, point.y, HOME.x, HOME.y), 1)
    assert grade_visit(visit(point=point)).details["distance_to_household_m"] == expected


def test_walking_pace_from_previous_visit_is_ok():
    previous = (north_of(HOME, -300), VISITED - timedelta(minutes=5))
    assert grade_visit(visit(previous=previous)).reasons == []


def test_impossible_speed_from_previous_visit_is_suspect():
    previous = (north_of(HOME, -20_000), VISITED - timedelta(minutes=5))  # 20 km in 5 min
    result = grade_visit(visit(previous=previous))
    assert (result.grade, result.reasons) == ("suspect", ["impossible_speed"])


def test_impossible_speed_to_next_visit_is_suspect():
    following = (north_of(HOME, 20_000), VISITED + timedelta(minutes=5))
    assert grade_visit(visit(next=following)).reasons == ["impossible_speed"]


def test_speed_is_reported_in_metres_per_second():
    previous = (north_of(HOME, -20_000), VISITED - timedelta(minutes=5))
    speed = grade_visit(visit(previous=previous)).details["speed_to_previous_mps"]
    assert speed == pytest.approx(20_010 / 300, abs=0.2)


def test_jitter_within_accuracy_is_not_speed_even_at_same_instant():
    previous = (north_of(HOME, 0), VISITED)  # 10 m apart, accuracies 15 + 15 m
    assert grade_visit(visit(previous=previous)).reasons == []


def test_movement_at_the_same_instant_is_impossible():
    previous = (north_of(HOME, 500), VISITED)
    result = grade_visit(visit(previous=previous))
    assert result.reasons == ["impossible_speed"]
    assert result.details["speed_to_previous_mps"] is None


def test_neighbour_accuracy_widens_the_jitter_allowance():
    # 400 m apart in 1 s: too fast, unless the earlier fix was only good to 500 m.
    previous = (north_of(HOME, 410), VISITED - timedelta(seconds=1), 500.0)
    assert grade_visit(visit(previous=previous)).reasons == []


def test_visit_time_slightly_ahead_of_server_is_ok():
    result = grade_visit(visit(received_at=VISITED - timedelta(minutes=4)))
    assert result.grade == "ok"


def test_visit_time_in_the_future_is_suspect():
    result = grade_visit(visit(received_at=VISITED - timedelta(hours=1)))
    assert (result.grade, result.reasons) == ("suspect", ["future_time"])


def test_visit_received_after_fourteen_days_is_stale():
    result = grade_visit(visit(received_at=VISITED + timedelta(days=15)))
    assert (result.grade, result.reasons) == ("doubtful", ["stale"])


def test_visit_received_after_a_week_offline_is_not_stale():
    assert grade_visit(visit(received_at=VISITED + timedelta(days=7))).grade == "ok"


def test_grade_is_worst_of_all_reasons():
    result = grade_visit(visit(accuracy_m=None, mock=True))
    assert (result.grade, result.reasons) == ("suspect", ["mock_location", "no_accuracy"])


def test_rules_can_be_tightened():
    # 30 m from the door with 15 m of accuracy: at least 15 m away.
    strict = EvidenceRules(household_near_m=5)
    assert grade_visit(visit(point=north_of(HOME, 30)), strict).reasons == ["far_from_household"]
    assert grade_visit(visit(point=north_of(HOME, 30))).reasons == []


def test_naive_visit_time_is_rejected():
    with pytest.raises(ValueError, match="visited_at must be a timezone-aware"):
        grade_visit(visit(visited_at=VISITED.replace(tzinfo=None)))


def test_naive_neighbour_time_is_rejected():
    previous = (HOME, VISITED.replace(tzinfo=None) - timedelta(minutes=5))
    with pytest.raises(ValueError, match="timezone-aware"):
        grade_visit(visit(previous=previous))


def test_details_are_json_serialisable():
    inp = visit(
        previous=(north_of(HOME, 500), VISITED),
        next=(north_of(HOME, 100), VISITED + timedelta(minutes=3)),
        accuracy_m=float("nan"),
    )
    details = grade_visit(inp).details
    assert json.loads(json.dumps(details, allow_nan=False)) == details


def test_a_batch_is_graded_as_each_visit_alone():
    # The batch shares boundaries (measured in one call per boundary) and mixes every case.
    other_grid = box(116.42, 39.90, 116.43, 39.91)
    batch = [
        visit(),
        visit(point=north_of(HOME, 150)),
        visit(point=Point(116.39, 39.905), household_point=None),  # outside the grid
        visit(grid_boundary=other_grid),
        visit(grid_boundary=None, mock=True, accuracy_m=None),
        visit(previous=(north_of(HOME, 2_000), VISITED - timedelta(seconds=10), 5.0)),
        visit(next=(north_of(HOME, 12), VISITED), previous=(HOME, VISITED - timedelta(hours=1))),
        visit(received_at=VISITED - timedelta(hours=1)),
    ]
    graded = grade_visits(batch)
    assert [(e.grade, e.reasons, e.details) for e in graded] == [
        (e.grade, e.reasons, e.details) for e in map(grade_visit, batch)
    ]
    assert {e.grade for e in graded} == {"ok", "doubtful", "suspect"}
    assert graded[2].details["distance_to_grid_m"] > 800


def test_grading_an_empty_batch_gives_nothing():
    assert grade_visits([]) == []
