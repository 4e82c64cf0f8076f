"""Grading of the location evidence of a door-to-door visit: ok, doubtful or suspect, and why."""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from geo.measure import distance_m, haversine_m

__all__ = [
    "DEFAULT_RULES",
    "GRADES",
    "REASON_GRADES",
    "Evidence",
    "EvidenceInput",
    "EvidenceRules",
    "Grade",
    "grade_visit",
]

Grade = Literal["ok", "doubtful", "suspect"]
GRADES: tuple[Grade, ...] = ("ok", "doubtful", "suspect")

# Every reason code grade_visit can give, with the grade it forces. Codes are stable: clients
# and reports match on them.
REASON_GRADES: dict[str, Grade] = {
    "mock_location": "suspect",
    "no_accuracy": "doubtful",
    "poor_accuracy": "doubtful",
    "bad_accuracy": "suspect",
    "outside_grid": "doubtful",
    "far_from_household": "doubtful",
    "very_far_from_household": "suspect",
    "impossible_speed": "suspect",
    "future_time": "suspect",
    "stale": "doubtful",
}

# A visit's neighbour in time: (point, visited_at) or (point, visited_at, accuracy_m).
Neighbour = tuple[Point, datetime] | tuple[Point, datetime, float | None]


@dataclass
class EvidenceInput:
    """What is known about one visit's location. Points are WGS-84 lon/lat; times are aware."""

    point: Point
    accuracy_m: float | None
    mock: bool
    visited_at: datetime
    received_at: datetime
    grid_boundary: BaseGeometry | None = None
    household_point: Point | None = None
    # The same worker's previous and next visits in time. A third element, the other visit's
    # accuracy in metres, may be given; without it the other fix is assumed as good as this one.
    previous: Neighbour | None = None
    next: Neighbour | None = None


@dataclass(frozen=True)
class EvidenceRules:
    """Thresholds for grading; the defaults suit a worker on foot in a city grid."""

    grid_tolerance_m: float = 50.0
    household_near_m: float = 100.0
    household_far_m: float = 500.0
    accuracy_poor_m: float = 100.0
    accuracy_bad_m: float = 500.0
    max_speed_mps: float = 42.0  # 150 km/h: faster than any road in a city allows
    future_tolerance: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=14)


DEFAULT_RULES = EvidenceRules()


@dataclass
class Evidence:
    """The grade of a visit's location evidence, the reason codes behind it, and the numbers."""

    grade: Grade
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def _metres(v: float) -> float:
    return round(v, 1)


def _require_aware(name: str, t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _accuracy_reason(accuracy_m: float | None, rules: EvidenceRules) -> str | None:
    if accuracy_m is None or not math.isfinite(accuracy_m) or accuracy_m < 0:
        return "no_accuracy"
    if accuracy_m > rules.accuracy_bad_m:
        return "bad_accuracy"
    if accuracy_m > rules.accuracy_poor_m:
        return "poor_accuracy"
    return None


def _usable_accuracy(accuracy_m: float | None) -> float:
    if accuracy_m is None or not math.isfinite(accuracy_m) or accuracy_m < 0:
        return 0.0
    return float(accuracy_m)


def _speed(
    inp: EvidenceInput, other: Neighbour, rules: EvidenceRules
) -> tuple[float, float, float | None, bool]:
    """(distance m, seconds apart, speed m/s or None, impossible?) between inp and a neighbour."""
    point, at = other[0], other[1]
    _require_aware("a neighbouring visit's time", at)
    own = _usable_accuracy(inp.accuracy_m)
    theirs = _usable_accuracy(other[2]) if len(other) > 2 else own
    d = haversine_m(inp.point.x, inp.point.y, point.x, point.y)
    seconds = abs((inp.visited_at - at).total_seconds())
    # Two fixes closer than their combined uncertainty may be the same spot: no evidence of
    # movement at all, however close in time.
    if d <= own + theirs:
        return d, seconds, (d / seconds if seconds else None), False
    if seconds == 0:
        return d, seconds, None, True
    speed = d / seconds
    return d, seconds, speed, speed > rules.max_speed_mps


def grade_visit(inp: EvidenceInput, rules: EvidenceRules = DEFAULT_RULES) -> Evidence:
    """Grade a visit's location evidence. The grade is the worst grade among the reasons found.

    Distances are metres (haversine, or a local metric projection for the grid); the reported
    details are rounded to 0.1 m, 0.1 m/s and whole seconds and are JSON-serialisable.
    """
    _require_aware("visited_at", inp.visited_at)
    _require_aware("received_at", inp.received_at)
    reasons: list[str] = []
    details: dict[str, Any] = {}

    if inp.mock:
        reasons.append("mock_location")

    details["accuracy_m"] = (
        _metres(inp.accuracy_m)
        if inp.accuracy_m is not None and math.isfinite(inp.accuracy_m)
        else None
    )
    accuracy = _accuracy_reason(inp.accuracy_m, rules)
    if accuracy:
        reasons.append(accuracy)

    if inp.grid_boundary is not None and not inp.grid_boundary.is_empty:
        to_grid = distance_m(inp.point, inp.grid_boundary)
        details["distance_to_grid_m"] = _metres(to_grid)
        if to_grid > rules.grid_tolerance_m:
            reasons.append("outside_grid")

    if inp.household_point is not None and not inp.household_point.is_empty:
        h = inp.household_point
        to_home = haversine_m(inp.point.x, inp.point.y, h.x, h.y)
        details["distance_to_household_m"] = _metres(to_home)
        if to_home > rules.household_far_m:
            reasons.append("very_far_from_household")
        elif to_home > rules.household_near_m:
            reasons.append("far_from_household")

    impossible = False
    for name, other in (("previous", inp.previous), ("next", inp.next)):
        if other is None:
            continue
        d, seconds, speed, too_fast = _speed(inp, other, rules)
        details[f"distance_to_{name}_m"] = _metres(d)
        details[f"seconds_to_{name}"] = round(seconds)
        details[f"speed_to_{name}_mps"] = None if speed is None else round(speed, 1)
        impossible = impossible or too_fast
    if impossible:
        reasons.append("impossible_speed")

    ahead = inp.visited_at - inp.received_at
    details["delay_s"] = round(-ahead.total_seconds())
    if ahead > rules.future_tolerance:
        reasons.append("future_time")
    elif -ahead > rules.max_age:
        reasons.append("stale")

    rank = max((GRADES.index(REASON_GRADES[r]) for r in reasons), default=0)
    return Evidence(grade=GRADES[rank], reasons=reasons, details=details)
