"""The boundary between shapely and PostGIS: points and shapes in and out of the database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
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


def to_shapes(elements: Iterable[WKBElement]) -> np.ndarray:
    """`to_shape` of many database geometries in one vectorised call: an array of shapes."""
    return shapely.from_wkb(
        [e.data if isinstance(e.data, str) else bytes(e.data) for e in elements]
    )


def as_multipolygon(element: WKBElement) -> MultiPolygon:
    return to_shape(element)
