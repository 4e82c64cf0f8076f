"""The boundary between shapely and PostGIS: points and shapes in and out of the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import shapely
from geoalchemy2 import WKBElement
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, Point, mapping
from sqlalchemy import func

SRID = 4326


def db_geom(shape) -> WKBElement:
    return from_shape(shape, srid=SRID)


def db_point(lon: float, lat: float):
    """A SQL expression for a WGS-84 point (for queries built around one location)."""
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), SRID)


def geojson(element: WKBElement | None) -> dict[str, Any] | None:
    if element is None:
        return None
    return mapping(to_shape(element))


def point_lonlat(element: WKBElement | Point) -> tuple[float, float]:
    point: Point = element if isinstance(element, Point) else to_shape(element)
    return point.x, point.y


def lonlat_columns(column) -> tuple:
    """A point column read as two numbers (`lon`, `lat`): for rows made into shapes by the
    batch (`points_of`), cheaper than a parsed WKB element per row."""
    return func.ST_X(column).label("lon"), func.ST_Y(column).label("lat")


def points_of(rows: Sequence[Any]) -> Sequence[Point]:
    """The points of rows read with `lonlat_columns`, in one vectorised call."""
    return shapely.points([(r.lon, r.lat) for r in rows]) if rows else []


def as_multipolygon(element: WKBElement) -> MultiPolygon:
    return to_shape(element)
