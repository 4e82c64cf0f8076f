"""Schemas of the grids resource: GeoJSON Features and FeatureCollections (RFC 7946)."""

from __future__ import annotations

import marshmallow as ma

from api.db import PG_INT_MAX
from api.extensions import Boolean, Float, Integer, Schema
from api.resources.schemas import BBox, GeometrySchema, code_field, name_field
from api.services.grids import DATUM_WITHOUT_GEOMETRY, TARGET_MAX
from geo.datum import DATUMS

# Offices draw grids on Amap/Tencent (GCJ-02) or Baidu (BD-09) maps, hundreds of metres off
# WGS-84: said, every vertex is converted before anything else, and stored in WGS-84.
DATUM_DESCRIPTION = (
    "The datum the geometry was drawn in: wgs84 (GeoJSON's own, the default), gcj02 "
    "(Amap/Tencent maps) or bd09 (Baidu maps). Every vertex is converted to WGS-84 before "
    "it is checked; the grid is stored and answered in WGS-84."
)


def datum_field(**kwargs) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.OneOf(DATUMS), metadata={"description": DATUM_DESCRIPTION}, **kwargs
    )


class GridPropertiesSchema(Schema):
    code = ma.fields.String(metadata={"description": "15-digit grid code (DB11/T 2157-2023)"})
    name = ma.fields.String()
    community_code = ma.fields.String()
    community_name = ma.fields.String()
    leader_id = Integer(allow_none=True)
    target_households = Integer()
    households = Integer(metadata={"description": "Registered households now"})
    version = Integer(metadata={"description": "Boundary version, 1 when never redrawn"})
    valid_from = ma.fields.DateTime(metadata={"description": "Since when this boundary holds"})


class GridSchema(Schema):
    """A grid as a GeoJSON Feature."""

    type = ma.fields.Constant("Feature", metadata={"type": "string", "enum": ["Feature"]})
    id = Integer()
    geometry = ma.fields.Nested(GeometrySchema)
    properties = ma.fields.Nested(GridPropertiesSchema)


class GridCollectionSchema(Schema):
    type = ma.fields.Constant(
        "FeatureCollection", metadata={"type": "string", "enum": ["FeatureCollection"]}
    )
    features = ma.fields.List(ma.fields.Nested(GridSchema))


class WindowGridPropertiesSchema(Schema):
    code = ma.fields.String(metadata={"description": "15-digit grid code (DB11/T 2157-2023)"})
    name = ma.fields.String()
    community_code = ma.fields.String()
    yours = Boolean(
        metadata={
            "description": "One of your grids: its households are yours to look up (another "
            "grid's request is placed by its location)"
        }
    )


def grid_outline(scope, grid) -> dict:
    """A grid as `WindowGridSchema` (and the move's `MoveGridSchema`) answers it: its outline,
    code and name, and whether its households are the caller's to look up (`yours`)."""
    from api.services.geometry import geojson

    return {
        "id": grid.id,
        "geometry": geojson(grid.boundary),
        "properties": {
            "code": grid.code,
            "name": grid.name,
            "community_code": grid.community_code,
            "yours": scope.sees_grid(grid),
        },
    }


class WindowGridSchema(Schema):
    type = ma.fields.Constant("Feature", metadata={"type": "string", "enum": ["Feature"]})
    id = Integer()
    geometry = ma.fields.Nested(GeometrySchema)
    properties = ma.fields.Nested(WindowGridPropertiesSchema)


class WindowGridCollectionSchema(Schema):
    type = ma.fields.Constant(
        "FeatureCollection", metadata={"type": "string", "enum": ["FeatureCollection"]}
    )
    at_window = Boolean(
        metadata={"description": "You hold the hall window (A-post) today in a published roster"}
    )
    features = ma.fields.List(ma.fields.Nested(WindowGridSchema))


