"""Schemas of the tiles resource: the week argument and a household's visit history."""

from __future__ import annotations

import marshmallow as ma

from api.extensions import Schema


class TileQueryArgsSchema(Schema):
    week = ma.fields.String(
        metadata={"description": 'ISO week like "2026-W47" (Asia/Shanghai); default this week'}
    )


class HistoryQueryArgsSchema(Schema):
    limit = ma.fields.Integer(
        load_default=20,
        validate=ma.validate.Range(min=1, max=200),
        metadata={"description": "How many of the latest visits (1..200, default 20)"},
    )


class HistoryVisitSchema(Schema):
    id = ma.fields.String()
    visited_at = ma.fields.DateTime()
    week = ma.fields.String()
    outcome = ma.fields.String()
    grade = ma.fields.String()
    reasons = ma.fields.List(ma.fields.String())
    worker = ma.fields.String(metadata={"description": "The visiting worker's display name"})
    notes = ma.fields.String()


class HouseholdHistorySchema(Schema):
    household_id = ma.fields.Integer()
    address = ma.fields.String()
    grid_code = ma.fields.String()
    tags = ma.fields.List(ma.fields.String())
    visits = ma.fields.List(ma.fields.Nested(HistoryVisitSchema))
