"""Schemas of the audit resource: entries of the personal-data access log and their filters."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma

from api.db import PG_INT_MAX
from api.extensions import Integer, Schema
from api.services.audit import VIEWS

# `purge`: a deletion of entries past their retention (`gridwork purge-audit`), by the console.
ACTIONS = ("read", "create", "update", "export", "purge")
# What reads are audited of: residents' records, and the reports' per-worker figures.
AUDITED_RESOURCES = ("household", "visit", "visit_photo", "task", "coverage_report", "report")


class AuditEntrySchema(Schema):
    id = Integer()
    at = ma.fields.DateTime(metadata={"description": "When (UTC)"})
    user_id = Integer(allow_none=True, metadata={"description": "Who"})
    username = ma.fields.String(allow_none=True)
    action = ma.fields.String(metadata={"description": ", ".join(ACTIONS)})
    resource = ma.fields.String(metadata={"description": "household, visit, visit_photo or task"})
    resource_ids = ma.fields.List(Integer(), metadata={"description": "Which records"})
    resource_uuids = ma.fields.List(
        ma.fields.UUID(), metadata={"description": "Which records, for UUID-keyed ones (visits)"}
    )
    fields = ma.fields.List(ma.fields.String(), metadata={"description": "What was disclosed"})
    ip = ma.fields.String(allow_none=True)
    path = ma.fields.String(allow_none=True, metadata={"description": "The request"})


class AuditQueryArgsSchema(Schema):
    user = Integer(
        validate=ma.validate.Range(min=1, max=PG_INT_MAX), metadata={"description": "Actor id"}
    )
    action = ma.fields.String(validate=ma.validate.OneOf(ACTIONS))
    resource = ma.fields.String(validate=ma.validate.OneOf(AUDITED_RESOURCES))
    record = Integer(
        validate=ma.validate.Range(min=1, max=2**63 - 1),
        metadata={"description": "Entries that touched this record id (e.g. a household)"},
    )
    record_uuid = ma.fields.UUID(metadata={"description": "Entries that touched this visit"})
    since = ma.fields.AwareDateTime(default_timezone=UTC, metadata={"description": "at >= since"})
    until = ma.fields.AwareDateTime(default_timezone=UTC, metadata={"description": "at < until"})
    household = Integer(
        validate=ma.validate.Range(min=1, max=PG_INT_MAX),
        metadata={
            "description": "Entries about this household, its visits (and their photos) and "
            "its tasks, whoever read them; 404 for a household you cannot read"
        },
    )
    before = Integer(
        validate=ma.validate.Range(min=1, max=2**63 - 1),
        metadata={
            "description": "The entries after this one (the id of the last entry read), newest "
            "first: paging on with it neither repeats nor skips entries written meanwhile, as "
            "page numbers do; 422 for an entry that is not in the log"
        },
    )
    view = ma.fields.String(
        validate=ma.validate.OneOf(VIEWS),
        metadata={
            "description": "readers (default): entries by your community's (district's) users; "
            "records: entries about your community's (district's) households, visits and "
            "tasks, whoever read them (other communities, district viewers, the console); "
            "its X-Pagination total counts no further than the next page's first entry"
        },
    )

    @ma.validates_schema
    def _period(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ma.ValidationError({"until": ["until must be after since."]})
