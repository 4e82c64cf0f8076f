"""Independent checks for the fixture tests: a metric projection and coverage predicates."""

from __future__ import annotations

import itertools
import math

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from shapely.strtree import STRtree

M_PER_DEG = 111_319.49  # spherical, good to well under a percent over a city


def metric(geom, lat0: float):
    """Equirectangular metres around latitude `lat0` (the tests' own, not the generator's)."""
    k = math.cos(math.radians(lat0))

    def fn(coords: np.ndarray) -> np.ndarray:
        return np.column_stack((coords[:, 0] * M_PER_DEG * k, coords[:, 1] * M_PER_DEG))

    return shapely.transform(geom, fn)


def grid_shapes(feature_collection: dict) -> dict[str, Polygon | MultiPolygon]:
    return {f["properties"]["code"]: shape(f["geometry"]) for f in feature_collection["features"]}


def mid_lat(shapes) -> float:
    bounds = np.array([g.bounds for g in shapes])
    return float((bounds[:, 1].min() + bounds[:, 3].max()) / 2)


def overlapping_pairs(shapes: dict, lat0: float, tolerance_m2: float = 0.01) -> list:
    codes = list(shapes)
    geoms = [metric(shapes[c], lat0) for c in codes]
    tree = STRtree(geoms)
    bad = []
    for i, geom in enumerate(geoms):
        for j in tree.query(geom):
            if j > i and geom.intersection(geoms[j]).area > tolerance_m2:
                bad.append((codes[i], codes[j]))
    return bad


def vertices(geom) -> set[tuple[float, float]]:
    return set(map(tuple, shapely.get_coordinates(geom).tolist()))


def unshared_border_vertices(shapes: dict) -> list:
    """Vertices lying on a neighbour's border that the neighbour does not have itself."""
    codes = list(shapes)
    tree = STRtree([shapes[c] for c in codes])
    bad = []
    for i, code in enumerate(codes):
        geom = shapes[code]
        for j in tree.query(geom):
            if j == i:
                continue
            other = shapes[codes[j]]
            other_vertices = vertices(other)
            border = other.boundary
            for v in vertices(geom):
                if border.distance(Point(v)) < 1e-9 and v not in other_vertices:
                    bad.append((code, codes[j], v))
    return bad


def anchor(geom) -> Point:
    """Where a grid 'is' for numbering: the centroid of its largest part."""
    parts = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    return max(parts, key=lambda p: p.area).centroid


def numbering_violations(shapes: dict, row_tolerance_deg: float) -> list:
    """Pairs breaking west→east (same row) or north→south (later row) order within a community."""
    bad = []
    by_community: dict[str, list[str]] = {}
    for code in sorted(shapes):
        by_community.setdefault(code[:12], []).append(code)
    for codes in by_community.values():
        for a, b in itertools.combinations(codes, 2):
            pa, pb = anchor(shapes[a]), anchor(shapes[b])
            same_row = abs(pa.y - pb.y) < row_tolerance_deg
            ok = pa.x < pb.x if same_row else pa.y > pb.y
            if not ok:
                bad.append((a, b))
    return bad


def households_too_close(households, shapes: dict, min_m: float = 3.0) -> list:
    """Rows outside the grid they name or nearer than `min_m` to its border."""
    bad = []
    by_grid: dict[str, list[dict]] = {}
    for row in households:
        by_grid.setdefault(row["grid_code"], []).append(row)
    for code, rows in by_grid.items():
        geom = shapes[code]
        lat0 = geom.centroid.y
        m_geom = metric(geom, lat0)
        shapely.prepare(m_geom)
        pts = metric(shapely.points([(r["lon"], r["lat"]) for r in rows]), lat0)
        inside = shapely.contains(m_geom, pts)
        dist = shapely.distance(m_geom.boundary, pts)
        for row, ok, d in zip(rows, inside, dist, strict=True):
            if not ok or d < min_m:
                bad.append((code, row, float(d)))
    return bad
