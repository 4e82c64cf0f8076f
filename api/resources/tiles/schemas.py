"""Schemas of the tiles resource: the week argument and a household's visit history."""

from __future__ import annotations

import marshmallow as ma

from api.extensions import Schema


class TileQueryArgsSchema(Schema):
    week = ma.fields.String(
        metadata={"description": 'ISO week like "2026-W47" (Asia/Shanghai); default this week'}
    )
