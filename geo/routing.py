"""Walking order for a round of household visits: nearest neighbour improved by 2-opt."""

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import numpy as np

from geo.measure import haversine_m

__all__ = ["nearest_neighbour_order", "route_length_m", "walking_order"]

K = TypeVar("K", bound=Hashable)

# 2-opt stops after this many full passes without reaching a local optimum. Each pass is
# O(n) numpy operations of length O(n); 400 points settle in a handful of passes.
MAX_TWO_OPT_PASSES = 50
# Improvements smaller than this (metres) are ignored, so rounding cannot make 2-opt cycle.
_EPSILON_M = 1e-6


def _distance_matrix(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Haversine distances in metres between every pair of positions."""
    return haversine_m(lon[:, None], lat[:, None], lon[None, :], lat[None, :])


def _north_west_index(lon: np.ndarray, lat: np.ndarray, members: Sequence[int]) -> int:
    """The member nearest the north-west corner of the members' bounding box."""
    idx = np.asarray(members)
    corner_lon, corner_lat = lon[idx].min(), lat[idx].max()
    d = haversine_m(lon[idx], lat[idx], corner_lon, corner_lat)
    return int(idx[int(np.argmin(d))])  # argmin takes the first of equals: deterministic


def _nearest_neighour(dist: np.ndarray, anchor: int, members: Sequence[int]) -> list[int]:
    """Visit ``members`` greedily, always going to the nearest unvisited one from ``anchor``."""
    remaining = np.asarray(members)
    order = []
    here = anchor
    while remaining.size:
        k = int(np.argmin(dist[here, remaining]))
        here = int(remaining[k])
        order.append(here)
        remaining = np.delete(remaining, k)
    return order


def _two_opt(dist: np.ndarray, anchor: int, order: list[int]) -> list[int]:
    """Improve an open path anchor -> order[0] -> ... -> order[-1] by reversing segments.

    The anchor stays first and the path's end is free. A dummy end node at distance 0 from
    everything turns the open path into the classic 2-opt form, so one formula covers every move.
    """
    n = dist.shape[0]
    ext = np.zeros((n + 1, n + 1))
    ext[:n, :n] = dist
    path = np.array([anchor, *order, n])
    m = len(path)
    for _ in range(MAX_TWO_OPT_PASSES):
        improved = False
        for i in range(1, m - 2):
            a, b = path[i - 1], path[i]
            c, d = path[i + 1 : m - 1], path[i + 2 : m]
            # Reversing path[i..j] replaces edges (a,b) and (c,d) with (a,c) and (b,d).
            gain = ext[a, c] + ext[b, d] - ext[a, b] - ext[c, d]
            k = int(np.argmin(gain))
            if gain[k] < -_EPSILON_M:
                j = i + 1 + k
                path[i : j + 1] = path[i : j + 1][::-1].copy()
                improved = True
        if not improved:
            break
    return [int(p) for p in path[1:-1]]


def _path_length(dist: np.ndarray, anchor: int | None, order: Sequence[int]) -> float:
    stops = ([anchor] if anchor is not None else []) + list(order)
    return float(sum(dist[p, q] for p, q in zip(stops, stops[1:], strict=False)))


def _prepare(
    start: tuple[float, float] | None, points: Sequence[tuple[Any, float, float]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int | None]:
    lon = np.array([p[1] for p in points] + ([start[0]] if start else []), dtype=float)
    lat = np.array([p[2] for p in points] + ([start[1]] if start else []), dtype=float)
    dist = _distance_matrix(lon, lat)
    return lon, lat, dist, (len(points) if start else None)


def nearest_neighbour_order(
    start: tuple[float, float] | None, points: Sequence[tuple[K, float, float]]
) -> list[K]:
    """Keys in plain nearest-neighbour order from ``start`` (or the north-west-most point)."""
    if not points:
        return []
    lon, lat, dist, start_index = _prepare(start, points)
    members = list(range(len(points)))
    if start_index is None:
        first = _north_west_index(lon, lat, members)
        rest = [i for i in members if i != first]
        order = [first, *_nearest_neighour(dist, first, rest)]
    else:
        order = _nearest_neighour(dist, start_index, members)
    return [points[i][0] for i in order]


def walking_order(
    start: tuple[float, float] | None,
    points: Sequence[tuple[K, float, float]],
    priority: Callable[[K], Any] | None = None,
) -> list[K]:
    """Order ``(key, lon, lat)`` points into a short walking route and return their keys.

    The route starts at ``start`` (lon, lat) if given, else at the point nearest the north-west
    corner of the first class, then goes nearest-neighbour and is shortened by 2-opt; distances
    are haversine metres. With ``priority``, points are split into classes by
    ``priority(key)``; higher classes are visited first (e.g. overdue must-visits), each class
    routed in turn from where the previous one ended. The result is deterministic for a given
    input order.
    """
    if not points:
        return []
    lon, lat, dist, anchor = _prepare(start, points)

    classes: dict[Any, list[int]] = {}
    for i, (key, _, _) in enumerate(points):
        classes.setdefault(priority(key) if priority else 0, []).append(i)

    route: list[int] = []
    for level in sorted(classes, reverse=True):
        members = classes[level]
        if anchor is None:
            first = _north_west_index(lon, lat, members)
            members = [i for i in members if i != first]
            route.append(first)
            anchor = first
        if members:
            part = _two_opt(dist, anchor, _nearest_neighour(dist, anchor, members))
            route.extend(part)
            anchor = part[-1]
    return [points[i][0] for i in route]


def route_length_m(
    start: tuple[float, float] | None,
    points: Sequence[tuple[K, float, float]],
    order: Sequence[K],
) -> float:
    """Length in metres of walking ``points`` in the key order ``order`` (from ``start`` if any)."""
    index = {p[0]: i for i, p in enumerate(points)}
    _, _, dist, anchor = _prepare(start, points)
    return _path_length(dist, anchor, [index[k] for k in order])
