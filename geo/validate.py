"""Validation of GeoJSON grid boundaries and points, with a plain reason for every rejection."""

import math
import re
from collections.abc import Callable
from numbers import Real

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from geo.datum import DATUMS, to_wgs84_many
from geo.measure import area_m2

__all__ = [
    "CHINA_LAT",
    "CHINA_LON",
    "MAX_VERTICES",
    "GeometryProblem",
    "check_lon_lat",
    "plainly_in_china",
    "overlap_area_m2",
    "parse_boundary",
    "parse_point",
]

# Where the platform's data can be: mainland China, Hong Kong, Macao and Taiwan, generously.
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)
# A grid is a few streets: hundreds of vertices at most. Beyond this a boundary is an error or
# an attack (validity checks are O(n log n) in vertices, and each vertex costs ~100 bytes).
MAX_VERTICES = 10_000
# A JSON array as parsed. A tuple of types, not `list | tuple`: that builds a union type on
# every call, ~110 ns per position of an import.
_ARRAY = (list, tuple)


class GeometryProblem(ValueError):
    """Geometry that cannot be a grid boundary or a location; ``reason`` says what and where."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _fmt(v: float) -> str:
    # Six decimals is about 0.1 m: enough to find the spot, short enough to read.
    return f"{v:.6f}".rstrip("0").rstrip(".")


def _in_china(lon: float, lat: float) -> bool:
    return CHINA_LON[0] <= lon <= CHINA_LON[1] and CHINA_LAT[0] <= lat <= CHINA_LAT[1]


def _is_number(v: object) -> bool:
    # bool is an int subclass, but true/false in JSON is never a coordinate.
    return isinstance(v, Real) and not isinstance(v, bool)


def plainly_in_china(lon: object, lat: object) -> bool:
    """A pair of floats inside China's box, which `check_lon_lat` always accepts (in range,
    not swapped): the quick test a batch makes before the full check, per point."""
    return (
        type(lon) is float
        and type(lat) is float
        and CHINA_LON[0] <= lon <= CHINA_LON[1]
        and CHINA_LAT[0] <= lat <= CHINA_LAT[1]
    )


def check_lon_lat(lon: object, lat: object, where: str = "") -> tuple[float, float]:
    """Check one (lon, lat) pair; return it as floats or raise GeometryProblem.

    The checks of `parse_point` without making a point (a batch makes its points at once)."""
    at = f" in {where}" if where else ""
    if not (_is_number(lon) and _is_number(lat)):
        raise GeometryProblem(f"coordinate ({lon!r}, {lat!r}){at} is not a pair of numbers")
    try:
        x, y = float(lon), float(lat)
    except OverflowError:  # integers too big for a float
        x, y = math.inf, math.inf
    if not (math.isfinite(x) and math.isfinite(y)):
        raise GeometryProblem(f"coordinate ({x}, {y}){at} is not finite")
    swapped = (abs(y) > 90 and abs(x) <= 90) or (
        abs(x) <= 90 and not _in_china(x, y) and _in_china(y, x)
    )
    if swapped:
        raise GeometryProblem(
            f"coordinate ({_fmt(x)}, {_fmt(y)}){at} looks swapped: "
            "(lat, lon) given where (lon, lat) is expected"
        )
    if not -180 <= x <= 180:
        raise GeometryProblem(f"longitude {x}{at} out of range [-180, 180]")
    if not -90 <= y <= 90:
        raise GeometryProblem(f"latitude {y}{at} out of range [-90, 90]")
    return x, y


def parse_point(lon: float, lat: float) -> Point:
    """A validated lon/lat point; raises GeometryProblem when out of range or evidently swapped."""
    return Point(check_lon_lat(lon, lat))


def _ring(raw: object, where: str, datum: str = "wgs84") -> list[tuple[float, float]]:
    if not isinstance(raw, _ARRAY):
        raise GeometryProblem(f"{where} is not an array of positions")
    given = datum == "wgs84"
    positions = []
    for k, pos in enumerate(raw):
        if not isinstance(pos, _ARRAY) or len(pos) not in (2, 3):
            raise GeometryProblem(
                f"position {k} of {where} is not an array of 2 numbers [lon, lat]"
            )
        # An altitude, if given, is allowed by GeoJSON and dropped: grids are flat.
        x, y = check_lon_lat(pos[0], pos[1], f"position {k} of {where}")
        if given and not _in_china(x, y):
            raise _outside_china(x, y, k, where)
        positions.append((x, y))
    if not given and positions:
        # Drawn on a map in another datum: the whole ring converted at once, and every check
        # below (and every check, overlap and lookup after) is of where the ring really is.
        lon, lat = to_wgs84_many(
            [p[0] for p in positions], [p[1] for p in positions], [datum] * len(positions)
        )
        wgs84 = list(zip(lon.tolist(), lat.tolist(), strict=True))
        for k, ((x, y), (gx, gy)) in enumerate(zip(wgs84, positions, strict=True)):
            if not _in_china(x, y):
                raise _outside_china(gx, gy, k, where)  # named as given, found where it is
        closed = positions[0] == positions[-1]
        positions = wgs84
        if closed:  # the same position converts alike; said outright all the same
            positions[-1] = positions[0]
    if len(positions) < 4:
        raise GeometryProblem(f"{where} has {len(positions)} positions; a ring needs at least 4")
    if positions[0] != positions[-1]:
        raise GeometryProblem(f"{where} is not closed: its first and last positions differ")
    return positions


def _outside_china(x: float, y: float, k: int, where: str) -> GeometryProblem:
    # A point may be abroad (a worker's phone); a grid may not: a vertex outside China is
    # a typing slip (11.64 for 116.4), a file in another system, or a ring across the
    # antimeridian or around a pole, and made a "grid" thousands of kilometres wide.
    return GeometryProblem(
        f"position {k} of {where} at ({_fmt(x)}, {_fmt(y)}) is outside China: "
        "a grid boundary is lon/lat (WGS-84) in China"
    )


_VALIDITY = re.compile(r"^(?P<what>[^\[]+?)\s*\[(?P<x>\S+) (?P<y>\S+)(?: \S+)?\]$")


def _invalidity(geom: BaseGeometry) -> str | None:
    """A readable account of why ``geom`` is invalid, or None if it is valid."""
    if geom.is_valid:
        return None
    explained = shapely.is_valid_reason(geom)
    m = _VALIDITY.match(explained)
    if m is None:
        return explained[0].lower() + explained[1:]
    what = m["what"].lower()
    return f"{what} at ({_fmt(float(m['x']))}, {_fmt(float(m['y']))})"


def _polygon(
    raw: object, where: str, ring_name: Callable[[int], str], datum: str = "wgs84"
) -> Polygon:
    if not isinstance(raw, _ARRAY):
        raise GeometryProblem(f"{where} is not an array of rings")
    if not raw:
        raise GeometryProblem(f"{where} has no rings")
    rings = [_ring(r, ring_name(i), datum) for i, r in enumerate(raw)]
    poly = Polygon(rings[0], rings[1:])
    problem = _invalidity(poly)
    if problem is not None:
        raise GeometryProblem(f"{where} is invalid: {problem}")
    return poly


def parse_boundary(
    geojson_geometry: dict, datum: str = "wgs84", *, max_area_m2: float | None = None
) -> MultiPolygon:
    """Validate a GeoJSON Polygon or MultiPolygon in lon/lat and return it as a MultiPolygon.

    ``datum`` is the one it was drawn in: "wgs84" (GeoJSON's own), or "gcj02" (Amap, Tencent)
    or "bd09" (Baidu), whose every vertex, once it is a pair of numbers in range, is converted
    to WGS-84 (`geo.datum.to_wgs84_many`) before every other check: the result is always
    WGS-84, and a problem found after the conversion is placed in WGS-84. An unknown datum is
    a ValueError (the caller's slip: the API refuses one before it gets here).

    Holes are allowed. Raises GeometryProblem with a ``reason`` naming the problem and where it
    is: malformed JSON shapes, short or unclosed rings, bad, swapped or out-of-China
    coordinates, invalid
    polygons (self-intersections, holes outside their shell, ...) and overlapping parts.
    Rings come back oriented as RFC 7946 asks (exterior counter-clockwise, holes clockwise).

    ``max_area_m2``, when given, is the most a boundary may cover (m², holes left out): a grid
    is a few streets, and one drawn over a province would, by the overlap check, keep every
    other grid out of it.
    """
    if not isinstance(datum, str) or datum not in DATUMS:
        raise ValueError(f"unknown datum {datum!r}; expected one of {', '.join(DATUMS)}")
    if not isinstance(geojson_geometry, dict):
        raise GeometryProblem("geometry must be a GeoJSON object")
    kind = geojson_geometry.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeometryProblem(f"geometry type must be Polygon or MultiPolygon, got {kind!r}")
    coords = geojson_geometry.get("coordinates")
    if not isinstance(coords, _ARRAY):
        raise GeometryProblem(f"{kind} coordinates must be an array")
    if not coords:
        raise GeometryProblem("geometry is empty")
    vertices = _count_vertices(coords, 2 if kind == "Polygon" else 3)
    if vertices > MAX_VERTICES:
        raise GeometryProblem(
            f"geometry has {vertices:,} or more vertices; a grid boundary has at most "
            f"{MAX_VERTICES:,}"
        )

    if kind == "Polygon":
        parts = [_polygon(coords, "polygon", lambda i: f"ring {i}", datum)]
    else:
        parts = []
        for j, raw in enumerate(coords):
            parts.append(
                _polygon(raw, f"polygon {j}", lambda i, j=j: f"ring {i} of polygon {j}", datum)
            )
        _check_parts_disjoint(parts)

    result = MultiPolygon(parts)
    problem = _invalidity(result)
    if problem is not None:
        raise GeometryProblem(f"multipolygon is invalid: {problem}")
    if max_area_m2 is not None and (area := area_m2(result)) > max_area_m2:
        raise GeometryProblem(
            f"geometry covers {_km2(area)} km²; a grid boundary covers at most "
            f"{_km2(max_area_m2)} km²"
        )
    return shapely.orient_polygons(result, exterior_cw=False)


def _km2(m2: float) -> str:
    """An area in km² as read: `0.9`, `20`, `1,234.5`."""
    return f"{m2 / 1e6:,.1f}".removesuffix(".0")


def _count_vertices(coords: object, levels: int) -> int:
    """Positions in nested arrays `levels` deep, stopping once past MAX_VERTICES."""
    if levels == 1:
        return len(coords) if isinstance(coords, _ARRAY) else 0
    total = 0
    for item in coords if isinstance(coords, _ARRAY) else ():
        total += _count_vertices(item, levels - 1)
        if total > MAX_VERTICES:
            break
    return total


def _check_parts_disjoint(parts: list[Polygon]) -> None:
    tree = shapely.STRtree(parts)
    for i, part in enumerate(parts):
        for j in sorted(int(j) for j in tree.query(part, predicate="intersects")):
            if j <= i:
                continue
            # Parts of one multipolygon may touch only at points: interiors meeting is an
            # overlap, boundaries meeting along a line is a shared edge (the parts should merge).
            other = parts[j]
            if part.relate_pattern(other, "T********"):
                problem = "overlap"
                where = part.intersection(other).representative_point()
            elif part.relate_pattern(other, "****1****"):
                problem = "share an edge"
                where = part.boundary.intersection(other.boundary).representative_point()
            else:
                continue
            raise GeometryProblem(
                f"polygon {i} and polygon {j} {problem} near ({_fmt(where.x)}, {_fmt(where.y)})"
            )


def overlap_area_m2(a: BaseGeometry, b: BaseGeometry) -> float:
    """Area in square metres shared by two lon/lat geometries (0 if they only touch)."""
    if a.is_empty or b.is_empty:
        return 0.0
    return area_m2(a.intersection(b))
