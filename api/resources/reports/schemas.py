"""Schemas of the weekly coverage report: query arguments, stored reports and their files."""

from __future__ import annotations

import marshmallow as ma
from flask import url_for

from api.extensions import Integer, Schema
from api.resources.schemas import ISO_WEEK, code_field
from api.services.rates import percent

WEEK = ma.fields.String(
    validate=ISO_WEEK,
    metadata={"description": "ISO week (Asia/Shanghai), e.g. 2026-W47"},
)


class CoverageQueryArgsSchema(Schema):
    week = ma.fields.String(
        required=True,
        validate=ISO_WEEK,
        metadata={"description": "ISO week (Asia/Shanghai), e.g. 2026-W47"},
    )
    community = code_field(12, metadata={"description": "A community (12-digit code)"})
    street = code_field(9, metadata={"description": "A street (9 digits; district viewers)"})
    district = code_field(6, metadata={"description": "A district (6 digits; district viewers)"})
    format = ma.fields.String(
        metadata={
            "description": "json, csv, xlsx or pdf (else the Accept header decides; default json)"
        }
    )


class ReportQueryArgsSchema(Schema):
    week = WEEK
    community = code_field(12, metadata={"description": "One community's reports"})


class ReportFileSchema(Schema):
    format = ma.fields.String()
    content_type = ma.fields.String()
    size_bytes = Integer()
    url = ma.fields.Method("_url", metadata={"type": "string"})

    def _url(self, obj) -> str:
        return url_for("reports.ReportFileByFormat", report_id=obj.report_id, fmt=obj.format)


class ReportSchema(Schema):
    id = Integer()
    week = ma.fields.String()
    level = ma.fields.String()
    code = ma.fields.String()
    name = ma.fields.String()
    households = Integer()
    visited = Integer()
    coverage = ma.fields.Method("_coverage", metadata={"type": "number", "nullable": True})
    created_at = ma.fields.DateTime()
    late_visits = Integer(
        metadata={
            "description": "Visits of its week in its area that the live report for the week "
            "(GET /reports/coverage) counts and this one did not: kept offline on a phone past "
            "Monday 08:00, synced after it was stored"
        }
    )
    files = ma.fields.List(ma.fields.Nested(ReportFileSchema))

    def _coverage(self, obj) -> float | None:
        return percent(obj.visited, obj.households)