class GridInputPropertiesSchema(Schema):
    class Meta:
        unknown = ma.INCLUDE

    code = code_field(15, required=True)
    name = name_field(required=True)
    target_households = Integer(validate=ma.validate.Range(min=1, max=TARGET_MAX))
    leader_id = Integer(allow_none=True, validate=ma.validate.Range(min=1, max=PG_INT_MAX))
    community_name = name_field(empty=True)
    street_name = name_field(empty=True)
    district_name = name_field(empty=True)


class GridCreateSchema(Schema):
    """A GeoJSON Feature with a Polygon or MultiPolygon geometry and the grid's properties."""

    class Meta:
        unknown = ma.EXCLUDE

    type = ma.fields.String(required=True, validate=ma.validate.Equal("Feature"))
    geometry = ma.fields.Dict(
        required=True, metadata={"description": "Polygon or MultiPolygon, in `datum`"}
    )
    properties = ma.fields.Nested(GridInputPropertiesSchema, required=True)
    datum = datum_field(load_default="wgs84")


class GridImportSchema(Schema):
    """A GeoJSON FeatureCollection of grids; imported all or nothing."""

    class Meta:
        unknown = ma.EXCLUDE

    type = ma.fields.String(required=True, validate=ma.validate.Equal("FeatureCollection"))
    features = ma.fields.List(ma.fields.Raw(), required=True, validate=ma.validate.Length(min=1))
    datum = datum_field(load_default="wgs84")
    retire = ma.fields.List(
        code_field(15),
        metadata={
            "description": "Codes of grids in service to retire in the same change (a merge: "
            "one grid retired, its neighbour drawn over both); their households go to the grids "
            "that then cover them, or the import is refused"
        },
    )


class GridImportResultSchema(Schema):
    created = ma.fields.List(ma.fields.String())
    redrawn = ma.fields.List(ma.fields.String())
    unchanged = ma.fields.List(ma.fields.String())
    retired = ma.fields.List(ma.fields.String())
    households_moved = Integer()


class GridPatchSchema(Schema):
    name = name_field()
    target_households = Integer(validate=ma.validate.Range(min=1, max=TARGET_MAX))
    leader_id = Integer(allow_none=True, validate=ma.validate.Range(min=1, max=PG_INT_MAX))
    geometry = ma.fields.Dict(
        metadata={"description": "A new boundary, in `datum`: a new version begins"}
    )
    datum = datum_field()  # only with a geometry: alone it describes nothing

    @ma.validates_schema
    def _datum_needs_a_geometry(self, data, **kwargs):
        if "datum" in data and "geometry" not in data:
            raise ma.ValidationError(DATUM_WITHOUT_GEOMETRY, "datum")


class GridQueryArgsSchema(Schema):
    bbox = BBox(metadata={"description": "minlon,minlat,maxlon,maxlat (WGS-84)"})
    community = code_field(12, metadata={"description": "12-digit community code"})


class LocateQueryArgsSchema(Schema):
    lon = Float(required=True, validate=ma.validate.Range(-180, 180))
    lat = Float(required=True, validate=ma.validate.Range(-90, 90))


MAX_LOCATE = 1000


class LocatePointSchema(Schema):
    lon = Float(
        required=True,
        allow_nan=False,
        validate=ma.validate.Range(-180, 180),
        metadata={"description": "WGS-84"},
    )
    lat = Float(required=True, allow_nan=False, validate=ma.validate.Range(-90, 90))


class LocateBatchSchema(Schema):
    points = ma.fields.List(
        ma.fields.Nested(LocatePointSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_LOCATE),
        metadata={"description": f"Up to {MAX_LOCATE} WGS-84 points"},
    )


class LocatedPointSchema(Schema):
    lon = Float()
    lat = Float()
    grid_id = Integer(allow_none=True, metadata={"description": "null: none of yours"})
    grid_code = ma.fields.String(allow_none=True)


class LocateBatchResultSchema(Schema):
    results = ma.fields.List(
        ma.fields.Nested(LocatedPointSchema), metadata={"description": "One per point, in order"}
    )
