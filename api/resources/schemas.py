"""Schema building blocks shared by resources: GeoJSON geometry, points, bounding boxes,
address parts."""

from __future__ import annotations

import marshmallow as ma

from api.extensions import Schema
from api.services.names import (
    CONTROL_CHARACTERS,
    NAME_MAX,
    address_part,
    has_control_characters,
    name_problem,
)


class GeometrySchema(Schema):
    """A GeoJSON (RFC 7946) geometry object, WGS-84 lon/lat."""

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(required=True, metadata={"example": "MultiPolygon"})
    coordinates = ma.fields.Raw(required=True)


class BBox(ma.fields.String):
    """`minlon,minlat,maxlon,maxlat` as a query parameter."""

    def _deserialize(self, value, attr, data, **kwargs):
        parts = str(value).split(",")
        try:
            numbers = tuple(float(p) for p in parts)
        except ValueError as exc:
            raise ma.ValidationError(
                "bbox must be four numbers: minlon,minlat,maxlon,maxlat"
            ) from exc
        if len(numbers) != 4:
            raise ma.ValidationError("bbox must be four numbers: minlon,minlat,maxlon,maxlat")
        minlon, minlat, maxlon, maxlat = numbers
        if not (-180 <= minlon <= maxlon <= 180 and -90 <= minlat <= maxlat <= 90):
            raise ma.ValidationError(
                "bbox must satisfy -180 ≤ minlon ≤ maxlon ≤ 180 and -90 ≤ minlat ≤ maxlat ≤ 90"
            )
        return numbers


class FullMatch(ma.validate.Regexp):
    r"""`ma.validate.Regexp` over the whole value: marshmallow matches from the start only, and
    `$` also matches before a final newline, so "2026-W48\n" passed `^...$` and reached the
    services (a 500 there). The pattern itself stays as written for the OpenAPI document
    (ECMA-262, where `\Z` does not exist). Use ASCII classes (`[0-9]`, not `\d`: Python's `\d`
    matches fullwidth digits too)."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


# An ISO week as the API reads it ("2026-W47"); `weeks.parse_week` says whether it exists.
ISO_WEEK = FullMatch(r"^[0-9]{4}-W[0-9]{2}$", error="Must be an ISO week like 2026-W47.")


def code_field(length: int, **kwargs) -> ma.fields.String:
    return ma.fields.String(
        validate=FullMatch(rf"^[0-9]{{{length}}}$", error=f"Must be {length} digits."),
        **kwargs,
    )


def name_field(*, required: bool = False, empty: bool = False, **kwargs) -> ma.fields.String:
    """A name (of a grid, community, street, district): services.names' rule, as a 422.
    `empty`: "" is accepted (as no name)."""

    def validate(value: str) -> None:
        if problem := name_problem(value, optional=empty):
            raise ma.ValidationError(problem)

    least = 0 if empty else 1
    return ma.fields.String(
        required=required,
        validate=validate,
        metadata={"description": f"{least}-{NAME_MAX} characters, no control characters"},
        **kwargs,
    )


class AddressPart(ma.fields.String):
    """A part of an address as a form sends it (a household's, a visit's premises): trimmed,
    half-width, spaced one way and without invisible characters (`names.address_part`, as an
    import row is), so " 3", "３", "3 号楼", "3<U+200B>号楼" and "3号楼" are one building, and free
    of control characters (a NUL the database refuses naming no field, a
    newline that breaks a list) and of bidirectional overrides (which make it read as another
    address)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = address_part(super()._deserialize(value, attr, data, **kwargs))
        if has_control_characters(text):
            raise ma.ValidationError(CONTROL_CHARACTERS)
        return text
