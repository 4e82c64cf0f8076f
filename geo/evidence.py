"""Grading of the location evidence of a door-to-door visit: ok, doubtful or suspect, and why."""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import shapely
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
    "grade_lazily",
    "grade_visits",
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
    return round(float(v), 1)


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


def grade_visit(inp: EvidenceInput, rules: EvidenceRules = DEFAULT_RULES) -> Evidence:
    """Grade a visit's location evidence: `grade_visits` of a batch of one."""
    return grade_visits([inp], rules)[0]


def grade_visits(
    inputs: Sequence[EvidenceInput], rules: EvidenceRules = DEFAULT_RULES
) -> list[Evidence]:
    """Grade each visit's location evidence. A grade is the worst grade among the reasons found.

    Distances are metres (haversine, or a local metric projection for the grid); the reported
    details are rounded to 0.1 m, 0.1 m/s and whole seconds and are JSON-serialisable. The
    measuring is vectorised over the batch (one call per distinct grid boundary, one per kind
    of distance); only the verdicts are made per visit.
    """
    return list(grade_lazily(inputs, rules))


def grade_lazily(
    inputs: Sequence[EvidenceInput], rules: EvidenceRules = DEFAULT_RULES
) -> Iterator[Evidence]:
    """`grade_visits`, measuring the batch now and making each verdict when it is asked for.

    A caller that streams its rows to the database (the visit ingest) then grades each visit
    while the database stores the previous ones. Bad inputs are refused here, before any
    verdict is made.
    """
    for inp in inputs:
        _require_aware("visited_at", inp.visited_at)
        _require_aware("received_at", inp.received_at)
        for other in (inp.previous, inp.next):
            if other is not None:
                _require_aware("a neighbouring visit's time", other[1])
    if not inputs:
        return iter(())
    x, y = _xy([inp.point for inp in inputs])
    to_grid = _grid_distances(inputs, x, y)
    to_home = _distances(x, y, [inp.household_point for inp in inputs])
    to_previous = _distances(x, y, [_neighbour_point(inp.previous) for inp in inputs])
    to_next = _distances(x, y, [_neighbour_point(inp.next) for inp in inputs])
    return (
        _verdict(inp, rules, to_grid[i], to_home[i], to_previous[i], to_next[i])
        for i, inp in enumerate(inputs)
    )


def _xy(points: Sequence[BaseGeometry]) -> tuple[np.ndarray, np.ndarray]:
    array = np.empty(len(points), dtype=object)
    array[:] = points
    return shapely.get_x(array), shapely.get_y(array)


def _neighbour_point(other: Neighbour | None) -> Point | None:
    return None if other is None else other[0]


def _distances(x: np.ndarray, y: np.ndarray, others: Sequence[Point | None]) -> np.ndarray:
    """Haversine metres from each visit to its other point; NaN where it has none (or empty)."""
    out = np.full(len(others), np.nan)
    idx = np.array([i for i, p in enumerate(others) if p is not None and not p.is_empty], int)
    if idx.size:
        ox, oy = _xy([others[i] for i in idx])
        out[idx] = haversine_m(x[idx], y[idx], ox, oy)
    return out


def _grid_distances(inputs: Sequence[EvidenceInput], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Metres from each visit to its grid boundary (0 inside); NaN where it has none.

    The visits sharing a boundary (a batch has a territory a day) are tested in one call; only
    those outside it are measured one by one (`distance_m`: nearest points, great circle).
    """
    out = np.full(len(inputs), np.nan)
    shared: dict[int, list[int]] = {}
    for i, inp in enumerate(inputs):
        boundary = inp.grid_boundary
        if boundary is not None and not boundary.is_empty:
            shared.setdefault(id(boundary), []).append(i)
    for members in shared.values():
        boundary = inputs[members[0]].grid_boundary
        idx = np.array(members)
        inside = shapely.intersects_xy(boundary, x[idx], y[idx])
        out[idx[inside]] = 0.0
        for i in idx[~inside]:
            out[i] = distance_m(inputs[i].point, boundary)
    return out


def _movement(
    inp: EvidenceInput, other: Neighbour, d: float, rules: EvidenceRules
) -> tuple[float, float | None, bool]:
    """(seconds apart, speed m/s or None, impossible?) between a visit and its neighbour."""
    own = _usable_accuracy(inp.accuracy_m)
    theirs = _usable_accuracy(other[2]) if len(other) > 2 else own
    seconds = abs((inp.visited_at - other[1]).total_seconds())
    # Two fixes closer than their combined uncertainty may be the same spot: no evidence of
    # movement at all, however close in time.
    if d <= own + theirs:
        return seconds, (d / seconds if seconds else None), False
    if seconds == 0:
        return seconds, None, True
    speed = d / seconds
    return seconds, speed, speed > rules.max_speed_mps


def _verdict(
    inp: EvidenceInput,
    rules: EvidenceRules,
    to_grid: float,
    to_home: float,
    to_previous: float,
    to_next: float,
) -> Evidence:
    """The reasons, details and grade of one visit from its measured distances (NaN: none)."""
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

    # The fix is a circle, not a point: the phone puts the worker within its accuracy of it.
    # Distances are judged by the circle's nearest edge, as movement is (`_movement`): at the
    # door of a tower block a fix 550 m off with 300 m of accuracy is no proof of 500 m away.
    # The distances reported stay the ones measured.
    slack = _usable_accuracy(inp.accuracy_m)
    if not math.isnan(to_grid):
        details["distance_to_grid_m"] = _metres(to_grid)
        if to_grid - slack > rules.grid_tolerance_m:
            reasons.append("outside_grid")

    if not math.isnan(to_home):
        details["distance_to_household_m"] = _metres(to_home)
        nearest = to_home - slack
        if nearest > rules.household_far_m:
            reasons.append("very_far_from_household")
        elif nearest > rules.household_near_m:
            reasons.append("far_from_household")

    impossible = False
    for name, other, d in (("previous", inp.previous, to_previous), ("next", inp.next, to_next)):
        if other is None:
            continue
        d = float(d)
        seconds, speed, too_fast = _movement(inp, other, d, rules)
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
